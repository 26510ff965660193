/*
 * The fd cache (docs/fd-cache.md): with a small --rlimit-nofile the guest may look up far
 * more inodes than the daemon may hold fds for. Idle inodes give their O_PATH fd back and
 * are opened again by the name the guest found them under; an open file keeps its fds.
 *
 * --rlimit-nofile=800 leaves the guest 190 fds (the daemon keeps 610 for itself).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_ops.h"

#define NOFILE "--rlimit-nofile=800"
#define GUEST_FDS 190

/* A session whose inodes are held by fds, served on the queue thread (the counts below
 * assume no pool's fds). These come after FE_DAEMON_ARGS and win. */
static struct fc *small_session(struct t_ctx *t)
{
	return t_session(t, NULL, NOFILE, "--thread-pool-size=0", "--inode-file-handles=never",
			 NULL);
}

static void check_fds(struct t_ctx *t)
{
	int n = t_proc_fds(t->pid);

	CHECK(t, n >= 0 && n <= 800, "the daemon holds %d fds (-1: unreadable), more than its limit of 800", n);
}

/* Looks up the names "0" to "count - 1" under dir; their ids go to ids. */
static void lookup_all(struct t_ctx *t, struct fc *c, uint64_t dir, int count, uint64_t *ids)
{
	struct fuse_entry_out e;
	char name[32];

	for (int i = 0; i < count; i++) {
		int r;

		snprintf(name, sizeof(name), "%d", i);
		r = fc_lookup(c, dir, name, &e);
		CHECK(t, r == 0, "LOOKUP %d of %d with %d fds for the guest: %s", i, count, GUEST_FDS,
		      fc_strerror(c, r));
		ids[i] = e.nodeid;
	}
}

/* count files DIR/0 ... on the host, each holding its own path. */
static void make_files(struct t_ctx *t, const char *dir, int count)
{
	char name[PATH_MAX];

	t_mkdir(t, dir);
	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "%s/%d", dir, i);
		t_write_file(t, name, name, strlen(name));
	}
}

/* small_session with 200 files under "p" for press() to look up; *pd is p's node id. */
static struct fc *press_session(struct t_ctx *t, uint64_t *pd)
{
	struct fc *c;

	make_files(t, "p", 200);
	c = small_session(t);
	*pd = lookup_id(t, c, FC_ROOT, "p");
	return c;
}

/* Makes every idle inode give its fd back: 400 lookups of other files (at least 200 under
 * press_dir, which nothing else looks up), forgotten again. */
static void press(struct t_ctx *t, struct fc *c, uint64_t press_dir)
{
	static uint64_t ids[200];

	for (int round = 0; round < 2; round++) {
		lookup_all(t, c, press_dir, 200, ids);
		for (int i = 0; i < 200; i++)
			CHECK_OK(t, fc_forget(c, ids[i], 1));
	}
}

static void check_ino(struct t_ctx *t, struct fc *c, uint64_t id, const char *rel)
{
	struct fuse_attr_out a;
	struct stat st;
	int r = fc_getattr(c, id, &a);

	CHECK(t, r == 0, "GETATTR of %s: %s", rel, fc_strerror(c, r));
	host_stat(t, rel, &st);
	CHECK(t, a.attr.ino == st.st_ino, "GETATTR of %s: ino %llu, the host's is %llu", rel,
	      (unsigned long long)a.attr.ino, (unsigned long long)st.st_ino);
}

/*
 * 3,000 files in 15 directories, far more than the 190 fds: every lookup succeeds, then
 * every inode answers GETATTR, READ and READDIRPLUS (opened again, its directory first if
 * that gave its fd back too), and the daemon never holds more fds than its limit.
 */
