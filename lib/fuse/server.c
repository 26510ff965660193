#include "fuse/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fuse/request.h"
#include "metrics/metrics.h"

/* Requests whose arguments fit here are decoded without an allocation. */
#define ARG_INLINE_SIZE 8192

static __thread uint64_t arg_inline[ARG_INLINE_SIZE / sizeof(uint64_t)];

void fuse_server_init(struct fuse_server *srv, const struct vfsd_fs_ops *ops, void *fs)
{
	memset(srv, 0, sizeof(*srv));
	srv->ops = ops;
	srv->fs = fs;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->waiters_lock, NULL);
	pthread_cond_init(&srv->waiters_cond, NULL);
}

void fuse_server_set_transport(struct fuse_server *srv, const struct fuse_transport *t)
{
	srv->transport = *t;
}

void fuse_server_cleanup(struct fuse_server *srv)
{
	fuse_server_reset(srv);
	pthread_mutex_destroy(&srv->lock);
}

void fuse_server_cancel_waiters(struct fuse_server *srv)
{
	fuse_cancel_waiters(srv, 0, true);
}

void fuse_server_reset(struct fuse_server *srv)
{
	fuse_cancel_waiters(srv, 0, true);
	pthread_mutex_lock(&srv->lock);
	if (srv->initialized) {
		__atomic_store_n(&srv->initialized, false, __ATOMIC_RELEASE);
		srv->ops->destroy(srv->fs);
	}
	__atomic_store_n(&srv->enabled, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&srv->lock);
}

const void *req_arg(struct fuse_req *req, size_t size)
{
	const void *p;

	if (size > req->arglen - req->pos)
		return NULL;
	p = req->arg + req->pos;
	req->pos += size;
	return p;
}

const char *req_name(struct fuse_req *req)
{
	const char *s = (const char *)req->arg + req->pos;
	size_t left = req->arglen - req->pos;
	const char *nul = memchr(s, '\0', left);

	if (!nul)
		return NULL;
	req->pos += (size_t)(nul - s) + 1;
	return s;
}

int reply_struct(struct fuse_req *req, const void *body, size_t len)
{
	if (len > sizeof(req->outbuf))
		return -EIO;
	memcpy(req->outbuf, body, len);
	req->out_len = len;
	return 0;
}

int reply_direct(struct fuse_req *req, size_t len)
{
	req->out_direct = true;
	req->out_len = len;
	return 0;
}

size_t req_reply_capacity(const struct fuse_req *req)
{
	return req->wr_cap > sizeof(struct fuse_out_header) ?
		       req->wr_cap - sizeof(struct fuse_out_header) :
		       0;
}

int req_reply_iov(struct fuse_req *req, size_t len, struct iovec *iov, int max)
{
	return iov_slice(req->wr, req->nwr, sizeof(struct fuse_out_header), len, iov, max);
}

/* Counts a request served (metrics/metrics.h) from its arrival at t0. */
static void count(const struct fuse_req *req, int err, uint64_t t0)
{
	if (!t0)
		return;
	metrics_request(req->in.opcode, err, metrics_elapsed_ns(t0));
	if (err == 0 && req->in.opcode == FUSE_READ)
		metrics_bytes(false, req->out_len);
	else if (err == 0 && req->in.opcode == FUSE_WRITE && req->out_len >= sizeof(struct fuse_write_out))
		metrics_bytes(true, ((const struct fuse_write_out *)req->outbuf)->size);
}

static uint32_t send_reply(struct fuse_req *req, int err)
{
	struct fuse_out_header out = { .unique = req->in.unique };
	size_t total = sizeof(out);

	if (err == 0)
		total += req->out_len;
	if (total > req->wr_cap) {
		/* A reply that does not fit the guest's buffer is a guest bug: say so briefly. */
		log_debug("fuse: reply of %zu bytes to %s does not fit %zu", total,
			  fuse_opcode_name(req->in.opcode), req->wr_cap);
		err = -ERANGE;
		total = sizeof(out);
		if (total > req->wr_cap)
			return 0;
	}
	out.error = err;
	out.len = total;
	iov_from_buf(req->wr, req->nwr, 0, &out, sizeof(out));
	if (err == 0 && !req->out_direct && req->out_len)
		iov_from_buf(req->wr, req->nwr, sizeof(out), req->outbuf, req->out_len);
	return total;
}

