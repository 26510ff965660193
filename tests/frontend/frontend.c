/* The VMM half of the test frontend: socket, messages, feature negotiation, guest memory. */
#include "frontend.h"

#include "base/unix.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

/* What QEMU 7.2 would ask for, minus what needs a backend channel or a log. */
#define FE_DEFAULT_PROTOCOL                                                                        \
	(FE_BIT(VHOST_USER_PROTOCOL_F_MQ) | FE_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |              \
	 FE_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                                       \
	 FE_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | FE_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE))

void fe_seterr(struct fe_dev *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

const char *fe_error(const struct fe_dev *d)
{
	return d->err[0] ? d->err : "no error recorded";
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fe_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	long deadline = now_ms() + timeout_ms;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
		err = errno;
		close(fd);
		if ((err != ENOENT && err != ECONNREFUSED && err != EINTR) || now_ms() >= deadline)
			return -err;
		usleep(100 * 1000);
	}
}

/* ---- messages ---- */


int fe_send_raw(struct fe_dev *d, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, int nfds)
{
	struct vhost_user_header hdr = { .request = request, .flags = flags, .size = size };
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	ssize_t n;

	if (nfds < 0 || nfds > VHOST_USER_MAX_FDS)
		return -EINVAL;
	n = unix_send_fds(d->sock, iov, size ? 2 : 1, fds, (unsigned int)nfds);
	if (n < 0) {
		fe_seterr(d, "sending %s: %s", vhost_user_request_name(request), strerror((int)-n));
		return (int)n;
	}
	if ((size_t)n != sizeof(hdr) + size) {
		fe_seterr(d, "sending %s: short write", vhost_user_request_name(request));
		return -EIO;
	}
	return 0;
}

int fe_wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int fe_recv(struct fe_dev *d, struct vhost_user_msg *reply, int timeout_ms)
{
	struct iovec iov = { .iov_base = &reply->hdr, .iov_len = sizeof(reply->hdr) };
	int fds[UNIX_FDS_MAX];
	unsigned int nfds;
	size_t got = 0;
	ssize_t n;
	int r;

	reply->nfds = 0;
	r = fe_wait_readable(d->sock, timeout_ms);
	if (r < 0) {
		fe_seterr(d, "no reply from the daemon within %d ms", timeout_ms);
		return r;
	}
	n = unix_recv_fds(d->sock, &iov, 1, MSG_WAITALL, fds, UNIX_FDS_MAX, &nfds);
	if (n <= 0) {
		fe_seterr(d, "the daemon closed the connection instead of replying");
		return n == 0 ? -ECONNRESET : (int)n;
	}
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]); /* nothing here uses fds from the daemon */
	if ((size_t)n != sizeof(reply->hdr) || reply->hdr.size > VHOST_USER_MAX_PAYLOAD) {
		fe_seterr(d, "malformed reply header (%zd bytes, size %u)", n, reply->hdr.size);
		return -EPROTO;
	}
	while (got < reply->hdr.size) {
		r = fe_wait_readable(d->sock, timeout_ms);
		if (r < 0)
			return r;
		n = recv(d->sock, reply->payload.raw + got, reply->hdr.size - got, 0);
		if (n <= 0) {
			fe_seterr(d, "reply payload cut short");
			return -EPROTO;
		}
		got += n;
	}
	return 0;
}

