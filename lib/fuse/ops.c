/* The opcode table: one decoder per FUSE opcode, each calling the filesystem. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fuse/request.h"

#define FS(req) ((req)->srv->fs)
#define OPS(req) ((req)->srv->ops)
/* Calls a filesystem op; one the filesystem does not provide answers ENOSYS. */
#define FS_CALL(req, op, ...) \
	(OPS(req)->op ? OPS(req)->op(FS(req), __VA_ARGS__) : -ENOSYS)

/* The minor version this server speaks, and the oldest it accepts. */
#define FUSE_SERVER_MINOR 38
#define FUSE_SERVER_MIN_MINOR 27

/* Flags agreed whenever the kernel offers them. */
static const uint64_t always_supported = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
					 FUSE_HAS_IOCTL_DIR | FUSE_AUTO_INVAL_DATA | FUSE_ASYNC_DIO |
					 FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_INIT_EXT |
					 FUSE_CREATE_SUPP_GROUP;

/* The part of fuse_init_in every kernel sends; flags2 and the rest follow with INIT_EXT. */
#define FUSE_INIT_IN_BASE offsetof(struct fuse_init_in, flags2)
#define FUSE_INIT_IN_EXT (sizeof(struct fuse_init_in) - FUSE_INIT_IN_BASE)

/* A Linux 6.1 guest's INIT flags (protocol 7.38), for a session resumed from a state that
 * does not say what was agreed (the Rust virtiofsd's). */
#define FUSE_LINUX_6_1_FLAGS                                                                      \
	(FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT |          \
	 FUSE_BIG_WRITES | FUSE_DONT_MASK | FUSE_SPLICE_WRITE | FUSE_SPLICE_MOVE |                 \
	 FUSE_SPLICE_READ | FUSE_FLOCK_LOCKS | FUSE_HAS_IOCTL_DIR | FUSE_AUTO_INVAL_DATA |        \
	 FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_WRITEBACK_CACHE |    \
	 FUSE_NO_OPEN_SUPPORT | FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV | FUSE_POSIX_ACL |     \
	 FUSE_ABORT_ERROR | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_NO_OPENDIR_SUPPORT |       \
	 FUSE_EXPLICIT_INVAL_DATA | FUSE_MAP_ALIGNMENT | FUSE_SUBMOUNTS |                          \
	 FUSE_HANDLE_KILLPRIV_V2 | FUSE_SETXATTR_EXT | FUSE_INIT_EXT | FUSE_SECURITY_CTX)

int fuse_server_resume(struct fuse_server *srv, bool known, uint32_t minor, uint64_t enabled,
		       uint64_t *agreed)
{
	uint64_t capable = known ? enabled : FUSE_LINUX_6_1_FLAGS, want = 0, now;
	int r;

	if (!known)
		minor = 38;
	if (minor < FUSE_SERVER_MIN_MINOR || minor > FUSE_SERVER_MINOR + 1000)
		return -EPROTO;
	if (minor < 38)
		capable &= ~FUSE_SECURITY_CTX;
	pthread_mutex_lock(&srv->lock);
	__atomic_store_n(&srv->initialized, false, __ATOMIC_RELEASE);
	r = srv->ops->init(srv->fs, capable, &want);
	if (r == 0) {
		now = capable & (want | always_supported);
		__atomic_store_n(&srv->enabled, now, __ATOMIC_RELAXED);
		__atomic_store_n(&srv->minor, minor, __ATOMIC_RELAXED);
		if (agreed)
			*agreed = now;
	}
	pthread_mutex_unlock(&srv->lock);
	return r;
}

void fuse_server_resumed(struct fuse_server *srv)
{
	__atomic_store_n(&srv->initialized, true, __ATOMIC_RELEASE);
	log_info("fuse: session resumed, kernel 7.%u, flags 0x%llx", srv->minor,
		 (unsigned long long)srv->enabled);
}

