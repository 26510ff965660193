/*
 * The FUSE server: one request in (readable iovecs), one reply out (writable iovecs).
 * It copies the header and arguments out of guest memory, checks every length, decodes
 * through an opcode table and calls the filesystem. It never touches virtqueues.
 */
#ifndef VFSD_FUSE_SERVER_H
#define VFSD_FUSE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/util.h"
#include "fs/fs.h"

/* Largest payload of READ/WRITE/READDIR (max_write), and the largest request accepted. */
#define FUSE_SERVER_MAX_BUFFER (1u << 20)
#define FUSE_SERVER_MAX_REQUEST (FUSE_SERVER_MAX_BUFFER + 0x1000)

/*
 * How a request that waits (SETLKW on a held lock) is answered later. defer() is called while
 * the request is being handled, with the transport's handle of it (treq); complete() takes
 * the reply (an out header) from the thread that waited. Without a transport such a request
 * is answered EAGAIN at once.
 */
struct fuse_transport {
	void *(*defer)(void *opaque, void *treq); /* NULL: cannot defer now */
	void (*complete)(void *token, const void *reply, uint32_t len);
	void *opaque;
};


struct fuse_waiter;

struct fuse_server {
	const struct vfsd_fs_ops *ops;
	void *fs;
	pthread_mutex_t lock; /* serialises INIT/DESTROY against each other */
	/* The session, written under lock by INIT and DESTROY and read by every request on any
	 * thread: only through fuse_session_live() and fuse_session_flags() (atomics; enabled
	 * and minor are stored before initialized is released). */
	bool initialized;
	uint64_t enabled; /* FUSE_* flags agreed at INIT */
	uint32_t minor;	  /* the kernel's minor version */
	/* Set before the transport's threads start and cleared after they end (and after every
	 * waiter has answered): requests read it without a lock. */
	struct fuse_transport transport;
	pthread_mutex_t waiters_lock;
	pthread_cond_t waiters_cond; /* a waiter ended */
	struct fuse_waiter *waiters; /* guarded by waiters_lock: requests that wait */
};

/* The session as a request sees it. */
static inline bool fuse_session_live(const struct fuse_server *srv)
{
	return __atomic_load_n(&srv->initialized, __ATOMIC_ACQUIRE);
}

static inline uint64_t fuse_session_flags(const struct fuse_server *srv)
{
	return __atomic_load_n(&srv->enabled, __ATOMIC_RELAXED);
}

void fuse_server_init(struct fuse_server *srv, const struct vfsd_fs_ops *ops, void *fs);
void fuse_server_set_transport(struct fuse_server *srv, const struct fuse_transport *t);
void fuse_server_cleanup(struct fuse_server *srv);

/* Serves one request; returns the number of bytes written into wr. */
uint32_t fuse_server_handle(struct fuse_server *srv, const struct iovec *rd, int nrd,
			    const struct iovec *wr, int nwr);
/* The same, for a transport that can answer later: treq is passed to its defer(); returns
 * VFSD_DEFERRED when it will (through the transport's complete()). */
uint32_t fuse_server_handle_async(struct fuse_server *srv, const struct iovec *rd, int nrd,
				  const struct iovec *wr, int nwr, void *treq);
/* Ends every waiting request now with EINTR (the transport stops a ring). */
void fuse_server_cancel_waiters(struct fuse_server *srv);
/* Ends the session as DESTROY does (the transport was reset). */
void fuse_server_reset(struct fuse_server *srv);

/*
 * Migration's destination: a session as an INIT would have made it, without one. With known,
 * the kernel's minor and the flags the source agreed are taken as what the kernel offered
 * (the same configuration agrees the same); without, those of a Linux 6.1 guest. The
 * filesystem's init runs (its tables are emptied); *agreed gets the flags now agreed. The
 * session is live only after fuse_server_resumed(), once the tables are filled.
 */
int fuse_server_resume(struct fuse_server *srv, bool known, uint32_t minor, uint64_t enabled,
		       uint64_t *agreed);
void fuse_server_resumed(struct fuse_server *srv);
/* The session for a migration's source: whether there is one, its minor and flags. */
static inline bool fuse_server_session(const struct fuse_server *srv, uint32_t *minor,
				       uint64_t *enabled)
{
	*minor = __atomic_load_n(&srv->minor, __ATOMIC_RELAXED);
	*enabled = fuse_session_flags(srv);
	return fuse_session_live(srv);
}

/* Opcode name for logs ("UNKNOWN" if none). */
const char *fuse_opcode_name(uint32_t opcode);

#endif