int fe_recv_reply(struct fe_dev *d, uint32_t request, struct vhost_user_msg *m)
{
	int r = fe_recv(d, m, FE_TIMEOUT_MS);

	if (r < 0) {
		char why[sizeof(d->err)];

		snprintf(why, sizeof(why), "%s", d->err);
		fe_seterr(d, "%s: %s", vhost_user_request_name(request), why);
		return r;
	}
	if (m->hdr.request != request || !(m->hdr.flags & VHOST_USER_REPLY_MASK) ||
	    (m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
		fe_seterr(d, "%s: reply is request %u with flags 0x%x",
			  vhost_user_request_name(request), m->hdr.request, m->hdr.flags);
		return -EPROTO;
	}
	return 0;
}

int fe_msg(struct fe_dev *d, uint32_t request, const void *payload, uint32_t size, const int *fds,
	   int nfds, bool need_ack, struct vhost_user_msg *reply)
{
	bool own = vhost_user_has_own_reply(request);
	bool reply_ack = d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK);
	bool ack = !own && (need_ack || d->opts.ack_all) && reply_ack;
	/* cloud-hypervisor flags every message once REPLY_ACK is on, even the GET_* ones. */
	bool flag = ack || (own && d->opts.ack_all && reply_ack);
	struct vhost_user_msg *m = reply;
	int r;

	r = fe_send_raw(d, request, VHOST_USER_VERSION | (flag ? VHOST_USER_NEED_REPLY_MASK : 0),
			payload, size, fds, nfds);
	if (r < 0 || (!own && !ack))
		return r;
	if (!m) {
		m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
	}
	r = fe_recv_reply(d, request, m);
	if (r < 0)
		goto out;
	if (ack) {
		if (m->hdr.size != sizeof(uint64_t)) {
			fe_seterr(d, "%s: REPLY_ACK of %u bytes", vhost_user_request_name(request),
				  m->hdr.size);
			r = -EPROTO;
		} else if (m->payload.u64 != 0) {
			fe_seterr(d, "%s: the daemon said no (ack 0x%llx)",
				  vhost_user_request_name(request),
				  (unsigned long long)m->payload.u64);
			r = -EREMOTEIO;
		}
	}
out:
	if (m != reply)
		free(m);
	return r;
}

