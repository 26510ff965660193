/*
 * A thin FUSE client over the test frontend: each call builds the request a Linux 6.1 guest
 * would send, carries it through the request queue and checks the reply's framing.
 *
 * Return values: 0, the reply's -errno, or one of the FC_E* transport errors below (the
 * reply never came, or came malformed); fc_strerror() names both kinds.
 */
#ifndef VFSD_TESTS_FUSE_CLIENT_H
#define VFSD_TESTS_FUSE_CLIENT_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontend.h"

#define FC_ROOT 1

enum {
	FC_ETIMEDOUT = -100000, /* no used entry in time */
	FC_ENOREPLY,		/* used entry with length 0 */
	FC_EBADREPLY,		/* reply framing wrong (see fc->err) */
	FC_ETRANSPORT,		/* could not submit (see fe_error) */
};

/* One piece of a request or reply, in our memory. */
struct fc_arg {
	const void *p;
	size_t len;
};

struct fc {
	struct fe_dev *dev;
	unsigned int queue; /* request queue of the next fc_start (FE_REQUEST by default) */
	enum fe_chain chain; /* FE_DIRECT or FE_INDIRECT */
	bool split_pages;    /* payloads in 4 KiB descriptors, as the kernel's pages */
	uint64_t next_unique;
	uint32_t uid, gid, pid;
	int timeout_ms;
	struct fuse_init_out init; /* INIT's answer */
	const void *ext;	   /* request extensions (7.38) for the next request only, */
	size_t ext_len;		   /* a multiple of 8: appended, and counted in total_extlen */
	unsigned int inflight;	   /* requests between fc_start and fc_finish */
	struct fe_mark base;	   /* guest scratch memory before the first of them */
	/* Never give scratch memory back: each buffer serves one request. With several rings a
	 * reused buffer is written by one ring's thread and read by another's, ordered only by
	 * this process (the guest), which ThreadSanitizer in the daemon cannot see. */
	bool keep_scratch;
	bool hold_kick; /* fc_start only publishes: the test kicks (fe_kick), for a batch at once */
	char err[256];
};

/* A request in flight (fc_start .. fc_finish). */
struct fc_req {
	uint32_t opcode;
	uint64_t nodeid;
	uint64_t unique;
	unsigned int queue; /* the ring it went on: c->queue at fc_start, or hiprio */
	uint16_t head;
	bool noreply;
	uint64_t out_gpa; /* out header, then the payload */
	size_t out_cap;	  /* payload bytes the guest left */
};

void fc_setup(struct fc *c, struct fe_dev *dev);
const char *fc_strerror(const struct fc *c, int r);

/* Starts a request with the given argument pieces and room for outcap reply bytes. Its guest
 * buffers are given back when no request of this client is in flight any more. */
int fc_start(struct fc *c, struct fc_req *rq, uint32_t opcode, uint64_t nodeid,
	     const struct fc_arg *in, int nin, size_t outcap);
/* Waits for it; copies up to outcap reply bytes into out; *outlen gets the payload length. */
int fc_finish(struct fc *c, struct fc_req *rq, void *out, size_t outcap, size_t *outlen);
/* Both, for one request; out may be NULL when outcap is 0. */
int fc_call(struct fc *c, uint32_t opcode, uint64_t nodeid, const struct fc_arg *in, int nin,
	    void *out, size_t outcap, size_t *outlen);
/* A request whose reply must have exactly outlen payload bytes on success. */
int fc_call_fixed(struct fc *c, uint32_t opcode, uint64_t nodeid, const void *arg, size_t arglen,
		  const char *name1, const char *name2, void *out, size_t outlen);

/* INIT as a Linux 6.1 guest sends it (7.38, INIT_EXT, 104 bytes); fills c->init. */
int fc_init(struct fc *c);
/* INIT as a 6.1 kernel, offering extra_flags too (e.g. SECURITY_CTX, CREATE_SUPP_GROUP). */
int fc_init_plus(struct fc *c, uint64_t extra_flags);
int fc_init_with(struct fc *c, uint32_t major, uint32_t minor, uint64_t flags,
		 struct fuse_init_out *out);
int fc_destroy(struct fc *c);
int fc_lookup(struct fc *c, uint64_t parent, const char *name, struct fuse_entry_out *e);
int fc_forget(struct fc *c, uint64_t nodeid, uint64_t nlookup);
int fc_batch_forget(struct fc *c, const struct fuse_forget_one *one, uint32_t count);
int fc_getattr(struct fc *c, uint64_t nodeid, struct fuse_attr_out *a);
int fc_setattr(struct fc *c, uint64_t nodeid, const struct fuse_setattr_in *in,
	       struct fuse_attr_out *a);
