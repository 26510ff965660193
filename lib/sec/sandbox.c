#include "metrics/metrics.h"
#include "sec/sandbox.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"

int vfsd_sandbox_parse(const char *s, enum vfsd_sandbox_mode *out)
{
	if (strcasecmp(s, "namespace") == 0)
		*out = VFSD_SANDBOX_NAMESPACE;
	else if (strcasecmp(s, "chroot") == 0)
		*out = VFSD_SANDBOX_CHROOT;
	else if (strcasecmp(s, "none") == 0)
		*out = VFSD_SANDBOX_NONE;
	else
		return -EINVAL;
	return 0;
}

#define FAIL(...)                                   \
	do {                                        \
		int e_ = errno;                     \
		snprintf(err, errlen, __VA_ARGS__); \
		return e_ ? -e_ : -EINVAL;          \
	} while (0)

static int write_file(const char *path, const char *text)
{
	int cleanup_close fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		return -errno;
	return 0;
}

int vfsd_ns_map_parse(const char *s, struct vfsd_ns_map *out)
{
	size_t len = strlen(s);
	uint32_t v[3];
	const char *p;
	char d;

	if (len < 7)
		return -EINVAL;
	d = s[len - 1];
	if (isalnum((unsigned char)d) || s[0] != d)
		return -EINVAL;
	p = s + 1;
	for (int i = 0; i < 3; i++) {
		unsigned long long x = 0;
		const char *q = p;

		while (*q >= '0' && *q <= '9' && q - p < 10)
			x = x * 10 + (unsigned)(*q++ - '0');
		if (q == p || *q != d || x > UINT32_MAX)
			return -EINVAL;
		v[i] = (uint32_t)x;
		p = q + 1;
	}
	if (*p)
		return -EINVAL;
	*out = (struct vfsd_ns_map){ .inside = v[0], .outside = v[1], .count = v[2] };
	return 0;
}

/* Whether a map can be written by ourselves: our own id, once (else newuidmap/newgidmap). */
static bool map_is_own(const struct vfsd_ns_map *m, unsigned int n, uint32_t id)
{
	return n == 1 && m[0].outside == id && m[0].count == 1;
}

