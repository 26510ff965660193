/*
 * Locks the host sees: POSIX record locks (GETLK, SETLK, SETLKW) per lock owner and flock
 * locks per open file, against locks this test process takes on the host file directly. A
 * SETLKW that waits must leave the ring served, end when the lock is free, and end with EINTR
 * on INTERRUPT or when the VMM stops the ring.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "harness.h"

#define TO_EOF INT64_MAX

static struct fuse_lk_in lk_in(uint64_t fh, uint64_t owner, uint32_t type, uint64_t start,
			       uint64_t end, bool is_flock)
{
	return (struct fuse_lk_in){ .fh = fh, .owner = owner,
				    .lk = { .start = start, .end = end, .type = type },
				    .lk_flags = is_flock ? FUSE_LK_FLOCK : 0 };
}

static int setlk(struct fc *c, uint64_t nodeid, const struct fuse_lk_in *in)
{
	return fc_call_fixed(c, FUSE_SETLK, nodeid, in, sizeof(*in), NULL, NULL, NULL, 0);
}

static int getlk(struct fc *c, uint64_t nodeid, const struct fuse_lk_in *in,
		 struct fuse_file_lock *out)
{
	struct fuse_lk_out o;
	int r = fc_call_fixed(c, FUSE_GETLK, nodeid, in, sizeof(*in), NULL, NULL, &o, sizeof(o));

	*out = o.lk;
	return r;
}

static void start_setlkw(struct t_ctx *t, struct fc *c, struct fc_req *rq, uint64_t nodeid,
			 const struct fuse_lk_in *in)
{
	struct fc_arg a = { in, sizeof(*in) };

	CHECK_OK(t, fc_start(c, rq, FUSE_SETLKW, nodeid, &a, 1, 0));
}

/* The request is still waiting after 200 ms, and the ring meanwhile serves others. */
static void still_waiting(struct t_ctx *t, struct fc *c)
{
	usleep(200 * 1000);
	fe_poll_used(c->dev, c->queue);
	CHECK(t, fe_inflight(c->dev, c->queue) == 1, "the SETLKW ended while the lock was held");
	t_still_serving(t, c);
}

/* A host process's lock on the shared file (this test, on its own fd). */
static int host_lock(struct t_ctx *t, int fd, short type, bool wait)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };

	(void)t;
	return fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl) < 0 ? -errno : 0;
}

static int host_open(struct t_ctx *t, const char *rel)
{
	int fd = open(t_path(t, rel), O_RDWR | O_CLOEXEC);

	CHECK(t, fd >= 0, "host open %s: %s", rel, strerror(errno));
	return fd;
}

static void open_f(struct t_ctx *t, struct fc *c, uint64_t *id, uint64_t *fh)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;

	t_write_file(t, "f", "0123456789abcdef", 16);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &e));
	CHECK_OK(t, fc_open(c, e.nodeid, O_RDWR, &o));
	*id = e.nodeid;
	*fh = o.fh;
}