int fe_get_u64(struct fe_dev *d, uint32_t request, uint64_t *v)
{
	struct vhost_user_msg *m = malloc(sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	r = fe_msg(d, request, NULL, 0, NULL, 0, false, m);
	if (r == 0 && m->hdr.size != sizeof(uint64_t)) {
		fe_seterr(d, "%s: reply of %u bytes", vhost_user_request_name(request),
			  m->hdr.size);
		r = -EPROTO;
	}
	if (r == 0)
		*v = m->payload.u64;
	free(m);
	return r;
}

int fe_set_u64(struct fe_dev *d, uint32_t request, uint64_t v)
{
	return fe_msg(d, request, &v, sizeof(v), NULL, 0, false, NULL);
}

int fe_vring_state(struct fe_dev *d, uint32_t request, unsigned int index, unsigned int num)
{
	struct vhost_vring_state s = { .index = index, .num = num };

	return fe_msg(d, request, &s, sizeof(s), NULL, 0, false, NULL);
}

int fe_get_vring_base(struct fe_dev *d, unsigned int index, unsigned int *num)
{
	struct vhost_vring_state s = { .index = index };
	struct vhost_user_msg *m = malloc(sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	r = fe_msg(d, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0, false, m);
	if (r == 0 && (m->hdr.size != sizeof(s) || m->payload.state.index != index)) {
		fe_seterr(d, "GET_VRING_BASE: reply of %u bytes for queue %u", m->hdr.size,
			  m->payload.state.index);
		r = -EPROTO;
	}
	if (r == 0) {
		*num = m->payload.state.num;
		d->vq[index].enabled = false;
	}
	free(m);
	return r;
}

int fe_get_config(struct fe_dev *d, uint32_t offset, uint32_t size, void *buf)
{
	struct vhost_user_msg *m = malloc(sizeof(*m));
	struct vhost_user_config c = { .offset = offset, .size = size };
	uint32_t len = offsetof(struct vhost_user_config, region) + size;
	int r;

	if (!m)
		return -ENOMEM;
	if (size > VHOST_USER_CONFIG_MAX) {
		free(m);
		return -EINVAL;
	}
	r = fe_msg(d, VHOST_USER_GET_CONFIG, &c, len, NULL, 0, false, m);
	if (r == 0 && m->hdr.size != len) {
		fe_seterr(d, "GET_CONFIG: reply of %u bytes, wanted %u", m->hdr.size, len);
		r = -EPROTO;
	}
	if (r == 0 && (m->payload.config.offset != offset || m->payload.config.size != size)) {
		fe_seterr(d, "GET_CONFIG: reply for offset %u size %u", m->payload.config.offset,
			  m->payload.config.size);
		r = -EPROTO;
	}
	if (r == 0)
		memcpy(buf, m->payload.config.region, size);
	free(m);
	return r;
}

/* ---- guest memory ---- */

static void region_fill(struct vhost_user_region *out, const struct fe_region *r)
{
	out->guest_phys_addr = r->gpa;
	out->memory_size = r->size;
	out->userspace_addr = (uint64_t)(uintptr_t)r->host;
	out->mmap_offset = r->mmap_offset;
}

int fe_region_new(struct fe_dev *d, uint64_t gpa, uint64_t size)
{
	struct fe_region *r;
	void *base;
	int fd;

	if (d->nregions >= FE_MAX_REGIONS)
		return -ENOSPC;
	fd = memfd_create("fe-guest", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -errno;
	}
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		close(fd);
		return -errno;
	}
	r = &d->regions[d->nregions++];
	*r = (struct fe_region){
		.gpa = gpa, .size = size, .host = base, .map_base = base, .map_len = size, .fd = fd
	};
	return d->nregions - 1;
}

int fe_region_add(struct fe_dev *d, int i)
{
	struct vhost_user_single_region m = { 0 };
	int r;

	region_fill(&m.region, &d->regions[i]);
	r = fe_msg(d, VHOST_USER_ADD_MEM_REG, &m, sizeof(m), &d->regions[i].fd, 1, true, NULL);
	if (r == 0)
		d->regions[i].added = true;
	return r;
}

int fe_region_remove(struct fe_dev *d, int i)
{
	struct vhost_user_single_region m = { 0 };
	int r;

	region_fill(&m.region, &d->regions[i]);
	/* QEMU passes the region's fd along, and libvhost-user insists on it. */
	r = fe_msg(d, VHOST_USER_REM_MEM_REG, &m, sizeof(m), &d->regions[i].fd, 1, true, NULL);
	if (r == 0)
		d->regions[i].added = false;
	return r;
}

void *fe_ptr(struct fe_dev *d, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < d->nregions; i++) {
		struct fe_region *r = &d->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

uint64_t fe_alloc(struct fe_dev *d, int region, uint64_t size, uint64_t align)
{
	struct fe_region *r = &d->regions[region];
	uint64_t off = ALIGN_UP(r->next, align ? align : 8);

	if (off > r->size || size > r->size - off) {
		fe_seterr(d, "guest memory: region %d has no room for %llu bytes", region,
			  (unsigned long long)size);
		return 0;
	}
	r->next = off + size;
	return r->gpa + off;
}

uint64_t fe_alloc_any(struct fe_dev *d, uint64_t size)
{
	for (int tries = 0; tries < d->nregions; tries++) {
		int i = (int)(d->alloc_rr++ % (unsigned int)d->nregions);
		struct fe_region *r = &d->regions[i];

		if (r->added && ALIGN_UP(r->next, 8) + size <= r->size)
			return fe_alloc(d, i, size, 8);
	}
	fe_seterr(d, "guest memory: no region has room for %llu bytes", (unsigned long long)size);
	return 0;
}

uint64_t fe_put(struct fe_dev *d, const void *data, uint64_t len)
{
	uint64_t gpa = fe_alloc_any(d, len ? len : 1);

	if (gpa && len)
		memcpy(fe_ptr(d, gpa, len), data, len);
	return gpa;
}

void fe_mark(struct fe_dev *d, struct fe_mark *m)
{
	for (int i = 0; i < FE_MAX_REGIONS; i++)
		m->next[i] = i < d->nregions ? d->regions[i].next : 0;
}

void fe_release(struct fe_dev *d, const struct fe_mark *m)
{
	for (int i = 0; i < d->nregions; i++) {
		struct fe_region *r = &d->regions[i];

		r->next = m->next[i] >= r->base ? m->next[i] : r->base;
	}
}

/* ---- device creation ---- */

static int ring_alloc(struct fe_dev *d, struct fe_vring *vq, unsigned int num)
{
	vq->num = num;
	vq->desc_gpa = fe_alloc(d, 0, 16ull * num, 4096);
	vq->avail_gpa = fe_alloc(d, 0, 6 + 2ull * num, 4096);
	vq->used_gpa = fe_alloc(d, 0, 6 + 8ull * num, 4096);
	if (!vq->desc_gpa || !vq->avail_gpa || !vq->used_gpa)
		return -ENOMEM;
	vq->desc = fe_ptr(d, vq->desc_gpa, 16ull * num);
	vq->avail = fe_ptr(d, vq->avail_gpa, 6 + 2ull * num);
	vq->used = fe_ptr(d, vq->used_gpa, 6 + 8ull * num);
	vq->free_next = calloc(num, sizeof(*vq->free_next));
	vq->owner = calloc(num, sizeof(*vq->owner));
	vq->chain_next = calloc(num, sizeof(*vq->chain_next));
	vq->slots = calloc(num, sizeof(*vq->slots));
	if (!vq->free_next || !vq->owner || !vq->chain_next || !vq->slots)
		return -ENOMEM;
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kick_fd < 0 || vq->call_fd < 0 || vq->err_fd < 0)
		return -errno;
	return 0;
}

int fe_new(int sock, const struct fe_opts *opts, struct fe_dev **out)
{
	struct fe_dev *d = calloc(1, sizeof(*d));
	uint64_t per;
	uint8_t *base;
	int memfd, r;

	if (!d)
		return -ENOMEM;
	d->sock = sock;
	d->log.fd = d->log.notify_fd = -1;
	for (int q = 0; q < FE_MAX_QUEUES; q++)
		d->vq[q].kick_fd = d->vq[q].call_fd = d->vq[q].err_fd = -1;
	if (opts)
		d->opts = *opts;
	if (!d->opts.request_queues)
		d->opts.request_queues = 1;
	if (d->opts.request_queues >= FE_MAX_QUEUES) {
		fe_free(d);
		return -EINVAL;
	}
	d->nqueues = 1 + d->opts.request_queues;
	if (!d->opts.mem_size)
		d->opts.mem_size = 64 * MIB;
	if (d->opts.nregions <= 0)
		d->opts.nregions = 2;
	if (!d->opts.queue_size)
		d->opts.queue_size = 256;
	if (!d->opts.protocol_mask)
		d->opts.protocol_mask = FE_DEFAULT_PROTOCOL;
	if (d->opts.migration)
		d->opts.protocol_mask |= FE_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD) |
					 FE_BIT(VHOST_USER_PROTOCOL_F_DEVICE_STATE);
	if (d->opts.nregions > FE_MAX_REGIONS) {
		fe_free(d);
		return -EINVAL;
	}

	/* One memfd cut in regions at gpa 0, 4 GiB, 8 GiB...: each region has its own fd and
	 * offset into it, as QEMU sends RAM below and above a hole. */
	per = ALIGN_UP(d->opts.mem_size / d->opts.nregions, 4096);
	memfd = memfd_create("fe-guest", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)(per * d->opts.nregions)) < 0) {
		r = -errno;
		if (memfd >= 0)
			close(memfd);
		fe_free(d);
		return r;
	}
	base = mmap(NULL, per * d->opts.nregions, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		close(memfd);
		fe_free(d);
		return r;
	}
	for (int i = 0; i < d->opts.nregions; i++) {
		struct fe_region *reg = &d->regions[i];

		reg->gpa = i == 0 ? 0 : (uint64_t)i * 4 * GIB;
		reg->size = per;
		reg->mmap_offset = per * i;
		reg->host = base + per * i;
		reg->fd = i == 0 ? memfd : dup(memfd);
		if (i == 0) {
			reg->map_base = base;
			reg->map_len = per * d->opts.nregions;
		}
	}
	d->nregions = d->opts.nregions;
	/* Rings first in region 0 (never handed out as scratch); page 0 stays unused so that
	 * gpa 0 never names a buffer. */
	d->regions[0].next = 4096;
	for (unsigned int q = 0; q < d->nqueues; q++) {
		r = ring_alloc(d, &d->vq[q], d->opts.queue_size);
		if (r < 0) {
			fe_free(d);
			return r;
		}
	}
	for (int i = 0; i < d->nregions; i++)
		d->regions[i].base = d->regions[i].next;
	*out = d;
	return 0;
}

