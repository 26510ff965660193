/* Attributes: getattr, setattr, readlink, statfs, access. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "fs/internal.h"

static int fill_attr_out(struct vfsd_passthrough *fs, int fd, struct fuse_attr_out *out)
{
	struct statx st;
	int r = fs_stat(fd, &st);

	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	fs_fill_timeouts(fs, &out->attr_valid, &out->attr_valid_nsec);
	fs_fill_attr(fs, &st, &out->attr);
	return 0;
}

int fs_getattr(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
	       struct fuse_attr_out *out)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode;
	int r;

	(void)ctx;
	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	r = fill_attr_out(fs, inode->fd, out);
	inode_put(fs, inode);
	return r;
}

static int set_times(struct vfsd_passthrough *fs, const struct fs_inode *inode, int hfd,
		     const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	char name[16];

	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){ .tv_sec = (time_t)in->atime, .tv_nsec = in->atimensec };
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){ .tv_sec = (time_t)in->mtime, .tv_nsec = in->mtimensec };
	if (hfd >= 0)
		return futimens(hfd, ts) < 0 ? -errno : 0;
	if (inode->type == S_IFLNK)
		return utimensat(inode->fd, "", ts, AT_EMPTY_PATH) < 0 ? -errno : 0;
	snprintf(name, sizeof(name), "%d", inode->fd);
	return utimensat(fs->proc_self_fd, name, ts, 0) < 0 ? -errno : 0;
}

int fs_setattr(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
	       const struct fuse_setattr_in *in, struct fuse_attr_out *out)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode;
	struct fs_handle *h = NULL;
	int cleanup_close tmpfd = -1;
	int hfd = -1, r = 0;
	char name[16];

	(void)ctx;
	if (fs->cfg.readonly)
		return -EROFS;
	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	if (in->valid & FATTR_FH) {
		h = handle_get(fs, nodeid, in->fh);
		if (!h) {
			r = -EBADF;
			goto out;
		}
		hfd = h->fd;
	}
	snprintf(name, sizeof(name), "%d", inode->fd);
	if (in->valid & FATTR_MODE) {
		if (hfd >= 0)
			r = fchmod(hfd, in->mode);
		else
			r = fchmodat(fs->proc_self_fd, name, in->mode, 0);
		if (r < 0) {
			r = -errno;
			goto out;
		}
	}
	if (in->valid & (FATTR_UID | FATTR_GID)) {
		uint32_t uid = (uint32_t)-1, gid = (uint32_t)-1;

		if (((in->valid & FATTR_UID) && vfsd_idmap_to_host(fs->cfg.uid_map, in->uid, &uid) < 0) ||
		    ((in->valid & FATTR_GID) && vfsd_idmap_to_host(fs->cfg.gid_map, in->gid, &gid) < 0)) {
			r = -EPERM; /* a forbid-guest rule */
			goto out;
		}
		if (fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			goto out;
		}
		fs_xattr_drop_cap(fs, inode, hfd);
	}
	if (in->valid & FATTR_SIZE) {
		int fd = hfd;

		if (fd < 0) {
			tmpfd = fs_reopen(fs, inode, O_RDWR | O_NONBLOCK);
			if (tmpfd < 0) {
				r = tmpfd;
				goto out;
			}
			fd = tmpfd;
		}
		/* KILLPRIV_V2: a truncate by a guest user without CAP_FSETID drops set-id bits. */
		bool fsetid_dropped = fs_session(fs, FS_SESSION_KILLPRIV_V2) && (in->valid & FATTR_KILL_SUIDGID) &&
				      creds_drop_fsetid();

		r = ftruncate(fd, (off_t)in->size) < 0 ? -errno : 0;
		if (fsetid_dropped)
			creds_restore_fsetid();
		if (r < 0)
			goto out;
		fs_xattr_drop_cap(fs, inode, fd);
	}
	if (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
		r = set_times(fs, inode, hfd, in);
		if (r < 0)
			goto out;
	}
	r = fill_attr_out(fs, inode->fd, out);
out:
	if (h)
		handle_put(fs, h);
	inode_put(fs, inode);
	return r;
}

int fs_readlink(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, char *buf,
		size_t size, size_t *len)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode;
	ssize_t n;
	int r;

	(void)ctx;
	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	n = readlinkat(inode->fd, "", buf, size);
	inode_put(fs, inode);
	if (n < 0)
		return -errno;
	*len = (size_t)n;
	return 0;
}

int fs_statfs(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
	      struct fuse_kstatfs *out)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode;
	struct statvfs sv;
	int r;

	(void)ctx;
	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	r = fstatvfs(inode->fd, &sv) < 0 ? -errno : 0;
	inode_put(fs, inode);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->blocks = sv.f_blocks;
	out->bfree = sv.f_bfree;
	out->bavail = sv.f_bavail;
	out->files = sv.f_files;
	out->ffree = sv.f_ffree;
	out->bsize = sv.f_bsize;
	out->namelen = sv.f_namemax;
	out->frsize = sv.f_frsize;
	return 0;
}

int fs_access(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t mask)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode;
	struct statx st;
	uint32_t mode;
	int r;

	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	r = fs_stat(inode->fd, &st);
	inode_put(fs, inode);
	if (r < 0)
		return r;
	mask &= R_OK | W_OK | X_OK;
	if (mask == F_OK)
		return 0;
	if (fs->cfg.readonly && (mask & W_OK))
		return -EROFS;
	mode = st.stx_mode;
	if (ctx->uid == 0) {
		/* root passes read and write checks; execute needs some x bit (or a directory) */
		if ((mask & X_OK) && !S_ISDIR(mode) && !(mode & 0111))
			return -EACCES;
		return 0;
	}
	/* the owner and group as the guest sees them */
	if (ctx->uid == vfsd_idmap_to_guest(fs->cfg.uid_map, st.stx_uid))
		mode >>= 6;
	else if (ctx->gid == vfsd_idmap_to_guest(fs->cfg.gid_map, st.stx_gid))
		mode >>= 3;
	return (mode & mask) == mask ? 0 : -EACCES;
}

int fs_syncfs(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode;
	int fd, r;

	(void)ctx;
	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	/* syncfs() needs an fd that is really open, not O_PATH. */
	fd = fs_reopen(fs, inode, O_RDONLY | O_NONBLOCK);
	inode_put(fs, inode);
	if (fd < 0)
		return fd;
	r = syncfs(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}
