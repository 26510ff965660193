/*
 * Live migration (docs/migration.md): the frontend plays the VMM on both sides. It builds a
 * guest state on daemon A, turns dirty logging on as QEMU does, stops the rings, SAVEs the
 * device state, moves the same guest memory, rings and FUSE session to daemon B, LOADs, and
 * checks that every node id and handle still means what it meant.
 *
 * The Rust virtiofsd takes part when FE_RUST_VIRTIOFSD names it (run.sh sets it): as the
 * middle hop of a round trip, and as the daemon under test when it is the DAEMON given, which
 * checks this suite against a real implementation (checks of vfsd's own choices are then left
 * out, each where it is made).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost_types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define MIB (1u << 20)
#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* ---- the daemons ---- */

/* The daemon under test is the Rust virtiofsd (see the top of the file). */
static bool ut_rust;

/* FE_RUST_VIRTIOFSD when it names an executable, else NULL. */
static const char *rust_bin(void)
{
	const char *p = getenv("FE_RUST_VIRTIOFSD");

	return p && *p && access(p, X_OK) == 0 ? p : NULL;
}

static void begin(struct t_ctx *t)
{
	const char *rust = rust_bin();
	struct stat a, b;

	ut_rust = rust && stat(rust, &a) == 0 && stat(t->daemon, &b) == 0 &&
		  a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void need_rust(struct t_ctx *t)
{
	const char *p = getenv("FE_RUST_VIRTIOFSD");

	if (!p || !*p)
		t_skip(t, "FE_RUST_VIRTIOFSD is not set (scripts/rust-virtiofsd.sh builds "
			  "virtiofsd 1.14; run.sh takes "
			  "~/.cache/vfsd/rust-virtiofsd/bin/virtiofsd)");
	if (!rust_bin())
		t_skip(t, "FE_RUST_VIRTIOFSD=%s is not an executable", p);
}

/* Starts daemon NAME on DIR/NAME.sock: vfsd (the daemon under test) or the Rust virtiofsd.
 * vfsd's own options are left out for the Rust one. */
static pid_t start(struct t_ctx *t, const char *name, bool rust, const char *const *extra)
{
	char sock[PATH_MAX];
	const char *args[24];
	int n = 0;

	snprintf(sock, sizeof(sock), "%s/%s.sock", t->dir, name);
	for (int i = 0; extra && extra[i] && n < 23; i++) {
		if (rust && strncmp(extra[i], "--migration-format", 18) == 0)
			continue;
		args[n++] = extra[i];
	}
	args[n] = NULL;
	return rust ? t_rust_at(t, sock, rust_bin(), args) : t_daemon_at(t, sock, t->daemon, args);
}

static pid_t start_ut(struct t_ctx *t, const char *name, const char *const *extra)
{
	return start(t, name, ut_rust, extra);
}

/* Connects the guest to daemon pid: device started with the migration features, and the FUSE
 * INIT of a Linux 6.1 guest. */
static struct fc *attach(struct t_ctx *t, pid_t pid)
{
	struct fe_opts o = { .migration = true };
	int fd = t_connect_at(t, pid), r;
	struct fe_dev *d;

	r = fe_new(fd, &o, &t->dev);
	if (r < 0)
		t_fail(t, "frontend: %s", strerror(-r));
	d = t->dev;
	fc_setup(&t->fc, d);
	CHECK_FE(t, fe_start(d));
	CHECK(t, d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_DEVICE_STATE),
	      "DEVICE_STATE not offered (protocol features 0x%llx)", ull(d->dev_protocol));
	CHECK(t, d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD),
	      "LOG_SHMFD not offered (protocol features 0x%llx)", ull(d->dev_protocol));
	CHECK(t, d->dev_features & FE_BIT(VHOST_F_LOG_ALL),
	      "VHOST_F_LOG_ALL not offered (features 0x%llx)", ull(d->dev_features));
	CHECK_OK(t, fc_init(&t->fc));
	return &t->fc;
}

/* Hangs up on the current daemon; each of pids must then exit cleanly. */
static void finish(struct t_ctx *t, const pid_t *pids, int n)
{
	t_hang_up(t);
	for (int i = 0; i < n; i++)
		t_pid_finish(t, pids[i]);
}

/*
 * Stops the rings as QEMU does before a SAVE. Every chain the device took (GET_VRING_BASE
 * says how many) must be complete when it answers: vfsd waits for them (the Rust virtiofsd
 * may answer first, so for it they are waited for later). Chains published but not yet taken
 * stay in the ring for the destination, as the vhost-user protocol has it (a kick and the
 * stop race: vfsd's queue thread gives the stop priority).
 */
static void stop(struct t_ctx *t)
{
	struct fe_dev *d = t->dev;
	int left = fe_stop_rings(d), untaken = 0;

	CHECK(t, left >= 0, "GET_VRING_BASE: %s", fe_error(d));
	for (unsigned int q = 0; q < d->nqueues; q++) {
		uint16_t n = (uint16_t)(d->vq[q].avail_idx - d->stop_base[q]);

		CHECK(t, n <= d->vq[q].num,
		      "queue %u stopped at avail index %u, but the guest published up to %u", q,
		      d->stop_base[q], d->vq[q].avail_idx);
		untaken += n;
	}
	CHECK(t, left == untaken || (ut_rust && left > untaken),
	      "%d requests the device took are still in flight after GET_VRING_BASE was "
	      "answered",
	      left - untaken);
}

/* SAVE that must work. Over a pipe, the pipe holds one page and nobody reads it until a
 * vhost-user message was answered: a daemon that writes the state from its message loop
 * cannot answer, and fails here. */
static void save(struct t_ctx *t, bool use_socketpair, uint8_t **buf, size_t *len)
{
	struct fe_dev *d = t->dev;
	uint64_t res = 0, f;
	int p[2];

	if (use_socketpair) {
		CHECK_FE(t, fe_state_save(d, true, buf, len));
		CHECK(t, *len > 0, "SAVE gave an empty state");
		return;
	}
	CHECK(t, pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	fcntl(p[0], F_SETPIPE_SZ, 4096);
	CHECK_FE(t, fe_state_fd(d, FE_STATE_SAVE, FE_PHASE_STOPPED, p[1], false, &res));
	close(p[1]);
	CHECK(t, res == FE_STATE_NOFD, "SET_DEVICE_STATE_FD (SAVE) answered 0x%llx, expected 0x100",
	      ull(res));
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_FEATURES, &f));
	CHECK_FE(t, fe_read_all(d, p[0], buf, len, FE_TIMEOUT_MS));
	close(p[0]);
	CHECK_FE(t, fe_state_check(d, &res));
	CHECK(t, res == 0, "CHECK_DEVICE_STATE after SAVE: %llu", ull(res));
	CHECK(t, *len > 0, "SAVE gave an empty state");
}

/* Moves the guest to daemon pid (negotiation, memory, rings) without loading anything. */
static void reconnect(struct t_ctx *t, pid_t pid)
{
	CHECK_FE(t, fe_reconnect(t->dev, t_connect_at(t, pid), NULL));
}

/* Chains published before the stop that the source never took: the destination is kicked
 * for them once it has the state. */
static void kick_pending(struct t_ctx *t)
{
	for (unsigned int q = 0; q < t->dev->nqueues; q++)
		if (fe_inflight(t->dev, q))
			CHECK_FE(t, fe_kick_now(t->dev, q));
}

/*
 * Moves the guest to daemon pid and LOADs st there, which must work. In QEMU's order the
 * LOAD comes right after the negotiation and the rings start afterwards (QEMU loads the
 * device state with the incoming migration and starts the vhost device when the VM runs);
 * otherwise memory and rings are set up first, then the LOAD.
 */
static void move_to(struct t_ctx *t, pid_t pid, bool qemu_order, bool use_socketpair,
		    const uint8_t *st, size_t len)
{
	CHECK_FE(t, fe_reconnect_begin(t->dev, t_connect_at(t, pid), NULL));
	if (!qemu_order)
		CHECK_FE(t, fe_reconnect_rings(t->dev));
	CHECK(t, fe_state_load(t->dev, use_socketpair, st, len) == 0, "LOAD (%s order): %s",
	      qemu_order ? "QEMU's" : "rings first", fe_error(t->dev));
	if (qemu_order)
		CHECK_FE(t, fe_reconnect_rings(t->dev));
	kick_pending(t);
}

/* Dirty logging on, in QEMU's order: the log, then LOG_ALL, then the rings' LOG flag. */
static void log_on(struct t_ctx *t)
{
	CHECK_FE(t, fe_log_base(t->dev));
	CHECK_FE(t, fe_log_start(t->dev));
}

/* ---- data and host files ---- */

