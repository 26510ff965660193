/*
 * export-state, resume and spawn's import_state (docs/control.md, docs/migration.md): moving
 * a sandbox's daemon state between supervisors without a VMM in the middle.
 *
 * Each child gets a listening socket, RUNTIME_DIR/sandboxes/ID/state.sock, as its --state-fd
 * (a restarted supervisor connects to it again by its path). An op is one connection: a line
 * ("export\n" with the caller's destination fd, or "resume\n") and one line back ("ok
 * [BYTES]" or "error ERRNO MESSAGE"). The connection is watched by the supervisor's loop like
 * any other fd: the loop never waits for a daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/unix.h"
#include "base/util.h"
#include "ctl/supervisor.h"

#define STATE_REPLY_MAX 512

struct ctl_state_op {
	struct ctl_watch w;
	int fd;
	struct ctl_client *client; /* NULL once it went away */
	struct json_object *id;
	enum ctl_op op;
	char sandbox[CTL_SANDBOX_MAX + 1];
	char reply[STATE_REPLY_MAX];
	size_t len;
	struct ctl_state_op *next;
};

/*
 * The address of sandbox's state socket. RUNTIME_DIR/sandboxes/ID/state.sock is longer than
 * sun_path holds for long sandbox ids (128 characters are allowed): the path goes through an
 * fd of the sandbox's directory instead, *dirfd, which the caller closes after bind/connect.
 */
static int state_path(const struct ctl_supervisor *s, const char *sandbox, struct sockaddr_un *a,
		      int *dirfd)
{
	char dir[PATH_MAX];

	*a = (struct sockaddr_un){ .sun_family = AF_UNIX };
	*dirfd = -1;
	if (ctl_child_dir(s, sandbox, NULL, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return -errno;
	snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/state.sock", *dirfd);
	return 0;
}

int ctl_state_socket_new(struct ctl_supervisor *s, const char *sandbox)
{
	struct sockaddr_un a;
	int fd, r, dirfd;

	r = state_path(s, sandbox, &a, &dirfd);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		close(dirfd);
		return r;
	}
	unlinkat(dirfd, "state.sock", 0); /* an ended daemon's */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    fchmodat(dirfd, "state.sock", 0600, 0) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		close(fd);
		close(dirfd);
		return r;
	}
	close(dirfd);
	return fd;
}

static void op_free(struct ctl_supervisor *s, struct ctl_state_op *op)
{
	for (struct ctl_state_op **p = &s->state_ops; *p; p = &(*p)->next) {
		if (*p == op) {
			*p = op->next;
			break;
		}
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, op->fd, NULL);
	close(op->fd);
	json_object_put(op->id);
	free(op);
}

static void op_reply(struct ctl_supervisor *s, struct ctl_state_op *op, struct json_object *o)
{
	struct ctl_client *c = op->client;

	if (c) {
		ctl_client_send(s, c, o);
		if (!c->dead)
			ctl_client_done(s, c);
	} else {
		json_object_put(o);
	}
}

