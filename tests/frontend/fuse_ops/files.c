/* The FUSE opcode suite (test_fuse_ops): Files: open, read, write, statfs, access, fallocate, lseek, copy_file_range, syncfs, --readonly. */
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

/* ---- files ---- */

void test_open_read(struct t_ctx *t)
{
	struct fc *c = session(t);
	char buf[64];
	uint64_t id, fh;
	size_t n;

	t_write_file(t, "f", "hello, world", 12);
	open_file(t, c, "f", O_RDONLY, &id, &fh);
	CHECK_OK(t, fc_read(c, id, fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 12 && memcmp(buf, "hello, world", 12) == 0, "READ gave %zu bytes", n);
	CHECK_OK(t, fc_read(c, id, fh, 7, buf, 3, &n));
	CHECK(t, n == 3 && memcmp(buf, "wor", 3) == 0, "READ at 7 gave %zu bytes", n);
	CHECK_OK(t, fc_read(c, id, fh, 100, buf, sizeof(buf), &n));
	CHECK(t, n == 0, "READ past the end gave %zu bytes", n);
	CHECK_ERR(t, fc_read(c, id, 99999, 0, buf, sizeof(buf), &n), EBADF);
	CHECK_ERR(t, fc_write(c, id, fh, 0, "x", 1, &n), EBADF); /* read-only handle */
	CHECK_ERR(t, fc_open(c, STALE_ID, O_RDONLY, &(struct fuse_open_out){ 0 }), EBADF);
	CHECK_OK(t, fc_release(c, id, fh));
	CHECK_ERR(t, fc_read(c, id, fh, 0, buf, sizeof(buf), &n), EBADF);
	if (!t->c_virtiofsd) {
		/* The C virtiofsd answers 0 to a second RELEASE. */
		CHECK_ERR(t, fc_release(c, id, fh), EBADF);
	}
}

/*
 * A file or directory deleted on the host while the guest still trusts its dentry: OPEN and
 * OPENDIR answer ESTALE, so that a Linux guest looks the name up again and finds it gone.
 * What the guest removed itself (an unlink while open, a rename over it, a TMPFILE) still
 * opens, as through /proc/self/fd in a guest; so does a file with another link left.
 */
void test_open_deleted_on_host(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_open_out o;
	uint64_t f, d, g, k, m, fh;
	char buf[8];
	size_t n;

	t_write_file(t, "f", "F", 1);
	if (mkdir(t_path(t, "d"), 0755) < 0)
		t_fail(t, "mkdir: %s", strerror(errno));
	f = lookup_id(t, c, FC_ROOT, "f");
	d = lookup_id(t, c, FC_ROOT, "d");
	if (unlink(t_path(t, "f")) < 0 || rmdir(t_path(t, "d")) < 0)
		t_fail(t, "host unlink/rmdir: %s", strerror(errno));
	CHECK_ERR(t, fc_open(c, f, O_RDONLY, &o), ESTALE);
	CHECK_ERR(t, fc_open(c, f, O_RDWR, &o), ESTALE);
	CHECK_ERR(t, fc_opendir(c, d, &o), ESTALE);

	/* unlinked by the guest while open: opened again, data intact */
	t_write_file(t, "g", "G", 1);
	open_file(t, c, "g", O_RDWR, &g, &fh);
	CHECK_OK(t, fc_unlink(c, FC_ROOT, "g"));
	CHECK_OK(t, fc_open(c, g, O_RDONLY, &o));
	CHECK_OK(t, fc_read(c, g, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 1 && buf[0] == 'G', "READ of the reopened unlinked file gave %zu bytes", n);
	CHECK_OK(t, fc_release(c, g, o.fh));
	CHECK_OK(t, fc_release(c, g, fh));

	/* replaced by a guest rename while open (a guest reopens only what it holds open; with
	 * --inode-file-handles an object nothing holds is gone from the host) */
	t_write_file(t, "h", "H", 1);
	t_write_file(t, "k", "K", 1);
	open_file(t, c, "k", O_RDONLY, &k, &fh);
	CHECK_OK(t, fc_rename(c, FC_ROOT, "h", FC_ROOT, "k"));
	CHECK_OK(t, fc_open(c, k, O_RDONLY, &o));
	CHECK_OK(t, fc_release(c, k, o.fh));
	CHECK_OK(t, fc_release(c, k, fh));

	/* one of two links deleted on the host: the file is still there */
	t_write_file(t, "m", "M", 1);
	if (link(t_path(t, "m"), t_path(t, "m2")) < 0)
		t_fail(t, "host link: %s", strerror(errno));
	m = lookup_id(t, c, FC_ROOT, "m");
	if (unlink(t_path(t, "m")) < 0)
		t_fail(t, "host unlink: %s", strerror(errno));
	CHECK_OK(t, fc_open(c, m, O_RDONLY, &o));
	CHECK_OK(t, fc_release(c, m, o.fh));
	t_still_serving(t, c);
}

void test_handle_of_other_file(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t a, b, fh;
	char buf[8];
	size_t n;

	t_write_file(t, "a", "A", 1);
	t_write_file(t, "b", "B", 1);
	open_file(t, c, "a", O_RDWR, &a, &fh);
	b = lookup_id(t, c, FC_ROOT, "b");
	CHECK_ERR(t, fc_read(c, b, fh, 0, buf, sizeof(buf), &n), EBADF);
	CHECK_ERR(t, fc_write(c, b, fh, 0, "x", 1, &n), EBADF);
	CHECK_ERR(t, fc_release(c, b, fh), EBADF);
	CHECK_OK(t, fc_release(c, a, fh));
}

void test_write(struct t_ctx *t)
{
	struct fc *c = session(t);
	char buf[64];
	uint64_t id, fh;
	size_t n;

	t_write_file(t, "f", "0123456789", 10);
	open_file(t, c, "f", O_RDWR, &id, &fh);
	CHECK_OK(t, fc_write(c, id, fh, 4, "abc", 3, &n));
	CHECK(t, n == 3, "WRITE wrote %zu", n);
	CHECK(t, t_read_file(t, "f", buf, sizeof(buf)) == 10 && memcmp(buf, "0123abc789", 10) == 0,
	      "host content differs");
	CHECK_OK(t, fc_write(c, id, fh, 20, "z", 1, &n));
	CHECK(t, t_read_file(t, "f", buf, sizeof(buf)) == 21, "write past the end");
	CHECK_ERR(t, fc_write(c, id, 99999, 0, "x", 1, &n), EBADF);
	CHECK_OK(t, fc_flush(c, id, fh));
	CHECK_OK(t, fc_fsync(c, id, fh, false));
	CHECK_OK(t, fc_fsync(c, id, fh, true));
	CHECK_ERR(t, fc_flush(c, id, 99999), EBADF);
	CHECK_ERR(t, fc_fsync(c, id, 99999, false), EBADF);
	CHECK_OK(t, fc_release(c, id, fh));
}

void test_write_append(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_write_in in;
	struct fuse_write_out out;
	struct fc_arg a[2];
	uint64_t id, fh;
	char buf[32];

	t_write_file(t, "f", "start", 5);
	open_file(t, c, "f", O_WRONLY | O_APPEND, &id, &fh);
	/* An uncached O_APPEND write lands at the host's end of file, whatever the offset. */
	in = (struct fuse_write_in){
		.fh = fh, .offset = 0, .size = 3, .flags = O_WRONLY | O_APPEND
	};
	a[0] = (struct fc_arg){ &in, sizeof(in) };
	a[1] = (struct fc_arg){ "end", 3 };
	CHECK_OK(t, fc_call(c, FUSE_WRITE, id, a, 2, &out, sizeof(out), NULL));
	CHECK(t, t_read_file(t, "f", buf, sizeof(buf)) == 8 && memcmp(buf, "startend", 8) == 0,
	      "host content is not 'startend'");
	CHECK_OK(t, fc_release(c, id, fh));
}

void test_statfs(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_statfs_out s;
	struct statvfs sv;

	CHECK_OK(t, fc_statfs(c, FC_ROOT, &s));
	CHECK(t, statvfs(t->share, &sv) == 0, "host statvfs");
	CHECK(t,
	      s.st.bsize == sv.f_bsize && s.st.namelen == sv.f_namemax &&
		      s.st.blocks == sv.f_blocks && s.st.frsize == sv.f_frsize,
	      "bsize %u namelen %u blocks %llu, host %lu %lu %llu", s.st.bsize, s.st.namelen,
	      (unsigned long long)s.st.blocks, sv.f_bsize, sv.f_namemax,
	      (unsigned long long)sv.f_blocks);
	CHECK_ERR(t, fc_statfs(c, STALE_ID, &s), EBADF);
}

void test_access(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t id;

	t_write_file(t, "f", "x", 1);
	CHECK(t, chmod(t_path(t, "f"), 0600) == 0, "chmod");
	id = lookup_id(t, c, FC_ROOT, "f");
	if (t->c_virtiofsd) {
		CHECK_ERR(t, fc_access(c, id, F_OK), ENOSYS); /* not in the C virtiofsd */
		return;
	}
	CHECK_OK(t, fc_access(c, id, F_OK));
	CHECK_OK(t, fc_access(c, id, R_OK | W_OK));
	CHECK_ERR(t, fc_access(c, id, X_OK), EACCES); /* root needs an x bit too */
	c->uid = 1000;
	c->gid = 1000;
	CHECK_ERR(t, fc_access(c, id, R_OK), EACCES);
	CHECK_OK(t, fc_access(c, FC_ROOT, R_OK | X_OK));
	CHECK_ERR(t, fc_access(c, STALE_ID, F_OK), EBADF);
}


void test_fallocate(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct stat st;
	uint64_t id, fh;

	t_write_file(t, "f", "", 0);
	open_file(t, c, "f", O_RDWR, &id, &fh);
	CHECK_OK(t, fc_fallocate(c, id, fh, 0, 0, 1 << 20));
	host_stat(t, "f", &st);
	CHECK(t, st.st_size == 1 << 20 && st.st_blocks >= 2048, "host size %lld blocks %lld",
	      (long long)st.st_size, (long long)st.st_blocks);
	CHECK_OK(t,
		 fc_fallocate(c, id, fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1 << 19));
	host_stat(t, "f", &st);
	CHECK(t, st.st_size == 1 << 20 && st.st_blocks < 2048, "after a punch: blocks %lld",
	      (long long)st.st_blocks);
	CHECK_ERR(t, fc_fallocate(c, id, 99999, 0, 0, 4096), EBADF);
	CHECK_OK(t, fc_release(c, id, fh));
}

void test_lseek(struct t_ctx *t)
{
	static const uint32_t whence[] = { SEEK_SET, SEEK_END, SEEK_DATA, SEEK_HOLE };
	static const uint64_t offs[] = { 0, 100, 4096, 1 << 20 };
	struct fc *c = session(t);
	uint64_t id, fh, got;
	int hfd;

	/* Data, a 1 MiB hole, data: each answer must be the host's own. */
	hfd = open(t_path(t, "sparse"), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	CHECK(t, hfd >= 0 && pwrite(hfd, "data", 4, 0) == 4 && pwrite(hfd, "more", 4, 2 << 20) == 4,
	      "host: sparse file");
	open_file(t, c, "sparse", O_RDONLY, &id, &fh);
	for (size_t w = 0; w < sizeof(whence) / sizeof(whence[0]); w++) {
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			off_t want = lseek(hfd, (off_t)offs[o], (int)whence[w]);

			CHECK_OK(t, fc_lseek(c, id, fh, offs[o], whence[w], &got));
			CHECK(t, (off_t)got == want, "LSEEK(%llu, %u) = %llu, the host says %lld",
			      (unsigned long long)offs[o], whence[w], (unsigned long long)got,
			      (long long)want);
		}
	}
	CHECK_ERR(t, fc_lseek(c, id, fh, 3 << 20, SEEK_DATA, &got), ENXIO);
	CHECK_ERR(t, fc_lseek(c, id, 99999, 0, SEEK_SET, &got), EBADF);
	close(hfd);
	CHECK_OK(t, fc_release(c, id, fh));
}

void test_copy_file_range(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t a, fa, b, fb;
	char buf[32];
	size_t n;

	t_write_file(t, "src", "0123456789abcdef", 16);
	t_write_file(t, "dst", "................", 16);
	open_file(t, c, "src", O_RDONLY, &a, &fa);
	open_file(t, c, "dst", O_RDWR, &b, &fb);
	CHECK_OK(t, fc_copy_file_range(c, a, fa, 4, b, fb, 2, 6, &n));
	CHECK(t, n == 6, "copied %zu bytes", n);
	CHECK(t,
	      t_read_file(t, "dst", buf, sizeof(buf)) == 16 &&
		      memcmp(buf, "..456789........", 16) == 0,
	      "host dst differs");
	CHECK_ERR(t, fc_copy_file_range(c, a, 99999, 0, b, fb, 0, 4, &n), EBADF);
	CHECK_ERR(t, fc_copy_file_range(c, a, fa, 0, b, 99999, 0, 4, &n), EBADF);
	CHECK_OK(t, fc_release(c, a, fa));
	CHECK_OK(t, fc_release(c, b, fb));
}

void test_syncfs(struct t_ctx *t)
{
	struct fc *c = session(t);

	t_write_file(t, "f", "x", 1);
	CHECK_OK(t, fc_syncfs(c, FC_ROOT));
	CHECK_OK(t, fc_syncfs(c, lookup_id(t, c, FC_ROOT, "f")));
}

void test_readonly(struct t_ctx *t)
{
	struct fc *c;
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_setattr_in in = { .valid = FATTR_MODE, .mode = 0600 };
	struct fuse_attr_out a;
	char buf[8];
	uint64_t f, d;
	size_t n;

	t_write_file(t, "f", "data", 4);
	t_mkdir(t, "d");
	c = t_session(t, NULL, "--readonly", NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	d = lookup_id(t, c, FC_ROOT, "d");
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EROFS);
	CHECK_ERR(t, fc_mknod(c, FC_ROOT, "x", S_IFREG | 0644, 0, &e), EROFS);
	CHECK_ERR(t, fc_symlink(c, FC_ROOT, "x", "f", &e), EROFS);
	CHECK_ERR(t, fc_create(c, FC_ROOT, "x", O_CREAT | O_RDWR, 0644, &e, &o), EROFS);
	if (!t->c_virtiofsd)
		CHECK_ERR(t, fc_tmpfile(c, FC_ROOT, O_RDWR, 0644, &e, &o), EROFS);
	CHECK_ERR(t, fc_unlink(c, FC_ROOT, "f"), EROFS);
	CHECK_ERR(t, fc_rmdir(c, FC_ROOT, "d"), EROFS);
	CHECK_ERR(t, fc_rename(c, FC_ROOT, "f", FC_ROOT, "g"), EROFS);
	CHECK_ERR(t, fc_link(c, f, d, "g", &e), EROFS);
	CHECK_ERR(t, fc_setattr(c, f, &in, &a), EROFS);
	CHECK_ERR(t, fc_open(c, f, O_RDWR, &o), EROFS);
	CHECK_ERR(t, fc_open(c, f, O_WRONLY, &o), EROFS);
	CHECK_ERR(t, fc_access(c, f, W_OK), EROFS);
	CHECK_OK(t, fc_access(c, f, R_OK));
	/* Reading still works, through OPEN and through CREATE of an existing name. */
	CHECK_OK(t, fc_open(c, f, O_RDONLY, &o));
	CHECK_OK(t, fc_read(c, f, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 4 && memcmp(buf, "data", 4) == 0, "READ gave %zu bytes", n);
	CHECK_ERR(t, fc_write(c, f, o.fh, 0, "x", 1, &n), EROFS);
	CHECK_OK(t, fc_release(c, f, o.fh));
	CHECK_OK(t, fc_create(c, FC_ROOT, "f", O_CREAT | O_RDONLY, 0644, &e, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK(t,
	      t_read_file(t, "f", buf, sizeof(buf)) == 4 && t_exists(t, "d") && !t_exists(t, "x"),
	      "the host directory changed");
}
