/* Capabilities kept by a vfsd running as root, with libcap-ng. */
#include <cap-ng.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sec/caps.h"

/* What the passthrough filesystem needs (the reference's set). */
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

int vfsd_caps_drop(const struct vfsd_caps_mods *mods, char *err, size_t errlen)
{
	uint64_t keep = 0;
	int r;

	if (geteuid() != 0)
		return 0;
	for (size_t i = 0; i < sizeof(base_caps) / sizeof(base_caps[0]); i++)
		keep |= 1ull << base_caps[i];
	if (mods)
		keep = (keep | mods->add) & ~mods->remove;
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
