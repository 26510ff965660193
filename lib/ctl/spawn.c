/*
 * Spawning a per-sandbox daemon: the request checked in the supervisor (the daemon's own
 * option parser included), then fork; the child checks the paths under the caller's
 * credentials, moves into the cgroup, joins the sandbox's user namespace as its uid 0 and
 * execs vfsd, telling the supervisor on its ready pipe why if it cannot.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "ctl/supervisor.h"
#include "daemon/config.h"

#define CHILD_LISTEN_FD 3 /* the daemon's --fd, when the request passed a socket */
#define CHILD_READY_FD 4  /* its --ready-fd */
#define CHILD_METRICS_FD 5 /* its --metrics-fd: the region it counts into */
#define CHILD_STATE_FD 6   /* its --state-fd: where it answers export-state and resume */
#define CHILD_IMPORT_FD 7  /* its --import-state-fd, with import_state */

/* --- spawn: in the child, between fork and exec ----------------------------------------- */

struct spawn_plan {
	char **argv;
	const char *exe;
	int log_fd, ready_fd, listen_fd, metrics_fd, state_sock, import_fd;
	const struct ctl_caller *caller;
	const char *shared_dir, *socket_path, *userns, *cgroup;
};

static void __attribute__((noreturn, format(printf, 2, 3))) child_fail(int errnum, const char *fmt,
								      ...)
{
	char msg[560];
	int n = snprintf(msg, sizeof(msg), "E%d ", errnum);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(msg);
	msg[n++] = '\n'; /* room kept above */
	if (write(CHILD_READY_FD, msg, (size_t)n) < 0)
		_exit(126);
	_exit(127);
}

/* Puts fd at target (dup2 clears close-on-exec); -1 closes target. */
static void place_fd(int fd, int target)
{
	if (fd < 0) {
		close(target);
		return;
	}
	if (fd != target && dup2(fd, target) < 0)
		_exit(125);
	if (fd == target)
		fcntl(fd, F_SETFD, 0);
}

