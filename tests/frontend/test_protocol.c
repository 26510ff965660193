/* vhost-user protocol checks: features, memory, rings, reset, disconnects, VMM sequences. */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_fs.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vhost_types.h>

#include "harness.h"

#define MIB (1u << 20)
#define GIB (1ull << 30)

#define REQUIRED_FEATURES                                                                          \
	(FE_BIT(VIRTIO_F_VERSION_1) | FE_BIT(VIRTIO_RING_F_INDIRECT_DESC) |                        \
	 FE_BIT(VIRTIO_RING_F_EVENT_IDX) | FE_BIT(VHOST_USER_F_PROTOCOL_FEATURES))
#define REQUIRED_PROTOCOL                                                                          \
	(FE_BIT(VHOST_USER_PROTOCOL_F_MQ) | FE_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |              \
	 FE_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
/* vfsd's exact offer: no dirty log (LOG_ALL, LOG_SHMFD), no backend channel. */
/* Migration (docs/migration.md): dirty logging and the device state. */
#define VFSD_FEATURES (REQUIRED_FEATURES | FE_BIT(VHOST_F_LOG_ALL))
#define VFSD_PROTOCOL                                                                              \
	(REQUIRED_PROTOCOL | FE_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |                          \
	 FE_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD) | FE_BIT(VHOST_USER_PROTOCOL_F_DEVICE_STATE))
/* What cloud-hypervisor offers (runtimes.md §2). */
#define CH_PROTOCOL                                                                                \
	(FE_BIT(VHOST_USER_PROTOCOL_F_MQ) | FE_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |    \
	 FE_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | FE_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |  \
	 FE_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD) | FE_BIT(VHOST_USER_PROTOCOL_F_DEVICE_STATE))

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* A file with a known pattern, created and checked through the client. */
static void write_and_read_back(struct t_ctx *t, struct fc *c, const char *name, size_t size)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;
	uint8_t *in = malloc(size), *out = malloc(size);
	size_t n;

	CHECK(t, in && out, "out of memory");
	for (size_t i = 0; i < size; i++)
		in[i] = (uint8_t)(i * 7 + size);
	CHECK_OK(t, fc_create(c, FC_ROOT, name, O_RDWR | O_CREAT, 0644, &e, &o));
	CHECK_OK(t, fc_write(c, e.nodeid, o.fh, 0, in, size, &n));
	CHECK(t, n == size, "WRITE wrote %zu of %zu bytes", n, size);
	CHECK_OK(t, fc_read(c, e.nodeid, o.fh, 0, out, size, &n));
	CHECK(t, n == size && memcmp(in, out, size) == 0, "READ gave back %zu different bytes", n);
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK(t, t_read_file(t, name, out, size) == (ssize_t)size && memcmp(in, out, size) == 0,
	      "the host file %s does not hold what was written", name);
	free(in);
	free(out);
}

/* ---- what the device offers ---- */

static void test_features(struct t_ctx *t)
{
	struct fe_dev *d;
	uint64_t f;

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_FEATURES, &f));
	CHECK(t, (f & REQUIRED_FEATURES) == REQUIRED_FEATURES, "features 0x%llx lack 0x%llx",
	      ull(f), ull(REQUIRED_FEATURES & ~f));
	CHECK(t, t->c_virtiofsd || f == VFSD_FEATURES, "features 0x%llx, expected 0x%llx", ull(f),
	      ull(VFSD_FEATURES));
}

static void test_protocol_features(struct t_ctx *t)
{
	struct fe_dev *d;
	uint64_t f;

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_PROTOCOL_FEATURES, &f));
	CHECK(t, (f & REQUIRED_PROTOCOL) == REQUIRED_PROTOCOL,
	      "protocol features 0x%llx lack 0x%llx", ull(f), ull(REQUIRED_PROTOCOL & ~f));
	CHECK(t, !(f & FE_BIT(VHOST_USER_PROTOCOL_F_CONFIG)),
	      "CONFIG offered without --tag (0x%llx)", ull(f));
	CHECK(t, t->c_virtiofsd || f == VFSD_PROTOCOL, "protocol features 0x%llx, expected 0x%llx",
	      ull(f), ull(VFSD_PROTOCOL));
}

static void test_queue_num(struct t_ctx *t)
{
	struct fe_dev *d;

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_negotiate(d));
	/* QEMU 7.2's virtiofsd (and the Rust one) have hiprio + 1 request queue; vfsd offers
	 * 255 request queues, every index SET_VRING_KICK can name. */
	if (t->c_virtiofsd)
		CHECK(t, d->queue_num == 2, "GET_QUEUE_NUM = %llu, expected 2", ull(d->queue_num));
	else
		CHECK(t, d->queue_num == FE_MAX_QUEUES, "GET_QUEUE_NUM = %llu, expected %u",
		      ull(d->queue_num), FE_MAX_QUEUES);
}

static void test_max_mem_slots(struct t_ctx *t)
{
	struct fe_dev *d;

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_negotiate(d));
	CHECK(t, d->max_mem_slots >= FE_MAX_REGIONS, "GET_MAX_MEM_SLOTS = %llu",
	      ull(d->max_mem_slots));
	/* The Rust virtiofsd's value (virtiofsd-behaviour.md §3.3). */
	CHECK(t, t->c_virtiofsd || d->max_mem_slots == 509, "GET_MAX_MEM_SLOTS = %llu, expected 509",
	      ull(d->max_mem_slots));
}

static void config_check(struct t_ctx *t, const char *tag)
{
	struct virtio_fs_config cfg;
	struct fe_dev *d;
	char want[sizeof(cfg.tag)] = { 0 };
	uint32_t nq;
	char part[4];

	memcpy(want, tag, strlen(tag));
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_negotiate(d));
	CHECK(t, d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_CONFIG),
	      "CONFIG not offered with --tag (0x%llx)", ull(d->dev_protocol));
	memset(&cfg, 0xee, sizeof(cfg));
	CHECK_FE(t, fe_get_config(d, 0, sizeof(cfg), &cfg));
	CHECK(t, memcmp(cfg.tag, want, sizeof(want)) == 0, "tag is '%.36s'", (char *)cfg.tag);
	CHECK(t, cfg.num_request_queues == 1, "num_request_queues = %u", cfg.num_request_queues);
	/* Part of the space, as a driver may read it field by field. */
	CHECK_FE(t,
		 fe_get_config(d, offsetof(struct virtio_fs_config, num_request_queues), 4, &nq));
	CHECK(t, nq == 1, "num_request_queues read alone = %u", nq);
	CHECK_FE(t, fe_get_config(d, 0, 4, part));
	CHECK(t, memcmp(part, want, 4) == 0, "first 4 bytes of the tag differ");
	/* The device works as usual afterwards. */
	CHECK_FE(t, fe_start(d));
	CHECK_OK(t, fc_init(&t->fc));
	t_still_serving(t, &t->fc);
}

static void test_config_tag(struct t_ctx *t)
{
	t_daemon(t, "--tag=myfs", NULL);
	config_check(t, "myfs");
}

static void test_config_tag_36(struct t_ctx *t)
{
	const char *tag = "abcdefghijklmnopqrstuvwxyz0123456789"; /* 36 bytes: no NUL */

	t_daemon(t, "--tag=abcdefghijklmnopqrstuvwxyz0123456789", NULL);
	config_check(t, tag);
}

/* ---- memory ---- */

