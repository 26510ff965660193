/*
 * The supervisor's event loop: one epoll set over the control socket, its clients, each
 * child's pidfd and ready pipe, and a signalfd. Every fd is non-blocking; a client's replies
 * are queued and written as it reads them, so no client can stall another or a spawn.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/unix.h"
#include "base/util.h"
#include "ctl/ctl.h"
#include "ctl/supervisor.h"
#include "sec/caps.h"

uint64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void watch_set(struct ctl_supervisor *s, int op, int fd, uint32_t events,
		      struct ctl_watch *w)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(s->epfd, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL)
		log_error("epoll_ctl: %s", strerror(errno));
}

/* What the client's fd should wake us for: input unless a request of its own is under way,
 * output while replies wait. */
static void client_rearm(struct ctl_supervisor *s, struct ctl_client *c)
{
	uint32_t ev = 0;

	/* EPOLLRDHUP only with EPOLLIN: it stays raised once the client has shut down its side,
	 * and unread it would wake the loop without end while a spawn or stop is under way.
	 * A client that goes away altogether still shows as EPOLLHUP. */
	if (!c->busy && !c->closing)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (c->out_len)
		ev |= EPOLLOUT;
	watch_set(s, EPOLL_CTL_MOD, c->fd, ev, &c->w);
}

/* --- fds passed by clients -------------------------------------------------------- */

struct closer {
	int fd;
	unsigned int *closing;
};

static void *closer_main(void *arg)
{
	struct closer *cl = arg;
	int fd;

	while (read(cl->fd, &fd, sizeof(fd)) == sizeof(fd)) {
		close(fd);
		__atomic_sub_fetch(cl->closing, 1, __ATOMIC_RELAXED);
	}
	close(cl->fd);
	free(cl);
	return NULL;
}

static int closer_start(struct ctl_supervisor *s)
{
	int p[2];
	pthread_t t;
	pthread_attr_t attr;
	struct closer *cl = malloc(sizeof(*cl));
	int r;

	if (!cl || pipe2(p, O_CLOEXEC) < 0) {
		free(cl);
		return -errno;
	}
	*cl = (struct closer){ .fd = p[0], .closing = &s->closing };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	r = pthread_create(&t, &attr, closer_main, cl);
	pthread_attr_destroy(&attr);
	if (r) {
		close(p[0]);
		close(p[1]);
		free(cl);
		return -r;
	}
	s->closer_fd = p[1];
	fcntl(s->closer_fd, F_SETFL, O_NONBLOCK);
	return 0;
}

void ctl_fd_discard(struct ctl_supervisor *s, int fd)
{
	if (fd < 0)
		return;
	__atomic_add_fetch(&s->closing, 1, __ATOMIC_RELAXED);
	if (write(s->closer_fd, &fd, sizeof(fd)) == sizeof(fd))
		return;
	/* The closer is stuck with a backlog as deep as the pipe: this one stays open rather
	 * than risk the loop (no more fds are taken meanwhile: on_client_input). */
	log_warn("control: cannot hand fd %d to the closer: %s", fd, strerror(errno));
}

void ctl_client_close(struct ctl_supervisor *s, struct ctl_client *c)
{
	if (c->dead)
		return;
	ctl_children_forget_client(s, c);
	ctl_state_forget_client(s, c);
	watch_set(s, EPOLL_CTL_DEL, c->fd, 0, NULL);
	close(c->fd);
	for (unsigned int i = 0; i < c->nfds; i++)
		ctl_fd_discard(s, c->fds[i]);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nclients--;
	c->dead = true;
	c->next = s->dead_clients;
	s->dead_clients = c;
}

static void reap_dead_clients(struct ctl_supervisor *s)
{
	while (s->dead_clients) {
		struct ctl_client *c = s->dead_clients;

		s->dead_clients = c->next;
		free(c->in);
		free(c->out);
		free(c);
	}
}

