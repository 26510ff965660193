/* A thin FUSE client: requests built as a Linux 6.1 guest builds them, replies checked. */
#include "fuse_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096
/* Most pieces one request is cut in: a 4 MiB request in pages (more than any device takes). */
#define MAX_PIECES 1100

/* The INIT flags of a Linux 6.1 virtiofs mount (fs/fuse/inode.c, fuse_send_init). */
#define LINUX61_INIT_FLAGS                                                                         \
	(FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT |          \
	 FUSE_BIG_WRITES | FUSE_DONT_MASK | FUSE_SPLICE_WRITE | FUSE_SPLICE_MOVE |                 \
	 FUSE_SPLICE_READ | FUSE_FLOCK_LOCKS | FUSE_HAS_IOCTL_DIR | FUSE_AUTO_INVAL_DATA |         \
	 FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_WRITEBACK_CACHE |     \
	 FUSE_NO_OPEN_SUPPORT | FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV | FUSE_POSIX_ACL |     \
	 FUSE_ABORT_ERROR | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_NO_OPENDIR_SUPPORT |       \
	 FUSE_EXPLICIT_INVAL_DATA | FUSE_HANDLE_KILLPRIV_V2 | FUSE_SETXATTR_EXT | FUSE_INIT_EXT |  \
	 FUSE_SUBMOUNTS)
#define LINUX61_UMASK 022

void fc_setup(struct fc *c, struct fe_dev *dev)
{
	memset(c, 0, sizeof(*c));
	c->dev = dev;
	c->queue = FE_REQUEST;
	c->chain = FE_DIRECT;
	c->next_unique = 2;
	c->timeout_ms = FE_TIMEOUT_MS;
}

/* A creating op's mode: the kernel applies its umask itself unless DONT_MASK was agreed
 * (then the daemon does, with the umask sent along). */
static uint32_t create_mode(const struct fc *c, uint32_t mode)
{
	return (c->init.flags & FUSE_DONT_MASK) ? mode : mode & ~LINUX61_UMASK;
}

const char *fc_strerror(const struct fc *c, int r)
{
	static __thread char buf[320];

	switch (r) {
	case 0:
		return "success";
	case FC_ETIMEDOUT:
		return "no reply (timed out)";
	case FC_ENOREPLY:
		return "used entry of length 0 (no reply)";
	case FC_EBADREPLY:
		snprintf(buf, sizeof(buf), "malformed reply: %s", c->err);
		return buf;
	case FC_ETRANSPORT:
		snprintf(buf, sizeof(buf), "transport: %s",
			 c->dev ? fe_error(c->dev) : "no device");
		return buf;
	default:
		if (r < 0 && r > -4096)
			snprintf(buf, sizeof(buf), "%s (%d)", strerrorname_np(-r) ?: "errno", r);
		else
			snprintf(buf, sizeof(buf), "result %d", r);
		return buf;
	}
}

static bool is_noreply(uint32_t opcode)
{
	return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT;
}

/* Adds [gpa, gpa+len) as one descriptor, or as 4 KiB ones when the client splits pages. */
static int add_piece(struct fc *c, struct fe_buf *b, int *n, uint64_t gpa, size_t len, bool write)
{
	bool split = c->split_pages && c->chain == FE_INDIRECT;

	do {
		size_t take = split && len > PAGE ? PAGE : len;

		if (*n >= MAX_PIECES) {
			fe_seterr(c->dev, "a request of more than %d pieces", MAX_PIECES);
			return -E2BIG;
		}
		b[(*n)++] = (struct fe_buf){ .gpa = gpa, .len = (uint32_t)take, .write = write };
		gpa += take;
		len -= take;
	} while (len > 0);
	return 0;
}

/* One request less in flight; the scratch memory goes back when none is left. */
static void done(struct fc *c)
{
	if (c->inflight > 0 && --c->inflight == 0 && !c->keep_scratch)
		fe_release(c->dev, &c->base);
}

