/* Open files: open, create, read, write, flush, fsync, release. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/util.h"
#include "fs/internal.h"

/* Open flags the guest asks for, adjusted the way virtiofsd does. */
static int host_open_flags(const struct vfsd_passthrough *fs, uint32_t flags)
{
	/* Appends are done per write (RWF_APPEND). */
	uint32_t strip = O_APPEND | O_CREAT | O_EXCL | O_NOCTTY;

	if (!fs->cfg.allow_direct_io)
		strip |= O_DIRECT;
	if (!fs->cfg.preserve_noatime)
		strip |= O_NOATIME;
	flags &= ~strip;
	/* With the writeback cache the guest reads pages it only writes to. */
	if (fs_session(fs, FS_SESSION_WRITEBACK) && (flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~(uint32_t)O_ACCMODE) | O_RDWR;
	return (int)flags | O_CLOEXEC;
}

/* The policy of --readonly for OPEN: reads only, nothing that would change the file. */
static int readonly_check(uint32_t flags)
{
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_EXCL))
		return -EROFS;
	if (flags & (O_TRUNC | __O_TMPFILE))
		return -EINVAL;
	return 0;
}

int fs_reopen_flags(const struct vfsd_passthrough *fs, uint32_t flags)
{
	/* Nothing that creates or truncates: the file is there, as the source had it. */
	flags &= ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | __O_TMPFILE | O_PATH);
	if (fs->cfg.readonly) {
		int r = readonly_check(flags);

		if (r < 0)
			return r;
	}
	return host_open_flags(fs, flags);
}

/*
 * An OPEN of an object with no link left that the guest did not remove: it was deleted on
 * the host (or by another guest) while this guest's dentry for it was still trusted (cache
 * auto and always keep dentries for a while). The guest opens it by a name that no longer
 * exists; opening it anyway hands out a file nobody else can see. A SQLite writer in the
 * guest then took another writer's deleted journal for a hot one, or wrote its own journal
 * into a deleted file, and failed with "disk I/O error" when deleting it. ESTALE makes a
 * Linux guest look the path up again (LOOKUP_REVAL) and find it gone, as an NFS client
 * does (docs/error-handling.md, "Deleted behind the guest's back").
 */
static bool deleted_behind_guest(const struct fs_inode *inode, int fd)
{
	struct stat sb;

	return !__atomic_load_n(&inode->guest_removed, __ATOMIC_RELAXED) && fstat(fd, &sb) == 0 &&
	       sb.st_nlink == 0;
}

static int open_inode(struct vfsd_passthrough *fs, uint64_t nodeid, int flags, bool dir,
		      struct fuse_open_out *out)
{
	struct fs_inode *inode;
	int fd, r;

	r = inode_get(fs, nodeid, &inode);
	if (r < 0)
		return r;
	fd = fs_reopen(fs, inode, flags);
	if (fd >= 0 && deleted_behind_guest(inode, fd)) {
		close(fd);
		fd = -ESTALE;
	}
	if (fd < 0) {
		inode_put(fs, inode);
		return fd;
	}
	out->open_flags = fs_open_flags(fs, dir);
	out->padding = 0;
	r = handle_new(fs, inode, fd, &out->fh);
	inode_put(fs, inode);
	return r;
}

int fs_open(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t flags,
	    uint32_t open_flags, struct fuse_open_out *out)
{
	struct vfsd_passthrough *fs = opaque;
	bool fsetid_dropped = false;
	int r;

	(void)ctx;
	if (fs->cfg.readonly) {
		r = readonly_check(flags);
		if (r < 0)
			return r;
	}
	/* KILLPRIV_V2: an O_TRUNC open by a guest user without CAP_FSETID drops set-id bits. */
	if (fs_session(fs, FS_SESSION_KILLPRIV_V2) && (open_flags & FUSE_OPEN_KILL_SUIDGID))
		fsetid_dropped = creds_drop_fsetid();
	r = open_inode(fs, nodeid, host_open_flags(fs, flags), false, out);
	if (fsetid_dropped)
		creds_restore_fsetid();
	if (r == 0 && (flags & O_TRUNC) && fs->cap_xattr) {
		struct fs_handle *h = handle_get(fs, nodeid, out->fh);

		if (h) {
			fs_xattr_drop_cap(fs, NULL, h->fd);
			handle_put(fs, h);
		}
	}
	return r;
}