/* Writes what it can; false when the client is gone (freed). */
static bool client_flush(struct ctl_supervisor *s, struct ctl_client *c)
{
	while (c->out_len) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) { /* the peer went away mid-reply */
			ctl_client_close(s, c);
			return false;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	if (!c->out_len && c->closing) {
		ctl_client_close(s, c);
		return false;
	}
	client_rearm(s, c);
	return true;
}

static bool client_queue(struct ctl_client *c, const char *line, size_t len)
{
	if (c->out_len + len > CTL_OUT_MAX)
		return false;
	if (c->out_len + len > c->out_cap) {
		size_t cap = MAX(c->out_cap * 2, c->out_len + len);
		char *p = realloc(c->out, MIN(cap, (size_t)CTL_OUT_MAX));

		if (!p)
			return false;
		c->out = p;
		c->out_cap = MIN(cap, (size_t)CTL_OUT_MAX);
	}
	memcpy(c->out + c->out_len, line, len);
	c->out_len += len;
	return true;
}

void ctl_client_send(struct ctl_supervisor *s, struct ctl_client *c, struct json_object *obj)
{
	size_t len;
	char *line = obj ? ctl_line(obj, &len) : NULL;

	json_object_put(obj);
	if (!line || !client_queue(c, line, len)) {
		log_warn("dropping control client (pid %d): %s", (int)c->who.pid,
			 line ? "it does not read its replies" : "out of memory");
		free(line);
		ctl_client_close(s, c);
		return;
	}
	free(line);
	client_flush(s, c);
}

bool ctl_may_see(const struct ctl_client *c, const struct ctl_child *ch)
{
	return c->who.uid == 0 || c->who.uid == ch->owner;
}

void ctl_broadcast(struct ctl_supervisor *s, const struct ctl_child *ch, struct json_object *obj)
{
	size_t len;
	char *line = obj ? ctl_line(obj, &len) : NULL;
	struct ctl_client *c, *next;

	json_object_put(obj);
	if (!line)
		return;
	for (c = s->clients; c; c = next) {
		next = c->next;
		if (!c->watching || !ctl_may_see(c, ch))
			continue;
		if (!client_queue(c, line, len)) {
			log_warn("dropping watcher (pid %d): it does not read its events",
				 (int)c->who.pid);
			ctl_client_close(s, c);
			continue;
		}
		client_flush(s, c);
	}
	free(line);
}

/* --- authorization --------------------------------------------------------------------- */

static bool caller_allowed(const struct ctl_supervisor *s, const struct ctl_caller *who)
{
	const struct vfsd_supervisor_config *sc = &s->cfg->sup;

	if (who->uid == 0)
		return true;
	for (unsigned int i = 0; i < sc->nallow_uid; i++) {
		if (sc->allow_uid[i] == who->uid)
			return true;
	}
	for (unsigned int i = 0; i < sc->nallow_gid; i++) {
		if (sc->allow_gid[i] == who->gid)
			return true;
		for (int j = 0; j < who->ngroups; j++) {
			if (sc->allow_gid[i] == who->groups[j])
				return true;
		}
	}
	return false;
}

static int read_caller(int fd, struct ctl_caller *who)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	who->pid = cred.pid;
	who->uid = cred.uid;
	who->gid = cred.gid;
	len = sizeof(who->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, who->groups, &len) < 0)
		return errno == ERANGE ? -E2BIG : -errno; /* never half a group list */
	who->ngroups = (int)(len / sizeof(gid_t));
	return 0;
}

