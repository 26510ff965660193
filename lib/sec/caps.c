/* Capabilities kept by a vfsd running as root, with libcap-ng. */
#include <cap-ng.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sec/caps.h"

/* What the passthrough filesystem needs (virtiofsd's set). */
static const int base_caps[] = {
	CAP_CHOWN,	  /* SETATTR uid/gid, creating as the guest's user */
	CAP_DAC_OVERRIDE, /* re-opening any inode, creating through supplementary groups */
	CAP_FOWNER,	  /* SETATTR mode and times on files of other users, O_NOATIME */
	CAP_FSETID,	  /* keeping setgid bits the guest asked for */
	CAP_SETGID,	  /* credential switching for creating ops */
	CAP_SETUID,
	CAP_MKNOD,	  /* MKNOD of devices */
	CAP_SETFCAP,	  /* the guest setting security.capability */
};

int vfsd_caps_parse(const char *spec, struct vfsd_caps_mods *mods, char *err, size_t errlen)
{
	char *copy = strdup(spec);
	const char *p;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	*mods = (struct vfsd_caps_mods){ 0 };
	/* Walked by hand: strtok_r would skip the empty items that must be refused. */
	for (char *item = copy, *next; item && r == 0; item = next) {
		int cap;

		next = strchr(item, ':');
		if (next)
			*next++ = '\0';
		if (!*item) {
			snprintf(err, errlen, "empty modcap found: expected (+|-)capability:...");
			r = -EINVAL;
			break;
		}
		if (item[0] != '+' && item[0] != '-') {
			snprintf(err, errlen,
				 "invalid modcap action: expecting '+'|'-' but found '%c'", item[0]);
			r = -EINVAL;
			break;
		}
		p = item + 1;
		cap = *p ? capng_name_to_capability(p) : -1;
		if (cap < 0 || cap >= 64) {
			snprintf(err, errlen, "invalid capability '%s': not a capability name", p);
			r = -EINVAL;
			break;
		}
		if (item[0] == '+') {
			mods->add |= 1ull << cap;
			mods->remove &= ~(1ull << cap);
		} else {
			mods->remove |= 1ull << cap;
			mods->add &= ~(1ull << cap);
		}
	}
	free(copy);
	return r;
}

/* What a supervisor needs for itself and for the children it starts (docs/control.md). */
static const int supervisor_caps[] = {
	CAP_SYS_ADMIN,	     /* setns into a sandbox's user namespace; a child's namespace sandbox */
	CAP_SETUID,	     /* the caller's fsuid for the checks, uid 0 in the namespace */
	CAP_SETGID,
	CAP_DAC_OVERRIDE,    /* the runtime dir, cgroups, children's sockets */
	CAP_DAC_READ_SEARCH, /* a child with --inode-file-handles */
	CAP_SYS_PTRACE,	     /* /proc/PID/ns/user and /proc/PID/stat of other users' processes */
	CAP_KILL,	     /* stopping children that run as other users */
	CAP_SETPCAP,	     /* a child dropping its bounding set */
	CAP_SYS_CHROOT,	     /* a child's chroot sandbox */
	CAP_SYS_RESOURCE,    /* raising the children's open-file limit */
	CAP_CHOWN,	     /* and what a root daemon keeps (with --modcaps' common additions) */
	CAP_FOWNER,
	CAP_FSETID,
	CAP_MKNOD,
	CAP_SETFCAP,
	CAP_LINUX_IMMUTABLE,
	CAP_AUDIT_WRITE,
};

/* Keeps exactly keep in the permitted, effective and bounding sets. */
static int caps_keep(uint64_t keep, char *err, size_t errlen)
{
	int r;

	/* A capability outside the bounding set (a container's, or a supervisor's) cannot
	 * come back: name it rather than fail with libcap-ng's number. */
	if (capng_get_caps_process() == 0) {
		for (int cap = 0; cap < 64; cap++) {
			if ((keep & (1ull << cap)) &&
			    !capng_have_capability(CAPNG_BOUNDING_SET, (unsigned int)cap)) {
				snprintf(err, errlen,
					 "capabilities: cannot keep %s: it is not in this process's bounding set",
					 capng_capability_to_name((unsigned int)cap));
				return -EPERM;
			}
		}
	}
	capng_clear(CAPNG_SELECT_BOTH);
	for (int cap = 0; cap < 64; cap++) {
		if ((keep & (1ull << cap)) &&
		    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
				 (unsigned int)cap) < 0) {
			snprintf(err, errlen, "capabilities: cannot keep %s",
				 capng_capability_to_name((unsigned int)cap));
			return -EINVAL;
		}
	}
	r = capng_apply(CAPNG_SELECT_BOTH);
	if (r < 0) {
		snprintf(err, errlen, "capabilities: cannot apply the set (libcap-ng error %d)", r);
		return -EPERM;
	}
	return 0;
}

static uint64_t cap_set(const int *caps, size_t n)
{
	uint64_t set = 0;

	for (size_t i = 0; i < n; i++)
		set |= 1ull << caps[i];
	return set;
}

int vfsd_caps_drop(const struct vfsd_caps_mods *mods, char *err, size_t errlen)
{
	uint64_t keep = cap_set(base_caps, sizeof(base_caps) / sizeof(base_caps[0]));

	if (geteuid() != 0)
		return 0;
	if (mods)
		keep = (keep | mods->add) & ~mods->remove;
	return caps_keep(keep, err, errlen);
}

int vfsd_caps_limit_supervisor(char *err, size_t errlen)
{
	uint64_t keep = cap_set(supervisor_caps, sizeof(supervisor_caps) / sizeof(supervisor_caps[0]));

	if (geteuid() != 0)
		return 0;
	/* What a container runtime did not give us cannot be kept (e.g. CAP_SYS_RESOURCE). */
	if (capng_get_caps_process() < 0) {
		snprintf(err, errlen, "capabilities: cannot read the process's set");
		return -EPERM;
	}
	for (int cap = 0; cap < 64; cap++) {
		if ((keep & (1ull << cap)) && !capng_have_capability(CAPNG_PERMITTED, (unsigned int)cap))
			keep &= ~(1ull << cap);
	}
	return caps_keep(keep, err, errlen);
}
