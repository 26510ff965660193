#include "vhost/virtq.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "base/log.h"

static inline uint16_t load_acquire16(const volatile uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

int virtq_map(struct virtq *vq, const struct guest_mem *mem)
{
	uint64_t num = vq->num;

	/* The tail fields (used_event, avail_event) are always included: QEMU allocates them. */
	if (num == 0)
		return -EINVAL;
	/* The alignments the spec requires of the driver; anything else is refused. */
	if (vq->desc_uva % 16 || vq->avail_uva % 2 || vq->used_uva % 4)
		return -EINVAL;
	vq->desc = guest_mem_uva_ptr(mem, vq->desc_uva, num * sizeof(struct vring_desc));
	vq->avail = guest_mem_uva_ptr(mem, vq->avail_uva,
				      offsetof(struct vring_avail, ring) + num * sizeof(uint16_t) +
					      sizeof(uint16_t));
	vq->used = guest_mem_uva_ptr(mem, vq->used_uva,
				     offsetof(struct vring_used, ring) +
					     num * sizeof(struct vring_used_elem) + sizeof(uint16_t));
	/* And our own pointers, whatever the region's offsets were. */
	if (!vq->desc || !vq->avail || !vq->used || (uintptr_t)vq->desc % 16 ||
	    (uintptr_t)vq->avail % 2 || (uintptr_t)vq->used % 4) {
		virtq_unmap(vq);
		return -EFAULT;
	}
	return 0;
}

void virtq_unmap(struct virtq *vq)
{
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
}

static int add_desc(const struct guest_mem *mem, struct virtq_elem *elem, const struct vring_desc *d,
		    bool *seen_writable)
{
	uint64_t addr = d->addr;
	uint32_t len = d->len;
	bool writable = d->flags & VRING_DESC_F_WRITE;
	int cnt, r;

	if (writable) {
		*seen_writable = true;
		cnt = elem->nrd + elem->nwr;
		r = guest_mem_map_iov(mem, addr, len, elem->iov, &cnt, VIRTQ_MAX_IOV);
		elem->nwr = cnt - elem->nrd;
	} else {
		/* The spec puts every readable descriptor before the writable ones. */
		if (*seen_writable)
			return -EINVAL;
		cnt = elem->nrd;
		r = guest_mem_map_iov(mem, addr, len, elem->iov, &cnt, VIRTQ_MAX_IOV);
		elem->nrd = cnt;
	}
	return r;
}

/* Walks an indirect table: no nesting, no loops, every index inside the table. */
static int walk_indirect(const struct guest_mem *mem, const struct vring_desc *ind,
			 struct virtq_elem *elem, bool *seen_writable)
{
	const struct vring_desc *table;
	struct vring_desc d;
	uint32_t n, i = 0, steps = 0;

	if (ind->len == 0 || ind->len % sizeof(struct vring_desc) != 0)
		return -EINVAL;
	n = ind->len / sizeof(struct vring_desc);
	table = guest_mem_gpa_ptr(mem, ind->addr, ind->len);
	if (!table)
		return -EFAULT;
	for (;;) {
		if (i >= n || ++steps > n)
			return -EINVAL;
		memcpy(&d, &table[i], sizeof(d)); /* the guest may change it under us */
		if (d.flags & VRING_DESC_F_INDIRECT)
			return -EINVAL;
		int r = add_desc(mem, elem, &d, seen_writable);

		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int virtq_pop_head(struct virtq *vq, uint16_t *head)
{
	uint16_t avail_idx, h;

	if (vq->broken || !vq->avail)
		return 0;
	avail_idx = load_acquire16(&vq->avail->idx);
	if (avail_idx == vq->last_avail_idx)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->num) {
		log_error("virtqueue: avail index moved by %u on a ring of %u",
			  (uint16_t)(avail_idx - vq->last_avail_idx), vq->num);
		vq->broken = true;
		return -EIO;
	}
	h = vq->avail->ring[vq->last_avail_idx & (vq->num - 1)];
	if (h >= vq->num) {
		log_error("virtqueue: head index %u out of a ring of %u", h, vq->num);
		vq->broken = true;
		return -EIO;
	}
	vq->last_avail_idx++;
	*head = h;
	return 1;
}

int virtq_walk(const struct virtq *vq, const struct guest_mem *mem, uint16_t head,
	       struct virtq_elem *elem)
{
	unsigned int i = head, steps = 0;
	bool seen_writable = false;
	struct vring_desc d;

	elem->head = head;
	elem->nrd = 0;
	elem->nwr = 0;
	if (!vq->desc || head >= vq->num)
		return -EFAULT; /* the ring was unmapped or resized since the head was taken */
	for (;;) {
		int r;

		if (++steps > vq->num)
			return -EINVAL; /* a loop */
		memcpy(&d, &vq->desc[i], sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (d.flags & VRING_DESC_F_NEXT)
				return -EINVAL;
			r = walk_indirect(mem, &d, elem, &seen_writable);
			return r < 0 ? r : 1;
		}
		r = add_desc(mem, elem, &d, &seen_writable);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 1;
		if (d.next >= vq->num)
			return -EINVAL;
		i = d.next;
	}
}

int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct virtq_elem *elem)
{
	uint16_t head;
	int r = virtq_pop_head(vq, &head);

	if (r <= 0)
		return r;
	return virtq_walk(vq, mem, head, elem);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *ue;

	if (!vq->used)
		return;
	ue = &vq->used->ring[vq->used_idx & (vq->num - 1)];
	ue->id = head;
	ue->len = len;
	vq->used_idx++;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old, new_idx, used_event;
	bool valid;

	if (!vq->avail)
		return false;
	/* Make the used index visible before reading what the guest asked for. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load_acquire16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	valid = vq->signalled_used_valid;
	old = vq->signalled_used;
	new_idx = vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	used_event = load_acquire16(&vq->avail->ring[vq->num]);
	return vring_need_event(used_event, new_idx, old);
}

void virtq_disable_notify(struct virtq *vq)
{
	if (!vq->used || vq->event_idx)
		return; /* with EVENT_IDX, not moving avail_event is enough */
	__atomic_or_fetch(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELEASE);
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (!vq->used || vq->broken)
		return false;
	if (vq->event_idx)
		__atomic_store_n((uint16_t *)&vq->used->ring[vq->num], vq->last_avail_idx,
				 __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(&vq->used->flags, (uint16_t)~VRING_USED_F_NO_NOTIFY,
				   __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load_acquire16(&vq->avail->idx) != vq->last_avail_idx;
}

bool virtq_has_avail(const struct virtq *vq)
{
	return vq->avail && !vq->broken && load_acquire16(&vq->avail->idx) != vq->last_avail_idx;
}

uint16_t virtq_avail_pending(const struct virtq *vq)
{
	if (!vq->avail || vq->broken)
		return 0;
	return (uint16_t)(load_acquire16(&vq->avail->idx) - vq->last_avail_idx);
}

uint16_t virtq_used_event(const struct virtq *vq)
{
	if (!vq->avail || !vq->event_idx)
		return 0;
	return load_acquire16(&vq->avail->ring[vq->num]);
}

bool virtq_used_past_event(const struct virtq *vq)
{
	uint16_t past;

	if (!vq->avail || !vq->event_idx)
		return false;
	/* used_event E asks for a call once entry E is used: the index is past it at E + 1 */
	past = (uint16_t)(vq->used_idx - virtq_used_event(vq));
	return past != 0 && past < 0x8000;
}
