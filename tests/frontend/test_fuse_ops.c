/* Every FUSE opcode the daemon implements, on success and on the errors a guest can cause. */
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

#include "harness.h"

#define STALE_ID 0x00007fff000000abull

static struct fc *session(struct t_ctx *t)
{
	return t_session(t, NULL, NULL);
}

static void host_stat(struct t_ctx *t, const char *rel, struct stat *st)
{
	if (lstat(t_path(t, rel), st) < 0)
		t_fail(t, "host: lstat %s: %s", rel, strerror(errno));
}

/* The attributes the daemon sent match the host's own. */
static void check_attr(struct t_ctx *t, const struct fuse_attr *a, const char *rel)
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

static uint64_t lookup_id(struct t_ctx *t, struct fc *c, uint64_t parent, const char *name)
{
	struct fuse_entry_out e;

	CHECK_OK(t, fc_lookup(c, parent, name, &e));
	return e.nodeid;
}

static void open_file(struct t_ctx *t, struct fc *c, const char *name, uint32_t flags,
		      uint64_t *nodeid, uint64_t *fh)
{
	struct fuse_open_out o;

	*nodeid = lookup_id(t, c, FC_ROOT, name);
	CHECK_OK(t, fc_open(c, *nodeid, flags, &o));
	*fh = o.fh;
}

/* ---- INIT ---- */

static void test_init(struct t_ctx *t)
{
	/* What a Linux 6.1 guest offers (fuse_client.c) and what vfsd must keep of it. */
	const uint64_t vfsd_flags = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
				    FUSE_HAS_IOCTL_DIR | FUSE_AUTO_INVAL_DATA | FUSE_ASYNC_DIO |
				    FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_INIT_EXT |
				    FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_SUBMOUNTS |
				    FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS;
	struct fc *c = session(t);
	const struct fuse_init_out *o = &c->init;
	uint64_t flags = o->flags | ((uint64_t)o->flags2 << 32);
	struct fuse_init_out again;

	CHECK(t, o->major == 7, "major %u", o->major);
	CHECK(t, t->c_virtiofsd ? o->minor >= 31 : o->minor == 38, "minor %u", o->minor);
	CHECK(t, !(flags & FUSE_SECURITY_CTX) && !(flags & FUSE_WRITEBACK_CACHE),
	      "flags 0x%llx enable what this session did not ask for", (unsigned long long)flags);
	CHECK(t, o->max_write >= 4096, "max_write %u", o->max_write);
	if (!t->c_virtiofsd) {
		CHECK(t, flags == vfsd_flags, "flags 0x%llx, expected 0x%llx",
		      (unsigned long long)flags, (unsigned long long)vfsd_flags);
		CHECK(t, o->max_write == 1u << 20 && o->max_pages == 256,
		      "max_write %u max_pages %u", o->max_write, o->max_pages);
		CHECK(t, o->max_readahead == 128 * 1024, "max_readahead %u not echoed",
		      o->max_readahead);
		CHECK(t,
		      o->max_background == 65535 && o->congestion_threshold == 49149 &&
			      o->time_gran == 1,
		      "max_background %u congestion %u time_gran %u", o->max_background,
		      o->congestion_threshold, o->time_gran);
	}
	/* Major 8: the answer names 7 so the kernel can retry. */
	CHECK_OK(t, fc_init_with(c, 8, 0, 0, &again));
	CHECK(t, again.major == 7, "INIT 8.0 answered major %u", again.major);
	/* Too old, or major 6: EPROTO. */
	CHECK_ERR(t, fc_init_with(c, 7, 26, 0, &again), EPROTO);
	CHECK_ERR(t, fc_init_with(c, 6, 38, 0, &again), EPROTO);
	/* Without INIT_EXT (16 bytes of init_in) still fine. */
	CHECK_OK(t, fc_init_with(c, 7, 38, FUSE_ASYNC_READ | FUSE_BIG_WRITES, &again));
	CHECK(t, again.major == 7 && !(again.flags & FUSE_INIT_EXT),
	      "INIT without INIT_EXT: flags 0x%x", again.flags);
	t_still_serving(t, c);
}

/* ---- lookups and attributes ---- */

static void test_lookup(struct t_ctx *t)
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

static void test_getattr(struct t_ctx *t)
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

static void test_forget(struct t_ctx *t)
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

static void test_batch_forget(struct t_ctx *t)
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

static void test_setattr(struct t_ctx *t)
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

static void test_mkdir(struct t_ctx *t)
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

static void test_mknod(struct t_ctx *t)
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

static void test_create(struct t_ctx *t)
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
static void test_tmpfile(struct t_ctx *t)
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
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK(t, !t_exists(t, "d/never"), "an O_EXCL tmpfile got a name");

	CHECK_ERR(t, fc_tmpfile(c, d, O_RDONLY, 0600, &e, &o), EINVAL);
	CHECK_ERR(t, fc_tmpfile(c, STALE_ID, O_RDWR, 0600, &e, &o), EBADF);
	CHECK_ERR(t, fc_tmpfile(c, lookup_id(t, c, d, "named"), O_RDWR, 0600, &e, &o), ENOTDIR);
	t_still_serving(t, c);
}

static void test_create_as_guest_user(struct t_ctx *t)
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
static void test_unlink_rmdir(struct t_ctx *t)
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

static void test_rename(struct t_ctx *t)
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

static void test_link(struct t_ctx *t)
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

static void test_symlink_readlink(struct t_ctx *t)
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

/* ---- files ---- */

static void test_open_read(struct t_ctx *t)
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

static void test_handle_of_other_file(struct t_ctx *t)
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

static void test_write(struct t_ctx *t)
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

static void test_write_append(struct t_ctx *t)
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