static void test_reply_ack_add_mem_reg(struct t_ctx *t)
{
	struct vhost_user_single_region m = { 0 };
	struct vhost_user_msg *reply = calloc(1, sizeof(*reply));
	struct fe_dev *d;
	struct fe_region *r;

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK(t, reply, "out of memory");
	CHECK_FE(t, fe_negotiate(d));
	CHECK(t, d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK), "REPLY_ACK not negotiated");
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_call(d, q));
	CHECK_FE(t, fe_set_features(d));
	/* By hand, to see the reply itself. */
	r = &d->regions[0];
	m.region = (struct vhost_user_region){ .guest_phys_addr = r->gpa,
					       .memory_size = r->size,
					       .userspace_addr = (uintptr_t)r->host,
					       .mmap_offset = r->mmap_offset };
	CHECK_FE(t, fe_send_raw(d, VHOST_USER_ADD_MEM_REG,
				VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK, &m, sizeof(m),
				&r->fd, 1));
	CHECK_FE(t, fe_recv(d, reply, FE_TIMEOUT_MS));
	CHECK(t, reply->hdr.request == VHOST_USER_ADD_MEM_REG, "reply to request %u",
	      reply->hdr.request);
	CHECK(t, reply->hdr.flags == (VHOST_USER_VERSION | VHOST_USER_REPLY_MASK),
	      "reply flags 0x%x", reply->hdr.flags);
	CHECK(t, reply->hdr.size == 8 && reply->payload.u64 == 0, "ack of %u bytes, value %llu",
	      reply->hdr.size, ull(reply->payload.u64));
	r->added = true;
	if (!t->c_virtiofsd) {
		/* A region overlapping it is refused, and the connection goes on. */
		CHECK(t, fe_region_add(d, 0) == -EREMOTEIO,
		      "an overlapping ADD_MEM_REG was not refused: %s", fe_error(d));
		r->added = true;
	}
	CHECK_FE(t, fe_send_memory(d));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_setup(d, q));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_enable(d, q, true));
	CHECK_OK(t, fc_init(&t->fc));
	write_and_read_back(t, &t->fc, "f", 64 * 1024);
	free(reply);
}

static void test_set_mem_table(struct t_ctx *t)
{
	struct fe_opts o = { .mem_table = true, .nregions = 4 };
	struct fc *c = t_session(t, &o, NULL);

	write_and_read_back(t, c, "f", 256 * 1024);
}

static void test_add_mem_reg_8_regions(struct t_ctx *t)
{
	struct fe_opts o = { .nregions = 8 };
	struct fc *c = t_session(t, &o, NULL);

	write_and_read_back(t, c, "f", 256 * 1024);
}

/* Regions come and go while the queues run (memory hot-plug and unplug in the guest). */
static void test_mem_hotplug(struct t_ctx *t)
{
	struct fe_opts o = { .nregions = 3 };
	struct fc *c = t_session(t, &o, NULL);
	struct fe_dev *d = t->dev;
	struct fc_req rq[32];
	struct fuse_attr_out a;
	int n;

	write_and_read_back(t, c, "before", 64 * 1024);
	/* Requests in flight in regions 0 and 1 while region 2 goes away. */
	d->regions[2].added = false;
	for (int i = 0; i < 32; i++) {
		struct fuse_getattr_in in = { 0 };
		struct fc_arg arg = { &in, sizeof(in) };

		CHECK_OK(t, fc_start(c, &rq[i], FUSE_GETATTR, FC_ROOT, &arg, 1, sizeof(a)));
	}
	d->regions[2].added = true;
	CHECK_FE(t, fe_region_remove(d, 2));
	n = fe_region_new(d, 16 * GIB, 8 * MIB);
	CHECK(t, n >= 0, "fe_region_new: %s", strerror(-n));
	CHECK_FE(t, fe_region_add(d, n));
	for (int i = 31; i >= 0; i--)
		CHECK_OK(t, fc_finish(c, &rq[i], &a, sizeof(a), NULL));
	/* Buffers in the new region now (round robin over 0, 1 and the new one). */
	write_and_read_back(t, c, "after", 256 * 1024);
	for (int i = 0; i < 6; i++)
		t_still_serving(t, c);
}

/*
 * A VMM that has no CONFIGURE_MEM_SLOTS re-sends the whole table on memory hot-plug, with
 * requests in flight. With a one-thread pool most of them wait in the pool's queue when the
 * table arrives: they must still complete, into the right guest memory.
 */
static void set_mem_table_under_load(struct t_ctx *t, const char *pool)
{
	struct fe_opts o = { .mem_table = true, .nregions = 2 };
	struct fc *c = t_session(t, &o, pool, NULL);
	struct fe_dev *d = t->dev;
	enum { N = 120, SIZE = 256 * 1024 };
	static uint8_t data[SIZE], buf[SIZE];
	struct fc_req *rq = calloc(N, sizeof(*rq));
	struct fuse_entry_out e;
	struct fuse_open_out op;
	int n;

	CHECK(t, rq, "out of memory");
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (uint8_t)(i * 13 + 1);
	t_write_file(t, "data", data, SIZE);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "data", &e));
	CHECK_OK(t, fc_open(c, e.nodeid, O_RDONLY, &op));
	c->chain = FE_INDIRECT;
	for (int i = 0; i < N; i++) {
		struct fuse_read_in rd = { .fh = op.fh, .size = SIZE };
		struct fc_arg arg = { &rd, sizeof(rd) };

		CHECK_OK(t, fc_start(c, &rq[i], FUSE_READ, e.nodeid, &arg, 1, SIZE));
	}
	/* The same two regions and a new one between them, as one table sorted by guest
	 * address (QEMU's order): the daemon maps them again in that order. */
	n = fe_region_new(d, 2 * GIB, 64 * MIB);
	CHECK(t, n == 2, "fe_region_new: %s", strerror(-n));
	struct fe_region r1 = d->regions[1];

	d->regions[1] = d->regions[2];
	d->regions[2] = r1;
	for (int i = 0; i < d->nregions; i++)
		d->regions[i].added = false;
	CHECK_FE(t, fe_send_memory(d));
	for (int i = N - 1; i >= 0; i--) {
		size_t len;

		CHECK_OK(t, fc_finish(c, &rq[i], buf, SIZE, &len));
		CHECK(t, len == SIZE && memcmp(buf, data, SIZE) == 0,
		      "READ %d returned %zu wrong bytes", i, len);
	}
	CHECK(t, t_alive(t), "the daemon died (%s)", t_status(t));
	CHECK_OK(t, fc_release(c, e.nodeid, op.fh));
	free(rq);
}

static void test_set_mem_table_under_load(struct t_ctx *t)
{
	set_mem_table_under_load(t, NULL);
}

static void test_set_mem_table_under_load_pool(struct t_ctx *t)
{
	set_mem_table_under_load(t, "--thread-pool-size=1");
}

static void test_rem_unknown_region(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_dev *d = t->dev;
	int n = fe_region_new(d, 32 * GIB, 4 * MIB);

	CHECK(t, n >= 0, "fe_region_new: %s", strerror(-n));
	CHECK(t, fe_region_remove(d, n) == -EREMOTEIO, "REM_MEM_REG of an unknown region: %s",
	      fe_error(d));
	t_still_serving(t, c);
}

/* ---- rings ---- */

