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

#include "fs/fs.h"

/* Largest payload of READ/WRITE/READDIR (max_write), and the largest request accepted. */
#define FUSE_SERVER_MAX_BUFFER (1u << 20)
#define FUSE_SERVER_MAX_REQUEST (FUSE_SERVER_MAX_BUFFER + 0x1000)

struct fuse_server {
	const struct vfsd_fs_ops *ops;
	void *fs;
	pthread_mutex_t lock; /* serialises INIT/DESTROY against each other */
	bool initialized;     /* guarded by lock for writes; read racily by requests */
	uint64_t enabled;     /* FUSE_* flags agreed at INIT */
	uint32_t minor;	      /* the kernel's minor version */
};

void fuse_server_init(struct fuse_server *srv, const struct vfsd_fs_ops *ops, void *fs);
void fuse_server_cleanup(struct fuse_server *srv);

/* Serves one request; returns the number of bytes written into wr. */
uint32_t fuse_server_handle(struct fuse_server *srv, const struct iovec *rd, int nrd,
			    const struct iovec *wr, int nwr);
/* Ends the session as DESTROY does (the transport was reset). */
void fuse_server_reset(struct fuse_server *srv);

/* Opcode name for logs ("UNKNOWN" if none). */
const char *fuse_opcode_name(uint32_t opcode);

#endif