static int do_init(struct fuse_req *req)
{
	struct fuse_init_in in = { 0 };
	const void *base = req_arg(req, FUSE_INIT_IN_BASE);
	struct fuse_server *srv = req->srv;
	struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_SERVER_MINOR };
	uint64_t capable, want = 0, enabled = 0;
	long page = sysconf(_SC_PAGESIZE);
	int r;

	memcpy(&in, base, FUSE_INIT_IN_BASE);
	capable = in.flags;
	if (in.flags & FUSE_INIT_EXT) {
		const void *ext = req_arg(req, FUSE_INIT_IN_EXT);

		if (!ext)
			return -EINVAL;
		memcpy(&in.flags2, ext, sizeof(in.flags2));
		capable |= (uint64_t)in.flags2 << 32;
	}
	if (in.major < 7)
		return -EPROTO;
	if (in.major > 7)
		return reply_struct(req, &out, sizeof(out)); /* the kernel retries with 7 */
	if (in.minor < FUSE_SERVER_MIN_MINOR) {
		log_error("fuse: kernel protocol 7.%u is older than 7.%u", in.minor,
			  FUSE_SERVER_MIN_MINOR);
		return -EPROTO;
	}

	/* Before 7.38 a security context came as a bare trailing argument, not as an extension
	 * record: vfsd parses only the records, so such a kernel is not offered to the fs. */
	if (in.minor < 38)
		capable &= ~FUSE_SECURITY_CTX;

	pthread_mutex_lock(&srv->lock);
	if (srv->initialized) {
		log_info("fuse: INIT on a live session, starting over");
		__atomic_store_n(&srv->initialized, false, __ATOMIC_RELEASE);
		srv->ops->destroy(srv->fs);
	}
	r = srv->ops->init(srv->fs, capable, &want);
	if (r == 0) {
		enabled = capable & (want | always_supported);
		__atomic_store_n(&srv->enabled, enabled, __ATOMIC_RELAXED);
		__atomic_store_n(&srv->minor, in.minor, __ATOMIC_RELAXED);
		__atomic_store_n(&srv->initialized, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&srv->lock);
	if (r < 0)
		return r;
	log_info("fuse: session started, kernel 7.%u, flags 0x%llx", in.minor,
		 (unsigned long long)enabled);

	out.max_readahead = in.max_readahead;
	out.flags = (uint32_t)enabled;
	out.flags2 = (uint32_t)(enabled >> 32);
	out.max_background = UINT16_MAX;
	out.congestion_threshold = (UINT16_MAX / 4) * 3;
	out.max_write = FUSE_SERVER_MAX_BUFFER;
	out.time_gran = 1;
	out.max_pages = (FUSE_SERVER_MAX_BUFFER - 1) / page + 1;
	return reply_struct(req, &out, sizeof(out));
}

static int do_destroy(struct fuse_req *req)
{
	fuse_server_reset(req->srv);
	return 0;
}

/* Names from the guest: one path component, never empty, ".", ".." or containing '/'. */
static int check_name(const char *name)
{
	size_t len;

	if (!name)
		return -EINVAL;
	len = strlen(name);
	if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (len > 255)
		return -ENAMETOOLONG;
	return 0;
}

static int next_name(struct fuse_req *req, const char **name)
{
	*name = req_name(req);
	return check_name(*name);
}

static int reply_entry(struct fuse_req *req, int r, const struct fuse_entry_out *e)
{
	return r < 0 ? r : reply_struct(req, e, sizeof(*e));
}

static int do_lookup(struct fuse_req *req)
{
	struct fuse_entry_out e;
	const char *name;
	int r = next_name(req, &name);

	if (r < 0)
		return r;
	r = FS_CALL(req, lookup, &req->ctx, req->in.nodeid, name, &e);
	return reply_entry(req, r, &e);
}

static int do_forget(struct fuse_req *req)
{
	const struct fuse_forget_in *in = req_arg(req, sizeof(*in));

	if (OPS(req)->forget)
		OPS(req)->forget(FS(req), req->in.nodeid, in->nlookup);
	return 0;
}

static int do_batch_forget(struct fuse_req *req)
{
	const struct fuse_batch_forget_in *in = req_arg(req, sizeof(*in));
	const struct fuse_forget_one *one;
	uint64_t bytes = (uint64_t)in->count * sizeof(*one);

	if (bytes > FUSE_SERVER_MAX_BUFFER)
		return -ENOMEM;
	one = req_arg(req, bytes);
	if (!one)
		return -EINVAL;
	for (uint32_t i = 0; OPS(req)->forget && i < in->count; i++)
		OPS(req)->forget(FS(req), one[i].nodeid, one[i].nlookup);
	return 0;
}

