/* Helpers the parts of the FUSE opcode suite share. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fuse_ops.h"

struct fc *session(struct t_ctx *t)
{
	return t_session(t, NULL, NULL);
}

void host_stat(struct t_ctx *t, const char *rel, struct stat *st)
{
	if (lstat(t_path(t, rel), st) < 0)
		t_fail(t, "host: lstat %s: %s", rel, strerror(errno));
}

/* The attributes the daemon sent match the host's own. */
void check_attr(struct t_ctx *t, const struct fuse_attr *a, const char *rel)
{
	struct stat st;

	host_stat(t, rel, &st);
	CHECK(t, a->ino == st.st_ino, "%s: ino %llu, host %llu", rel, (unsigned long long)a->ino,
	      (unsigned long long)st.st_ino);
	CHECK(t, a->mode == st.st_mode, "%s: mode 0%o, host 0%o", rel, a->mode, st.st_mode);
	CHECK(t, a->size == (uint64_t)st.st_size, "%s: size %llu, host %lld", rel,
	      (unsigned long long)a->size, (long long)st.st_size);
	CHECK(t, a->nlink == st.st_nlink, "%s: nlink %u, host %lu", rel, a->nlink,
	      (unsigned long)st.st_nlink);
	CHECK(t, a->uid == st.st_uid && a->gid == st.st_gid, "%s: owner %u:%u, host %u:%u", rel,
	      a->uid, a->gid, st.st_uid, st.st_gid);
}

uint64_t lookup_id(struct t_ctx *t, struct fc *c, uint64_t parent, const char *name)
{
	struct fuse_entry_out e;

	CHECK_OK(t, fc_lookup(c, parent, name, &e));
	return e.nodeid;
}

void open_file(struct t_ctx *t, struct fc *c, const char *name, uint32_t flags,
		      uint64_t *nodeid, uint64_t *fh)
{
	struct fuse_open_out o;

	*nodeid = lookup_id(t, c, FC_ROOT, name);
	CHECK_OK(t, fc_open(c, *nodeid, flags, &o));
	*fh = o.fh;
}