int fc_start(struct fc *c, struct fc_req *rq, uint32_t opcode, uint64_t nodeid,
	     const struct fc_arg *in, int nin, size_t outcap)
{
	struct fuse_in_header h = {
		.opcode = opcode, .nodeid = nodeid, .uid = c->uid, .gid = c->gid, .pid = c->pid
	};
	struct fe_buf *b = malloc(MAX_PIECES * sizeof(*b));
	unsigned int q = c->queue;
	uint64_t gpa;
	int n = 0, r;

	if (!b)
		return FC_ETRANSPORT;
	if (opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET)
		q = FE_HIPRIO; /* where the Linux driver sends forgets */
	memset(rq, 0, sizeof(*rq));
	rq->opcode = opcode;
	rq->nodeid = nodeid;
	rq->unique = h.unique = c->next_unique;
	rq->noreply = is_noreply(opcode);
	c->next_unique += 2;
	h.len = sizeof(h);
	for (int i = 0; i < nin; i++)
		h.len += (uint32_t)in[i].len;
	h.len += (uint32_t)c->ext_len;
	h.total_extlen = (uint16_t)(c->ext_len / 8);
	if (c->inflight++ == 0)
		fe_mark(c->dev, &c->base);

	gpa = fe_put(c->dev, &h, sizeof(h));
	r = gpa ? add_piece(c, b, &n, gpa, sizeof(h), false) : -ENOMEM;
	for (int i = 0; i < nin && r == 0; i++) {
		if (!in[i].len)
			continue;
		gpa = fe_put(c->dev, in[i].p, in[i].len);
		r = gpa ? add_piece(c, b, &n, gpa, in[i].len, false) : -ENOMEM;
	}
	if (c->ext_len && r == 0) {
		gpa = fe_put(c->dev, c->ext, c->ext_len);
		r = gpa ? add_piece(c, b, &n, gpa, c->ext_len, false) : -ENOMEM;
	}
	c->ext = NULL;
	c->ext_len = 0;
	if (!rq->noreply && r == 0) {
		rq->out_gpa = fe_alloc_any(c->dev, sizeof(struct fuse_out_header) + outcap);
		rq->out_cap = outcap;
		if (!rq->out_gpa)
			r = -ENOMEM;
		if (r == 0)
			r = add_piece(c, b, &n, rq->out_gpa, sizeof(struct fuse_out_header), true);
		if (r == 0 && outcap)
			r = add_piece(c, b, &n, rq->out_gpa + sizeof(struct fuse_out_header),
				      outcap, true);
		if (r == 0)
			memset(fe_ptr(c->dev, rq->out_gpa, sizeof(struct fuse_out_header)), 0xa5,
			       sizeof(struct fuse_out_header));
	}
	rq->queue = q;
	if (r == 0)
		r = c->hold_kick ? fe_add(c->dev, q, b, n, c->chain, &rq->head) :
				   fe_submit(c->dev, q, b, n, c->chain, &rq->head);
	free(b);
	if (r < 0) {
		done(c);
		return FC_ETRANSPORT;
	}
	return 0;
}

static int bad(struct fc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct fc *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return FC_EBADREPLY;
}

int fc_finish(struct fc *c, struct fc_req *rq, void *out, size_t outcap, size_t *outlen)
{
	struct fuse_out_header oh;
	uint32_t used = 0;
	size_t payload;
	int r = fe_wait(c->dev, rq->queue, rq->head, c->timeout_ms, &used);

	if (outlen)
		*outlen = 0;
	if (r < 0) {
		done(c);
		return r == -ETIMEDOUT ? FC_ETIMEDOUT : FC_ETRANSPORT;
	}
	if (rq->noreply) {
		done(c);
		return used ? bad(c, "%u bytes used by a request that has no reply", used) : 0;
	}
	if (used == 0) {
		done(c);
		return FC_ENOREPLY;
	}
	memcpy(&oh, fe_ptr(c->dev, rq->out_gpa, sizeof(oh)), sizeof(oh));
	if (used < sizeof(oh))
		r = bad(c, "used length %u is shorter than the out header", used);
	else if (used > sizeof(oh) + rq->out_cap)
		r = bad(c, "used length %u is more than the %zu bytes offered", used,
			sizeof(oh) + rq->out_cap);
	else if (oh.len != used)
		r = bad(c, "out header len %u but used length %u", oh.len, used);
	else if (oh.unique != rq->unique)
		r = bad(c, "unique %llu in the reply to %llu", (unsigned long long)oh.unique,
			(unsigned long long)rq->unique);
	else if (oh.error > 0 || oh.error < -4095)
		r = bad(c, "error field %d", oh.error);
	else if (oh.error && oh.len != sizeof(oh))
		r = bad(c, "error %d with %u bytes", oh.error, oh.len);
	if (r < 0) {
		done(c);
		return r;
	}
	payload = used - sizeof(oh);
	if (out && payload)
		memcpy(out, fe_ptr(c->dev, rq->out_gpa + sizeof(oh), payload),
		       payload < outcap ? payload : outcap);
	if (outlen)
		*outlen = payload;
	done(c);
	return oh.error;
}

