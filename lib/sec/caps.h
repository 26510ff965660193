/* Capabilities: what a vfsd running as root keeps (--modcaps changes the set). */
#ifndef VFSD_SEC_CAPS_H
#define VFSD_SEC_CAPS_H

#include <stddef.h>
#include <stdint.h>

/* Capabilities as a bit set (bit n = capability number n). */
struct vfsd_caps_mods {
	uint64_t add, remove;
};

/*
 * Parses a --modcaps spec, "+cap:-cap:..." with capability names without "cap_" in any case
 * (e.g. "+sys_admin:-mknod"). Later items win over earlier ones. Returns 0, or -EINVAL with
 * a message for the person in err.
 */
int vfsd_caps_parse(const char *spec, struct vfsd_caps_mods *mods, char *err, size_t errlen);

/*
 * When the effective uid is 0: keeps only the base set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
 * SETGID, SETUID, MKNOD, SETFCAP) changed by mods, in the permitted, effective and bounding
 * sets of the calling thread. Call it before any other thread exists. Not root: does
 * nothing. Returns 0 or a negative errno with a message in err.
 */
int vfsd_caps_drop(const struct vfsd_caps_mods *mods, char *err, size_t errlen);

/*
 * When root: keeps what the supervisor and the children it starts need (setns, the caller's
 * ids, chroot, ptrace-read of /proc, kill, and a root daemon's set), in the permitted,
 * effective and bounding sets, so a spawn's --modcaps can add no other. Returns 0 or a
 * negative errno with a message in err.
 */
int vfsd_caps_limit_supervisor(char *err, size_t errlen);

#endif
