/* vfsd-hook's actions: spawn the sandbox's daemon, stop it (docs/hook.md). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/magic.h>

#include "base/util.h"
#include "ctl/conn.h"
#include "ctl/proto.h"
#include "hook/hook.h"

/* One run of the hook: where it is, so that a deadline can say which step was slow. */
struct run {
	const struct hook_opts *o;
	const struct hook_input *in;
	const struct hook_plan *plan;
	char dir[512]; /* HOOK_DIR/SANDBOX (its socket must fit in 108 bytes anyway) */
	pid_t supervisor; /* its pid (SO_PEERCRED), once asked; 0 if unknown */
	const char *step;
	char *err;
	size_t errlen;
};

static int fail(struct run *r, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct run *r, int e, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->err, r->errlen, "sandbox %s: ", r->plan->sandbox);

	va_start(ap, fmt);
	if (n > 0 && (size_t)n < r->errlen)
		vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -e;
}

/* The hook's deadline passed during the current step. */
static int timed_out(struct run *r)
{
	return fail(r, ETIMEDOUT, "timed out %s (the hook's deadline)", r->step);
}

/* Whether /proc/PID/uid_map ("self" for 0) is the initial user namespace's. */
static bool initial_userns(pid_t pid, int *err)
{
	char path[64], buf[256];
	unsigned long a, b, c;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), pid ? "/proc/%d/uid_map" : "/proc/self/uid_map", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err = errno;
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	*err = n < 0 ? errno : 0;
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *nl = strchr(buf, '\n');

	return sscanf(buf, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 &&
	       c == 4294967295ul && (!nl || !nl[1]);
}

/* The host's uid of this process: through /proc/self/uid_map when the hook runs in an
 * engine's user namespace (rootless Podman runs it as uid 0 in its own). */
static bool host_uid(uid_t *out)
{
	unsigned long ns, host, n;
	uid_t uid = getuid();
	FILE *f = fopen("/proc/self/uid_map", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fscanf(f, "%lu %lu %lu", &ns, &host, &n) == 3) {
		if (uid >= ns && uid - ns < n) {
			*out = (uid_t)(host + (uid - ns));
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* Root of the host: uid 0 in the initial user namespace (not rootless Podman's uid 0). */
static bool host_root(void)
{
	int e;

	return getuid() == 0 && initial_userns(0, &e);
}

int hook_default_dir(char *out, size_t len, char *err, size_t errlen)
{
	struct stat st;
	uid_t uid;

	if (host_root())
		return snprintf(out, len, "/run/vfsd-hook") < (int)len ? 0 : -ENAMETOOLONG;
	/* not $XDG_RUNTIME_DIR: Podman runs poststop with an empty environment, and both stages
	 * must find the same directory */
	if (host_uid(&uid)) {
		snprintf(out, len, "/run/user/%u", (unsigned int)uid);
		if (stat(out, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid())
			return snprintf(out, len, "/run/user/%u/vfsd", (unsigned int)uid) < (int)len
				       ? 0
				       : -ENAMETOOLONG;
	}
	snprintf(err, errlen,
		 "not root and no /run/user/UID of the hook's user: give the hook --hook-dir DIR or VFSD_HOOK_DIR (in the hooks.d file) for its sockets");
	return -ENOENT;
}

/* mkdir -p of an absolute path, each new level 0700. */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* A directory the hook keeps files in must be its own: a real directory (not a symlink)
 * owned by the hook's user that nobody else may write, or another user could point the
 * hook's creates and unlinks elsewhere. */
static int own_dir(struct run *r, const char *path, mode_t others)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return fail(r, errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & others))
		return fail(r, EPERM,
			    "%s must be a directory of the hook's user (uid %u) that no one else may write",
			    path, (unsigned int)geteuid());
	return 0;
}

/* Takes the sandbox's lock (HOOK_DIR/SANDBOX/lock): hooks of one sandbox's containers run
 * one at a time. Returns the lock's fd or -errno. */
static int take_lock(struct run *r)
{
	char path[sizeof(r->dir) + 8], top[sizeof(r->dir)];
	int fd, e;

	snprintf(top, sizeof(top), "%s", r->dir);
	*strrchr(top, '/') = '\0';
	snprintf(path, sizeof(path), "%s/lock", r->dir);
	r->step = "waiting for another vfsd-hook of the same sandbox (its lock)";
	for (;;) {
		struct stat held, now;

		if ((e = mkdirs(r->dir)) < 0)
			return fail(r, -e, "cannot create %s: %s", r->dir, strerror(-e));
		if ((e = own_dir(r, top, 022)) < 0 || (e = own_dir(r, r->dir, 077)) < 0)
			return e;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == ENOENT)
			continue; /* the last hook of the sandbox removed the directory just now */
		if (fd < 0)
			return fail(r, errno, "cannot open %s: %s", path, strerror(errno));
		while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR) {
				e = errno;
				close(fd);
				return fail(r, e, "cannot lock %s: %s", path, strerror(e));
			}
			if (ctl_clock_ms() >= r->o->deadline_ms) {
				close(fd);
				return timed_out(r);
			}
			usleep(10000);
		}
		/* the last hook of a sandbox removes the lock file while it holds it: a lock
		 * taken on a removed file locks nothing */
		if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_ino == now.st_ino &&
		    held.st_dev == now.st_dev)
			break;
		close(fd);
	}
	return fd;
}

