/*
 * The supervisor's children once spawned (spawn.c starts them): readiness, the end and what a
 * daemon leaves (its socket), stop, deadlines, and the state file that lets a restarted
 * supervisor re-adopt them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "ctl/supervisor.h"

const char *const ctl_state_names[] = {
	[CHILD_STARTING] = "starting",
	[CHILD_RUNNING] = "running",
	[CHILD_STOPPING] = "stopping",
	[CHILD_EXITED] = "exited",
};

struct ctl_child *ctl_child_find(struct ctl_supervisor *s, const char *sandbox)
{
	for (struct ctl_child *ch = s->children; ch; ch = ch->next) {
		if (strcmp(ch->sandbox, sandbox) == 0)
			return ch;
	}
	return NULL;
}

static const char *info_str(const struct ctl_child *ch, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(ch->info, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* /proc/PID/stat's start time (field 22): with the pid, it names one process for good. */
int ctl_proc_start_ticks(pid_t pid, unsigned long long *out)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold anything, ')' included */
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field < 22; field++) { /* p is at the space before field 3 */
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	return sscanf(p, " %llu", out) == 1 ? 0 : -EIO;
}

int ctl_child_dir(const struct ctl_supervisor *s, const char *sandbox, const char *file,
		     char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s%s%s", s->sandboxes_dir, sandbox, file ? "/" : "",
			 file ? file : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* --- the state file ------------------------------------------------------------------ */

struct json_object *ctl_child_status(const struct ctl_child *ch)
{
	struct json_object *o = json_object_new_object();

	json_object_object_foreach(ch->info, k, v)
		json_object_object_add(o, k, json_object_get(v));
	json_object_object_add(o, "state", json_object_new_string(ctl_state_names[ch->state]));
	json_object_object_add(o, "pid", json_object_new_int(ch->pid));
	json_object_object_add(o, "started_at", json_object_new_int64(ch->started_at));
	json_object_object_add(o, "adopted", json_object_new_boolean(ch->adopted));
	if (ch->state == CHILD_EXITED) {
		if (!ch->exit_known)
			json_object_object_add(o, "exit_status", NULL);
		else if (ch->exit_signal)
			json_object_object_add(o, "signal", json_object_new_int(ch->exit_signal));
		else
			json_object_object_add(o, "exit_status", json_object_new_int(ch->exit_status));
	}
	if (ch->error[0])
		json_object_object_add(o, "error", json_object_new_string(ch->error));
	return o;
}

struct json_object *ctl_child_reply(const struct ctl_child *ch, struct json_object *id)
{
	struct json_object *o = ctl_reply_new(true, id), *st = ctl_child_status(ch);

	json_object_object_foreach(st, k, v)
		json_object_object_add(o, k, json_object_get(v));
	json_object_put(st);
	return o;
}

/* Written anew (a temporary file renamed over it) at every change of state. */
void ctl_state_save(struct ctl_supervisor *s, const struct ctl_child *ch)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	struct json_object *o;

	if (ctl_child_dir(s, ch->sandbox, "state.json", path, sizeof(path)) < 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	o = ctl_child_status(ch);
	json_object_object_add(o, "start_ticks", json_object_new_uint64(ch->start_ticks));
	json_object_object_add(o, "own_socket", json_object_new_boolean(ch->own_socket));
	if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PLAIN) < 0 || rename(tmp, path) < 0)
		log_warn("cannot write %s: %s", path, strerror(errno));
	json_object_put(o);
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void child_exit_done(struct ctl_supervisor *s, struct ctl_child *ch);

/* --- the socket an ended daemon leaves ------------------------------------------- */

/*
 * Starts removing the socket and pid file a daemon made, if they are still a socket and a
 * file. The path is one the caller named in a directory the caller may write: it is removed
 * as the caller would (its filesystem ids and groups), in a grandchild, so that neither a
 * directory swapped for a symlink nor a hung filesystem can make the supervisor unlink as
 * root or block. Returns a pidfd of the child that waits for that grandchild (readable once
 * it is done), or -1 when there is nothing to wait for.
 */