int fs_opendir(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t flags,
	       struct fuse_open_out *out)
{
	struct vfsd_passthrough *fs = opaque;

	(void)ctx;
	(void)flags;
	return open_inode(fs, nodeid, O_RDONLY | O_DIRECTORY, true, out);
}

/*
 * CREATE's and TMPFILE's last step: fd (consumed) becomes the handle of the entry just made,
 * which holds one guest reference; if that fails the reference is dropped again.
 */
static int open_new_entry(struct vfsd_passthrough *fs, const struct fuse_entry_out *entry, int fd,
			  struct fuse_open_out *open)
{
	struct fs_inode *inode;
	int r = inode_get(fs, entry->nodeid, &inode);

	if (r < 0) {
		close(fd);
		r = -EIO; /* the entry was made a moment ago: it cannot be stale */
	} else {
		open->open_flags = fs_open_flags(fs, false);
		open->padding = 0;
		r = handle_new(fs, inode, fd, &open->fh);
		inode_put(fs, inode);
	}
	if (r < 0)
		fs_forget(fs, entry->nodeid, 1);
	return r;
}

int fs_create(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	      uint32_t flags, uint32_t mode, uint32_t umask, uint32_t open_flags,
	      struct fuse_entry_out *entry, struct fuse_open_out *open)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *dir;
	struct fs_creds saved;
	int fd, r;

	if (fs->cfg.readonly) {
		/* An existing file may still be opened for reading. */
		r = inode_get(fs, parent, &dir);
		if (r < 0)
			return r;
		r = fs_lookup_at(fs, dir, name, entry);
		inode_put(fs, dir);
		if (r == -ENOENT)
			return -EROFS;
		if (r == 0) {
			r = fs_open(fs, ctx, entry->nodeid, flags & ~O_CREAT, open_flags, open);
			if (r < 0)
				fs_forget(fs, entry->nodeid, 1);
		}
		return r;
	}
	r = inode_get(fs, parent, &dir);
	if (r < 0)
		return r;
	r = creds_switch(fs, ctx, umask, &saved);
	if (r < 0) {
		inode_put(fs, dir);
		return r;
	}
	fd = fs_open_child(fs, dir->fd, name, (int)(flags & ~(O_APPEND | O_NOCTTY)) | O_CREAT | O_EXCL,
			   mode);
	creds_restore(&saved);
	if (fd == -EEXIST && !(flags & O_EXCL)) {
		/* Someone else made it first: open what is there. */
		r = fs_lookup_at(fs, dir, name, entry);
		inode_put(fs, dir);
		if (r < 0)
			return r;
		r = fs_open(fs, ctx, entry->nodeid, flags, open_flags, open);
		if (r < 0)
			fs_forget(fs, entry->nodeid, 1);
		return r;
	}
	if (fd < 0) {
		inode_put(fs, dir);
		return fd;
	}
	r = fs_lookup_open(fs, dir, name, entry);
	if (r == 0 && ctx->secctx_name) {
		r = fs_xattr_set_secctx(fs, ctx, entry->nodeid);
		if (r < 0) {
			/* the label cannot be stored: the creation is undone */
			unlinkat(dir->fd, name, 0);
			fs_forget(fs, entry->nodeid, 1);
		}
	}
	inode_put(fs, dir);
	if (r < 0) {
		close(fd);
		return r;
	}
	return open_new_entry(fs, entry, fd, open);
}

/*
 * TMPFILE (beyond virtiofsd): an unnamed file in the directory, open, as O_TMPFILE makes
 * it. The inode is held like any other (an O_PATH fd to it), so a LINK of it gives it a name,
 * unless the guest asked O_EXCL.
 */
