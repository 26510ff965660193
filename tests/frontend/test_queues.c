/*
 * More than one request queue (QEMU's vhost-user-fs-pci,num-request-queues=N): the device
 * offers them, every ring the VMM starts gets a thread of its own and serves requests, a ring
 * blocked in a slow request holds back no other, and a ring never set up costs nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char *const no_args[] = { NULL };
#define NREQ 8 /* request queues in most cases here */

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --thread-pool-size in FE_DAEMON_ARGS (0 without: requests run on the queue threads). */
static long pool_size(void)
{
	const char *a = getenv("FE_DAEMON_ARGS"), *p;

	if (!a || !(p = strstr(a, "--thread-pool-size")))
		return 0;
	p += strlen("--thread-pool-size");
	while (*p == '=' || *p == ' ')
		p++;
	return strtol(p, NULL, 10);
}

/* Waits up to 2 s for fn(pid) to be want (threads end just after they are joined). */
static int settle(pid_t pid, int (*fn)(pid_t), int want)
{
	long deadline = now_ms() + 2000;
	int n;

	while ((n = fn(pid)) != want && now_ms() < deadline)
		usleep(5 * 1000);
	return n;
}

static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

/* Daemon and frontend with 1 + request_queues rings, INIT done. Scratch memory is never
 * reused (fc.keep_scratch): rings' threads see only buffers this guest gave once. */
static struct fc *mq_session(struct t_ctx *t, struct fe_opts *o)
{
	struct fc *c = t_started(t, o, NULL);

	c->keep_scratch = true;
	CHECK_OK(t, fc_init(c));
	return c;
}

/* The daemon's queue threads: "vfsd-queueN" for ring N. */
static int queue_threads(pid_t pid)
{
	return t_proc_threads_named(pid, "vfsd-queue");
}