static void test_posix_vs_host(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fuse_file_lock got;
	struct fuse_lk_in in;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	uint64_t id, fh;
	int hfd;

	CHECK(t, c->init.flags & FUSE_POSIX_LOCKS, "INIT flags 0x%x lack POSIX_LOCKS", c->init.flags);
	open_f(t, c, &id, &fh);
	hfd = host_open(t, "f");
	/* host holds [0,10) for writing: the guest sees it and cannot take it */
	CHECK_OK(t, host_lock(t, hfd, F_WRLCK, false));
	in = lk_in(fh, 7, F_RDLCK, 5, 20, false);
	CHECK_OK(t, getlk(c, id, &in, &got));
	CHECK(t, got.type == F_WRLCK && got.start == 0 && got.end == 9,
	      "GETLK: type %u [%llu, %llu]", got.type, (unsigned long long)got.start,
	      (unsigned long long)got.end);
	CHECK_ERR(t, setlk(c, id, &in), EAGAIN);
	/* the host lets go: the guest takes a write lock the host then sees */
	CHECK_OK(t, host_lock(t, hfd, F_UNLCK, false));
	in = lk_in(fh, 7, F_WRLCK, 0, TO_EOF, false);
	CHECK_OK(t, setlk(c, id, &in));
	CHECK(t, fcntl(hfd, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK,
	      "the host does not see the guest's lock (type %d)", fl.l_type);
	CHECK_ERR(t, host_lock(t, hfd, F_RDLCK, false), EAGAIN);
	/* unlocked by the guest: the host gets it */
	in.lk.type = F_UNLCK;
	CHECK_OK(t, setlk(c, id, &in));
	CHECK_OK(t, host_lock(t, hfd, F_WRLCK, false));
	close(hfd);
}

static void test_owners(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fuse_file_lock got;
	struct fuse_lk_in a, b;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	uint64_t id, fh;
	int hfd;

	open_f(t, c, &id, &fh);
	a = lk_in(fh, 1, F_WRLCK, 0, 99, false);
	b = lk_in(fh, 2, F_WRLCK, 50, 60, false);
	CHECK_OK(t, setlk(c, id, &a));
	CHECK_OK(t, setlk(c, id, &a)); /* an owner's own lock never conflicts */
	CHECK_ERR(t, setlk(c, id, &b), EAGAIN);
	CHECK_OK(t, getlk(c, id, &b, &got));
	CHECK(t, got.type == F_WRLCK && got.end == 99, "owner 2 sees type %u end %llu", got.type,
	      (unsigned long long)got.end);
	CHECK_OK(t, getlk(c, id, &a, &got));
	CHECK(t, got.type == F_UNLCK, "owner 1 conflicts with itself: type %u", got.type);
	/* the owner closes the file (FLUSH with its lock owner): its locks go */
	struct fuse_flush_in fi = { .fh = fh, .lock_owner = 1 };

	CHECK_OK(t, fc_call_fixed(c, FUSE_FLUSH, id, &fi, sizeof(fi), NULL, NULL, NULL, 0));
	CHECK_OK(t, setlk(c, id, &b));
	hfd = host_open(t, "f");
	CHECK(t, fcntl(hfd, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK && fl.l_start == 50,
	      "host: type %d start %lld", fl.l_type, (long long)fl.l_start);
	close(hfd);
	/* bad ranges and types */
	b = lk_in(fh, 2, F_WRLCK, 10, 5, false);
	CHECK_ERR(t, setlk(c, id, &b), EINVAL);
	b = lk_in(fh, 2, 77, 0, 5, false);
	CHECK_ERR(t, setlk(c, id, &b), EINVAL);
	b = lk_in(fh, 2, F_WRLCK, 0, 5, false);
	CHECK_ERR(t, setlk(c, 0x123456789ull, &b), EBADF);
}

static void test_setlkw_waits(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	struct fc_req rq;
	struct fuse_lk_in in;
	uint64_t id, fh;
	int hfd;

	open_f(t, c, &id, &fh);
	hfd = host_open(t, "f");
	CHECK_OK(t, host_lock(t, hfd, F_WRLCK, false));
	in = lk_in(fh, 3, F_WRLCK, 0, 9, false);
	start_setlkw(t, c, &rq, id, &in);
	still_waiting(t, c);
	CHECK_OK(t, host_lock(t, hfd, F_UNLCK, false));
	CHECK_OK(t, fc_finish(c, &rq, NULL, 0, NULL));
	CHECK(t, fcntl(hfd, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK,
	      "the granted lock is not on the host (type %d)", fl.l_type);
	close(hfd);
}

static void test_setlkw_interrupt(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fc_req rq;
	struct fuse_lk_in in;
	uint64_t id, fh;
	int hfd;

	open_f(t, c, &id, &fh);
	hfd = host_open(t, "f");
	CHECK_OK(t, host_lock(t, hfd, F_WRLCK, false));
	in = lk_in(fh, 3, F_RDLCK, 0, 9, false);
	start_setlkw(t, c, &rq, id, &in);
	still_waiting(t, c);
	fc_interrupt(c, rq.unique);
	CHECK_ERR(t, fc_finish(c, &rq, NULL, 0, NULL), EINTR);
	/* the host still holds its lock, untouched */
	CHECK_OK(t, host_lock(t, hfd, F_WRLCK, false));
	close(hfd);
	t_still_serving(t, c);
}

/* The VMM stops the ring (GET_VRING_BASE) while a SETLKW waits: it ends, and the ring stops. */
static void test_setlkw_ring_stop(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fc_req rq;
	struct fuse_lk_in in;
	unsigned int base;
	uint64_t id, fh;
	int hfd;

	open_f(t, c, &id, &fh);
	hfd = host_open(t, "f");
	CHECK_OK(t, host_lock(t, hfd, F_WRLCK, false));
	in = lk_in(fh, 3, F_WRLCK, 0, 9, false);
	start_setlkw(t, c, &rq, id, &in);
	still_waiting(t, c);
	CHECK_FE(t, fe_get_vring_base(c->dev, c->queue, &base));
	CHECK_ERR(t, fc_finish(c, &rq, NULL, 0, NULL), EINTR);
	close(hfd);
}

static void test_flock_vs_host(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fc_req rq;
	struct fuse_lk_in in;
	uint64_t id, fh;
	int hfd;

	CHECK(t, c->init.flags & FUSE_FLOCK_LOCKS, "INIT flags 0x%x lack FLOCK_LOCKS", c->init.flags);
	open_f(t, c, &id, &fh);
	hfd = host_open(t, "f");
	in = lk_in(fh, 9, F_WRLCK, 0, TO_EOF, true);
	CHECK_OK(t, setlk(c, id, &in));
	CHECK(t, flock(hfd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK,
	      "the host took a shared flock over the guest's exclusive one");
	in.lk.type = F_UNLCK;
	CHECK_OK(t, setlk(c, id, &in));
	CHECK(t, flock(hfd, LOCK_EX | LOCK_NB) == 0, "host flock after the guest's unlock: %s",
	      strerror(errno));
	/* the guest waits for the host's flock */
	in.lk.type = F_RDLCK;
	CHECK_ERR(t, setlk(c, id, &in), EAGAIN);
	start_setlkw(t, c, &rq, id, &in);
	still_waiting(t, c);
	CHECK(t, flock(hfd, LOCK_UN) == 0, "host unlock");
	CHECK_OK(t, fc_finish(c, &rq, NULL, 0, NULL));
	CHECK(t, flock(hfd, LOCK_EX | LOCK_NB) < 0, "the guest's granted flock is not on the host");
	close(hfd);
}

static void test_locks_off(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--no-posix-lock", "-o", "no_flock", NULL);
	struct fuse_file_lock got;
	struct fuse_lk_in in;
	uint64_t id, fh;

	CHECK(t, !(c->init.flags & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS)), "INIT flags 0x%x",
	      c->init.flags);
	open_f(t, c, &id, &fh);
	in = lk_in(fh, 1, F_WRLCK, 0, 9, false);
	CHECK_ERR(t, getlk(c, id, &in, &got), ENOSYS);
	CHECK_ERR(t, setlk(c, id, &in), ENOSYS);
	in.lk_flags = FUSE_LK_FLOCK;
	CHECK_ERR(t, setlk(c, id, &in), ENOSYS);
}

#define NO_LOCKS "QEMU 7.2's virtiofsd has locks off by default and no blocking ones"

static const struct t_case cases[] = {
	{ "posix-lock-vs-host-process", test_posix_vs_host, NO_LOCKS },
	{ "posix-lock-owners", test_owners, NO_LOCKS },
	{ "setlkw-waits-without-blocking-the-ring", test_setlkw_waits, NO_LOCKS },
	{ "setlkw-interrupt", test_setlkw_interrupt, NO_LOCKS },
	{ "setlkw-ring-stop", test_setlkw_ring_stop, NO_LOCKS },
	{ "flock-vs-host-process", test_flock_vs_host, NO_LOCKS },
	{ "locks-off", test_locks_off, NO_LOCKS },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, "locks");
}
