/* Per-thread credentials for creating ops: raw syscalls, so only the calling thread changes. */
#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fs/internal.h"

/*
 * The guest kernel already allowed the request, possibly through supplementary groups the
 * daemon does not know; with a foreign uid the host would refuse it. As virtiofsd does,
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

/* The daemon itself runs with no supplementary groups (the sandbox dropped them). */
static void restore_groups(const struct fs_creds *saved)
{
	if (saved->groups_changed && syscall(SYS_setgroups, 0, NULL) < 0)
		log_error("cannot drop the supplementary groups: %s", strerror(errno));
}

/* setgroups(2) for this thread only (the raw call; glibc's would change every thread). */
static int set_groups(const struct vfsd_passthrough *fs, const struct vfsd_req_ctx *ctx)
{
	gid_t inline_list[32], *list = inline_list;
	int r = 0;

	if (ctx->ngroups > ARRAY_SIZE(inline_list)) {
		list = calloc(ctx->ngroups, sizeof(*list));
		if (!list)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < ctx->ngroups && r == 0; i++) {
		uint32_t host;

		r = vfsd_idmap_to_host(fs->cfg.gid_map, ctx->groups[i], &host);
		list[i] = host;
	}
	if (r == 0 && syscall(SYS_setgroups, (size_t)ctx->ngroups, list) < 0) {
		r = errno == EPERM ? -EACCES : -errno; /* EPERM is kept for forbidden ids */
		log_debug("cannot set the creator's groups: %s", strerror(errno));
	}
	if (list != inline_list)
		free(list);
	return r;
}

int creds_switch(const struct vfsd_passthrough *fs, const struct vfsd_req_ctx *ctx,
		 uint32_t guest_umask, struct fs_creds *saved)
{
	uint32_t uid, gid;
	bool need_override;

	if (vfsd_idmap_to_host(fs->cfg.uid_map, ctx->uid, &uid) < 0 ||
	    vfsd_idmap_to_host(fs->cfg.gid_map, ctx->gid, &gid) < 0)
		return -EPERM; /* a forbid-guest rule (virtiofsd says EIO) */
	saved->old_uid = geteuid();
	saved->old_gid = getegid();
	saved->groups_changed = false;
	saved->umask_set = false;
	/* Requests from root keep the daemon's own ids, as virtiofsd does. */
	saved->gid_changed = gid != 0 && gid != saved->old_gid;
	saved->uid_changed = uid != 0 && uid != saved->old_uid;
	/*
	 * With CREATE_SUPP_GROUP the kernel sends the one group that can matter to a creation
	 * (the parent's, when the creator is in it but it is not the creator's own): set it while
	 * this thread is still privileged, and the host decides as for a host process. Without
	 * the extension the daemon cannot know the groups: CAP_DAC_OVERRIDE stands in for them
	 * (raised below). Where setgroups is refused (a user namespace with setgroups denied),
	 * the same stand-in is used.
	 */
	need_override = !fs_session(fs, FS_SESSION_SUPP_GROUPS);
	if (ctx->ngroups && saved->uid_changed) {
		int r = set_groups(fs, ctx);

		if (r == 0)
			saved->groups_changed = true;
		else if (r == -EACCES)
			need_override = true;
		else
			return r; /* -EPERM: a forbid-guest rule; -ENOMEM */
	}
	if (saved->gid_changed && syscall(SYS_setresgid, -1, gid, -1) < 0) {
		int err = -errno;

		restore_groups(saved);
		return err;
	}
	if (saved->uid_changed && syscall(SYS_setresuid, -1, uid, -1) < 0) {
		int err = -errno;

		if (saved->gid_changed)
			syscall(SYS_setresgid, -1, saved->old_gid, -1);
		restore_groups(saved);
		return err;
	}
	if (saved->uid_changed && need_override)
		raise_dac_override();
	if (fs_session(fs, FS_SESSION_ACL)) {
		umask(guest_umask & 0777);
		saved->umask_set = true;
	}
	return 0;
}

/* Going back to the saved euid also restores the effective capabilities of that id. */
void creds_restore(const struct fs_creds *saved)
{
	if (saved->uid_changed && syscall(SYS_setresuid, -1, saved->old_uid, -1) < 0)
		log_error("cannot restore effective uid %u: %s", saved->old_uid, strerror(errno));
	if (saved->gid_changed && syscall(SYS_setresgid, -1, saved->old_gid, -1) < 0)
		log_error("cannot restore effective gid %u: %s", saved->old_gid, strerror(errno));
	restore_groups(saved);
	if (saved->umask_set)
		umask(0);
}