/* What the caller could do itself: the checks run with its filesystem credentials. */
static void check_as_caller(const struct spawn_plan *p, int *nsfd, int *cgdir)
{
	const struct ctl_caller *who = p->caller;
	char dir[PATH_MAX];
	struct stat st = { 0 };
	struct statfs sfs;

	if (who->uid != 0) {
		if (setgroups((size_t)who->ngroups, who->groups) < 0)
			child_fail(errno, "setgroups: %s", strerror(errno));
		setfsgid(who->gid);
		setfsuid(who->uid);
		if ((uid_t)setfsuid((uid_t)-1) != who->uid)
			child_fail(EPERM, "cannot take the caller's credentials");
		/* (CAP_SYS_PTRACE stays: the kernel lets the caller open /proc/PID/ns/user of a
		 * process in a namespace it owns because its euid owns it, which an fsuid alone
		 * does not emulate; the owner check in join_userns is the rule that holds.) */
	}
	/* Two checks: a failed stat's own errno (ENOENT, EACCES...), ENOTDIR for anything else. */
	if (stat(p->shared_dir, &st) < 0)
		child_fail(errno, "shared_dir %s: %s", p->shared_dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		child_fail(ENOTDIR, "shared_dir %s is not a directory", p->shared_dir);
	if (faccessat(AT_FDCWD, p->shared_dir, R_OK | X_OK, AT_EACCESS) < 0)
		child_fail(errno, "the caller (uid %u) cannot read shared_dir %s: %s", who->uid,
			   p->shared_dir, strerror(errno));
	if (p->socket_path) {
		if (lstat(p->socket_path, &st) == 0)
			child_fail(EEXIST, "socket_path %s already exists", p->socket_path);
		snprintf(dir, sizeof(dir), "%s", p->socket_path);
		if (faccessat(AT_FDCWD, dirname(dir), W_OK | X_OK, AT_EACCESS) < 0)
			child_fail(errno, "the caller (uid %u) cannot create socket_path %s: %s",
				   who->uid, p->socket_path, strerror(errno));
	}
	if (p->userns) {
		*nsfd = open(p->userns, O_RDONLY | O_CLOEXEC);
		if (*nsfd < 0)
			child_fail(errno, "the caller (uid %u) cannot open userns %s: %s", who->uid,
				   p->userns, strerror(errno));
	}
	if (p->cgroup) {
		/* The directory is held from here on: the move goes where the check went. */
		*cgdir = open(p->cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (*cgdir < 0 || fstatfs(*cgdir, &sfs) < 0)
			child_fail(errno, "cgroup %s: %s", p->cgroup, strerror(errno));
		if (sfs.f_type != CGROUP2_SUPER_MAGIC)
			child_fail(EINVAL, "cgroup %s is not a cgroup v2 directory", p->cgroup);
		/* Delegation gives the caller write access to the cgroup.procs of its cgroups. */
		if (faccessat(*cgdir, "cgroup.procs", W_OK, AT_EACCESS) < 0)
			child_fail(errno, "the caller (uid %u) cannot move processes into cgroup %s: %s",
				   who->uid, p->cgroup, strerror(errno));
	}
	if (who->uid != 0) {
		setfsuid(0);
		setfsgid(0);
		if (setgroups(0, NULL) < 0)
			child_fail(errno, "setgroups: %s", strerror(errno));
	}
}

static void join_userns(const struct spawn_plan *p, int nsfd)
{
	struct stat ns, self;
	unsigned int owner;
	int type = ioctl(nsfd, NS_GET_NSTYPE);

	if (type < 0 || type != CLONE_NEWUSER)
		child_fail(EINVAL, "userns %s is not a user namespace", p->userns);
	if (ioctl(nsfd, NS_GET_OWNER_UID, &owner) < 0)
		child_fail(errno, "userns %s: %s", p->userns, strerror(errno));
	if (p->caller->uid != 0 && owner != p->caller->uid)
		child_fail(EPERM, "user namespace %s belongs to uid %u, not to the caller (uid %u)",
			   p->userns, owner, p->caller->uid);
	if (fstat(nsfd, &ns) == 0 && stat("/proc/self/ns/user", &self) == 0 &&
	    ns.st_ino == self.st_ino && ns.st_dev == self.st_dev)
		return; /* already there */
	if (setns(nsfd, CLONE_NEWUSER) < 0)
		child_fail(errno, "cannot join userns %s: %s", p->userns, strerror(errno));
	if (setgroups(0, NULL) < 0 && errno != EPERM) /* EPERM: setgroups is denied there */
		child_fail(errno, "setgroups in userns %s: %s", p->userns, strerror(errno));
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		child_fail(errno, "uid or gid 0 is not mapped in userns %s: %s", p->userns,
			   strerror(errno));
}

/* Closes every fd from first on; a child that cannot must not exec (it would hand the
 * supervisor's sockets to a daemon its caller may ptrace). */
static void close_all_from(int first)
{
	DIR *d;
	struct dirent *e;

	if (close_range((unsigned int)first, ~0u, 0) == 0)
		return;
	d = opendir("/proc/self/fd"); /* kernels before 5.9, or a filter that refuses it */
	if (!d)
		child_fail(errno, "cannot close the supervisor's fds: %s", strerror(errno));
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (fd >= first && fd != dirfd(d))
			close(fd);
	}
	closedir(d);
}

static void __attribute__((noreturn)) child_main(const struct spawn_plan *p)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int log_fd = fcntl(p->log_fd, F_DUPFD_CLOEXEC, 10);
	int ready_fd = fcntl(p->ready_fd, F_DUPFD_CLOEXEC, 10);
	int listen_fd = p->listen_fd >= 0 ? fcntl(p->listen_fd, F_DUPFD_CLOEXEC, 10) : -1;
	int metrics_fd = fcntl(p->metrics_fd, F_DUPFD_CLOEXEC, 10);
	int state_sock = fcntl(p->state_sock, F_DUPFD_CLOEXEC, 10);
	int import_fd = p->import_fd >= 0 ? fcntl(p->import_fd, F_DUPFD_CLOEXEC, 10) : -1;
	int nsfd = -1, cgdir = -1;
	sigset_t all;

	/* Its own session: a signal to the supervisor's group never reaches a child. */
	setsid();
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (devnull < 0 || log_fd < 0 || ready_fd < 0 || metrics_fd < 0 || state_sock < 0 ||
	    (p->listen_fd >= 0 && listen_fd < 0) || (p->import_fd >= 0 && import_fd < 0))
		_exit(125);
	place_fd(devnull, 0);
	place_fd(log_fd, 1);
	place_fd(log_fd, 2);
	place_fd(listen_fd, CHILD_LISTEN_FD);
	place_fd(ready_fd, CHILD_READY_FD);
	place_fd(metrics_fd, CHILD_METRICS_FD);
	place_fd(state_sock, CHILD_STATE_FD);
	place_fd(import_fd, CHILD_IMPORT_FD);
	close_all_from(CHILD_IMPORT_FD + 1); /* nothing of the supervisor's goes along */

	check_as_caller(p, &nsfd, &cgdir);
	/*
	 * The move is written with the supervisor's credentials, once the caller's were checked:
	 * the kernel also checks the writer against the cgroup.procs of the common ancestor of
	 * the daemon's cgroup (the supervisor's) and the target, which a caller with a
	 * delegated subtree can never write.
	 */
	if (cgdir >= 0) {
		int cgfd = openat(cgdir, "cgroup.procs", O_WRONLY | O_CLOEXEC);

		if (cgfd < 0 || write(cgfd, "0\n", 2) != 2)
			child_fail(errno, "cannot move the daemon into cgroup %s: %s", p->cgroup,
				   strerror(errno));
		close(cgfd);
		close(cgdir);
	}
	if (nsfd >= 0)
		join_userns(p, nsfd);
	/* A fresh environment: nothing of the supervisor's (NOTIFY_SOCKET, its unit's
	 * variables) reaches a daemon its caller may ptrace; PATH finds newuidmap. */
	execve(p->exe, p->argv, (char *[]){ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL });
	child_fail(errno, "cannot run %s: %s", p->exe, strerror(errno));
}