static void test_statfs(struct t_ctx *t)
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

static void test_access(struct t_ctx *t)
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

/* ---- directories ---- */

static void test_readdir(struct t_ctx *t)
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

static void test_readdirplus(struct t_ctx *t)
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

static void test_large_directory(struct t_ctx *t)
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
static void test_many_lookups_low_fd_limit(struct t_ctx *t)
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

/*
 * The guest fd budget: with --rlimit-nofile=800 the daemon keeps 610 fds for itself and the
 * guest's inodes and open files may hold 190. The next one gets ENFILE (never a crash, and
 * the daemon's own fds are untouched), a FORGET or RELEASE gives fds back.
 */
static void test_guest_fd_budget(struct t_ctx *t)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc *c;
	char name[32];
	uint64_t dir, ids[300];
	int ok = 0, r = 0;

	t_mkdir(t, "many");
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "many/%d", i);
		t_write_file(t, name, "", 0);
	}
	/* the numbers below hold without a pool and with inodes held by fds (these win over
	 * FE_DAEMON_ARGS, which come first) */
	c = t_session(t, NULL, "--rlimit-nofile=800", "--thread-pool-size=0",
		      "--inode-file-handles=never", NULL);
	dir = lookup_id(t, c, FC_ROOT, "many");
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "%d", i);
		r = fc_lookup(c, dir, name, &e);
		if (r != 0)
			break;
		ids[ok++] = e.nodeid;
	}
	CHECK(t, r == -ENFILE, "LOOKUP %d: %s, expected ENFILE once the budget is spent", ok,
	      fc_strerror(c, r));
	CHECK(t, ok == 188, "%d lookups before ENFILE, expected 188 (190 less the root and the directory)",
	      ok);
	CHECK_ERR(t, fc_open(c, ids[0], O_RDONLY, &o), ENFILE);
	t_still_serving(t, c);
	/* forgetting 2 inodes gives 2 fds back: one for an open file, one for a lookup */
	CHECK_OK(t, fc_forget(c, ids[1], 1));
	CHECK_OK(t, fc_forget(c, ids[2], 1));
	CHECK_OK(t, fc_open(c, ids[0], O_RDONLY, &o));
	snprintf(name, sizeof(name), "%d", ok);
	CHECK_OK(t, fc_lookup(c, dir, name, &e));
	snprintf(name, sizeof(name), "%d", ok + 1);
	CHECK_ERR(t, fc_lookup(c, dir, name, &e), ENFILE);
	CHECK_OK(t, fc_release(c, ids[0], o.fh));
	CHECK_OK(t, fc_lookup(c, dir, name, &e));
	t_still_serving(t, c);
}

/* ---- session ---- */

static void test_destroy(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_attr_out a;
	uint64_t id;

	t_write_file(t, "f", "x", 1);
	id = lookup_id(t, c, FC_ROOT, "f");
	CHECK_OK(t, fc_destroy(c));
	if (!t->c_virtiofsd)
		CHECK_ERR(t, fc_getattr(c, FC_ROOT, &a), EIO); /* no session until INIT */
	CHECK_OK(t, fc_init(c));
	t_still_serving(t, c);
	if (!t->c_virtiofsd)
		CHECK_ERR(t, fc_getattr(c, id, &a), EBADF); /* the old session's ids are gone */
}

static void test_interrupt(struct t_ctx *t)
{
	struct fc *c = session(t);

	CHECK_OK(t, fc_interrupt(c, 123456));
	t_still_serving(t, c);
}

/* Opcodes a guest may send that the daemon does not implement (ops.c's do_enosys entries,
 * and opcodes nobody defined): ENOSYS, nothing else. Each gets well-formed arguments. */
static void test_enosys(struct t_ctx *t)
{
	struct {
		uint32_t size, flags; /* the 8-byte fuse_setxattr_in: SETXATTR_EXT is not agreed */
		char name[7], value[1];
	} __attribute__((packed)) setx = { .size = 1, .name = "user.x", .value = "v" };
	struct {
		struct fuse_getxattr_in in;
		char name[7];
	} getx = { .in = { .size = 64 }, .name = "user.x" };
	struct fuse_bmap_in bmap = { .blocksize = 4096 };
	struct fuse_ioctl_in ioctl = { 0 };
	struct fuse_poll_in poll = { 0 };
	struct fuse_setupmapping_in map = { 0 };
	struct fuse_removemapping_in unmap = { 0 };
	static const uint8_t zero[16];
	const struct {
		uint32_t opcode;
		const void *arg;
		size_t len;
		bool both; /* the C virtiofsd lacks it too */
	} ops[] = {
		{ FUSE_SETXATTR, &setx, sizeof(setx), true },
		{ FUSE_GETXATTR, &getx, sizeof(getx), true },
		{ FUSE_LISTXATTR, &getx.in, sizeof(getx.in), true },
		{ FUSE_REMOVEXATTR, "user.x", 7, true },
		{ FUSE_BMAP, &bmap, sizeof(bmap), true },
		{ FUSE_IOCTL, &ioctl, sizeof(ioctl), true },
		{ FUSE_POLL, &poll, sizeof(poll), true },
		{ FUSE_NOTIFY_REPLY, zero, sizeof(zero), false },
		{ FUSE_SETUPMAPPING, &map, sizeof(map), false },
		{ FUSE_REMOVEMAPPING, &unmap, sizeof(unmap), false },
		{ 7, zero, sizeof(zero), true },
		{ 19, zero, sizeof(zero), true },
		{ 99, zero, sizeof(zero), true },
		{ 4096, zero, sizeof(zero),
		  false }, /* CUSE_INIT: the C virtiofsd ends the session */
	};
	struct fc *c = session(t);
	char out[256];

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct fc_arg a = { ops[i].arg, ops[i].len };
		int r;

		if (t->c_virtiofsd && !ops[i].both)
			continue;
		r = fc_call(c, ops[i].opcode, FC_ROOT, &a, 1, out, sizeof(out), NULL);
		CHECK(t, r == -ENOSYS, "opcode %u: %s, expected ENOSYS", ops[i].opcode,
		      fc_strerror(c, r));
	}
	t_still_serving(t, c);
}