/* One request and its reply on a connection of its own. *reply is the caller's to put. */
static int ask(struct run *r, struct json_object *req, int pass_fd, uint64_t deadline,
	       const char *waiting, struct json_object **reply)
{
	struct ctl_conn c;
	const char *sock = r->o->control_socket ? r->o->control_socket : r->plan->control_socket;
	int e;

	*reply = NULL;
	r->step = "connecting to the supervisor";
	e = ctl_conn_open(&c, sock, deadline);
	if (e == -ETIMEDOUT)
		return timed_out(r);
	if (e < 0)
		return fail(r, -e, "cannot reach the vfsd supervisor at %s: %s", sock, strerror(-e));
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (getsockopt(c.fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		r->supervisor = cred.pid;
	if (r->supervisor <= 0) {
		/* the /proc/PID paths the hook passes would name other processes there */
		ctl_conn_close(&c);
		return fail(r, EXDEV, "the vfsd supervisor at %s runs in another pid namespace than the hook", sock);
	}
	r->step = waiting;
	e = ctl_conn_send(&c, req, pass_fd);
	if (e == 0) {
		*reply = ctl_conn_recv(&c, &e);
		if (!*reply && e == 0)
			e = -ECONNRESET;
	}
	ctl_conn_close(&c);
	if (e == -ETIMEDOUT)
		return timed_out(r);
	if (e < 0)
		return fail(r, -e, "no reply from the vfsd supervisor at %s: %s", sock,
			    e == -EPROTO ? "not a control-protocol reply" : strerror(-e));
	return 0;
}

static const char *reply_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

/* The reply's errno; one that is not a positive number is a protocol error. */
static int reply_errno(struct json_object *o)
{
	struct json_object *v;
	int e = json_object_object_get_ex(o, "errno", &v) && json_object_is_type(v, json_type_int)
			? json_object_get_int(v)
			: 0;

	return e > 0 ? e : EPROTO;
}

static struct json_object *request(const char *op, const char *sandbox)
{
	struct json_object *req = json_object_new_object();

	json_object_object_add(req, "op", json_object_new_string(op));
	json_object_object_add(req, "sandbox", json_object_new_string(sandbox));
	return req;
}

/* The daemon's state as the supervisor says ("running", ...), NULL when it has none; or
 * -errno from ask() in *e. */
static int daemon_state(struct run *r, char *state, size_t len)
{
	struct json_object *req = request("status", r->plan->sandbox), *reply;
	int e;

	e = ask(r, req, -1, r->o->deadline_ms, "waiting for the supervisor's status of the sandbox",
		&reply);
	json_object_put(req);
	if (e < 0)
		return e;
	state[0] = '\0';
	struct json_object *owner;
	uid_t me = 0;

	if (ctl_reply_ok(reply) && json_object_object_get_ex(reply, "caller_uid", &owner) &&
	    host_uid(&me) && json_object_get_int64(owner) != (int64_t)me)
		/* (root sees every daemon: one another user spawned under this id is not ours to
		 * join or stop) */
		e = fail(r, EEXIST, "sandbox id %s is taken by a daemon uid %lld spawned, not this hook's user (uid %u)",
			 r->plan->sandbox, (long long)json_object_get_int64(owner), (unsigned int)me);
	else if (ctl_reply_ok(reply))
		snprintf(state, len, "%s", reply_str(reply, "state") ? reply_str(reply, "state") : "?");
	else if (reply_errno(reply) != ENOENT)
		e = fail(r, reply_errno(reply), "the supervisor refused the status: %s",
			 reply_str(reply, "error") ? reply_str(reply, "error") : "?");
	json_object_put(reply);
	return e;
}

/* Whether the supervisor has a record of the sandbox (asked with what is left of the
 * deadline; when it cannot say, it is taken to have one, so nothing of it is removed). */
static bool daemon_known(struct run *r)
{
	char state[32], keep[1024];
	bool known;

	snprintf(keep, sizeof(keep), "%s", r->err);
	known = daemon_state(r, state, sizeof(state)) < 0 || state[0];
	snprintf(r->err, r->errlen, "%s", keep);
	return known;
}

/* --- spawning -------------------------------------------------------------------------- */

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* The container's rootfs as a path the supervisor can resolve in its mount namespace:
 * root.path itself when the supervisor sees the same directory there, else
 * through /proc/PID/root, since the rootfs may be mounted only in the engine's namespace
 * (rootless Podman's overlay, an engine in a mount namespace of its own). Before pivot_root
 * (createRuntime, prestart) the container's root is still the engine's: the rootfs is
 * root.path under it. root.path is the better one: a daemon in a user namespace of the
 * container's may not follow /proc/PID/root of a process still being set up (not dumpable). */
static int share_path(struct run *r, char *out, size_t len)
{
	const struct hook_input *in = r->in;
	char root[PATH_MAX], proc_root[64];
	const char *rp = in->root_path ? in->root_path : in->root;

	if (r->plan->share)
		return snprintf(out, len, "%s", r->plan->share) < (int)len ? 0 : -ENAMETOOLONG;
	if (!rp)
		return fail(r, EINVAL, "config.json has no root.path (name the share with io.vfsd.share)");
	if (rp[0] == '/')
		snprintf(root, sizeof(root), "%s", rp);
	else if (snprintf(root, sizeof(root), "%s/%s", in->bundle, rp) >= (int)sizeof(root))
		return fail(r, ENAMETOOLONG, "the rootfs path is too long");
	if (r->supervisor > 0 &&
	    snprintf(out, len, "/proc/%d/root%s", (int)r->supervisor, root) < (int)len &&
	    same_file(out, root))
		return snprintf(out, len, "%s", root) < (int)len ? 0 : -ENAMETOOLONG;
	snprintf(proc_root, sizeof(proc_root), "/proc/%d/root", (int)in->pid);
	if (same_file(proc_root, root))
		return snprintf(out, len, "%s", proc_root) < (int)len ? 0 : -ENAMETOOLONG;
	if (snprintf(out, len, "%s%s", proc_root, root) >= (int)len)
		return fail(r, ENAMETOOLONG, "the rootfs path is too long");
	return 0;
}

/* The v2 cgroup of pid 0 (self) or pid from /proc/PID/cgroup ("0::PATH"). */
static int cgroup_of(pid_t pid, char *out, size_t len)
{
	char path[64], line[PATH_MAX + 8];
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), pid ? "/proc/%d/cgroup" : "/proc/self/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			r = snprintf(out, len, "%s", line + 3) < (int)len ? 0 : -ENAMETOOLONG;
			break;
		}
	}
	fclose(f);
	return r;
}