int fs_tmpfile(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t parent, uint32_t flags,
	       uint32_t mode, uint32_t umask, uint32_t open_flags, struct fuse_entry_out *entry,
	       struct fuse_open_out *open)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_inode *dir;
	struct fs_creds saved;
	struct statx st;
	char procname[16];
	int fd, pathfd, r, how;

	(void)open_flags;
	if (fs->cfg.readonly)
		return -EROFS;
	if ((flags & O_ACCMODE) == O_RDONLY)
		return -EINVAL; /* as open(2): O_TMPFILE needs write access */
	how = host_open_flags(fs, flags & ~(uint32_t)O_TMPFILE) | O_TMPFILE | (int)(flags & O_EXCL);
	r = inode_get(fs, parent, &dir);
	if (r < 0)
		return r;
	r = creds_switch(fs, ctx, umask, &saved);
	if (r < 0) {
		inode_put(fs, dir);
		return r;
	}
	fd = openat(dir->fd, ".", how, mode & 07777);
	if (fd < 0)
		fd = -errno;
	creds_restore(&saved);
	inode_put(fs, dir);
	if (fd < 0)
		return fd;
	snprintf(procname, sizeof(procname), "%d", fd);
	pathfd = openat(fs->proc_self_fd, procname, O_PATH | O_CLOEXEC);
	r = pathfd < 0 ? -errno : fs_stat(pathfd, &st);
	if (r < 0) {
		if (pathfd >= 0)
			close(pathfd);
		close(fd);
		return r;
	}
	r = inode_register(fs, NULL, NULL, pathfd, &st, entry); /* no name: keeps its fd */
	if (r == 0)
		inode_guest_removed(fs, &st); /* nameless by the guest's wish */
	if (r == 0 && ctx->secctx_name) {
		r = fs_xattr_set_secctx(fs, ctx, entry->nodeid);
		if (r < 0)
			fs_forget(fs, entry->nodeid, 1);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return open_new_entry(fs, entry, fd, open);
}

/*
 * READ's and WRITE's loop: size bytes between fd at off and iov, going on after a short
 * transfer until the end of file (a read) or an error. Returns 0 with *done bytes moved, or
 * -errno when nothing could be (an error after some bytes is the short count, as the kernel
 * reports it).
 */
static int transfer(int fd, bool write, const struct iovec *iov, int cnt, size_t size,
		    uint64_t off, int rwf, size_t *done)
{
	struct iovec rest[1024];

	*done = 0;
	while (*done < size) {
		/* The whole request at first; only what is left after a short one is re-sliced. */
		int n = *done ? iov_slice(iov, cnt, *done, size - *done, rest, ARRAY_SIZE(rest)) : cnt;
		const struct iovec *v = *done ? rest : iov;
		off_t at = (off_t)(off + *done);
		ssize_t moved = write ? pwritev2(fd, v, n, at, rwf) : preadv2(fd, v, n, at, rwf);

		if (moved < 0 && errno == EINTR)
			continue;
		if (moved < 0)
			return *done ? 0 : -errno;
		if (moved == 0)
			break;
		*done += (size_t)moved;
	}
	return 0;
}

int fs_read(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	    uint64_t off, size_t size, const struct iovec *dst, int cnt, size_t *done)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *h = handle_get(fs, nodeid, fh);
	int r;

	(void)ctx;
	if (!h)
		return -EBADF;
	r = transfer(h->fd, false, dst, cnt, size, off, 0, done);
	handle_put(fs, h);
	return r;
}

