/*
 * The test runner behind the frontend suites. Each test runs in its own process with its own
 * temporary directory (socket, shared directory, daemon log) and its own daemon, which is
 * killed when the test ends however it ends. One line per test: "PASS name",
 * "FAIL name reason" or "SKIP name reason".
 */
#ifndef VFSD_TESTS_HARNESS_H
#define VFSD_TESTS_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "frontend.h"
#include "fuse_client.h"

struct t_ctx {
	const char *name;
	const char *daemon;
	bool c_virtiofsd; /* the daemon is QEMU's C virtiofsd */
	char dir[PATH_MAX - 32];
	char share[PATH_MAX];
	char sock[PATH_MAX];
	char log[PATH_MAX];
	pid_t pid;	  /* the daemon, 0 before t_daemon */
	long nofile;	  /* if > 0: the daemon starts with this soft RLIMIT_NOFILE */
	int result_fd;	  /* to the runner */
	bool daemon_gone; /* the test saw the daemon exit on purpose */
	int exit_status;  /* its wait status then */
	struct fe_dev *dev;
	struct fc fc;
};

struct t_case {
	const char *name;
	void (*fn)(struct t_ctx *t);
	const char *c_virtiofsd_skip; /* non-NULL: skipped against the C virtiofsd, for this reason */
};

/* Runs the cases named on the command line (all by default); returns the exit status. */
int t_main(int argc, char **argv, const struct t_case *cases, const char *suite);

/* Starts the daemon with the common command line plus extra args (NULL-terminated). */
void t_daemon(struct t_ctx *t, ...) __attribute__((sentinel));
void t_daemon_argv(struct t_ctx *t, const char *const *extra);
/* Connects a frontend (opts may be NULL) without negotiating anything. */
struct fe_dev *t_connect(struct t_ctx *t, const struct fe_opts *opts);
/* Daemon (extra args NULL-terminated) and frontend started with opts, no FUSE INIT yet (for
 * tests of INIT itself). */
struct fc *t_started(struct t_ctx *t, const struct fe_opts *opts, ...) __attribute__((sentinel));
/* The same, with the FUSE INIT of a Linux 6.1 guest done. */
struct fc *t_session(struct t_ctx *t, const struct fe_opts *opts, ...) __attribute__((sentinel));
/* The daemon is still running. */
bool t_alive(struct t_ctx *t);
/* How the daemon ended ("running" while it runs), for messages. */
const char *t_status(struct t_ctx *t);
/* The daemon's virtual memory size in KiB (VmSize), or -1. */
long t_vmsize_kb(struct t_ctx *t);
/* A "FIELD: N kB" line of pid's /proc status (VmRSS, VmSize...), in KiB, or -1. */
long t_proc_status_kb(pid_t pid, const char *field);
/* Waits up to timeout_ms for the daemon to exit; returns its wait status or -1. */
int t_wait_exit(struct t_ctx *t, int timeout_ms);
/* The process that serves pid's connection: pid itself, or in the namespace sandbox its
 * child (pid 1 of the new pid namespace). */
pid_t t_serving_pid(pid_t pid);
/* What a process holds now: its threads, its fds, and how many of those are eventfds; -1
 * when /proc cannot tell. */
int t_proc_threads(pid_t pid);
int t_proc_fds(pid_t pid);
int t_proc_eventfds(pid_t pid);
/* Its threads whose name (comm) starts with prefix: vfsd's queue threads are "vfsd-queueN". */
int t_proc_threads_named(pid_t pid, const char *prefix);
/* Reads /proc/PID/task/TID/NAME into buf (NUL-terminated); its length or -1. */
ssize_t t_task_file(pid_t pid, const char *tid, const char *name, char *buf, size_t size);
/* How many threads are ring q's (named exactly vfsd-queueQ); *tid gets one's id. */
int t_ring_threads(pid_t pid, unsigned int q, char *tid, size_t size);

/* ---- more daemons in one test (migration: a source and its destinations) ---- */