static int start_remover(const struct ctl_child *ch)
{
	const char *sock = info_str(ch, "socket_path");
	struct json_object *groups = json_object_object_get(ch->info, "caller_groups");
	gid_t gids[CTL_GROUPS_MAX];
	int ngids = 0, pidfd;
	pid_t pid;

	if (!ch->own_socket || !sock)
		return -1;
	for (size_t i = 0; groups && i < json_object_array_length(groups) && i < CTL_GROUPS_MAX; i++)
		gids[ngids++] = (gid_t)json_object_get_int64(json_object_array_get_idx(groups, i));
	pid = fork();
	if (pid < 0) {
		log_warn("sandbox %s: cannot remove %s: fork: %s", ch->sandbox, sock, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char pidpath[PATH_MAX];
		struct stat st;
		pid_t worker;

		close_range(3, ~0u, 0); /* none of the supervisor's connections stays open here */
		worker = fork(); /* the one that may hang; this one can be killed meanwhile */
		if (worker != 0) {
			while (worker > 0 && waitpid(worker, NULL, 0) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		if (ch->owner != 0 && (setgroups((size_t)ngids, gids) < 0 ||
				       setfsgid(ch->owner_gid) < 0 || setfsuid(ch->owner) < 0 ||
				       (uid_t)setfsuid((uid_t)-1) != ch->owner))
			_exit(1);
		if (lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(sock);
		snprintf(pidpath, sizeof(pidpath), "%s.pid", sock);
		if (lstat(pidpath, &st) == 0 && S_ISREG(st.st_mode))
			unlink(pidpath);
		_exit(0);
	}
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) { /* then at least it is reaped */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return pidfd;
}

/* Reaps the remover (killed first when it took too long: its worker goes on alone). */
static void end_remover(struct ctl_supervisor *s, struct ctl_child *ch, bool kill_it)
{
	siginfo_t si;

	if (ch->remover_fd < 0)
		return;
	if (kill_it)
		pidfd_send_signal(ch->remover_fd, SIGKILL, NULL, 0);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, ch->remover_fd, NULL);
	waitid(P_PIDFD, (id_t)ch->remover_fd, &si, WEXITED);
	close(ch->remover_fd);
	ch->remover_fd = -1;
}

/* --- the list ------------------------------------------------------------------------ */

struct ctl_child *ctl_child_new(struct ctl_supervisor *s, const char *sandbox)
{
	struct ctl_child *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	snprintf(ch->sandbox, sizeof(ch->sandbox), "%s", sandbox);
	ch->pidfd = ch->ready_fd = ch->remover_fd = ch->metrics_fd = -1;
	ch->exit_w = (struct ctl_watch){ W_CHILD_EXIT, ch };
	ch->remover_w = (struct ctl_watch){ W_CHILD_REMOVED, ch };
	ch->ready_w = (struct ctl_watch){ W_CHILD_READY, ch };
	ch->next = s->children;
	if (s->children)
		s->children->prev = ch;
	s->children = ch;
	return ch;
}

static void close_ready(struct ctl_supervisor *s, struct ctl_child *ch)
{
	if (ch->ready_fd < 0)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, ch->ready_fd, NULL);
	close(ch->ready_fd);
	ch->ready_fd = -1;
}

static void close_pidfd(struct ctl_supervisor *s, struct ctl_child *ch)
{
	if (ch->pidfd < 0)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, ch->pidfd, NULL);
	close(ch->pidfd);
	ch->pidfd = -1;
}

void ctl_child_unlink(struct ctl_supervisor *s, struct ctl_child *ch)
{
	close_ready(s, ch);
	close_pidfd(s, ch);
	end_remover(s, ch, true);
	if (ch->metrics_fd >= 0)
		close(ch->metrics_fd);
	ch->metrics_fd = -1;
	if (ch->prev)
		ch->prev->next = ch->next;
	else
		s->children = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	json_object_put(ch->waiter_id);
	ch->waiter_id = NULL;
	ch->waiter = NULL;
	ch->dead = true;
	ch->next = s->dead_children;
	s->dead_children = ch;
}

void ctl_child_forget(struct ctl_supervisor *s, struct ctl_child *ch)
{
	char dir[PATH_MAX];

	if (ctl_child_dir(s, ch->sandbox, NULL, dir, sizeof(dir)) == 0)
		remove_tree(dir);
	ctl_child_unlink(s, ch);
}

void ctl_children_reap_dead(struct ctl_supervisor *s)
{
	while (s->dead_children) {
		struct ctl_child *ch = s->dead_children;

		s->dead_children = ch->next;
		json_object_put(ch->info);
		free(ch);
	}
}

void ctl_children_free(struct ctl_supervisor *s)
{
	while (s->children)
		ctl_child_unlink(s, s->children); /* the children themselves go on */
	ctl_children_reap_dead(s);
}

void ctl_children_forget_client(struct ctl_supervisor *s, struct ctl_client *c)
{
	for (struct ctl_child *ch = s->children; ch; ch = ch->next) {
		if (ch->waiter == c) {
			ch->waiter = NULL;
			json_object_put(ch->waiter_id);
			ch->waiter_id = NULL;
		}
	}
}

/* Replies to whoever waits on ch (and lets that client go on). Takes obj. */
static void reply_waiter(struct ctl_supervisor *s, struct ctl_child *ch, struct json_object *obj)
{
	struct ctl_client *c = ch->waiter;

	ch->waiter = NULL;
	json_object_put(ch->waiter_id);
	ch->waiter_id = NULL;
	if (!c) {
		json_object_put(obj);
		return;
	}
	ctl_client_send(s, c, obj);
	if (!c->dead)
		ctl_client_done(s, c);
}

void ctl_set_waiter(struct ctl_child *ch, struct ctl_client *c, const struct ctl_request *req)
{
	ch->waiter = c;
	ch->waiter_id = req->id ? json_object_get(req->id) : NULL;
	ch->waiter_op = req->op;
	c->busy = true;
}

static struct json_object *event_new(const char *event, const struct ctl_child *ch)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "sandbox", json_object_new_string(ch->sandbox));
	json_object_object_add(o, "pid", json_object_new_int(ch->pid));
	return o;
}

