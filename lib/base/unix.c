/* File descriptors over unix sockets (SCM_RIGHTS), for vhost-user, the control socket and
 * the test peers of both. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/unix.h"
#include "base/util.h"

ssize_t unix_send_fds(int sock, const struct iovec *iov, int niov, const int *fds,
		      unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * UNIX_FDS_MAX)];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)niov };
	ssize_t n;

	if (nfds > UNIX_FDS_MAX)
		return -EINVAL;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t unix_recv_fds(int sock, const struct iovec *iov, int niov, int flags, int *fds,
		      unsigned int max, unsigned int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * UNIX_FDS_MAX)];
		struct cmsghdr align;
	} control;
	/* Room for max fds only: the kernel itself drops any more (a release, not a close(2) of
	 * ours, so a file whose close blocks, as on a hung FUSE mount, cannot block us). */
	struct msghdr mh = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = (size_t)niov,
		.msg_control = max ? control.buf : NULL,
		.msg_controllen = max ? CMSG_SPACE(sizeof(int) * MIN(max, UNIX_FDS_MAX)) : 0,
	};
	ssize_t n;

	*nfds = 0;
	do {
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt && *nfds < max; i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	return mh.msg_flags & MSG_CTRUNC ? -EMSGSIZE : n;
}
