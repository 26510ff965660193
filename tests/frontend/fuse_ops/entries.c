/* The FUSE opcode suite (test_fuse_ops): Lookups, attributes, and making and removing names. */
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

/* ---- lookups and attributes ---- */

void test_lookup(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e, e2;

	t_write_file(t, "hello", "world", 5);
	t_mkdir(t, "dir");
	CHECK(t, symlink("/etc/passwd", t_path(t, "link")) == 0, "host symlink");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "hello", &e));
	CHECK(t, e.nodeid != 0 && e.nodeid != FC_ROOT, "node id %llu",
	      (unsigned long long)e.nodeid);
	check_attr(t, &e.attr, "hello");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "hello", &e2));
	CHECK(t, e2.nodeid == e.nodeid, "a second lookup gave node %llu, the first %llu",
	      (unsigned long long)e2.nodeid, (unsigned long long)e.nodeid);
	/* The host grows the file, then replaces it: a lookup sees each change at once. */
	t_write_file(t, "hello", "world, again", 12);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "hello", &e2));
	CHECK(t, e2.nodeid == e.nodeid && e2.attr.size == 12, "after a host write: node %llu size %llu",
	      (unsigned long long)e2.nodeid, (unsigned long long)e2.attr.size);
	t_write_file(t, "other", "x", 1);
	CHECK(t, rename(t_path(t, "other"), t_path(t, "hello")) == 0, "host rename");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "hello", &e2));
	CHECK(t, e2.nodeid != e.nodeid, "a replaced name kept node %llu", (unsigned long long)e.nodeid);
	check_attr(t, &e2.attr, "hello");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "dir", &e));
	check_attr(t, &e.attr, "dir");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "link", &e));
	CHECK(t, S_ISLNK(e.attr.mode), "a symlink looked up as mode 0%o (followed?)", e.attr.mode);
	check_attr(t, &e.attr, "link");
	CHECK_ERR(t, fc_lookup(c, FC_ROOT, "missing", &e), ENOENT);
	CHECK_ERR(t, fc_lookup(c, lookup_id(t, c, FC_ROOT, "hello"), "x", &e), ENOTDIR);
	/* The C virtiofsd says ENOENT for a parent it does not know. */
	CHECK_ERR(t, fc_lookup(c, STALE_ID, "hello", &e), t->c_virtiofsd ? ENOENT : EBADF);
}

void test_getattr(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_attr_out a;
	struct stat st;

	CHECK_OK(t, fc_getattr(c, FC_ROOT, &a));
	CHECK(t, stat(t->share, &st) == 0 && a.attr.ino == st.st_ino && S_ISDIR(a.attr.mode),
	      "root: ino %llu mode 0%o", (unsigned long long)a.attr.ino, a.attr.mode);
	t_write_file(t, "f", "12345678", 8);
	CHECK_OK(t, fc_getattr(c, lookup_id(t, c, FC_ROOT, "f"), &a));
	check_attr(t, &a.attr, "f");
	CHECK_ERR(t, fc_getattr(c, STALE_ID, &a), EBADF);
}

void test_forget(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_attr_out a;
	uint64_t id;

	t_write_file(t, "f", "x", 1);
	id = lookup_id(t, c, FC_ROOT, "f");
	lookup_id(t, c, FC_ROOT, "f");
	CHECK_OK(t, fc_forget(c, id, 1));
	CHECK_OK(t, fc_getattr(c, id, &a)); /* one reference left */
	CHECK_OK(t, fc_forget(c, id, 1));
	CHECK_ERR(t, fc_getattr(c, id, &a), EBADF);
	/* Forgetting what is not known is ignored. */
	CHECK_OK(t, fc_forget(c, STALE_ID, 1));
	t_still_serving(t, c);
}

void test_batch_forget(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_forget_one one[3];
	struct fuse_attr_out a;

	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "f%d", i);
		t_write_file(t, name, "x", 1);
		one[i] = (struct fuse_forget_one){ .nodeid = lookup_id(t, c, FC_ROOT, name),
						   .nlookup = 1 };
	}
	CHECK_OK(t, fc_batch_forget(c, one, 3));
	for (int i = 0; i < 3; i++)
		CHECK_ERR(t, fc_getattr(c, one[i].nodeid, &a), EBADF);
	t_still_serving(t, c);
}