/* A value read back from the host, "" when absent. */
static void host_getxattr(struct t_ctx *t, const char *rel, const char *name, char *buf,
			  size_t size)
{
	ssize_t n = lgetxattr(t_path(t, rel), name, buf, size - 1);

	buf[n < 0 ? 0 : n] = '\0';
}

static bool list_has(const char *list, size_t len, const char *name)
{
	for (size_t i = 0; i < len; i += strnlen(list + i, len - i) + 1) {
		if (strcmp(list + i, name) == 0)
			return true;
	}
	return false;
}

/* An ACL in the kernel's xattr format: user::rw-, user:1001:r--, group::---, mask::r--,
 * other::--- (perms of the given ones). */
static size_t make_acl(uint8_t *buf, uint16_t user_obj, uint16_t named, uint16_t group_obj,
		       uint16_t mask, uint16_t other)
{
	const struct {
		uint16_t tag, perm;
		uint32_t id;
	} e[] = { { 1, user_obj, UINT32_MAX }, { 2, named, 1001 }, { 4, group_obj, UINT32_MAX },
		  { 0x10, mask, UINT32_MAX }, { 0x20, other, UINT32_MAX } };
	uint32_t version = 2;

	memcpy(buf, &version, 4);
	memcpy(buf + 4, e, sizeof(e));
	return 4 + sizeof(e);
}

/* --posix-acl: ACL names reach the host, modes come under the guest's umask or the parent's
 * default ACL, and a SETXATTR that asks for it drops the setgid bit. */
static void test_posix_acl(struct t_ctx *t)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc *c;
	struct stat st;
	uint8_t acl[64];
	char buf[128];
	size_t len, n;
	uint64_t f, d, g;

	t_write_file(t, "g", "", 0);
	CHECK(t, chown(t_path(t, "g"), 1001, 0) == 0 && chmod(t_path(t, "g"), 02770) == 0,
	      "host chown/chmod");
	c = t_session(t, NULL, "--posix-acl", NULL);
	CHECK(t, (c->init.flags & (FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT)) ==
			 (FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT),
	      "INIT flags 0x%x lack the ACL ones", c->init.flags);
	/* the guest sends the mode unmasked (DONT_MASK) and its umask 022: vfsd applies it */
	CHECK_OK(t, fc_create(c, FC_ROOT, "f", O_CREAT | O_RDWR, 0666, &e, &o));
	f = e.nodeid;
	CHECK_OK(t, fc_release(c, f, o.fh));
	host_stat(t, "f", &st);
	CHECK(t, (st.st_mode & 07777) == 0644, "created with mode 0%o", st.st_mode & 07777);
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "d", 0777, &e));
	d = e.nodeid;
	host_stat(t, "d", &st);
	CHECK(t, (st.st_mode & 07777) == 0755, "mkdir gave mode 0%o", st.st_mode & 07777);
	/* an access ACL: stored on the host, the group bits become the mask */
	len = make_acl(acl, 6, 4, 0, 4, 0);
	CHECK_OK(t, fc_setxattr(c, f, "system.posix_acl_access", acl, len, 0));
	CHECK(t, lgetxattr(t_path(t, "f"), "system.posix_acl_access", buf, sizeof(buf)) == (ssize_t)len,
	      "the host has no access ACL");
	host_stat(t, "f", &st);
	CHECK(t, (st.st_mode & 07777) == 0640, "mode 0%o after the ACL", st.st_mode & 07777);
	CHECK_OK(t, fc_getxattr(c, f, "system.posix_acl_access", buf, sizeof(buf), &n));
	CHECK(t, n == len && memcmp(buf, acl, len) == 0, "ACL read back: %zu bytes", n);
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &n));
	CHECK(t, list_has(buf, n, "system.posix_acl_access"), "the list hides the ACL (%zu bytes)",
	      n); /* cp -a and rsync -X copy what the list names */
	/* a default ACL decides the mode of what is created below it, not the umask */
	len = make_acl(acl, 7, 7, 5, 7, 0);
	CHECK_OK(t, fc_setxattr(c, d, "system.posix_acl_default", acl, len, 0));
	CHECK_OK(t, fc_create(c, d, "new", O_CREAT | O_RDWR, 0666, &e, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	host_stat(t, "d/new", &st);
	CHECK(t, (st.st_mode & 07777) == 0660, "created under a default ACL with mode 0%o",
	      st.st_mode & 07777);
	/* ACL_KILL_SGID: asked by the kernel when the caller is outside the group */
	g = lookup_id(t, c, FC_ROOT, "g");
	len = make_acl(acl, 7, 4, 7, 7, 0);
	CHECK_OK(t, fc_setxattr_ext(c, g, "system.posix_acl_access", acl, len, 0, 0));
	host_stat(t, "g", &st);
	CHECK(t, (st.st_mode & S_ISGID), "setgid dropped without the flag: 0%o", st.st_mode);
	CHECK_OK(t, fc_setxattr_ext(c, g, "system.posix_acl_access", acl, len, 0,
				    FUSE_SETXATTR_ACL_KILL_SGID));
	host_stat(t, "g", &st);
	CHECK(t, !(st.st_mode & S_ISGID) && (st.st_mode & 0777) == 0770,
	      "after ACL_KILL_SGID: mode 0%o", st.st_mode & 07777);
	t_still_serving(t, c);
}

/* --posix-acl against a kernel that cannot apply ACLs: INIT fails, as in virtiofsd. */
static void test_posix_acl_needs_kernel(struct t_ctx *t)
{
	struct fuse_init_out out;
	int r;

	t_started(t, NULL, "--posix-acl", NULL);
	r = fc_init_with(&t->fc, 7, 38, FUSE_ASYNC_READ | FUSE_INIT_EXT | FUSE_DONT_MASK, &out);
	CHECK(t, r == -EPROTO, "INIT without POSIX_ACL: %s", fc_strerror(&t->fc, r));
	/* the session did not start; a kernel that can is served */
	r = fc_init(&t->fc);
	CHECK(t, r == 0, "INIT of a 6.1 kernel after it: %s", fc_strerror(&t->fc, r));
	t_still_serving(t, &t->fc);
}

/* Request extensions (protocol 7.38), built as a kernel builds them. */
#define EXT_SUPP_GROUPS 32
#define INIT_CREATE_SUPP_GROUP (1ULL << 34)

/* A security context header with nr contexts (0 or 1: name and value). */
static size_t secctx_ext(uint8_t *buf, uint32_t nr, const char *name, const char *value)
{
	struct fuse_ext_header h = { .type = nr };
	struct fuse_secctx sc = { .size = value ? (uint32_t)strlen(value) : 0 };
	size_t len = sizeof(h);

	memset(buf, 0, 256);
	if (nr) {
		memcpy(buf + len, &sc, sizeof(sc));
		len += sizeof(sc);
		memcpy(buf + len, name, strlen(name) + 1);
		len += strlen(name) + 1;
		memcpy(buf + len, value, sc.size);
		len += sc.size;
	}
	len = (len + 7) & ~(size_t)7;
	h.size = (uint32_t)len;
	memcpy(buf, &h, sizeof(h));
	return len;
}

static size_t groups_ext(uint8_t *buf, const uint32_t *groups, uint32_t n)
{
	struct fuse_ext_header h = { .type = EXT_SUPP_GROUPS };
	size_t len = sizeof(h) + 4 + 4 * (size_t)n;

	memset(buf, 0, 256);
	len = (len + 7) & ~(size_t)7;
	h.size = (uint32_t)len;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &n, 4);
	memcpy(buf + sizeof(h) + 4, groups, 4 * (size_t)n);
	return len;
}

