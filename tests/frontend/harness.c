/* The runner: one process, one temporary directory and one daemon per test, all cleaned up. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CASE_TIMEOUT_S 120
#define MAX_EXTRA 32

/* SIGINT or SIGTERM to the runner: end the running test, clean up, stop. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static void describe_status(int st, char *buf, size_t size)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "signal %s", sigabbrev_np(WTERMSIG(st)) ?: "?");
	else
		snprintf(buf, size, "wait status 0x%x", st);
}

static void set_pid_file(struct t_ctx *t, pid_t pid)
{
	char path[PATH_MAX], buf[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/daemon.pid", t->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	write_all(fd, buf, (size_t)n);
	close(fd);
}

/* ---- the daemon ---- */

bool t_alive(struct t_ctx *t)
{
	int st;

	if (!t->pid || t->daemon_gone)
		return false;
	if (waitpid(t->pid, &st, WNOHANG) == t->pid) {
		t->daemon_gone = true;
		t->exit_status = st;
		set_pid_file(t, 0);
		return false;
	}
	return true;
}

int t_wait_exit(struct t_ctx *t, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;

	while (t_alive(t)) {
		if (now_ms() >= deadline)
			return -1;
		sleep_ms(10);
	}
	return t->daemon_gone ? t->exit_status : -1;
}

const char *t_status(struct t_ctx *t)
{
	static char buf[64];

	if (t_alive(t) || !t->daemon_gone)
		return "running";
	describe_status(t->exit_status, buf, sizeof(buf));
	return buf;
}

long t_proc_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, flen) == 0 && line[flen] == ':' &&
		    sscanf(line + flen + 1, "%ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

long t_vmsize_kb(struct t_ctx *t)
{
	return t_proc_status_kb(t->pid, "VmSize");
}

pid_t t_serving_pid(pid_t pid)
{
	/* Down the first child at each level: the namespace sandbox forks once. */
	for (int depth = 0; depth < 4; depth++) {
		char path[64];
		int child = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
		f = fopen(path, "re");
		if (!f)
			break;
		if (fscanf(f, "%d", &child) != 1)
			child = 0;
		fclose(f);
		if (child <= 0)
			break;
		pid = (pid_t)child;
	}
	return pid;
}

/* Calls fn on each entry of /proc/PID/SUB (not . and ..); returns how many it accepted. */
static int proc_entries(pid_t pid, const char *sub, bool (*fn)(const char *dir, const char *name))
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, sub);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (!fn || fn(path, e->d_name)))
			n++;
	closedir(d);
	return n;
}

