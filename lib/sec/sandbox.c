#include "sec/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
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

/* Unprivileged: a user namespace where our own ids map to themselves. */
static int enter_userns(char *err, size_t errlen)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (unshare(CLONE_NEWUSER) < 0)
		FAIL("cannot create a user namespace: %s", strerror(errno));
	snprintf(map, sizeof(map), "%u %u 1\n", uid, uid);
	if (write_file("/proc/self/uid_map", map) < 0)
		FAIL("cannot write uid_map: %s", strerror(errno));
	if (write_file("/proc/self/setgroups", "deny\n") < 0)
		FAIL("cannot write setgroups: %s", strerror(errno));
	snprintf(map, sizeof(map), "%u %u 1\n", gid, gid);
	if (write_file("/proc/self/gid_map", map) < 0)
		FAIL("cannot write gid_map: %s", strerror(errno));
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

static int enter_namespace(const char *shared_dir, int listen_fd, struct vfsd_sandbox *out,
			   char *err, size_t errlen)
{
	pid_t child;
	int status, r;

	if (geteuid() != 0) {
		r = enter_userns(err, errlen);
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
		return setup_mounts(shared_dir, out, err, errlen);
	}
	/* The parent only waits: it keeps no way into the share. */
	close(listen_fd);
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
		       struct vfsd_sandbox *out, char *err, size_t errlen)
{
	out->proc_self_fd = -1;
	out->root_dir = shared_dir;
	errno = 0;
	drop_supplementary_groups();
	switch (mode) {
	case VFSD_SANDBOX_NAMESPACE:
		return enter_namespace(shared_dir, listen_fd, out, err, errlen);
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
