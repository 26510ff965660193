/* Directory entries: lookup, creation of names, removal, rename and hard links. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"

#define RENAME_FLAGS_ALLOWED (RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)

int fs_lookup(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	      struct fuse_entry_out *out)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *dir;
	int r;

	(void)ctx;
	r = inode_get(fs, parent, &dir);
	if (r < 0)
		return r;
	r = fs_lookup_at(fs, dir, name, out);
	inode_put(fs, dir);
	return r;
}

enum mk_kind { MK_NOD, MK_DIR, MK_SYMLINK };

struct mk_args {
	enum mk_kind kind;
	uint32_t mode, rdev, umask;
	const char *target;
};

/* Creates a name as the requesting user, then looks it up. */
static int make_entry(struct vfsd_passthrough *fs, const struct vfsd_req_ctx *ctx, uint64_t parent,
		      const char *name, const struct mk_args *a, struct fuse_entry_out *out)
{
	struct fs_inode *dir;
	struct fs_creds saved;
	int r;

	if (fs->cfg.readonly)
		return -EROFS;
	r = inode_get(fs, parent, &dir);
	if (r < 0)
		return r;
	r = creds_switch(fs, ctx, a->umask, &saved);
	if (r == 0) {
		switch (a->kind) {
		case MK_NOD:
			r = mknodat(dir->fd, name, a->mode, a->rdev);
			break;
		case MK_DIR:
			r = mkdirat(dir->fd, name, a->mode);
			break;
		case MK_SYMLINK:
			r = symlinkat(a->target, dir->fd, name);
			break;
		}
		if (r < 0)
			r = -errno;
		creds_restore(&saved);
	}
	if (r == 0)
		r = fs_lookup_open(fs, dir, name, out);
	/* A label that cannot be stored undoes the creation: the guest is told it failed. */
	if (r == 0 && ctx->secctx_name) {
		r = fs_xattr_set_secctx(fs, ctx, out->nodeid);
		if (r < 0) {
			unlinkat(dir->fd, name, a->kind == MK_DIR ? AT_REMOVEDIR : 0);
			fs_forget(fs, out->nodeid, 1);
		}
	}
	inode_put(fs, dir);
	return r;
}

int fs_symlink(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	       const char *target, struct fuse_entry_out *out)
{
	struct mk_args a = { .kind = MK_SYMLINK, .target = target };

	return make_entry(fs, ctx, parent, name, &a, out);
}

int fs_mknod(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	     uint32_t mode, uint32_t rdev, uint32_t umask, struct fuse_entry_out *out)
{
	/* Without ACLs the guest applied its umask already, and umask is 0 here. */
	struct mk_args a = { .kind = MK_NOD, .mode = mode, .rdev = rdev, .umask = umask };

	return make_entry(fs, ctx, parent, name, &a, out);
}

int fs_mkdir(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	     uint32_t mode, uint32_t umask, struct fuse_entry_out *out)
{
	struct mk_args a = { .kind = MK_DIR, .mode = mode, .umask = umask };

	return make_entry(fs, ctx, parent, name, &a, out);
}

static int remove_entry(struct vfsd_passthrough *fs, uint64_t parent, const char *name, int flags)
{
	struct fs_inode *dir;
	struct statx st;
	bool known;
	int r;

	if (fs->cfg.readonly)
		return -EROFS;
	r = inode_get(fs, parent, &dir);
	if (r < 0)
		return r;
	/* Which object loses the name, for open_inode (fs_inode.guest_removed). */
	known = fs_stat_name(dir->fd, name, &st) == 0;
	r = unlinkat(dir->fd, name, flags) < 0 ? -errno : 0;
	if (r == 0 && known)
		inode_guest_removed(fs, &st);
	inode_put(fs, dir);
	return r;
}

int fs_unlink(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name)
{
	(void)ctx;
	return remove_entry(fs, parent, name, 0);
}

int fs_rmdir(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name)
{
	(void)ctx;
	return remove_entry(fs, parent, name, AT_REMOVEDIR);
}

int fs_rename(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t olddir, const char *oldname,
	      uint64_t newdir, const char *newname, uint32_t flags)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *from = NULL, *to = NULL;
	struct statx replaced;
	bool replaces = false;
	int r;

	(void)ctx;
	if (fs->cfg.readonly)
		return -EROFS;
	if (flags & ~RENAME_FLAGS_ALLOWED)
		return -EINVAL;
	r = inode_get(fs, olddir, &from);
	if (r == 0)
		r = inode_get(fs, newdir, &to);
	/* The object a plain rename replaces loses its name to the guest (open_inode). */
	if (r == 0 && !(flags & (RENAME_EXCHANGE | RENAME_NOREPLACE)))
		replaces = fs_stat_name(to->fd, newname, &replaced) == 0;
	if (r == 0)
		r = renameat2(from->fd, oldname, to->fd, newname, flags) < 0 ? -errno : 0;
	if (r == 0 && replaces)
		inode_guest_removed(fs, &replaced);
	if (r == 0)
		inode_renamed(fs, from, oldname, to, newname, flags);
	inode_put(fs, from);
	inode_put(fs, to);
	return r;
}

int fs_link(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t newparent,
	    const char *newname, struct fuse_entry_out *out)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode = NULL, *dir = NULL;
	char procname[16];
	int r;

	(void)ctx;
	if (fs->cfg.readonly)
		return -EROFS;
	r = inode_get(fs, nodeid, &inode);
	if (r == 0)
		r = inode_get(fs, newparent, &dir);
	if (r < 0)
		goto out;
	snprintf(procname, sizeof(procname), "%d", inode->fd);
	r = linkat(fs->proc_self_fd, procname, dir->fd, newname, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
	if (r == 0)
		r = fs_lookup_at(fs, dir, newname, out);
out:
	inode_put(fs, inode);
	inode_put(fs, dir);
	return r;
}
