/* The guest-driver half of the test frontend: split rings as the Linux virtio driver runs them. */
#include "frontend.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A used entry with no call after this long counts as a missed notification. */
#define NOTIFY_GRACE_MS 500

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool event_idx(const struct fe_dev *d)
{
	return d->features & FE_BIT(VIRTIO_RING_F_EVENT_IDX);
}

static uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint16_t *used_event(struct fe_vring *vq)
{
	return &vq->avail->ring[vq->num];
}

static uint16_t *avail_event(struct fe_vring *vq)
{
	return (uint16_t *)&vq->used->ring[vq->num];
}

struct vring_desc *fe_desc(struct fe_dev *d, unsigned int q, uint16_t i)
{
	return &d->vq[q].desc[i % d->vq[q].num];
}

int fe_desc_alloc(struct fe_dev *d, unsigned int q, int n, uint16_t *idx)
{
	struct fe_vring *vq = &d->vq[q];

	if (n <= 0 || (unsigned int)n > vq->num_free) {
		fe_seterr(d, "queue %u: %d descriptors wanted, %u free", q, n, vq->num_free);
		return -ENOSPC;
	}
	for (int i = 0; i < n; i++) {
		idx[i] = vq->free_head;
		vq->free_head = vq->free_next[idx[i]];
		vq->num_free--;
		memset(&vq->desc[idx[i]], 0, sizeof(vq->desc[0]));
	}
	for (int i = 0; i < n; i++) {
		vq->owner[idx[i]] = idx[0];
		vq->chain_next[idx[i]] = i + 1 < n ? idx[i + 1] : 0xffff;
	}
	return 0;
}

void fe_publish(struct fe_dev *d, unsigned int q, uint16_t head)
{
	struct fe_vring *vq = &d->vq[q];

	vq->slots[head] = (struct fe_slot){ .busy = true };
	vq->avail->ring[vq->avail_idx % vq->num] = head;
	vq->avail_idx++;
	store16(&vq->avail->idx, vq->avail_idx);
}