void fe_free(struct fe_dev *d)
{
	if (!d)
		return;
	if (d->sock >= 0)
		close(d->sock);
	for (int q = 0; q < FE_MAX_QUEUES; q++) {
		struct fe_vring *vq = &d->vq[q];

		if (vq->kick_fd >= 0)
			close(vq->kick_fd);
		if (vq->call_fd >= 0)
			close(vq->call_fd);
		if (vq->err_fd >= 0)
			close(vq->err_fd);
		free(vq->free_next);
		free(vq->owner);
		free(vq->chain_next);
		free(vq->slots);
	}
	for (int i = 0; i < d->nregions; i++) {
		if (d->regions[i].map_base)
			munmap(d->regions[i].map_base, d->regions[i].map_len);
		if (d->regions[i].fd >= 0)
			close(d->regions[i].fd);
	}
	if (d->log.map)
		munmap(d->log.map, d->log.map_len);
	if (d->log.fd >= 0)
		close(d->log.fd);
	if (d->log.notify_fd >= 0)
		close(d->log.notify_fd);
	free(d);
}

/* ---- set-up ---- */

int fe_negotiate(struct fe_dev *d)
{
	int r = fe_get_u64(d, VHOST_USER_GET_FEATURES, &d->dev_features);

	if (r < 0)
		return r;
	if (d->dev_features & FE_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		uint64_t want;

		r = fe_get_u64(d, VHOST_USER_GET_PROTOCOL_FEATURES, &d->dev_protocol);
		if (r < 0)
			return r;
		want = d->dev_protocol & d->opts.protocol_mask;
		r = fe_set_u64(d, VHOST_USER_SET_PROTOCOL_FEATURES, want);
		if (r < 0)
			return r;
		d->protocol = want;
	}
	if (d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_MQ)) {
		r = fe_get_u64(d, VHOST_USER_GET_QUEUE_NUM, &d->queue_num);
		if (r < 0)
			return r;
	}
	if (d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
		r = fe_get_u64(d, VHOST_USER_GET_MAX_MEM_SLOTS, &d->max_mem_slots);
		if (r < 0)
			return r;
	}
	return fe_msg(d, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, false, NULL);
}