static void pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static void host_file(struct t_ctx *t, const char *rel, size_t size, uint32_t seed)
{
	uint8_t *b = malloc(size ? size : 1);

	CHECK(t, b, "out of memory");
	pattern(b, size, seed);
	t_write_file(t, rel, b, size);
	free(b);
}

static uint64_t host_ino(struct t_ctx *t, const char *rel)
{
	struct stat st;

	CHECK(t, lstat(t_path(t, rel), &st) == 0, "host: lstat %s: %s", rel, strerror(errno));
	return st.st_ino;
}

/* ---- a guest's state, kept to be checked on every daemon it moves to ---- */

#define MAX_NODES 512
#define DIR_NAMES 100

struct node {
	uint64_t id, ino, parent;
	uint32_t nlookup;
	char name[32];
};

struct guest {
	struct node nodes[MAX_NODES];
	int n;
	uint64_t rd, rd_fh;	   /* "rd", open for reading (RD_SIZE bytes, seed 1) */
	uint64_t wr, wr_fh;	   /* "wr", open for writing */
	uint8_t *wr_data;	   /* what "wr" must hold */
	size_t wr_len, wr_cap;
	uint64_t dir, dir_fh;	   /* "big" (DIR_NAMES files), half read */
	uint64_t dir_off;	   /* where READDIR continues */
	bool seen[DIR_NAMES + 2];  /* names listed so far (n000.., then "." and "..") */
	int hop;
};

#define RD_SIZE (64 * 1024)

static struct guest g;

static struct node *lookup_n(struct t_ctx *t, uint64_t parent, const char *name, int times)
{
	struct fuse_entry_out e;
	struct node *n;

	CHECK(t, g.n < MAX_NODES, "too many nodes");
	n = &g.nodes[g.n++];
	memset(n, 0, sizeof(*n));
	for (int i = 0; i < times; i++) {
		int r = fc_lookup(&t->fc, parent, name, &e);

		CHECK(t, r == 0, "LOOKUP %s: %s", name, fc_strerror(&t->fc, r));
		CHECK(t, i == 0 || e.nodeid == n->id, "LOOKUP %s again: node %llu, then %llu", name,
		      ull(n->id), ull(e.nodeid));
		n->id = e.nodeid;
		n->ino = e.attr.ino;
	}
	n->parent = parent;
	n->nlookup = (uint32_t)times;
	snprintf(n->name, sizeof(n->name), "%s", name);
	return n;
}

static struct node *find_node(const char *name)
{
	for (int i = 0; i < g.n; i++)
		if (strcmp(g.nodes[i].name, name) == 0)
			return &g.nodes[i];
	return NULL;
}

static void wr_append(struct t_ctx *t, size_t len, uint32_t seed)
{
	if (g.wr_len + len > g.wr_cap) {
		g.wr_cap = (g.wr_len + len) * 2;
		g.wr_data = realloc(g.wr_data, g.wr_cap);
		CHECK(t, g.wr_data, "out of memory");
	}
	pattern(g.wr_data + g.wr_len, len, seed);
	g.wr_len += len;
}

static void check_wr_on_host(struct t_ctx *t, const char *when)
{
	uint8_t *b = malloc(g.wr_len + 1);
	ssize_t n;

	CHECK(t, b, "out of memory");
	n = t_read_file(t, "wr", b, g.wr_len + 1);
	CHECK(t, n == (ssize_t)g.wr_len && memcmp(b, g.wr_data, g.wr_len) == 0,
	      "%s: the host file wr holds %zd bytes, %s the %zu written", when, n,
	      n == (ssize_t)g.wr_len ? "not" : "instead of", g.wr_len);
	free(b);
}

/* READDIR of the half-read directory from where it stopped: one call, or to the end. */
static struct {
	int dups;
	char dup[16];
} dirstat;

static void dir_record(const struct fuse_dirent *d, const struct fuse_entry_out *e, void *arg)
{
	int i = -1;

	(void)e;
	g.dir_off = d->off;
	++*(int *)arg;
	if (d->namelen == 1 && d->name[0] == '.')
		i = DIR_NAMES;
	else if (d->namelen == 2 && !memcmp(d->name, "..", 2))
		i = DIR_NAMES + 1;
	else if (d->namelen == 4 && d->name[0] == 'n')
		i = atoi(d->name + 1) % DIR_NAMES;
	if (i < 0)
		return;
	if (g.seen[i] && !dirstat.dups++)
		snprintf(dirstat.dup, sizeof(dirstat.dup), "%.*s", (int)d->namelen, d->name);
	g.seen[i] = true;
}

static int dir_step(struct t_ctx *t, size_t size, bool to_end)
{
	static uint8_t buf[8192];
	int total = 0;

	for (;;) {
		size_t n;
		int got = 0, r = fc_readdir(&t->fc, g.dir, g.dir_fh, g.dir_off, buf, size, &n);

		CHECK(t, r == 0, "READDIR of big at offset %llu: %s", ull(g.dir_off),
		      fc_strerror(&t->fc, r));
		CHECK(t, fc_dir_walk(buf, n, false, dir_record, &got) >= 0,
		      "READDIR of big: %zu bytes of malformed records", n);
		total += got;
		if (!to_end || n == 0)
			return total;
	}
}

static void check_dir_complete(struct t_ctx *t)
{
	CHECK(t, dirstat.dups == 0, "%d names listed twice across the migration (first: %s)",
	      dirstat.dups, dirstat.dup);
	for (int i = 0; i < DIR_NAMES; i++)
		CHECK(t, g.seen[i], "the listing of big never gave n%03d", i);
	CHECK(t, g.seen[DIR_NAMES] && g.seen[DIR_NAMES + 1],
	      "the listing of big never gave . or ..");
}

/*
 * On A: a tree of ndirs x nsubs x nfiles looked up (the first file of every directory twice),
 * rd open for reading, wr open for writing with a first write, big half read with READDIR.
 */
static void guest_build(struct t_ctx *t, int ndirs, int nsubs, int nfiles)
{
	struct fc *c = &t->fc;
	struct fuse_open_out o;
	uint8_t buf[4096], want[4096];
	size_t n;
	struct node *top;
	char name[16];

	memset(&g, 0, sizeof(g));
	top = lookup_n(t, FC_ROOT, "t", 1);
	for (int i = 0; i < ndirs; i++) {
		struct node *dn;

		snprintf(name, sizeof(name), "d%02d", i);
		dn = lookup_n(t, top->id, name, 1);
		for (int j = 0; j < nsubs; j++) {
			uint64_t dir = dn->id, sub;

			snprintf(name, sizeof(name), "s%d", j);
			sub = lookup_n(t, dir, name, 1)->id;
			for (int k = 0; k < nfiles; k++) {
				snprintf(name, sizeof(name), "f%d", k);
				lookup_n(t, sub, name, k == 0 ? 2 : 1);
			}
		}
	}
	g.rd = lookup_n(t, FC_ROOT, "rd", 1)->id;
	CHECK_OK(t, fc_open(c, g.rd, O_RDONLY, &o));
	g.rd_fh = o.fh;
	CHECK_OK(t, fc_read(c, g.rd, g.rd_fh, 0, buf, sizeof(buf), &n));
	pattern(want, sizeof(want), 1);
	CHECK(t, n == sizeof(buf) && memcmp(buf, want, n) == 0, "READ of rd on A is wrong");

	g.wr = lookup_n(t, FC_ROOT, "wr", 1)->id;
	CHECK_OK(t, fc_open(c, g.wr, O_WRONLY, &o));
	g.wr_fh = o.fh;
	wr_append(t, 4096, 100);
	CHECK_OK(t, fc_write(c, g.wr, g.wr_fh, 0, g.wr_data, 4096, &n));
	CHECK(t, n == 4096, "WRITE wrote %zu bytes", n);

	g.dir = lookup_n(t, FC_ROOT, "big", 1)->id;
	CHECK_OK(t, fc_opendir(c, g.dir, &o));
	g.dir_fh = o.fh;
	/* Small READDIRs (16 names each) up to about half of it. */
	for (int seen = 0; seen < (DIR_NAMES + 2) / 2;) {
		int got = dir_step(t, 512, false);

		CHECK(t, got > 0, "READDIR of big ended after %d names", seen);
		seen += got;
	}
}

/* Host side of guest_build. */
static void guest_files(struct t_ctx *t, int ndirs, int nsubs, int nfiles)
{
	char rel[64];

	t_mkdir(t, "t");
	for (int i = 0; i < ndirs; i++) {
		snprintf(rel, sizeof(rel), "t/d%02d", i);
		t_mkdir(t, rel);
		for (int j = 0; j < nsubs; j++) {
			snprintf(rel, sizeof(rel), "t/d%02d/s%d", i, j);
			t_mkdir(t, rel);
			for (int k = 0; k < nfiles; k++) {
				snprintf(rel, sizeof(rel), "t/d%02d/s%d/f%d", i, j, k);
				t_write_file(t, rel, rel, strlen(rel));
			}
		}
	}
	host_file(t, "rd", RD_SIZE, 1);
	t_write_file(t, "wr", "", 0);
	t_mkdir(t, "big");
	for (int i = 0; i < DIR_NAMES; i++) {
		snprintf(rel, sizeof(rel), "big/n%03d", i);
		t_write_file(t, rel, "", 0);
	}
}