/* A connection that may not stay: one error line, sent without waiting, then closed. */
static void __attribute__((format(printf, 3, 4))) refuse(int fd, int errnum, const char *fmt, ...)
{
	struct json_object *o;
	char msg[256], *line;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = ctl_reply_error(NULL, errnum, "%s", msg);
	line = o ? ctl_line(o, &len) : NULL;

	if (line && send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refused client: %s", strerror(errno));
	free(line);
	json_object_put(o);
	close(fd);
}

static void on_accept(struct ctl_supervisor *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_caller who = { 0 };
		struct ctl_client *c;
		int r;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("control socket: %s", strerror(errno));
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_error("accept: %s", strerror(errno));
			return;
		}
		r = read_caller(fd, &who);
		if (r < 0) {
			refuse(fd, -r, "cannot tell who is calling: %s", strerror(-r));
			continue;
		}
		if (!caller_allowed(s, &who)) {
			log_warn("control socket: refused uid %u (pid %d)", who.uid, (int)who.pid);
			refuse(fd, EACCES,
			       "uid %u may not use this control socket (root and --control-allow-uid/-gid may)",
			       who.uid);
			continue;
		}
		if (s->nclients >= CTL_CLIENTS_MAX) {
			refuse(fd, EMFILE, "too many control connections (at most %d)", CTL_CLIENTS_MAX);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c)
			c->in = malloc(CTL_LINE_MAX + 1);
		if (!c || !c->in) {
			free(c);
			refuse(fd, ENOMEM, "out of memory");
			continue;
		}
		c->w = (struct ctl_watch){ W_CLIENT, c };
		c->fd = fd;
		c->who = who;
		c->next = s->clients;
		if (s->clients)
			s->clients->prev = c;
		s->clients = c;
		s->nclients++;
		watch_set(s, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP, &c->w);
	}
}

/* --- requests ------------------------------------------------------------------------- */

static struct json_object *version_reply(struct json_object *id)
{
	struct json_object *o = ctl_reply_new(true, id), *list = json_object_new_array();

	json_object_object_add(o, "version", json_object_new_string(VFSD_VERSION));
	json_object_object_add(o, "protocol", json_object_new_int(CTL_PROTOCOL_VERSION));
	for (int i = 0; i < CTL_OP_COUNT; i++)
		json_object_array_add(list, json_object_new_string(ctl_op_name((enum ctl_op)i)));
	json_object_object_add(o, "ops", list);
	return o;
}

/*
 * Takes the fds that came with the request, the line of len bytes at the start of c->in:
 * those whose message ended within it. Pipelined requests arrive in one read with the fds
 * of the last; those of a later line stay. Spawn may use one, the rest are closed.
 */
static int take_passed_fds(struct ctl_supervisor *s, struct ctl_client *c, size_t len, int fd[2],
			   unsigned int *count)
{
	unsigned int n = 0, keep = 0;

	fd[0] = fd[1] = -1;
	for (unsigned int i = 0; i < c->nfds; i++) {
		if (c->fd_at[i] > len) { /* a later line's */
			c->fds[keep] = c->fds[i];
			c->fd_at[keep++] = c->fd_at[i];
		} else if (n < 2) {
			fd[n++] = c->fds[i];
		} else {
			n++;
			ctl_fd_discard(s, c->fds[i]);
		}
	}
	c->nfds = keep;
	*count = n;
	if (n > 2) {
		ctl_fd_discard(s, fd[0]);
		ctl_fd_discard(s, fd[1]);
		fd[0] = fd[1] = -1;
		return -E2BIG;
	}
	return 0;
}

/* Which passed fd is what: spawn's listening socket (when it has no "socket_path") and its
 * import_state, in that order; export-state's destination. */