/* --- spawn: in the supervisor -------------------------------------------------------- */

#define SPAWN_FAIL(e, ...)                                                                 \
	do {                                                                               \
		ctl_client_send(s, c, ctl_reply_error(req->id, (e), __VA_ARGS__));         \
		r = -(e);                                                                  \
		goto out;                                                                  \
	} while (0)

/* The socket a runtime passes must be a listening AF_UNIX stream socket, as for --fd. */
static int check_listener(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || v != AF_UNIX)
		return -ENOTSOCK;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM)
		return -ENOTSOCK;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || !v)
		return -EINVAL;
	return 0;
}

/*
 * The child's command line: what the request names first, the sandbox default, then the
 * runtime's args. It is parsed here by the daemon's own parser, so a bad option is refused
 * now, in the daemon's words, and args cannot override what the request decides.
 */
static int build_argv(struct ctl_supervisor *s, const struct ctl_request *req, bool by_fd,
		      char **argv, char *err, size_t errlen)
{
	struct vfsd_config cfg;
	struct vfsd_parse_error perr;
	int argc = 0, r = 0;

	argv[argc++] = s->exe;
	argv[argc++] = "--shared-dir";
	argv[argc++] = (char *)req->shared_dir;
	if (by_fd) {
		argv[argc++] = "--fd";
		argv[argc++] = "3";
	} else {
		argv[argc++] = "--socket-path";
		argv[argc++] = (char *)req->socket_path;
	}
	argv[argc++] = "--ready-fd";
	argv[argc++] = "4";
	argv[argc++] = "--metrics-fd";
	argv[argc++] = "5";
	argv[argc++] = "--state-fd";
	argv[argc++] = "6";
	if (req->import_state) {
		argv[argc++] = "--import-state-fd";
		argv[argc++] = "7";
	}
	argv[argc++] = "--sandbox";
	argv[argc++] = "chroot";
	for (unsigned int i = 0; i < req->nargs; i++) {
		if (strncmp(req->args[i], "--metrics-", 10) == 0) {
			snprintf(err, errlen,
				 "args may not set --metrics-* options: the supervisor counts every daemon's metrics and pushes them with its own --metrics-push");
			return -EINVAL;
		}
		argv[argc++] = (char *)req->args[i];
	}
	argv[argc] = NULL;
	if (vfsd_parse_args(argc, argv, VFSD_PARSE_QUIET, &cfg, &perr) == VFSD_PARSE_EXIT) {
		snprintf(err, errlen, "args: %s", perr.msg);
		r = -EINVAL;
	} else if (cfg.action != VFSD_ACTION_SERVE || cfg.shared_dir != req->shared_dir ||
		   cfg.socket_path != (by_fd ? NULL : req->socket_path) ||
		   cfg.fd != (by_fd ? 3 : -1) || cfg.ready_fd != 4 || cfg.fuse_mountpoint ||
		   cfg.metrics.fd != 5 || cfg.state_fd != 6 ||
		   cfg.import_state_fd != (req->import_state ? 7 : -1)) {
		snprintf(err, errlen,
			 "args may not set the share, the socket, --fd, --ready-fd, --metrics-fd, --state-fd, --import-state-fd, --fuse-mountpoint, --help, --version or --print-capabilities: the request's own fields say them");

		r = -EINVAL;
	}
	vfsd_config_free(&cfg);
	return r;
}