/* The cgroup the daemon joins: io.vfsd.cgroup's path, none, or the container's own when it
 * has one (not the hook's: with cgroups disabled the container shares the engine's), as a
 * path through this process's root (the cgroup2 mount may be the engine's namespace's only). */
static int cgroup_path(struct run *r, char *out, size_t len)
{
	char mine[PATH_MAX], theirs[PATH_MAX];
	struct statfs sf;

	out[0] = '\0';
	if (r->plan->cgroup_mode && strcmp(r->plan->cgroup_mode, "none") == 0)
		return 0;
	if (r->plan->cgroup_mode)
		return snprintf(out, len, "%s", r->plan->cgroup_mode) < (int)len ? 0 : -ENAMETOOLONG;
	/* an application container's cgroup goes with it, and the daemon with it, while the
	 * pod's other containers still use the daemon */
	if (r->plan->ctype == HOOK_CONTAINER)
		return 0;
	if (statfs("/sys/fs/cgroup", &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)
		return 0; /* a cgroup v1 host: no placement (docs/hook.md) */
	if (cgroup_of(r->in->pid, theirs, sizeof(theirs)) < 0 ||
	    cgroup_of(0, mine, sizeof(mine)) < 0 || strcmp(mine, theirs) == 0)
		return 0;
	if (snprintf(out, len, "/proc/%d/root/sys/fs/cgroup%s", (int)getpid(), theirs) >= (int)len)
		return fail(r, ENAMETOOLONG, "the container's cgroup path is too long");
	return 0;
}

/* Whether some process listens on a unix socket bound at path (/proc/net/unix), without
 * connecting: a vfsd takes its first connection for its VMM's. */
static bool listened_on(const char *path)
{
	char line[PATH_MAX + 128];
	FILE *f = fopen("/proc/net/unix", "re");
	bool found = false;

	if (!f)
		return true; /* cannot tell: the caller does not take it over */
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/');
		unsigned long flags = 0;

		if (!p)
			continue;
		p[strcspn(p, "\n")] = '\0';
		/* Num RefCount Protocol Flags Type St Inode Path: Flags 00010000 is listening */
		if (sscanf(line, "%*s %*s %*s %lx", &flags) == 1 && (flags & 0x10000) &&
		    strcmp(p, path) == 0)
			found = true;
	}
	fclose(f);
	return found;
}