static int sort_passed_fds(const struct ctl_request *req, int fd[2], unsigned int n,
			   int *listen_fd, int *state_fd, char *err, size_t errlen)
{
	*listen_fd = *state_fd = -1;
	switch (req->op) {
	case CTL_OP_SPAWN: {
		unsigned int want = (req->socket_path ? 0u : 1u) + (req->import_state ? 1u : 0u);

		if (n == 0 && !req->import_state)
			return 0; /* spawn says "neither" when it has no "socket_path" either */

		/* One more with "socket_path" is a socket too: spawn's own error ("not both"). */
		if (n == want || (req->socket_path && n == want + 1)) {
			if (req->import_state)
				*state_fd = fd[--n];
			if (n)
				*listen_fd = fd[0];
			return 0;
		}
		snprintf(err, errlen,
			 "spawn takes a listening socket (without \"socket_path\") and, with \"import_state\", the state after it: %u file descriptors do not fit",
			 n);
		return -EINVAL;
	}
	case CTL_OP_EXPORT_STATE:
		if (n == 1) {
			*state_fd = fd[0];
			return 0;
		}
		snprintf(err, errlen,
			 n ? "export-state takes one file descriptor (its destination), not %u" :
			     "export-state needs the destination (a file or pipe open for writing) passed with the request (SCM_RIGHTS)",
			 n);
		return -EINVAL;
	default:
		if (n == 0)
			return 0;
		snprintf(err, errlen, "only spawn and export-state take a file descriptor");
		return -EINVAL;
	}
}

static void handle_request(struct ctl_supervisor *s, struct ctl_client *c, const char *line,
			   size_t len)
{
	struct ctl_request req;
	struct ctl_child *ch;
	struct json_object *o;
	char err[512];
	int passed[2], listen_fd = -1, state_fd = -1;
	unsigned int npassed = 0;
	int r = ctl_request_parse(line, len, &req, err, sizeof(err));

	if (take_passed_fds(s, c, len, passed, &npassed) < 0 && r == 0) {
		snprintf(err, sizeof(err), "a request may come with two file descriptors at most");
		r = -E2BIG;
	}
	if (r == 0)
		r = sort_passed_fds(&req, passed, npassed, &listen_fd, &state_fd, err, sizeof(err));
	if (r < 0) {
		ctl_fd_discard(s, passed[0]);
		ctl_fd_discard(s, passed[1]);
		ctl_client_send(s, c, ctl_reply_error(req.id, -r, "%s", err));
		ctl_request_free(&req);
		return;
	}
	log_debug("control: uid %u: %s", c->who.uid, ctl_op_name(req.op));
	switch (req.op) {
	case CTL_OP_PING:
		ctl_client_send(s, c, ctl_reply_new(true, req.id));
		break;
	case CTL_OP_VERSION:
		ctl_client_send(s, c, version_reply(req.id));
		break;
	case CTL_OP_SPAWN:
		ctl_child_spawn(s, c, &req, listen_fd, state_fd); /* it replies, now or once ready */
		state_fd = -1; /* taken */
		break;
	case CTL_OP_STOP:
	case CTL_OP_STATUS:
	case CTL_OP_EXPORT_STATE:
	case CTL_OP_RESUME:
		ch = ctl_child_find(s, req.sandbox);
		if (!ch) {
			ctl_client_send(s, c, ctl_reply_error(req.id, ENOENT, "no sandbox '%s'",
							      req.sandbox));
		} else if (!ctl_may_see(c, ch)) {
			ctl_client_send(s, c, ctl_reply_error(req.id, EPERM,
							      "sandbox '%s' was spawned by another user",
							      req.sandbox));
		} else if (req.op == CTL_OP_STOP) {
			ctl_child_stop(s, c, ch, &req);
		} else if (req.op != CTL_OP_STATUS) {
			ctl_state_request(s, c, ch, &req, state_fd);
			state_fd = -1;
		} else {
			ctl_client_send(s, c, ctl_child_reply(ch, req.id));
		}
		break;
	case CTL_OP_LIST: {
		struct json_object *list = json_object_new_array();

		for (ch = s->children; ch; ch = ch->next) {
			if (ctl_may_see(c, ch))
				json_object_array_add(list, ctl_child_status(ch));
		}
		o = ctl_reply_new(true, req.id);
		json_object_object_add(o, "sandboxes", list);
		ctl_client_send(s, c, o);
		break;
	}
	case CTL_OP_WATCH:
		c->watching = true;
		ctl_client_send(s, c, ctl_reply_new(true, req.id));
		break;
	case CTL_OP_METRICS:
		ctl_metrics_reply(s, c, &req);
		break;
	case CTL_OP_COUNT:
		break;
	}
	ctl_fd_discard(s, state_fd); /* export-state's when it was refused */
	ctl_request_free(&req);
}