int fc_call(struct fc *c, uint32_t opcode, uint64_t nodeid, const struct fc_arg *in, int nin,
	    void *out, size_t outcap, size_t *outlen)
{
	struct fc_req rq;
	int r = fc_start(c, &rq, opcode, nodeid, in, nin, outcap);

	return r < 0 ? r : fc_finish(c, &rq, out, outcap, outlen);
}

int fc_call_fixed(struct fc *c, uint32_t opcode, uint64_t nodeid, const void *arg, size_t arglen,
		  const char *name1, const char *name2, void *out, size_t outlen)
{
	struct fc_arg in[3] = {
		{ arg, arglen },
		{ name1, name1 ? strlen(name1) + 1 : 0 },
		{ name2, name2 ? strlen(name2) + 1 : 0 },
	};
	size_t got;
	int r = fc_call(c, opcode, nodeid, in, 3, out, outlen, &got);

	if (r == 0 && got != outlen)
		return bad(c, "%zu reply bytes, expected %zu", got, outlen);
	return r;
}

/* ---- operations ---- */

int fc_init_with(struct fc *c, uint32_t major, uint32_t minor, uint64_t flags,
		 struct fuse_init_out *out)
{
	struct fuse_init_in in = { .major = major,
				   .minor = minor,
				   .max_readahead = 128 * 1024,
				   .flags = (uint32_t)flags,
				   .flags2 = (uint32_t)(flags >> 32) };
	struct fc_arg a = { &in, (flags & FUSE_INIT_EXT) ? sizeof(in) :
							   offsetof(struct fuse_init_in, flags2) };
	size_t got;
	int r;

	memset(out, 0, sizeof(*out));
	r = fc_call(c, FUSE_INIT, 0, &a, 1, out, sizeof(*out), &got);
	if (r == 0 && major == 7 && got != sizeof(*out))
		return bad(c, "INIT reply of %zu bytes", got);
	return r;
}

int fc_init(struct fc *c)
{
	return fc_init_plus(c, 0);
}

int fc_init_plus(struct fc *c, uint64_t extra_flags)
{
	int r = fc_init_with(c, FUSE_KERNEL_VERSION, FUSE_KERNEL_MINOR_VERSION,
			     LINUX61_INIT_FLAGS | extra_flags, &c->init);

	if (r == 0 && (c->init.major != 7 || c->init.minor < 27))
		return bad(c, "INIT answered %u.%u", c->init.major, c->init.minor);
	return r;
}

int fc_destroy(struct fc *c)
{
	int r = fc_call(c, FUSE_DESTROY, 0, NULL, 0, NULL, 0, NULL);

	return r == FC_ENOREPLY ? 0 : r; /* the C virtiofsd answers nothing */
}

int fc_lookup(struct fc *c, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	return fc_call_fixed(c, FUSE_LOOKUP, parent, NULL, 0, name, NULL, e, sizeof(*e));
}

int fc_forget(struct fc *c, uint64_t nodeid, uint64_t nlookup)
{
	struct fuse_forget_in in = { .nlookup = nlookup };
	struct fc_arg a = { &in, sizeof(in) };

	return fc_call(c, FUSE_FORGET, nodeid, &a, 1, NULL, 0, NULL);
}