static struct json_object *info_new(const struct ctl_request *req, const struct ctl_caller *who,
				    bool by_fd)
{
	struct json_object *o = json_object_new_object(), *args = json_object_new_array();

#define ADD_STR(k, v) json_object_object_add(o, k, (v) ? json_object_new_string(v) : NULL)
	ADD_STR("sandbox", req->sandbox);
	ADD_STR("shared_dir", req->shared_dir);
	ADD_STR("socket_path", req->socket_path);
	json_object_object_add(o, "socket_fd", json_object_new_boolean(by_fd));
	ADD_STR("userns", req->userns);
	ADD_STR("cgroup", req->cgroup);
#undef ADD_STR
	for (unsigned int i = 0; i < req->nargs; i++)
		json_object_array_add(args, json_object_new_string(req->args[i]));
	json_object_object_add(o, "args", args);
	json_object_object_add(o, "labels", req->labels ? json_object_get(req->labels)
							 : json_object_new_object());
	json_object_object_add(o, "caller_uid", json_object_new_int64(who->uid));
	json_object_object_add(o, "caller_gid", json_object_new_int64(who->gid));
	args = json_object_new_array();
	for (int i = 0; i < who->ngroups; i++)
		json_object_array_add(args, json_object_new_int64(who->groups[i]));
	json_object_object_add(o, "caller_groups", args);
	return o;
}