/* A listening socket at path for the VMM, passed to the daemon. A socket file nobody
 * listens on (a daemon that died with its host) is replaced. */
static int listen_at(struct run *r, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return fail(r, ENAMETOOLONG, "socket path %s is longer than %zu bytes", path,
			    sizeof(addr.sun_path) - 1);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return fail(r, EEXIST, "%s exists and is not a socket", path);
		if (listened_on(path))
			return fail(r, EADDRINUSE, "socket %s is in use by another process", path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(r, errno, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		int e = errno;

		close(fd);
		return fail(r, e, "cannot listen on %s: %s", path, strerror(e));
	}
	return fd;
}

static void default_socket(const struct run *r, char *out, size_t len)
{
	snprintf(out, len, "%s/vhost-user.sock", r->dir);
}

static void file_in_dir(const struct run *r, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", r->dir, name);
}

/* Asks the supervisor to stop the sandbox's daemon (until deadline): 0 when it stopped or
 * there was none. */
static int stop_daemon(struct run *r, uint64_t deadline)
{
	struct json_object *req = request("stop", r->plan->sandbox), *reply;
	uint64_t now = ctl_clock_ms();
	int e;

	/* SIGKILL early enough that the reply still comes before the deadline */
	json_object_object_add(req, "grace_ms",
			       json_object_new_int64(deadline > now + 1000 ? (int64_t)MIN(deadline - now - 1000, 5000) : 0));
	e = ask(r, req, -1, deadline, "waiting for the supervisor to stop the daemon", &reply);
	json_object_put(req);
	if (e < 0)
		return e;
	if (!ctl_reply_ok(reply) && reply_errno(reply) != ENOENT)
		e = fail(r, reply_errno(reply), "the supervisor refused to stop the daemon: %s",
			 reply_str(reply, "error") ? reply_str(reply, "error") : "?");
	json_object_put(reply);
	return e;
}

/* The spawn itself, with the container's process held by pidfd. */
static int spawn_with(struct run *r, int pidfd, const char *userns)
{
	char share[PATH_MAX + 64], sock[PATH_MAX], cg[PATH_MAX + 64];
	struct json_object *req, *args, *labels, *reply;
	const struct hook_plan *p = r->plan;
	int e, lfd;
	bool own_userns = !initial_userns(r->in->pid, &e);

	if (e)
		return fail(r, e, "cannot read /proc/%d/uid_map: %s", (int)r->in->pid, strerror(e));
	if ((e = share_path(r, share, sizeof(share))) < 0 || (e = cgroup_path(r, cg, sizeof(cg))) < 0)
		return e;
	if (p->socket_path)
		snprintf(sock, sizeof(sock), "%s", p->socket_path);
	else
		default_socket(r, sock, sizeof(sock));
	lfd = listen_at(r, sock);
	if (lfd < 0)
		return lfd;

	req = request("spawn", p->sandbox);
	json_object_object_add(req, "shared_dir", json_object_new_string(share));
	if (own_userns)
		json_object_object_add(req, "userns", json_object_new_string(userns));
	if (cg[0])
		json_object_object_add(req, "cgroup", json_object_new_string(cg));
	args = json_object_new_array();
	for (unsigned int i = 0; i < p->noptions; i++)
		json_object_array_add(args, json_object_new_string(p->options[i]));
	json_object_object_add(req, "args", args);
	labels = json_object_new_object();
	for (unsigned int i = 0; i < p->nlabels; i++)
		json_object_object_add(labels, p->label_names[i],
				       json_object_new_string(p->label_values[i]));
	json_object_object_add(req, "labels", labels);

	e = ask(r, req, lfd, r->o->deadline_ms, "waiting for the supervisor to start the daemon",
		&reply);
	json_object_put(req);
	close(lfd); /* the daemon has its own copy */
	if (e == 0 && !ctl_reply_ok(reply))
		e = fail(r, reply_errno(reply), "the supervisor refused to start the daemon: %s",
			 reply_str(reply, "error") ? reply_str(reply, "error") : "?");
	json_object_put(reply);
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };

	if (e == 0 && poll(&pf, 1, 0) > 0)
		e = fail(r, ESRCH, "the container's process %d ended while its daemon started",
			 (int)r->in->pid);
	if (e < 0) {
		char keep[1024];

		/* no half-registered sandbox: a daemon that failed to start is forgotten, one that
		 * may still be starting (the deadline) is stopped: one more second for that */
		snprintf(keep, sizeof(keep), "%s", r->err);
		if (e != -EEXIST)
			stop_daemon(r, MAX(r->o->deadline_ms, ctl_clock_ms() + 1000));
		snprintf(r->err, r->errlen, "%s", keep);
		unlink(sock);
	}
	return e;
}

