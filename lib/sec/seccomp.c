/*
 * The seccomp allow-list. Everything vfsd does after entering its sandbox is here, and
 * nothing else: a guest that took over a request thread still cannot mount, ptrace, open
 * sockets, load modules or execute programs. Names are resolved for the running
 * architecture; a name the architecture does not have (open, poll, getdents on arm64) is
 * skipped.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>

#include "sec/seccomp.h"

static const char *const allowed[] = {
	"accept4",	     /* the VMM's connection */
	"brk",		     /* malloc */
	"capget",	     /* per-thread capability changes (credential switching) */
	"capset",
	"clock_gettime",     /* timestamps and ring polling, when the vDSO cannot */
	"clock_nanosleep",
	"clone",	     /* threads: queue threads and the worker pool */
	"clone3",
	"close",
	"copy_file_range",   /* COPY_FILE_RANGE */
	"dup",
	"eventfd2",	     /* queue stop events */
	"exit",
	"exit_group",
	"fallocate",	     /* FALLOCATE */
	"fchdir",	     /* xattrs of symlinks and special files, via /proc/self/fd */
	"fchmod",	     /* SETATTR */
	"fchmodat",
	"fchown",
	"fchownat",
	"fcntl",
	"fdatasync",	     /* FSYNC */
	"fgetxattr",	     /* the xattr ops */
	"flistxattr",
	"flock",
	"fremovexattr",
	"fsetxattr",
	"fstat",
	"fstatfs",	     /* STATFS */
	"fsync",
	"ftruncate",	     /* SETATTR size */
	"futex",	     /* locks and condition variables */
	"getdents",	     /* READDIR */
	"getdents64",
	"getegid",
	"geteuid",
	"getgid",
	"getpid",
	"getrandom",
	"gettid",
	"gettimeofday",
	"getuid",
	"getxattr",
	"linkat",	     /* LINK */
	"listxattr",
	"lseek",	     /* LSEEK, directory offsets */
	"madvise",	     /* malloc, thread stacks */
	"membarrier",
	"mkdirat",	     /* MKDIR */
	"mknodat",	     /* MKNOD */
	"mmap",		     /* guest memory regions, malloc */
	"mprotect",
	"mremap",
	"munmap",
	"name_to_handle_at", /* --inode-file-handles */
	"nanosleep",
	"newfstatat",
	"open",
	"open_by_handle_at", /* --inode-file-handles */
	"openat",	     /* re-opening inodes through /proc/self/fd */
	"openat2",	     /* name resolution that cannot leave the shared directory */
	"poll",		     /* the socket and the kick eventfds */
	"ppoll",
	"prctl",
	"pread64",
	"preadv",
	"preadv2",	     /* READ, straight into guest memory */
	"pwrite64",
	"pwritev",
	"pwritev2",	     /* WRITE, straight from guest memory */
	"read",		     /* eventfds */
	"readlinkat",	     /* READLINK */
	"readv",
	"recvfrom",	     /* recv(): vhost-user message payloads */
	"recvmsg",	     /* vhost-user messages and their fds */
	"removexattr",
	"renameat",
	"renameat2",	     /* RENAME, RENAME2 */
	"restart_syscall",
	"rseq",		     /* glibc's restartable sequences */
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"sched_getaffinity",
	"sched_yield",
	"sendmsg",	     /* vhost-user replies */
	"set_robust_list",   /* new threads */
	"setgroups",	     /* credential switching */
	"setresgid",
	"setresuid",
	"setxattr",
	"sigaltstack",
	"statx",	     /* GETATTR, LOOKUP */
	"symlinkat",	     /* SYMLINK */
	"syncfs",	     /* SYNCFS */
	"sysinfo",	     /* glibc's qsort sizes its buffer by the memory (migration) */
	"tgkill",	     /* pthread_kill: SIGUSR2 ends a lock waiter */
	"tkill",
	"umask",
	"unlink",
	"unlinkat",	     /* UNLINK, RMDIR */
	"unshare",	     /* each request thread gets its own cwd (CLONE_FS) */
	"utimensat",	     /* SETATTR times */
	"write",	     /* eventfds, the log */
	"writev",
};

/* syslog(3) reconnects to /dev/log when it lost the socket. */
static const char *const allowed_with_syslog[] = { "connect", "sendto", "socket" };

int vfsd_seccomp_parse(const char *s, enum vfsd_seccomp_action *out)
{
	static const char *const names[] = { "kill", "log", "trap", "none" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum vfsd_seccomp_action)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int allow_all(scmp_filter_ctx ctx, const char *const *names, size_t n, char *err,
		     size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		int r;

		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not a syscall of this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0) {
			snprintf(err, errlen, "seccomp: cannot allow %s: %s", names[i], strerror(-r));
			return r;
		}
	}
	return 0;
}

int vfsd_seccomp_install(enum vfsd_seccomp_action action, const struct vfsd_seccomp_opts *opts,
			 char *err, size_t errlen)
{
	uint32_t def;
	scmp_filter_ctx ctx;
	int r;

	switch (action) {
	case VFSD_SECCOMP_NONE: return 0;
	case VFSD_SECCOMP_KILL: def = SCMP_ACT_KILL_PROCESS; break;
	case VFSD_SECCOMP_LOG: def = SCMP_ACT_LOG; break;
	case VFSD_SECCOMP_TRAP: def = SCMP_ACT_TRAP; break;
	default: return -EINVAL;
	}
	ctx = seccomp_init(def);
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot create a filter");
		return -ENOMEM;
	}
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r == 0)
		r = allow_all(ctx, allowed, sizeof(allowed) / sizeof(allowed[0]), err, errlen);
	if (r == 0 && opts && opts->syslog)
		r = allow_all(ctx, allowed_with_syslog,
			      sizeof(allowed_with_syslog) / sizeof(allowed_with_syslog[0]), err,
			      errlen);
	if (r == 0) {
		r = seccomp_load(ctx);
		if (r < 0)
			snprintf(err, errlen, "seccomp: cannot load the filter: %s", strerror(-r));
	} else if (!err[0]) {
		snprintf(err, errlen, "seccomp: cannot set up the filter: %s", strerror(-r));
	}
	seccomp_release(ctx);
	return r;
}