int ctl_child_spawn(struct ctl_supervisor *s, struct ctl_client *c, const struct ctl_request *req,
		    int listen_fd, int state_fd)
{
	int state_sock = -1;
	char *argv[CTL_ARGS_MAX + 18], err[600], dir[PATH_MAX], logpath[PATH_MAX];
	struct ctl_child *ch = ctl_child_find(s, req->sandbox);
	bool by_fd = listen_fd >= 0;
	int pipefd[2] = { -1, -1 }, log_fd = -1, metrics_fd = -1, r = 0;
	pid_t pid;

	if (ch && !ctl_may_see(c, ch))
		SPAWN_FAIL(EEXIST, "sandbox %s is another user's", req->sandbox);
	if (c->who.uid != 0) { /* one tenant may not use up the node's processes */
		unsigned int live = 0;

		for (struct ctl_child *o = s->children; o; o = o->next)
			live += o->owner == c->who.uid && o->state != CHILD_EXITED;
		if (live >= s->cfg->sup.max_per_uid)
			SPAWN_FAIL(EAGAIN, "uid %u has %u daemons, as many as --max-daemons-per-uid allows",
				   c->who.uid, live);
	}
	if (ch && ch->state != CHILD_EXITED)
		SPAWN_FAIL(EEXIST, "sandbox %s already has a daemon (pid %d, %s)", req->sandbox,
			   (int)ch->pid, ctl_state_names[ch->state]);
	if (by_fd == !!req->socket_path)
		SPAWN_FAIL(EINVAL, "a spawn needs either \"socket_path\" or a listening socket passed with the request (SCM_RIGHTS), %s",
			   by_fd ? "not both" : "and has neither");
	if (by_fd && (r = check_listener(listen_fd)) < 0)
		SPAWN_FAIL(-r, "the file descriptor passed with the request is not a listening unix stream socket");
	if (c->who.uid != 0 && !req->userns)
		SPAWN_FAIL(EPERM, "only root may spawn a daemon in the supervisor's own user namespace: name the sandbox's \"userns\"");
	if ((r = build_argv(s, req, by_fd, argv, err, sizeof(err))) < 0)
		SPAWN_FAIL(-r, "%s", err);
	if (ctl_child_dir(s, req->sandbox, NULL, dir, sizeof(dir)) < 0 ||
	    ctl_child_dir(s, req->sandbox, "vfsd.log", logpath, sizeof(logpath)) < 0)
		SPAWN_FAIL(ENAMETOOLONG, "runtime dir too long for sandbox %s", req->sandbox);
	if (ch)
		ctl_child_forget(s, ch); /* an exited one of the same name makes room */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		SPAWN_FAIL(errno, "cannot create %s: %s", dir, strerror(errno));
	log_fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0)
		SPAWN_FAIL(errno, "cannot create %s: %s", logpath, strerror(errno));
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		SPAWN_FAIL(errno, "pipe: %s", strerror(errno));
	metrics_fd = ctl_metrics_region_new(s, req->sandbox);
	if (metrics_fd < 0)
		SPAWN_FAIL(-metrics_fd, "cannot create the metrics region of sandbox %s: %s",
			   req->sandbox, strerror(-metrics_fd));
	state_sock = ctl_state_socket_new(s, req->sandbox);
	if (state_sock < 0)
		SPAWN_FAIL(-state_sock, "cannot create the state socket of sandbox %s: %s",
			   req->sandbox, strerror(-state_sock));
	if (req->import_state && state_fd < 0)
		SPAWN_FAIL(EINVAL, "\"import_state\" needs the state passed with the request (SCM_RIGHTS)");

	struct spawn_plan plan = {
		.argv = argv, .exe = s->exe, .log_fd = log_fd, .ready_fd = pipefd[1],
		.listen_fd = listen_fd, .metrics_fd = metrics_fd, .state_sock = state_sock,
		.import_fd = state_fd, .caller = &c->who, .shared_dir = req->shared_dir,
		.socket_path = req->socket_path, .userns = req->userns, .cgroup = req->cgroup,
	};

	pid = fork();
	if (pid < 0)
		SPAWN_FAIL(errno, "fork: %s", strerror(errno));
	if (pid == 0)
		child_main(&plan);

	ch = ctl_child_new(s, req->sandbox);
	if (!ch) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		SPAWN_FAIL(ENOMEM, "out of memory");
	}
	ch->pid = pid;
	ch->pidfd = pidfd_open(pid, 0);
	ch->ready_fd = take_fd(pipefd[0]);
	ch->metrics_fd = take_fd(metrics_fd);
	ch->state = CHILD_STARTING;
	ch->started_at = time(NULL);
	ch->info = info_new(req, &c->who, by_fd);
	ch->owner = c->who.uid;
	ch->owner_gid = c->who.gid;
	ch->deadline_ms = ctl_now_ms() + CTL_SPAWN_TIMEOUT_MS;
	if (ch->pidfd < 0 || ctl_proc_start_ticks(pid, &ch->start_ticks) < 0) {
		int e = errno;

		/* a daemon the supervisor cannot watch (or re-adopt) must not run */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		ch->state = CHILD_EXITED;
		ctl_child_unlink(s, ch);
		SPAWN_FAIL(e, "cannot track the daemon: %s", strerror(e));
	}
	fcntl(ch->ready_fd, F_SETFL, O_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ch->ready_w };

	epoll_ctl(s->epfd, EPOLL_CTL_ADD, ch->ready_fd, &ev);
	ev.data.ptr = &ch->exit_w;
	if (ch->pidfd >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, ch->pidfd, &ev);
	ctl_state_save(s, ch);
	ctl_set_waiter(ch, c, req);
	log_info("sandbox %s: daemon %d starting for uid %u on %s", ch->sandbox, (int)pid,
		 c->who.uid, req->shared_dir);
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (log_fd >= 0)
		close(log_fd);
	if (metrics_fd >= 0)
		close(metrics_fd);
	if (state_sock >= 0)
		close(state_sock); /* the child listens on it; the supervisor connects by path */
	ctl_fd_discard(s, listen_fd); /* the child has its own copy */
	ctl_fd_discard(s, state_fd);
	return r;
}

