/* The FUSE opcode suite (test_fuse_ops): Options: submounts, inode file handles, uid/gid translation, how files are opened. */
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

static void submount_flags(struct t_ctx *t, const char *arg, uint32_t *mnt, uint32_t *plain)
{
	struct fuse_entry_out e1, e2;
	struct fc *c = t_session(t, NULL, arg, NULL);
	int r1, r2;

	if (mount("vfsd-test", t_path(t, "mnt"), "tmpfs", 0, "size=1m") < 0)
		t_skip(t, "cannot mount a tmpfs: %s", strerror(errno));
	r1 = fc_lookup(c, FC_ROOT, "mnt", &e1);
	r2 = fc_lookup(c, FC_ROOT, "plain", &e2);
	umount2(t_path(t, "mnt"), MNT_DETACH);
	CHECK_OK(t, r1);
	CHECK_OK(t, r2);
	*mnt = e1.attr.flags;
	*plain = e2.attr.flags;
}

void test_submounts(struct t_ctx *t)
{
	uint32_t mnt, plain;

	t_mkdir(t, "mnt");
	t_mkdir(t, "plain");
	submount_flags(t, "--announce-submounts", &mnt, &plain);
	CHECK(t, (mnt & FUSE_ATTR_SUBMOUNT) && !(plain & FUSE_ATTR_SUBMOUNT),
	      "announced: mount point flags 0x%x, plain directory 0x%x", mnt, plain);
}

void test_no_submounts(struct t_ctx *t)
{
	uint32_t mnt, plain;

	t_mkdir(t, "mnt");
	t_mkdir(t, "plain");
	submount_flags(t, "--no-announce-submounts", &mnt, &plain);
	CHECK(t, !(mnt & FUSE_ATTR_SUBMOUNT) && !(plain & FUSE_ATTR_SUBMOUNT),
	      "not announced: mount point flags 0x%x, plain directory 0x%x", mnt, plain);
}

/* The daemon's open fds, counted in /proc. */
static int daemon_fds(struct t_ctx *t)
{
	char path[64];
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)t->pid);
	d = opendir(path);
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

/*
 * --inode-file-handles=mandatory: inodes the guest knows cost no fd (3000 lookups under a
 * soft limit of 1024 keep the daemon near its base fds), a handle follows its file across a
 * host rename, an unlinked file still open is still served, and one deleted and closed is
 * ESTALE (the guest then looks the name up again).
 */
void test_file_handles_mandatory(struct t_ctx *t)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	struct fc *c;
	char name[32], buf[8];
	uint64_t dir, moved, gone, open_id;
	size_t n;
	int fds;

	t_mkdir(t, "tree");
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "tree/%d", i);
		t_write_file(t, name, "", 0);
	}
	t_write_file(t, "moved", "m", 1);
	t_write_file(t, "gone", "g", 1);
	t_write_file(t, "open", "data", 4);
	t->nofile = 1024;
	c = t_session(t, NULL, "--inode-file-handles=mandatory", NULL);
	dir = lookup_id(t, c, FC_ROOT, "tree");
	for (int i = 0; i < 3000; i++) {
		int r;

		snprintf(name, sizeof(name), "%d", i);
		r = fc_lookup(c, dir, name, &e);
		CHECK(t, r == 0, "LOOKUP %d of 3000: %s", i, fc_strerror(c, r));
	}
	fds = daemon_fds(t);
	CHECK(t, fds >= 0 && fds < 100, "the daemon holds %d fds for 3000 known inodes", fds);
	snprintf(name, sizeof(name), "%d", 2999);
	CHECK_OK(t, fc_getattr(c, lookup_id(t, c, dir, name), &a));

	moved = lookup_id(t, c, FC_ROOT, "moved");
	CHECK(t, rename(t_path(t, "moved"), t_path(t, "tree/elsewhere")) == 0, "host rename");
	CHECK_OK(t, fc_getattr(c, moved, &a));
	CHECK(t, a.attr.size == 1, "the moved file: size %llu", (unsigned long long)a.attr.size);

	open_id = lookup_id(t, c, FC_ROOT, "open");
	CHECK_OK(t, fc_open(c, open_id, O_RDONLY, &o));
	CHECK(t, unlink(t_path(t, "open")) == 0, "host unlink");
	CHECK_OK(t, fc_getattr(c, open_id, &a));
	CHECK_OK(t, fc_read(c, open_id, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 4 && memcmp(buf, "data", 4) == 0, "READ of the unlinked file: %zu bytes", n);
	CHECK_OK(t, fc_release(c, open_id, o.fh));

	gone = lookup_id(t, c, FC_ROOT, "gone");
	CHECK(t, unlink(t_path(t, "gone")) == 0, "host unlink");
	CHECK_ERR(t, fc_getattr(c, gone, &a), ESTALE);
	t_write_file(t, "gone", "new", 3);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "gone", &e));
	CHECK(t, e.nodeid != gone && e.attr.size == 3, "the new 'gone': node %llu size %llu",
	      (unsigned long long)e.nodeid, (unsigned long long)e.attr.size);
	t_still_serving(t, c);
}