static void test_get_vring_base(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_dev *d = t->dev;
	unsigned int b0, b1;

	for (int i = 0; i < 5; i++)
		t_still_serving(t, c);
	CHECK_OK(t, fc_forget(c, 12345, 1)); /* hiprio */
	CHECK_OK(t, fc_forget(c, 12346, 1));
	/* QEMU's stop: disable, then ask where each ring is. */
	CHECK_FE(t, fe_vring_enable(d, 0, false));
	CHECK_FE(t, fe_vring_enable(d, 1, false));
	CHECK_FE(t, fe_get_vring_base(d, 0, &b0));
	CHECK_FE(t, fe_get_vring_base(d, 1, &b1));
	CHECK(t, b0 == 2, "hiprio GET_VRING_BASE = %u, expected 2", b0);
	CHECK(t, b1 == 6, "request GET_VRING_BASE = %u, expected 6 (INIT + 5 GETATTR)", b1);
	/* Resume where it stopped. */
	CHECK_FE(t, fe_vring_restart(d, 0));
	CHECK_FE(t, fe_vring_restart(d, 1));
	t_still_serving(t, c);
	CHECK_OK(t, fc_forget(c, 12347, 1));
	CHECK_FE(t, fe_get_vring_base(d, 1, &b1));
	CHECK_FE(t, fe_get_vring_base(d, 0, &b0));
	CHECK(t, b0 == 3 && b1 == 7, "after a restart: bases %u and %u, expected 3 and 7", b0, b1);
	CHECK_FE(t, fe_vring_restart(d, 0));
	CHECK_FE(t, fe_vring_restart(d, 1));
	t_still_serving(t, c);
}

/*
 * A VMM stops and restarts the rings on every guest reboot (GET_VRING_BASE, then SET_VRING_*):
 * 40 cycles, each with a READDIR on the fresh queue thread, must not grow the daemon.
 */
static void test_ring_restarts_do_not_leak(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_dev *d = t->dev;
	struct fuse_open_out o;
	static char buf[4096];
	unsigned int base;
	long before = 0, after;
	size_t n;

	t_write_file(t, "f", "", 0);
	CHECK_OK(t, fc_opendir(c, FC_ROOT, &o));
	CHECK_OK(t, fc_readdir(c, FC_ROOT, o.fh, 0, buf, sizeof(buf), &n));
	/* Warm up first: malloc may open one more arena (64 MiB of address space) for the new
	 * threads, once; what must not happen is growth with every restart. */
	for (int i = 0; i < 50; i++) {
		if (i == 10)
			before = t_vmsize_kb(t);
		CHECK_FE(t, fe_vring_enable(d, FE_REQUEST, false));
		CHECK_FE(t, fe_get_vring_base(d, FE_REQUEST, &base));
		CHECK_FE(t, fe_vring_restart(d, FE_REQUEST));
		CHECK_OK(t, fc_readdir(c, FC_ROOT, o.fh, 0, buf, sizeof(buf), &n));
	}
	after = t_vmsize_kb(t);
	CHECK(t, before > 0 && after > 0, "cannot read the daemon's VmSize");
	CHECK(t, after - before < 16 * 1024,
	      "VmSize grew by %ld KiB over 40 ring restarts (%ld KiB each)", after - before,
	      (after - before) / 40);
	CHECK_OK(t, fc_releasedir(c, FC_ROOT, o.fh));
}

static void test_reset_device(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_dev *d = t->dev;
	struct fuse_entry_out e;
	struct fuse_attr_out a;

	CHECK(t, d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE),
	      "RESET_DEVICE not offered (0x%llx)", ull(d->dev_protocol));
	t_write_file(t, "f", "x", 1);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &e));
	CHECK_FE(t, fe_msg(d, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0, true, NULL));
	/* The guest driver starts over: features, rings (memory stays, as QEMU assumes). */
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_call(d, q));
	CHECK_FE(t, fe_set_features(d));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_setup(d, q));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_enable(d, q, true));
	CHECK_OK(t, fc_init(c));
	t_still_serving(t, c);
	/* The old session's node ids are gone. */
	CHECK_ERR(t, fc_getattr(c, e.nodeid, &a), EBADF);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &e));
}

static void test_vring_enable_late(struct t_ctx *t)
{
	struct fe_dev *d;
	struct fc_req rq;
	struct fuse_init_out out;
	struct fuse_init_in in = { .major = 7, .minor = 38 };
	struct fc_arg arg = { &in, 16 };

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_negotiate(d));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_call(d, q));
	CHECK_FE(t, fe_set_features(d));
	CHECK_FE(t, fe_send_memory(d));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_setup(d, q));
	CHECK_FE(t, fe_vring_enable(d, 0, true));
	/* A request on the disabled request queue waits for SET_VRING_ENABLE. */
	CHECK_OK(t, fc_start(&t->fc, &rq, FUSE_INIT, 0, &arg, 1, sizeof(out)));
	CHECK_FE(t, fe_kick(d, 1));
	usleep(300 * 1000);
	if (!t->c_virtiofsd)
		CHECK(t, fe_poll_used(d, 1) == 0, "a disabled ring was served");
	CHECK_FE(t, fe_vring_enable(d, 1, true));
	CHECK_OK(t, fc_finish(&t->fc, &rq, &out, sizeof(out), NULL));
	t_still_serving(t, &t->fc);
}

static void run_traffic(struct t_ctx *t, struct fc *c, int sequential, int batch)
{
	struct fc_req *rq = calloc((size_t)batch, sizeof(*rq));
	struct fuse_attr_out a;

	CHECK(t, rq, "out of memory");
	for (int i = 0; i < sequential; i++)
		t_still_serving(t, c);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < batch; i++) {
			struct fuse_getattr_in in = { 0 };
			struct fc_arg arg = { &in, sizeof(in) };

			CHECK_OK(t, fc_start(c, &rq[i], FUSE_GETATTR, FC_ROOT, &arg, 1, sizeof(a)));
		}
		for (int i = 0; i < batch; i++)
			CHECK_OK(t, fc_finish(c, &rq[i], &a, sizeof(a), NULL));
	}
	free(rq);
}

static void test_event_idx(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_vring *vq = &t->dev->vq[FE_REQUEST];
	uint16_t avail_event;

	CHECK(t, t->dev->features & FE_BIT(VIRTIO_RING_F_EVENT_IDX), "EVENT_IDX not negotiated");
	run_traffic(t, c, 200, 64);
	CHECK(t, t->dev->missed_calls == 0, "%u used entries came without a call",
	      t->dev->missed_calls);
	/* Idle again: the device asks for a kick at the next entry. */
	usleep(50 * 1000);
	avail_event = *(volatile uint16_t *)&vq->used->ring[vq->num];
	CHECK(t, avail_event == vq->avail_idx, "avail_event %u, avail index %u", avail_event,
	      vq->avail_idx);
}

static void test_no_event_idx(struct t_ctx *t)
{
	struct fe_opts o = { .no_event_idx = true };
	struct fc *c = t_session(t, &o, NULL);

	CHECK(t, !(t->dev->features & FE_BIT(VIRTIO_RING_F_EVENT_IDX)), "EVENT_IDX negotiated");
	run_traffic(t, c, 200, 64);
	CHECK(t, t->dev->missed_calls == 0, "%u used entries came without a call",
	      t->dev->missed_calls);
}

static void test_no_interrupt_flag(struct t_ctx *t)
{
	struct fe_opts o = { .no_event_idx = true };
	struct fc *c = t_session(t, &o, NULL);
	struct fe_vring *vq = &t->dev->vq[FE_REQUEST];
	struct pollfd p = { .fd = vq->call_fd, .events = POLLIN };
	struct fuse_getattr_in in = { 0 };
	struct fc_arg arg = { &in, sizeof(in) };
	struct fuse_attr_out a;
	struct fc_req rq;
	uint64_t v;

	/* The call for the session's last reply may still be on its way (the device pushes,
	 * then calls, and the driver may see the push first): drain until 100 ms are quiet. */
	while (poll(&p, 1, 100) > 0 && read(vq->call_fd, &v, sizeof(v)) > 0)
		;
	vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	CHECK_OK(t, fc_start(c, &rq, FUSE_GETATTR, FC_ROOT, &arg, 1, sizeof(a)));
	for (int i = 0; i < 100 && fe_poll_used(t->dev, FE_REQUEST) == 0; i++)
		usleep(10 * 1000);
	CHECK(t, poll(&p, 1, 200) == 0, "the device called although the driver said not to");
	CHECK_OK(t, fc_finish(c, &rq, &a, sizeof(a), NULL));
	vq->avail->flags = 0;
	t_still_serving(t, c);
}