int fe_set_features(struct fe_dev *d)
{
	uint64_t want = FE_BIT(VIRTIO_F_VERSION_1) | FE_BIT(VHOST_USER_F_PROTOCOL_FEATURES);

	if (!d->opts.no_indirect)
		want |= FE_BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (!d->opts.no_event_idx)
		want |= FE_BIT(VIRTIO_RING_F_EVENT_IDX);
	d->features = want & d->dev_features;
	if (!(d->features & FE_BIT(VIRTIO_F_VERSION_1))) {
		fe_seterr(d, "the daemon does not offer VIRTIO_F_VERSION_1 (features 0x%llx)",
			  (unsigned long long)d->dev_features);
		return -ENOTSUP;
	}
	return fe_set_u64(d, VHOST_USER_SET_FEATURES, d->features);
}

int fe_send_memory(struct fe_dev *d)
{
	struct vhost_user_memory m = { 0 };
	int fds[FE_MAX_REGIONS];
	int r;

	if (!d->opts.mem_table &&
	    (d->protocol & FE_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))) {
		for (int i = 0; i < d->nregions; i++) {
			if (d->regions[i].added)
				continue;
			r = fe_region_add(d, i);
			if (r < 0)
				return r;
		}
		return 0;
	}
	for (int i = 0; i < d->nregions; i++) {
		region_fill(&m.regions[m.nregions], &d->regions[i]);
		fds[m.nregions++] = d->regions[i].fd;
	}
	r = fe_msg(d, VHOST_USER_SET_MEM_TABLE, &m,
		   offsetof(struct vhost_user_memory, regions) +
			   m.nregions * sizeof(struct vhost_user_region),
		   fds, (int)m.nregions, true, NULL);
	for (int i = 0; i < d->nregions && r == 0; i++)
		d->regions[i].added = true;
	return r;
}

int fe_vring_call(struct fe_dev *d, unsigned int q)
{
	int r = fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, q, d->vq[q].call_fd);

	return r < 0 ? r : fe_vring_fd(d, VHOST_USER_SET_VRING_ERR, q, d->vq[q].err_fd);
}