/* After a move: every node id has its inode, the read handle reads, the write handle writes
 * where it is told, and the directory handle lists a few more names (to_end: the rest). */
static void guest_check(struct t_ctx *t, const char *where, bool dir_to_end)
{
	struct fc *c = &t->fc;
	static uint8_t all[RD_SIZE];
	uint8_t buf[4096];
	uint64_t off = (uint64_t)(++g.hop % (RD_SIZE / 4096)) * 4096;
	size_t n;
	int r;

	for (int i = 0; i < g.n; i++) {
		struct fuse_attr_out a;

		r = fc_getattr(c, g.nodes[i].id, &a);
		CHECK(t, r == 0, "%s: GETATTR of node %llu (%s): %s", where, ull(g.nodes[i].id),
		      g.nodes[i].name, fc_strerror(c, r));
		CHECK(t, a.attr.ino == g.nodes[i].ino, "%s: node %llu (%s) is inode %llu, was %llu",
		      where, ull(g.nodes[i].id), g.nodes[i].name, ull(a.attr.ino),
		      ull(g.nodes[i].ino));
	}
	r = fc_read(c, g.rd, g.rd_fh, off, buf, sizeof(buf), &n);
	CHECK(t, r == 0, "%s: READ of rd's handle %llu: %s", where, ull(g.rd_fh),
	      fc_strerror(c, r));
	pattern(all, sizeof(all), 1);
	CHECK(t, n == sizeof(buf) && memcmp(buf, all + off, n) == 0,
	      "%s: READ of rd at %llu gave %zu wrong bytes", where, ull(off), n);
	off = g.wr_len;
	wr_append(t, 4096, 200 + (uint32_t)g.hop);
	r = fc_write(c, g.wr, g.wr_fh, off, g.wr_data + off, 4096, &n);
	CHECK(t, r == 0 && n == 4096, "%s: WRITE of wr's handle %llu at %llu: %s, %zu bytes", where,
	      ull(g.wr_fh), ull(off), fc_strerror(c, r), n);
	check_wr_on_host(t, where);
	dir_step(t, 512, dir_to_end);
	if (dir_to_end)
		check_dir_complete(t);
}

/* One move of the guest: logging on (the source tracks from then on), rings stopped, SAVE,
 * the destination set up with no INIT, LOAD. from is hung up on and must exit cleanly. */
static void hop(struct t_ctx *t, pid_t from, pid_t to, bool use_socketpair)
{
	uint8_t *st;
	size_t len;

	log_on(t);
	stop(t);
	save(t, use_socketpair, &st, &len);
	move_to(t, to, true, use_socketpair, st, len);
	free(st);
	t_pid_finish(t, from);
}

/* ---- a. a live guest moved from A to B ---- */

#define LIVE_DIRS 10
#define LIVE_SUBS 3
#define LIVE_FILES 10
#define INFLIGHT 8
#define INFLIGHT_SIZE (16 * 1024)

static void migrate_live(struct t_ctx *t, bool use_socketpair)
{
	struct fuse_write_in win[INFLIGHT];
	struct fuse_write_out wout;
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	struct fc_req rq[INFLIGHT];
	struct fc *c;
	struct node *twice = NULL, *moved;
	uint8_t *st;
	size_t len, n;
	pid_t pa, pb;
	int r;

	begin(t);
	guest_files(t, LIVE_DIRS, LIVE_SUBS, LIVE_FILES);
	pa = start_ut(t, "A", NULL);
	pb = start_ut(t, "B", NULL);
	c = attach(t, pa);
	guest_build(t, LIVE_DIRS, LIVE_SUBS, LIVE_FILES);
	CHECK(t, g.n > 300, "only %d nodes", g.n);

	/* Migration starts; the guest runs on: a rename the state must follow. */
	log_on(t);
	moved = find_node("f1"); /* t/d00/s0/f1 */
	CHECK(t, moved, "no f1");
	CHECK_OK(t, fc_rename(c, moved->parent, "f1", moved->parent, "f1-renamed"));
	snprintf(moved->name, sizeof(moved->name), "f1-renamed");

	/* Writes in flight when the rings stop: those A took are done, their data on the host;
	 * those it did not take are done on B. */
	for (int i = 0; i < INFLIGHT; i++) {
		size_t at = g.wr_len;
		struct fc_arg in[2];

		wr_append(t, INFLIGHT_SIZE, 300 + (uint32_t)i);
		win[i] = (struct fuse_write_in){
			.fh = g.wr_fh, .offset = at, .size = INFLIGHT_SIZE, .flags = O_RDWR
		};
		in[0] = (struct fc_arg){ &win[i], sizeof(win[i]) };
		in[1] = (struct fc_arg){ g.wr_data + at, INFLIGHT_SIZE };
		CHECK_OK(t, fc_start(c, &rq[i], FUSE_WRITE, g.wr, in, 2, sizeof(wout)));
	}
	stop(t);
	for (int i = 0; i < INFLIGHT; i++) {
		if (!t->dev->vq[FE_REQUEST].slots[rq[i].head].done)
			continue; /* not taken before the stop: done on B */
		r = fc_finish(c, &rq[i], &wout, sizeof(wout), &n);
		CHECK(t, r == 0 && n == sizeof(wout) && wout.size == INFLIGHT_SIZE,
		      "WRITE %d in flight at the stop: %s, %u bytes written", i, fc_strerror(c, r),
		      wout.size);
		rq[i].head = UINT16_MAX;
	}
	if (c->inflight == 0)
		check_wr_on_host(t, "after the stop");

	/* Over the pipe the rings are set up before the LOAD; over the socketpair in QEMU's
	 * order. Chains the source never took need QEMU's order: a destination may take them
	 * as soon as its rings start (the Rust virtiofsd does), and must have the state then. */
	save(t, use_socketpair, &st, &len);
	move_to(t, pb, use_socketpair || c->inflight > 0, use_socketpair, st, len);
	free(st);
	t_pid_finish(t, pa);
	for (int i = 0; i < INFLIGHT; i++) {
		if (rq[i].head == UINT16_MAX)
			continue;
		r = fc_finish(c, &rq[i], &wout, sizeof(wout), &n);
		CHECK(t, r == 0 && wout.size == INFLIGHT_SIZE,
		      "WRITE %d published before the stop, done on B: %s", i, fc_strerror(c, r));
	}

	guest_check(t, "on B", true);
	/* The renamed file under its new name is the same node. */
	CHECK_OK(t, fc_lookup(c, moved->parent, "f1-renamed", &e));
	CHECK(t, e.nodeid == moved->id, "f1-renamed is node %llu on B, was %llu", ull(e.nodeid),
	      ull(moved->id));
	moved->nlookup++;

	/* Lookup counts came along: a node looked up twice survives one FORGET. */
	for (int i = 0; i < g.n && !twice; i++)
		if (g.nodes[i].nlookup == 2 && i > 20)
			twice = &g.nodes[i];
	CHECK(t, twice, "no node looked up twice");
	CHECK_OK(t, fc_forget(c, twice->id, 1));
	r = fc_getattr(c, twice->id, &a);
	CHECK(t, r == 0, "node %llu (looked up twice on A) after one FORGET on B: %s",
	      ull(twice->id), fc_strerror(c, r));
	CHECK_OK(t, fc_forget(c, twice->id, 1));
	CHECK_OK(t, fc_lookup(c, twice->parent, twice->name, &e));
	CHECK(t, e.attr.ino == twice->ino, "LOOKUP %s after its FORGETs: inode %llu, was %llu",
	      twice->name, ull(e.attr.ino), ull(twice->ino));

	/* New objects get ids that clash with nothing the guest holds. */
	CHECK_OK(t, fc_create(c, FC_ROOT, "after-move", O_RDWR | O_CREAT, 0644, &e, &o));
	for (int i = 0; i < g.n; i++)
		CHECK(t, e.nodeid != g.nodes[i].id || &g.nodes[i] == twice,
		      "CREATE on B got node %llu, which is %s's", ull(e.nodeid), g.nodes[i].name);
	CHECK(t, o.fh != g.rd_fh && o.fh != g.wr_fh && o.fh != g.dir_fh,
	      "CREATE on B got handle %llu, which the guest already holds", ull(o.fh));
	CHECK_OK(t, fc_write(c, e.nodeid, o.fh, 0, "new", 3, &n));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK(t, t_read_file(t, "after-move", (char[8]){ 0 }, 8) == 3,
	      "after-move is not on the host");
	CHECK_OK(t, fc_release(c, g.rd, g.rd_fh));
	CHECK_OK(t, fc_release(c, g.wr, g.wr_fh));
	CHECK_OK(t, fc_releasedir(c, g.dir, g.dir_fh));
	finish(t, &pb, 1);
}

