/*
 * The test frontend's migration half: the VMM's side of dirty logging (SET_LOG_BASE, the ring
 * LOG flag), of the device state (SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE), and moving a
 * "guest" from one daemon to another with its memory and rings as they are.
 */
#include "frontend.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/unix.h"

#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

/* ---- migration: dirty log ---- */

/* Sends a request whose answer is a reply of its own (whatever vhost_user_has_own_reply says
 * of it) and reads that reply into *m. */
static int own_reply(struct fe_dev *d, uint32_t request, uint32_t flags, const void *payload,
		     uint32_t size, const int *fds, int nfds, struct vhost_user_msg *m)
{
	int r = fe_send_raw(d, request, flags, payload, size, fds, nfds);

	if (r < 0)
		return r;
	return r < 0 ? r : fe_recv_reply(d, request, m);
}

int fe_log_base(struct fe_dev *d)
{
	struct {
		uint64_t mmap_size, mmap_offset;
	} p = { 0 };
	struct vhost_user_msg *m = malloc(sizeof(*m));
	uint64_t end = 0, len;
	uint8_t *map;
	int fd, r;

	if (!m)
		return -ENOMEM;
	for (int i = 0; i < d->nregions; i++)
		if (d->regions[i].gpa + d->regions[i].size > end)
			end = d->regions[i].gpa + d->regions[i].size;
	/* One bit per page from gpa 0 to the end of the highest region, in whole u64s as QEMU
	 * sizes it. */
	p.mmap_size = ALIGN_UP((ALIGN_UP(end, FE_LOG_PAGE) / FE_LOG_PAGE + 7) / 8, 8);
	len = ALIGN_UP(p.mmap_size, 4096);
	fd = memfd_create("fe-log", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
		r = -errno;
		fe_seterr(d, "log memfd: %s", strerror(errno));
		goto fail;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		fe_seterr(d, "log mmap: %s", strerror(errno));
		goto fail;
	}
	r = own_reply(d, VHOST_USER_SET_LOG_BASE, VHOST_USER_VERSION, &p, sizeof(p), &fd, 1, m);
	if (r == 0 && m->hdr.size == sizeof(uint64_t) && m->payload.u64 != 0) {
		fe_seterr(d, "SET_LOG_BASE: the daemon said no (0x%llx)",
			  (unsigned long long)m->payload.u64);
		r = -EREMOTEIO;
	} else if (r == 0 && m->hdr.size != sizeof(uint64_t) && m->hdr.size != sizeof(p)) {
		fe_seterr(d, "SET_LOG_BASE: reply of %u bytes", m->hdr.size);
		r = -EPROTO;
	}
	if (r < 0) {
		munmap(map, len);
		goto fail;
	}
	if (d->log.map)
		munmap(d->log.map, d->log.map_len);
	if (d->log.fd >= 0)
		close(d->log.fd);
	d->log.fd = fd;
	d->log.map = map;
	d->log.size = p.mmap_size;
	d->log.map_len = len;
	free(m);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(m);
	return r;
}

int fe_log_fd(struct fe_dev *d)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), r;

	if (fd < 0)
		return -errno;
	r = fe_msg(d, VHOST_USER_SET_LOG_FD, NULL, 0, &fd, 1, true, NULL);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (d->log.notify_fd >= 0)
		close(d->log.notify_fd);
	d->log.notify_fd = fd;
	return 0;
}

int fe_vring_addr_log(struct fe_dev *d, unsigned int q, bool log)
{
	struct fe_vring *vq = &d->vq[q];
	struct vhost_vring_addr a = {
		.index = q,
		.flags = log ? 1u << VHOST_VRING_F_LOG : 0,
		.desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
		.used_user_addr = (uint64_t)(uintptr_t)vq->used,
		.avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
		.log_guest_addr = log ? vq->used_gpa : 0,
	};

	return fe_msg(d, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, false, NULL);
}

static int log_switch(struct fe_dev *d, bool on)
{
	uint64_t features = on ? d->features | FE_BIT(VHOST_F_LOG_ALL) :
				 d->features & ~FE_BIT(VHOST_F_LOG_ALL);
	int r;

	if (on && !(d->dev_features & FE_BIT(VHOST_F_LOG_ALL))) {
		fe_seterr(d, "the daemon does not offer VHOST_F_LOG_ALL (features 0x%llx)",
			  (unsigned long long)d->dev_features);
		return -ENOTSUP;
	}
	r = fe_set_u64(d, VHOST_USER_SET_FEATURES, features);
	if (r < 0)
		return r;
	d->features = features;
	d->log.on = on;
	for (unsigned int q = 0; q < d->nqueues && r == 0; q++)
		r = fe_vring_addr_log(d, q, on);
	return r;
}