int fc_batch_forget(struct fc *c, const struct fuse_forget_one *one, uint32_t count)
{
	struct fuse_batch_forget_in in = { .count = count };
	struct fc_arg a[2] = { { &in, sizeof(in) }, { one, count * sizeof(*one) } };

	return fc_call(c, FUSE_BATCH_FORGET, 0, a, 2, NULL, 0, NULL);
}

int fc_getattr(struct fc *c, uint64_t nodeid, struct fuse_attr_out *a)
{
	struct fuse_getattr_in in = { 0 };

	return fc_call_fixed(c, FUSE_GETATTR, nodeid, &in, sizeof(in), NULL, NULL, a, sizeof(*a));
}

int fc_setattr(struct fc *c, uint64_t nodeid, const struct fuse_setattr_in *in,
	       struct fuse_attr_out *a)
{
	return fc_call_fixed(c, FUSE_SETATTR, nodeid, in, sizeof(*in), NULL, NULL, a, sizeof(*a));
}

int fc_readlink(struct fc *c, uint64_t nodeid, char *buf, size_t size, size_t *len)
{
	return fc_call(c, FUSE_READLINK, nodeid, NULL, 0, buf, size, len);
}

int fc_symlink(struct fc *c, uint64_t parent, const char *name, const char *target,
	       struct fuse_entry_out *e)
{
	return fc_call_fixed(c, FUSE_SYMLINK, parent, NULL, 0, name, target, e, sizeof(*e));
}

int fc_mknod(struct fc *c, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
	     struct fuse_entry_out *e)
{
	struct fuse_mknod_in in = { .mode = create_mode(c, mode),
				    .rdev = rdev,
				    .umask = LINUX61_UMASK };

	return fc_call_fixed(c, FUSE_MKNOD, parent, &in, sizeof(in), name, NULL, e, sizeof(*e));
}

int fc_mkdir(struct fc *c, uint64_t parent, const char *name, uint32_t mode,
	     struct fuse_entry_out *e)
{
	struct fuse_mkdir_in in = { .mode = create_mode(c, mode), .umask = LINUX61_UMASK };

	return fc_call_fixed(c, FUSE_MKDIR, parent, &in, sizeof(in), name, NULL, e, sizeof(*e));
}

int fc_unlink(struct fc *c, uint64_t parent, const char *name)
{
	return fc_call_fixed(c, FUSE_UNLINK, parent, NULL, 0, name, NULL, NULL, 0);
}

int fc_rmdir(struct fc *c, uint64_t parent, const char *name)
{
	return fc_call_fixed(c, FUSE_RMDIR, parent, NULL, 0, name, NULL, NULL, 0);
}

int fc_rename(struct fc *c, uint64_t olddir, const char *oldname, uint64_t newdir,
	      const char *newname)
{
	struct fuse_rename_in in = { .newdir = newdir };

	return fc_call_fixed(c, FUSE_RENAME, olddir, &in, sizeof(in), oldname, newname, NULL, 0);
}

int fc_rename2(struct fc *c, uint64_t olddir, const char *oldname, uint64_t newdir,
	       const char *newname, uint32_t flags)
{
	struct fuse_rename2_in in = { .newdir = newdir, .flags = flags };

	return fc_call_fixed(c, FUSE_RENAME2, olddir, &in, sizeof(in), oldname, newname, NULL, 0);
}

int fc_link(struct fc *c, uint64_t nodeid, uint64_t newparent, const char *newname,
	    struct fuse_entry_out *e)
{
	struct fuse_link_in in = { .oldnodeid = nodeid };

	return fc_call_fixed(c, FUSE_LINK, newparent, &in, sizeof(in), newname, NULL, e,
			     sizeof(*e));
}

int fc_open(struct fc *c, uint64_t nodeid, uint32_t flags, struct fuse_open_out *o)
{
	struct fuse_open_in in = { .flags = flags };

	return fc_call_fixed(c, FUSE_OPEN, nodeid, &in, sizeof(in), NULL, NULL, o, sizeof(*o));
}