int fe_add(struct fe_dev *d, unsigned int q, const struct fe_buf *bufs, int n, enum fe_chain mode,
	   uint16_t *head)
{
	struct fe_vring *vq = &d->vq[q];
	uint16_t idx[n > 0 ? n : 1];
	int r;

	if (n <= 0)
		return -EINVAL;
	if (mode == FE_INDIRECT) {
		uint64_t table = fe_alloc_any(d, 16ull * n);
		struct vring_desc *t = table ? fe_ptr(d, table, 16ull * n) : NULL;

		if (!t)
			return -ENOMEM;
		r = fe_desc_alloc(d, q, 1, idx);
		if (r < 0)
			return r;
		for (int i = 0; i < n; i++) {
			t[i] = (struct vring_desc){
				.addr = bufs[i].gpa,
				.len = bufs[i].len,
				.flags = (bufs[i].write ? VRING_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				.next = (uint16_t)(i + 1 < n ? i + 1 : 0),
			};
		}
		vq->desc[idx[0]] = (struct vring_desc){ .addr = table,
							.len = (uint32_t)(16 * n),
							.flags = VRING_DESC_F_INDIRECT };
	} else {
		r = fe_desc_alloc(d, q, n, idx);
		if (r < 0)
			return r;
		for (int i = 0; i < n; i++) {
			vq->desc[idx[i]] = (struct vring_desc){
				.addr = bufs[i].gpa,
				.len = bufs[i].len,
				.flags = (bufs[i].write ? VRING_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				.next = i + 1 < n ? idx[i + 1] : 0,
			};
		}
	}
	fe_publish(d, q, idx[0]);
	*head = idx[0];
	return 0;
}

int fe_kick(struct fe_dev *d, unsigned int q)
{
	struct fe_vring *vq = &d->vq[q];
	uint16_t old = vq->kicked_idx, new_idx = vq->avail_idx;
	uint64_t one = 1;
	bool need;

	vq->kicked_idx = new_idx;
	/* Publish the avail index before reading what the device asked for. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (event_idx(d))
		need = vring_need_event(load16(avail_event(vq)), new_idx, old);
	else
		need = !(load16(&vq->used->flags) & VRING_USED_F_NO_NOTIFY);
	if (!need && !d->opts.always_kick) {
		d->kicks_spared++;
		return 0;
	}
	d->kicks++;
	if (write(vq->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
		fe_seterr(d, "queue %u: kick: %s", q, strerror(errno));
		return -errno;
	}
	return 0;
}

int fe_submit(struct fe_dev *d, unsigned int q, const struct fe_buf *bufs, int n,
	      enum fe_chain mode, uint16_t *head)
{
	int r = fe_add(d, q, bufs, n, mode, head);

	return r < 0 ? r : fe_kick(d, q);
}

/* Gives back the descriptors the chain took, by our own links (a test may have rewritten the
 * ring's): as many steps as the chain is long, as the Linux driver frees a chain. */
static void free_chain(struct fe_vring *vq, uint16_t head)
{
	for (uint16_t i = head; i < vq->num && vq->owner[i] == head;) {
		uint16_t next = vq->chain_next[i];

		vq->owner[i] = vq->chain_next[i] = 0xffff;
		vq->free_next[i] = vq->free_head;
		vq->free_head = i;
		vq->num_free++;
		i = next;
	}
}

int fe_poll_used(struct fe_dev *d, unsigned int q)
{
	struct fe_vring *vq = &d->vq[q];
	int n = 0;

	for (;;) {
		uint16_t used_idx = load16(&vq->used->idx);
		struct vring_used_elem e;

		if (used_idx == vq->last_used)
			break;
		if ((uint16_t)(used_idx - vq->last_used) > vq->num) {
			d->bad_used++;
			fe_seterr(d, "queue %u: used index jumped from %u to %u", q, vq->last_used,
				  used_idx);
			vq->last_used = used_idx;
			break;
		}
		e = vq->used->ring[vq->last_used % vq->num];
		vq->last_used++;
		if (e.id >= vq->num || !vq->slots[e.id].busy || vq->slots[e.id].done) {
			d->bad_used++;
			fe_seterr(d, "queue %u: used entry for chain %u, which is not in flight", q,
				  e.id);
			continue;
		}
		vq->slots[e.id].done = true;
		vq->slots[e.id].len = e.len;
		free_chain(vq, (uint16_t)e.id);
		n++;
	}
	/* Ask for a call when the next entry we have not seen is used. */
	if (event_idx(d))
		store16(used_event(vq), vq->last_used);
	return n;
}

unsigned int fe_inflight(const struct fe_dev *d, unsigned int q)
{
	const struct fe_vring *vq = &d->vq[q];
	unsigned int n = 0;

	for (unsigned int i = 0; i < vq->num; i++)
		n += vq->slots[i].busy && !vq->slots[i].done;
	return n;
}

static bool claim(struct fe_vring *vq, uint16_t head, uint32_t *len)
{
	if (!vq->slots[head].done)
		return false;
	if (len)
		*len = vq->slots[head].len;
	vq->slots[head] = (struct fe_slot){ 0 };
	return true;
}

/* Waits until something new is used or the deadline passes; counts missed calls. */
static int wait_call(struct fe_dev *d, unsigned int q, long deadline)
{
	struct fe_vring *vq = &d->vq[q];
	struct pollfd p = { .fd = vq->call_fd, .events = POLLIN };
	long left;
	uint64_t v;
	int r;

	/* Entries that arrived after the last poll but before used_event was written. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (load16(&vq->used->idx) != vq->last_used)
		return 0;
	left = deadline - now_ms();
	if (left <= 0)
		return -ETIMEDOUT;
	r = poll(&p, 1, left < NOTIFY_GRACE_MS ? (int)left : NOTIFY_GRACE_MS);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r > 0) {
		if (read(vq->call_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		return 0;
	}
	if (load16(&vq->used->idx) != vq->last_used)
		d->missed_calls++;
	return 0;
}

int fe_wait(struct fe_dev *d, unsigned int q, uint16_t head, int timeout_ms, uint32_t *len)
{
	struct fe_vring *vq = &d->vq[q];
	long deadline = now_ms() + timeout_ms;

	if (head >= vq->num || !vq->slots[head].busy) {
		fe_seterr(d, "queue %u: chain %u is not in flight", q, head);
		return -EINVAL;
	}
	for (;;) {
		int r;

		fe_poll_used(d, q);
		if (claim(vq, head, len))
			return 0;
		r = wait_call(d, q, deadline);
		if (r == -ETIMEDOUT) {
			fe_poll_used(d, q);
			if (claim(vq, head, len))
				return 0;
			fe_seterr(d, "queue %u: chain %u not used within %d ms (avail %u, used %u)",
				  q, head, timeout_ms, vq->avail_idx, load16(&vq->used->idx));
			return r;
		}
		if (r < 0)
			return r;
	}
}

int fe_wait_any(struct fe_dev *d, unsigned int q, int timeout_ms, uint16_t *head, uint32_t *len)
{
	struct fe_vring *vq = &d->vq[q];
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		int r;

		fe_poll_used(d, q);
		for (unsigned int i = 0; i < vq->num; i++) {
			if (claim(vq, (uint16_t)i, len)) {
				*head = (uint16_t)i;
				return 0;
			}
		}
		r = wait_call(d, q, deadline);
		if (r == -ETIMEDOUT) {
			fe_seterr(d, "queue %u: nothing used within %d ms (%u in flight)", q,
				  timeout_ms, fe_inflight(d, q));
			return r;
		}
		if (r < 0)
			return r;
	}
}
