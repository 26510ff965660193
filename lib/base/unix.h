/* File descriptors passed over unix sockets (SCM_RIGHTS). */
#ifndef VFSD_BASE_UNIX_H
#define VFSD_BASE_UNIX_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The most fds one message carries here (vhost-user's limit is 8; one more for tests). */
#define UNIX_FDS_MAX 16

/* Sends iov with nfds fds attached (EINTR retried, no SIGPIPE). Returns the bytes sent or a
 * negative errno (-EINVAL for more than UNIX_FDS_MAX fds). */
ssize_t unix_send_fds(int sock, const struct iovec *iov, int niov, const int *fds,
		      unsigned int nfds);

/*
 * Receives into iov with recvmsg flags (MSG_CMSG_CLOEXEC is added); the fds that came with
 * the bytes go to fds (*nfds of them, at most max, which may be 0). Returns the bytes
 * received (0 at the end of the stream) or a negative errno; -EMSGSIZE when more than max
 * fds came: the kernel dropped the rest, the bytes are consumed, and the *nfds that fit are
 * the caller's to close.
 */
ssize_t unix_recv_fds(int sock, const struct iovec *iov, int niov, int flags, int *fds,
		      unsigned int max, unsigned int *nfds);

#endif