static int spawn_daemon(struct run *r)
{
	char userns[64];
	int e;

	snprintf(userns, sizeof(userns), "/proc/%d/ns/user", (int)r->in->pid);
	r->step = "looking at the container's process";
	/* held across the spawn: if the process ends meanwhile, its pid may name another's
	 * namespaces and root by the time the supervisor looks */
	int pidfd = (int)syscall(SYS_pidfd_open, r->in->pid, 0);

	if (pidfd < 0 || access(userns, F_OK) < 0) {
		if (pidfd >= 0)
			close(pidfd);
		return fail(r, ESRCH, "the container's process %d has exited", (int)r->in->pid);
	}
	e = spawn_with(r, pidfd, userns);
	close(pidfd);
	return e;
}

/* --- the containers of a sandbox ------------------------------------------------------- */

/* Sandbox containers own the daemon; when only application containers run the hook
 * (CRI-O, NRI's hook injector), each is a member and the last one's poststop stops it. */
static int member_path(struct run *r, char *out, size_t len)
{
	if (!ctl_sandbox_id_valid(r->in->id))
		return fail(r, EINVAL, "container id '%.140s' is not 1 to %d of [A-Za-z0-9._-]",
			    r->in->id, CTL_SANDBOX_MAX);
	if (snprintf(out, len, "%s/members/%s", r->dir, r->in->id) >= (int)len)
		return fail(r, ENAMETOOLONG, "the hook's directory path is too long");
	return 0;
}

