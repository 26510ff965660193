/*
 * lib/sec: each --seccomp action does what it says to a syscall outside the allow-list, the
 * allow-list still lets the daemon's own calls through, and --modcaps specs parse as the
 * reference's grammar says. Each filter is installed in a forked child.
 */
#include "test_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sec/caps.h"
#include "sec/seccomp.h"

enum outcome { ALLOWED = 10, TRAPPED = 11, FAILED = 12 };

static volatile sig_atomic_t trapped;

static void on_sigsys(int sig)
{
	(void)sig;
	trapped = 1;
}

/*
 * In a child: installs the filter, makes calls from the allow-list, then socket(2), which is
 * not on it. Returns the child's wait status.
 */
static int run_child(enum vfsd_seccomp_action action, bool syslog)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct vfsd_seccomp_opts opts = { .syslog = syslog };
		char err[256] = "";
		int fd;

		signal(SIGSYS, on_sigsys);
		if (vfsd_seccomp_install(action, &opts, err, sizeof(err)) < 0)
			_exit(FAILED);
		/* the daemon's own calls */
		fd = openat(AT_FDCWD, "/", O_PATH | O_CLOEXEC);
		if (fd < 0 || close(fd) < 0 || getpid() <= 0)
			_exit(FAILED);
		fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
		if (trapped)
			_exit(TRAPPED);
		_exit(fd >= 0 ? ALLOWED : FAILED);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_kill(void **state)
{
	int st;

	(void)state;
	st = run_child(VFSD_SECCOMP_KILL, false);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void test_trap(void **state)
{
	int st;

	(void)state;
	st = run_child(VFSD_SECCOMP_TRAP, false);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), TRAPPED);
}

static void test_log_and_none_allow(void **state)
{
	int st;

	(void)state;
	st = run_child(VFSD_SECCOMP_LOG, false);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), ALLOWED);
	st = run_child(VFSD_SECCOMP_NONE, false);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), ALLOWED);
}

static void test_syslog_adds_socket(void **state)
{
	int st;

	(void)state;
	st = run_child(VFSD_SECCOMP_KILL, true);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), ALLOWED);
}

static void test_seccomp_parse(void **state)
{
	enum vfsd_seccomp_action a;

	(void)state;
	assert_int_equal(vfsd_seccomp_parse("kill", &a), 0);
	assert_int_equal(a, VFSD_SECCOMP_KILL);
	assert_int_equal(vfsd_seccomp_parse("trap", &a), 0);
	assert_int_equal(a, VFSD_SECCOMP_TRAP);
	assert_int_equal(vfsd_seccomp_parse("none", &a), 0);
	assert_int_equal(a, VFSD_SECCOMP_NONE);
	assert_int_equal(vfsd_seccomp_parse("Kill", &a), -EINVAL); /* exact lowercase */
	assert_int_equal(vfsd_seccomp_parse("", &a), -EINVAL);
}

static void test_modcaps_grammar(void **state)
{
	struct vfsd_caps_mods m;
	char err[256];

	(void)state;
	assert_int_equal(vfsd_caps_parse("+sys_admin:-MKNOD", &m, err, sizeof(err)), 0);
	assert_true(m.add == 1ull << 21 && m.remove == 1ull << 27);
	/* the last word on a capability wins */
	assert_int_equal(vfsd_caps_parse("-chown:+chown", &m, err, sizeof(err)), 0);
	assert_true(m.add == 1ull << 0 && m.remove == 0);
	assert_int_equal(vfsd_caps_parse("+chown:", &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty modcap found"));
	assert_int_equal(vfsd_caps_parse("", &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(vfsd_caps_parse("sys_admin", &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid modcap action: expecting '+'|'-' but found 's'"));
	assert_int_equal(vfsd_caps_parse("+cap_chown", &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid capability 'cap_chown'"));
	assert_int_equal(vfsd_caps_parse("+", &m, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill),
		cmocka_unit_test(test_trap),
		cmocka_unit_test(test_log_and_none_allow),
		cmocka_unit_test(test_syslog_adds_socket),
		cmocka_unit_test(test_seccomp_parse),
		cmocka_unit_test(test_modcaps_grammar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