static void test_migrate_live_pipe(struct t_ctx *t)
{
	migrate_live(t, false);
}

static void test_migrate_live_socketpair(struct t_ctx *t)
{
	migrate_live(t, true);
}

/* ---- b. the dirty log against a shadow of guest memory ---- */

#define RAW_BUFS 20
#define READ_PIECES 16

/* A request built by hand, so that everything the frontend writes is written before the
 * shadow is taken: afterwards only the device writes guest memory (and the frontend its
 * descriptor table and avail ring, which the comparison leaves out). */
struct raw {
	struct fe_buf bufs[RAW_BUFS];
	int n;
	uint64_t unique, out_hdr; /* out_hdr 0: a request with no reply (FORGET) */
	uint16_t head;
	unsigned int queue;
	const char *what;
};

static int region_of(const struct fe_dev *d, uint64_t gpa)
{
	for (int i = 0; i < d->nregions; i++)
		if (gpa >= d->regions[i].gpa && gpa - d->regions[i].gpa < d->regions[i].size)
			return i;
	return 0;
}

static void raw_prepare(struct t_ctx *t, struct raw *q, const char *what, uint32_t opcode,
			uint64_t nodeid, const void *arg, size_t arglen, const char *name,
			size_t outcap, int pieces)
{
	struct fe_dev *d = t->dev;
	size_t namelen = name ? strlen(name) + 1 : 0;
	uint8_t in[sizeof(struct fuse_in_header) + 64 + 256];
	struct fuse_in_header h = { .len = (uint32_t)(sizeof(h) + arglen + namelen),
				    .opcode = opcode,
				    .unique = t->fc.next_unique,
				    .nodeid = nodeid };
	uint64_t gpa;

	t->fc.next_unique += 2;
	memset(q, 0, sizeof(*q));
	q->what = what;
	q->unique = h.unique;
	memcpy(in, &h, sizeof(h));
	memcpy(in + sizeof(h), arg, arglen);
	if (name)
		memcpy(in + sizeof(h) + arglen, name, namelen);
	gpa = fe_put(d, in, h.len);
	CHECK(t, gpa, "guest memory: %s", fe_error(d));
	q->bufs[q->n++] = (struct fe_buf){ .gpa = gpa, .len = h.len };
	q->queue = opcode == FUSE_FORGET ? FE_HIPRIO : FE_REQUEST;
	if (opcode == FUSE_FORGET)
		return;
	q->out_hdr = fe_alloc_any(d, sizeof(struct fuse_out_header));
	CHECK(t, q->out_hdr, "guest memory: %s", fe_error(d));
	memset(fe_ptr(d, q->out_hdr, sizeof(struct fuse_out_header)), 0xee,
	       sizeof(struct fuse_out_header));
	q->bufs[q->n++] = (struct fe_buf){ .gpa = q->out_hdr,
					   .len = sizeof(struct fuse_out_header),
					   .write = true };
	for (int i = 0; i < pieces; i++) {
		uint32_t len = (uint32_t)(outcap / (size_t)pieces);

		/* Pieces in both regions in turn, a gap after each. */
		gpa = fe_alloc_any(d, len);
		CHECK(t, gpa && fe_alloc(d, region_of(d, gpa), 8192, 8), "guest memory: %s",
		      fe_error(d));
		memset(fe_ptr(d, gpa, len), 0xee, len);
		q->bufs[q->n++] = (struct fe_buf){ .gpa = gpa, .len = len, .write = true };
	}
}

/* The page holding gpa belongs to a descriptor table or an avail ring. */
static bool driver_page(const struct fe_dev *d, uint64_t page)
{
	for (unsigned int q = 0; q < d->nqueues; q++) {
		const struct fe_vring *vq = &d->vq[q];
		uint64_t ranges[2][2] = { { vq->desc_gpa, vq->desc_gpa + 16ull * vq->num },
					  { vq->avail_gpa, vq->avail_gpa + 6 + 2ull * vq->num } };

		for (int i = 0; i < 2; i++)
			if (page + FE_LOG_PAGE > ranges[i][0] && page < ranges[i][1])
				return true;
	}
	return false;
}

#define DL_LOOKUPS 20
#define DL_READS 3
#define DL_NAMES 50

static void test_dirty_log(struct t_ctx *t)
{
	struct raw rq[DL_LOOKUPS + DL_READS + 2];
	struct fuse_open_out o;
	struct fe_mark mark;
	struct fe_dev *d;
	struct fc *c;
	uint8_t *shadow[FE_MAX_REGIONS];
	uint64_t file, fh, dir, dfh, forgotten, pages = 0, changed = 0, used_page;
	char name[16];
	int nreq = 0;
	pid_t pa;

	begin(t);
	host_file(t, "big", 4 * MIB, 7);
	t_mkdir(t, "dd");
	for (int i = 0; i < DL_NAMES; i++) {
		snprintf(name, sizeof(name), "dd/entry-%02d", i);
		t_write_file(t, name, "", 0);
	}
	for (int i = 0; i < DL_LOOKUPS; i++) {
		snprintf(name, sizeof(name), "l%02d", i);
		t_write_file(t, name, name, 3);
	}
	pa = start_ut(t, "A", NULL);
	c = attach(t, pa);
	d = t->dev;
	file = lookup_n(t, FC_ROOT, "big", 1)->id;
	CHECK_OK(t, fc_open(c, file, O_RDONLY, &o));
	fh = o.fh;
	dir = lookup_n(t, FC_ROOT, "dd", 1)->id;
	CHECK_OK(t, fc_opendir(c, dir, &o));
	dfh = o.fh;
	forgotten = lookup_n(t, FC_ROOT, "l00", 1)->id;

	CHECK_FE(t, fe_log_base(d));
	/* The Rust virtiofsd has no SET_LOG_FD (its library drops the connection on it). */
	if (!ut_rust)
		CHECK_FE(t, fe_log_fd(d));
	CHECK_FE(t, fe_log_start(d));

	fe_mark(d, &mark);
	for (int i = 0; i < DL_LOOKUPS; i++) {
		snprintf(name, sizeof(name), "l%02d", i);
		raw_prepare(t, &rq[nreq++], "LOOKUP", FUSE_LOOKUP, FC_ROOT, NULL, 0, name,
			    sizeof(struct fuse_entry_out), 1);
	}
	for (int i = 0; i < DL_READS; i++) {
		struct fuse_read_in in = { .fh = fh, .offset = (uint64_t)i * MIB, .size = MIB };

		raw_prepare(t, &rq[nreq++], "READ", FUSE_READ, file, &in, sizeof(in), NULL, MIB,
			    READ_PIECES);
	}
	{
		struct fuse_read_in in = { .fh = dfh, .size = 4096 };

		raw_prepare(t, &rq[nreq++], "READDIR", FUSE_READDIR, dir, &in, sizeof(in), NULL,
			    4096, 2);
	}
	{
		/* On the hiprio queue: its used ring's page holds nothing else, so only the log
		 * of the used ring can mark it. */
		struct fuse_forget_in in = { .nlookup = 1 };

		raw_prepare(t, &rq[nreq++], "FORGET", FUSE_FORGET, forgotten, &in, sizeof(in),
			    NULL, 0, 0);
	}

	/* Shadow, then let the device run. */
	fe_log_clear(d);
	for (int i = 0; i < d->nregions; i++) {
		shadow[i] = malloc(d->regions[i].size);
		CHECK(t, shadow[i], "out of memory");
		memcpy(shadow[i], d->regions[i].host, d->regions[i].size);
	}
	for (int i = 0; i < nreq; i++)
		CHECK_FE(t, fe_add(d, rq[i].queue, rq[i].bufs, rq[i].n, FE_DIRECT, &rq[i].head));
	CHECK_FE(t, fe_kick(d, FE_REQUEST));
	CHECK_FE(t, fe_kick(d, FE_HIPRIO));
	for (int i = 0; i < nreq; i++) {
		struct fuse_out_header oh;
		uint32_t used;

		CHECK_FE(t, fe_wait(d, rq[i].queue, rq[i].head, FE_TIMEOUT_MS, &used));
		if (!rq[i].out_hdr) {
			CHECK(t, used == 0, "%s: used length %u", rq[i].what, used);
			continue;
		}
		memcpy(&oh, fe_ptr(d, rq[i].out_hdr, sizeof(oh)), sizeof(oh));
		CHECK(t, oh.unique == rq[i].unique && oh.error == 0 && oh.len == used && used > 16,
		      "%s %d: unique %llu, error %d, len %u, used %u", rq[i].what, i,
		      ull(oh.unique), oh.error, oh.len, used);
	}

	/* Every page the device changed is marked. */
	for (int i = 0; i < d->nregions; i++) {
		struct fe_region *reg = &d->regions[i];

		for (uint64_t off = 0; off < reg->size; off += FE_LOG_PAGE) {
			uint64_t gpa = reg->gpa + off;

			pages++;
			if (!memcmp(shadow[i] + off, reg->host + off, FE_LOG_PAGE) ||
			    driver_page(d, gpa))
				continue;
			changed++;
			CHECK(t, fe_log_dirty(d, gpa),
			      "page at gpa 0x%llx changed but is not marked in the log (%llu pages "
			      "marked)",
			      ull(gpa), ull(fe_log_count(d)));
		}
	}
	CHECK(t, changed > DL_READS * (MIB / FE_LOG_PAGE) - DL_READS * READ_PIECES,
	      "only %llu pages changed: the READs did not land", ull(changed));
	used_page = d->vq[FE_HIPRIO].used_gpa & ~(uint64_t)(FE_LOG_PAGE - 1);
	CHECK(t, used_page + FE_LOG_PAGE <= d->vq[FE_REQUEST].desc_gpa &&
		      used_page + FE_LOG_PAGE <= d->regions[0].base,
	      "the hiprio used ring shares its page");
	CHECK(t, memcmp(shadow[0] + used_page, d->regions[0].host + used_page, FE_LOG_PAGE),
	      "the hiprio used ring did not change");
	CHECK(t, fe_log_dirty(d, used_page),
	      "the hiprio used ring's page (gpa 0x%llx) is not marked", ull(used_page));
	/* Not a log of all ones: an untouched page, and the hole between the regions, stay
	 * clear. */
	{
		struct fe_region *last = &d->regions[d->nregions - 1];
		uint64_t gpa = last->gpa + last->size - FE_LOG_PAGE;

		CHECK(t, !memcmp(shadow[d->nregions - 1] + last->size - FE_LOG_PAGE,
				 last->host + last->size - FE_LOG_PAGE, FE_LOG_PAGE),
		      "the last page was written");
		CHECK(t, !fe_log_dirty(d, gpa), "untouched page at gpa 0x%llx is marked",
		      ull(gpa));
		CHECK(t, !fe_log_dirty(d, 2ull << 30), "gpa 2 GiB (no memory there) is marked");
		CHECK(t, fe_log_count(d) < pages / 2, "%llu of %llu pages marked",
		      ull(fe_log_count(d)), ull(pages));
	}
	if (!ut_rust)
		CHECK(t, fe_log_notified(d, FE_TIMEOUT_MS) == 1,
		      "the SET_LOG_FD eventfd was not written after the log was marked");
	for (int i = 0; i < d->nregions; i++)
		free(shadow[i]);
	fe_release(d, &mark);

	/* Logging off, and the device still serves. */
	CHECK_FE(t, fe_log_stop(d));
	t_still_serving(t, c);
	finish(t, &pa, 1);
}