static void test_indirect(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	size_t size = c->init.max_write < MIB ? c->init.max_write : MIB;

	CHECK(t, t->dev->features & FE_BIT(VIRTIO_RING_F_INDIRECT_DESC),
	      "INDIRECT_DESC not negotiated");
	c->chain = FE_INDIRECT;
	c->split_pages = true; /* 256 page descriptors in one table, as the kernel does */
	write_and_read_back(t, c, "big", size);
	t_still_serving(t, c);
}

static void many_in_flight(struct t_ctx *t, enum fe_chain chain, int count)
{
	struct fc *c = t_session(t, NULL, "--thread-pool-size=4", NULL);
	struct fc_req *rq = calloc((size_t)count, sizeof(*rq));
	uint8_t data[65536], buf[4096];
	struct fuse_entry_out e;
	struct fuse_open_out o;

	CHECK(t, rq, "out of memory");
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i / 4096 + i);
	t_write_file(t, "data", data, sizeof(data));
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "data", &e));
	CHECK_OK(t, fc_open(c, e.nodeid, O_RDONLY, &o));
	c->chain = chain;
	for (int i = 0; i < count; i++) {
		struct fuse_read_in rd = { .fh = o.fh,
					   .offset = (uint64_t)(i % 16) * 4096,
					   .size = 4096 };
		struct fuse_getattr_in ga = { 0 };
		struct fc_arg arg = i % 3 == 0 ? (struct fc_arg){ &rd, sizeof(rd) } :
						 (struct fc_arg){ &ga, sizeof(ga) };

		CHECK_OK(t, fc_start(c, &rq[i], i % 3 == 0 ? FUSE_READ : FUSE_GETATTR,
				     i % 3 == 0 ? e.nodeid : FC_ROOT, &arg, 1, 4096));
	}
	/* Collected in reverse: the device may complete them in any order. */
	for (int i = count - 1; i >= 0; i--) {
		size_t len;

		CHECK_OK(t, fc_finish(c, &rq[i], buf, sizeof(buf), &len));
		if (i % 3 == 0)
			CHECK(t, len == 4096 && memcmp(buf, data + (i % 16) * 4096, 4096) == 0,
			      "READ %d returned the wrong %zu bytes", i, len);
		else
			CHECK(t, len == sizeof(struct fuse_attr_out), "GETATTR %d: %zu bytes", i,
			      len);
	}
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	free(rq);
}

static void test_many_in_flight_direct(struct t_ctx *t)
{
	many_in_flight(t, FE_DIRECT, 60); /* 4 descriptors each in a 256 ring */
}

static void test_many_in_flight_indirect(struct t_ctx *t)
{
	many_in_flight(t, FE_INDIRECT, 250);
}

static void test_ring_wrap(struct t_ctx *t)
{
	struct fe_opts o = { .queue_size = 16, .base = 65500 };
	struct fc *c = t_session(t, &o, NULL);

	run_traffic(t, c, 60, 3); /* 3 descriptors per GETATTR: 5 fit in 16 */
	CHECK(t, t->dev->vq[FE_REQUEST].avail_idx < 1000, "the index did not wrap");
}

static void test_max_queue_size(struct t_ctx *t)
{
	struct fe_opts o = { .queue_size = 32768 };
	struct fc *c = t_session(t, &o, NULL);

	run_traffic(t, c, 20, 40);
	write_and_read_back(t, c, "f", 64 * 1024);
}

/* A ring of one descriptor: every request through an indirect table, one at a time. */
static void test_queue_size_1(struct t_ctx *t)
{
	struct fe_opts o = { .queue_size = 1 };
	struct fuse_init_in in = { .major = 7, .minor = 38 };
	struct fc_arg arg = { &in, 16 };
	struct fuse_init_out out;
	struct fc *c;

	t_daemon(t, NULL);
	t_connect(t, &o);
	CHECK_FE(t, fe_start(t->dev));
	c = &t->fc;
	c->chain = FE_INDIRECT;
	CHECK_OK(t, fc_call(c, FUSE_INIT, 0, &arg, 1, &out, sizeof(out), NULL));
	run_traffic(t, c, 20, 1);
	write_and_read_back(t, c, "f", 64 * 1024);
}

/* ---- hang-ups ---- */

static void expect_clean_exit(struct t_ctx *t)
{
	int st = t_wait_exit(t, 10000);

	CHECK(t, st != -1, "the daemon did not exit within 10 s of the VMM hanging up");
	CHECK(t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the daemon ended with wait status 0x%x when the VMM hung up", st);
}

static void test_disconnect_idle(struct t_ctx *t)
{
	uint64_t f;

	t_daemon(t, NULL);
	t_connect(t, NULL);
	CHECK_FE(t, fe_get_u64(t->dev, VHOST_USER_GET_FEATURES, &f));
	fe_free(t->dev);
	t->dev = NULL;
	expect_clean_exit(t);
}

static void test_disconnect_mid_request(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--thread-pool-size=4", NULL);
	static uint8_t chunk[256 * 1024];
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc_req rq[48];

	CHECK_OK(t, fc_create(c, FC_ROOT, "f", O_RDWR | O_CREAT, 0644, &e, &o));
	c->chain = FE_INDIRECT;
	for (int i = 0; i < 48; i++) {
		struct fuse_write_in in = { .fh = o.fh,
					    .offset = (uint64_t)i * sizeof(chunk),
					    .size = sizeof(chunk) };
		struct fc_arg a[2] = { { &in, sizeof(in) }, { chunk, sizeof(chunk) } };

		CHECK_OK(t, fc_start(c, &rq[i], FUSE_WRITE, e.nodeid, a, 2,
				     sizeof(struct fuse_write_out)));
	}
	fe_free(t->dev); /* hang up with all of that in flight */
	t->dev = NULL;
	t->fc.dev = NULL;
	expect_clean_exit(t);
}

/* ---- whole VMM sequences ---- */

/* cloud-hypervisor's vhost-user-fs: client, MQ, CONFIGURE_MEM_SLOTS, REPLY_ACK on everything. */
static void test_cloud_hypervisor(struct t_ctx *t)
{
	struct fe_opts o = { .ack_all = true, .protocol_mask = CH_PROTOCOL };
	struct fe_dev *d;
	uint64_t want;

	t_daemon(t, NULL);
	d = t_connect(t, &o); /* retries every 100 ms like CH */
	CHECK_FE(t, fe_msg(d, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, false, NULL));
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_FEATURES, &d->dev_features));
	CHECK(t, d->dev_features & FE_BIT(VHOST_USER_F_PROTOCOL_FEATURES), "no PROTOCOL_FEATURES");
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_PROTOCOL_FEATURES, &d->dev_protocol));
	want = d->dev_protocol & CH_PROTOCOL;
	CHECK_FE(t, fe_set_u64(d, VHOST_USER_SET_PROTOCOL_FEATURES, want));
	d->protocol = want;
	CHECK(t, (want & REQUIRED_PROTOCOL) == REQUIRED_PROTOCOL, "negotiated 0x%llx", ull(want));
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_QUEUE_NUM, &d->queue_num));
	CHECK(t, d->queue_num >= 2, "GET_QUEUE_NUM = %llu: CH needs 1 request queue + hiprio",
	      ull(d->queue_num));
	CHECK_FE(t, fe_set_features(d));
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_MAX_MEM_SLOTS, &d->max_mem_slots));
	CHECK_FE(t, fe_send_memory(d));
	for (unsigned int q = 0; q < d->nqueues; q++) {
		fe_vring_prepare(d, q);
		CHECK_FE(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, q, d->vq[q].num));
	}
	for (unsigned int q = 0; q < d->nqueues; q++) {
		CHECK_FE(t, fe_vring_addr(d, q));
		CHECK_FE(t, fe_vring_state(d, VHOST_USER_SET_VRING_BASE, q, 0));
		CHECK_FE(t, fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, q, d->vq[q].call_fd));
		CHECK_FE(t, fe_vring_fd(d, VHOST_USER_SET_VRING_KICK, q, d->vq[q].kick_fd));
	}
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_enable(d, q, true));
	CHECK_OK(t, fc_init(&t->fc));
	write_and_read_back(t, &t->fc, "f", 128 * 1024);
}