void ctl_state_request(struct ctl_supervisor *s, struct ctl_client *c, struct ctl_child *ch,
		       const struct ctl_request *req, int fd)
{
	const char *line = req->op == CTL_OP_EXPORT_STATE ? "export\n" : "resume\n";
	struct iovec iov = { (void *)line, strlen(line) };
	struct ctl_state_op *op = NULL;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	struct sockaddr_un a;
	int e = 0, sock = -1, dirfd = -1;
	ssize_t n;

	if (req->op == CTL_OP_EXPORT_STATE && fd < 0) {
		ctl_client_send(s, c, ctl_reply_error(req->id, EINVAL,
						      "export-state needs the destination (a file or pipe open for writing) passed with the request (SCM_RIGHTS)"));
		return;
	}
	if (ch->state != CHILD_RUNNING) {
		ctl_client_send(s, c, ctl_reply_error(req->id, EAGAIN, "sandbox %s is %s, not running",
						      ch->sandbox, ctl_state_names[ch->state]));
		goto out;
	}
	e = -state_path(s, ch->sandbox, &a, &dirfd);
	if (e)
		goto fail;
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof(a)) < 0) {
		/* No socket at all: a daemon an older supervisor started without one. */
		e = errno == ENOENT ? ECONNREFUSED : errno;
		goto fail;
	}
	close(dirfd);
	dirfd = -1;
	n = unix_send_fds(sock, &iov, 1, &fd, fd >= 0 ? 1 : 0);
	if (n != (ssize_t)iov.iov_len) {
		e = n < 0 ? (int)-n : EIO;
		goto fail;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		e = ENOMEM;
		goto fail;
	}
	op->w = (struct ctl_watch){ W_STATE, op };
	op->fd = sock;
	op->client = c;
	op->id = req->id ? json_object_get(req->id) : NULL;
	op->op = req->op;
	snprintf(op->sandbox, sizeof(op->sandbox), "%s", ch->sandbox);
	ev.data.ptr = &op->w;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		e = errno;
		json_object_put(op->id);
		free(op);
		goto fail;
	}
	op->next = s->state_ops;
	s->state_ops = op;
	c->busy = true; /* its next line waits for this answer */
	log_info("sandbox %s: %s for uid %u", ch->sandbox, ctl_op_name(req->op), c->who.uid);
	goto out;
fail:
	if (sock >= 0)
		close(sock);
	if (dirfd >= 0)
		close(dirfd);
	ctl_client_send(s, c, ctl_reply_error(req->id, e,
					      "sandbox %s: its daemon does not answer %s: %s",
					      ch->sandbox, ctl_op_name(req->op), strerror(e)));
out:
	ctl_fd_discard(s, fd); /* the daemon has its own copy */
}

void ctl_state_on_input(struct ctl_supervisor *s, struct ctl_state_op *op)
{
	struct json_object *o;
	unsigned long long bytes = 0;
	char *nl, msg[STATE_REPLY_MAX];
	int e = 0;
	ssize_t n = read(op->fd, op->reply + op->len, sizeof(op->reply) - 1 - op->len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		op->len += (size_t)n;
	op->reply[op->len] = '\0';
	nl = strchr(op->reply, '\n');
	if (!nl && n > 0 && op->len < sizeof(op->reply) - 1)
		return; /* the rest of the line comes */
	if (nl)
		*nl = '\0';
	if (nl && strncmp(op->reply, "ok", 2) == 0 &&
	    (op->reply[2] == '\0' || sscanf(op->reply + 2, " %llu", &bytes) == 1)) {
		o = ctl_reply_new(true, op->id);
		json_object_object_add(o, "sandbox", json_object_new_string(op->sandbox));
		if (op->op == CTL_OP_EXPORT_STATE) {
			json_object_object_add(o, "bytes", json_object_new_int64((int64_t)bytes));
			json_object_object_add(o, "paused", json_object_new_boolean(true));
		}
		log_info("sandbox %s: %s done%s", op->sandbox, ctl_op_name(op->op),
			 op->op == CTL_OP_EXPORT_STATE ? "; its rings are paused" : "");
	} else if (nl && sscanf(op->reply, "error %d %[^\n]", &e, msg) == 2 && e > 0) {
		o = ctl_reply_error(op->id, e, "sandbox %s: %s", op->sandbox, msg);
	} else {
		o = ctl_reply_error(op->id, EIO, "sandbox %s: its daemon ended or broke off the %s",
				    op->sandbox, ctl_op_name(op->op));
	}
	op_reply(s, op, o);
	op_free(s, op);
}

void ctl_state_forget_client(struct ctl_supervisor *s, struct ctl_client *c)
{
	for (struct ctl_state_op *op = s->state_ops; op; op = op->next)
		if (op->client == c)
			op->client = NULL; /* the daemon still answers; nobody hears it */
}

void ctl_state_free(struct ctl_supervisor *s)
{
	while (s->state_ops)
		op_free(s, s->state_ops);
}
