/* Extended attributes (--xattr): get, set, list and remove, on the inode itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "fs/internal.h"

/* ACL names are refused unless --posix-acl agreed ACLs with the kernel (FS_SESSION_ACL):
 * otherwise the guest kernel would apply them itself, and a host ACL would not be what the
 * guest believes. */
static const char *const acl_names[] = { "system.posix_acl_access", "system.posix_acl_default" };

static bool is_blocked_acl(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(acl_names) / sizeof(acl_names[0]); i++) {
		/* As virtiofsd: any prefix of an ACL name, the full name included. */
		if (strncmp(acl_names[i], name, len) == 0)
			return true;
	}
	return false;
}

enum xop { XOP_GET, XOP_SET, XOP_LIST, XOP_REMOVE };

struct xargs {
	enum xop op;
	const char *name;
	void *buf;	   /* GET and LIST: out; SET: the value */
	size_t size;
	int flags;	   /* SET */
	uint32_t setxattr_flags; /* SET: FUSE_SETXATTR_* */
};

static ssize_t on_fd(int fd, const struct xargs *a)
{
	switch (a->op) {
	case XOP_GET: return fgetxattr(fd, a->name, a->buf, a->size);
	case XOP_SET: return fsetxattr(fd, a->name, a->buf, a->size, a->flags);
	case XOP_LIST: return flistxattr(fd, a->buf, a->size);
	case XOP_REMOVE: return fremovexattr(fd, a->name);
	}
	errno = EINVAL;
	return -1;
}

/* The path calls on "N" in /proc/self/fd reach the object an O_PATH fd refers to, a symlink
 * included, without opening it. */
static ssize_t on_path(const char *path, const struct xargs *a)
{
	switch (a->op) {
	case XOP_GET: return getxattr(path, a->name, a->buf, a->size);
	case XOP_SET: return setxattr(path, a->name, a->buf, a->size, a->flags);
	case XOP_LIST: return listxattr(path, a->buf, a->size);
	case XOP_REMOVE: return removexattr(path, a->name);
	}
	errno = EINVAL;
	return -1;
}

/*
 * Runs the call on the inode. Regular files and directories are re-opened read-only; other
 * types (symlinks, devices, FIFOs, sockets) are never opened: the thread's cwd moves to
 * /proc/self/fd for the path call and back to the shared root (every thread that serves
 * requests has its own cwd, see vfsd_passthrough_thread_init).
 */
static ssize_t run_xattr(struct vfsd_passthrough *fs, const struct fs_inode *inode,
			 const struct xargs *a)
{
	char name[16];
	ssize_t r;
	int saved;

	if (inode->type == S_IFREG || inode->type == S_IFDIR) {
		cleanup_close int fd = fs_reopen(fs, inode, O_RDONLY | O_NONBLOCK);

		if (fd < 0)
			return fd;
		r = on_fd(fd, a);
		return r < 0 ? -errno : r;
	}
	snprintf(name, sizeof(name), "%d", inode->fd);
	if (fchdir(fs->proc_self_fd) < 0)
		return -errno;
	r = on_path(name, a);
	saved = errno;
	if (fchdir(fs->root_fd) < 0)
		log_warn("xattr: cannot return to the shared directory: %s", strerror(errno));
	return r < 0 ? -saved : r;
}

/* Drops the setgid bit; returns 1 (*old_mode set) if it did, 0 if there was none, or -errno. */
static int kill_sgid(struct vfsd_passthrough *fs, const struct fs_inode *inode, mode_t *old_mode)
{
	struct statx st;
	char name[16];
	int r = fs_stat(inode->fd, &st);

	if (r < 0 || !(st.stx_mode & S_ISGID))
		return r;
	snprintf(name, sizeof(name), "%d", inode->fd);
	if (fchmodat(fs->proc_self_fd, name, st.stx_mode & 07777 & ~S_ISGID, 0) < 0)
		return -errno;
	*old_mode = st.stx_mode & 07777;
	return 1;
}

/* Room for a host name: the longest the host takes (XATTR_NAME_MAX) and one byte to spare,
 * so a longer mapped name is refused as the host would (ERANGE). */
#define HOST_NAME_ROOM (XATTR_NAME_MAX + 2)

static ssize_t xattr_call(struct vfsd_passthrough *fs, uint64_t nodeid, const struct xargs *a)
{
	char host_name[HOST_NAME_ROOM];
	struct xargs mapped = *a;
	struct fs_inode *inode;
	ssize_t r;

	if (!fs->cfg.xattr)
		return -ENOSYS;
	if (a->name && !fs_session(fs, FS_SESSION_ACL) && is_blocked_acl(a->name))
		return -ENOTSUP;
	if (a->name && fs->cfg.xattrmap) {
		r = vfsd_xattrmap_to_host(fs->cfg.xattrmap, a->name, host_name, sizeof(host_name));
		if (r < 0) {
			if (!fs->cfg.xattrmap->terminated && r == -EPERM)
				log_debug("xattrmap: no rule allows '%s'", a->name);
			/* As virtiofsd: a GET of a refused name finds nothing. */
			return r == -EPERM && a->op == XOP_GET ? -ENODATA : r;
		}
		mapped.name = host_name;
	}
	if (fs->cfg.readonly && (a->op == XOP_SET || a->op == XOP_REMOVE))
		return -EROFS;
	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	/* A new value replaces a remapped capability the host would not drop by itself. */
	if (a->op == XOP_SET)
		fs_xattr_drop_cap(fs, inode, -1);
	/* The guest kernel asks this when the caller could not keep the setgid bit (not in the
	 * file's group, no CAP_FSETID); vfsd, which has CAP_FSETID, drops it itself. */
	mode_t old_mode = 0;
	int killed = 0;

	if (a->op == XOP_SET && fs_session(fs, FS_SESSION_ACL) && (a->setxattr_flags & FUSE_SETXATTR_ACL_KILL_SGID) &&
	    strcmp(mapped.name, "system.posix_acl_access") == 0) {
		killed = kill_sgid(fs, inode, &old_mode);
		if (killed < 0) {
			inode_put(fs, inode);
			return killed;
		}
	}
	r = run_xattr(fs, inode, &mapped);
	if (r < 0 && killed > 0) {
		char name[16];

		/* the ACL was refused: the file keeps the mode it had */
		snprintf(name, sizeof(name), "%d", inode->fd);
		if (fchmodat(fs->proc_self_fd, name, old_mode, 0) < 0)
			log_warn("xattr: cannot restore the setgid bit: %s", strerror(errno));
	}
	inode_put(fs, inode);
	return r;
}

