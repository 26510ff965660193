/*
 * File locks the host sees. POSIX record locks belong to a lock owner (a guest process); each
 * owner gets its own open of the inode and its locks are OFD locks on it, so they conflict
 * with other owners', with host processes' fcntl locks and with another guest's on the same
 * share. flock locks belong to an open file: the handle's own fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs/internal.h"

/* FUSE's "to the end of the file" (the kernel's OFFSET_MAX). */
#define LOCK_TO_EOF INT64_MAX

struct fs_lock_owner {
	uint64_t owner;
	int fd;
	struct fs_lock_owner *next;
};

static int to_flock(const struct fuse_file_lock *lk, struct flock *fl)
{
	if (lk->start > (uint64_t)INT64_MAX || lk->end > (uint64_t)INT64_MAX || lk->start > lk->end)
		return -EINVAL;
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	*fl = (struct flock){
		.l_type = (short)lk->type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)lk->start,
		.l_len = lk->end == LOCK_TO_EOF ? 0 : (off_t)(lk->end - lk->start + 1),
	};
	return 0;
}

/*
 * The owner's own open of the inode, made on first use (read-write when the host allows it,
 * else read-only: then only read locks can be taken). Returns a duplicate the caller closes:
 * the owner may go (FLUSH) while a lock request still waits on it.
 */
static int owner_fd(struct vfsd_passthrough *fs, struct fs_inode *inode, uint64_t owner,
		    bool create)
{
	struct fs_lock_owner *o;
	int fd = -ENOENT;

	pthread_mutex_lock(&fs->locks_lock);
	for (o = inode->lock_owners; o && o->owner != owner; o = o->next)
		;
	if (!o && create) {
		int ofd = fs_reopen(fs, inode, O_RDWR | O_NONBLOCK);

		if (ofd == -EACCES || ofd == -EROFS || ofd == -EPERM || ofd == -ETXTBSY)
			ofd = fs_reopen(fs, inode, O_RDONLY | O_NONBLOCK);
		o = ofd >= 0 ? malloc(sizeof(*o)) : NULL;
		if (o) {
			*o = (struct fs_lock_owner){ .owner = owner, .fd = ofd, .next = inode->lock_owners };
			inode->lock_owners = o;
		} else {
			fd = ofd < 0 ? ofd : -ENOMEM;
			if (ofd >= 0)
				close(ofd);
		}
	}
	if (o) {
		fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&fs->locks_lock);
	return fd;
}

/*
 * The common start of GETLK and SETLK: lk decoded into fl, and the owner's open of nodeid (a
 * duplicate). It is made if missing unless only_if_held; then -ENOENT means no open.
 */
static int posix_owner_fd(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t owner,
			  const struct fuse_file_lock *lk, struct flock *fl, bool only_if_held)
{
	struct fs_inode *inode;
	int fd, r;

	if (!fs->cfg.posix_lock)
		return -ENOSYS;
	r = to_flock(lk, fl);
	if (r < 0)
		return r;
	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	fd = owner_fd(fs, inode, owner, !only_if_held);
	inode_put(fs, inode);
	return fd;
}

int fs_getlk(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	     uint64_t owner, struct fuse_file_lock *lk)
{
	struct flock fl;
	/* The owner's own locks never conflict with its query: ask on its open. */
	int fd = posix_owner_fd(opaque, nodeid, owner, lk, &fl, false), r;

	(void)ctx;
	(void)fh;
	if (fd < 0)
		return fd;
	r = fcntl(fd, F_OFD_GETLK, &fl) < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	lk->type = (uint32_t)fl.l_type;
	if (fl.l_type != F_UNLCK) {
		lk->start = (uint64_t)fl.l_start;
		lk->end = fl.l_len == 0 ? LOCK_TO_EOF : (uint64_t)(fl.l_start + fl.l_len - 1);
		lk->pid = fl.l_pid > 0 ? (uint32_t)fl.l_pid : 0; /* an OFD lock has no pid */
	}
	return 0;
}

static int do_flock(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t fh, uint32_t type,
		    bool wait)
{
	struct fs_handle *h = handle_get(fs, nodeid, fh);
	int op, r;

	if (!h)
		return -EBADF;
	op = type == F_RDLCK ? LOCK_SH : type == F_WRLCK ? LOCK_EX : LOCK_UN;
	r = flock(h->fd, op | (wait ? 0 : LOCK_NB)) < 0 ? -errno : 0;
	handle_put(fs, h);
	return r == -EWOULDBLOCK ? -EAGAIN : r;
}

int fs_setlk(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	     uint64_t owner, const struct fuse_file_lock *lk, bool is_flock, bool wait)
{
	struct vfsd_passthrough *fs = opaque;
	struct flock fl;
	int fd, r;

	(void)ctx;
	if (is_flock) {
		if (!fs->cfg.flock)
			return -ENOSYS;
		if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
			return -EINVAL;
		return do_flock(fs, nodeid, fh, lk->type, wait);
	}
	/* An owner without an open holds no locks: nothing to unlock. */
	fd = posix_owner_fd(fs, nodeid, owner, lk, &fl, lk->type == F_UNLCK);
	if (fd == -ENOENT && lk->type == F_UNLCK)
		return 0;
	if (fd < 0)
		return fd;
	r = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0 ? -errno : 0;
	close(fd);
	return r == -EACCES ? -EAGAIN : r;
}

void fs_forget_lock_owner(void *opaque, uint64_t nodeid, uint64_t owner)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *inode;
	struct fs_lock_owner **p, *o = NULL;

	if (inode_get(fs, nodeid, &inode) < 0)
		return;
	pthread_mutex_lock(&fs->locks_lock);
	for (p = &inode->lock_owners; *p; p = &(*p)->next) {
		if ((*p)->owner == owner) {
			o = *p;
			*p = o->next;
			break;
		}
	}
	pthread_mutex_unlock(&fs->locks_lock);
	inode_put(fs, inode);
	if (o) {
		close(o->fd); /* its OFD locks go with the last reference to the open */
		free(o);
	}
}

void fs_lock_owners_free(struct fs_inode *inode)
{
	while (inode->lock_owners) {
		struct fs_lock_owner *o = inode->lock_owners;

		inode->lock_owners = o->next;
		close(o->fd);
		free(o);
	}
}
