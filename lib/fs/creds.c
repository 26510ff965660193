/* Per-thread credentials for creating ops: raw syscalls, so only the calling thread changes. */
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/internal.h"

/*
 * The guest kernel already allowed the request, possibly through supplementary groups the
 * daemon does not know; with a foreign uid the host would refuse it. As the reference does,
 * keep CAP_DAC_OVERRIDE effective for the call (the permitted set still has it).
 */
static void raise_dac_override(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return;
	if (!(data[0].permitted & (1u << CAP_DAC_OVERRIDE)))
		return; /* an unprivileged daemon has nothing to raise */
	data[0].effective |= 1u << CAP_DAC_OVERRIDE;
	if (syscall(SYS_capset, &hdr, data) < 0)
		log_debug("cannot raise CAP_DAC_OVERRIDE: %s", strerror(errno));
}

bool creds_drop_fsetid(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0 || !(data[0].effective & (1u << CAP_FSETID)))
		return false;
	data[0].effective &= ~(1u << CAP_FSETID);
	if (syscall(SYS_capset, &hdr, data) < 0) {
		log_debug("cannot drop CAP_FSETID: %s", strerror(errno));
		return false;
	}
	return true;
}

void creds_restore_fsetid(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return;
	data[0].effective |= 1u << CAP_FSETID;
	if (syscall(SYS_capset, &hdr, data) < 0)
		log_error("cannot restore CAP_FSETID: %s", strerror(errno));
}

int creds_switch(const struct vfsd_passthrough *fs, const struct vfsd_req_ctx *ctx,
		 struct fs_creds *saved)
{
	uint32_t uid, gid;

	if (vfsd_idmap_to_host(fs->cfg.uid_map, ctx->uid, &uid) < 0 ||
	    vfsd_idmap_to_host(fs->cfg.gid_map, ctx->gid, &gid) < 0)
		return -EPERM; /* a forbid-guest rule (the reference says EIO) */
	saved->old_uid = geteuid();
	saved->old_gid = getegid();
	/* Requests from root keep the daemon's own ids, as the reference does. */
	saved->gid_changed = gid != 0 && gid != saved->old_gid;
	saved->uid_changed = uid != 0 && uid != saved->old_uid;
	if (saved->gid_changed && syscall(SYS_setresgid, -1, gid, -1) < 0)
		return -errno;
	if (saved->uid_changed && syscall(SYS_setresuid, -1, uid, -1) < 0) {
		int err = -errno;

		if (saved->gid_changed)
			syscall(SYS_setresgid, -1, saved->old_gid, -1);
		return err;
	}
	if (saved->uid_changed)
		raise_dac_override();
	return 0;
}

/* Going back to the saved euid also restores the effective capabilities of that id. */
void creds_restore(const struct fs_creds *saved)
{
	if (saved->uid_changed && syscall(SYS_setresuid, -1, saved->old_uid, -1) < 0)
		log_error("cannot restore effective uid %u: %s", saved->old_uid, strerror(errno));
	if (saved->gid_changed && syscall(SYS_setresgid, -1, saved->old_gid, -1) < 0)
		log_error("cannot restore effective gid %u: %s", saved->old_gid, strerror(errno));
}