/* The order QEMU 7.2 used in the captured trace (reference/qemu-7.2-trace.md), start to stop. */
static void test_qemu_sequence(struct t_ctx *t)
{
	struct fe_dev *d;
	struct fuse_entry_out e;
	unsigned int b0, b1;
	uint64_t f;

	t_daemon(t, NULL);
	d = t_connect(t, NULL);
	CHECK_FE(t, fe_negotiate(d));
	CHECK_FE(t, fe_get_u64(d, VHOST_USER_GET_FEATURES, &f));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_call(d, q));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, q, d->vq[q].call_fd));
	CHECK_FE(t, fe_set_features(d));
	CHECK_FE(t, fe_send_memory(d));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_setup(d, q));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_enable(d, q, true));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, q, d->vq[q].call_fd));
	/* The guest's first requests. */
	CHECK_OK(t, fc_init(&t->fc));
	t_still_serving(t, &t->fc);
	CHECK_OK(t, fc_mkdir(&t->fc, FC_ROOT, "d", 0755, &e));
	CHECK_OK(t, fc_forget(&t->fc, e.nodeid, 1));
	/* Stop. */
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_enable(d, q, false));
	CHECK_FE(t, fe_get_vring_base(d, 0, &b0));
	CHECK_FE(t, fe_get_vring_base(d, 1, &b1));
	CHECK(t, b0 == 1 && b1 == 3, "GET_VRING_BASE = %u and %u, expected 1 and 3", b0, b1);
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, q, d->vq[q].call_fd));
	CHECK(t, t_exists(t, "d"), "mkdir did not reach the host");
}

/*
 * SET_VRING_NUM after SET_VRING_ADDR: the rings were checked against guest memory for 16
 * entries; with 32768 they run 60 KiB past a region that ends right after them. The daemon
 * must refuse (nack) or re-check, never read or write outside guest memory.
 */
static void test_vring_num_after_addr(struct t_ctx *t)
{
	struct fe_opts o = { .ack_all = true };
	struct fe_dev *d;
	struct fe_vring *vq;
	uint8_t *base;
	int n, r;

	t_daemon(t, NULL);
	d = t_connect(t, &o);
	CHECK_FE(t, fe_negotiate(d));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_call(d, q));
	CHECK_FE(t, fe_set_features(d));
	CHECK_FE(t, fe_send_memory(d));
	/* Queue 1's ring alone in an 8 KiB region: desc first, used ring at the very end. */
	n = fe_region_new(d, 64 * GIB, 8192);
	CHECK(t, n >= 0, "fe_region_new: %s", strerror(-n));
	CHECK_FE(t, fe_region_add(d, n));
	base = d->regions[n].host;
	vq = &d->vq[1];
	vq->num = 16;
	vq->desc = (struct vring_desc *)base;
	vq->avail = (struct vring_avail *)(base + 4096);
	vq->used = (struct vring_used *)(base + 8192 - 136);
	CHECK_FE(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, 1, 16));
	CHECK_FE(t, fe_vring_state(d, VHOST_USER_SET_VRING_BASE, 1, 0));
	CHECK_FE(t, fe_vring_addr(d, 1));
	r = fe_vring_state(d, VHOST_USER_SET_VRING_NUM, 1, 32768);
	if (r == -EREMOTEIO)
		return; /* refused: fine */
	CHECK_FE(t, r);
	CHECK_FE(t, fe_vring_state(d, VHOST_USER_SET_VRING_BASE, 1, 30000));
	vq->used->idx = 30000;
	vq->avail->idx = 30001;
	/* Refusing to start the ring is fine too; dying is not. */
	r = fe_vring_fd(d, VHOST_USER_SET_VRING_KICK, 1, vq->kick_fd);
	if (r == 0)
		r = fe_vring_enable(d, 1, true);
	if (r == 0)
		r = fe_kick(d, 1);
	/* Up to 2 s for the daemon to (wrongly) use the ring, or to die of it. */
	for (int i = 0; r == 0 && i < 200 && t_alive(t); i++) {
		if (__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) != 30000)
			break;
		usleep(10 * 1000);
	}
	CHECK(t, t_alive(t), "the daemon died (%s) using a ring past the end of guest memory",
	      t_status(t));
	CHECK(t, r == 0 || r == -EREMOTEIO, "%s", fe_error(d));
	/* Its head (avail->ring[30000]) lies 60 KiB past the region: nothing may be used. */
	CHECK(t, __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) == 30000,
	      "the daemon used a ring that does not fit in guest memory (used index %u)",
	      vq->used->idx);
}

/* ---- what a VMM may get wrong (vfsd answers with a nack and goes on) ---- */

static void test_bad_messages_nacked(struct t_ctx *t)
{
	struct fe_opts o = { .ack_all = true };
	struct vring_desc *desc;
	struct fe_dev *d;

	t_daemon(t, NULL);
	d = t_connect(t, &o);
	CHECK_FE(t, fe_negotiate(d));
	CHECK(t, fe_set_u64(d, VHOST_USER_SET_FEATURES, d->dev_features | FE_BIT(0)) == -EREMOTEIO,
	      "SET_FEATURES with a bit not offered: %s", fe_error(d));
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, 1, 0) == -EREMOTEIO,
	      "SET_VRING_NUM 0: %s", fe_error(d));
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, 1, 100) == -EREMOTEIO,
	      "SET_VRING_NUM 100: %s", fe_error(d));
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, 1, 65536) == -EREMOTEIO,
	      "SET_VRING_NUM 65536: %s", fe_error(d));
	/* Queues past those offered (GET_QUEUE_NUM) are refused, whatever the message. */
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, (unsigned int)d->queue_num, 256) ==
			 -EREMOTEIO,
	      "SET_VRING_NUM on queue %llu: %s", ull(d->queue_num), fe_error(d));
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, UINT32_MAX, 256) == -EREMOTEIO,
	      "SET_VRING_NUM on queue 2^32-1: %s", fe_error(d));
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_BASE, 1000, 0) == -EREMOTEIO,
	      "SET_VRING_BASE on queue 1000: %s", fe_error(d));
	{
		struct vhost_vring_addr a = { .index = 0x10000 };

		CHECK(t, fe_msg(d, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, false,
				NULL) == -EREMOTEIO,
		      "SET_VRING_ADDR on queue 65536: %s", fe_error(d));
	}
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_ENABLE, 1, 1) == -EREMOTEIO,
	      "SET_VRING_ENABLE before PROTOCOL_FEATURES was acked: %s", fe_error(d));
	/* Still a working device. */
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_call(d, q));
	CHECK_FE(t, fe_set_features(d));
	CHECK(t, fe_vring_state(d, VHOST_USER_SET_VRING_ENABLE, 256, 1) == -EREMOTEIO,
	      "SET_VRING_ENABLE on queue 256: %s", fe_error(d));
	CHECK_FE(t, fe_send_memory(d));
	/* The ring addresses must lie in guest memory. */
	fe_vring_prepare(d, 1);
	CHECK_FE(t, fe_vring_state(d, VHOST_USER_SET_VRING_NUM, 1, d->vq[1].num));
	desc = d->vq[1].desc;
	d->vq[1].desc = (void *)(uintptr_t)0x1000;
	CHECK(t, fe_vring_addr(d, 1) == -EREMOTEIO, "SET_VRING_ADDR outside memory: %s",
	      fe_error(d));
	d->vq[1].desc = desc;
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_setup(d, q));
	for (unsigned int q = 0; q < d->nqueues; q++)
		CHECK_FE(t, fe_vring_enable(d, q, true));
	CHECK_OK(t, fc_init(&t->fc));
	t_still_serving(t, &t->fc);
}