/* --- the end of a child ---------------------------------------------------------------- */

/* The last error line of the child's log (or its last line): why it failed to start. */
static void log_tail(struct ctl_supervisor *s, const struct ctl_child *ch, char *out, size_t len)
{
	char path[PATH_MAX], buf[4096], *line, *save = NULL, *best = NULL, *last = NULL;
	ssize_t n = -1;
	int fd;

	out[0] = '\0';
	if (ctl_child_dir(s, ch->sandbox, "vfsd.log", path, sizeof(path)) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		off_t size = lseek(fd, 0, SEEK_END);

		n = pread(fd, buf, sizeof(buf) - 1, size > (off_t)sizeof(buf) - 1
							     ? size - (off_t)sizeof(buf) + 1
							     : 0);
		close(fd);
	}
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		last = line;
		if (strstr(line, "ERROR") || strstr(line, "error:"))
			best = line;
	}
	snprintf(out, len, "%s", best ? best : last ? last : "");
}

void ctl_child_on_exit(struct ctl_supervisor *s, struct ctl_child *ch)
{
	siginfo_t si = { 0 };
	enum ctl_child_state was = ch->state;

	if (ch->pidfd < 0)
		return;
	if (!ch->adopted) {
		if (waitid(P_PIDFD, (id_t)ch->pidfd, &si, WEXITED | WNOHANG) < 0) {
			log_warn("waitid for sandbox %s: %s", ch->sandbox, strerror(errno));
		} else if (si.si_pid == 0) {
			return; /* not yet: a spurious wake-up */
		}
	}
	/* What it wrote before it ended, if its exit is seen first: "ready" or why not. */
	if (ch->ready_fd >= 0) {
		ctl_child_on_ready(s, ch);
		if (ch->dead)
			return;
		was = ch->state;
	}
	if (si.si_pid) {
		ch->exit_known = true;
		ch->exit_signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
		ch->exit_status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	}
	close_pidfd(s, ch);
	close_ready(s, ch);
	/* A daemon that ended while starting, after its exec (no "E" line from before it),
	 * made socket_path, which did not exist when the spawn was checked: it goes too (a
	 * daemon that refused its --import-state-fd, say). */
	if (was == CHILD_STARTING && !ch->error_errno && info_str(ch, "socket_path"))
		ch->own_socket = true;
	ch->exit_was = was;
	ch->deadline_ms = 0;
	ch->remover_fd = start_remover(ch);
	if (ch->remover_fd >= 0) { /* the rest once the socket is gone: replies say so */
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ch->remover_w };

		epoll_ctl(s->epfd, EPOLL_CTL_ADD, ch->remover_fd, &ev);
		ch->deadline_ms = ctl_now_ms() + CTL_REMOVE_TIMEOUT_MS;
		return;
	}
	child_exit_done(s, ch);
}

void ctl_child_on_removed(struct ctl_supervisor *s, struct ctl_child *ch)
{
	end_remover(s, ch, false);
	ch->deadline_ms = 0;
	child_exit_done(s, ch);
}