/* Answers complete lines until a request has to wait; false when the client is gone. */
static bool client_process(struct ctl_supervisor *s, struct ctl_client *c)
{
	char *nl;

	while (!c->busy && !c->closing && (nl = memchr(c->in, '\n', c->in_len))) {
		size_t len = (size_t)(nl - c->in);

		handle_request(s, c, c->in, len);
		if (c->dead)
			return false; /* dropped while answering */
		memmove(c->in, nl + 1, c->in_len - len - 1);
		c->in_len -= len + 1;
		for (unsigned int i = 0; i < c->nfds; i++)
			c->fd_at[i] -= len + 1; /* all of a later line: past this one */
	}
	if (!c->busy && !c->closing && c->in_len > CTL_LINE_MAX) {
		ctl_client_send(s, c, ctl_reply_error(NULL, E2BIG,
						      "request line longer than %d bytes: closing",
						      CTL_LINE_MAX));
		if (c->dead)
			return false;
		c->closing = true;
		return client_flush(s, c);
	}
	return true;
}

void ctl_client_done(struct ctl_supervisor *s, struct ctl_client *c)
{
	c->busy = false;
	if (client_process(s, c))
		client_rearm(s, c);
}

static void on_client_input(struct ctl_supervisor *s, struct ctl_client *c)
{
	struct iovec iov = { c->in + c->in_len, CTL_LINE_MAX + 1 - c->in_len };
	int fds[UNIX_FDS_MAX];
	unsigned int nfds;
	ssize_t n;
	size_t at;

	if (iov.iov_len == 0) /* a full buffer with no newline: client_process refused it */
		return;
	/* While the closer has a backlog (a client's hung filesystem), fds are not taken: the
	 * kernel drops them and the request that wanted one says so. */
	n = unix_recv_fds(c->fd, &iov, 1, MSG_DONTWAIT, fds,
			  __atomic_load_n(&s->closing, __ATOMIC_RELAXED) < CTL_CLOSE_BACKLOG ? UNIX_FDS_MAX
											      : 0,
			  &nfds);
	if (n == -EAGAIN || n == -EWOULDBLOCK)
		return;
	if (n == -EMSGSIZE) { /* the bytes that came with them are gone: so is the connection */
		for (unsigned int i = 0; i < nfds; i++)
			ctl_fd_discard(s, fds[i]);
		ctl_client_send(s, c, ctl_reply_error(NULL, E2BIG,
						      nfds || !s->closing
							      ? "more than %d file descriptors in one message: closing"
							      : "file descriptors are not taken now (%d wait to be closed): closing",
						      nfds || !s->closing ? UNIX_FDS_MAX : (int)s->closing));
		if (!c->dead) {
			c->closing = true;
			client_flush(s, c);
		}
		return;
	}
	/* a read ends with the message that carried fds, if one did */
	at = n > 0 ? c->in_len + (size_t)n - 1 : c->in_len;
	for (unsigned int i = 0; i < nfds; i++) {
		if (c->nfds < CTL_CLIENT_FDS_MAX) {
			c->fd_at[c->nfds] = at;
			c->fds[c->nfds++] = fds[i];
		} else {
			ctl_fd_discard(s, fds[i]);
		}
	}
	if (n == 0 && c->out_len) { /* shut down its side: it still gets what it is owed */
		c->closing = true;
		client_flush(s, c);
		return;
	}
	if (n <= 0) { /* gone; a half line with it */
		ctl_client_close(s, c);
		return;
	}
	c->in_len += (size_t)n;
	if (client_process(s, c))
		client_rearm(s, c);
}