void test_fdcache_evicts(struct t_ctx *t)
{
	enum { DIRS = 15, PER = 200 };
	static uint64_t ids[DIRS][PER];
	static char dbuf[65536];
	uint64_t dirs[DIRS], fh;
	char rel[64], buf[64];
	struct fuse_open_out o;
	struct fc *c;
	size_t len;

	make_files(t, "p", 200);
	t_mkdir(t, "d");
	for (int d = 0; d < DIRS; d++) {
		snprintf(rel, sizeof(rel), "d/%d", d);
		make_files(t, rel, PER);
	}
	c = small_session(t);
	uint64_t top = lookup_id(t, c, FC_ROOT, "d");

	for (int d = 0; d < DIRS; d++) {
		snprintf(rel, sizeof(rel), "%d", d);
		dirs[d] = lookup_id(t, c, top, rel);
		lookup_all(t, c, dirs[d], PER, ids[d]);
	}
	check_fds(t);
	/* Twice over, in another order than the lookups: every one is opened again. */
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < PER; k++) {
			for (int d = 0; d < DIRS; d++) {
				snprintf(rel, sizeof(rel), "d/%d/%d", d, k);
				check_ino(t, c, ids[d][k], rel);
			}
		}
	}
	check_fds(t);
	/* Data through an evicted inode. */
	CHECK_OK(t, fc_open(c, ids[3][7], O_RDONLY, &o));
	fh = o.fh;
	CHECK_OK(t, fc_read(c, ids[3][7], fh, 0, buf, sizeof(buf), &len));
	CHECK(t, len == strlen("d/3/7") && memcmp(buf, "d/3/7", len) == 0,
	      "READ of d/3/7 after its fd was evicted: %zu bytes '%.*s'", len, (int)len, buf);
	CHECK_OK(t, fc_release(c, ids[3][7], fh));
	/* A listing with attributes of a directory whose inode gave its fd back. */
	press(t, c, lookup_id(t, c, FC_ROOT, "p"));
	CHECK_OK(t, fc_opendir(c, dirs[9], &o));
	CHECK_OK(t, fc_readdirplus(c, dirs[9], o.fh, 0, dbuf, sizeof(dbuf), &len));
	CHECK(t, len > 0, "READDIRPLUS of an evicted directory returned nothing");
	CHECK_OK(t, fc_releasedir(c, dirs[9], o.fh));
	check_fds(t);
	t_still_serving(t, c);
}

/* A chain of 250 directories, more than the 190 fds, each evicted: the deepest is found
 * again through all of them. */
void test_fdcache_deep(struct t_ctx *t)
{
	enum { DEPTH = 250 };
	static char rel[DEPTH * 2 + 16];
	uint64_t id = FC_ROOT, mid = 0, pd;
	struct fc *c;
	size_t n = 0;

	for (int i = 0; i < DEPTH; i++) {
		n += (size_t)snprintf(rel + n, sizeof(rel) - n, "%sa", i ? "/" : "");
		t_mkdir(t, rel);
	}
	c = press_session(t, &pd);
	for (int i = 0; i < DEPTH; i++) {
		id = lookup_id(t, c, id, "a");
		if (i == DEPTH / 2)
			mid = id;
	}
	press(t, c, pd);
	check_ino(t, c, id, rel);
	press(t, c, pd);
	rel[(DEPTH / 2 + 1) * 2 - 1] = '\0';
	check_ino(t, c, mid, rel);
	check_fds(t);
}

/* The guest's renames move the names the daemon finds its inodes by, RENAME_EXCHANGE too. */
void test_fdcache_guest_rename(struct t_ctx *t)
{
	uint64_t a, b, x, y, z, pd;
	struct fc *c;

	t_mkdir(t, "a");
	t_mkdir(t, "b");
	t_write_file(t, "a/x", "x", 1);
	t_write_file(t, "a/y", "y", 1);
	t_write_file(t, "b/z", "z", 1);
	c = press_session(t, &pd);
	a = lookup_id(t, c, FC_ROOT, "a");
	b = lookup_id(t, c, FC_ROOT, "b");
	x = lookup_id(t, c, a, "x");
	y = lookup_id(t, c, a, "y");
	z = lookup_id(t, c, b, "z");
	press(t, c, pd);
	CHECK_OK(t, fc_rename(c, a, "x", b, "x2"));
	press(t, c, pd);
	check_ino(t, c, x, "b/x2");
	press(t, c, pd);
	CHECK_OK(t, fc_rename2(c, a, "y", b, "z", RENAME_EXCHANGE));
	press(t, c, pd);
	check_ino(t, c, y, "b/z");
	check_ino(t, c, z, "a/y");
	/* A directory moved with its children under it: they follow it. */
	CHECK_OK(t, fc_rename(c, FC_ROOT, "b", a, "b"));
	press(t, c, pd);
	check_ino(t, c, x, "a/b/x2");
	check_ino(t, c, b, "a/b");
	t_still_serving(t, c);
}