void test_setattr(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_setattr_in in;
	struct fuse_attr_out a;
	struct stat st;
	uint64_t id, fh;

	t_write_file(t, "f", "0123456789", 10);
	open_file(t, c, "f", O_RDWR, &id, &fh);
	in = (struct fuse_setattr_in){ .valid = FATTR_MODE, .mode = S_IFREG | 0600 };
	CHECK_OK(t, fc_setattr(c, id, &in, &a));
	host_stat(t, "f", &st);
	CHECK(t, (st.st_mode & 07777) == 0600 && (a.attr.mode & 07777) == 0600,
	      "chmod: host 0%o, reply 0%o", st.st_mode, a.attr.mode);
	in = (struct fuse_setattr_in){ .valid = FATTR_SIZE, .size = 3 };
	CHECK_OK(t, fc_setattr(c, id, &in, &a));
	host_stat(t, "f", &st);
	CHECK(t, st.st_size == 3 && a.attr.size == 3, "truncate: host %lld", (long long)st.st_size);
	in = (struct fuse_setattr_in){ .valid = FATTR_SIZE | FATTR_FH, .size = 1, .fh = fh };
	CHECK_OK(t, fc_setattr(c, id, &in, &a));
	host_stat(t, "f", &st);
	CHECK(t, st.st_size == 1, "ftruncate: host %lld", (long long)st.st_size);
	in = (struct fuse_setattr_in){ .valid = FATTR_ATIME | FATTR_MTIME,
				       .atime = 1000000000,
				       .atimensec = 5,
				       .mtime = 1234567890,
				       .mtimensec = 7 };
	CHECK_OK(t, fc_setattr(c, id, &in, &a));
	host_stat(t, "f", &st);
	CHECK(t,
	      st.st_atim.tv_sec == 1000000000 && st.st_mtim.tv_sec == 1234567890 &&
		      st.st_mtim.tv_nsec == 7,
	      "utimens: host atime %lld mtime %lld.%ld", (long long)st.st_atim.tv_sec,
	      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	in = (struct fuse_setattr_in){ .valid = FATTR_UID | FATTR_GID, .uid = 1234, .gid = 4321 };
	CHECK_OK(t, fc_setattr(c, id, &in, &a));
	host_stat(t, "f", &st);
	CHECK(t, st.st_uid == 1234 && st.st_gid == 4321, "chown: host %u:%u", st.st_uid, st.st_gid);
	check_attr(t, &a.attr, "f");
	/* A handle that is not one, or not this file's. */
	in = (struct fuse_setattr_in){ .valid = FATTR_SIZE | FATTR_FH, .size = 0, .fh = 99999 };
	CHECK_ERR(t, fc_setattr(c, id, &in, &a), EBADF);
	in = (struct fuse_setattr_in){ .valid = FATTR_MODE, .mode = 0644 };
	CHECK_ERR(t, fc_setattr(c, STALE_ID, &in, &a), EBADF);
	CHECK_OK(t, fc_release(c, id, fh));
}

/* ---- making and removing names ---- */

void test_mkdir(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct stat st;

	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "d", 0777, &e));
	host_stat(t, "d", &st);
	CHECK(t, S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755, "host mode 0%o", st.st_mode);
	check_attr(t, &e.attr, "d");
	CHECK_OK(t, fc_mkdir(c, e.nodeid, "sub", 0700, &e));
	CHECK(t, t_exists(t, "d/sub"), "d/sub missing on the host");
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "d", 0755, &e), EEXIST);
	CHECK_ERR(t, fc_mkdir(c, STALE_ID, "x", 0755, &e), EBADF);
}