void fe_vring_prepare(struct fe_dev *d, unsigned int q)
{
	struct fe_vring *vq = &d->vq[q];
	uint16_t base = d->opts.base;

	memset(vq->desc, 0, 16ull * vq->num);
	memset(vq->avail, 0, 6 + 2ull * vq->num);
	memset(vq->used, 0, 6 + 8ull * vq->num);
	for (unsigned int i = 0; i < vq->num; i++) {
		vq->free_next[i] = (uint16_t)(i + 1);
		vq->owner[i] = vq->chain_next[i] = 0xffff;
		vq->slots[i] = (struct fe_slot){ 0 };
	}
	vq->free_head = 0;
	vq->num_free = vq->num;
	vq->avail_idx = vq->kicked_idx = vq->last_used = base;
	vq->avail->idx = base;
	vq->used->idx = base;
	vq->avail->ring[vq->num] = base; /* used_event */
	/* avail_event as a device that stopped at base left it (a resumed ring). */
	*(uint16_t *)&vq->used->ring[vq->num] = base;
}

int fe_vring_addr(struct fe_dev *d, unsigned int q)
{
	struct fe_vring *vq = &d->vq[q];
	struct vhost_vring_addr a = {
		.index = q,
		.desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
		.used_user_addr = (uint64_t)(uintptr_t)vq->used,
		.avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
	};

	return fe_msg(d, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, false, NULL);
}

int fe_vring_fd(struct fe_dev *d, uint32_t request, unsigned int q, int fd)
{
	uint64_t v = q | (fd < 0 ? VHOST_USER_VRING_NOFD_MASK : 0);

	return fe_msg(d, request, &v, sizeof(v), &fd, fd < 0 ? 0 : 1, false, NULL);
}

int fe_vring_setup(struct fe_dev *d, unsigned int q)
{
	struct fe_vring *vq = &d->vq[q];
	int r;

	fe_vring_prepare(d, q);
	r = fe_vring_state(d, VHOST_USER_SET_VRING_NUM, q, vq->num);
	if (r == 0)
		r = fe_vring_state(d, VHOST_USER_SET_VRING_BASE, q, d->opts.base);
	if (r == 0)
		r = fe_vring_addr(d, q);
	if (r == 0)
		r = fe_vring_fd(d, VHOST_USER_SET_VRING_KICK, q, vq->kick_fd);
	return r;
}

int fe_vring_restart(struct fe_dev *d, unsigned int q)
{
	struct fe_vring *vq = &d->vq[q];
	/* The call fd first, as QEMU does: libvhost-user closed it at GET_VRING_BASE. */
	int r = fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, q, vq->call_fd);

	if (r == 0)
		r = fe_vring_state(d, VHOST_USER_SET_VRING_NUM, q, vq->num);
	if (r == 0)
		r = fe_vring_state(d, VHOST_USER_SET_VRING_BASE, q, vq->avail_idx);
	if (r == 0)
		r = fe_vring_addr(d, q);
	if (r == 0)
		r = fe_vring_fd(d, VHOST_USER_SET_VRING_KICK, q, vq->kick_fd);
	if (r == 0 && (d->features & FE_BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
		r = fe_vring_enable(d, q, true);
	return r;
}

int fe_vring_enable(struct fe_dev *d, unsigned int q, bool on)
{
	int r = fe_vring_state(d, VHOST_USER_SET_VRING_ENABLE, q, on);

	if (r == 0)
		d->vq[q].enabled = on;
	return r;
}

int fe_start(struct fe_dev *d)
{
	int r = fe_negotiate(d);

	for (unsigned int q = 0; q < d->nqueues && r == 0; q++)
		r = fe_vring_call(d, q);
	if (r == 0)
		r = fe_set_features(d);
	if (r == 0)
		r = fe_send_memory(d);
	for (unsigned int q = 0; q < d->nqueues && r == 0; q++)
		r = fe_vring_setup(d, q);
	for (unsigned int q = 0; q < d->nqueues && r == 0; q++) {
		if (d->features & FE_BIT(VHOST_USER_F_PROTOCOL_FEATURES))
			r = fe_vring_enable(d, q, true);
		else
			d->vq[q].enabled = true;
	}
	return r;
}