static int do_getattr(struct fuse_req *req)
{
	struct fuse_attr_out out;
	int r = FS_CALL(req, getattr, &req->ctx, req->in.nodeid, &out);

	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

static int do_setattr(struct fuse_req *req)
{
	const struct fuse_setattr_in *in = req_arg(req, sizeof(*in));
	struct fuse_attr_out out;
	int r = FS_CALL(req, setattr, &req->ctx, req->in.nodeid, in, &out);

	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

static int do_readlink(struct fuse_req *req)
{
	char buf[4096];
	size_t len;
	int r = FS_CALL(req, readlink, &req->ctx, req->in.nodeid, buf, sizeof(buf), &len);

	if (r < 0)
		return r;
	if (len > req_reply_capacity(req))
		return -ERANGE;
	iov_from_buf(req->wr, req->nwr, sizeof(struct fuse_out_header), buf, len);
	return reply_direct(req, len);
}

static int do_symlink(struct fuse_req *req)
{
	struct fuse_entry_out e;
	const char *name, *target;
	int r = next_name(req, &name);

	if (r < 0)
		return r;
	target = req_name(req);
	if (!target || !*target)
		return -EINVAL;
	if (strlen(target) >= 4096)
		return -ENAMETOOLONG;
	r = FS_CALL(req, symlink, &req->ctx, req->in.nodeid, name, target, &e);
	return reply_entry(req, r, &e);
}

static int do_mknod(struct fuse_req *req)
{
	const struct fuse_mknod_in *in = req_arg(req, sizeof(*in));
	struct fuse_entry_out e;
	const char *name;
	int r = next_name(req, &name);

	if (r < 0)
		return r;
	r = FS_CALL(req, mknod, &req->ctx, req->in.nodeid, name, in->mode, in->rdev,
			    in->umask, &e);
	return reply_entry(req, r, &e);
}

static int do_mkdir(struct fuse_req *req)
{
	const struct fuse_mkdir_in *in = req_arg(req, sizeof(*in));
	struct fuse_entry_out e;
	const char *name;
	int r = next_name(req, &name);

	if (r < 0)
		return r;
	r = FS_CALL(req, mkdir, &req->ctx, req->in.nodeid, name, in->mode, in->umask, &e);
	return reply_entry(req, r, &e);
}

static int do_unlink(struct fuse_req *req)
{
	const char *name;
	int r = next_name(req, &name);

	return r < 0 ? r : FS_CALL(req, unlink, &req->ctx, req->in.nodeid, name);
}

static int do_rmdir(struct fuse_req *req)
{
	const char *name;
	int r = next_name(req, &name);

	return r < 0 ? r : FS_CALL(req, rmdir, &req->ctx, req->in.nodeid, name);
}

static int rename_common(struct fuse_req *req, uint64_t newdir, uint32_t flags)
{
	const char *oldname, *newname;
	int r = next_name(req, &oldname);

	if (r < 0)
		return r;
	r = next_name(req, &newname);
	if (r < 0)
		return r;
	return FS_CALL(req, rename, &req->ctx, req->in.nodeid, oldname, newdir, newname,
				flags);
}

static int do_rename(struct fuse_req *req)
{
	const struct fuse_rename_in *in = req_arg(req, sizeof(*in));

	return rename_common(req, in->newdir, 0);
}

static int do_rename2(struct fuse_req *req)
{
	const struct fuse_rename2_in *in = req_arg(req, sizeof(*in));

	return rename_common(req, in->newdir, in->flags);
}

static int do_link(struct fuse_req *req)
{
	const struct fuse_link_in *in = req_arg(req, sizeof(*in));
	struct fuse_entry_out e;
	const char *name;
	int r = next_name(req, &name);

	if (r < 0)
		return r;
	r = FS_CALL(req, link, &req->ctx, in->oldnodeid, req->in.nodeid, name, &e);
	return reply_entry(req, r, &e);
}

static int do_open(struct fuse_req *req)
{
	const struct fuse_open_in *in = req_arg(req, sizeof(*in));
	struct fuse_open_out out;
	int r = FS_CALL(req, open, &req->ctx, req->in.nodeid, in->flags, in->open_flags, &out);

	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

static int do_opendir(struct fuse_req *req)
{
	const struct fuse_open_in *in = req_arg(req, sizeof(*in));
	struct fuse_open_out out;
	int r = FS_CALL(req, opendir, &req->ctx, req->in.nodeid, in->flags, &out);

	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

/* CREATE's and TMPFILE's reply: the new entry and its open. */
struct create_out {
	struct fuse_entry_out e;
	struct fuse_open_out o;
};

static int do_create(struct fuse_req *req)
{
	const struct fuse_create_in *in = req_arg(req, sizeof(*in));
	struct create_out out;
	const char *name;
	int r = next_name(req, &name);

	if (r < 0)
		return r;
	r = FS_CALL(req, create, &req->ctx, req->in.nodeid, name, in->flags, in->mode,
			     in->umask, in->open_flags, &out.e, &out.o);
	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

/* TMPFILE: CREATE's arguments and reply; the name the kernel sends ("/") is not used. */
static int do_tmpfile(struct fuse_req *req)
{
	const struct fuse_create_in *in = req_arg(req, sizeof(*in));
	struct create_out out;
	int r;

	if (!req_name(req))
		return -EINVAL;
	r = FS_CALL(req, tmpfile, &req->ctx, req->in.nodeid, in->flags, in->mode, in->umask,
		    in->open_flags, &out.e, &out.o);
	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

static int do_read(struct fuse_req *req)
{
	const struct fuse_read_in *in = req_arg(req, sizeof(*in));
	struct iovec iov[VFSD_IOV_MAX];
	size_t size = MIN((size_t)in->size, req_reply_capacity(req)), done = 0;
	int cnt, r;

	if (in->size > FUSE_SERVER_MAX_BUFFER)
		return -EINVAL;
	cnt = req_reply_iov(req, size, iov, VFSD_IOV_MAX);
	r = FS_CALL(req, read, &req->ctx, req->in.nodeid, in->fh, in->offset, size, iov, cnt,
			   &done);
	return r < 0 ? r : reply_direct(req, done);
}

static int do_write(struct fuse_req *req)
{
	const struct fuse_write_in *in = req_arg(req, sizeof(*in));
	struct iovec iov[VFSD_IOV_MAX];
	struct fuse_write_out out = { 0 };
	size_t done = 0, off = sizeof(struct fuse_in_header) + sizeof(*in);
	int cnt, r;

	if (in->size > req->arglen - sizeof(*in) || in->size > FUSE_SERVER_MAX_BUFFER)
		return -EINVAL;
	cnt = iov_slice(req->rd, req->nrd, off, in->size, iov, VFSD_IOV_MAX);
	if (iov_length(iov, cnt) != in->size)
		return -EINVAL;
	r = FS_CALL(req, write, &req->ctx, req->in.nodeid, in->fh, in->offset, in->write_flags,
			    in->flags, iov, cnt, &done);
	if (r < 0)
		return r;
	out.size = done;
	return reply_struct(req, &out, sizeof(out));
}

static int do_statfs(struct fuse_req *req)
{
	struct fuse_statfs_out out;
	int r;

	memset(&out, 0, sizeof(out));
	r = FS_CALL(req, statfs, &req->ctx, req->in.nodeid, &out.st);
	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

static int do_release(struct fuse_req *req)
{
	const struct fuse_release_in *in = req_arg(req, sizeof(*in));

	return FS_CALL(req, release, &req->ctx, req->in.nodeid, in->fh);
}

static int do_fsync(struct fuse_req *req)
{
	const struct fuse_fsync_in *in = req_arg(req, sizeof(*in));

	return FS_CALL(req, fsync, &req->ctx, req->in.nodeid, in->fh, in->fsync_flags & 1);
}

static int do_flush(struct fuse_req *req)
{
	const struct fuse_flush_in *in = req_arg(req, sizeof(*in));
	int r = FS_CALL(req, flush, &req->ctx, req->in.nodeid, in->fh);

	/* A close by the lock owner ends its POSIX locks on the file. */
	if (OPS(req)->forget_lock_owner && (fuse_session_flags(req->srv) & FUSE_POSIX_LOCKS))
		OPS(req)->forget_lock_owner(FS(req), req->in.nodeid, in->lock_owner);
	return r;
}

static int readdir_common(struct fuse_req *req, bool plus)
{
	const struct fuse_read_in *in = req_arg(req, sizeof(*in));
	struct vfsd_dirbuf db = { .plus = plus };
	int r;

	if (in->size > FUSE_SERVER_MAX_BUFFER || in->size > req_reply_capacity(req))
		return -ENOMEM;
	if (in->size == 0)
		return reply_direct(req, 0);
	/* Records are built whole, then copied into the guest's buffers. */
	db.buf = malloc(in->size);
	if (!db.buf)
		return -ENOMEM;
	db.size = in->size;
	r = FS_CALL(req, readdir, &req->ctx, req->in.nodeid, in->fh, in->offset, &db);
	if (r == 0) {
		iov_from_buf(req->wr, req->nwr, sizeof(struct fuse_out_header), db.buf, db.used);
		r = reply_direct(req, db.used);
	}
	free(db.buf);
	return r;
}

static int do_readdir(struct fuse_req *req)
{
	return readdir_common(req, false);
}

static int do_readdirplus(struct fuse_req *req)
{
	return readdir_common(req, true);
}

static int do_access(struct fuse_req *req)
{
	const struct fuse_access_in *in = req_arg(req, sizeof(*in));

	return FS_CALL(req, access, &req->ctx, req->in.nodeid, in->mask);
}

static int do_fallocate(struct fuse_req *req)
{
	const struct fuse_fallocate_in *in = req_arg(req, sizeof(*in));

	return FS_CALL(req, fallocate, &req->ctx, req->in.nodeid, in->fh, in->mode, in->offset,
				   in->length);
}

static int do_lseek(struct fuse_req *req)
{
	const struct fuse_lseek_in *in = req_arg(req, sizeof(*in));
	struct fuse_lseek_out out;
	int r = FS_CALL(req, lseek, &req->ctx, req->in.nodeid, in->fh, in->offset, in->whence,
				&out.offset);

	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

static int do_copy_file_range(struct fuse_req *req)
{
	const struct fuse_copy_file_range_in *in = req_arg(req, sizeof(*in));
	struct fuse_write_out out = { 0 };
	size_t done = 0;
	int r = FS_CALL(req, copy_file_range, &req->ctx, req->in.nodeid, in->fh_in, in->off_in,
					  in->nodeid_out, in->fh_out, in->off_out, in->len,
					  in->flags, &done);

	if (r < 0)
		return r;
	out.size = (uint32_t)MIN(done, (size_t)UINT32_MAX);
	return reply_struct(req, &out, sizeof(out));
}

static int do_syncfs(struct fuse_req *req)
{
	return FS_CALL(req, syncfs, &req->ctx, req->in.nodeid);
}

/* xattr names: NUL-terminated, 1 to XATTR_NAME_MAX bytes (ERANGE otherwise, as the host's
 * setxattr(2) says). */
static int next_xattr_name(struct fuse_req *req, const char **name)
{
	size_t len;

	*name = req_name(req);
	if (!*name)
		return -EINVAL;
	len = strlen(*name);
	return len == 0 || len > XATTR_NAME_MAX ? -ERANGE : 0;
}

/* GETXATTR and LISTXATTR: size 0 asks for the room needed, else the bytes themselves. */
static int reply_xattr(struct fuse_req *req, uint32_t size, int r, const void *buf, size_t len)
{
	if (r < 0)
		return r;
	if (size == 0) {
		struct fuse_getxattr_out out = { .size = (uint32_t)len };

		return reply_struct(req, &out, sizeof(out));
	}
	iov_from_buf(req->wr, req->nwr, sizeof(struct fuse_out_header), buf, len);
	return reply_direct(req, len);
}

/* The value buffer for size bytes: at most what the guest can take and the kernel allows. */
static int xattr_buf(struct fuse_req *req, uint32_t size, void **buf)
{
	*buf = NULL;
	if (size == 0)
		return 0;
	if (size > req_reply_capacity(req))
		return -ERANGE;
	*buf = malloc(MIN((size_t)size, (size_t)XATTR_SIZE_MAX));
	return *buf ? 0 : -ENOMEM;
}

static int do_getxattr(struct fuse_req *req)
{
	const struct fuse_getxattr_in *in = req_arg(req, sizeof(*in));
	const char *name;
	size_t len = 0;
	void *buf = NULL;
	int r = next_xattr_name(req, &name);

	if (r == 0)
		r = xattr_buf(req, in->size, &buf);
	if (r < 0)
		return r;
	r = FS_CALL(req, getxattr, &req->ctx, req->in.nodeid, name, buf,
		    MIN((size_t)in->size, (size_t)XATTR_SIZE_MAX), &len);
	r = reply_xattr(req, in->size, r, buf, len);
	free(buf);
	return r;
}

static int do_listxattr(struct fuse_req *req)
{
	const struct fuse_getxattr_in *in = req_arg(req, sizeof(*in));
	size_t len = 0;
	void *buf;
	int r = xattr_buf(req, in->size, &buf);

	if (r < 0)
		return r;
	r = FS_CALL(req, listxattr, &req->ctx, req->in.nodeid, buf,
		    MIN((size_t)in->size, (size_t)XATTR_SIZE_MAX), &len);
	r = reply_xattr(req, in->size, r, buf, len);
	free(buf);
	return r;
}

static int do_setxattr(struct fuse_req *req)
{
	/* The 8-byte form, and its 16-byte one once SETXATTR_EXT is agreed (with --posix-acl). */
	const struct fuse_setxattr_in *in = req_arg(req, FUSE_COMPAT_SETXATTR_IN_SIZE);
	uint32_t setxattr_flags = 0;
	const char *name;
	const void *value;
	int r;

	if (fuse_session_flags(req->srv) & FUSE_SETXATTR_EXT) {
		const uint32_t *ext = req_arg(req, sizeof(*in) - FUSE_COMPAT_SETXATTR_IN_SIZE);

		if (!ext)
			return -EINVAL;
		memcpy(&setxattr_flags, ext, sizeof(setxattr_flags));
	}
	r = next_xattr_name(req, &name);
	if (r < 0)
		return r;
	if (in->size > XATTR_SIZE_MAX)
		return -E2BIG;
	value = req_arg(req, in->size);
	if (!value && in->size)
		return -EINVAL;
	return FS_CALL(req, setxattr, &req->ctx, req->in.nodeid, name, value, in->size,
		       (int)in->flags, setxattr_flags);
}

static int do_removexattr(struct fuse_req *req)
{
	const char *name;
	int r = next_xattr_name(req, &name);

	return r < 0 ? r : FS_CALL(req, removexattr, &req->ctx, req->in.nodeid, name);
}

/* Only a SETLKW that waits can be interrupted: every other request completes by itself. */
static int do_interrupt(struct fuse_req *req)
{
	const struct fuse_interrupt_in *in = req_arg(req, sizeof(*in));

	if (in)
		fuse_cancel_waiters(req->srv, in->unique, false);
	return 0;
}

static int do_enosys(struct fuse_req *req)
{
	(void)req;
	return -ENOSYS;
}

#define OP(code, f, arg) [code] = { .fn = f, .name = #code + 5, .min_arg = arg }
#define OP_NOREPLY(code, f, arg) \
	[code] = { .fn = f, .name = #code + 5, .min_arg = arg, .noreply = true }

static const struct fuse_op fuse_ops[] = {
	OP(FUSE_LOOKUP, do_lookup, 0),
	OP_NOREPLY(FUSE_FORGET, do_forget, sizeof(struct fuse_forget_in)),
	OP(FUSE_GETATTR, do_getattr, 0),
	OP(FUSE_SETATTR, do_setattr, sizeof(struct fuse_setattr_in)),
	OP(FUSE_READLINK, do_readlink, 0),
	OP(FUSE_SYMLINK, do_symlink, 0),
	OP(FUSE_MKNOD, do_mknod, sizeof(struct fuse_mknod_in)),
	OP(FUSE_MKDIR, do_mkdir, sizeof(struct fuse_mkdir_in)),
	OP(FUSE_UNLINK, do_unlink, 0),
	OP(FUSE_RMDIR, do_rmdir, 0),
	OP(FUSE_RENAME, do_rename, sizeof(struct fuse_rename_in)),
	OP(FUSE_LINK, do_link, sizeof(struct fuse_link_in)),
	OP(FUSE_OPEN, do_open, sizeof(struct fuse_open_in)),
	OP(FUSE_READ, do_read, sizeof(struct fuse_read_in)),
	OP(FUSE_WRITE, do_write, sizeof(struct fuse_write_in)),
	OP(FUSE_STATFS, do_statfs, 0),
	OP(FUSE_RELEASE, do_release, sizeof(struct fuse_release_in)),
	OP(FUSE_FSYNC, do_fsync, sizeof(struct fuse_fsync_in)),
	OP(FUSE_SETXATTR, do_setxattr, FUSE_COMPAT_SETXATTR_IN_SIZE),
	OP(FUSE_GETXATTR, do_getxattr, sizeof(struct fuse_getxattr_in)),
	OP(FUSE_LISTXATTR, do_listxattr, sizeof(struct fuse_getxattr_in)),
	OP(FUSE_REMOVEXATTR, do_removexattr, 0),
	OP(FUSE_FLUSH, do_flush, sizeof(struct fuse_flush_in)),
	OP(FUSE_INIT, do_init, FUSE_INIT_IN_BASE),
	OP(FUSE_OPENDIR, do_opendir, sizeof(struct fuse_open_in)),
	OP(FUSE_READDIR, do_readdir, sizeof(struct fuse_read_in)),
	OP(FUSE_RELEASEDIR, do_release, sizeof(struct fuse_release_in)),
	OP(FUSE_FSYNCDIR, do_fsync, sizeof(struct fuse_fsync_in)),
	OP(FUSE_GETLK, fuse_do_getlk, sizeof(struct fuse_lk_in)),
	OP(FUSE_SETLK, fuse_do_setlk, sizeof(struct fuse_lk_in)),
	OP(FUSE_SETLKW, fuse_do_setlkw, sizeof(struct fuse_lk_in)),
	OP(FUSE_ACCESS, do_access, sizeof(struct fuse_access_in)),
	OP(FUSE_CREATE, do_create, sizeof(struct fuse_create_in)),
	OP(FUSE_TMPFILE, do_tmpfile, sizeof(struct fuse_create_in)),
	OP_NOREPLY(FUSE_INTERRUPT, do_interrupt, 0),
	OP(FUSE_BMAP, do_enosys, 0),
	OP_NOREPLY(FUSE_DESTROY, do_destroy, 0),
	OP(FUSE_IOCTL, do_enosys, 0),
	OP(FUSE_POLL, do_enosys, 0),
	OP(FUSE_NOTIFY_REPLY, do_enosys, 0),
	OP_NOREPLY(FUSE_BATCH_FORGET, do_batch_forget, sizeof(struct fuse_batch_forget_in)),
	OP(FUSE_FALLOCATE, do_fallocate, sizeof(struct fuse_fallocate_in)),
	OP(FUSE_READDIRPLUS, do_readdirplus, sizeof(struct fuse_read_in)),
	OP(FUSE_RENAME2, do_rename2, sizeof(struct fuse_rename2_in)),
	OP(FUSE_LSEEK, do_lseek, sizeof(struct fuse_lseek_in)),
	OP(FUSE_COPY_FILE_RANGE, do_copy_file_range, sizeof(struct fuse_copy_file_range_in)),
	OP(FUSE_SETUPMAPPING, do_enosys, 0),
	OP(FUSE_REMOVEMAPPING, do_enosys, 0),
	OP(FUSE_SYNCFS, do_syncfs, sizeof(struct fuse_syncfs_in)),
};

const struct fuse_op *fuse_op_lookup(uint32_t opcode)
{
	if (opcode < ARRAY_SIZE(fuse_ops) && fuse_ops[opcode].name)
		return &fuse_ops[opcode];
	return NULL;
}

const char *fuse_opcode_name(uint32_t opcode)
{
	const struct fuse_op *op = fuse_op_lookup(opcode);

	return op ? op->name : "UNKNOWN";
}
