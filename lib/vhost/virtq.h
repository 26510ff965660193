/*
 * Split virtqueues: popping descriptor chains (direct and indirect) as iovecs into guest
 * memory, pushing used entries, and the notification rules with and without EVENT_IDX.
 * Every guest number (head index, next index, address, length) is checked before use.
 */
#ifndef VFSD_VHOST_VIRTQ_H
#define VFSD_VHOST_VIRTQ_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost/guest_mem.h"

#define VIRTQ_MAX_SIZE 32768
/* Maximum iovecs for one chain (device-readable + device-writable). */
#define VIRTQ_MAX_IOV 1024

struct virtq {
	unsigned int num; /* ring size, a power of two, 0 = not set */
	uint64_t desc_uva, avail_uva, used_uva;
	struct vring_desc *desc; /* host pointers, NULL until virtq_map succeeds */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail_idx; /* next avail entry to take */
	uint16_t used_idx;	 /* our copy of used->idx */
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool event_idx;
	bool broken; /* the guest broke the ring: stop until reset */
	/* Dirty logging (VHOST_VRING_F_LOG): the used ring's guest-physical address. */
	bool log_used;
	uint64_t used_gpa;
};

struct virtq_elem {
	uint16_t head;
	unsigned int queue; /* set by the device: which ring the chain came from */
	int nrd; /* device-readable iovecs: iov[0 .. nrd) */
	int nwr; /* device-writable iovecs: iov[nrd .. nrd+nwr) */
	struct iovec iov[VIRTQ_MAX_IOV];
};

static inline struct iovec *virtq_elem_rd(struct virtq_elem *e)
{
	return e->iov;
}
static inline struct iovec *virtq_elem_wr(struct virtq_elem *e)
{
	return e->iov + e->nrd;
}

/* Resolves the ring addresses into host pointers; -EFAULT if any part is not mapped. */
int virtq_map(struct virtq *vq, const struct guest_mem *mem);
void virtq_unmap(struct virtq *vq);

/*
 * Takes the next available chain. Returns 1 with *elem filled, 0 when the ring is empty,
 * -EINVAL when the chain is malformed (elem->head is valid: push it with length 0), or -EIO
 * when the ring itself is broken (vq->broken is set; stop using the queue).
 */
int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct virtq_elem *elem);
/* The two halves of virtq_pop: take the next head (1, 0 when empty, -EIO when the ring is
 * broken), then translate its chain with the memory map of the moment. */
int virtq_pop_head(struct virtq *vq, uint16_t *head);
int virtq_walk(const struct virtq *vq, const struct guest_mem *mem, uint16_t head,
	       struct virtq_elem *elem);
/* Returns a chain to the guest with len bytes written into its writable part. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* Whether the guest wants an interrupt for what was pushed since the last one. */
bool virtq_should_notify(struct virtq *vq);
/* Asks the guest not to kick while we drain the ring. */
void virtq_disable_notify(struct virtq *vq);
/* Asks the guest to kick again; returns true if entries arrived meanwhile (drain again). */
bool virtq_enable_notify(struct virtq *vq);
/* Whether the driver has made chains available that were not popped yet. */
bool virtq_has_avail(const struct virtq *vq);
/* How many: the avail index less the next one to pop (0 on a broken or unmapped ring). */
uint16_t virtq_avail_pending(const struct virtq *vq);
/* With EVENT_IDX: whether the used index went past the driver's used_event, i.e. the driver
 * asked for a call at an entry it has not taken yet (always false without EVENT_IDX). */
bool virtq_used_past_event(const struct virtq *vq);
/* The driver's used_event (0 without EVENT_IDX or a mapped ring). */
uint16_t virtq_used_event(const struct virtq *vq);

#endif
