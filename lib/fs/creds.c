/* Per-thread credentials for creating ops: raw syscalls, so only the calling thread changes. */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/internal.h"

int creds_switch(const struct vfsd_req_ctx *ctx, struct fs_creds *saved)
{
	saved->old_uid = geteuid();
	saved->old_gid = getegid();
	/* Requests from root keep the daemon's own ids, as the reference does. */
	saved->gid_changed = ctx->gid != 0 && ctx->gid != saved->old_gid;
	saved->uid_changed = ctx->uid != 0 && ctx->uid != saved->old_uid;
	if (saved->gid_changed && syscall(SYS_setresgid, -1, ctx->gid, -1) < 0)
		return -errno;
	if (saved->uid_changed && syscall(SYS_setresuid, -1, ctx->uid, -1) < 0) {
		int err = -errno;

		if (saved->gid_changed)
			syscall(SYS_setresgid, -1, saved->old_gid, -1);
		return err;
	}
	return 0;
}

void creds_restore(const struct fs_creds *saved)
{
	if (saved->uid_changed && syscall(SYS_setresuid, -1, saved->old_uid, -1) < 0)
		log_error("cannot restore effective uid %u: %s", saved->old_uid, strerror(errno));
	if (saved->gid_changed && syscall(SYS_setresgid, -1, saved->old_gid, -1) < 0)
		log_error("cannot restore effective gid %u: %s", saved->old_gid, strerror(errno));
}