/* CREATE and TMPFILE: the same arguments and the same entry + open reply. */
static int create_call(struct fc *c, uint32_t opcode, uint64_t parent, const char *name,
		       uint32_t flags, uint32_t mode, struct fuse_entry_out *e,
		       struct fuse_open_out *o)
{
	struct fuse_create_in in = { .flags = flags,
				     .mode = create_mode(c, mode),
				     .umask = LINUX61_UMASK };
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	int r = fc_call_fixed(c, opcode, parent, &in, sizeof(in), name, NULL, &out, sizeof(out));

	if (r == 0) {
		*e = out.e;
		*o = out.o;
	}
	return r;
}

int fc_create(struct fc *c, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
	      struct fuse_entry_out *e, struct fuse_open_out *o)
{
	return create_call(c, FUSE_CREATE, parent, name, flags, mode, e, o);
}

/* TMPFILE, with the name "/" a Linux kernel sends (the dentry of an unnamed file). */
int fc_tmpfile(struct fc *c, uint64_t parent, uint32_t flags, uint32_t mode,
	       struct fuse_entry_out *e, struct fuse_open_out *o)
{
	return create_call(c, FUSE_TMPFILE, parent, "/", flags | O_TMPFILE, mode, e, o);
}

int fc_read(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf, size_t size,
	    size_t *got)
{
	struct fuse_read_in in = {
		.fh = fh, .offset = off, .size = (uint32_t)size, .flags = O_RDWR
	};
	struct fc_arg a = { &in, sizeof(in) };
	size_t len = 0;
	int r = fc_call(c, FUSE_READ, nodeid, &a, 1, buf, size, &len);

	if (got)
		*got = len;
	return r;
}

int fc_write(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, const void *buf, size_t size,
	     size_t *written)
{
	struct fuse_write_in in = {
		.fh = fh, .offset = off, .size = (uint32_t)size, .flags = O_RDWR
	};
	struct fc_arg a[2] = { { &in, sizeof(in) }, { buf, size } };
	struct fuse_write_out out = { 0 };
	size_t len;
	int r = fc_call(c, FUSE_WRITE, nodeid, a, 2, &out, sizeof(out), &len);

	if (r == 0 && len != sizeof(out))
		return bad(c, "WRITE reply of %zu bytes", len);
	if (written)
		*written = out.size;
	return r;
}

int fc_statfs(struct fc *c, uint64_t nodeid, struct fuse_statfs_out *st)
{
	return fc_call_fixed(c, FUSE_STATFS, nodeid, NULL, 0, NULL, NULL, st, sizeof(*st));
}

static int release_common(struct fc *c, uint32_t opcode, uint64_t nodeid, uint64_t fh)
{
	struct fuse_release_in in = { .fh = fh, .flags = O_RDWR };

	return fc_call_fixed(c, opcode, nodeid, &in, sizeof(in), NULL, NULL, NULL, 0);
}

int fc_release(struct fc *c, uint64_t nodeid, uint64_t fh)
{
	return release_common(c, FUSE_RELEASE, nodeid, fh);
}

int fc_releasedir(struct fc *c, uint64_t nodeid, uint64_t fh)
{
	return release_common(c, FUSE_RELEASEDIR, nodeid, fh);
}

int fc_flush(struct fc *c, uint64_t nodeid, uint64_t fh)
{
	struct fuse_flush_in in = { .fh = fh };

	return fc_call_fixed(c, FUSE_FLUSH, nodeid, &in, sizeof(in), NULL, NULL, NULL, 0);
}

static int fsync_common(struct fc *c, uint32_t opcode, uint64_t nodeid, uint64_t fh, bool datasync)
{
	struct fuse_fsync_in in = { .fh = fh, .fsync_flags = datasync ? 1 : 0 };

	return fc_call_fixed(c, opcode, nodeid, &in, sizeof(in), NULL, NULL, NULL, 0);
}

int fc_fsync(struct fc *c, uint64_t nodeid, uint64_t fh, bool datasync)
{
	return fsync_common(c, FUSE_FSYNC, nodeid, fh, datasync);
}