static bool members_left(struct run *r)
{
	char path[PATH_MAX + 16];

	file_in_dir(r, "members", path, sizeof(path));
	return rmdir(path) < 0 && errno == ENOTEMPTY;
}

static void remove_dir(struct run *r)
{
	char path[PATH_MAX + 32];

	file_in_dir(r, "members", path, sizeof(path));
	rmdir(path);
	file_in_dir(r, "sandbox-owned", path, sizeof(path));
	unlink(path);
	file_in_dir(r, "lock", path, sizeof(path));
	unlink(path);
	rmdir(r->dir);
}

static int ensure(struct run *r)
{
	char state[32], member[PATH_MAX + 160], path[PATH_MAX + 32];
	bool new_member = false;
	int e;

	if (r->plan->ctype == HOOK_CONTAINER) {
		if ((e = member_path(r, member, sizeof(member))) < 0)
			return e;
		file_in_dir(r, "members", path, sizeof(path));
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return fail(r, errno, "cannot create %s: %s", path, strerror(errno));
		if ((e = own_dir(r, path, 077)) < 0)
			return e;
		int fd = open(member, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd < 0 && errno != EEXIST) /* EEXIST: an earlier stage of this container's */
			return fail(r, errno, "cannot create %s: %s", member, strerror(errno));
		new_member = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	e = daemon_state(r, state, sizeof(state));
	if (e == 0 && (strcmp(state, "running") == 0 || strcmp(state, "starting") == 0)) {
		default_socket(r, path, sizeof(path));
		if (r->plan->socket_path || access(path, F_OK) == 0)
			return 0; /* the sandbox has its daemon: one per sandbox */
		/* a daemon no VMM can reach (its spawn timed out and its stop failed) */
		if ((e = stop_daemon(r, r->o->deadline_ms)) == 0)
			e = daemon_state(r, state, sizeof(state));
	}
	if (e == 0 && strcmp(state, "stopping") == 0)
		e = fail(r, EBUSY, "the sandbox's daemon is stopping");
	if (e == 0)
		e = spawn_daemon(r);
	if (e == 0 && r->plan->ctype == HOOK_SANDBOX) {
		file_in_dir(r, "sandbox-owned", path, sizeof(path));
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd >= 0)
			close(fd);
	}
	if (e < 0 && new_member)
		unlink(member);
	/* nothing left behind: a sandbox with no daemon and no member keeps no directory (a
	 * sandbox-owned mark stays for the daemon it marks, if the supervisor still has one) */
	file_in_dir(r, "sandbox-owned", path, sizeof(path));
	if (e < 0 && !members_left(r) && (access(path, F_OK) < 0 || !daemon_known(r)))
		remove_dir(r);
	return e;
}