static void child_exit_done(struct ctl_supervisor *s, struct ctl_child *ch)
{
	enum ctl_child_state was = ch->exit_was;
	struct json_object *ev, *o;
	char why[600] = "";

	ch->state = CHILD_EXITED;
	if (was == CHILD_STARTING && !ch->error[0]) {
		log_tail(s, ch, why, sizeof(why));
		snprintf(ch->error, sizeof(ch->error), "the daemon exited before it was ready%s%.440s",
			 why[0] ? ": " : "", why);
		ctl_utf8_clean(ch->error); /* a log line, cut anywhere */
	}
	/* Stopped, or it ended with status 0 (its VMM hung up): its metrics group goes. */
	ctl_metrics_end(s, ch, was == CHILD_STOPPING ||
				       (ch->exit_known && !ch->exit_signal && ch->exit_status == 0));
	log_info("sandbox %s: daemon %d ended (%s %d)", ch->sandbox, (int)ch->pid,
		 !ch->exit_known ? "status unknown" : ch->exit_signal ? "signal" : "status",
		 ch->exit_signal ? ch->exit_signal : ch->exit_status);
	ctl_state_save(s, ch);
	ev = event_new("exited", ch);
	if (!ch->exit_known)
		json_object_object_add(ev, "exit_status", NULL);
	else if (ch->exit_signal)
		json_object_object_add(ev, "signal", json_object_new_int(ch->exit_signal));
	else
		json_object_object_add(ev, "exit_status", json_object_new_int(ch->exit_status));
	if (was == CHILD_STARTING) /* it never ran: "started" was never sent either */
		json_object_put(ev);
	else
		ctl_broadcast(s, ch, ev);
	if (ch->waiter && ch->waiter_op == CTL_OP_SPAWN) {
		o = ctl_reply_error(ch->waiter_id, ch->error_errno ? ch->error_errno : EIO,
				    "sandbox %s: %s", ch->sandbox, ch->error);
		reply_waiter(s, ch, o);
		return;
	}
	if (was != CHILD_STOPPING)
		return; /* it ended on its own: listed as exited until stopped or spawned again */
	/* a stop: the runtime wants it gone, record and all, once it has ended, even when the
	 * client that asked has hung up since */
	if (ch->waiter) {
		o = ctl_child_reply(ch, ch->waiter_id);
		reply_waiter(s, ch, o);
	}
	/* the reply let the client's next request run: a spawn of this id forgot ch already */
	if (!ch->dead)
		ctl_child_forget(s, ch);
}

/* "R\n" once the daemon serves; "E<errno> <message>\n" from the child before it exec'd. */
void ctl_child_on_ready(struct ctl_supervisor *s, struct ctl_child *ch)
{
	char buf[600];
	ssize_t n;

	if (ch->ready_fd < 0)
		return;
	n = read(ch->ready_fd, buf, sizeof(buf) - 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	close_ready(s, ch); /* one message, then nothing: the exit says the rest */
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0] == 'E') {
		char *msg = NULL;
		long e = strtol(buf + 1, &msg, 10);

		snprintf(ch->error, sizeof(ch->error), "%.500s", msg && *msg == ' ' ? msg + 1 : buf + 1);
		ctl_utf8_clean(ch->error);
		/* The spawn is answered once the child has exited (right after this message):
		 * until then the id is taken, and a client told to retry would get EEXIST. */
		ch->error_errno = e > 0 && e < 4096 ? (int)e : EIO;
		return;
	}
	if (buf[0] != 'R' || ch->state != CHILD_STARTING)
		return;
	ch->state = CHILD_RUNNING;
	ch->own_socket = info_str(ch, "socket_path") != NULL; /* it made it: it goes with it */
	ch->deadline_ms = 0;
	ctl_state_save(s, ch);
	log_info("sandbox %s: daemon %d ready", ch->sandbox, (int)ch->pid);
	ctl_metrics_begin(s, ch);
	ctl_broadcast(s, ch, event_new("started", ch));
	if (ch->waiter && ch->waiter_op == CTL_OP_SPAWN) {
		struct json_object *o = ctl_reply_new(true, ch->waiter_id);

		json_object_object_add(o, "sandbox", json_object_new_string(ch->sandbox));
		json_object_object_add(o, "pid", json_object_new_int(ch->pid));
		json_object_object_add(o, "socket_path",
				       info_str(ch, "socket_path")
					       ? json_object_new_string(info_str(ch, "socket_path"))
					       : NULL);
		json_object_object_add(o, "state", json_object_new_string("running"));
		reply_waiter(s, ch, o);
	}
}

