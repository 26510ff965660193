/* The FUSE opcode suite (test_fuse_ops): Directories, and the fd limit and budget lookups and opens run into. */
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

/* ---- directories ---- */

void test_readdir(struct t_ctx *t)
{
	struct fc *c = session(t);
	static char buf[4096];
	struct fuse_dirent d;
	struct fuse_open_out o;
	size_t n, n2;
	uint64_t dir;
	int count;

	t_mkdir(t, "d");
	t_write_file(t, "d/a", "", 0);
	t_write_file(t, "d/bb", "", 0);
	t_mkdir(t, "d/ccc");
	dir = lookup_id(t, c, FC_ROOT, "d");
	CHECK_OK(t, fc_opendir(c, dir, &o));
	CHECK_OK(t, fc_readdir(c, dir, o.fh, 0, buf, sizeof(buf), &n));
	count = fc_dir_walk(buf, n, false, NULL, NULL);
	CHECK(t, count == 5, "%d well-formed records in %zu bytes, expected 5", count, n);
	CHECK(t, fc_dir_find(buf, n, false, ".", &d, NULL) && d.type == DT_DIR, "no '.'");
	CHECK(t, fc_dir_find(buf, n, false, "..", &d, NULL), "no '..'");
	CHECK(t, fc_dir_find(buf, n, false, "a", &d, NULL) && d.type == DT_REG, "no 'a'");
	CHECK(t, fc_dir_find(buf, n, false, "ccc", &d, NULL) && d.type == DT_DIR, "no 'ccc'");
	/* The offset of an entry resumes after it; the end gives an empty reply. */
	CHECK(t, fc_dir_find(buf, n, false, "bb", &d, NULL), "no 'bb'");
	CHECK_OK(t, fc_readdir(c, dir, o.fh, d.off, buf, sizeof(buf), &n2));
	CHECK(t,
	      fc_dir_walk(buf, n2, false, NULL, NULL) >= 0 &&
		      !fc_dir_find(buf, n2, false, "bb", NULL, NULL),
	      "resuming after 'bb' listed it again");
	CHECK_OK(t, fc_readdir(c, dir, o.fh, UINT64_MAX >> 1, buf, sizeof(buf), &n2));
	CHECK(t, n2 == 0, "%zu bytes past the end", n2);
	CHECK_ERR(t, fc_readdir(c, dir, 99999, 0, buf, sizeof(buf), &n), EBADF);
	CHECK_OK(t, fc_fsyncdir(c, dir, o.fh, false));
	CHECK_OK(t, fc_releasedir(c, dir, o.fh));
	CHECK_ERR(t, fc_readdir(c, dir, o.fh, 0, buf, sizeof(buf), &n), EBADF);
	CHECK_ERR(t, fc_opendir(c, STALE_ID, &o), EBADF);
}

void test_readdirplus(struct t_ctx *t)
{
	struct fc *c = session(t);
	static char buf[8192];
	struct fuse_entry_out e;
	struct fuse_dirent d;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	size_t n;

	t_write_file(t, "a", "12345", 5);
	t_mkdir(t, "sub");
	CHECK_OK(t, fc_opendir(c, FC_ROOT, &o));
	CHECK_OK(t, fc_readdirplus(c, FC_ROOT, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, fc_dir_walk(buf, n, true, NULL, NULL) == 4, "%zu bytes of malformed records", n);
	CHECK(t, fc_dir_find(buf, n, true, ".", &d, &e) && e.nodeid == 0, "'.' has node %llu",
	      (unsigned long long)e.nodeid);
	CHECK(t, fc_dir_find(buf, n, true, "a", &d, &e) && e.nodeid != 0, "'a' missing");
	check_attr(t, &e.attr, "a");
	CHECK(t, d.ino == e.attr.ino, "dirent ino %llu, attr ino %llu", (unsigned long long)d.ino,
	      (unsigned long long)e.attr.ino);
	/* The entry counts as a lookup: one FORGET drops it. */
	CHECK_OK(t, fc_getattr(c, e.nodeid, &a));
	CHECK_OK(t, fc_forget(c, e.nodeid, 1));
	CHECK_ERR(t, fc_getattr(c, e.nodeid, &a), EBADF);
	CHECK(t, fc_dir_find(buf, n, true, "sub", &d, &e) && S_ISDIR(e.attr.mode), "'sub' missing");
	CHECK_OK(t, fc_releasedir(c, FC_ROOT, o.fh));
}

void test_large_directory(struct t_ctx *t)
{
	struct fc *c = session(t);
	static char buf[4096];
	static bool seen[300];
	struct fuse_open_out o;
	uint64_t off = 0;
	int total = 0;

	t_mkdir(t, "big");
	for (int i = 0; i < 300; i++) {
		char name[128];

		snprintf(name, sizeof(name), "big/entry-with-a-fairly-long-name-to-fill-pages-%04d",
			 i);
		t_write_file(t, name, "", 0);
	}
	uint64_t dir = lookup_id(t, c, FC_ROOT, "big");

	CHECK_OK(t, fc_opendir(c, dir, &o));
	for (int round = 0; round < 100; round++) {
		const uint8_t *p = (const uint8_t *)buf;
		size_t n, left;

		CHECK_OK(t, fc_readdir(c, dir, o.fh, off, buf, sizeof(buf), &n));
		if (n == 0)
			break;
		CHECK(t, fc_dir_walk(buf, n, false, NULL, NULL) > 0, "malformed page");
		for (left = n; left > 0;) {
			const struct fuse_dirent *d = (const void *)p;
			size_t rec = FUSE_DIRENT_SIZE(d);
			int i;

			if (d->namelen > 40 && sscanf(d->name + d->namelen - 4, "%4d", &i) == 1) {
				CHECK(t, i >= 0 && i < 300 && !seen[i], "entry %d listed twice", i);
				seen[i] = true;
				total++;
			}
			off = d->off;
			p += rec;
			left -= rec;
		}
	}
	CHECK(t, total == 300, "%d of 300 entries listed", total);
	CHECK_OK(t, fc_releasedir(c, dir, o.fh));
}

/*
 * A guest keeps what it looked up until it forgets it: a big tree (a container's rootfs)
 * means thousands of open inodes. Started with the soft fd limit of a systemd service
 * (1024), the daemon must still look up 3000 files, as virtiofsd does by raising the limit.
 */
void test_many_lookups_low_fd_limit(struct t_ctx *t)
{
	struct fuse_entry_out e;
	struct fc *c;
	char name[32];

	t_mkdir(t, "tree");
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "tree/%d", i);
		t_write_file(t, name, "", 0);
	}
	t->nofile = 1024;
	c = session(t);
	uint64_t dir = lookup_id(t, c, FC_ROOT, "tree");

	for (int i = 0; i < 3000; i++) {
		int r;

		snprintf(name, sizeof(name), "%d", i);
		r = fc_lookup(c, dir, name, &e);
		CHECK(t, r == 0, "LOOKUP %d of 3000 (soft fd limit 1024): %s", i,
		      fc_strerror(c, r));
	}
	t_still_serving(t, c);
}