int fc_fsyncdir(struct fc *c, uint64_t nodeid, uint64_t fh, bool datasync)
{
	return fsync_common(c, FUSE_FSYNCDIR, nodeid, fh, datasync);
}

int fc_opendir(struct fc *c, uint64_t nodeid, struct fuse_open_out *o)
{
	struct fuse_open_in in = { .flags = O_RDONLY | O_DIRECTORY };

	return fc_call_fixed(c, FUSE_OPENDIR, nodeid, &in, sizeof(in), NULL, NULL, o, sizeof(*o));
}

static int readdir_common(struct fc *c, uint32_t opcode, uint64_t nodeid, uint64_t fh, uint64_t off,
			  void *buf, size_t size, size_t *len)
{
	struct fuse_read_in in = { .fh = fh, .offset = off, .size = (uint32_t)size };
	struct fc_arg a = { &in, sizeof(in) };

	return fc_call(c, opcode, nodeid, &a, 1, buf, size, len);
}

int fc_readdir(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf, size_t size,
	       size_t *len)
{
	return readdir_common(c, FUSE_READDIR, nodeid, fh, off, buf, size, len);
}

int fc_readdirplus(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf, size_t size,
		   size_t *len)
{
	return readdir_common(c, FUSE_READDIRPLUS, nodeid, fh, off, buf, size, len);
}

int fc_access(struct fc *c, uint64_t nodeid, uint32_t mask)
{
	struct fuse_access_in in = { .mask = mask };

	return fc_call_fixed(c, FUSE_ACCESS, nodeid, &in, sizeof(in), NULL, NULL, NULL, 0);
}

int fc_interrupt(struct fc *c, uint64_t unique)
{
	struct fuse_interrupt_in in = { .unique = unique };
	struct fc_arg a = { &in, sizeof(in) };

	return fc_call(c, FUSE_INTERRUPT, 0, &a, 1, NULL, 0, NULL);
}

int fc_fallocate(struct fc *c, uint64_t nodeid, uint64_t fh, uint32_t mode, uint64_t off,
		 uint64_t len)
{
	struct fuse_fallocate_in in = { .fh = fh, .offset = off, .length = len, .mode = mode };

	return fc_call_fixed(c, FUSE_FALLOCATE, nodeid, &in, sizeof(in), NULL, NULL, NULL, 0);
}

int fc_lseek(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, uint32_t whence,
	     uint64_t *result)
{
	struct fuse_lseek_in in = { .fh = fh, .offset = off, .whence = whence };
	struct fuse_lseek_out out = { 0 };
	int r = fc_call_fixed(c, FUSE_LSEEK, nodeid, &in, sizeof(in), NULL, NULL, &out,
			      sizeof(out));

	*result = out.offset;
	return r;
}

int fc_copy_file_range(struct fc *c, uint64_t nodeid_in, uint64_t fh_in, uint64_t off_in,
		       uint64_t nodeid_out, uint64_t fh_out, uint64_t off_out, uint64_t len,
		       size_t *copied)
{
	struct fuse_copy_file_range_in in = { .fh_in = fh_in,
					      .off_in = off_in,
					      .nodeid_out = nodeid_out,
					      .fh_out = fh_out,
					      .off_out = off_out,
					      .len = len };
	struct fuse_write_out out = { 0 };
	int r = fc_call_fixed(c, FUSE_COPY_FILE_RANGE, nodeid_in, &in, sizeof(in), NULL, NULL, &out,
			      sizeof(out));

	*copied = out.size;
	return r;
}

int fc_syncfs(struct fc *c, uint64_t nodeid)
{
	struct fuse_syncfs_in in = { 0 };

	return fc_call_fixed(c, FUSE_SYNCFS, nodeid, &in, sizeof(in), NULL, NULL, NULL, 0);
}

/* ---- directory records ---- */