static void ext_next(struct fc *c, const uint8_t *buf, size_t len)
{
	c->ext = buf;
	c->ext_len = len;
}

/* --security-label: the label a kernel sends with each creation is stored on the new inode
 * (here under trusted.virtiofs., the documented map), a label that cannot be stored undoes
 * the creation, and malformed or missing context records are refused. */
static void test_security_label(struct t_ctx *t)
{
	static const char label[] = "system_u:object_r:tmp_t:s0";
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc *c = &t->fc;
	uint8_t ext[256];
	char buf[128];

	t_started(t, NULL, "--security-label", "--xattrmap=:map:security.selinux:trusted.virtiofs.:",
		  "--modcaps=+sys_admin", NULL);
	CHECK_OK(t, fc_init_plus(c, FUSE_SECURITY_CTX));
	CHECK(t, c->init.flags2 & (FUSE_SECURITY_CTX >> 32), "SECURITY_CTX not agreed");

	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "d", 0755, &e));
	host_getxattr(t, "d", "trusted.virtiofs.security.selinux", buf, sizeof(buf));
	CHECK(t, strcmp(buf, label) == 0, "the directory's label on the host: '%s'", buf);
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_create(c, FC_ROOT, "f", O_CREAT | O_RDWR, 0644, &e, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	host_getxattr(t, "f", "trusted.virtiofs.security.selinux", buf, sizeof(buf));
	CHECK(t, strcmp(buf, label) == 0, "the file's label on the host: '%s'", buf);
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_symlink(c, FC_ROOT, "l", "f", &e));
	CHECK(t, lgetxattr(t_path(t, "l"), "trusted.virtiofs.security.selinux", buf, sizeof(buf)) ==
			 (ssize_t)strlen(label),
	      "the symlink has no label of its own");
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_mknod(c, FC_ROOT, "n", S_IFREG | 0600, 0, &e));
	/* a kernel without a security module sends the header with no context */
	ext_next(c, ext, secctx_ext(ext, 0, NULL, NULL));
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "plain", 0755, &e));
	CHECK(t, lgetxattr(t_path(t, "plain"), "trusted.virtiofs.security.selinux", buf, sizeof(buf)) < 0,
	      "a label appeared without a context");
	/* a label the host refuses (not a valid capability): the creation is undone */
	ext_next(c, ext, secctx_ext(ext, 1, "security.capability", "bad"));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "refused", 0755, &e), EINVAL);
	CHECK(t, !t_exists(t, "refused"), "a refused label left the directory behind");
	ext_next(c, ext, secctx_ext(ext, 1, "security.capability", "bad"));
	CHECK_ERR(t, fc_create(c, FC_ROOT, "refused", O_CREAT | O_RDWR, 0644, &e, &o), EINVAL);
	CHECK(t, !t_exists(t, "refused"), "a refused label left the file behind");
	/* a "context" outside security.* (an ACL, trusted.*) is refused before anything */
	ext_next(c, ext, secctx_ext(ext, 1, "trusted.virtiofs.x", label));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "refused", 0755, &e), EINVAL);
	ext_next(c, ext, secctx_ext(ext, 1, "system.posix_acl_default", label));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "refused", 0755, &e), EINVAL);
	CHECK(t, !t_exists(t, "refused"), "a refused context created the directory");
	/* malformed: no context record, two contexts, an empty value, an unknown type */
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	ext_next(c, ext, secctx_ext(ext, 2, "security.selinux", label));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", ""));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	secctx_ext(ext, 0, NULL, NULL);
	ext[4] = 33; /* type */
	ext_next(c, ext, 8);
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 5 }, 1)); /* groups were not agreed */
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	CHECK(t, !t_exists(t, "x"), "a refused request created x");
	t_still_serving(t, c);
}