int ctl_children_tick(struct ctl_supervisor *s)
{
	uint64_t now = ctl_now_ms(), next = UINT64_MAX;

	for (struct ctl_child *ch = s->children; ch; ch = ch->next) {
		if (!ch->deadline_ms)
			continue;
		if (ch->deadline_ms <= now && ch->remover_fd >= 0) {
			log_warn("sandbox %s: its socket %s was not removed within %d ms",
				 ch->sandbox, info_str(ch, "socket_path"), CTL_REMOVE_TIMEOUT_MS);
			end_remover(s, ch, true);
			ch->deadline_ms = 0;
			child_exit_done(s, ch);
			return 0; /* the list may have changed: look again at once */
		}
		if (ch->deadline_ms <= now) {
			if (ch->state == CHILD_STARTING)
				snprintf(ch->error, sizeof(ch->error),
					 "the daemon was not ready within %d s: killed",
					 CTL_SPAWN_TIMEOUT_MS / 1000);
			log_warn("sandbox %s: SIGKILL to daemon %d", ch->sandbox, (int)ch->pid);
			if (ch->pidfd >= 0)
				pidfd_send_signal(ch->pidfd, SIGKILL, NULL, 0);
			ch->deadline_ms = 0;
			continue;
		}
		next = MIN(next, ch->deadline_ms);
	}
	return next == UINT64_MAX ? -1 : (int)MIN(next - now, (uint64_t)INT32_MAX);
}

/* --- stop ---------------------------------------------------------------------------- */