/*
 * The host renames a file behind the guest's back: the evicted inode cannot be found by its
 * name any more and answers ESTALE (on which a Linux guest looks the path up again); the
 * lookup of the new name gives the same node id, which works again. Another object at the
 * old name is not taken for it.
 */
void test_fdcache_host_rename(struct t_ctx *t)
{
	uint64_t f, g, pd;
	struct fuse_attr_out a;
	struct fc *c;

	t_write_file(t, "f", "f", 1);
	t_write_file(t, "g", "g", 1);
	c = press_session(t, &pd);
	f = lookup_id(t, c, FC_ROOT, "f");
	press(t, c, pd);
	if (rename(t_path(t, "f"), t_path(t, "f2")) < 0)
		t_fail(t, "host rename: %s", strerror(errno));
	CHECK_ERR(t, fc_getattr(c, f, &a), ESTALE);
	CHECK(t, lookup_id(t, c, FC_ROOT, "f2") == f, "the new name got another node id");
	check_ino(t, c, f, "f2");
	/* g is evicted, then the host puts f's file at its name: neither is found by its
	 * name (g's object is gone, f's name leads elsewhere) until f's is looked up */
	g = lookup_id(t, c, FC_ROOT, "g");
	press(t, c, pd);
	if (rename(t_path(t, "f2"), t_path(t, "g")) < 0)
		t_fail(t, "host rename: %s", strerror(errno));
	CHECK_ERR(t, fc_getattr(c, g, &a), ESTALE);
	CHECK_ERR(t, fc_getattr(c, f, &a), ESTALE);
	CHECK(t, lookup_id(t, c, FC_ROOT, "g") == f, "g now names f's file, but got another node id");
	check_ino(t, c, f, "g");
	CHECK_ERR(t, fc_getattr(c, g, &a), ESTALE);
	t_still_serving(t, c);
}

/*
 * An unlinked file the guest still knows cannot be found by a name: it keeps its fd under
 * pressure, and GETATTR still answers (nlink 0), as a local inode would.
 */
void test_fdcache_unlinked(struct t_ctx *t)
{
	struct fuse_attr_out a;
	uint64_t f, pd;
	struct fc *c;

	t_write_file(t, "f", "f", 1);
	c = press_session(t, &pd);
	f = lookup_id(t, c, FC_ROOT, "f");
	CHECK_OK(t, fc_unlink(c, FC_ROOT, "f"));
	press(t, c, pd);
	press(t, c, pd);
	CHECK_OK(t, fc_getattr(c, f, &a));
	CHECK(t, a.attr.nlink == 0, "GETATTR of the unlinked file: nlink %u", a.attr.nlink);
	CHECK_OK(t, fc_forget(c, f, 1));
	t_still_serving(t, c);
}

/*
 * Open files are not evicted: each holds its file's fd and its inode's, so about 95 opens
 * spend the 190 fds; the next one gets ENFILE (never a crash, the daemon's own fds
 * untouched). A RELEASE gives fds back.
 */
void test_guest_fd_budget(struct t_ctx *t)
{
	static uint64_t ids[300], fhs[300];
	struct fuse_entry_out e;
	struct fuse_open_out o;
	int opened, r = 0;
	uint64_t dir;
	struct fc *c;

	make_files(t, "many", 300);
	c = small_session(t);
	dir = lookup_id(t, c, FC_ROOT, "many");
	lookup_all(t, c, dir, 300, ids);
	for (opened = 0; opened < 300; opened++) {
		r = fc_open(c, ids[opened], O_RDONLY, &o);
		if (r != 0)
			break;
		fhs[opened] = o.fh;
	}
	CHECK(t, r == -ENFILE, "OPEN %d: %s, expected ENFILE once the budget is spent", opened,
	      fc_strerror(c, r));
	CHECK(t, opened >= 90 && opened <= GUEST_FDS / 2,
	      "%d opens before ENFILE, expected about %d (each an fd for the file and one for its inode)",
	      opened, GUEST_FDS / 2);
	check_fds(t);
	t_still_serving(t, c);
	CHECK_OK(t, fc_release(c, ids[0], fhs[0]));
	CHECK_OK(t, fc_open(c, ids[0], O_RDONLY, &o));
	fhs[0] = o.fh;
	CHECK_ERR(t, fc_open(c, ids[opened], O_RDONLY, &o), ENFILE);
	for (int i = 0; i < opened; i++)
		CHECK_OK(t, fc_release(c, ids[i], fhs[i]));
	CHECK_OK(t, fc_lookup(c, dir, "299", &e));
	CHECK_OK(t, fc_open(c, ids[299], O_RDONLY, &o));
	t_still_serving(t, c);
}