int fc_readlink(struct fc *c, uint64_t nodeid, char *buf, size_t size, size_t *len);
int fc_symlink(struct fc *c, uint64_t parent, const char *name, const char *target,
	       struct fuse_entry_out *e);
int fc_mknod(struct fc *c, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
	     struct fuse_entry_out *e);
int fc_mkdir(struct fc *c, uint64_t parent, const char *name, uint32_t mode,
	     struct fuse_entry_out *e);
int fc_unlink(struct fc *c, uint64_t parent, const char *name);
int fc_rmdir(struct fc *c, uint64_t parent, const char *name);
int fc_rename(struct fc *c, uint64_t olddir, const char *oldname, uint64_t newdir,
	      const char *newname);
int fc_rename2(struct fc *c, uint64_t olddir, const char *oldname, uint64_t newdir,
	       const char *newname, uint32_t flags);
int fc_link(struct fc *c, uint64_t nodeid, uint64_t newparent, const char *newname,
	    struct fuse_entry_out *e);
int fc_open(struct fc *c, uint64_t nodeid, uint32_t flags, struct fuse_open_out *o);
int fc_create(struct fc *c, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
	      struct fuse_entry_out *e, struct fuse_open_out *o);
int fc_tmpfile(struct fc *c, uint64_t parent, uint32_t flags, uint32_t mode,
	       struct fuse_entry_out *e, struct fuse_open_out *o);
int fc_read(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf, size_t size,
	    size_t *got);
int fc_write(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, const void *buf, size_t size,
	     size_t *written);
int fc_statfs(struct fc *c, uint64_t nodeid, struct fuse_statfs_out *st);
int fc_release(struct fc *c, uint64_t nodeid, uint64_t fh);
int fc_releasedir(struct fc *c, uint64_t nodeid, uint64_t fh);
int fc_flush(struct fc *c, uint64_t nodeid, uint64_t fh);
int fc_fsync(struct fc *c, uint64_t nodeid, uint64_t fh, bool datasync);
int fc_fsyncdir(struct fc *c, uint64_t nodeid, uint64_t fh, bool datasync);
int fc_opendir(struct fc *c, uint64_t nodeid, struct fuse_open_out *o);
int fc_readdir(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf, size_t size,
	       size_t *len);
int fc_readdirplus(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf, size_t size,
		   size_t *len);
int fc_access(struct fc *c, uint64_t nodeid, uint32_t mask);
int fc_interrupt(struct fc *c, uint64_t unique);
int fc_fallocate(struct fc *c, uint64_t nodeid, uint64_t fh, uint32_t mode, uint64_t off,
		 uint64_t len);
int fc_lseek(struct fc *c, uint64_t nodeid, uint64_t fh, uint64_t off, uint32_t whence,
	     uint64_t *result);
int fc_copy_file_range(struct fc *c, uint64_t nodeid_in, uint64_t fh_in, uint64_t off_in,
		       uint64_t nodeid_out, uint64_t fh_out, uint64_t off_out, uint64_t len,
		       size_t *copied);
int fc_syncfs(struct fc *c, uint64_t nodeid);
/* Extended attributes, as a guest without SETXATTR_EXT sends them. With size 0, getxattr and
 * listxattr set *len to the size the daemon says is needed. */
int fc_setxattr(struct fc *c, uint64_t nodeid, const char *name, const void *value, size_t size,
		uint32_t flags);
int fc_setxattr_ext(struct fc *c, uint64_t nodeid, const char *name, const void *value,
		    size_t size, uint32_t flags, uint32_t setxattr_flags);
int fc_getxattr(struct fc *c, uint64_t nodeid, const char *name, void *buf, size_t size,
		size_t *len);
int fc_listxattr(struct fc *c, uint64_t nodeid, void *buf, size_t size, size_t *len);
int fc_removexattr(struct fc *c, uint64_t nodeid, const char *name);

/* Walks READDIR(PLUS) records: calls fn for each; returns the count or -EPROTO if malformed. */
int fc_dir_walk(const void *buf, size_t len, bool plus,
		void (*fn)(const struct fuse_dirent *d, const struct fuse_entry_out *e, void *arg),
		void *arg);
/* Finds name in a READDIR(PLUS) buffer; fills *d (and *e in plus mode) when found. */
bool fc_dir_find(const void *buf, size_t len, bool plus, const char *name, struct fuse_dirent *d,
		 struct fuse_entry_out *e);

#endif