/* --security-label with a kernel older than 7.38 (its context format is not the extension
 * records vfsd reads): INIT fails with EPROTO, rather than every creation later. */
static void test_security_label_needs_738(struct t_ctx *t)
{
	struct fuse_init_out out;
	int r;

	t_started(t, NULL, "--security-label", NULL);
	r = fc_init_with(&t->fc, 7, 37, FUSE_ASYNC_READ | FUSE_INIT_EXT | FUSE_SECURITY_CTX, &out);
	CHECK(t, r == -EPROTO, "INIT 7.37 with SECURITY_CTX: %s", fc_strerror(&t->fc, r));
	r = fc_init_plus(&t->fc, FUSE_SECURITY_CTX);
	CHECK(t, r == 0, "INIT 7.38 after it: %s", fc_strerror(&t->fc, r));
	t_still_serving(t, &t->fc);
}

/* CREATE_SUPP_GROUP: a creator's group that the daemon cannot know otherwise decides on the
 * host as it did in the guest; without it the host refuses. */
static void test_supp_groups(struct t_ctx *t)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc *c = &t->fc;
	struct stat st;
	uint8_t ext[256];
	uint64_t d;

	t_mkdir(t, "g");
	CHECK(t, chown(t_path(t, "g"), 0, 500) == 0 && chmod(t_path(t, "g"), 0770) == 0,
	      "host chown/chmod");
	t_started(t, NULL, NULL);
	CHECK_OK(t, fc_init_plus(c, INIT_CREATE_SUPP_GROUP));
	CHECK(t, c->init.flags2 & (INIT_CREATE_SUPP_GROUP >> 32), "CREATE_SUPP_GROUP not agreed");
	d = lookup_id(t, c, FC_ROOT, "g");
	c->uid = 1001;
	c->gid = 1001;
	/* agreed, and no group sent: the host decides with uid 1001 alone */
	CHECK_ERR(t, fc_create(c, d, "none", O_CREAT | O_RDWR, 0644, &e, &o), EACCES);
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 500 }, 1));
	CHECK_OK(t, fc_create(c, d, "member", O_CREAT | O_RDWR, 0644, &e, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	host_stat(t, "g/member", &st);
	CHECK(t, st.st_uid == 1001 && st.st_gid == 1001, "owner %u:%u", st.st_uid, st.st_gid);
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 500 }, 1));
	CHECK_OK(t, fc_mkdir(c, d, "sub", 0755, &e));
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 600 }, 1)); /* not the directory's group */
	CHECK_ERR(t, fc_mkdir(c, d, "other", 0755, &e), EACCES);
	/* extensions belong to creating ops only: a READ with one is refused, whole */
	{
		char rbuf[16];
		size_t got;

		ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 500 }, 1));
		CHECK_ERR(t, fc_read(c, d, 1, 0, rbuf, sizeof(rbuf), &got), EINVAL);
	}
	/* a record whose size disagrees with its count */
	groups_ext(ext, (uint32_t[]){ 500, 501 }, 2);
	ext[8] = 3;
	ext_next(c, ext, 16);
	CHECK_ERR(t, fc_mkdir(c, d, "bad", 0755, &e), EINVAL);
	/* the thread gave the groups back: root's next creation does not carry them */
	c->uid = 0;
	c->gid = 0;
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "root-dir", 0755, &e));
	CHECK(t, !t_exists(t, "g/bad") && !t_exists(t, "g/other"), "a refused creation happened");
	t_still_serving(t, c);
}

/* --xattrmap: the documented "everything under user.virtiofs." map, and a remapped
 * security.capability that vfsd drops itself where the host kernel would not. */
static void test_xattrmap(struct t_ctx *t)
{
	struct fuse_open_out o;
	struct fc *c;
	char buf[256];
	uint64_t f;
	size_t len, n;

	t_write_file(t, "f", "data", 4);
	CHECK(t, setxattr(t_path(t, "f"), "user.plain", "host", 4, 0) == 0, "host setxattr");
	c = t_session(t, NULL, "--xattrmap=:map::user.virtiofs.:", NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	/* trusted.* of the guest lives in the host's user.* (no privilege needed) */
	CHECK_OK(t, fc_setxattr(c, f, "trusted.a", "1", 1, 0));
	host_getxattr(t, "f", "user.virtiofs.trusted.a", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "1") == 0, "host reads user.virtiofs.trusted.a = '%s'", buf);
	CHECK_OK(t, fc_getxattr(c, f, "trusted.a", buf, sizeof(buf), &len));
	CHECK(t, len == 1 && buf[0] == '1', "value of %zu bytes", len);
	/* the host's unprefixed names are hidden and out of reach */
	CHECK_ERR(t, fc_getxattr(c, f, "user.plain", buf, sizeof(buf), &len), ENODATA);
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "trusted.a") && !list_has(buf, len, "user.plain") &&
		 !list_has(buf, len, "user.virtiofs.trusted.a"),
	      "guest list of %zu bytes is not {trusted.a}", len);
	CHECK_OK(t, fc_removexattr(c, f, "trusted.a"));
	host_getxattr(t, "f", "user.virtiofs.trusted.a", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "host still has user.virtiofs.trusted.a");
	/* A capability stored under another name: a write must drop it as the host kernel
	 * drops a real security.capability. */
	CHECK_OK(t, fc_setxattr(c, f, "security.capability", "cap", 3, 0));
	host_getxattr(t, "f", "user.virtiofs.security.capability", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "cap") == 0, "host capability xattr = '%s'", buf);
	CHECK_OK(t, fc_open(c, f, O_RDWR, &o));
	CHECK_OK(t, fc_write(c, f, o.fh, 0, "x", 1, &n));
	host_getxattr(t, "f", "user.virtiofs.security.capability", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "a WRITE left the remapped capability: '%s'", buf);
	CHECK_OK(t, fc_release(c, f, o.fh));
	host_getxattr(t, "f", "user.plain", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "host") == 0, "the host's own user.plain changed: '%s'", buf);
}