void test_file_handles_never(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--inode-file-handles=never", NULL);

	t_write_file(t, "f", "x", 1);
	lookup_id(t, c, FC_ROOT, "f");
	t_still_serving(t, c);
}

/* ---- soft uid/gid translation ---- */

void test_translate_ids(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--translate-uid=map:1000:2000:10",
				 "--translate-uid=forbid-guest:500:1", "--translate-gid=map:1000:2000:10",
				 NULL);
	struct fuse_setattr_in own = { .valid = FATTR_UID | FATTR_GID, .uid = 1001, .gid = 1002 };
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	struct stat st;
	uint64_t h;

	CHECK(t, chmod(t->share, 0777) == 0, "chmod share");
	/* guest ids become host ids for what the guest creates... */
	c->uid = 1005;
	c->gid = 1006;
	CHECK_OK(t, fc_create(c, FC_ROOT, "a", O_CREAT | O_RDWR, 0644, &e, &o));
	host_stat(t, "a", &st);
	CHECK(t, st.st_uid == 2005 && st.st_gid == 2006, "host owner %u:%u", st.st_uid, st.st_gid);
	CHECK(t, e.attr.uid == 1005 && e.attr.gid == 1006, "guest sees %u:%u", e.attr.uid,
	      e.attr.gid);
	/* ...host ids come back as guest ids... */
	c->uid = c->gid = 0;
	t_write_file(t, "h", "x", 1);
	CHECK(t, chown(t_path(t, "h"), 2003, 2004) == 0, "host chown");
	h = lookup_id(t, c, FC_ROOT, "h");
	CHECK_OK(t, fc_getattr(c, h, &a));
	CHECK(t, a.attr.uid == 1003 && a.attr.gid == 1004, "guest sees %u:%u", a.attr.uid,
	      a.attr.gid);
	CHECK(t, chown(t_path(t, "h"), 5, 6) == 0, "host chown");
	CHECK_OK(t, fc_getattr(c, h, &a));
	CHECK(t, a.attr.uid == 5 && a.attr.gid == 6, "unmapped ids: guest sees %u:%u", a.attr.uid,
	      a.attr.gid);
	/* ...chown targets are translated... */
	CHECK_OK(t, fc_setattr(c, h, &own, &a));
	host_stat(t, "h", &st);
	CHECK(t, st.st_uid == 2001 && st.st_gid == 2002, "after chown: host owner %u:%u",
	      st.st_uid, st.st_gid);
	CHECK(t, a.attr.uid == 1001 && a.attr.gid == 1002, "after chown: guest sees %u:%u",
	      a.attr.uid, a.attr.gid);
	/* ...ACCESS compares with the owner as the guest sees it... */
	CHECK(t, chmod(t_path(t, "h"), 0700) == 0, "host chmod");
	c->uid = 1001;
	CHECK_OK(t, fc_access(c, h, R_OK | W_OK));
	c->uid = 2001;
	CHECK_ERR(t, fc_access(c, h, R_OK), EACCES);
	/* ...and a forbidden guest id is refused */
	c->uid = 500;
	CHECK_ERR(t, fc_create(c, FC_ROOT, "b", O_CREAT | O_RDWR, 0644, &e, &o), EPERM);
	CHECK(t, !t_exists(t, "b"), "a file was created for a forbidden uid");
	c->uid = 0;
	own = (struct fuse_setattr_in){ .valid = FATTR_UID, .uid = 500 };
	CHECK_ERR(t, fc_setattr(c, h, &own, &a), EPERM);
}