#define SAME_RACE "QEMU 7.2's virtiofsd has the same race (it asserts in virtio_send_msg)"
#define NO_TAG "QEMU 7.2's virtiofsd has no --tag and never offers CONFIG"
#define LIBVHOST "libvhost-user accepts it (or calls vu_panic)"

/* The daemon's user+system CPU time so far, in seconds (all its threads). */
static double daemon_cpu(struct t_ctx *t)
{
	unsigned long long ut = 0, st = 0;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)t_serving_pid(t->pid));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		t_fail(t, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	p = strrchr(buf, ')'); /* the name may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		t_fail(t, "cannot read the CPU times in %s", path);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * Polling that does not pay stops (vhost/queue.c, "Polling"): a guest sending one request
 * every 5 ms to a daemon allowed to poll 2 ms. A fixed poll would spin 2 ms after each
 * reply (at least 0.4 s of CPU over the 200 requests); an adaptive one learns that the
 * kicks come too late and sleeps, spending a few milliseconds.
 */
static void test_poll_backs_off(struct t_ctx *t)
{
	struct fuse_attr_out a;
	struct fc *c = t_session(t, NULL, "--queue-poll-us=2000", "--thread-pool-size=0", NULL);
	double before, used;

	for (int i = 0; i < 10; i++) /* learning */
		CHECK_OK(t, fc_getattr(c, FC_ROOT, &a));
	before = daemon_cpu(t);
	for (int i = 0; i < 200; i++) {
		CHECK_OK(t, fc_getattr(c, FC_ROOT, &a));
		usleep(5000);
	}
	used = daemon_cpu(t) - before;
	CHECK(t, used < 0.15,
	      "the daemon spent %.2f s of CPU on 200 requests 5 ms apart: it kept polling", used);
}

/* Whether another thread waits for a CPU now, as the daemon's polling judges it (vhost/queue.c,
 * "Polling"): more threads ready than CPUs in /proc/loadavg. */
static bool host_busy(void)
{
	unsigned int running = 0;
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	FILE *f = fopen("/proc/loadavg", "r");

	if (!f)
		return false;
	if (fscanf(f, "%*s %*s %*s %u/", &running) != 1)
		running = 0;
	fclose(f);
	return ncpus > 0 && running > (unsigned long)ncpus;
}

/* Of the load samples a check took, those that found the host busy (host_busy). */
static unsigned int busy_samples, samples;

static void sample_load(void)
{
	busy_samples += host_busy();
	samples++;
}

/* A ring that failed to learn to poll on a host busy in most samples: nothing to judge. */
static void skip_if_host_was_busy(struct t_ctx *t)
{
	if (busy_samples * 2 > samples)
		t_skip(t, "the host had no core free for polling in %u of %u samples (another job?)",
		       busy_samples, samples);
}

/*
 * A GETATTR that the guest collects 2 ms after sending it, not waiting on the call (a vCPU
 * busy with other work meanwhile, as a guest doing asynchronous I/O is); the next is sent
 * at once. Returns how many of 100 such requests were kicked.
 */
static unsigned int kicks_of_spaced_requests(struct t_ctx *t, struct fc *c)
{
	struct fuse_getattr_in in = { 0 };
	struct fc_arg arg = { &in, sizeof(in) };
	struct fuse_attr_out a;
	unsigned int before = t->dev->kicks;
	struct fc_req rq;
	size_t len;

	for (int i = 0; i < 100; i++) {
		CHECK_OK(t, fc_start(c, &rq, FUSE_GETATTR, FC_ROOT, &arg, 1, sizeof(a)));
		usleep(2000);
		sample_load();
		CHECK_OK(t, fc_finish(c, &rq, &a, sizeof(a), &len));
	}
	return t->dev->kicks - before;
}

/*
 * A ring that is polled needs no kick: the queue thread polls with the guest's
 * notifications still off and turns them on only when it goes to sleep. Each request here
 * comes 2 ms after the last reply, well within the 20 ms the ring may be polled (the poll
 * time grows from 0 while kicks come soon after the ring went idle: the learning phase), so
 * the guest is told not to kick it. A queue thread that polled with notifications on had
 * every one of them kicked. A machine briefly too busy for polling (no core free,
 * /proc/loadavg says) needs kicks: most must still be spared in one of three tries. One
 * busy all along (another job on this machine) cannot tell: the check is skipped.
 */
static void test_poll_spares_kicks(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--queue-poll-us=20000", "--thread-pool-size=0", NULL);
	unsigned int kicks = 0;

	kicks_of_spaced_requests(t, c); /* learning */
	busy_samples = samples = 0;
	for (int try = 0; try < 3; try++) {
		kicks = kicks_of_spaced_requests(t, c);
		if (kicks < 50)
			break;
	}
	if (kicks >= 50)
		skip_if_host_was_busy(t);
	CHECK(t, kicks < 50,
	      "the guest had to kick %u of 100 requests sent while the ring was being polled",
	      kicks);
}

static volatile bool burning;

static void *burn(void *arg)
{
	(void)arg;
	while (burning)
		;
	return NULL;
}

/* Starts up to want busy threads (attr: where they run, or NULL); how many started. */
static long start_burning(pthread_t *th, long want, const pthread_attr_t *attr)
{
	long started = 0;

	burning = true;
	while (started < want && pthread_create(&th[started], attr, burn, NULL) == 0)
		started++;
	return started;
}

static void stop_burning(pthread_t *th, long started)
{
	burning = false;
	for (long k = 0; k < started; k++)
		pthread_join(th[k], NULL);
}

/*
 * No polling while no core is free for it (vhost/queue.c, "Polling"): with every CPU kept
 * busy by this process, the requests of poll-spares-kicks find a sleeping queue thread, so
 * each is kicked and the daemon spends little CPU. A daemon that ignored the load would spin
 * up to 2 ms per request on a core somebody else needs, and spare the kicks.
 */
static void test_poll_leaves_a_core(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--queue-poll-us=20000", "--thread-pool-size=0", NULL);
	cpu_set_t set;
	long n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	long want = n < 64 ? n : 64, started;
	pthread_t th[64];
	unsigned int kicks;
	double cpu0, used;

	started = start_burning(th, want, NULL);
	usleep(20000); /* the busy threads show in /proc/loadavg */
	kicks_of_spaced_requests(t, c); /* what poll-spares-kicks lets the ring learn */
	cpu0 = daemon_cpu(t);
	kicks = kicks_of_spaced_requests(t, c);
	used = daemon_cpu(t) - cpu0;
	stop_burning(th, started);
	CHECK(t, started == want, "started %ld of %ld busy threads", started, want);
	CHECK(t, kicks >= 90 && used < 0.1,
	      "with %ld busy threads on %ld CPUs the daemon polled: %u of 100 requests kicked, %.2f s of CPU",
	      started, n, kicks, used);
}

/*
 * A spin ends once another thread waits for a CPU (vhost/queue.c, "Polling"), which under
 * TCG is a vCPU or the VMM's thread the last call woke. The ring first learns to poll its
 * whole 20 ms (requests 15 ms apart), and must then catch such requests without a kick.
 * Then the queue thread is put on one CPU and, just after each reply, as many busy threads
 * as there are CPUs on another, so that all but one of them wait; the next request comes
 * 15 ms later. A daemon that kept spinning (its yield finds nobody on its own CPU: the
 * waiting threads are queued on the other) spends most of those 15 ms each time (0.32 s
 * over 20 requests, here); one that gives way sleeps until the request's kick (0.00).
 */
static void test_poll_gives_way(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--queue-poll-us=20000", "--thread-pool-size=0", NULL);
	cpu_set_t set, one;
	long n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	long want = n;
	int cpu_a = -1, cpu_b = -1;
	struct fuse_attr_out a;
	pthread_attr_t attr;
	unsigned int kicks;
	char tname[32];
	pid_t tid;
	double cpu0, used;

	if (n < 2 || n > 64)
		t_skip(t, "needs 2 to 64 CPUs, has %ld", n);
	for (int k = 0; k < CPU_SETSIZE && cpu_b < 0; k++)
		if (CPU_ISSET(k, &set)) {
			if (cpu_a < 0)
				cpu_a = k;
			else
				cpu_b = k;
		}
	busy_samples = samples = 0;
	for (int i = 0; i < 14; i++) { /* 10 us doubled 11 times is past 20 ms */
		CHECK_OK(t, fc_getattr(c, FC_ROOT, &a));
		usleep(15000);
		sample_load();
	}
	kicks = t->dev->kicks;
	for (int i = 0; i < 5; i++) {
		CHECK_OK(t, fc_getattr(c, FC_ROOT, &a));
		usleep(15000);
	}
	kicks = t->dev->kicks - kicks;
	if (kicks > 2)
		skip_if_host_was_busy(t);
	CHECK(t, kicks <= 2, "%u of 5 requests 15 ms apart were kicked: the ring did not learn to poll",
	      kicks);
	tid = t_ring_threads(t_serving_pid(t->pid), 1, tname, sizeof(tname)) == 1 ? atoi(tname) : 0;
	CPU_ZERO(&one);
	CPU_SET(cpu_a, &one);
	CHECK(t, tid > 0 && sched_setaffinity(tid, sizeof(one), &one) == 0,
	      "cannot put the daemon's queue thread (%d) on CPU %d", (int)tid, cpu_a);
	CPU_ZERO(&one);
	CPU_SET(cpu_b, &one);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
	cpu0 = daemon_cpu(t);
	for (int i = 0; i < 20; i++) {
		pthread_t th[64];
		long started;

		CHECK_OK(t, fc_getattr(c, FC_ROOT, &a)); /* the queue thread spins after it */
		started = start_burning(th, want, &attr);
		usleep(15000);
		stop_burning(th, started);
		CHECK(t, started == want, "started %ld of %ld busy threads", started, want);
	}
	used = daemon_cpu(t) - cpu0;
	pthread_attr_destroy(&attr);
	CHECK(t, used < 0.05,
	      "the daemon spent %.2f s of CPU on 20 requests 15 ms apart while %ld threads waited for a CPU",
	      used, want - 1);
}

/*
 * The hiprio queue is never polled (vhost/queue.c, "Polling"): nobody waits for a FORGET's
 * reply. FORGETs 2 ms apart, with 20 ms of polling allowed, are each kicked; a daemon that
 * polled the hiprio ring as a request ring learns to catch them and spares the kicks (as
 * poll-spares-kicks shows for requests).
 */
static void test_hiprio_not_polled(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, "--queue-poll-us=20000", "--thread-pool-size=0", NULL);
	unsigned int before, kicks;

	for (int i = 0; i < 20; i++) /* what a request ring would learn from */
		CHECK_OK(t, fc_forget(c, FC_ROOT, 0));
	before = t->dev->kicks;
	for (int i = 0; i < 100; i++) {
		usleep(2000);
		CHECK_OK(t, fc_forget(c, FC_ROOT, 0));
	}
	kicks = t->dev->kicks - before;
	CHECK(t, kicks >= 95, "only %u of 100 FORGETs 2 ms apart were kicked: the hiprio ring was polled",
	      kicks);
}