/* --xattrmap rules without a catch-all: a name none matches is refused, never a crash. */
static void test_xattrmap_unterminated(struct t_ctx *t)
{
	struct fc *c;
	char buf[256];
	uint64_t f;
	size_t len;

	t_write_file(t, "f", "data", 4);
	CHECK(t, setxattr(t_path(t, "f"), "user.plain", "host", 4, 0) == 0, "host setxattr");
	c = t_session(t, NULL,
		      "--xattrmap= :bad:server::user.hidden: :ok:all:user.:: :unsupported:client:trusted.::",
		      NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	CHECK(t, setxattr(t_path(t, "f"), "user.hidden1", "h", 1, 0) == 0, "host setxattr");
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "user.plain") && !list_has(buf, len, "user.hidden1"),
	      "guest list of %zu bytes", len);
	CHECK_ERR(t, fc_getxattr(c, f, "trusted.x", buf, sizeof(buf), &len), EOPNOTSUPP);
	CHECK_ERR(t, fc_setxattr(c, f, "security.x", "v", 1, 0), EPERM);
	CHECK_ERR(t, fc_getxattr(c, f, "security.x", buf, sizeof(buf), &len), ENODATA);
	CHECK_ERR(t, fc_removexattr(c, f, "security.x"), EPERM);
	t_still_serving(t, c);
}

static void test_xattr(struct t_ctx *t)
{
	struct fc *c;
	char buf[256], name[300];
	uint64_t f, l, p, d;
	size_t len;

	t_write_file(t, "f", "data", 4);
	t_mkdir(t, "d");
	CHECK(t, symlink("f", t_path(t, "l")) == 0 && mkfifo(t_path(t, "p"), 0600) == 0,
	      "host symlink and fifo");
	/* CAP_SYS_ADMIN, dropped by default, is what trusted.* and security.* need. */
	c = t_session(t, NULL, "-o", "xattr,modcaps=+sys_admin", NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	d = lookup_id(t, c, FC_ROOT, "d");
	l = lookup_id(t, c, FC_ROOT, "l");
	p = lookup_id(t, c, FC_ROOT, "p");

	/* set, get, list and remove on a file; the host sees each change */
	CHECK_OK(t, fc_setxattr(c, f, "user.colour", "blue", 4, 0));
	host_getxattr(t, "f", "user.colour", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "blue") == 0, "host reads user.colour = '%s'", buf);
	CHECK_OK(t, fc_getxattr(c, f, "user.colour", NULL, 0, &len));
	CHECK(t, len == 4, "size query: %zu", len);
	CHECK_OK(t, fc_getxattr(c, f, "user.colour", buf, sizeof(buf), &len));
	CHECK(t, len == 4 && memcmp(buf, "blue", 4) == 0, "value of %zu bytes", len);
	CHECK_ERR(t, fc_getxattr(c, f, "user.colour", buf, 2, &len), ERANGE);
	CHECK_ERR(t, fc_getxattr(c, f, "user.none", buf, sizeof(buf), &len), ENODATA);
	CHECK_ERR(t, fc_setxattr(c, f, "user.colour", "red", 3, XATTR_CREATE), EEXIST);
	CHECK_ERR(t, fc_setxattr(c, f, "user.none", "red", 3, XATTR_REPLACE), ENODATA);
	CHECK_OK(t, fc_setxattr(c, f, "user.empty", "", 0, 0));
	CHECK_OK(t, fc_listxattr(c, f, NULL, 0, &len));
	CHECK(t, len >= sizeof("user.colour") + sizeof("user.empty"), "list size query: %zu", len);
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "user.colour") && list_has(buf, len, "user.empty"),
	      "list of %zu bytes lacks a name", len);
	CHECK_ERR(t, fc_listxattr(c, f, buf, 3, &len), ERANGE);
	CHECK_OK(t, fc_removexattr(c, f, "user.colour"));
	host_getxattr(t, "f", "user.colour", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "host still reads user.colour = '%s'", buf);
	CHECK_ERR(t, fc_removexattr(c, f, "user.colour"), ENODATA);
	/* a directory */
	CHECK_OK(t, fc_setxattr(c, d, "user.dir", "1", 1, 0));
	host_getxattr(t, "d", "user.dir", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "1") == 0, "host reads the directory's user.dir = '%s'", buf);
	/*
	 * A symlink's own attributes, never its target's, and a FIFO nobody writes to: opening
	 * it would hang the daemon (CVE-2020-35517 is the same mistake for devices), so its
	 * attributes are reached without an open. user.* is not allowed on either: the host
	 * sets security.* (readable without privileges).
	 */
	CHECK(t, lsetxattr(t_path(t, "l"), "security.vfsd", "link", 4, 0) == 0 &&
		 lsetxattr(t_path(t, "p"), "security.vfsd", "fifo", 4, 0) == 0,
	      "host lsetxattr");
	CHECK_OK(t, fc_getxattr(c, l, "security.vfsd", buf, sizeof(buf), &len));
	CHECK(t, len == 4 && memcmp(buf, "link", 4) == 0, "symlink value of %zu bytes", len);
	CHECK_ERR(t, fc_getxattr(c, f, "security.vfsd", buf, sizeof(buf), &len), ENODATA);
	CHECK_OK(t, fc_getxattr(c, p, "security.vfsd", buf, sizeof(buf), &len));
	CHECK(t, len == 4 && memcmp(buf, "fifo", 4) == 0, "fifo value of %zu bytes", len);
	CHECK_OK(t, fc_listxattr(c, p, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "security.vfsd"), "fifo list of %zu bytes", len);
	/* changed through the daemon */
	CHECK_OK(t, fc_setxattr(c, l, "trusted.vfsd", "link", 4, 0));
	host_getxattr(t, "l", "trusted.vfsd", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "link") == 0, "host reads the symlink's trusted.vfsd = '%s'",
	      buf);
	host_getxattr(t, "f", "trusted.vfsd", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "the symlink's target got trusted.vfsd = '%s'", buf);
	CHECK_OK(t, fc_removexattr(c, p, "security.vfsd"));
	host_getxattr(t, "p", "security.vfsd", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "the fifo kept security.vfsd = '%s'", buf);
	/* bad names */
	CHECK_ERR(t, fc_setxattr(c, f, "", "x", 1, 0), ERANGE);
	memset(name, 'a', sizeof(name) - 1);
	memcpy(name, "user.", 5);
	name[sizeof(name) - 1] = '\0';
	CHECK_ERR(t, fc_setxattr(c, f, name, "x", 1, 0), ERANGE);
	CHECK_ERR(t, fc_getxattr(c, STALE_ID, "user.x", buf, sizeof(buf), &len), EBADF);
	if (!t->c_virtiofsd) {
		/* ACLs are not handled (no --posix-acl): refused, and hidden from lists */
		CHECK_ERR(t, fc_setxattr(c, f, "system.posix_acl_access", "x", 1, 0), ENOTSUP);
		CHECK_ERR(t, fc_getxattr(c, f, "system.posix_acl_default", buf, sizeof(buf), &len),
			  ENOTSUP);
	}
	t_still_serving(t, c);
}

