/* Extended attributes (--xattr): get, set, list and remove, on the inode itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "fs/internal.h"

/* ACL names are refused unless ACL mode is on (it is not yet): the guest kernel would apply
 * them itself otherwise, and a host ACL would not be what the guest believes. */
static const char *const acl_names[] = { "system.posix_acl_access", "system.posix_acl_default" };

static bool is_blocked_acl(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(acl_names) / sizeof(acl_names[0]); i++) {
		/* As the reference: any prefix of an ACL name, the full name included. */
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

static ssize_t xattr_call(struct vfsd_passthrough *fs, uint64_t nodeid, const struct xargs *a)
{
	struct fs_inode *inode;
	ssize_t r;

	if (!fs->cfg.xattr)
		return -ENOSYS;
	if (a->name && is_blocked_acl(a->name))
		return -ENOTSUP;
	if (fs->cfg.readonly && (a->op == XOP_SET || a->op == XOP_REMOVE))
		return -EROFS;
	inode = inode_get(fs, nodeid);
	if (!inode)
		return -EBADF;
	r = run_xattr(fs, inode, a);
	inode_put(fs, inode);
	return r;
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
		const void *value, size_t size, int flags)
{
	struct xargs a = { .op = XOP_SET, .name = name, .buf = (void *)value, .size = size,
			   .flags = flags };
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

/* Drops the blocked ACL names from a NUL-separated list in place; returns the new length. */
static size_t filter_list(char *list, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		size_t n = strnlen(list + in, len - in);

		if (n > 0 && !is_blocked_acl(list + in)) {
			memmove(list + out, list + in, n);
			list[out + n] = '\0';
			out += n + 1;
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
	/* Size 0 asks for the room needed: the host's unfiltered length, as the reference. */
	*len = size ? filter_list(buf, (size_t)r) : (size_t)r;
	return 0;
}