int fe_log_start(struct fe_dev *d)
{
	return log_switch(d, true);
}

int fe_log_stop(struct fe_dev *d)
{
	return log_switch(d, false);
}

void fe_log_clear(struct fe_dev *d)
{
	if (d->log.map)
		memset(d->log.map, 0, d->log.size);
}

bool fe_log_dirty(const struct fe_dev *d, uint64_t gpa)
{
	uint64_t page = gpa / FE_LOG_PAGE;

	if (!d->log.map || page / 8 >= d->log.size)
		return false;
	return __atomic_load_n(&d->log.map[page / 8], __ATOMIC_ACQUIRE) & (1u << (page % 8));
}

uint64_t fe_log_count(const struct fe_dev *d)
{
	uint64_t n = 0;

	for (uint64_t i = 0; d->log.map && i < d->log.size; i++)
		n += (uint64_t)__builtin_popcount(
			__atomic_load_n(&d->log.map[i], __ATOMIC_ACQUIRE));
	return n;
}

int fe_log_notified(struct fe_dev *d, int timeout_ms)
{
	uint64_t v;
	int r;

	if (d->log.notify_fd < 0)
		return 0;
	r = fe_wait_readable(d->log.notify_fd, timeout_ms);
	if (r == -ETIMEDOUT)
		return 0;
	if (r < 0)
		return r;
	if (read(d->log.notify_fd, &v, sizeof(v)) < 0)
		return errno == EAGAIN ? 0 : -errno;
	return 1;
}

/* ---- migration: device state ---- */

int fe_state_fd(struct fe_dev *d, uint32_t direction, uint32_t phase, int fd, bool need_reply,
		uint64_t *result)
{
	struct {
		uint32_t direction, phase;
	} p = { direction, phase };
	struct vhost_user_msg *m = malloc(sizeof(*m));
	uint32_t flags = VHOST_USER_VERSION | (need_reply ? VHOST_USER_NEED_REPLY_MASK : 0);
	int r;

	if (!m)
		return -ENOMEM;
	r = own_reply(d, VHOST_USER_SET_DEVICE_STATE_FD, flags, &p, sizeof(p), &fd, fd >= 0 ? 1 : 0,
		      m);
	if (r == 0 && m->hdr.size != sizeof(uint64_t)) {
		fe_seterr(d, "SET_DEVICE_STATE_FD: reply of %u bytes", m->hdr.size);
		r = -EPROTO;
	}
	if (r == 0)
		*result = m->payload.u64;
	free(m);
	return r;
}