/* Waits up to 5 s for the device to have used n more entries than at base, without taking
 * its calls. */
static void wait_used(struct t_ctx *t, uint16_t base, uint16_t n)
{
	struct fe_vring *vq = &t->dev->vq[FE_REQUEST];

	for (int i = 0; i < 5000; i++) {
		if ((uint16_t)(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) - base) >= n)
			return;
		usleep(1000);
	}
	t_fail(t, "%u requests put in the ring at once were not all used within 5 s", n);
}

/*
 * A reply that is ready is signalled at once, whatever comes after it in the ring: a
 * GETATTR and, behind it in the same kick, an OPEN for writing that waits in the host kernel
 * while this process holds a lease on the file. The GETATTR's call comes while the OPEN
 * still waits (a device that shared one call among the replies of a burst would hold it
 * back: session 12 tried it, docs/benchmarks.md "Calls shared").
 */
static void test_call_not_held_behind_a_wait(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_vring *vq = &t->dev->vq[FE_REQUEST];
	struct pollfd p = { .fd = vq->call_fd, .events = POLLIN };
	struct fuse_getattr_in gin = { 0 };
	struct fc_arg ga = { &gin, sizeof(gin) };
	struct fuse_open_in oin = { .flags = O_WRONLY };
	struct fc_arg oa = { &oin, sizeof(oin) };
	struct fc_req grq, orq;
	struct fuse_attr_out a;
	struct fuse_open_out out;
	struct fuse_entry_out e;
	uint16_t base;
	uint64_t v;
	int fd, r;

	fd = t_leased_file(t, c, "leased", &e);
	while (poll(&p, 1, 100) > 0 && read(vq->call_fd, &v, sizeof(v)) > 0)
		; /* the session's last calls */

	base = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	c->hold_kick = true;
	CHECK_OK(t, fc_start(c, &grq, FUSE_GETATTR, FC_ROOT, &ga, 1, sizeof(a)));
	CHECK_OK(t, fc_start(c, &orq, FUSE_OPEN, e.nodeid, &oa, 1, sizeof(out)));
	c->hold_kick = false;
	CHECK_FE(t, fe_kick(t->dev, FE_REQUEST));
	wait_used(t, base, 1);
	CHECK(t, poll(&p, 1, 1000) == 1,
	      "the GETATTR's reply was used but not signalled while the OPEN behind it waited");
	usleep(100 * 1000);
	CHECK(t, (uint16_t)(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) - base) == 1,
	      "the OPEN for writing did not wait for the lease");

	CHECK(t, fcntl(fd, F_SETLEASE, F_UNLCK) == 0, "F_UNLCK: %s", strerror(errno));
	close(fd);
	CHECK_OK(t, fc_finish(c, &grq, &a, sizeof(a), NULL));
	r = fc_finish(c, &orq, &out, sizeof(out), NULL);
	CHECK(t, r == 0, "the OPEN after the lease ended: %s", fc_strerror(c, r));
	CHECK_OK(t, fc_release(c, e.nodeid, out.fh));
}

/* Waits up to ms for the device to have used n more entries than at base (no call taken);
 * returns how many it used. */
static uint16_t used_within(struct fe_vring *vq, uint16_t base, uint16_t n, int ms)
{
	uint16_t got = 0;

	for (int i = 0; i < ms; i++) {
		got = (uint16_t)(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) - base);
		if (got >= n)
			break;
		usleep(1000);
	}
	return got;
}