void test_mknod(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct stat st;

	CHECK_OK(t, fc_mknod(c, FC_ROOT, "fifo", S_IFIFO | 0666, 0, &e));
	host_stat(t, "fifo", &st);
	CHECK(t, S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0644, "host mode 0%o", st.st_mode);
	check_attr(t, &e.attr, "fifo");
	CHECK_OK(t, fc_mknod(c, FC_ROOT, "reg", S_IFREG | 0644, 0, &e));
	host_stat(t, "reg", &st);
	CHECK(t, S_ISREG(st.st_mode), "host mode 0%o", st.st_mode);
	CHECK_ERR(t, fc_mknod(c, FC_ROOT, "fifo", S_IFIFO | 0644, 0, &e), EEXIST);
	/* The FIFO is never opened on the guest's behalf (it would block the daemon). */
	CHECK_ERR(t,
		  fc_open(c, lookup_id(t, c, FC_ROOT, "fifo"), O_RDONLY,
			  &(struct fuse_open_out){ 0 }),
		  EBADF);
	t_still_serving(t, c);
}

void test_create(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	char buf[16];
	size_t n;

	CHECK_OK(t, fc_create(c, FC_ROOT, "new", O_CREAT | O_RDWR, 0666, &e, &o));
	check_attr(t, &e.attr, "new");
	CHECK(t, (e.attr.mode & 0777) == 0644, "mode 0%o", e.attr.mode);
	CHECK_OK(t, fc_write(c, e.nodeid, o.fh, 0, "abc", 3, &n));
	CHECK(t, t_read_file(t, "new", buf, sizeof(buf)) == 3 && memcmp(buf, "abc", 3) == 0,
	      "host content differs");
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK_ERR(t, fc_create(c, FC_ROOT, "new", O_CREAT | O_EXCL | O_RDWR, 0644, &e, &o), EEXIST);
	CHECK_ERR(t, fc_create(c, STALE_ID, "x", O_CREAT | O_RDWR, 0644, &e, &o), EBADF);
	if (t->c_virtiofsd)
		return; /* the C virtiofsd aborts on what follows (openat with O_CREAT, no mode) */
	/* Without O_EXCL an existing file is opened as it is (a guest racing another). */
	CHECK_OK(t, fc_create(c, FC_ROOT, "new", O_CREAT | O_RDWR, 0644, &e, &o));
	CHECK_OK(t, fc_read(c, e.nodeid, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 3 && memcmp(buf, "abc", 3) == 0, "reopened content: %zu bytes", n);
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
}

/* TMPFILE (beyond virtiofsd): an unnamed file, written, then given a name by LINK. */
void test_tmpfile(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e, le;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	char buf[16];
	size_t n;

	t_mkdir(t, "d");
	uint64_t d = lookup_id(t, c, FC_ROOT, "d");

	CHECK_OK(t, fc_tmpfile(c, d, O_RDWR, 0640, &e, &o));
	CHECK(t, S_ISREG(e.attr.mode) && (e.attr.mode & 0777) == 0640 && e.attr.nlink == 0,
	      "tmpfile attr: mode 0%o nlink %u", e.attr.mode, e.attr.nlink);
	CHECK_OK(t, fc_write(c, e.nodeid, o.fh, 0, "tmp", 3, &n));
	CHECK(t, !t_exists(t, "d/named"), "a name appeared before LINK");
	CHECK_OK(t, fc_link(c, e.nodeid, d, "named", &le));
	CHECK(t, le.nodeid == e.nodeid && le.attr.nlink == 1, "LINK gave node %llu nlink %u",
	      (unsigned long long)le.nodeid, le.attr.nlink);
	CHECK(t, t_read_file(t, "d/named", buf, sizeof(buf)) == 3 && memcmp(buf, "tmp", 3) == 0,
	      "host content of the linked tmpfile differs");
	CHECK_OK(t, fc_getattr(c, e.nodeid, &a));
	CHECK(t, a.attr.size == 3, "size %llu", (unsigned long long)a.attr.size);
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));

	/* O_EXCL: never linkable, as on the host. */
	CHECK_OK(t, fc_tmpfile(c, d, O_RDWR | O_EXCL, 0600, &e, &o));
	CHECK_ERR(t, fc_link(c, e.nodeid, d, "never", &le), ENOENT);
	/* opened again (a guest's /proc/self/fd): nameless by the guest's wish, not stale */
	{
		struct fuse_open_out o2;

		CHECK_OK(t, fc_open(c, e.nodeid, O_RDONLY, &o2));
		CHECK_OK(t, fc_release(c, e.nodeid, o2.fh));
	}
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK(t, !t_exists(t, "d/never"), "an O_EXCL tmpfile got a name");

	CHECK_ERR(t, fc_tmpfile(c, d, O_RDONLY, 0600, &e, &o), EINVAL);
	CHECK_ERR(t, fc_tmpfile(c, STALE_ID, O_RDWR, 0600, &e, &o), EBADF);
	CHECK_ERR(t, fc_tmpfile(c, lookup_id(t, c, d, "named"), O_RDWR, 0600, &e, &o), ENOTDIR);
	t_still_serving(t, c);
}