/* The system call ring q's thread is in now (/proc/PID/task/TID/syscall), or -1. */
static long ring_syscall(pid_t pid, unsigned int q)
{
	char tid[sizeof(((struct dirent *)0)->d_name)], buf[128];

	if (t_ring_threads(pid, q, tid, sizeof(tid)) != 1 ||
	    t_task_file(pid, tid, "syscall", buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

/* GETATTR of the root on queue q, started; fc_finish takes it back. */
static void start_getattr(struct t_ctx *t, struct fc *c, unsigned int q, struct fc_req *rq)
{
	static struct fuse_getattr_in in;
	struct fc_arg a = { &in, sizeof(in) };

	c->queue = q;
	CHECK_OK(t, fc_start(c, rq, FUSE_GETATTR, FC_ROOT, &a, 1, sizeof(struct fuse_attr_out)));
}

static void finish_getattr(struct t_ctx *t, struct fc *c, struct fc_req *rq)
{
	struct fuse_attr_out a;
	size_t n;
	int r = fc_finish(c, rq, &a, sizeof(a), &n);

	CHECK(t, r == 0 && n == sizeof(a) && a.attr.ino != 0,
	      "GETATTR on queue %u: %s (%zu bytes)", rq->queue, fc_strerror(c, r), n);
}

/* ---- offered, and served on every ring ---- */

/*
 * 1 + 8 rings, as QEMU sets up for num-request-queues=8: on each request queue a file is
 * created, written and read back through another queue, every step with all queues' requests
 * in flight together.
 */
static void test_requests_on_8_queues(struct t_ctx *t)
{
	struct fe_opts o = { .request_queues = NREQ };
	struct fc *c = mq_session(t, &o);
	enum { SIZE = 48 * 1024 };
	struct fc_req rq[NREQ + 1][3];
	struct fuse_entry_out e[NREQ + 1];
	struct fuse_open_out op[NREQ + 1];
	static uint8_t data[NREQ + 1][SIZE], back[NREQ + 1][SIZE];
	struct fuse_create_in cin = { .flags = O_RDWR | O_CREAT, .mode = 0100644 };
	char names[NREQ + 1][8];

	CHECK(t, t->dev->queue_num == FE_MAX_QUEUES, "GET_QUEUE_NUM = %llu, expected %u",
	      ull(t->dev->queue_num), FE_MAX_QUEUES);
	for (unsigned int q = 1; q <= NREQ; q++) {
		struct fc_arg in[2] = { { &cin, sizeof(cin) }, { names[q], 0 } };

		snprintf(names[q], sizeof(names[q]), "q%u", q);
		in[1].len = strlen(names[q]) + 1;
		c->queue = q;
		CHECK_OK(t, fc_start(c, &rq[q][0], FUSE_CREATE, FC_ROOT, in, 2,
				     sizeof(e[q]) + sizeof(op[q])));
		start_getattr(t, c, q, &rq[q][1]);
	}
	for (unsigned int q = 1; q <= NREQ; q++) {
		uint8_t out[sizeof(e[q]) + sizeof(op[q])];
		size_t n;
		int r = fc_finish(c, &rq[q][0], out, sizeof(out), &n);

		CHECK(t, r == 0 && n == sizeof(out), "CREATE %s on queue %u: %s", names[q], q,
		      fc_strerror(c, r));
		memcpy(&e[q], out, sizeof(e[q]));
		memcpy(&op[q], out + sizeof(e[q]), sizeof(op[q]));
		finish_getattr(t, c, &rq[q][1]);
	}
	/* Writes: each file through its own queue. */
	for (unsigned int q = 1; q <= NREQ; q++) {
		struct fuse_write_in win = { .fh = op[q].fh, .size = SIZE };
		struct fc_arg in[2] = { { &win, sizeof(win) }, { data[q], SIZE } };

		fill(data[q], SIZE, q);
		c->queue = q;
		CHECK_OK(t, fc_start(c, &rq[q][0], FUSE_WRITE, e[q].nodeid, in, 2,
				     sizeof(struct fuse_write_out)));
	}
	for (unsigned int q = 1; q <= NREQ; q++) {
		struct fuse_write_out wout;
		int r = fc_finish(c, &rq[q][0], &wout, sizeof(wout), NULL);

		CHECK(t, r == 0 && wout.size == SIZE, "WRITE on queue %u: %s, %u bytes", q,
		      fc_strerror(c, r), wout.size);
	}
	/* Reads: file q through queue q+1, so that no ring sees only its own file. */
	for (unsigned int q = 1; q <= NREQ; q++) {
		struct fuse_read_in rin = { .fh = op[q].fh, .size = SIZE };
		struct fc_arg in = { &rin, sizeof(rin) };

		c->queue = q % NREQ + 1;
		CHECK_OK(t, fc_start(c, &rq[q][0], FUSE_READ, e[q].nodeid, &in, 1, SIZE));
	}
	for (unsigned int q = 1; q <= NREQ; q++) {
		size_t n;
		int r = fc_finish(c, &rq[q][0], back[q], SIZE, &n);

		CHECK(t, r == 0 && n == SIZE && memcmp(back[q], data[q], SIZE) == 0,
		      "READ of %s on queue %u: %s, %zu bytes%s", names[q], rq[q][0].queue,
		      fc_strerror(c, r), n,
		      r == 0 && n == SIZE ? ", not what was written" : "");
	}
	for (unsigned int q = 1; q <= NREQ; q++) {
		c->queue = q;
		CHECK_OK(t, fc_release(c, e[q].nodeid, op[q].fh));
		CHECK_OK(t, fc_forget(c, e[q].nodeid, 1)); /* on the hiprio queue */
		CHECK(t, t_read_file(t, names[q], back[q], SIZE) == SIZE &&
				 memcmp(back[q], data[q], SIZE) == 0,
		      "the host file %s does not hold what queue %u wrote", names[q], q);
	}
	c->queue = FE_REQUEST;
	t_still_serving(t, c);
}

/* Every queue offered, up to index 255, can be set up and serves: one GETATTR on each of
 * the 255 request queues, all in flight together. */
static void test_all_255_request_queues(struct t_ctx *t)
{
	struct fe_opts o = { .request_queues = FE_MAX_QUEUES - 1, .queue_size = 16 };
	struct fc *c = mq_session(t, &o);
	static struct fc_req rq[FE_MAX_QUEUES];
	pid_t pid = t_serving_pid(t->pid);
	int n;

	for (unsigned int q = 1; q < FE_MAX_QUEUES; q++)
		start_getattr(t, c, q, &rq[q]);
	for (unsigned int q = 1; q < FE_MAX_QUEUES; q++)
		finish_getattr(t, c, &rq[q]);
	n = queue_threads(pid);
	CHECK(t, n == FE_MAX_QUEUES, "%d queue threads with all %u rings started", n,
	      FE_MAX_QUEUES);
	c->queue = FE_MAX_QUEUES - 1;
	t_still_serving(t, c);
}

/* ---- a thread per started ring, nothing for the others ---- */

struct counts {
	int threads, fds, eventfds; /* threads: queue threads only */
};

/* A round trip: the daemon closes a message's fds after its reply, before it reads the next
 * message, so once this is answered no fd of an earlier message is left open. */
static void sync_msgs(struct t_ctx *t)
{
	uint64_t f;

	CHECK_FE(t, fe_get_u64(t->dev, VHOST_USER_GET_FEATURES, &f));
}

static struct counts counts_now(struct t_ctx *t, pid_t pid)
{
	sync_msgs(t);
	return (struct counts){ queue_threads(pid), t_proc_fds(pid), t_proc_eventfds(pid) };
}

/* Waits for the daemon to hold base plus rings started rings' worth (a thread; kick, call,
 * err and stop eventfds), minus the threads and kick fds of the last stopped of them. */
static void expect(struct t_ctx *t, pid_t pid, const struct counts *base, int rings,
		   int stopped, const char *when)
{
	int want_threads = rings - stopped;
	int want_eventfds = base->eventfds + 4 * rings - stopped;
	int threads, eventfds, fds;

	sync_msgs(t);
	threads = settle(pid, queue_threads, want_threads);
	eventfds = t_proc_eventfds(pid);
	fds = t_proc_fds(pid);

	CHECK(t, threads == want_threads, "%s: %d queue threads, expected %d (one per running ring)",
	      when, threads, want_threads);
	for (int q = 0; q < rings - stopped; q++)
		CHECK(t, t_ring_threads(pid, (unsigned int)q, NULL, 0) == 1,
		      "%s: ring %d has no thread of its own", when, q);
	CHECK(t, eventfds == want_eventfds && fds - base->fds == eventfds - base->eventfds,
	      "%s: %d eventfds and %d fds, expected %d and %d (%d and %d with no ring: each "
	      "ring holds its kick, call, err and stop eventfds, and nothing else)",
	      when, eventfds, fds, want_eventfds, base->fds + want_eventfds - base->eventfds,
	      base->eventfds, base->fds);
}

static void setup_rings(struct t_ctx *t, unsigned int from, unsigned int to)
{
	for (unsigned int q = from; q < to; q++) {
		CHECK_FE(t, fe_vring_call(t->dev, q));
		CHECK_FE(t, fe_vring_setup(t->dev, q));
		CHECK_FE(t, fe_vring_enable(t->dev, q, true));
	}
}

/*
 * With 256 queues offered and none set up the daemon holds no eventfd and no queue thread;
 * each ring started adds exactly its thread and its four eventfds, a ring stopped gives back
 * its thread and kick fd, a reset everything. Then a guest of one request queue (as a VM
 * without num-request-queues) costs what it did when vfsd offered two queues.
 */
static void test_rings_cost_only_when_started(struct t_ctx *t)
{
	struct fe_opts o = { .request_queues = NREQ };
	struct fe_dev *d;
	struct counts base;
	unsigned int b;
	pid_t pid;

	t_daemon(t, NULL);
	d = t_connect(t, &o);
	t->fc.keep_scratch = true;
	CHECK_FE(t, fe_negotiate(d));
	CHECK(t, d->queue_num == FE_MAX_QUEUES, "GET_QUEUE_NUM = %llu", ull(d->queue_num));
	CHECK_FE(t, fe_set_features(d));
	CHECK_FE(t, fe_send_memory(d));
	pid = t_serving_pid(t->pid);
	base = counts_now(t, pid);
	CHECK(t, t_proc_threads(pid) > 0 && base.fds > 0, "cannot read /proc/%d", (int)pid);
	CHECK(t, base.threads == 0, "%d queue threads with no ring set up", base.threads);
	/* The daemon's own eventfds, none of them a queue's (there were 2 when vfsd had 2). */
	CHECK(t, base.eventfds == 0, "%d eventfds with no ring set up and %u offered",
	      base.eventfds, FE_MAX_QUEUES);

	setup_rings(t, 0, 1 + NREQ);
	expect(t, pid, &base, 1 + NREQ, 0, "1 + 8 rings started");
	CHECK_OK(t, fc_init(&t->fc));
	for (unsigned int q = 1; q <= NREQ; q++) {
		t->fc.queue = q;
		t_still_serving(t, &t->fc);
	}
	/* Rings 5 to 8 stopped as a VMM stops them, then started again. */
	for (unsigned int q = 5; q <= NREQ; q++) {
		CHECK_FE(t, fe_vring_enable(d, q, false));
		CHECK_FE(t, fe_get_vring_base(d, q, &b));
	}
	expect(t, pid, &base, 1 + NREQ, 4, "rings 5-8 stopped");
	for (unsigned int q = 5; q <= NREQ; q++)
		CHECK_FE(t, fe_vring_restart(d, q));
	expect(t, pid, &base, 1 + NREQ, 0, "rings 5-8 restarted");
	for (unsigned int q = 5; q <= NREQ; q++) {
		t->fc.queue = q;
		t_still_serving(t, &t->fc);
	}
	/* A reset gives back every ring's thread and fds. */
	CHECK_FE(t, fe_msg(d, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0, true, NULL));
	expect(t, pid, &base, 0, 0, "after RESET_DEVICE");
	/* The guest starts over with hiprio and one request queue. */
	CHECK_FE(t, fe_set_features(d));
	setup_rings(t, 0, 2);
	expect(t, pid, &base, 2, 0, "hiprio + 1 request ring after the reset");
	t->fc.queue = FE_REQUEST;
	CHECK_OK(t, fc_init(&t->fc));
	t_still_serving(t, &t->fc);
}

/*
 * A request that blocks its ring (an OPEN for writing waits in the host kernel while another
 * process holds a lease on the file) leaves every other ring served. Without a pool the ring
 * itself waits behind it: its own thread serves it, one request at a time.
 */
static void test_blocked_ring_holds_back_no_other(struct t_ctx *t)
{
	struct fe_opts o = { .request_queues = NREQ };
	struct fc *c = mq_session(t, &o);
	struct fuse_open_in oin = { .flags = O_WRONLY };
	struct fc_arg oa = { &oin, sizeof(oin) };
	struct fc_req open_rq, behind, rq[NREQ + 1];
	struct fuse_entry_out e;
	struct fuse_open_out out;
	long pool = pool_size();
	int fd, r;

	if (pool == 1)
		t_skip(t, "one pool worker serves every ring: a request it waits in holds back all");
	fd = t_leased_file(t, c, "leased", &e);

	c->queue = 1;
	CHECK_OK(t, fc_start(c, &open_rq, FUSE_OPEN, e.nodeid, &oa, 1, sizeof(out)));
	if (!pool)
		start_getattr(t, c, 1, &behind);
	usleep(300 * 1000);
	fe_poll_used(t->dev, 1);
	CHECK(t, fe_inflight(t->dev, 1) == (pool ? 1u : 2u),
	      "the OPEN for writing did not wait for the lease (%u of ring 1's requests in "
	      "flight)",
	      fe_inflight(t->dev, 1));
	if (!pool) {
		long nr = ring_syscall(t_serving_pid(t->pid), 1);

		/* The thread that waits is ring 1's own, in the open. */
		CHECK(t, nr == SYS_openat || nr == SYS_openat2 || nr == SYS_open,
		      "ring 1's thread is in system call %ld, not in an open", nr);
	}
	for (unsigned int q = 2; q <= NREQ; q++)
		start_getattr(t, c, q, &rq[q]);
	for (unsigned int q = 2; q <= NREQ; q++)
		finish_getattr(t, c, &rq[q]);
	fe_poll_used(t->dev, 1);
	CHECK(t, fe_inflight(t->dev, 1) == (pool ? 1u : 2u),
	      "ring 1's requests ended before the lease did (%u in flight)",
	      fe_inflight(t->dev, 1));

	CHECK(t, fcntl(fd, F_SETLEASE, F_UNLCK) == 0, "F_UNLCK: %s", strerror(errno));
	close(fd);
	r = fc_finish(c, &open_rq, &out, sizeof(out), NULL);
	CHECK(t, r == 0, "the OPEN after the lease ended: %s", fc_strerror(c, r));
	if (!pool)
		finish_getattr(t, c, &behind);
	CHECK_OK(t, fc_release(c, e.nodeid, out.fh));
}

/* ---- the device state moves with every ring ---- */

/*
 * A guest of 1 + 4 rings migrates (docs/migration.md): requests in flight on each ring when
 * they stop, SAVE, LOAD on a second daemon, the rings restarted there; every file handle
 * opened through each queue still reads its file through that queue.
 */
static void test_migrate_4_queues(struct t_ctx *t)
{
	enum { NQ = 4, SIZE = 4096 };
	struct fe_opts o = { .request_queues = NQ, .migration = true };
	char sa[PATH_MAX], sb[PATH_MAX], name[16];
	struct fuse_entry_out e[NQ + 1];
	struct fuse_open_out op[NQ + 1];
	struct fc_req rq[NQ + 1];
	static uint8_t data[SIZE], back[SIZE];
	uint8_t *st = NULL;
	size_t len = 0, n;
	struct fc *c;
	pid_t a, b;
	int r;

	snprintf(sa, sizeof(sa), "%s/a.sock", t->dir);
	snprintf(sb, sizeof(sb), "%s/b.sock", t->dir);
	a = t_daemon_at(t, sa, t->daemon, no_args);
	r = fe_new(t_connect_at(t, a), &o, &t->dev);
	CHECK(t, r == 0, "frontend: %s", strerror(-r));
	c = &t->fc;
	fc_setup(c, t->dev);
	c->keep_scratch = true;
	CHECK_FE(t, fe_start(t->dev));
	CHECK(t, t->dev->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_DEVICE_STATE),
	      "DEVICE_STATE not offered");
	CHECK_OK(t, fc_init(c));
	for (unsigned int q = 1; q <= NQ; q++) {
		snprintf(name, sizeof(name), "m%u", q);
		fill(data, SIZE, q);
		t_write_file(t, name, data, SIZE);
		c->queue = q;
		CHECK_OK(t, fc_lookup(c, FC_ROOT, name, &e[q]));
		CHECK_OK(t, fc_open(c, e[q].nodeid, O_RDONLY, &op[q]));
		start_getattr(t, c, q, &rq[q]);
	}
	/* Stopped as QEMU stops them: what the source took is done when it answers. */
	r = fe_stop_rings(t->dev);
	CHECK(t, r >= 0, "GET_VRING_BASE: %s", fe_error(t->dev));
	for (unsigned int q = 1; q <= NQ; q++) {
		if (t->dev->vq[q].slots[rq[q].head].done) {
			finish_getattr(t, c, &rq[q]);
			rq[q].head = UINT16_MAX;
		}
	}
	CHECK_FE(t, fe_state_save(t->dev, true, &st, &len));
	b = t_daemon_at(t, sb, t->daemon, no_args);
	CHECK_FE(t, fe_reconnect_begin(t->dev, t_connect_at(t, b), NULL));
	CHECK_FE(t, fe_state_load(t->dev, true, st, len));
	free(st);
	CHECK_FE(t, fe_reconnect_rings(t->dev));
	for (unsigned int q = 0; q <= NQ; q++)
		if (fe_inflight(t->dev, q))
			CHECK_FE(t, fe_kick_now(t->dev, q));
	t_pid_finish(t, a);
	for (unsigned int q = 1; q <= NQ; q++) {
		if (rq[q].head != UINT16_MAX)
			finish_getattr(t, c, &rq[q]);
		snprintf(name, sizeof(name), "m%u", q);
		fill(data, SIZE, q);
		c->queue = q;
		r = fc_read(c, e[q].nodeid, op[q].fh, 0, back, SIZE, &n);
		CHECK(t, r == 0 && n == SIZE && memcmp(back, data, SIZE) == 0,
		      "READ of %s through queue %u on the destination: %s, %zu bytes", name, q,
		      fc_strerror(c, r), n);
		CHECK_OK(t, fc_release(c, e[q].nodeid, op[q].fh));
	}
	t_hang_up(t);
	t_pid_finish(t, b);
}

/* ---- queues past those offered ---- */

/* GET_VRING_BASE has a reply of its own, so a refusal cannot be a nack: the daemon hangs
 * up (as libvhost-user and the Rust vhost-user-backend do), logs why, and exits. */
static void test_get_vring_base_past_offered(struct t_ctx *t)
{
	struct fe_dev *d;
	unsigned int b = 0;
	int r, st;

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_negotiate(d));
	r = fe_get_vring_base(d, FE_MAX_QUEUES, &b);
	CHECK(t, r == -ECONNRESET || r == -EPROTO,
	      "GET_VRING_BASE of queue %u answered (%d, base %u): %s", FE_MAX_QUEUES, r, b,
	      fe_error(d));
	st = t_wait_exit(t, 10000);
	CHECK(t, st != -1, "the daemon still runs after refusing GET_VRING_BASE");
	CHECK(t, WIFEXITED(st), "the daemon ended with %s", t_status(t));
	{
		char log[8192] = "";
		int fd = open(t->log, O_RDONLY | O_CLOEXEC);
		ssize_t got = fd >= 0 ? read(fd, log, sizeof(log) - 1) : -1;

		if (fd >= 0)
			close(fd);
		log[got > 0 ? got : 0] = '\0';
		CHECK(t, strstr(log, "names queue 256"), "the daemon log does not say why");
	}
}

#define TWO_QUEUES "QEMU 7.2's virtiofsd has hiprio + 1 request queue"

static const struct t_case cases[] = {
	{ "requests-on-8-queues", test_requests_on_8_queues, TWO_QUEUES },
	{ "all-255-request-queues", test_all_255_request_queues, TWO_QUEUES },
	{ "rings-cost-only-when-started", test_rings_cost_only_when_started, TWO_QUEUES },
	{ "blocked-ring-holds-back-no-other", test_blocked_ring_holds_back_no_other, TWO_QUEUES },
	{ "migrate-4-queues", test_migrate_4_queues, TWO_QUEUES },
	{ "get-vring-base-past-offered", test_get_vring_base_past_offered, TWO_QUEUES },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, "queues");
}