/* ---- c. a snapshot: SAVE with no LOG_ALL ever set ---- */

static void test_save_without_log_all(struct t_ctx *t)
{
	pid_t pa, pb;
	uint8_t *st;
	size_t len;

	begin(t);
	guest_files(t, 2, 2, 3);
	pa = start_ut(t, "A", NULL);
	pb = start_ut(t, "B", NULL);
	attach(t, pa);
	guest_build(t, 2, 2, 3);
	stop(t);
	CHECK(t, !(t->dev->features & FE_BIT(VHOST_F_LOG_ALL)) && !t->dev->log.map,
	      "logging was set up");
	save(t, false, &st, &len);
	move_to(t, pb, true, false, st, len);
	free(st);
	t_pid_finish(t, pa);
	guest_check(t, "on B", true);
	finish(t, &pb, 1);
}

/*
 * A source whose fd budget is far smaller than what the guest looked up (--rlimit-nofile=800
 * leaves 190 fds): most of its inodes gave their fd back (docs/fd-cache.md) and are opened
 * again for the save; the destination has the same budget, so the inodes it places must be
 * able to give theirs back too, which needs their name records (parents placed first).
 */
static void evicted_move(struct t_ctx *t, const char *format)
{
	const char *const args[] = { "--rlimit-nofile=800", "--thread-pool-size=0",
				     "--inode-file-handles=never", format, NULL };
	pid_t pa, pb;

	begin(t);
	guest_files(t, LIVE_DIRS, LIVE_SUBS, LIVE_FILES);
	pa = start_ut(t, "A", args);
	pb = start_ut(t, "B", args);
	attach(t, pa);
	guest_build(t, LIVE_DIRS, LIVE_SUBS, LIVE_FILES);
	CHECK(t, g.n > 300, "only %d nodes, not more than the 190 fds", g.n);
	guest_check(t, "on A", false);
	hop(t, pa, pb, false);
	guest_check(t, "on B", false);
	guest_check(t, "on B again", true);
	finish(t, &pb, 1);
}

static void test_evicted_move(struct t_ctx *t)
{
	evicted_move(t, "--migration-format=vfsd");
}

static void test_evicted_move_virtiofsd_format(struct t_ctx *t)
{
	evicted_move(t, "--migration-format=virtiofsd");
}

/* Chains in the ring beyond the index GET_VRING_BASE gave (published and kicked after the
 * stop): the stopped source leaves them alone, the destination takes them once it has the
 * state, and answers with A's node ids. */
#define UNTAKEN 3

static void test_untaken_chains(struct t_ctx *t)
{
	struct raw rq[UNTAKEN];
	struct node x;
	pid_t pa, pb;
	uint8_t *st;
	size_t len;

	begin(t);
	t_mkdir(t, "x");
	pa = start_ut(t, "A", NULL);
	pb = start_ut(t, "B", NULL);
	attach(t, pa);
	x = *lookup_n(t, FC_ROOT, "x", 1);
	stop(t);
	for (int i = 0; i < UNTAKEN; i++) {
		raw_prepare(t, &rq[i], "LOOKUP", FUSE_LOOKUP, FC_ROOT, NULL, 0, "x",
			    sizeof(struct fuse_entry_out), 1);
		CHECK_FE(t, fe_add(t->dev, FE_REQUEST, rq[i].bufs, rq[i].n, FE_DIRECT,
				   &rq[i].head));
	}
	CHECK_FE(t, fe_kick_now(t->dev, FE_REQUEST));
	save(t, false, &st, &len);
	/* The SAVE's answers came after the kick: a source still serving would have pushed. */
	CHECK(t,
	      fe_poll_used(t->dev, FE_REQUEST) == 0 &&
		      fe_inflight(t->dev, FE_REQUEST) == UNTAKEN,
	      "the stopped source took chains beyond the index it gave (%u of %d left)",
	      fe_inflight(t->dev, FE_REQUEST), UNTAKEN);
	move_to(t, pb, true, false, st, len);
	free(st);
	t_pid_finish(t, pa);
	for (int i = 0; i < UNTAKEN; i++) {
		struct fuse_out_header oh;
		struct fuse_entry_out e;
		uint32_t used;

		CHECK_FE(t, fe_wait(t->dev, FE_REQUEST, rq[i].head, FE_TIMEOUT_MS, &used));
		memcpy(&oh, fe_ptr(t->dev, rq[i].out_hdr, sizeof(oh)), sizeof(oh));
		memcpy(&e, fe_ptr(t->dev, rq[i].bufs[2].gpa, sizeof(e)), sizeof(e));
		CHECK(t,
		      oh.unique == rq[i].unique && oh.error == 0 &&
			      used == sizeof(oh) + sizeof(e),
		      "LOOKUP %d done on B: unique %llu, error %d, used %u", i, ull(oh.unique),
		      oh.error, used);
		CHECK(t, e.nodeid == x.id, "LOOKUP of x on B: node %llu, A gave %llu",
		      ull(e.nodeid), ull(x.id));
	}
	t_still_serving(t, &t->fc);
	finish(t, &pb, 1);
}

/* ---- d-f, h. the host changes between SAVE and LOAD ---- */

enum change { RENAMED, DELETED, REPLACED };

static const char *const change_name[] = { "renamed", "deleted", "replaced" };

#define VICTIM_SIZE 100
#define HOST_CHANGE_PADS 70
#define REPLACED_SIZE 333

/*
 * victim is looked up on A, bystander looked up and open for reading; the state is saved
 * (st1), then once more after the guest forgot victim (st2, valid whatever the host does to
 * victim). Then the host changes victim, and B loads st1.
 */