int fc_dir_walk(const void *buf, size_t len, bool plus,
		void (*fn)(const struct fuse_dirent *d, const struct fuse_entry_out *e, void *arg),
		void *arg)
{
	const uint8_t *p = buf;
	size_t head = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	int count = 0;

	while (len > 0) {
		const struct fuse_dirent *d;
		size_t rec;

		if (len < head)
			return -EPROTO;
		d = (const struct fuse_dirent *)(p + (plus ? sizeof(struct fuse_entry_out) : 0));
		if (d->namelen == 0 || d->namelen > 255)
			return -EPROTO;
		rec = FUSE_DIRENT_ALIGN(head + d->namelen);
		if (rec > len)
			return -EPROTO;
		if (fn)
			fn(d, plus ? (const struct fuse_entry_out *)p : NULL, arg);
		count++;
		p += rec;
		len -= rec;
	}
	return count;
}

struct find_arg {
	const char *name;
	struct fuse_dirent *d;
	struct fuse_entry_out *e;
	bool found;
};

static void find_one(const struct fuse_dirent *d, const struct fuse_entry_out *e, void *arg)
{
	struct find_arg *f = arg;

	if (f->found || d->namelen != strlen(f->name) || memcmp(d->name, f->name, d->namelen))
		return;
	f->found = true;
	if (f->d)
		*f->d = *d;
	if (f->e && e)
		*f->e = *e;
}

bool fc_dir_find(const void *buf, size_t len, bool plus, const char *name, struct fuse_dirent *d,
		 struct fuse_entry_out *e)
{
	struct find_arg f = { .name = name, .d = d, .e = e };

	if (fc_dir_walk(buf, len, plus, find_one, &f) < 0)
		return false;
	return f.found;
}

int fc_setxattr(struct fc *c, uint64_t nodeid, const char *name, const void *value, size_t size,
		uint32_t flags)
{
	return fc_setxattr_ext(c, nodeid, name, value, size, flags, 0);
}

/* The 16-byte header once SETXATTR_EXT is agreed, as the kernel then always sends it. */
int fc_setxattr_ext(struct fc *c, uint64_t nodeid, const char *name, const void *value,
		    size_t size, uint32_t flags, uint32_t setxattr_flags)
{
	struct fuse_setxattr_in in = { .size = (uint32_t)size, .flags = flags,
				       .setxattr_flags = setxattr_flags };
	struct fc_arg a[3] = {
		{ &in, (c->init.flags & FUSE_SETXATTR_EXT) ? sizeof(in) : FUSE_COMPAT_SETXATTR_IN_SIZE },
		{ name, strlen(name) + 1 },
		{ value, size },
	};

	return fc_call(c, FUSE_SETXATTR, nodeid, a, 3, NULL, 0, NULL);
}

/* GETXATTR and LISTXATTR: a getxattr_out for size 0, else the bytes. */
static int xattr_read(struct fc *c, uint32_t opcode, uint64_t nodeid, const char *name,
		      void *buf, size_t size, size_t *len)
{
	struct fuse_getxattr_in in = { .size = (uint32_t)size };
	struct fc_arg a[2] = { { &in, sizeof(in) }, { name, name ? strlen(name) + 1 : 0 } };
	struct fuse_getxattr_out out;
	int r;

	if (size)
		return fc_call(c, opcode, nodeid, a, name ? 2 : 1, buf, size, len);
	r = fc_call(c, opcode, nodeid, a, name ? 2 : 1, &out, sizeof(out), len);
	if (r == 0) {
		if (*len != sizeof(out))
			return -EPROTO;
		*len = out.size;
	}
	return r;
}

int fc_getxattr(struct fc *c, uint64_t nodeid, const char *name, void *buf, size_t size,
		size_t *len)
{
	return xattr_read(c, FUSE_GETXATTR, nodeid, name, buf, size, len);
}

int fc_listxattr(struct fc *c, uint64_t nodeid, void *buf, size_t size, size_t *len)
{
	return xattr_read(c, FUSE_LISTXATTR, nodeid, NULL, buf, size, len);
}

int fc_removexattr(struct fc *c, uint64_t nodeid, const char *name)
{
	return fc_call_fixed(c, FUSE_REMOVEXATTR, nodeid, NULL, 0, name, NULL, NULL, 0);
}