void test_create_as_guest_user(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct stat st;

	CHECK(t, chmod(t->share, 0777) == 0, "chmod share");
	c->uid = 1000;
	c->gid = 1001;
	CHECK_OK(t, fc_create(c, FC_ROOT, "mine", O_CREAT | O_RDWR, 0644, &e, &o));
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "mydir", 0755, &e));
	host_stat(t, "mine", &st);
	CHECK(t, st.st_uid == 1000 && st.st_gid == 1001, "created file owned by %u:%u", st.st_uid,
	      st.st_gid);
	host_stat(t, "mydir", &st);
	CHECK(t, st.st_uid == 1000 && st.st_gid == 1001, "created dir owned by %u:%u", st.st_uid,
	      st.st_gid);
}

/*
 * A guest kernel looks a name up before it removes or renames it; the C virtiofsd depends on
 * that (EIO for a name it has not seen), so these tests do the same. Names nobody looked up
 * are tried too: vfsd answers from the host, the C virtiofsd says EIO.
 */
void test_unlink_rmdir(struct t_ctx *t)
{
	struct fc *c = session(t);
	int unseen = t->c_virtiofsd ? EIO : ENOENT;
	uint64_t full;

	t_write_file(t, "f", "x", 1);
	t_mkdir(t, "d");
	t_mkdir(t, "full");
	t_write_file(t, "full/x", "x", 1);
	lookup_id(t, c, FC_ROOT, "f");
	lookup_id(t, c, FC_ROOT, "d");
	full = lookup_id(t, c, FC_ROOT, "full");
	lookup_id(t, c, full, "x");
	CHECK_OK(t, fc_unlink(c, FC_ROOT, "f"));
	CHECK(t, !t_exists(t, "f"), "f still on the host");
	CHECK_ERR(t, fc_unlink(c, FC_ROOT, "f"), unseen);
	CHECK_ERR(t, fc_unlink(c, FC_ROOT, "d"), EISDIR);
	CHECK_ERR(t, fc_rmdir(c, FC_ROOT, "full"), ENOTEMPTY);
	CHECK_ERR(t, fc_rmdir(c, full, "x"), ENOTDIR);
	CHECK_OK(t, fc_rmdir(c, FC_ROOT, "d"));
	CHECK(t, !t_exists(t, "d"), "d still on the host");
	CHECK_ERR(t, fc_rmdir(c, FC_ROOT, "d"), unseen);
	CHECK_ERR(t, fc_unlink(c, STALE_ID, "x"), t->c_virtiofsd ? EIO : EBADF);
}

