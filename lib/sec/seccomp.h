/* The seccomp allow-list: what a running vfsd may ask of the kernel (--seccomp). */
#ifndef VFSD_SEC_SECCOMP_H
#define VFSD_SEC_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

enum vfsd_seccomp_action {
	VFSD_SECCOMP_KILL, /* the whole process dies (SIGSYS) */
	VFSD_SECCOMP_LOG,  /* the call is allowed and logged by the kernel (audit) */
	VFSD_SECCOMP_TRAP, /* the calling thread gets SIGSYS */
	VFSD_SECCOMP_NONE, /* no filter */
};

/* Parses "kill", "log", "trap" or "none" (exact lowercase, as virtiofsd). */
int vfsd_seccomp_parse(const char *s, enum vfsd_seccomp_action *out);

struct vfsd_seccomp_opts {
	bool syslog; /* logging goes to syslog: sendto and reconnecting are allowed */
};

/*
 * Installs the filter on every thread of the process. Returns 0, or a negative errno with a
 * message for the person in err.
 */
int vfsd_seccomp_install(enum vfsd_seccomp_action action, const struct vfsd_seccomp_opts *opts,
			 char *err, size_t errlen);

#endif