int fe_state_check(struct fe_dev *d, uint64_t *result)
{
	struct vhost_user_msg *m = malloc(sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	r = own_reply(d, VHOST_USER_CHECK_DEVICE_STATE, VHOST_USER_VERSION, NULL, 0, NULL, 0, m);
	if (r == 0 && m->hdr.size != sizeof(uint64_t)) {
		fe_seterr(d, "CHECK_DEVICE_STATE: reply of %u bytes", m->hdr.size);
		r = -EPROTO;
	}
	if (r == 0)
		*result = m->payload.u64;
	free(m);
	return r;
}

int fe_read_all(struct fe_dev *d, int fd, uint8_t **buf, size_t *len, int timeout_ms)
{
	size_t cap = 65536, got = 0;
	uint8_t *b = malloc(cap);

	if (!b)
		return -ENOMEM;
	for (;;) {
		int r = fe_wait_readable(fd, timeout_ms);
		ssize_t n;

		if (r < 0) {
			fe_seterr(d, "device state: %s after %zu bytes",
				  r == -ETIMEDOUT ? "no data and no EOF" : strerror(-r), got);
			free(b);
			return r;
		}
		if (got == cap) {
			uint8_t *nb = realloc(b, cap * 2);

			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		n = read(fd, b + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			fe_seterr(d, "device state: read: %s after %zu bytes", strerror(-r), got);
			free(b);
			return r;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*buf = b;
	*len = got;
	return 0;
}

int fe_write_all(struct fe_dev *d, int fd, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct stat st;
	bool sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	size_t done = 0;

	while (done < len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t n;
		int r;

		do {
			r = poll(&p, 1, timeout_ms);
		} while (r < 0 && errno == EINTR);
		if (r == 0) {
			fe_seterr(d, "device state: the daemon read nothing for %d ms (%zu of %zu "
				     "bytes written)",
				  timeout_ms, done, len);
			return -ETIMEDOUT;
		}
		n = sock ? send(fd, buf + done, len - done, MSG_NOSIGNAL) :
			   write(fd, buf + done, len - done);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			r = errno == ECONNRESET ? -EPIPE : -errno;
			fe_seterr(d, "device state: write: %s after %zu of %zu bytes",
				  strerror(errno), done, len);
			return r;
		}
		done += (size_t)n;
	}
	return 0;
}

/* The channel of a transfer: mine[0] is the frontend's end, mine[1] the daemon's. For a pipe
 * the daemon's end is the write end on SAVE and the read end on LOAD. */
static int state_channel(struct fe_dev *d, bool use_socketpair, uint32_t direction, int ends[2])
{
	int fds[2];

	if (use_socketpair ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 :
			     pipe2(fds, O_CLOEXEC) < 0) {
		int err = errno;

		fe_seterr(d, "device state channel: %s", strerror(err));
		return -err;
	}
	if (!use_socketpair && direction == FE_STATE_LOAD) {
		ends[0] = fds[1];
		ends[1] = fds[0];
	} else {
		ends[0] = fds[0];
		ends[1] = fds[1];
	}
	return 0;
}

/* SET_DEVICE_STATE_FD with the daemon's end (closed here); 0 when it accepted. */
static int state_start(struct fe_dev *d, uint32_t direction, int theirs)
{
	uint64_t res = 0;
	int r = fe_state_fd(d, direction, FE_PHASE_STOPPED, theirs, false, &res);

	close(theirs);
	if (r < 0)
		return r;
	if (res & 0xff) {
		fe_seterr(d, "SET_DEVICE_STATE_FD (%s) refused: 0x%llx",
			  direction == FE_STATE_SAVE ? "SAVE" : "LOAD", (unsigned long long)res);
		return FE_EREFUSED;
	}
	if (!(res & FE_STATE_NOFD)) {
		fe_seterr(d, "SET_DEVICE_STATE_FD answered 0x%llx: a channel of the daemon's own, "
			     "which this frontend does not take",
			  (unsigned long long)res);
		return -EPROTO;
	}
	return 0;
}

static int state_checked(struct fe_dev *d, const char *what)
{
	uint64_t res = 0;
	int r = fe_state_check(d, &res);

	if (r < 0)
		return r;
	if (res != 0) {
		fe_seterr(d, "CHECK_DEVICE_STATE after %s: failed (%llu)", what,
			  (unsigned long long)res);
		return FE_ECHECK;
	}
	return 0;
}

int fe_state_save(struct fe_dev *d, bool use_socketpair, uint8_t **buf, size_t *len)
{
	int ends[2], r;

	*buf = NULL;
	*len = 0;
	r = state_channel(d, use_socketpair, FE_STATE_SAVE, ends);
	if (r < 0)
		return r;
	r = state_start(d, FE_STATE_SAVE, ends[1]);
	if (r < 0) {
		close(ends[0]);
		return r;
	}
	r = fe_read_all(d, ends[0], buf, len, FE_TIMEOUT_MS);
	close(ends[0]);
	if (r < 0)
		return r;
	return state_checked(d, "SAVE");
}

int fe_state_load(struct fe_dev *d, bool use_socketpair, const uint8_t *buf, size_t len)
{
	char why[sizeof(d->err)] = "";
	int ends[2], r, w;

	r = state_channel(d, use_socketpair, FE_STATE_LOAD, ends);
	if (r < 0)
		return r;
	r = state_start(d, FE_STATE_LOAD, ends[1]);
	if (r < 0) {
		close(ends[0]);
		return r;
	}
	w = fe_write_all(d, ends[0], buf, len, FE_TIMEOUT_MS);
	close(ends[0]);
	if (w < 0 && w != -EPIPE)
		return w;
	if (w < 0)
		snprintf(why, sizeof(why), "%s", d->err);
	r = state_checked(d, "LOAD");
	if (r == 0 && w < 0) {
		fe_seterr(d, "CHECK_DEVICE_STATE says the LOAD worked, but %s", why);
		return w;
	}
	return r;
}

/* ---- migration: stopping, resuming and moving the rings ---- */

int fe_stop_rings(struct fe_dev *d)
{
	int n = 0;

	for (unsigned int q = 0; q < d->nqueues; q++) {
		int r = fe_get_vring_base(d, q, &d->stop_base[q]);

		if (r < 0)
			return r;
	}
	d->stopped = true;
	for (unsigned int q = 0; q < d->nqueues; q++) {
		fe_poll_used(d, q);
		n += (int)fe_inflight(d, q);
	}
	return n;
}

/* NUM, BASE, ADDR (with the LOG flag while logging) and KICK of a ring whose memory is kept. */
static int ring_start_at(struct fe_dev *d, unsigned int q, unsigned int base)
{
	struct fe_vring *vq = &d->vq[q];
	int r = fe_vring_state(d, VHOST_USER_SET_VRING_NUM, q, vq->num);

	if (r == 0)
		r = fe_vring_state(d, VHOST_USER_SET_VRING_BASE, q, base);
	if (r == 0)
		r = fe_vring_addr_log(d, q, d->log.on);
	if (r == 0)
		r = fe_vring_fd(d, VHOST_USER_SET_VRING_KICK, q, vq->kick_fd);
	return r;
}

static unsigned int resume_base(const struct fe_dev *d, unsigned int q)
{
	return d->stopped ? d->stop_base[q] : d->vq[q].avail_idx;
}

static int rings_enable(struct fe_dev *d)
{
	int r = 0;

	for (unsigned int q = 0; q < d->nqueues && r == 0; q++) {
		if (d->features & FE_BIT(VHOST_USER_F_PROTOCOL_FEATURES))
			r = fe_vring_enable(d, q, true);
		else
			d->vq[q].enabled = true;
	}
	if (r == 0)
		d->stopped = false;
	return r;
}

int fe_resume_rings(struct fe_dev *d)
{
	int r = 0;

	for (unsigned int q = 0; q < d->nqueues && r == 0; q++) {
		/* The call fd first, as QEMU does (fe_vring_restart). */
		r = fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, q, d->vq[q].call_fd);
		if (r == 0)
			r = ring_start_at(d, q, resume_base(d, q));
	}
	return r < 0 ? r : rings_enable(d);
}

int fe_reconnect_begin(struct fe_dev *d, int sock, int *old_sock)
{
	if (old_sock)
		*old_sock = d->sock;
	else if (d->sock >= 0)
		close(d->sock);
	d->sock = sock;
	d->dev_features = d->dev_protocol = d->features = d->protocol = 0;
	d->queue_num = d->max_mem_slots = 0;
	d->log.on = false;
	for (int i = 0; i < d->nregions; i++)
		d->regions[i].added = false;
	return fe_negotiate(d);
}

int fe_reconnect_rings(struct fe_dev *d)
{
	int r = 0;

	/* fe_start's order, with the rings kept as they are. */
	for (unsigned int q = 0; q < d->nqueues && r == 0; q++)
		r = fe_vring_call(d, q);
	if (r == 0)
		r = fe_set_features(d);
	if (r == 0)
		r = fe_send_memory(d);
	for (unsigned int q = 0; q < d->nqueues && r == 0; q++)
		r = ring_start_at(d, q, resume_base(d, q));
	return r < 0 ? r : rings_enable(d);
}

int fe_reconnect(struct fe_dev *d, int sock, int *old_sock)
{
	int r = fe_reconnect_begin(d, sock, old_sock);

	return r < 0 ? r : fe_reconnect_rings(d);
}

int fe_kick_now(struct fe_dev *d, unsigned int q)
{
	uint64_t one = 1;

	d->vq[q].kicked_idx = d->vq[q].avail_idx;
	if (write(d->vq[q].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
		fe_seterr(d, "queue %u: kick: %s", q, strerror(errno));
		return -errno;
	}
	return 0;
}

void fe_backend_lost(struct fe_dev *d)
{
	/* As QEMU when its back-end went away without a GET_VRING_BASE: a ring resumes at the
	 * last chain the device completed, so whatever it had not taken is served by the next. */
	for (unsigned int q = 0; q < d->nqueues; q++) {
		fe_poll_used(d, q);
		d->stop_base[q] = __atomic_load_n(&d->vq[q].used->idx, __ATOMIC_ACQUIRE);
	}
	d->stopped = true;
}