static bool is_eventfd(const char *dir, const char *name)
{
	char path[PATH_MAX], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

int t_proc_threads(pid_t pid)
{
	return proc_entries(pid, "task", NULL);
}

static const char *comm_prefix;

static bool comm_starts(const char *dir, const char *name)
{
	char path[PATH_MAX], comm[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s/comm", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	return n > 0 && strncmp(comm, comm_prefix, strlen(comm_prefix)) == 0;
}

int t_proc_threads_named(pid_t pid, const char *prefix)
{
	comm_prefix = prefix;
	return proc_entries(pid, "task", comm_starts);
}

/* Reads /proc/PID/task/TID/NAME into buf (NUL-terminated); its length or -1. */
ssize_t t_task_file(pid_t pid, const char *tid, const char *name, char *buf, size_t size)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", (int)pid, tid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* How many threads are ring q's (named exactly vfsd-queueQ); *tid gets one's id. */
int t_ring_threads(pid_t pid, unsigned int q, char *tid, size_t size)
{
	char want[32], path[64], comm[32];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(want, sizeof(want), "vfsd-queue%u\n", q);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || t_task_file(pid, e->d_name, "comm", comm, sizeof(comm)) <= 0 ||
		    strcmp(comm, want) != 0)
			continue;
		n++;
		if (tid)
			snprintf(tid, size, "%s", e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

int t_proc_fds(pid_t pid)
{
	return proc_entries(pid, "fd", NULL);
}

int t_proc_eventfds(pid_t pid)
{
	return proc_entries(pid, "fd", is_eventfd);
}

static void kill_daemon(struct t_ctx *t)
{
	if (t_alive(t)) {
		kill(t->pid, SIGKILL);
		t_wait_exit(t, 5000);
	}
}

/* The common command line of a daemon under test on sock, plus FE_DAEMON_ARGS and extra;
 * the strings live in b (and *env, which the caller frees). */
struct daemon_argv {
	char sockarg[PATH_MAX + 16], srcarg[PATH_MAX + 8], seccomparg[64], sandboxarg[64];
	const char *argv[16 + 2 * MAX_EXTRA];
};

static const char *const *daemon_argv(struct t_ctx *t, struct daemon_argv *b, const char *sock,
				      const char *daemon, const char *const *extra, char **env)
{
	int n = 0;

	*env = getenv("FE_DAEMON_ARGS") ? strdup(getenv("FE_DAEMON_ARGS")) : NULL;
	snprintf(b->sockarg, sizeof(b->sockarg), "--socket-path=%s", sock);
	snprintf(b->srcarg, sizeof(b->srcarg), "source=%s", t->share);
	b->argv[n++] = daemon;
	b->argv[n++] = b->sockarg;
	b->argv[n++] = "-o";
	b->argv[n++] = b->srcarg;
	b->argv[n++] = "-o";
	b->argv[n++] = "cache=auto";
	/* FE_SANDBOX (vfsd only): none or namespace instead of chroot; FE_SECCOMP: an action
	 * (sanitizer builds: none, for LeakSanitizer's exit-time scan). */
	if (getenv("FE_SECCOMP")) {
		snprintf(b->seccomparg, sizeof(b->seccomparg), "--seccomp=%s", getenv("FE_SECCOMP"));
		b->argv[n++] = b->seccomparg;
	}
	if (getenv("FE_SANDBOX") && strcmp(getenv("FE_SANDBOX"), "chroot") != 0) {
		snprintf(b->sandboxarg, sizeof(b->sandboxarg), "--sandbox=%s", getenv("FE_SANDBOX"));
		b->argv[n++] = b->sandboxarg;
	} else {
		b->argv[n++] = "-o";
		b->argv[n++] = "sandbox=chroot";
	}
	for (char *save = NULL, *tok = *env ? strtok_r(*env, " ", &save) : NULL;
	     tok && n < 8 + MAX_EXTRA; tok = strtok_r(NULL, " ", &save))
		b->argv[n++] = tok;
	for (int i = 0; extra && extra[i] && i < MAX_EXTRA; i++)
		b->argv[n++] = extra[i];
	b->argv[n] = NULL;
	return b->argv;
}

void t_daemon_argv(struct t_ctx *t, const char *const *extra)
{
	struct daemon_argv b;
	char *env;
	const char *const *argv;
	pid_t pid;

	if (t->pid)
		t_fail(t, "the test started two daemons");
	argv = daemon_argv(t, &b, t->sock, t->daemon, extra, &env);

	pid = fork();
	if (pid < 0)
		t_fail(t, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		/* The daemon must not outlive the test, whatever happens to the test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (t->nofile > 0) {
			struct rlimit rl;

			getrlimit(RLIMIT_NOFILE, &rl);
			rl.rlim_cur = (rlim_t)t->nofile;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execv(t->daemon, (char *const *)argv);
		dprintf(2, "exec %s: %s\n", t->daemon, strerror(errno));
		_exit(127);
	}
	free(env);
	t->pid = pid;
	set_pid_file(t, pid);
}

void t_daemon(struct t_ctx *t, ...)
{
	const char *extra[MAX_EXTRA + 1];
	va_list ap;
	int n = 0;

	va_start(ap, t);
	for (const char *a; (a = va_arg(ap, const char *)) && n < MAX_EXTRA;)
		extra[n++] = a;
	va_end(ap);
	extra[n] = NULL;
	t_daemon_argv(t, extra);
}

struct fe_dev *t_connect(struct t_ctx *t, const struct fe_opts *opts)
{
	long deadline = now_ms() + 10000;
	int fd, r;

	for (;;) {
		fd = fe_connect(t->sock, 100);
		if (fd >= 0)
			break;
		if (!t_alive(t)) {
			char st[64];

			describe_status(t->exit_status, st, sizeof(st));
			t_fail(t, "the daemon ended before accepting a connection (%s)", st);
		}
		if (now_ms() >= deadline)
			t_fail(t, "cannot connect to %s: %s", t->sock, strerror(-fd));
	}
	r = fe_new(fd, opts, &t->dev);
	if (r < 0)
		t_fail(t, "frontend: %s", strerror(-r));
	fc_setup(&t->fc, t->dev);
	return t->dev;
}

static struct fc *start_va(struct t_ctx *t, const struct fe_opts *opts, va_list ap)
{
	const char *extra[MAX_EXTRA + 1];
	int n = 0;

	for (const char *a; (a = va_arg(ap, const char *)) && n < MAX_EXTRA;)
		extra[n++] = a;
	extra[n] = NULL;
	t_daemon_argv(t, extra);
	t_connect(t, opts);
	CHECK_FE(t, fe_start(t->dev));
	return &t->fc;
}

struct fc *t_started(struct t_ctx *t, const struct fe_opts *opts, ...)
{
	struct fc *c;
	va_list ap;

	va_start(ap, opts);
	c = start_va(t, opts, ap);
	va_end(ap);
	return c;
}

struct fc *t_session(struct t_ctx *t, const struct fe_opts *opts, ...)
{
	struct fc *c;
	va_list ap;

	va_start(ap, opts);
	c = start_va(t, opts, ap);
	va_end(ap);
	CHECK_OK(t, fc_init(c));
	return c;
}

void t_still_serving(struct t_ctx *t, struct fc *c)
{
	struct fuse_attr_out a;
	int r = fc_getattr(c, FC_ROOT, &a);

	if (r != 0)
		t_fail(t, "the daemon no longer serves: GETATTR of the root: %s",
		       fc_strerror(c, r));
	if (!S_ISDIR(a.attr.mode))
		t_fail(t, "GETATTR of the root: mode 0%o", a.attr.mode);
}

/* ---- the shared directory, seen from the host ---- */

const char *t_path(struct t_ctx *t, const char *rel)
{
	static char bufs[8][PATH_MAX + 32];
	static unsigned int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", t->share, rel);
	return b;
}

void t_write_file(struct t_ctx *t, const char *rel, const void *data, size_t len)
{
	int fd = open(t_path(t, rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		t_fail(t, "host: create %s: %s", rel, strerror(errno));
	write_all(fd, data, len);
	close(fd);
}

int t_leased_file(struct t_ctx *t, struct fc *c, const char *rel, struct fuse_entry_out *e)
{
	int fd;

	t_write_file(t, rel, "x", 1);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, rel, e));
	signal(SIGIO, SIG_IGN); /* the lease-break signal */
	fd = open(t_path(t, rel), O_RDONLY | O_CLOEXEC);
	CHECK(t, fd >= 0, "open: %s", strerror(errno));
	if (fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
		t_skip(t, "no read lease on the test directory's filesystem: %s", strerror(errno));
	return fd;
}

void t_mkdir(struct t_ctx *t, const char *rel)
{
	if (mkdir(t_path(t, rel), 0755) < 0)
		t_fail(t, "host: mkdir %s: %s", rel, strerror(errno));
}

ssize_t t_read_file(struct t_ctx *t, const char *rel, void *buf, size_t size)
{
	int fd = open(t_path(t, rel), O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

bool t_exists(struct t_ctx *t, const char *rel)
{
	struct stat st;

	return lstat(t_path(t, rel), &st) == 0;
}

/* ---- more daemons in one test ---- */

struct t_extra {
	pid_t pid;
	bool gone;
	int status;
	char sock[PATH_MAX];
	char log[PATH_MAX + 8];
};

/* The test's further daemons (t_daemon_at, t_rust_at). Each test is a process of its own. */
static struct t_extra extras[T_MAX_DAEMONS];
static int nextras;

static struct t_extra *extra_of(struct t_ctx *t, pid_t pid)
{
	for (int i = 0; i < nextras; i++)
		if (extras[i].pid == pid)
			return &extras[i];
	t_fail(t, "pid %d is no daemon of this test", (int)pid);
}

static bool extra_alive(struct t_extra *x)
{
	int st;

	if (x->gone)
		return false;
	if (waitpid(x->pid, &st, WNOHANG) == x->pid) {
		x->gone = true;
		x->status = st;
		return false;
	}
	return true;
}

static void kill_extras(void)
{
	for (int i = 0; i < nextras; i++) {
		if (extra_alive(&extras[i])) {
			kill(extras[i].pid, SIGKILL);
			if (waitpid(extras[i].pid, &extras[i].status, 0) == extras[i].pid)
				extras[i].gone = true;
		}
	}
}

static pid_t spawn_extra(struct t_ctx *t, const char *sock, const char *path, const char **argv)
{
	struct t_extra *x;
	pid_t pid;

	if (nextras >= T_MAX_DAEMONS)
		t_fail(t, "more than %d daemons in one test", T_MAX_DAEMONS);
	x = &extras[nextras];
	memset(x, 0, sizeof(*x));
	snprintf(x->sock, sizeof(x->sock), "%s", sock);
	snprintf(x->log, sizeof(x->log), "%s.log", sock);
	pid = fork();
	if (pid < 0)
		t_fail(t, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(x->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execv(path, (char *const *)argv);
		dprintf(2, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	x->pid = pid;
	nextras++;
	return pid;
}

void t_hang_up(struct t_ctx *t)
{
	if (t->dev && t->dev->bad_used)
		t_fail(t, "the device returned %u chains that were not in flight: %s",
		       t->dev->bad_used, fe_error(t->dev));
	fe_free(t->dev);
	t->dev = NULL;
	t->fc.dev = NULL;
}

pid_t t_daemon_at(struct t_ctx *t, const char *sock, const char *daemon,
		  const char *const *extra)
{
	struct daemon_argv b;
	char *env;
	pid_t pid = spawn_extra(t, sock, daemon,
				(const char **)daemon_argv(t, &b, sock, daemon, extra, &env));

	free(env);
	return pid;
}

pid_t t_rust_at(struct t_ctx *t, const char *sock, const char *rust, const char *const *extra)
{
	char sockarg[PATH_MAX + 16], dirarg[PATH_MAX + 16];
	const char *argv[8 + MAX_EXTRA];
	int n = 0;

	snprintf(sockarg, sizeof(sockarg), "--socket-path=%s", sock);
	snprintf(dirarg, sizeof(dirarg), "--shared-dir=%s", t->share);
	argv[n++] = rust;
	argv[n++] = sockarg;
	argv[n++] = dirarg;
	argv[n++] = "--sandbox=none";
	argv[n++] = "--cache=auto";
	for (int i = 0; extra && extra[i] && i < MAX_EXTRA; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	return spawn_extra(t, sock, rust, argv);
}

bool t_pid_alive(struct t_ctx *t, pid_t pid)
{
	return extra_alive(extra_of(t, pid));
}

const char *t_pid_status(struct t_ctx *t, pid_t pid)
{
	static char buf[64];
	struct t_extra *x = extra_of(t, pid);

	if (extra_alive(x))
		return "running";
	describe_status(x->status, buf, sizeof(buf));
	return buf;
}

const char *t_pid_log(struct t_ctx *t, pid_t pid)
{
	return pid == t->pid ? t->log : extra_of(t, pid)->log;
}

long t_pid_log_size(struct t_ctx *t, pid_t pid)
{
	struct stat st;

	return stat(t_pid_log(t, pid), &st) == 0 ? (long)st.st_size : 0;
}

bool t_pid_log_has(struct t_ctx *t, pid_t pid, long skip, const char *needle)
{
	FILE *f = fopen(t_pid_log(t, pid), "re");
	char line[2048];
	bool found = false;

	if (!f)
		return false;
	if (skip > 0)
		fseek(f, skip, SEEK_SET);
	while (!found && fgets(line, sizeof(line), f))
		found = strcasestr(line, needle) != NULL;
	fclose(f);
	return found;
}

int t_connect_at(struct t_ctx *t, pid_t pid)
{
	struct t_extra *x = extra_of(t, pid);
	long deadline = now_ms() + 10000;

	for (;;) {
		int fd = fe_connect(x->sock, 100);

		if (fd >= 0)
			return fd;
		if (!extra_alive(x))
			t_fail(t, "the daemon on %s ended before accepting a connection (%s)",
			       x->sock, t_pid_status(t, pid));
		if (now_ms() >= deadline)
			t_fail(t, "cannot connect to %s: %s", x->sock, strerror(-fd));
	}
}

static void check_sanitizers_in(struct t_ctx *t, const char *log);

void t_pid_finish(struct t_ctx *t, pid_t pid)
{
	struct t_extra *x = extra_of(t, pid);
	long deadline = now_ms() + 10000;

	while (extra_alive(x) && now_ms() < deadline)
		sleep_ms(10);
	check_sanitizers_in(t, x->log);
	if (!x->gone)
		t_fail(t, "the daemon on %s did not exit within 10 s of the VMM hanging up",
		       x->sock);
	if (!WIFEXITED(x->status) || WEXITSTATUS(x->status) != 0)
		t_fail(t, "the daemon on %s ended with %s when the VMM hung up", x->sock,
		       t_pid_status(t, pid));
}

/* ---- reporting ---- */

/* Appends the end of the daemon log, indented, to buf. */
static void log_tail(struct t_ctx *t, char *buf, size_t size, int lines)
{
	char text[8192];
	int fd = open(t->log, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;
	size_t used = strlen(buf);
	char *p;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	n = pread(fd, text, sizeof(text) - 1,
		  end > (off_t)sizeof(text) - 1 ? end - (off_t)sizeof(text) + 1 : 0);
	close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	p = text + n;
	for (int seen = 0; p > text; p--) {
		if (p[-1] == '\n' && p != text + n && ++seen > lines)
			break;
	}
	for (char *save = NULL, *l = strtok_r(p, "\n", &save); l && used + 8 < size;
	     l = strtok_r(NULL, "\n", &save))
		used += (size_t)snprintf(buf + used, size - used, "    | %.*s\n", 200, l);
}

/* Appends the end of a further daemon's log under its name. */
static void extra_log_tail(struct t_ctx *t, const struct t_extra *x, char *buf, size_t size)
{
	struct t_ctx one = *t;
	size_t used = strlen(buf);
	const char *name = strrchr(x->log, '/');

	if (used + 64 >= size)
		return;
	snprintf(buf + used, size - used, "    + %s (%s)\n", name ? name + 1 : x->log,
		 x->gone ? "ended" : "running");
	snprintf(one.log, sizeof(one.log), "%s", x->log);
	log_tail(&one, buf, size, 8);
}

static void report(struct t_ctx *t, const char *status, const char *reason, bool with_log)
{
	char msg[7168];

	snprintf(msg, sizeof(msg), "%s %s\n", status, reason);
	if (with_log)
		log_tail(t, msg, sizeof(msg), 8);
	for (int i = 0; with_log && i < nextras; i++)
		extra_log_tail(t, &extras[i], msg, sizeof(msg));
	write_all(t->result_fd, msg, strlen(msg));
}

/* Ends the test with kind ("FAIL" or "SKIP") and a reason after prefix. */
static void __attribute__((noreturn, format(printf, 4, 0)))
t_end(struct t_ctx *t, const char *kind, const char *prefix, const char *fmt, va_list ap)
{
	char reason[1024];
	int n = snprintf(reason, sizeof(reason), "%s", prefix);

	vsnprintf(reason + n, sizeof(reason) - (size_t)n, fmt, ap);
	kill_daemon(t);
	kill_extras();
	report(t, kind, reason, strcmp(kind, "FAIL") == 0);
	_exit(0);
}

void t_fail_at(struct t_ctx *t, int line, const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "line %d: ", line);
	va_start(ap, fmt);
	t_end(t, "FAIL", prefix, fmt, ap);
}

void t_fail(struct t_ctx *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	t_end(t, "FAIL", "", fmt, ap);
}

void t_skip(struct t_ctx *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	t_end(t, "SKIP", "", fmt, ap);
}

/* A sanitizer's report in the daemon log fails the test whatever else happened. */
static void check_sanitizers(struct t_ctx *t)
{
	check_sanitizers_in(t, t->log);
}

static void check_sanitizers_in(struct t_ctx *t, const char *log)
{
	static const char *const marks[] = { "AddressSanitizer", "LeakSanitizer",
					     "UndefinedBehaviorSanitizer",
					     "runtime error:", "ThreadSanitizer" };
	char line[1024];
	FILE *f = fopen(log, "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
			if (strstr(line, marks[i])) {
				fclose(f);
				line[strcspn(line, "\n")] = '\0';
				t_fail(t, "sanitizer report in the daemon log: %s", line);
			}
		}
	}
	fclose(f);
}

/* After a test body returned: the daemon must be alive, then exit 0 when the VMM hangs up. */
static void t_finish(struct t_ctx *t)
{
	char st[64];
	int status;

	if (t->pid && !t->daemon_gone) {
		if (!t_alive(t)) {
			describe_status(t->exit_status, st, sizeof(st));
			check_sanitizers(t);
			t_fail(t, "the daemon died during the test (%s)", st);
		}
		t_hang_up(t);
		status = t_wait_exit(t, 10000);
		check_sanitizers(t);
		if (status == -1)
			t_fail(t, "the daemon did not exit within 10 s of the VMM hanging up");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			describe_status(status, st, sizeof(st));
			t_fail(t, "the daemon ended with %s when the VMM hung up", st);
		}
	}
	check_sanitizers(t);
	for (int i = 0; i < nextras; i++)
		check_sanitizers_in(t, extras[i].log);
	kill_extras();
	report(t, "PASS", "", false);
}

/* ---- the runner ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static pid_t read_pid_file(const char *dir)
{
	char path[PATH_MAX], buf[32] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/daemon.pid", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	close(fd);
	return (pid_t)atoi(buf);
}

/* Reaps every orphan the runner inherited (it is their subreaper). */
static void reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Runs one case in a child process; prints its line; returns 1 pass, 0 skip, -1 fail. */
static int run_case(const struct t_case *c, const char *daemon, bool c_virtiofsd)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[PATH_MAX - 64], out[8192] = "", st[64];
	size_t used = 0;
	int pfd[2], status = 0, ret;
	long deadline;
	pid_t child, dpid;
	bool timed_out = false;

	snprintf(dir, sizeof(dir), "%s/vfsd-fe.XXXXXX", tmp);
	if (!mkdtemp(dir) || pipe2(pfd, O_CLOEXEC) < 0) {
		printf("FAIL %s cannot make a temporary directory: %s\n", c->name, strerror(errno));
		return -1;
	}
	child = fork();
	if (child == 0) {
		struct t_ctx t = { .name = c->name, .daemon = daemon, .c_virtiofsd = c_virtiofsd };

		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* and its daemon follows it */
		close(pfd[0]);
		t.result_fd = pfd[1];
		snprintf(t.dir, sizeof(t.dir), "%s", dir);
		snprintf(t.share, sizeof(t.share), "%s/share", dir);
		snprintf(t.sock, sizeof(t.sock), "%s/vhost.sock", dir);
		snprintf(t.log, sizeof(t.log), "%s/daemon.log", dir);
		if (mkdir(t.share, 0755) < 0)
			t_fail(&t, "mkdir %s: %s", t.share, strerror(errno));
		c->fn(&t);
		t_finish(&t);
		_exit(0);
	}
	close(pfd[1]);
	deadline = now_ms() + CASE_TIMEOUT_S * 1000L;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || stop_signal) {
			timed_out = !stop_signal;
			kill(child, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(pfd[0], out + used, sizeof(out) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	close(pfd[0]);
	out[used] = '\0';
	waitpid(child, &status, 0);
	/* Whatever the test did, its daemon goes now. */
	dpid = read_pid_file(dir);
	if (dpid > 0 && kill(dpid, 0) == 0) {
		kill(dpid, SIGKILL);
		waitpid(dpid, NULL, 0);
	}
	reap_all();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);

	if (stop_signal)
		return -1;
	if (timed_out || used == 0) {
		describe_status(status, st, sizeof(st));
		printf("FAIL %s %s\n", c->name,
		       timed_out ? "the test timed out" :
				   "the test process died without a verdict");
		if (!timed_out)
			printf("    | %s\n", st);
		return -1;
	}
	char *nl = strchr(out, '\n');
	char *rest = nl ? nl + 1 : out + used;

	if (nl)
		*nl = '\0';
	ret = strncmp(out, "PASS", 4) == 0 ? 1 : strncmp(out, "SKIP", 4) == 0 ? 0 : -1;
	if (ret == 1)
		printf("PASS %s\n", c->name);
	else
		printf("%.4s %s%s\n", out, c->name, out + 4);
	fputs(rest, stdout);
	return ret;
}

static bool selected(const char *name, int argc, char **argv, int first)
{
	if (first >= argc)
		return true;
	for (int i = first; i < argc; i++) {
		size_t len = strlen(argv[i]);

		if (strcmp(argv[i], name) == 0 ||
		    (len && argv[i][len - 1] == '*' && strncmp(argv[i], name, len - 1) == 0))
			return true;
	}
	return false;
}

int t_main(int argc, char **argv, const struct t_case *cases, const char *suite)
{
	bool c_virtiofsd = false, list = false;
	int i = 1, pass = 0, fail = 0, skip = 0;
	const char *daemon;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--c-virtiofsd") == 0)
			c_virtiofsd = true;
		else if (strcmp(argv[i], "--list") == 0)
			list = true;
	}
	if (list) {
		for (const struct t_case *c = cases; c->name; c++)
			printf("%s\n", c->name);
		return 0;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [--c-virtiofsd] [--list] DAEMON [TEST|PREFIX*...]\n",
			argv[0]);
		return 2;
	}
	daemon = argv[i++];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_stop }, NULL);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_stop }, NULL);
	/* Orphaned daemons come back to us, so none can be left behind. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	for (const struct t_case *c = cases; c->name; c++) {
		int r;

		if (!selected(c->name, argc, argv, i))
			continue;
		if (c_virtiofsd && c->c_virtiofsd_skip) {
			printf("SKIP %s %s\n", c->name, c->c_virtiofsd_skip);
			skip++;
			continue;
		}
		r = run_case(c, daemon, c_virtiofsd);
		if (stop_signal) {
			printf("stopped by signal %d\n", (int)stop_signal);
			return 1;
		}
		pass += r > 0;
		fail += r < 0;
		skip += r == 0;
	}
	printf("%s: %d passed, %d failed, %d skipped\n", suite, pass, fail, skip);
	return fail ? 1 : 0;
}