/*
 * A lost kick (lib/vhost/queue.c, vq_rescue; docs/error-handling.md): a GETATTR made
 * available with no kick, as a guest whose barrier QEMU 7.2's TCG left out makes it, is
 * served within a few seconds, and the daemon's log says a notification was lost.
 */
static void test_lost_kick_rescued(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_vring *vq = &t->dev->vq[FE_REQUEST];
	struct fuse_getattr_in in = { 0 };
	struct fc_arg arg = { &in, sizeof(in) };
	struct fuse_attr_out a;
	struct fc_req rq;
	unsigned int kicks;
	uint16_t base;
	long skip;

	usleep(100 * 1000); /* the ring's thread is asleep, no longer polling */
	skip = t_pid_log_size(t, t->pid);
	kicks = t->dev->kicks;
	base = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	c->hold_kick = true;
	CHECK_OK(t, fc_start(c, &rq, FUSE_GETATTR, FC_ROOT, &arg, 1, sizeof(a)));
	c->hold_kick = false;
	CHECK(t, used_within(vq, base, 1, 5000) == 1,
	      "a request made available with no kick was not served within 5 s");
	CHECK(t, t->dev->kicks == kicks, "the frontend kicked after all");
	CHECK_OK(t, fc_finish(c, &rq, &a, sizeof(a), NULL));
	CHECK(t, t_pid_log_has(t, t->pid, skip, "with no kick"),
	      "the daemon served it without saying a kick was lost");
	t_still_serving(t, c);
}

/*
 * A lost call: the device pushes a reply while it still sees the guest's previous
 * used_event (older than the entry), so it does not call; then the guest's write, asking
 * for a call at that entry, lands. The guest waits for a call nobody sends, unless the
 * idle ring is looked at again: one call comes within a few seconds, and only one.
 */
static void test_lost_call_rescued(struct t_ctx *t)
{
	struct fc *c = t_session(t, NULL, NULL);
	struct fe_vring *vq = &t->dev->vq[FE_REQUEST];
	struct pollfd p = { .fd = vq->call_fd, .events = POLLIN };
	struct fuse_getattr_in in = { 0 };
	struct fc_arg arg = { &in, sizeof(in) };
	uint16_t *used_event = &vq->avail->ring[vq->num];
	struct fuse_attr_out a;
	struct fc_req rq;
	uint16_t base;
	uint64_t v;
	long skip;

	CHECK(t, t->dev->features & FE_BIT(VIRTIO_RING_F_EVENT_IDX), "EVENT_IDX not negotiated");
	while (poll(&p, 1, 100) > 0 && read(vq->call_fd, &v, sizeof(v)) > 0)
		; /* the session's last calls */
	skip = t_pid_log_size(t, t->pid);
	base = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	CHECK(t, vq->last_used == base, "the frontend has %u used entries not taken",
	      (uint16_t)(base - vq->last_used));
	/* What the device sees: a used_event from long ago, already passed. */
	__atomic_store_n(used_event, (uint16_t)(base - 8), __ATOMIC_SEQ_CST);
	CHECK_OK(t, fc_start(c, &rq, FUSE_GETATTR, FC_ROOT, &arg, 1, sizeof(a)));
	CHECK(t, used_within(vq, base, 1, 5000) == 1, "the GETATTR was not served within 5 s");
	CHECK(t, poll(&p, 1, 200) == 0, "the device called for an entry the driver did not ask for");
	/* The driver's write lands late: a call at entry base, which is used already. */
	__atomic_store_n(used_event, base, __ATOMIC_SEQ_CST);
	CHECK(t, poll(&p, 1, 5000) == 1, "no call within 5 s for a used entry the driver asked a call for");
	CHECK(t, read(vq->call_fd, &v, sizeof(v)) == sizeof(v), "call eventfd: %s", strerror(errno));
	CHECK(t, poll(&p, 1, 2500) == 0, "the device called again for the same entry");
	CHECK(t, t_pid_log_has(t, t->pid, skip, "called again"),
	      "the daemon called again without saying a call was lost");
	CHECK_OK(t, fc_finish(c, &rq, &a, sizeof(a), NULL));
	t_still_serving(t, c);
}

static const struct t_case cases[] = {
	{ "features", test_features, NULL },
	{ "protocol-features", test_protocol_features, NULL },
	{ "queue-num", test_queue_num, NULL },
	{ "max-mem-slots", test_max_mem_slots, NULL },
	{ "config-tag", test_config_tag, NO_TAG },
	{ "config-tag-36-bytes", test_config_tag_36, NO_TAG },
	{ "reply-ack-add-mem-reg", test_reply_ack_add_mem_reg, NULL },
	{ "set-mem-table-4-regions", test_set_mem_table, NULL },
	{ "add-mem-reg-8-regions", test_add_mem_reg_8_regions, NULL },
	{ "mem-hotplug-while-running", test_mem_hotplug, NULL },
	{ "set-mem-table-under-load", test_set_mem_table_under_load, SAME_RACE },
	{ "set-mem-table-under-load-pool", test_set_mem_table_under_load_pool, SAME_RACE },
	{ "rem-mem-reg-unknown-region", test_rem_unknown_region, LIBVHOST },
	{ "get-vring-base", test_get_vring_base, NULL },
	{ "ring-restarts-do-not-leak", test_ring_restarts_do_not_leak, NULL },
	{ "reset-device", test_reset_device, "QEMU 7.2's virtiofsd does not offer RESET_DEVICE" },
	{ "vring-enable-late", test_vring_enable_late, NULL },
	{ "event-idx-notifications", test_event_idx, NULL },
	{ "no-event-idx-notifications", test_no_event_idx, NULL },
	{ "no-interrupt-flag", test_no_interrupt_flag, NULL },
	{ "indirect-1mib-in-pages", test_indirect, NULL },
	{ "many-in-flight-direct", test_many_in_flight_direct, NULL },
	{ "many-in-flight-indirect", test_many_in_flight_indirect, NULL },
	{ "ring-index-wrap", test_ring_wrap, NULL },
	{ "max-queue-size-32768", test_max_queue_size, NULL },
	{ "queue-size-1-indirect", test_queue_size_1, NULL },
	{ "disconnect-idle", test_disconnect_idle, NULL },
	{ "disconnect-mid-request", test_disconnect_mid_request, NULL },
	{ "cloud-hypervisor-sequence", test_cloud_hypervisor, NULL },
	{ "qemu-7.2-sequence", test_qemu_sequence, NULL },
	{ "bad-messages-nacked", test_bad_messages_nacked, LIBVHOST },
	{ "vring-num-after-addr", test_vring_num_after_addr, LIBVHOST },
	{ "poll-backs-off", test_poll_backs_off, "QEMU 7.2's virtiofsd does not poll" },
	{ "poll-spares-kicks", test_poll_spares_kicks, "QEMU 7.2's virtiofsd does not poll" },
	{ "poll-leaves-a-core", test_poll_leaves_a_core, "QEMU 7.2's virtiofsd does not poll" },
	{ "poll-gives-way", test_poll_gives_way, "QEMU 7.2's virtiofsd does not poll" },
	{ "hiprio-not-polled", test_hiprio_not_polled, "QEMU 7.2's virtiofsd does not poll" },
	{ "call-not-held-behind-a-wait", test_call_not_held_behind_a_wait, NULL },
	{ "lost-kick-rescued", test_lost_kick_rescued,
	  "QEMU 7.2's virtiofsd does not look at an idle ring" },
	{ "lost-call-rescued", test_lost_call_rescued,
	  "QEMU 7.2's virtiofsd does not look at an idle ring" },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, "protocol");
}