/* Runs newuidmap or newgidmap for pid with the entries; returns its exit status or -errno. */
static int run_newidmap(const char *prog, pid_t pid, const struct vfsd_ns_map *m, unsigned int n)
{
	char args[3 * VFSD_NS_MAP_MAX + 2][16];
	char *argv[3 * VFSD_NS_MAP_MAX + 3];
	int argc = 0, status;
	pid_t child;

	argv[argc++] = (char *)prog;
	snprintf(args[0], sizeof(args[0]), "%d", (int)pid);
	argv[argc++] = args[0];
	for (unsigned int i = 0; i < n; i++) {
		snprintf(args[1 + 3 * i], 16, "%u", m[i].inside);
		snprintf(args[2 + 3 * i], 16, "%u", m[i].outside);
		snprintf(args[3 + 3 * i], 16, "%u", m[i].count);
		argv[argc++] = args[1 + 3 * i];
		argv[argc++] = args[2 + 3 * i];
		argv[argc++] = args[3 + 3 * i];
	}
	argv[argc] = NULL;
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		execvp(prog, argv);
		fprintf(stderr, "vfsd: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Writes one id map ("uid" or "gid") of pid's user namespace from outside it: our own id
 * directly (a gid map then needs setgroups denied first), anything else through newuidmap or
 * newgidmap. Returns 0 or a negative errno (EPERM when the helper program refused).
 */
static int write_map(pid_t pid, const char *kind, const struct vfsd_ns_map *m, unsigned int n,
		     uint32_t own)
{
	char path[64], map[64], prog[16];
	int r;

	if (!map_is_own(m, n, own)) {
		snprintf(prog, sizeof(prog), "new%smap", kind);
		r = run_newidmap(prog, pid, m, n);
		return r == 0 ? 0 : r < 0 ? r : -EPERM;
	}
	if (strcmp(kind, "gid") == 0) {
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		r = write_file(path, "deny\n");
		if (r < 0)
			return r;
	}
	snprintf(path, sizeof(path), "/proc/%d/%s_map", (int)pid, kind);
	snprintf(map, sizeof(map), "%u %u 1\n", m[0].inside, own);
	return write_file(path, map);
}

/*
 * Writes the uid and gid maps of pid's user namespace; by default our own ids are 0 inside,
 * so the daemon is root in its namespace. Returns 0 or a negative errno, and which map failed.
 */
static int write_maps(pid_t pid, const struct vfsd_ns_maps *maps, uid_t uid, gid_t gid,
		      const char **failed)
{
	struct vfsd_ns_map own_uid = { 0, uid, 1 }, own_gid = { 0, gid, 1 };
	bool have_uid = maps && maps->nuid, have_gid = maps && maps->ngid;
	int r;

	*failed = "uid";
	r = write_map(pid, "uid", have_uid ? maps->uid : &own_uid, have_uid ? maps->nuid : 1, uid);
	if (r < 0)
		return r;
	*failed = "gid";
	return write_map(pid, "gid", have_gid ? maps->gid : &own_gid, have_gid ? maps->ngid : 1, gid);
}

/*
 * Unprivileged: a user namespace. Its maps are written from outside it by a helper process
 * (newuidmap and newgidmap must be): by default our own ids are 0 inside; --uid-map and
 * --gid-map give the entries. If 0 is mapped, we become it.
 */
static int enter_userns(const struct vfsd_ns_maps *maps, char *err, size_t errlen)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int req[2], done[2], status;
	char b = 0;
	pid_t helper, parent = getpid();

	if (pipe2(req, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	helper = fork();
	if (helper < 0)
		FAIL("fork: %s", strerror(errno));
	if (helper == 0) {
		char result = 1;

		close(req[1]);
		close(done[0]);
		if (read(req[0], &b, 1) == 1 && b == 1) {
			const char *failed;
			int r = write_maps(parent, maps, uid, gid, &failed);

			if (r < 0)
				fprintf(stderr, "vfsd: cannot write the %s map: %s\n", failed,
					strerror(-r));
			result = r == 0 ? 0 : 1;
		}
		if (write(done[1], &result, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(req[0]);
	close(done[1]);
	if (unshare(CLONE_NEWUSER) < 0) {
		close(req[1]);
		close(done[0]);
		waitpid(helper, &status, 0);
		FAIL("cannot create a user namespace: %s", strerror(errno));
	}
	b = 1;
	if (write(req[1], &b, 1) != 1 || read(done[0], &b, 1) != 1)
		b = 1;
	close(req[1]);
	close(done[0]);
	waitpid(helper, &status, 0);
	if (b != 0) {
		errno = EPERM;
		FAIL("cannot map ids into the user namespace (see the message above)");
	}
	/* Root inside, when the maps give us 0 (only warned, as virtiofsd). */
	if (setresgid(0, 0, 0) < 0)
		log_warn("cannot become gid 0 in the user namespace: %s", strerror(errno));
	if (setresuid(0, 0, 0) < 0)
		log_warn("cannot become uid 0 in the user namespace: %s", strerror(errno));
	return 0;
}

static int same_file(int a, int b)
{
	struct statx sa, sb;

	if (statx(a, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sa) < 0 ||
	    statx(b, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sb) < 0)
		return 0;
	return sa.stx_ino == sb.stx_ino && sa.stx_dev_major == sb.stx_dev_major &&
	       sa.stx_dev_minor == sb.stx_dev_minor && sa.stx_mnt_id == sb.stx_mnt_id;
}

/* In the new mount namespace: fresh /proc, then make the shared directory our root. */
static int setup_mounts(const char *shared_dir, struct vfsd_sandbox *out, char *err, size_t errlen)
{
	int cleanup_close old_root = -1;
	int cleanup_close new_root = -1;

	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		FAIL("cannot make / a slave mount: %s", strerror(errno));
	if (mount("proc", "/proc", "proc", MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_RELATIME, NULL) < 0)
		FAIL("cannot mount /proc: %s", strerror(errno));
	out->proc_self_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (out->proc_self_fd < 0)
		FAIL("cannot open /proc/self/fd: %s", strerror(errno));
	if (mount(shared_dir, shared_dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		FAIL("cannot bind-mount %s: %s", shared_dir, strerror(errno));
	old_root = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	new_root = open(shared_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (old_root < 0 || new_root < 0)
		FAIL("cannot open the old or new root: %s", strerror(errno));
	if (fchdir(new_root) < 0)
		FAIL("cannot enter %s: %s", shared_dir, strerror(errno));
	if (!same_file(old_root, new_root)) {
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			FAIL("pivot_root to %s: %s", shared_dir, strerror(errno));
		if (fchdir(old_root) < 0 || mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0 ||
		    umount2(".", MNT_DETACH) < 0 || fchdir(new_root) < 0)
			FAIL("cannot detach the old root: %s", strerror(errno));
	}
	if (chroot(".") < 0 || chdir("/") < 0)
		FAIL("cannot settle in the new root: %s", strerror(errno));
	out->root_dir = "/";
	return 0;
}

static int enter_namespace(const char *shared_dir, int listen_fd, const struct vfsd_ns_maps *maps,
			   struct vfsd_sandbox *out, char *err, size_t errlen)
{
	pid_t child;
	int status, r;

	if (geteuid() != 0) {
		r = enter_userns(maps, err, errlen);
		if (r < 0)
			return r;
	}
	if (unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET) < 0)
		FAIL("cannot create namespaces: %s", strerror(errno));
	child = fork();
	if (child < 0)
		FAIL("fork: %s", strerror(errno));
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* How the daemon ended is the parent's to tell: it sees the exit status. */
		if (out->report_pid_fd >= 0)
			close(out->report_pid_fd);
		return setup_mounts(shared_dir, out, err, errlen);
	}
	/* The parent only waits: it keeps no way into the share. */
	close(listen_fd);
	/* Whoever reads the metrics measures the process that serves, not this one. */
	metrics_gauge_set(MG_SERVER_PID, child);
	if (out->report_pid_fd >= 0)
		dprintf(out->report_pid_fd, "P%d\n", (int)child);
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR) {
			log_error("waitpid: %s", strerror(errno));
			out->exit_status = 1;
			return VFSD_SANDBOX_PARENT;
		}
	}
	if (WIFSIGNALED(status)) {
		log_error("Child process terminated by signal %d", WTERMSIG(status));
		out->exit_status = 128 + WTERMSIG(status);
	} else {
		out->exit_status = WEXITSTATUS(status);
	}
	return VFSD_SANDBOX_PARENT;
}

static void drop_supplementary_groups(void)
{
	if (geteuid() != 0 || getgroups(0, NULL) <= 0)
		return;
	if (setgroups(0, NULL) < 0)
		log_warn("cannot drop supplementary groups: %s", strerror(errno));
}

int vfsd_sandbox_enter(enum vfsd_sandbox_mode mode, const char *shared_dir, int listen_fd,
		       const struct vfsd_ns_maps *maps, struct vfsd_sandbox *out, char *err,
		       size_t errlen)
{
	out->proc_self_fd = -1;
	out->root_dir = shared_dir;
	errno = 0;
	drop_supplementary_groups();
	switch (mode) {
	case VFSD_SANDBOX_NAMESPACE:
		return enter_namespace(shared_dir, listen_fd, maps, out, err, errlen);
	case VFSD_SANDBOX_CHROOT:
		if (geteuid() != 0) {
			errno = EPERM;
			FAIL("sandbox mode 'chroot' can only be used by root (Use '--sandbox namespace' instead)");
		}
		out->proc_self_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (out->proc_self_fd < 0)
			FAIL("cannot open /proc/self/fd: %s", strerror(errno));
		if (chroot(shared_dir) < 0 || chdir("/") < 0)
			FAIL("cannot chroot to %s: %s", shared_dir, strerror(errno));
		out->root_dir = "/";
		return 0;
	case VFSD_SANDBOX_NONE:
	default:
		out->proc_self_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (out->proc_self_fd < 0)
			FAIL("cannot open /proc/self/fd: %s", strerror(errno));
		return 0;
	}
}