uint32_t fuse_server_handle(struct fuse_server *srv, const struct iovec *rd, int nrd,
			    const struct iovec *wr, int nwr)
{
	return fuse_server_handle_async(srv, rd, nrd, wr, nwr, NULL);
}

static bool is_creating_op(uint32_t opcode)
{
	return opcode == FUSE_CREATE || opcode == FUSE_MKNOD || opcode == FUSE_MKDIR ||
	       opcode == FUSE_SYMLINK || opcode == FUSE_TMPFILE;
}

/* A security context record: {size, padding}, the xattr name, then size bytes of value. */
static int parse_secctx(struct fuse_req *req, const uint8_t *p, size_t len, uint32_t nr)
{
	struct fuse_secctx sc;
	const char *name;
	size_t namelen;

	if (nr > 1) {
		log_warn("fuse: %s carries %u security contexts, at most 1 is supported",
			 fuse_opcode_name(req->in.opcode), nr);
		return -EINVAL;
	}
	if (nr == 0)
		return 0;
	if (len < sizeof(sc))
		return -EINVAL;
	memcpy(&sc, p, sizeof(sc));
	name = (const char *)p + sizeof(sc);
	namelen = strnlen(name, len - sizeof(sc));
	if (namelen == 0 || namelen == len - sizeof(sc) || sc.size == 0 ||
	    sc.size > len - sizeof(sc) - namelen - 1)
		return -EINVAL;
	/* A security module's attribute, never another namespace (an ACL, trusted.*). */
	if (strncmp(name, "security.", 9) != 0) {
		log_warn("fuse: %s carries a security context named '%.*s', refused",
			 fuse_opcode_name(req->in.opcode), (int)namelen, name);
		return -EINVAL;
	}
	req->ctx.secctx_name = name;
	req->ctx.secctx = name + namelen + 1;
	req->ctx.secctx_len = sc.size;
	return 0;
}

/*
 * The request extensions (protocol 7.38): total_extlen 8-byte units at the end of the
 * arguments, records {size, type}. Type 0..31 is a security context header (type = how many
 * contexts), 32 the creator's supplementary groups. Each kind needs its INIT flag, comes at
 * most once, and anything malformed refuses the request (EINVAL) as a whole.
 */
static int parse_extensions(struct fuse_req *req)
{
	uint64_t enabled = fuse_session_flags(req->srv);
	size_t extlen = (size_t)req->in.total_extlen * 8, pos;
	bool secctx_seen = false, groups_seen = false;
	const uint8_t *ext;

	if (extlen == 0)
		goto check;
	if (!is_creating_op(req->in.opcode) || extlen > req->arglen - req->pos ||
	    !(enabled & (FUSE_SECURITY_CTX | FUSE_CREATE_SUPP_GROUP))) {
		log_warn("fuse: %s with %zu bytes of extensions the session did not agree",
			 fuse_opcode_name(req->in.opcode), extlen);
		return -EINVAL;
	}
	req->arglen -= extlen;
	ext = req->arg + req->arglen;
	for (pos = 0; pos < extlen;) {
		struct fuse_ext_header h;
		const uint8_t *body;
		size_t blen;
		int r;

		if (extlen - pos < sizeof(h))
			return -EINVAL;
		memcpy(&h, ext + pos, sizeof(h));
		if (h.size < sizeof(h) || h.size > extlen - pos || h.size % 8)
			return -EINVAL;
		body = ext + pos + sizeof(h);
		blen = h.size - sizeof(h);
		pos += h.size;
		if (h.type <= FUSE_MAX_NR_SECCTX) {
			if (!(enabled & FUSE_SECURITY_CTX) || secctx_seen)
				return -EINVAL;
			secctx_seen = true;
			r = parse_secctx(req, body, blen, h.type);
			if (r < 0)
				return r;
		} else if (h.type == VFSD_FUSE_EXT_GROUPS) {
			uint32_t n;

			if (!(enabled & FUSE_CREATE_SUPP_GROUP) || groups_seen || blen < 4)
				return -EINVAL;
			memcpy(&n, body, 4);
			if (n > 65536 || blen != ((4 + 4 * (size_t)n + 7) & ~(size_t)7))
				return -EINVAL;
			groups_seen = true;
			if (n <= ARRAY_SIZE(req->groups_inline)) {
				memcpy(req->groups_inline, body + 4, 4 * (size_t)n);
				req->ctx.groups = req->groups_inline;
			} else {
				req->groups_heap = malloc(4 * (size_t)n);
				if (!req->groups_heap)
					return -ENOMEM;
				memcpy(req->groups_heap, body + 4, 4 * (size_t)n);
				req->ctx.groups = req->groups_heap;
			}
			req->ctx.ngroups = n;
		} else {
			log_warn("fuse: %s carries an extension of unknown type %u",
				 fuse_opcode_name(req->in.opcode), h.type);
			return -EINVAL;
		}
	}
check:
	/* With SECURITY_CTX agreed the kernel always sends the header, even with no context. */
	if ((enabled & FUSE_SECURITY_CTX) && is_creating_op(req->in.opcode) && !secctx_seen) {
		log_warn("fuse: %s lacks its security context extension",
			 fuse_opcode_name(req->in.opcode));
		return -EINVAL;
	}
	return 0;
}

