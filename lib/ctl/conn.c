/* A client's connection to the control socket (conn.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/unix.h"
#include "base/util.h"
#include "ctl/conn.h"
#include "ctl/proto.h"

uint64_t ctl_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 0 or -ETIMEDOUT/-errno. */
static int wait_fd(const struct ctl_conn *c, short events)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = events };
		int timeout = -1, r;

		if (c->deadline_ms) {
			uint64_t now = ctl_clock_ms();

			if (now >= c->deadline_ms)
				return -ETIMEDOUT;
			timeout = (int)MIN(c->deadline_ms - now, (uint64_t)INT32_MAX);
		}
		r = poll(&p, 1, timeout);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int ctl_conn_open(struct ctl_conn *c, const char *path, uint64_t deadline_ms)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int r = 0;

	*c = (struct ctl_conn){ .fd = -1, .deadline_ms = deadline_ms };
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (deadline_ms ? SOCK_NONBLOCK : 0), 0);
	if (c->fd < 0)
		return -errno;
	/* A unix connect does not block on a listener that does not accept; it fails with
	 * EAGAIN when the backlog is full: that is a supervisor that hangs, retried until the
	 * deadline. */
	while (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		if (r == -EINTR)
			continue;
		if (r != -EAGAIN || !deadline_ms)
			break;
		if (ctl_clock_ms() >= deadline_ms) {
			r = -ETIMEDOUT;
			break;
		}
		usleep(10000);
		r = 0;
	}
	if (r < 0) {
		close(c->fd);
		c->fd = -1;
	}
	return r;
}

int ctl_conn_send(struct ctl_conn *c, struct json_object *req, int pass_fd)
{
	return ctl_conn_send_fds(c, req, &pass_fd, pass_fd >= 0 ? 1 : 0);
}

int ctl_conn_send_fds(struct ctl_conn *c, struct json_object *req, const int *fds,
		      unsigned int nfds)
{
	size_t len;
	char *line = ctl_line(req, &len);
	struct iovec iov;
	int r = 0;

	if (!line)
		return -ENOMEM;
	iov = (struct iovec){ line, len };
	while (iov.iov_len) {
		ssize_t n = unix_send_fds(c->fd, &iov, 1, fds, nfds);

		if (n == -EAGAIN && (r = wait_fd(c, POLLOUT)) == 0)
			continue;
		if (n < 0) {
			r = r ? r : (int)n;
			break;
		}
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		nfds = 0; /* the fds went with the first bytes */
	}
	free(line);
	return r;
}

struct json_object *ctl_conn_recv(struct ctl_conn *c, int *err)
{
	int e = 0;

	free(c->raw);
	c->raw = NULL;
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			struct json_object *o;

			c->raw = strndup(c->buf, n);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			if (!c->raw) {
				e = -ENOMEM;
				break;
			}
			o = json_tokener_parse(c->raw);
			if (!o)
				e = -EPROTO;
			if (err)
				*err = e;
			return o;
		}
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 65536;
			char *p = cap <= CTL_OUT_MAX ? realloc(c->buf, cap) : NULL;

			if (!p) {
				e = cap <= CTL_OUT_MAX ? -ENOMEM : -EPROTO;
				break;
			}
			c->buf = p;
			c->cap = cap;
		}
		if (c->deadline_ms && (e = wait_fd(c, POLLIN)) < 0)
			break;
		ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);

		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			e = r < 0 ? -errno : 0;
			break;
		}
		c->len += (size_t)r;
	}
	if (err)
		*err = e;
	return NULL;
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->raw);
	*c = (struct ctl_conn){ .fd = -1 };
}

bool ctl_reply_ok(struct json_object *reply)
{
	struct json_object *v;

	return json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v);
}