static void on_client(struct ctl_supervisor *s, struct ctl_client *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		if (!client_flush(s, c))
			return;
	}
	if (events & EPOLLIN) {
		on_client_input(s, c);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
		if (c->busy || c->out_len) {
			/* half-closed: keep writing what is owed; a read shows the end */
			if (!(events & (EPOLLERR | EPOLLHUP)))
				return;
		}
		ctl_client_close(s, c);
	}
}

/* --- set-up -------------------------------------------------------------------------- */

static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

static int listen_control(struct ctl_supervisor *s, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *group = s->cfg->sup.control_socket_group;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("control socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path); /* a previous supervisor's: the lock says none runs */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 512) < 0) {
		int e = errno;

		umask(old);
		log_error("cannot listen on %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	umask(old);
	if (group) {
		struct group *g = getgrnam(group);

		if (!g || chown(path, (uid_t)-1, g->gr_gid) < 0) {
			log_error("cannot give %s to group '%s': %s", path, group,
				  g ? strerror(errno) : "no such group");
			close(fd);
			return -EINVAL;
		}
	}
	return fd;
}

/* A supervisor has many clients and its children inherit the hard limit: raise both as far
 * as the kernel lets (without CAP_SYS_RESOURCE, the soft limit up to the hard one). */
static void raise_nofile(void)
{
	struct rlimit rl = { 1048576, 1048576 };
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long long nr;

	if (f) {
		if (fscanf(f, "%llu", &nr) == 1 && nr < rl.rlim_max)
			rl.rlim_cur = rl.rlim_max = nr;
		fclose(f);
	}
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("cannot raise the open-file limit: %s", strerror(errno));
}

static int setup(struct ctl_supervisor *s, const struct vfsd_config *cfg, char *sock,
		 size_t socklen)
{
	char lock[PATH_MAX], why[256];
	sigset_t mask;
	ssize_t n;

	s->cfg = cfg;
	s->runtime_dir = cfg->sup.runtime_dir ? cfg->sup.runtime_dir : VFSD_RUNTIME_DIR;
	if (s->runtime_dir[0] != '/') {
		log_error("--runtime-dir must be an absolute path");
		return -EINVAL;
	}
	if (snprintf(s->sandboxes_dir, sizeof(s->sandboxes_dir), "%s/sandboxes", s->runtime_dir) >=
		    (int)sizeof(s->sandboxes_dir) ||
	    snprintf(lock, sizeof(lock), "%s/supervisor.lock", s->runtime_dir) >= (int)sizeof(lock)) {
		log_error("--runtime-dir is too long");
		return -ENAMETOOLONG;
	}
	if (cfg->sup.control_socket)
		snprintf(sock, socklen, "%s", cfg->sup.control_socket);
	else
		snprintf(sock, socklen, "%s/" VFSD_CONTROL_SOCKET_NAME, s->runtime_dir);
	n = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1);
	if (n < 0) {
		log_error("cannot find the vfsd binary (/proc/self/exe): %s", strerror(errno));
		return -errno;
	}
	s->exe[n] = '\0';
	if (make_dir(s->runtime_dir, 0711) < 0 || make_dir(s->sandboxes_dir, 0711) < 0)
		return -EIO;
	/* State files say which pids to signal and which sockets to remove: nobody else may
	 * write where they live. */
	for (const char *d = s->runtime_dir; d; d = d == s->runtime_dir ? s->sandboxes_dir : NULL) {
		struct stat st;

		if (lstat(d, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
		    (st.st_mode & 022)) {
			log_error("%s must be a directory of uid %u that no one else may write",
				  d, (unsigned int)geteuid());
			return -EPERM;
		}
	}
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("%s: %s", lock,
			  errno == EWOULDBLOCK ? "another supervisor runs with this runtime dir"
					       : strerror(errno));
		return -EBUSY;
	}
	raise_nofile();
	if (vfsd_caps_limit_supervisor(why, sizeof(why)) < 0) {
		log_error("%s", why);
		return -EPERM;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->epfd < 0 || s->signal_fd < 0) {
		log_error("epoll/signalfd: %s", strerror(errno));
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	/* after the mask and the capabilities: the closer thread inherits both */
	if (closer_start(s) < 0) {
		log_error("cannot start the fd closer: %s", strerror(errno));
		return -EAGAIN;
	}
	if (ctl_metrics_setup(s) < 0) /* a thread too: after the mask and the capabilities */
		return -EINVAL;
	s->signal_w = (struct ctl_watch){ W_SIGNAL, NULL };
	watch_set(s, EPOLL_CTL_ADD, s->signal_fd, EPOLLIN, &s->signal_w);
	ctl_children_adopt(s); /* before the socket: a client sees the whole table at once */
	s->listen_fd = listen_control(s, sock);
	if (s->listen_fd < 0)
		return s->listen_fd;
	s->listen_w = (struct ctl_watch){ W_LISTEN, NULL };
	watch_set(s, EPOLL_CTL_ADD, s->listen_fd, EPOLLIN, &s->listen_w);
	return 0;
}

int vfsd_supervise(const struct vfsd_config *cfg)
{
	struct ctl_supervisor s = { .epfd = -1, .listen_fd = -1, .signal_fd = -1, .lock_fd = -1,
				    .closer_fd = -1 };
	char sock[PATH_MAX];
	int status = 0;

	vfsd_log_init(cfg->log_level_debug_forced ? VFSD_LOG_DEBUG : cfg->log_level, cfg->syslog,
		      "vfsd-supervisor");
	if (setup(&s, cfg, sock, sizeof(sock)) < 0) {
		status = 1;
		goto out;
	}
	log_info("Supervisor listening on %s (runtime dir %s)", sock, s.runtime_dir);
	while (!s.quit) {
		struct epoll_event evs[64];
		int n = epoll_wait(s.epfd, evs, ARRAY_SIZE(evs), ctl_children_tick(&s));

		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			status = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ctl_watch *w = evs[i].data.ptr;

			/* an earlier event of this round may have closed what a later one names:
			 * it is only freed after the round, and marked dead */
			switch (w->kind) {
			case W_LISTEN:
				on_accept(&s);
				break;
			case W_CLIENT:
				if (!((struct ctl_client *)w->obj)->dead)
					on_client(&s, w->obj, evs[i].events);
				break;
			case W_CHILD_EXIT:
				if (!((struct ctl_child *)w->obj)->dead)
					ctl_child_on_exit(&s, w->obj);
				break;
			case W_CHILD_READY:
				if (!((struct ctl_child *)w->obj)->dead)
					ctl_child_on_ready(&s, w->obj);
				break;
			case W_CHILD_REMOVED:
				if (!((struct ctl_child *)w->obj)->dead)
					ctl_child_on_removed(&s, w->obj);
				break;
			case W_STATE:
				ctl_state_on_input(&s, w->obj);
				break;
			case W_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(s.signal_fd, &si, sizeof(si)) == sizeof(si)) {
					log_info("signal %u: the supervisor stops, its children go on",
						 si.ssi_signo);
					s.quit = true;
				}
				break;
			}
			}
		}
		reap_dead_clients(&s);
		ctl_children_reap_dead(&s);
	}
	unlink(sock);
out:
	while (s.clients)
		ctl_client_close(&s, s.clients);
	reap_dead_clients(&s);
	ctl_metrics_shutdown(&s);
	ctl_state_free(&s);
	ctl_children_free(&s);
	if (s.listen_fd >= 0)
		close(s.listen_fd);
	if (s.signal_fd >= 0)
		close(s.signal_fd);
	if (s.epfd >= 0)
		close(s.epfd);
	if (s.lock_fd >= 0)
		close(s.lock_fd);
	return status;
}