/*
 * Four workers, 32 requests in flight at a time, on 1,000 inodes with 190 fds: evictions,
 * walks opening parents again and lookups of the same names race each other. Every reply
 * must be right (ThreadSanitizer runs this too: tests/tsan/run.sh).
 */
void test_fdcache_concurrent(struct t_ctx *t)
{
	enum { DIRS = 5, PER = 200, BATCH = 32, ROUNDS = 60 };
	static uint64_t ids[DIRS * PER];
	struct fuse_attr_out a[BATCH];
	struct fuse_entry_out e[BATCH];
	struct fuse_lookup_in_name { char s[16]; } names[BATCH];
	struct fc_req rq[BATCH];
	uint64_t dirs[DIRS];
	char rel[32];
	struct fc *c;
	unsigned int seed = 7;

	for (int d = 0; d < DIRS; d++) {
		snprintf(rel, sizeof(rel), "%d", d);
		make_files(t, rel, PER);
	}
	c = t_session(t, NULL, NOFILE, "--thread-pool-size=4", "--inode-file-handles=never", NULL);
	for (int d = 0; d < DIRS; d++) {
		snprintf(rel, sizeof(rel), "%d", d);
		dirs[d] = lookup_id(t, c, FC_ROOT, rel);
		lookup_all(t, c, dirs[d], PER, ids + d * PER);
	}
	for (int round = 0; round < ROUNDS; round++) {
		int pick[BATCH];

		for (int k = 0; k < BATCH; k++) {
			pick[k] = (int)(rand_r(&seed) % (DIRS * PER));
			if (k % 4 == 3) { /* a lookup of the same name: nlookup and the record */
				struct fc_arg in = { names[k].s, 0 };

				snprintf(names[k].s, sizeof(names[k].s), "%d", pick[k] % PER);
				in.len = strlen(names[k].s) + 1;
				CHECK_OK(t, fc_start(c, &rq[k], FUSE_LOOKUP, dirs[pick[k] / PER], &in, 1,
						     sizeof(e[k])));
			} else {
				struct fuse_getattr_in gin = { 0 };
				struct fc_arg in = { &gin, sizeof(gin) };

				CHECK_OK(t, fc_start(c, &rq[k], FUSE_GETATTR, ids[pick[k]], &in, 1,
						     sizeof(a[k])));
			}
		}
		for (int k = 0; k < BATCH; k++) {
			struct stat st;
			size_t len;
			int r;

			snprintf(rel, sizeof(rel), "%d/%d", pick[k] / PER, pick[k] % PER);
			host_stat(t, rel, &st);
			if (k % 4 == 3) {
				r = fc_finish(c, &rq[k], &e[k], sizeof(e[k]), &len);
				CHECK(t, r == 0 && e[k].nodeid == ids[pick[k]] && e[k].attr.ino == st.st_ino,
				      "LOOKUP of %s in round %d: %s, node %llu (was %llu)", rel, round,
				      fc_strerror(c, r), (unsigned long long)e[k].nodeid,
				      (unsigned long long)ids[pick[k]]);
				CHECK_OK(t, fc_forget(c, e[k].nodeid, 1));
			} else {
				r = fc_finish(c, &rq[k], &a[k], sizeof(a[k]), &len);
				CHECK(t, r == 0 && a[k].attr.ino == st.st_ino,
				      "GETATTR of %s in round %d: %s, ino %llu, the host's %llu", rel,
				      round, fc_strerror(c, r), (unsigned long long)a[k].attr.ino,
				      (unsigned long long)st.st_ino);
			}
		}
	}
	check_fds(t);
	t_still_serving(t, c);
}