/* ---- options that change how files are opened ---- */

void test_writeback(struct t_ctx *t)
{
	struct fc *c;
	char buf[8];
	size_t n;
	uint64_t id, fh;

	t_write_file(t, "f", "data", 4);
	c = t_session(t, NULL, "-o", "writeback", NULL);
	CHECK(t, c->init.flags & FUSE_WRITEBACK_CACHE, "INIT flags 0x%x lack WRITEBACK_CACHE",
	      c->init.flags);
	/* With the writeback cache the guest reads pages of files it opened write-only. */
	open_file(t, c, "f", O_WRONLY, &id, &fh);
	CHECK_OK(t, fc_read(c, id, fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 4 && memcmp(buf, "data", 4) == 0, "read %zu bytes", n);
}

void test_no_writeback(struct t_ctx *t)
{
	struct fc *c = session(t);
	char buf[8];
	size_t n;
	uint64_t id, fh;

	t_write_file(t, "f", "data", 4);
	CHECK(t, !(c->init.flags & FUSE_WRITEBACK_CACHE), "INIT flags 0x%x", c->init.flags);
	open_file(t, c, "f", O_WRONLY, &id, &fh);
	CHECK_ERR(t, fc_read(c, id, fh, 0, buf, sizeof(buf), &n), EBADF);
}

/* A misaligned read on an O_DIRECT host fd fails with EINVAL (ext4): that is how a test sees
 * whether the guest's O_DIRECT reached the host. */
static int misaligned_direct_read(struct t_ctx *t, struct fc *c)
{
	char buf[100];
	size_t n;
	uint64_t id, fh;

	t_write_file(t, "f", "0123456789abcdef", 16);
	open_file(t, c, "f", O_RDONLY | O_DIRECT, &id, &fh);
	return fc_read(c, id, fh, 1, buf, sizeof(buf), &n);
}

void test_allow_direct_io(struct t_ctx *t)
{
	struct statfs sf;

	if (statfs(t->share, &sf) == 0 && sf.f_type != EXT4_SUPER_MAGIC)
		t_skip(t, "the share is not on ext4 (f_type 0x%lx)", (unsigned long)sf.f_type);
	CHECK_ERR(t, misaligned_direct_read(t, t_session(t, NULL, "--allow-direct-io", NULL)),
		  EINVAL);
}

void test_direct_io_stripped(struct t_ctx *t)
{
	CHECK_OK(t, misaligned_direct_read(t, session(t)));
}

/* atime older than mtime: a relatime mount updates it on the next read, unless O_NOATIME. */
static bool read_updates_atime(struct t_ctx *t, struct fc *c)
{
	struct timespec ts[2] = { { .tv_sec = 1000 }, { .tv_sec = 2000 } };
	struct stat st;
	char buf[8];
	size_t n;
	uint64_t id, fh;

	t_write_file(t, "f", "data", 4);
	CHECK(t, utimensat(AT_FDCWD, t_path(t, "f"), ts, 0) == 0, "host utimensat");
	open_file(t, c, "f", O_RDONLY | O_NOATIME, &id, &fh);
	CHECK_OK(t, fc_read(c, id, fh, 0, buf, sizeof(buf), &n));
	host_stat(t, "f", &st);
	return st.st_atime != 1000;
}

void test_preserve_noatime(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--preserve-noatime", NULL);

	CHECK(t, !read_updates_atime(t, c), "a read through an O_NOATIME open changed atime");
}

void test_noatime_stripped(struct t_ctx *t)
{
	CHECK(t, read_updates_atime(t, session(t)),
	      "atime not updated: O_NOATIME reached the host, or the share is mounted noatime");
}

#define DIRECT_IO_ALLOW_MMAP_BIT (1ULL << 36) /* newer than Debian 12's UAPI headers */

void test_allow_mmap(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--allow-mmap", NULL);
	struct fuse_init_out o;

	/* A second INIT starts the session over, this time offering the flag. */
	CHECK_OK(t, fc_init_with(c, 7, 38, FUSE_INIT_EXT | DIRECT_IO_ALLOW_MMAP_BIT, &o));
	CHECK(t, o.flags2 & (DIRECT_IO_ALLOW_MMAP_BIT >> 32), "flags2 0x%x", o.flags2);
}
