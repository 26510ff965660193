/* What an opcode handler sees: the decoded request and the helpers to build its reply. */
#ifndef VFSD_FUSE_REQUEST_H
#define VFSD_FUSE_REQUEST_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fs/fs.h"
#include "fuse/server.h"

/* Protocol 7.38's extension type that Debian 12's UAPI header (Linux 6.1) lacks. */
#define VFSD_FUSE_EXT_GROUPS 32 /* enum fuse_ext_type */

/* Most iovecs one READ or WRITE payload is split into (a 1 MiB payload in 4 KiB pages
 * needs 257). */
#define VFSD_IOV_MAX 1024

struct fuse_req {
	struct fuse_server *srv;
	struct fuse_in_header in; /* copied out of guest memory */
	struct vfsd_req_ctx ctx;
	const uint8_t *arg; /* our copy of the arguments after the header */
	size_t arglen;	    /* bytes of arguments (WRITE: including the payload in rd) */
	size_t pos;	    /* decode cursor into arg */
	const struct iovec *rd;
	int nrd;
	const struct iovec *wr;
	int nwr;
	size_t wr_cap;	 /* bytes the guest left for the reply */
	size_t out_len;	 /* reply body length */
	bool out_direct; /* the body is already in wr, after the out header */
	void *treq;	 /* the transport's handle, for fuse_transport.defer */
	uint64_t outbuf[32];
	uint32_t groups_inline[16]; /* ctx.groups, copied aligned (the record may not be) */
	uint32_t *groups_heap;	    /* ... or here when there are more; freed with the request */
};

/* An opcode handler's answer: the reply will be sent later (the request waits). */
#define FUSE_OP_DEFERRED 1

/* lib/fuse/lock.c: GETLK, SETLK, SETLKW and the INTERRUPT of a waiting SETLKW. */
int fuse_do_getlk(struct fuse_req *req);
int fuse_do_setlk(struct fuse_req *req);
int fuse_do_setlkw(struct fuse_req *req);
/* Ends the waiting request with this unique (all of them if all) with EINTR. */
void fuse_cancel_waiters(struct fuse_server *srv, uint64_t unique, bool all);

struct fuse_op {
	int (*fn)(struct fuse_req *req); /* 0 with a reply set, or a negative errno */
	const char *name;
	size_t min_arg; /* fixed argument bytes the opcode needs */
	bool noreply;	/* FORGET, BATCH_FORGET, INTERRUPT, DESTROY */
};

const struct fuse_op *fuse_op_lookup(uint32_t opcode);

/* Next size bytes of the arguments, or NULL if the request is too short. */
const void *req_arg(struct fuse_req *req, size_t size);
/* Next NUL-terminated string of the arguments, or NULL if none is terminated. */
const char *req_name(struct fuse_req *req);
/* Sets a reply body held in the request (small structs). */
int reply_struct(struct fuse_req *req, const void *body, size_t len);
/* The handler wrote len bytes of body straight into wr after the header. */
int reply_direct(struct fuse_req *req, size_t len);
/* Bytes available for a reply body. */
size_t req_reply_capacity(const struct fuse_req *req);
/* iovecs covering the first len bytes of reply body space; returns the count. */
int req_reply_iov(struct fuse_req *req, size_t len, struct iovec *iov, int max);

#endif