static void host_change(struct t_ctx *t, enum change ch, bool guest_error, bool verify)
{
	const char *onerr = guest_error ? "--migration-on-error=guest-error" :
					  "--migration-on-error=abort";
	bool fails = !guest_error && (ch != REPLACED || verify);
	bool eio = guest_error && (ch != REPLACED || verify);
	struct fuse_attr_out a;
	struct fuse_open_out o;
	struct node victim, by;
	struct fc *c;
	uint8_t *st1, *st2, buf[64];
	char id[24], hex[24];
	size_t len1, len2, n;
	long logpos;
	pid_t pa, pb;
	int r;

	begin(t);
	host_file(t, "victim", VICTIM_SIZE, 5);
	host_file(t, "bystander", 50, 6);
	for (int k = 0; k < HOST_CHANGE_PADS; k++) {
		snprintf(id, sizeof(id), "pad%02d", k);
		host_file(t, id, 10, 7);
	}
	pa = start_ut(t, "A", verify ? ARGS("--migration-verify-handles") : NULL);
	pb = start_ut(t, "B", ARGS(onerr));
	c = attach(t, pa);
	/* Looked up first, so that a failing LOAD has placed them all (past the first 64
	 * slots) before it meets victim: what it placed must leave the tables cleanly. */
	for (int k = 0; k < HOST_CHANGE_PADS; k++) {
		snprintf(id, sizeof(id), "pad%02d", k);
		lookup_n(t, FC_ROOT, id, 1);
	}
	victim = *lookup_n(t, FC_ROOT, "victim", 1);
	by = *lookup_n(t, FC_ROOT, "bystander", 1);
	CHECK_OK(t, fc_open(c, by.id, O_RDONLY, &o));
	stop(t);
	save(t, false, &st1, &len1);
	/* The source resumes, the guest forgets victim, the source stops again. */
	CHECK_FE(t, fe_resume_rings(t->dev));
	t_still_serving(t, c);
	CHECK_OK(t, fc_forget(c, victim.id, 1));
	stop(t);
	save(t, false, &st2, &len2);

	switch (ch) {
	case RENAMED:
		CHECK(t, rename(t_path(t, "victim"), t_path(t, "victim-moved")) == 0, "rename: %s",
		      strerror(errno));
		break;
	case DELETED:
		CHECK(t, unlink(t_path(t, "victim")) == 0, "unlink: %s", strerror(errno));
		break;
	case REPLACED:
		CHECK(t, unlink(t_path(t, "victim")) == 0, "unlink: %s", strerror(errno));
		host_file(t, "victim", REPLACED_SIZE, 9);
		break;
	}
	reconnect(t, pb);
	logpos = t_pid_log_size(t, pb);
	r = fe_state_load(t->dev, false, st1, len1);
	if (fails) {
		CHECK(t, r == FE_ECHECK,
		      "LOAD with victim %s on the host (%s): %s, expected CHECK_DEVICE_STATE to "
		      "fail",
		      change_name[ch], onerr, r == 0 ? "it worked" : fe_error(t->dev));
		CHECK(t, t_pid_alive(t, pb), "B ended after the failed LOAD (%s)",
		      t_pid_status(t, pb));
		/* B's log says which object failed: by name, or by node id as the Rust
		 * virtiofsd does ("Inode 2: ..."). */
		snprintf(id, sizeof(id), "%llu", ull(victim.id));
		snprintf(hex, sizeof(hex), "%llx", ull(victim.id));
		CHECK(t,
		      t_pid_log_has(t, pb, logpos, "victim") || t_pid_log_has(t, pb, logpos, id) ||
			      t_pid_log_has(t, pb, logpos, hex),
		      "B's log names neither victim nor its node %s after the failed LOAD", id);
		CHECK_FE(t, fe_state_load(t->dev, false, st2, len2));
	} else {
		CHECK(t, r == 0, "LOAD with victim %s on the host (%s): %s", change_name[ch], onerr,
		      fe_error(t->dev));
	}
	t_pid_finish(t, pa);

	r = fc_getattr(c, by.id, &a);
	CHECK(t, r == 0 && a.attr.ino == by.ino, "bystander on B: %s, inode %llu (was %llu)",
	      fc_strerror(c, r), ull(a.attr.ino), ull(by.ino));
	CHECK_OK(t, fc_read(c, by.id, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 50, "READ of bystander's handle on B: %zu bytes", n);
	r = fc_getattr(c, victim.id, &a);
	if (fails) {
		CHECK(t, r != 0, "victim's node, which the loaded state no longer has, answers");
	} else if (eio) {
		CHECK(t, r == -EIO, "victim %s on the host, GETATTR of its node with %s: %s, "
				    "expected EIO",
		      change_name[ch], onerr, fc_strerror(c, r));
		r = fc_open(c, victim.id, O_RDONLY, &o);
		CHECK(t, r == -EIO, "OPEN of the lost node: %s, expected EIO", fc_strerror(c, r));
	} else {
		/* Replaced without --migration-verify-handles: B serves whatever the name now
		 * holds, as the Rust virtiofsd does (the reference's documented risk). */
		CHECK(t, r == 0, "GETATTR of victim's node: %s", fc_strerror(c, r));
		CHECK(t, a.attr.size == REPLACED_SIZE && a.attr.ino == host_ino(t, "victim"),
		      "victim's node on B: size %llu inode %llu, expected the new file (%u bytes, "
		      "inode %llu)",
		      ull(a.attr.size), ull(a.attr.ino), REPLACED_SIZE, ull(host_ino(t, "victim")));
	}
	t_still_serving(t, c);
	free(st1);
	free(st2);
	finish(t, &pb, 1);
}

static void test_renamed_abort(struct t_ctx *t)
{
	host_change(t, RENAMED, false, false);
}

static void test_renamed_guest_error(struct t_ctx *t)
{
	host_change(t, RENAMED, true, false);
}

static void test_deleted_abort(struct t_ctx *t)
{
	host_change(t, DELETED, false, false);
}

static void test_deleted_guest_error(struct t_ctx *t)
{
	host_change(t, DELETED, true, false);
}

static void test_replaced_verify_abort(struct t_ctx *t)
{
	host_change(t, REPLACED, false, true);
}

static void test_replaced_verify_guest_error(struct t_ctx *t)
{
	host_change(t, REPLACED, true, true);
}

static void test_replaced_no_verify(struct t_ctx *t)
{
	host_change(t, REPLACED, false, false);
}

/* With file handles, a file renamed on the host (even to another directory) is still found. */
static void test_file_handles_mode(struct t_ctx *t)
{
	struct fuse_attr_out a;
	struct fuse_open_out o;
	struct node dir, victim;
	uint8_t buf[VICTIM_SIZE], want[VICTIM_SIZE];
	struct fc *c;
	pid_t pa, pb;
	uint8_t *st;
	size_t len, n;

	begin(t);
	t_mkdir(t, "hd");
	t_mkdir(t, "other");
	host_file(t, "hd/victim", VICTIM_SIZE, 5);
	pattern(want, sizeof(want), 5);
	pa = start_ut(t, "A", ARGS("--migration-mode=file-handles"));
	pb = start_ut(t, "B", ARGS("--migration-mode=file-handles"));
	c = attach(t, pa);
	dir = *lookup_n(t, FC_ROOT, "hd", 1);
	victim = *lookup_n(t, dir.id, "victim", 1);
	CHECK_OK(t, fc_open(c, victim.id, O_RDONLY, &o));
	log_on(t);
	stop(t);
	save(t, false, &st, &len);
	CHECK(t, rename(t_path(t, "hd/victim"), t_path(t, "other/moved")) == 0, "rename: %s",
	      strerror(errno));
	move_to(t, pb, false, true, st, len);
	free(st);
	t_pid_finish(t, pa);
	CHECK_OK(t, fc_getattr(c, victim.id, &a));
	CHECK(t, a.attr.ino == victim.ino, "the renamed file's node is inode %llu, was %llu",
	      ull(a.attr.ino), ull(victim.ino));
	CHECK_OK(t, fc_read(c, victim.id, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == sizeof(buf) && !memcmp(buf, want, n), "READ of its handle: %zu bytes", n);
	CHECK_OK(t, fc_open(c, victim.id, O_RDONLY, &o));
	CHECK_OK(t, fc_read(c, victim.id, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == sizeof(buf) && !memcmp(buf, want, n), "READ of a new handle: %zu bytes", n);
	CHECK_OK(t, fc_getattr(c, dir.id, &a));
	finish(t, &pb, 1);
}

/* h. --migration-confirm-paths: a file deleted on the host before the SAVE. */
static void confirm_paths(struct t_ctx *t, bool confirm)
{
	struct fuse_attr_out a;
	struct fuse_open_out o;
	struct node gone, by;
	uint8_t *st, buf[64];
	struct fc *c;
	pid_t pa, pb = 0;
	size_t len, n;
	int r;

	begin(t);
	host_file(t, "gone", 10, 3);
	host_file(t, "bystander", 50, 6);
	pa = start_ut(t, "A", confirm ? ARGS("--migration-confirm-paths") : NULL);
	if (!confirm)
		pb = start_ut(t, "B", ARGS("--migration-on-error=guest-error"));
	c = attach(t, pa);
	gone = *lookup_n(t, FC_ROOT, "gone", 1);
	by = *lookup_n(t, FC_ROOT, "bystander", 1);
	CHECK_OK(t, fc_open(c, by.id, O_RDONLY, &o));
	/* Deleted once the migration started: the path the source may have noted is stale.
	 * (Deleted before, virtiofsd 1.14 finds no path at all and sends the inode as invalid
	 * even with the option.) */
	log_on(t);
	CHECK(t, unlink(t_path(t, "gone")) == 0, "unlink: %s", strerror(errno));
	stop(t);
	r = fe_state_save(t->dev, false, &st, &len);
	if (confirm) {
		CHECK(t, r == FE_ECHECK,
		      "SAVE with a deleted file and --migration-confirm-paths: %s, expected "
		      "CHECK_DEVICE_STATE to fail",
		      r == 0 ? "it worked" : fe_error(t->dev));
		free(st);
		/* The migration is off: the source goes on serving the guest. */
		CHECK_FE(t, fe_resume_rings(t->dev));
		t_still_serving(t, c);
		CHECK_OK(t, fc_read(c, by.id, o.fh, 0, buf, sizeof(buf), &n));
		CHECK(t, n == 50, "READ on A after the failed SAVE: %zu bytes", n);
		finish(t, &pa, 1);
		return;
	}
	CHECK(t, r == 0, "SAVE with a deleted file (no --migration-confirm-paths): %s",
	      fe_error(t->dev));
	move_to(t, pb, true, false, st, len);
	free(st);
	t_pid_finish(t, pa);
	r = fc_getattr(c, gone.id, &a);
	CHECK(t, r == -EIO, "the deleted file's node on B: %s, expected EIO (sent as invalid)",
	      fc_strerror(c, r));
	CHECK_OK(t, fc_getattr(c, by.id, &a));
	CHECK_OK(t, fc_read(c, by.id, o.fh, 0, buf, sizeof(buf), &n));
	CHECK(t, n == 50, "READ on B: %zu bytes", n);
	finish(t, &pb, 1);
}

static void test_confirm_paths(struct t_ctx *t)
{
	begin(t);
	if (ut_rust)
		t_skip(t, "virtiofsd 1.14 sends an inode it cannot find as invalid even with "
			  "--migration-confirm-paths (\"marking as invalid\"); vfsd fails the "
			  "SAVE");
	confirm_paths(t, true);
}

/* A file renamed on the host once the migration started: with --migration-confirm-paths the
 * source corrects the path at SAVE (vfsd finds paths at SAVE anyway), and B finds it. */
static void test_confirm_paths_renamed(struct t_ctx *t)
{
	struct fuse_attr_out a;
	struct node moved;
	uint8_t *st;
	size_t len;
	pid_t pa, pb;

	begin(t);
	t_mkdir(t, "d1");
	t_mkdir(t, "d2");
	host_file(t, "d1/moved", 10, 3);
	pa = start_ut(t, "A", ARGS("--migration-confirm-paths"));
	pb = start_ut(t, "B", ARGS("--migration-on-error=abort"));
	attach(t, pa);
	lookup_n(t, FC_ROOT, "d1", 1);
	moved = *lookup_n(t, g.nodes[0].id, "moved", 1);
	lookup_n(t, FC_ROOT, "d2", 1);
	log_on(t);
	CHECK(t, rename(t_path(t, "d1/moved"), t_path(t, "d2/renamed")) == 0, "rename: %s",
	      strerror(errno));
	stop(t);
	save(t, false, &st, &len);
	move_to(t, pb, true, false, st, len);
	free(st);
	t_pid_finish(t, pa);
	CHECK_OK(t, fc_getattr(&t->fc, moved.id, &a));
	CHECK(t, a.attr.ino == moved.ino, "the renamed file's node is inode %llu on B, was %llu",
	      ull(a.attr.ino), ull(moved.ino));
	finish(t, &pb, 1);
}

static void test_no_confirm_paths(struct t_ctx *t)
{
	confirm_paths(t, false);
}

/* ---- g. streams the destination must refuse ---- */

static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = ~0u;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

/* The stream with the next version: vfsd's (major + 1, checksum made right again) or the
 * Rust virtiofsd's (top-level variant 2, after its V1 and V2). */
static uint8_t *future_version(const uint8_t *st, size_t len)
{
	uint8_t *f = malloc(len);

	if (!f)
		return NULL;
	memcpy(f, st, len);
	if (len >= 20 && !memcmp(st, "VFSDSTAT", 8)) {
		uint32_t crc;

		f[8]++;
		crc = crc32c(f, len - 4);
		for (int i = 0; i < 4; i++)
			f[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
	} else if (len > 0) {
		f[0] = 2;
	}
	return f;
}

static void test_corrupt_stream(struct t_ctx *t)
{
	struct node nodes[3];
	uint8_t *st, *bad, rnd[4096];
	size_t len;
	pid_t pa, pb;
	struct fc *c;

	begin(t);
	t_mkdir(t, "x");
	host_file(t, "x/a", 10, 1);
	host_file(t, "x/b", 10, 2);
	pa = start_ut(t, "A", NULL);
	pb = start_ut(t, "B", NULL);
	c = attach(t, pa);
	nodes[0] = *lookup_n(t, FC_ROOT, "x", 1);
	nodes[1] = *lookup_n(t, nodes[0].id, "a", 1);
	nodes[2] = *lookup_n(t, nodes[0].id, "b", 1);
	stop(t);
	save(t, false, &st, &len);
	reconnect(t, pb);
	bad = malloc(len);
	CHECK(t, bad, "out of memory");
	pattern(rnd, sizeof(rnd), 42);

	struct {
		const char *what;
		const uint8_t *p;
		size_t len;
		size_t flip; /* SIZE_MAX: none */
	} bads[] = {
		{ "a flipped byte in the middle", st, len, len / 2 },
		{ "a flipped first byte", st, len, 0 },
		{ "a flipped last byte", st, len, len - 1 },
		{ "a stream cut in half", st, len / 2, SIZE_MAX },
		{ "a stream one byte short", st, len - 1, SIZE_MAX },
		{ "an empty stream", st, 0, SIZE_MAX },
		{ "4 KiB of random bytes", rnd, sizeof(rnd), SIZE_MAX },
		{ "a stream of the next version", NULL, len, SIZE_MAX },
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const uint8_t *p = bads[i].p;
		uint8_t *fut = NULL;
		int r;

		/* Without a checksum (the Rust format) a flipped byte in a count or a name may
		 * still decode: only the first byte is sure to break it. */
		if (ut_rust && bads[i].flip != SIZE_MAX && bads[i].flip != 0)
			continue;
		if (bads[i].flip != SIZE_MAX) {
			memcpy(bad, st, len);
			bad[bads[i].flip] ^= 0xff;
			p = bad;
		}
		if (!p) {
			p = fut = future_version(st, len);
			CHECK(t, fut, "out of memory");
		}
		r = fe_state_load(t->dev, i % 2 == 1, p, bads[i].len);
		free(fut);
		CHECK(t, r == FE_ECHECK, "LOAD of %s: %s, expected CHECK_DEVICE_STATE to fail",
		      bads[i].what, r == 0 ? "it worked" : fe_error(t->dev));
		CHECK(t, t_pid_alive(t, pb), "B ended after the LOAD of %s (%s)", bads[i].what,
		      t_pid_status(t, pb));
	}
	/* And the valid state after all of them. */
	CHECK_FE(t, fe_state_load(t->dev, false, st, len));
	t_pid_finish(t, pa);
	for (int i = 0; i < 3; i++) {
		struct fuse_attr_out a;
		int r = fc_getattr(c, nodes[i].id, &a);

		CHECK(t, r == 0 && a.attr.ino == nodes[i].ino, "%s on B: %s", nodes[i].name,
		      fc_strerror(c, r));
	}
	free(st);
	free(bad);
	finish(t, &pb, 1);
}

/* ---- i. through the Rust virtiofsd and back ---- */

#define RT_DIRS 3
#define RT_SUBS 2
#define RT_FILES 5

static void test_rust_roundtrip(struct t_ctx *t)
{
	pid_t pa, pr, pc;

	begin(t);
	need_rust(t);
	guest_files(t, RT_DIRS, RT_SUBS, RT_FILES);
	pa = start(t, "A", ut_rust, ARGS("--migration-format=virtiofsd"));
	pr = start(t, "R", true, NULL);
	pc = start(t, "C", ut_rust, NULL);
	attach(t, pa);
	guest_build(t, RT_DIRS, RT_SUBS, RT_FILES);
	hop(t, pa, pr, false);
	guest_check(t, "on the Rust virtiofsd", false);
	hop(t, pr, pc, true);
	guest_check(t, "back on vfsd", true);
	finish(t, &pc, 1);
}

static void test_rust_to_vfsd(struct t_ctx *t)
{
	pid_t pr, pv;

	begin(t);
	need_rust(t);
	guest_files(t, RT_DIRS, RT_SUBS, RT_FILES);
	pr = start(t, "R", true, NULL);
	pv = start_ut(t, "V", NULL);
	attach(t, pr);
	guest_build(t, RT_DIRS, RT_SUBS, RT_FILES);
	hop(t, pr, pv, false);
	guest_check(t, "on vfsd", true);
	finish(t, &pv, 1);
}

/* ---- j. messages the daemon must refuse and survive ---- */

/* SET_DEVICE_STATE_FD as given (size bytes of {direction, phase}; with a pipe's write end or
 * no fd) must be refused, and the fd it came with closed. */
static void refused(struct t_ctx *t, const char *what, uint32_t direction, uint32_t phase,
		    uint32_t size, bool with_fd)
{
	struct {
		uint32_t direction, phase;
	} p = { direction, phase };
	struct vhost_user_msg *m = calloc(1, sizeof(*m));
	struct fe_dev *d = t->dev;
	int fds[2] = { -1, -1 };
	uint8_t *rest = NULL;
	size_t restlen = 0;

	CHECK(t, m, "out of memory");
	if (with_fd)
		CHECK(t, pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	CHECK_FE(t, fe_send_raw(d, VHOST_USER_SET_DEVICE_STATE_FD,
				VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK, &p, size, &fds[1],
				with_fd ? 1 : 0));
	CHECK(t, fe_recv(d, m, FE_TIMEOUT_MS) == 0, "SET_DEVICE_STATE_FD with %s: %s", what,
	      fe_error(d));
	CHECK(t, m->hdr.request == VHOST_USER_SET_DEVICE_STATE_FD && m->hdr.size == 8,
	      "SET_DEVICE_STATE_FD with %s: reply to request %u of %u bytes", what,
	      m->hdr.request, m->hdr.size);
	CHECK(t, m->payload.u64 & 0xff, "SET_DEVICE_STATE_FD with %s accepted (0x%llx)", what,
	      ull(m->payload.u64));
	if (with_fd) {
		close(fds[1]);
		/* The daemon kept no copy of the write end: the read end sees EOF. */
		CHECK(t, fe_read_all(d, fds[0], &rest, &restlen, FE_TIMEOUT_MS) == 0,
		      "SET_DEVICE_STATE_FD with %s: the daemon kept the fd (%s)", what,
		      fe_error(d));
		CHECK(t, restlen == 0, "SET_DEVICE_STATE_FD with %s: %zu bytes written to the fd",
		      what, restlen);
		free(rest);
		close(fds[0]);
	}
	free(m);
}

static void test_bad_messages(struct t_ctx *t)
{
	uint64_t res = 7;
	uint8_t *st;
	size_t len;
	pid_t pa;
	struct fc *c;

	begin(t);
	if (ut_rust)
		t_skip(t, "the Rust virtiofsd drops the connection on a malformed "
			  "SET_DEVICE_STATE_FD");
	pa = start_ut(t, "A", NULL);
	c = attach(t, pa);
	CHECK_FE(t, fe_state_check(t->dev, &res));
	CHECK(t, res == 1, "CHECK_DEVICE_STATE with no transfer: %llu, expected 1", ull(res));
	refused(t, "phase 1", FE_STATE_SAVE, 1, 8, true);
	refused(t, "direction 7", 7, FE_PHASE_STOPPED, 8, true);
	refused(t, "no fd", FE_STATE_SAVE, FE_PHASE_STOPPED, 8, false);
	refused(t, "a 4-byte payload", FE_STATE_SAVE, FE_PHASE_STOPPED, 4, true);
	CHECK(t, t_pid_alive(t, pa), "the daemon ended (%s)", t_pid_status(t, pa));
	t_still_serving(t, c);
	/* Nothing was started, so the check still fails; then a real SAVE works. */
	CHECK_FE(t, fe_state_check(t->dev, &res));
	CHECK(t, res == 1, "CHECK_DEVICE_STATE after refused transfers: %llu, expected 1",
	      ull(res));
	stop(t);
	CHECK_FE(t, fe_state_save(t->dev, false, &st, &len));
	free(st);
	CHECK_FE(t, fe_resume_rings(t->dev));
	t_still_serving(t, c);
	finish(t, &pa, 1);
}

/*
 * A dirty log larger than the file that holds it (a memfd of one page, a log of 1 MiB):
 * marking a page past the file's end would be SIGBUS, so the daemon refuses the log. It
 * hangs up on the VMM (SET_LOG_BASE has a reply of its own, so there is no nack to give),
 * and ends with its status, not a signal.
 */
static void test_log_beyond_its_file(struct t_ctx *t)
{
	struct {
		uint64_t mmap_size, mmap_offset;
	} p = { 1u << 20, 0 };
	struct vhost_user_msg m;
	int fd;
	pid_t pa;

	begin(t);
	if (ut_rust)
		t_skip(t, "a vfsd check");
	pa = start_ut(t, "A", NULL);
	attach(t, pa);
	fd = memfd_create("short-log", MFD_CLOEXEC);
	CHECK(t, fd >= 0 && ftruncate(fd, 4096) == 0, "memfd: %s", strerror(errno));
	CHECK_FE(t, fe_send_raw(t->dev, VHOST_USER_SET_LOG_BASE, VHOST_USER_VERSION, &p,
				sizeof(p), &fd, 1));
	close(fd);
	CHECK(t, fe_recv(t->dev, &m, FE_TIMEOUT_MS) < 0 || m.payload.u64 != 0,
	      "SET_LOG_BASE of a log beyond its file was taken");
	/* Traffic that would mark pages, had the log been taken. */
	(void)fc_getattr(&t->fc, FC_ROOT, &(struct fuse_attr_out){ 0 });
	for (int i = 0; i < 100 && t_pid_alive(t, pa); i++)
		usleep(100 * 1000);
	CHECK(t, !t_pid_alive(t, pa), "the daemon still serves a VMM whose log it refused");
	CHECK(t, strstr(t_pid_status(t, pa), "exit status 1"), "the daemon ended with %s",
	      t_pid_status(t, pa));
	CHECK(t, t_pid_log_has(t, pa, 0, "dirty log"), "the daemon's log does not say why");
}

#define NO_MIGRATION "QEMU 7.2's virtiofsd has no device state migration"

static const struct t_case cases[] = {
	{ "migrate-live-pipe", test_migrate_live_pipe, NO_MIGRATION },
	{ "migrate-live-socketpair", test_migrate_live_socketpair, NO_MIGRATION },
	{ "dirty-log", test_dirty_log, NO_MIGRATION },
	{ "save-without-log-all", test_save_without_log_all, NO_MIGRATION },
	{ "evicted-inodes-move", test_evicted_move, NO_MIGRATION },
	{ "evicted-inodes-move-virtiofsd-format", test_evicted_move_virtiofsd_format,
	  NO_MIGRATION },
	{ "untaken-chains-done-on-b", test_untaken_chains, NO_MIGRATION },
	{ "file-handles-mode", test_file_handles_mode, NO_MIGRATION },
	{ "renamed-on-host-abort", test_renamed_abort, NO_MIGRATION },
	{ "renamed-on-host-guest-error", test_renamed_guest_error, NO_MIGRATION },
	{ "deleted-on-host-abort", test_deleted_abort, NO_MIGRATION },
	{ "deleted-on-host-guest-error", test_deleted_guest_error, NO_MIGRATION },
	{ "replaced-verify-handles-abort", test_replaced_verify_abort, NO_MIGRATION },
	{ "replaced-verify-handles-guest-error", test_replaced_verify_guest_error, NO_MIGRATION },
	{ "replaced-no-verify-handles", test_replaced_no_verify, NO_MIGRATION },
	{ "corrupt-stream", test_corrupt_stream, NO_MIGRATION },
	{ "confirm-paths", test_confirm_paths, NO_MIGRATION },
	{ "no-confirm-paths", test_no_confirm_paths, NO_MIGRATION },
	{ "confirm-paths-renamed", test_confirm_paths_renamed, NO_MIGRATION },
	{ "rust-roundtrip", test_rust_roundtrip, NO_MIGRATION },
	{ "rust-to-vfsd", test_rust_to_vfsd, NO_MIGRATION },
	{ "bad-messages", test_bad_messages, NO_MIGRATION },
	{ "log-beyond-its-file", test_log_beyond_its_file, NO_MIGRATION },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, "migrate");
}