static int poststop(struct run *r)
{
	char member[PATH_MAX + 160], path[PATH_MAX + 32];
	int e;

	if (r->plan->ctype == HOOK_CONTAINER) {
		if ((e = member_path(r, member, sizeof(member))) < 0)
			return e;
		unlink(member);
		file_in_dir(r, "sandbox-owned", path, sizeof(path));
		if (access(path, F_OK) == 0 || members_left(r))
			return 0; /* the sandbox's, or another container's */
	}
	char state[32];

	e = daemon_state(r, state, sizeof(state)); /* (and whose it is) */
	if (e == 0 && state[0])
		e = stop_daemon(r, r->o->deadline_ms);
	if (e == -EEXIST)
		return e; /* another user's: its socket and directory are not this hook's either */
	if (!r->plan->socket_path) {
		default_socket(r, path, sizeof(path));
		unlink(path);
	}
	if (e == 0)
		remove_dir(r);
	return e;
}

/*
 * Annotations are written by whoever writes the pod or container spec: in a cluster, a
 * tenant. A hook that runs as root would otherwise let them choose what root shares, where
 * root binds and unlinks a socket, which supervisor gets the VMM's socket, and the daemon's
 * capabilities and sandbox. As root, only the options that change how files are served,
 * not with which powers, are taken from them, unless the operator says --trust-annotations.
 * A hook that is not root gives its user nothing the user could not do.
 */
static const char *const tenant_options[] = {
	"--cache",	    "--xattr",		  "--posix-acl",	"--announce-submounts",
	"--no-announce-submounts", "--no-readdirplus", "--allow-mmap", "--writeback",
	"--allow-direct-io", "--security-label", "--preserve-noatime", "--posix-lock",
	"--no-posix-lock",  "--flock",		  "--no-flock",		"--readonly",
	"--log-level",
};

static int check_trust(struct run *r)
{
	const struct hook_plan *p = r->plan;
	const char *what = NULL;

	if (r->o->trust_annotations || !host_root())
		return 0;
	if (p->share)
		what = "io.vfsd.share";
	else if (p->socket_path)
		what = "io.vfsd.socket";
	else if (strcmp(p->control_socket, HOOK_CONTROL_SOCKET) != 0)
		what = "io.vfsd.control-socket";
	else if (p->cgroup_mode && strcmp(p->cgroup_mode, "none") != 0)
		what = "io.vfsd.cgroup";
	if (what)
		return fail(r, EPERM,
			    "annotation %s chooses what a root hook does: the hook takes it only with --trust-annotations (docs/hook.md, \"Who may choose what\")",
			    what);
	for (unsigned int i = 0; i < p->noptions; i++) {
		const char *o = p->options[i];
		size_t n = strcspn(o, "=");
		bool ok = false;

		for (size_t k = 0; k < ARRAY_SIZE(tenant_options); k++)
			ok |= strlen(tenant_options[k]) == n && strncmp(o, tenant_options[k], n) == 0;
		if (!ok)
			return fail(r, EPERM,
				    "io.vfsd.options: '%.80s' is not one a root hook takes from an annotation (only --cache=, --xattr, --posix-acl... in their --name=value form; see docs/hook.md) without --trust-annotations",
				    o);
	}
	return 0;
}

int hook_run(const struct hook_opts *o, const struct hook_input *in,
	     const struct hook_plan *plan, char *err, size_t errlen)
{
	struct run r = { .o = o, .in = in, .plan = plan, .err = err, .errlen = errlen };
	char dir[PATH_MAX];
	int lock, e;

	err[0] = '\0';
	if (o->hook_dir) {
		snprintf(dir, sizeof(dir), "%s", o->hook_dir);
	} else if ((e = hook_default_dir(dir, sizeof(dir), err, errlen)) < 0) {
		return e;
	}
	if (dir[0] != '/' || snprintf(r.dir, sizeof(r.dir), "%s/%s", dir, plan->sandbox) >= (int)sizeof(r.dir))
		return fail(&r, EINVAL, "the hook's directory '%.200s' is not a short absolute path", dir);
	if (o->stage != HOOK_POSTSTOP && (e = check_trust(&r)) < 0)
		return e;
	lock = take_lock(&r);
	if (lock < 0)
		return lock;
	e = o->stage == HOOK_POSTSTOP ? poststop(&r) : ensure(&r);
	close(lock);
	return e;
}