void test_rename(struct t_ctx *t)
{
	struct fc *c = session(t);
	char buf[8];
	uint64_t d;

	t_write_file(t, "a", "A", 1);
	t_write_file(t, "b", "B", 1);
	t_mkdir(t, "dir");
	d = lookup_id(t, c, FC_ROOT, "dir");
	lookup_id(t, c, FC_ROOT, "a");
	CHECK_OK(t, fc_rename(c, FC_ROOT, "a", d, "moved"));
	CHECK(t, !t_exists(t, "a") && t_read_file(t, "dir/moved", buf, 8) == 1 && buf[0] == 'A',
	      "rename did not move a to dir/moved");
	CHECK_ERR(t, fc_rename(c, FC_ROOT, "a", FC_ROOT, "c"), t->c_virtiofsd ? EIO : ENOENT);
	lookup_id(t, c, d, "moved");
	CHECK_OK(t, fc_rename2(c, d, "moved", FC_ROOT, "a", 0));
	lookup_id(t, c, FC_ROOT, "a");
	lookup_id(t, c, FC_ROOT, "b");
	CHECK_ERR(t, fc_rename2(c, FC_ROOT, "a", FC_ROOT, "b", RENAME_NOREPLACE), EEXIST);
	CHECK_OK(t, fc_rename2(c, FC_ROOT, "a", FC_ROOT, "b", RENAME_EXCHANGE));
	CHECK(t, t_read_file(t, "a", buf, 8) == 1 && buf[0] == 'B', "exchange: a holds %c", buf[0]);
	CHECK(t, t_read_file(t, "b", buf, 8) == 1 && buf[0] == 'A', "exchange: b holds %c", buf[0]);
	if (!t->c_virtiofsd) {
		/* The C virtiofsd masks unknown flags away and needs known names. */
		CHECK_ERR(t, fc_rename2(c, FC_ROOT, "a", FC_ROOT, "z", 1u << 3), EINVAL);
		CHECK_ERR(t, fc_rename(c, STALE_ID, "a", FC_ROOT, "z"), EBADF);
		CHECK_ERR(t, fc_rename(c, FC_ROOT, "a", STALE_ID, "z"), EBADF);
	}
}

void test_link(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e;
	uint64_t id;

	t_write_file(t, "f", "x", 1);
	t_mkdir(t, "d");
	id = lookup_id(t, c, FC_ROOT, "f");
	CHECK_OK(t, fc_link(c, id, FC_ROOT, "g", &e));
	CHECK(t, e.nodeid == id && e.attr.nlink == 2, "link: node %llu nlink %u",
	      (unsigned long long)e.nodeid, e.attr.nlink);
	check_attr(t, &e.attr, "g");
	CHECK_ERR(t, fc_link(c, id, FC_ROOT, "g", &e), EEXIST);
	CHECK_ERR(t, fc_link(c, lookup_id(t, c, FC_ROOT, "d"), FC_ROOT, "dlink", &e), EPERM);
	CHECK_ERR(t, fc_link(c, STALE_ID, FC_ROOT, "h", &e), EBADF);
	CHECK_ERR(t, fc_link(c, id, STALE_ID, "h", &e), EBADF);
}

void test_symlink_readlink(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e;
	char buf[256], host[256];
	size_t n;

	CHECK_OK(t, fc_symlink(c, FC_ROOT, "s", "some/where/../else", &e));
	CHECK(t, S_ISLNK(e.attr.mode), "mode 0%o", e.attr.mode);
	check_attr(t, &e.attr, "s");
	CHECK(t,
	      readlink(t_path(t, "s"), host, sizeof(host)) == 18 &&
		      memcmp(host, "some/where/../else", 18) == 0,
	      "host symlink target differs");
	CHECK_OK(t, fc_readlink(c, e.nodeid, buf, sizeof(buf), &n));
	CHECK(t, n == 18 && memcmp(buf, "some/where/../else", 18) == 0, "READLINK gave %zu bytes",
	      n);
	CHECK_ERR(t, fc_symlink(c, FC_ROOT, "s", "x", &e), EEXIST);
	t_write_file(t, "f", "x", 1);
	/* readlinkat(fd, "") of something else: ENOENT (a guest kernel never asks). */
	CHECK_ERR(t, fc_readlink(c, lookup_id(t, c, FC_ROOT, "f"), buf, sizeof(buf), &n), ENOENT);
	CHECK_ERR(t, fc_readlink(c, STALE_ID, buf, sizeof(buf), &n), EBADF);
}