static void test_xattr_readonly(struct t_ctx *t)
{
	struct fc *c;
	char buf[16];
	size_t len;
	uint64_t f;

	t_write_file(t, "f", "data", 4);
	CHECK(t, setxattr(t_path(t, "f"), "user.k", "v", 1, 0) == 0, "host setxattr");
	c = t_session(t, NULL, "--xattr", "--readonly", NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	CHECK_OK(t, fc_getxattr(c, f, "user.k", buf, sizeof(buf), &len));
	CHECK(t, len == 1 && buf[0] == 'v', "value of %zu bytes", len);
	CHECK_ERR(t, fc_setxattr(c, f, "user.k", "w", 1, 0), EROFS);
	CHECK_ERR(t, fc_removexattr(c, f, "user.k"), EROFS);
}

/* Looks up "mnt" (a tmpfs mounted for the call) and "plain" in a session with the extra
 * daemon argument; returns their attr.flags. */
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

static void test_submounts(struct t_ctx *t)
{
	uint32_t mnt, plain;

	t_mkdir(t, "mnt");
	t_mkdir(t, "plain");
	submount_flags(t, "--announce-submounts", &mnt, &plain);
	CHECK(t, (mnt & FUSE_ATTR_SUBMOUNT) && !(plain & FUSE_ATTR_SUBMOUNT),
	      "announced: mount point flags 0x%x, plain directory 0x%x", mnt, plain);
}

static void test_no_submounts(struct t_ctx *t)
{
	uint32_t mnt, plain;

	t_mkdir(t, "mnt");
	t_mkdir(t, "plain");
	submount_flags(t, "--no-announce-submounts", &mnt, &plain);
	CHECK(t, !(mnt & FUSE_ATTR_SUBMOUNT) && !(plain & FUSE_ATTR_SUBMOUNT),
	      "not announced: mount point flags 0x%x, plain directory 0x%x", mnt, plain);
}

/* --inode-file-handles=never is how vfsd works (O_PATH fds): accepted, and it serves. */
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
static void test_file_handles_mandatory(struct t_ctx *t)
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

static void test_file_handles_never(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--inode-file-handles=never", NULL);

	t_write_file(t, "f", "x", 1);
	lookup_id(t, c, FC_ROOT, "f");
	t_still_serving(t, c);
}

/* ---- soft uid/gid translation ---- */

static void test_translate_ids(struct t_ctx *t)
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

static void test_writeback(struct t_ctx *t)
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

static void test_no_writeback(struct t_ctx *t)
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

static void test_allow_direct_io(struct t_ctx *t)
{
	struct statfs sf;

	if (statfs(t->share, &sf) == 0 && sf.f_type != EXT4_SUPER_MAGIC)
		t_skip(t, "the share is not on ext4 (f_type 0x%lx)", (unsigned long)sf.f_type);
	CHECK_ERR(t, misaligned_direct_read(t, t_session(t, NULL, "--allow-direct-io", NULL)),
		  EINVAL);
}

static void test_direct_io_stripped(struct t_ctx *t)
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

static void test_preserve_noatime(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--preserve-noatime", NULL);

	CHECK(t, !read_updates_atime(t, c), "a read through an O_NOATIME open changed atime");
}

static void test_noatime_stripped(struct t_ctx *t)
{
	CHECK(t, read_updates_atime(t, session(t)),
	      "atime not updated: O_NOATIME reached the host, or the share is mounted noatime");
}

#define DIRECT_IO_ALLOW_MMAP_BIT (1ULL << 36) /* newer than Debian 12's UAPI headers */

static void test_allow_mmap(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--allow-mmap", NULL);
	struct fuse_init_out o;

	/* A second INIT starts the session over, this time offering the flag. */
	CHECK_OK(t, fc_init_with(c, 7, 38, FUSE_INIT_EXT | DIRECT_IO_ALLOW_MMAP_BIT, &o));
	CHECK(t, o.flags2 & (DIRECT_IO_ALLOW_MMAP_BIT >> 32), "flags2 0x%x", o.flags2);
}

static void test_fallocate(struct t_ctx *t)
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

static void test_lseek(struct t_ctx *t)
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

static void test_copy_file_range(struct t_ctx *t)
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

static void test_syncfs(struct t_ctx *t)
{
	struct fc *c = session(t);

	t_write_file(t, "f", "x", 1);
	CHECK_OK(t, fc_syncfs(c, FC_ROOT));
	CHECK_OK(t, fc_syncfs(c, lookup_id(t, c, FC_ROOT, "f")));
}

static void test_readonly(struct t_ctx *t)
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

#define NO_READONLY "QEMU 7.2's virtiofsd has no read-only mode"

static const struct t_case cases[] = {
	{ "init", test_init, NULL },
	{ "lookup", test_lookup, NULL },
	{ "getattr", test_getattr, NULL },
	{ "forget", test_forget, NULL },
	{ "batch-forget", test_batch_forget, NULL },
	{ "setattr", test_setattr, NULL },
	{ "mkdir", test_mkdir, NULL },
	{ "mknod", test_mknod, NULL },
	{ "create", test_create, NULL },
	{ "tmpfile", test_tmpfile, "QEMU 7.2's virtiofsd has no TMPFILE" },
	{ "create-as-guest-user", test_create_as_guest_user, NULL },
	{ "unlink-rmdir", test_unlink_rmdir, NULL },
	{ "rename-rename2", test_rename, NULL },
	{ "link", test_link, NULL },
	{ "symlink-readlink", test_symlink_readlink, NULL },
	{ "open-read-release", test_open_read, NULL },
	{ "handle-of-another-file", test_handle_of_other_file,
	  "the C virtiofsd does not tie a handle to its node id" },
	{ "write-flush-fsync", test_write, NULL },
	{ "write-append", test_write_append, NULL },
	{ "statfs", test_statfs, NULL },
	{ "access", test_access, NULL },
	{ "opendir-readdir-releasedir", test_readdir, NULL },
	{ "readdirplus", test_readdirplus, NULL },
	{ "readdir-300-entries", test_large_directory, NULL },
	{ "many-lookups-low-fd-limit", test_many_lookups_low_fd_limit,
	  "QEMU 7.2's virtiofsd leaves RLIMIT_NOFILE alone (the Rust one raises it, §2.2)" },
	{ "guest-fd-budget", test_guest_fd_budget, "QEMU 7.2's virtiofsd has no fd budget" },
	{ "destroy", test_destroy, NULL },
	{ "interrupt", test_interrupt,
	  "the C virtiofsd stops serving after an INTERRUPT (Linux never sends one to virtio-fs)" },
	{ "fallocate", test_fallocate, NULL },
	{ "lseek", test_lseek, NULL },
	{ "copy-file-range", test_copy_file_range, NULL },
	{ "syncfs", test_syncfs, NULL },
	{ "enosys-unimplemented", test_enosys, NULL },
	{ "readonly-erofs", test_readonly, NO_READONLY },
	{ "xattr", test_xattr, NULL },
	{ "security-label", test_security_label, "QEMU 7.2's virtiofsd has no --security-label" },
	{ "security-label-needs-7.38", test_security_label_needs_738,
	  "QEMU 7.2's virtiofsd has no --security-label" },
	{ "create-supp-group", test_supp_groups, "QEMU 7.2's virtiofsd has no CREATE_SUPP_GROUP" },
	{ "posix-acl", test_posix_acl, "QEMU 7.2's virtiofsd spells it -o posix_acl" },
	{ "posix-acl-needs-kernel", test_posix_acl_needs_kernel,
	  "QEMU 7.2's virtiofsd spells it -o posix_acl" },
	{ "xattrmap", test_xattrmap, "QEMU 7.2's virtiofsd has a different --xattrmap spelling" },
	{ "xattrmap-unterminated", test_xattrmap_unterminated,
	  "QEMU 7.2's virtiofsd has a different --xattrmap spelling" },
	{ "inode-file-handles-mandatory", test_file_handles_mandatory,
	  "QEMU 7.2's virtiofsd has no --inode-file-handles" },
	{ "inode-file-handles-never", test_file_handles_never,
	  "QEMU 7.2's virtiofsd has no --inode-file-handles" },
	{ "translate-uid-gid", test_translate_ids, "QEMU 7.2's virtiofsd has no --translate-uid" },
	{ "writeback", test_writeback, NULL },
	{ "no-writeback-wronly-stays", test_no_writeback, NULL },
	{ "allow-direct-io", test_allow_direct_io, "QEMU 7.2's virtiofsd has no --allow-direct-io" },
	{ "direct-io-stripped", test_direct_io_stripped, NULL },
	{ "preserve-noatime", test_preserve_noatime, "QEMU 7.2's virtiofsd has no such option" },
	{ "noatime-stripped", test_noatime_stripped,
	  "QEMU 7.2's virtiofsd passes O_NOATIME on (the Rust one strips it)" },
	{ "allow-mmap", test_allow_mmap, "QEMU 7.2's virtiofsd has no --allow-mmap" },
	{ "submounts", test_submounts, "QEMU 7.2's virtiofsd has no --announce-submounts" },
	{ "no-announce-submounts", test_no_submounts, "QEMU 7.2's virtiofsd has no such option" },
	{ "xattr-readonly", test_xattr_readonly, NO_READONLY },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, "fuse-ops");
}