#define T_MAX_DAEMONS 6

/* Starts one more daemon of the test on sock with the common command line of t_daemon_argv
 * (the same shared directory and FE_* variables) plus extra (NULL-terminated); its output goes
 * to SOCK.log. Returns its pid; it is killed when the test ends, and a failure prints the end
 * of every daemon's log. */
pid_t t_daemon_at(struct t_ctx *t, const char *sock, const char *daemon,
		  const char *const *extra);
/* The same for the Rust virtiofsd at path rust, with its own command line:
 * --socket-path=SOCK --shared-dir=SHARE --sandbox=none --cache=auto, then extra. */
pid_t t_rust_at(struct t_ctx *t, const char *sock, const char *rust, const char *const *extra);
/* Connects to that daemon's socket (failing the test if it ends first); returns the fd. */
int t_connect_at(struct t_ctx *t, pid_t pid);
bool t_pid_alive(struct t_ctx *t, pid_t pid);
/* How it ended ("running" while it runs), and its log's path. */
const char *t_pid_status(struct t_ctx *t, pid_t pid);
const char *t_pid_log(struct t_ctx *t, pid_t pid);
/* Whether its log (t->pid's too: the test's own daemon) holds needle (case-insensitive) after the first skip bytes. */
bool t_pid_log_has(struct t_ctx *t, pid_t pid, long skip, const char *needle);
/* The size of its log now (for t_pid_log_has: what came after). */
long t_pid_log_size(struct t_ctx *t, pid_t pid);
/* Closes the frontend (failing the test if the device returned chains not in flight). */
void t_hang_up(struct t_ctx *t);
/* The frontend hung up on it: it must exit with status 0 within 10 s, and its log must hold
 * no sanitizer report. */
void t_pid_finish(struct t_ctx *t, pid_t pid);

/* Ends the test now. */
void t_fail(struct t_ctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void t_fail_at(struct t_ctx *t, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
void t_skip(struct t_ctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Paths and files in the shared directory (host side). Returned paths rotate over 8 buffers. */
const char *t_path(struct t_ctx *t, const char *rel);
void t_write_file(struct t_ctx *t, const char *rel, const void *data, size_t len);
void t_mkdir(struct t_ctx *t, const char *rel);
/* A one-byte file rel, looked up through c (*e), with a read lease this process holds on
 * it: an OPEN for writing waits in the host kernel until the lease ends (F_SETLEASE F_UNLCK
 * on the fd returned, then close). Skips the test where leases are not to be had. */
int t_leased_file(struct t_ctx *t, struct fc *c, const char *rel, struct fuse_entry_out *e);
/* Reads a host file; returns its length or -1. */
ssize_t t_read_file(struct t_ctx *t, const char *rel, void *buf, size_t size);
bool t_exists(struct t_ctx *t, const char *rel);

/* GETATTR of the root answers (the daemon still serves guests). */
void t_still_serving(struct t_ctx *t, struct fc *c);

#define CHECK(t, cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond))                                                                       \
			t_fail_at((t), __LINE__, __VA_ARGS__);                                     \
	} while (0)

/* An fc_* call that must succeed. */
#define CHECK_OK(t, expr)                                                                          \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		if (r_ != 0)                                                                       \
			t_fail_at((t), __LINE__, "%s: %s", #expr, fc_strerror(&(t)->fc, r_));      \
	} while (0)

/* An fc_* call that must fail with -err. */
#define CHECK_ERR(t, expr, err)                                                                    \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		if (r_ != -(err))                                                                  \
			t_fail_at((t), __LINE__, "%s: %s, expected %s", #expr,                     \
				  fc_strerror(&(t)->fc, r_), strerrorname_np(err));                \
	} while (0)

/* A frontend call that must succeed (fe_error explains). */
#define CHECK_FE(t, expr)                                                                          \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		if (r_ < 0)                                                                        \
			t_fail_at((t), __LINE__, "%s: %s", #expr, fe_error((t)->dev));             \
	} while (0)

#endif