uint32_t fuse_server_handle_async(struct fuse_server *srv, const struct iovec *rd, int nrd,
				  const struct iovec *wr, int nwr, void *treq)
{
	struct fuse_req req = { .srv = srv, .rd = rd, .nrd = nrd, .wr = wr, .nwr = nwr,
				.treq = treq };
	const struct fuse_op *op;
	size_t rd_len = iov_length(rd, nrd), copy_len;
	void *heap = NULL;
	uint64_t t0 = metrics_stamp();
	int err;

	req.wr_cap = iov_length(wr, nwr);
	if (iov_to_buf(rd, nrd, 0, &req.in, sizeof(req.in)) < sizeof(req.in)) {
		log_warn("fuse: request shorter than its header (%zu bytes)", rd_len);
		memset(&req.in, 0, sizeof(req.in));
		return send_reply(&req, -EINVAL);
	}
	req.ctx.uid = req.in.uid;
	req.ctx.gid = req.in.gid;
	req.ctx.pid = req.in.pid;
	op = fuse_op_lookup(req.in.opcode);
	log_trace("fuse: unique %llu %s nodeid %llu len %u", (unsigned long long)req.in.unique,
		  op ? op->name : "UNKNOWN", (unsigned long long)req.in.nodeid, req.in.len);

	if (req.in.len < sizeof(req.in) || req.in.len > rd_len) {
		log_warn("fuse: %s header length %u disagrees with %zu readable bytes",
			 fuse_opcode_name(req.in.opcode), req.in.len, rd_len);
		err = -EINVAL;
		goto reply;
	}
	if (req.in.len > FUSE_SERVER_MAX_REQUEST) {
		err = -ENOMEM;
		goto reply;
	}
	if (!op || !op->fn) {
		err = -ENOSYS;
		goto reply;
	}
	if (!fuse_session_live(srv) && req.in.opcode != FUSE_INIT) {
		err = -EIO;
		goto reply;
	}

	req.arglen = req.in.len - sizeof(req.in);
	/* WRITE's payload stays in guest memory: only its fixed part is copied. */
	copy_len = req.in.opcode == FUSE_WRITE ? MIN(req.arglen, op->min_arg) : req.arglen;
	if (copy_len <= ARG_INLINE_SIZE) {
		req.arg = (const uint8_t *)arg_inline;
	} else {
		heap = malloc(copy_len);
		if (!heap) {
			err = -ENOMEM;
			goto reply;
		}
		req.arg = heap;
	}
	iov_to_buf(rd, nrd, sizeof(req.in), (void *)req.arg, copy_len);
	if (req.arglen < op->min_arg) {
		log_warn("fuse: %s arguments of %zu bytes, need %zu", op->name, req.arglen,
			 op->min_arg);
		err = -EINVAL;
		goto reply;
	}
	if (req.in.opcode != FUSE_WRITE)
		req.arglen = copy_len;
	err = parse_extensions(&req);
	if (err == 0 && req.arglen < op->min_arg)
		err = -EINVAL; /* the extensions took bytes the fixed arguments need */
	if (err < 0)
		goto reply;
	err = op->fn(&req);
	if (err == FUSE_OP_DEFERRED) {
		count(&req, 0, t0); /* counted when it starts to wait */
		free(heap);
		free(req.groups_heap);
		return VFSD_DEFERRED;
	}

reply:
	free(heap);
	free(req.groups_heap);
	count(&req, err, t0);
	if (op && op->noreply && err != -ENOMEM && err != -EOVERFLOW)
		return 0;
	return send_reply(&req, err);
}
