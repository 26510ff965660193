/*
 * The /dev/fuse transport: the same FUSE server and filesystem, mounted on a host directory
 * instead of served to a guest over vhost-user. It exists so the POSIX conformance tests run
 * on the host kernel in seconds; the guest stays the full proof.
 */
#ifndef VFSD_FUSEDEV_H
#define VFSD_FUSEDEV_H

#include <stddef.h>

#include "fuse/server.h"

/*
 * Opens /dev/fuse and mounts it on mountpoint (a directory outside the shared directory, or
 * the daemon would call into itself). Returns the connection fd, or -errno with a message.
 */
int fusedev_mount(const char *mountpoint, const char *shared_dir, int *fd_out, char *err,
		  size_t errlen);

/*
 * Serves the connection with nthreads readers (each runs thread_init first, if set) until the
 * file system is unmounted. Waiting requests answer through the server's transport, which
 * this sets. Returns 0 when unmounted, or -errno if the connection failed.
 */
int fusedev_serve(int fd, struct fuse_server *srv, unsigned int nthreads,
		  void (*thread_init)(void));

#endif