int fs_write(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	     uint64_t off, uint32_t write_flags, uint32_t flags, const struct iovec *src, int cnt,
	     size_t *done)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *h;
	bool fsetid_dropped = false;
	struct stat st;
	int rwf = 0, r;

	(void)ctx;
	if (fs->cfg.readonly)
		return -EROFS;
	h = handle_get(fs, nodeid, fh);
	if (!h)
		return -EBADF;
	/*
	 * The writer lacks CAP_FSETID in the guest: set-id bits must go, as the kernel drops them
	 * for an unprivileged writer. The guest cannot do it itself for direct I/O (cache=never),
	 * so it asks with this flag; vfsd writes without CAP_FSETID and the host kernel does it.
	 */
	if ((write_flags & FUSE_WRITE_KILL_SUIDGID) && fstat(h->fd, &st) == 0 &&
	    (st.st_mode & (S_ISUID | S_ISGID)))
		fsetid_dropped = creds_drop_fsetid();
	fs_xattr_drop_cap(fs, NULL, h->fd);
	/* An uncached O_APPEND write goes to the host's end of file, wherever that is now. */
	if (!(write_flags & FUSE_WRITE_CACHE) && (flags & O_APPEND))
		rwf = RWF_APPEND;
	r = transfer(h->fd, true, src, cnt, iov_length(src, cnt), off, rwf, done);
	if (fsetid_dropped)
		creds_restore_fsetid();
	handle_put(fs, h);
	return r;
}

int fs_release(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh)
{
	(void)ctx;
	return handle_release(fs, nodeid, fh);
}

int fs_flush(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *h = handle_get(fs, nodeid, fh);
	int fd, r = 0;

	(void)ctx;
	if (!h)
		return -EBADF;
	/* close() of a duplicate gives the host filesystem its close-time semantics. */
	fd = dup(h->fd);
	if (fd < 0 || close(fd) < 0)
		r = -errno;
	handle_put(fs, h);
	return r;
}

int fs_fsync(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	     bool datasync)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *h = handle_get(fs, nodeid, fh);
	int r;

	(void)ctx;
	if (!h)
		return -EBADF;
	r = (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0 ? -errno : 0;
	handle_put(fs, h);
	return r;
}

int fs_fallocate(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		 uint32_t mode, uint64_t off, uint64_t len)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *h;
	int r;

	(void)ctx;
	if (fs->cfg.readonly)
		return -EROFS;
	if (off > INT64_MAX || len > INT64_MAX)
		return -EINVAL;
	h = handle_get(fs, nodeid, fh);
	if (!h)
		return -EBADF;
	r = fallocate(h->fd, (int)mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
	handle_put(fs, h);
	return r;
}

int fs_lseek(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	     uint64_t off, uint32_t whence, uint64_t *out)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *h;
	off_t r;

	(void)ctx;
	if (whence > SEEK_HOLE || off > INT64_MAX)
		return -EINVAL;
	h = handle_get(fs, nodeid, fh);
	if (!h)
		return -EBADF;
	pthread_mutex_lock(&h->lock);
	r = lseek(h->fd, (off_t)off, (int)whence);
	if (r >= 0) {
		/* A directory stream restarts where the fd now is. */
		h->dents_len = h->dents_pos = 0;
		h->dir_off = (uint64_t)r;
	}
	pthread_mutex_unlock(&h->lock);
	handle_put(fs, h);
	if (r < 0)
		return -errno;
	*out = (uint64_t)r;
	return 0;
}

int fs_copy_file_range(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid_in,
		       uint64_t fh_in, uint64_t off_in, uint64_t nodeid_out, uint64_t fh_out,
		       uint64_t off_out, uint64_t len, uint64_t flags, size_t *done)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *in, *out;
	loff_t oi = (loff_t)off_in, oo = (loff_t)off_out;
	ssize_t n;
	int r = 0;

	(void)ctx;
	if (fs->cfg.readonly)
		return -EROFS;
	if (off_in > INT64_MAX || off_out > INT64_MAX || flags > UINT32_MAX)
		return -EINVAL;
	in = handle_get(fs, nodeid_in, fh_in);
	out = handle_get(fs, nodeid_out, fh_out);
	if (!in || !out) {
		r = -EBADF;
	} else {
		n = copy_file_range(in->fd, &oi, out->fd, &oo, MIN(len, (uint64_t)SSIZE_MAX),
				    (unsigned int)flags);
		if (n < 0)
			r = -errno;
		else
			*done = (size_t)n;
	}
	if (in)
		handle_put(fs, in);
	if (out)
		handle_put(fs, out);
	return r;
}