void ctl_child_stop(struct ctl_supervisor *s, struct ctl_client *c, struct ctl_child *ch,
		    const struct ctl_request *req)
{
	struct json_object *o;

	if (ch->state == CHILD_EXITED) { /* already ended: forget it */
		o = ctl_child_reply(ch, req->id);
		ctl_child_forget(s, ch);
		ctl_client_send(s, c, o);
		return;
	}
	if (ch->state == CHILD_STOPPING || (ch->waiter && ch->waiter_op == CTL_OP_STOP)) {
		ctl_client_send(s, c, ctl_reply_error(req->id, EALREADY,
						      "sandbox %s is already being stopped",
						      ch->sandbox));
		return;
	}
	if (pidfd_send_signal(ch->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH) {
		ctl_client_send(s, c, ctl_reply_error(req->id, errno, "cannot signal sandbox %s: %s",
						      ch->sandbox, strerror(errno)));
		return;
	}
	/* A spawn that still waits is answered last, once this stop is in place: its reply lets
	 * that client's next request run, which may be about ch too. */
	struct ctl_client *spawner = ch->waiter;
	struct json_object *spawn_id = ch->waiter_id;

	ch->waiter = NULL;
	ch->waiter_id = NULL;
	if (ch->state == CHILD_STARTING)
		snprintf(ch->error, sizeof(ch->error), "stopped before it was ready");
	ch->state = CHILD_STOPPING;
	ch->deadline_ms = ctl_now_ms() + (req->has_grace ? req->grace_ms : s->cfg->sup.stop_timeout_ms);
	ctl_state_save(s, ch);
	ctl_set_waiter(ch, c, req);
	if (spawner) {
		ctl_client_send(s, spawner, ctl_reply_error(spawn_id, ECANCELED,
							    "sandbox %s was stopped before it was ready",
							    ch->sandbox));
		if (!spawner->dead)
			ctl_client_done(s, spawner);
	}
	json_object_put(spawn_id);
}

/* --- re-adoption after a restart ------------------------------------------------------ */

static void adopt_one(struct ctl_supervisor *s, const char *name)
{
	char path[PATH_MAX];
	struct json_object *st, *v;
	struct ctl_child *ch;
	unsigned long long ticks = 0;
	const char *state;

	if (!ctl_sandbox_id_valid(name) || ctl_child_dir(s, name, "state.json", path, sizeof(path)) < 0)
		return;
	st = json_object_from_file(path);
	if (!st || !json_object_is_type(st, json_type_object)) {
		log_warn("%s: not a state file, ignored", path);
		json_object_put(st);
		return;
	}
	ch = ctl_child_new(s, name);
	if (!ch) {
		json_object_put(st);
		return;
	}
	ch->info = json_object_new_object();
	json_object_object_foreach(st, k, val)
	{
		static const char *const keep[] = { "sandbox", "shared_dir", "socket_path", "socket_fd",
						    "userns", "cgroup", "args", "labels", "caller_uid",
						    "caller_gid", "caller_groups" };

		for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
			if (strcmp(k, keep[i]) == 0)
				json_object_object_add(ch->info, k, json_object_get(val));
		}
	}
	/* The record is the directory's: a file that names another sandbox does not rename it. */
	json_object_object_add(ch->info, "sandbox", json_object_new_string(name));
	if (json_object_object_get_ex(st, "caller_uid", &v) && json_object_is_type(v, json_type_int))
		ch->owner = (uid_t)json_object_get_int64(v);
	else
		ch->owner = 0; /* unknown: root's alone */
	if (json_object_object_get_ex(st, "caller_gid", &v) && json_object_is_type(v, json_type_int))
		ch->owner_gid = (gid_t)json_object_get_int64(v);
	else
		ch->owner_gid = ch->owner ? (gid_t)-1 : 0;
	if (json_object_object_get_ex(st, "pid", &v))
		ch->pid = json_object_get_int(v);
	if (json_object_object_get_ex(st, "start_ticks", &v))
		ch->start_ticks = json_object_get_uint64(v);
	if (json_object_object_get_ex(st, "started_at", &v))
		ch->started_at = json_object_get_int64(v);
	if (json_object_object_get_ex(st, "own_socket", &v))
		ch->own_socket = json_object_get_boolean(v);
	if (json_object_object_get_ex(st, "adopted", &v))
		ch->adopted = json_object_get_boolean(v);
	/* No state is an ended daemon; a "state" that is not a string (null included: no string
	 * at all) is not "exited", so a daemon that still runs is looked for below. */
	state = "exited";
	if (json_object_object_get_ex(st, "state", &v))
		state = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "?";
	if (strcmp(state, "exited") == 0) {
		ch->state = CHILD_EXITED;
		if (json_object_object_get_ex(st, "exit_status", &v) && v) {
			ch->exit_known = true;
			ch->exit_status = json_object_get_int(v);
		}
		if (json_object_object_get_ex(st, "signal", &v) && v) {
			ch->exit_known = true;
			ch->exit_signal = json_object_get_int(v);
		}
		if (json_object_object_get_ex(st, "error", &v) && v) {
			snprintf(ch->error, sizeof(ch->error), "%s", json_object_get_string(v));
			ctl_utf8_clean(ch->error);
		}
		json_object_put(st);
		return;
	}
	json_object_put(st);
	/* Alive, and the same process (not a reused pid): adopt it. */
	/* The pidfd first, then the start time, then the pidfd's process still alive: the pid
	 * was its own all along, so the start time read was its own too. */
	if (ch->pid > 0)
		ch->pidfd = pidfd_open(ch->pid, 0);
	if (ch->pidfd >= 0 && (ctl_proc_start_ticks(ch->pid, &ticks) < 0 || ticks != ch->start_ticks ||
			       pidfd_send_signal(ch->pidfd, 0, NULL, 0) < 0)) {
		close(ch->pidfd);
		ch->pidfd = -1;
	}
	if (ch->pidfd < 0) {
		ch->state = CHILD_EXITED;
		ch->adopted = false; /* nothing was adopted, whatever the file said */
		snprintf(ch->error, sizeof(ch->error), "ended while no supervisor watched it");
		ch->remover_fd = start_remover(ch);
		if (ch->remover_fd >= 0) {
			struct pollfd pfd = { .fd = ch->remover_fd, .events = POLLIN };

			end_remover(s, ch, poll(&pfd, 1, CTL_REMOVE_TIMEOUT_MS) <= 0);
		}
		log_info("sandbox %s: daemon %d ended while no supervisor ran", name, (int)ch->pid);
		/* Its last numbers are in its region: pushed once, its group kept (how it ended
		 * is not known). */
		ctl_metrics_region_open(s, ch);
		ctl_metrics_begin(s, ch);
		ctl_metrics_end(s, ch, false);
	} else {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ch->exit_w };

		ch->state = CHILD_RUNNING; /* one that was starting is running or will soon exit */
		ch->adopted = true;
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, ch->pidfd, &ev);
		ctl_metrics_region_open(s, ch); /* its counts went on: pushes continue them */
		ctl_metrics_begin(s, ch);
		log_info("sandbox %s: re-adopted daemon %d", name, (int)ch->pid);
	}
	ctl_state_save(s, ch);
}

void ctl_children_adopt(struct ctl_supervisor *s)
{
	DIR *d = opendir(s->sandboxes_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] != '.')
			adopt_one(s, e->d_name);
	}
	closedir(d);
}