int fs_xattr_set_secctx(struct vfsd_passthrough *fs, const struct vfsd_req_ctx *ctx,
			uint64_t nodeid)
{
	char host_name[HOST_NAME_ROOM];
	struct xargs a = { .op = XOP_SET, .name = ctx->secctx_name, .buf = (void *)ctx->secctx,
			   .size = ctx->secctx_len };
	struct fs_inode *inode;
	ssize_t r;

	if (!ctx->secctx_name)
		return 0;
	/* The name goes through the xattr map (e.g. security.selinux stored as
	 * trusted.virtiofs.security.selinux). */
	if (fs->cfg.xattrmap) {
		r = vfsd_xattrmap_to_host(fs->cfg.xattrmap, a.name, host_name, sizeof(host_name));
		if (r < 0)
			return (int)r;
		a.name = host_name;
	}
	if (inode_get(fs, nodeid, &inode) < 0)
		return -EIO;
	r = run_xattr(fs, inode, &a);
	inode_put(fs, inode);
	if (r < 0)
		log_warn("xattr: cannot store the security context %s: %s", a.name,
			 strerror((int)-r));
	return r < 0 ? (int)r : 0;
}

int fs_xattr_init(struct vfsd_passthrough *fs)
{
	char host_name[HOST_NAME_ROOM];

	if (!fs->cfg.xattrmap ||
	    vfsd_xattrmap_to_host(fs->cfg.xattrmap, "security.capability", host_name,
				  sizeof(host_name)) < 0 ||
	    strcmp(host_name, "security.capability") == 0)
		return 0;
	fs->cap_xattr = strdup(host_name);
	return fs->cap_xattr ? 0 : -ENOMEM;
}

void fs_xattr_drop_cap(struct vfsd_passthrough *fs, const struct fs_inode *inode, int fd)
{
	struct xargs a = { .op = XOP_REMOVE, .name = fs->cap_xattr };
	ssize_t r;

	if (!fs->cap_xattr)
		return;
	if (fd >= 0)
		r = fremovexattr(fd, a.name) < 0 ? -errno : 0;
	else if (inode->type == S_IFREG)
		r = run_xattr(fs, inode, &a);
	else
		return; /* capabilities live on regular files only */
	if (r < 0 && r != -ENODATA && r != -ENOTSUP)
		log_warn("xattr: cannot remove %s: %s", a.name, strerror((int)-r));
}

int fs_getxattr(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, const char *name,
		void *buf, size_t size, size_t *len)
{
	struct xargs a = { .op = XOP_GET, .name = name, .buf = buf, .size = size };
	ssize_t r;

	(void)ctx;
	r = xattr_call(opaque, nodeid, &a);
	if (r < 0)
		return (int)r;
	*len = (size_t)r;
	return 0;
}

int fs_setxattr(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, const char *name,
		const void *value, size_t size, int flags, uint32_t setxattr_flags)
{
	struct xargs a = { .op = XOP_SET, .name = name, .buf = (void *)value, .size = size,
			   .flags = flags, .setxattr_flags = setxattr_flags };
	ssize_t r;

	(void)ctx;
	r = xattr_call(opaque, nodeid, &a);
	return r < 0 ? (int)r : 0;
}

int fs_removexattr(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
		   const char *name)
{
	struct xargs a = { .op = XOP_REMOVE, .name = name };
	ssize_t r;

	(void)ctx;
	r = xattr_call(opaque, nodeid, &a);
	return r < 0 ? (int)r : 0;
}

/*
 * Rewrites a host's NUL-separated list in place as the guest sees it: names through the
 * xattr map (hidden or stripped of a prefix), then without blocked ACL names and empty ones.
 * Returns the new length.
 */
static size_t filter_list(const struct vfsd_passthrough *fs, char *list, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		size_t n = strnlen(list + in, len - in);
		const char *name = list + in;

		if (n == len - in)
			break; /* not terminated: the host's list is always, so never seen */
		if (fs->cfg.xattrmap)
			name = vfsd_xattrmap_to_guest(fs->cfg.xattrmap, name);
		if (name && *name && (fs_session(fs, FS_SESSION_ACL) || !is_blocked_acl(name))) {
			size_t m = strlen(name);

			memmove(list + out, name, m); /* out <= name: shorter or in place */
			list[out + m] = '\0';
			out += m + 1;
		}
		in += n + 1;
	}
	return out;
}

int fs_listxattr(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, void *buf,
		 size_t size, size_t *len)
{
	struct xargs a = { .op = XOP_LIST, .buf = buf, .size = size };
	ssize_t r;

	(void)ctx;
	r = xattr_call(opaque, nodeid, &a);
	if (r < 0)
		return (int)r;
	/* Size 0 asks for the room needed: the host's unfiltered length, as virtiofsd. */
	*len = size ? filter_list(opaque, buf, (size_t)r) : (size_t)r;
	return 0;
}
