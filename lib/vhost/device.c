#include "vhost/device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <linux/virtio_fs.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/unix.h"
#include "base/util.h"
#include "vhost/device_int.h"
#include "vhost/protocol.h"

#define VHOST_DEV_MAX_MEM_SLOTS GUEST_MEM_MAX_REGIONS

_Static_assert(VHOST_DEV_NUM_QUEUES == VHOST_USER_VRING_IDX_MASK + 1,
	       "every ring SET_VRING_KICK/CALL/ERR can name, and no more");

static const uint64_t offered_features = (1ull << VIRTIO_F_VERSION_1) |
					 (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
					 (1ull << VIRTIO_RING_F_EVENT_IDX) |
					 (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |
					 (1ull << VHOST_F_LOG_ALL);

static uint64_t offered_protocol_features(const struct vhost_dev *dev)
{
	uint64_t f = (1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
		     (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
		     (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
		     (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD);

	if (dev->backend.save_state && dev->backend.load_state)
		f |= 1ull << VHOST_USER_PROTOCOL_F_DEVICE_STATE;
	if (dev->has_tag)
		f |= 1ull << VHOST_USER_PROTOCOL_F_CONFIG;
	return f;
}

/* ---- messages ---- */

/* The device-state transfer thread has ended (joined once). */
static void join_state_thread(struct vhost_dev *dev)
{
	if (dev->state_running) {
		pthread_join(dev->state_thread, NULL);
		dev->state_running = false;
	}
}

/* The ring a message names, allocated the first time; an index past those offered is
 * refused. */
static int msg_vq(struct vhost_dev *dev, const struct vhost_user_msg *msg, uint32_t index,
		  struct vhost_vq **out)
{
	if (index >= VHOST_DEV_NUM_QUEUES) {
		log_error("vhost-user: %s names queue %u, %u are offered",
			  vhost_user_request_name(msg->hdr.request), index, VHOST_DEV_NUM_QUEUES);
		return -EINVAL;
	}
	*out = vhost_dev_vq(dev, index);
	if (!*out) {
		log_error("vhost-user: queue %u: out of memory", index);
		return -ENOMEM;
	}
	return 0;
}

static int take_fd_from(struct vhost_user_msg *msg)
{
	int fd;

	if (msg->nfds < 1)
		return -1;
	fd = msg->fds[0];
	msg->fds[0] = -1;
	return fd;
}

static int reply_u64(struct vhost_user_msg *msg, uint64_t v)
{
	msg->hdr.size = sizeof(uint64_t);
	msg->payload.u64 = v;
	return 1;
}

static int need_size(const struct vhost_user_msg *msg, size_t size)
{
	if (msg->hdr.size < size) {
		log_error("vhost-user: %s payload of %u bytes, need %zu",
			  vhost_user_request_name(msg->hdr.request), msg->hdr.size, size);
		return -EINVAL;
	}
	return 0;
}

static int handle_set_features(struct vhost_dev *dev, uint64_t features)
{
	if (features & ~offered_features) {
		log_error("vhost-user: SET_FEATURES 0x%llx has bits we did not offer",
			  (unsigned long long)features);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&dev->mem_lock);
	if ((features ^ dev->acked_features) & (1ull << VHOST_F_LOG_ALL))
		log_info("vhost-user: dirty logging %s", (features & (1ull << VHOST_F_LOG_ALL)) ?
								 "on (migration starts)" :
								 "off");
	dev->acked_features = features;
	dev->features_set = true;
	dev->logging = (features & (1ull << VHOST_F_LOG_ALL)) && dev->log.bits;
	/* Rings named later start out the same way (vhost_dev_vq). */
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		struct vhost_vq *vq = dev->vqs[i];

		if (!vq)
			continue;
		pthread_mutex_lock(&vq->lock);
		vq->ring.event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
		if (!(features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
			vq->enabled = true;
		pthread_mutex_unlock(&vq->lock);
	}
	pthread_rwlock_unlock(&dev->mem_lock);
	return 0;
}

static int add_region(struct vhost_dev *dev, const struct vhost_user_region *r, int fd)
{
	int ret = guest_mem_add(&dev->mem, fd, r->guest_phys_addr, r->memory_size,
				r->userspace_addr, r->mmap_offset);

	if (ret < 0)
		log_error("vhost-user: cannot map region gpa=0x%llx size=0x%llx: %s",
			  (unsigned long long)r->guest_phys_addr,
			  (unsigned long long)r->memory_size, strerror(-ret));
	return ret;
}

static int handle_set_mem_table(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	const struct vhost_user_memory *m = &msg->payload.memory;
	int r = need_size(msg, offsetof(struct vhost_user_memory, regions));

	if (r < 0)
		return r;
	if (m->nregions > VHOST_USER_MEM_TABLE_MAX || (int)m->nregions != msg->nfds ||
	    msg->hdr.size < offsetof(struct vhost_user_memory, regions) +
				    m->nregions * sizeof(struct vhost_user_region)) {
		log_error("vhost-user: SET_MEM_TABLE with %u regions, %d fds, %u bytes", m->nregions,
			  msg->nfds, msg->hdr.size);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&dev->mem_lock);
	guest_mem_clear(&dev->mem);
	for (unsigned int i = 0; i < m->nregions && r == 0; i++)
		r = add_region(dev, &m->regions[i], msg->fds[i]);
	if (r < 0)
		guest_mem_clear(&dev->mem);
	remap_rings(dev);
	pthread_rwlock_unlock(&dev->mem_lock);
	return r;
}

static int handle_mem_reg(struct vhost_dev *dev, struct vhost_user_msg *msg, bool add)
{
	const struct vhost_user_region *reg = &msg->payload.mem_reg.region;
	int r = need_size(msg, sizeof(struct vhost_user_single_region));

	if (r < 0)
		return r;
	if (add && msg->nfds != 1) {
		log_error("vhost-user: ADD_MEM_REG with %d fds", msg->nfds);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&dev->mem_lock);
	if (add) {
		r = add_region(dev, reg, msg->fds[0]);
	} else {
		r = guest_mem_remove(&dev->mem, reg->guest_phys_addr, reg->memory_size);
		if (r < 0)
			log_error("vhost-user: REM_MEM_REG of unknown region gpa=0x%llx",
				  (unsigned long long)reg->guest_phys_addr);
	}
	remap_rings(dev);
	pthread_rwlock_unlock(&dev->mem_lock);
	return r;
}

static int handle_vring_fd(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	struct vhost_vq *vq;
	uint64_t v;
	int r = need_size(msg, sizeof(uint64_t));
	int fd;

	if (r < 0)
		return r;
	v = msg->payload.u64;
	r = msg_vq(dev, msg, v & VHOST_USER_VRING_IDX_MASK, &vq);
	if (r < 0)
		return r;
	if (v & VHOST_USER_VRING_NOFD_MASK) {
		fd = -1;
	} else {
		fd = take_fd_from(msg);
		if (fd < 0) {
			log_error("vhost-user: %s without an fd", vhost_user_request_name(msg->hdr.request));
			return -EINVAL;
		}
	}
	switch (msg->hdr.request) {
	case VHOST_USER_SET_VRING_KICK:
		/* No request runs against a table that a LOAD is still filling. */
		join_state_thread(dev);
		vq_stop(vq);
		if (fd < 0) {
			log_error("queue %u: polling mode (no kick fd) is not supported", vq->index);
			return -EINVAL;
		}
		vq->kick_fd = fd;
		return vq_start(vq);
	case VHOST_USER_SET_VRING_CALL:
		pthread_mutex_lock(&vq->lock);
		vfsd_closep(&vq->call_fd);
		vq->call_fd = fd;
		pthread_mutex_unlock(&vq->lock);
		return 0;
	default:
		pthread_mutex_lock(&vq->lock);
		vfsd_closep(&vq->err_fd);
		vq->err_fd = fd;
		pthread_mutex_unlock(&vq->lock);
		return 0;
	}
}

static int handle_vring_state(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	struct vhost_vring_state *s = &msg->payload.state;
	struct vhost_vq *vq;
	int r = need_size(msg, sizeof(*s));

	if (r < 0)
		return r;
	r = msg_vq(dev, msg, s->index, &vq);
	if (r < 0)
		return r;
	switch (msg->hdr.request) {
	case VHOST_USER_SET_VRING_NUM:
		if (s->num == 0 || s->num > VIRTQ_MAX_SIZE || (s->num & (s->num - 1))) {
			log_error("queue %u: bad ring size %u", s->index, s->num);
			return -EINVAL;
		}
		if (vq->started)
			return -EBUSY;
		pthread_rwlock_wrlock(&dev->mem_lock);
		vq->ring.num = s->num;
		r = 0;
		/* A new size must still fit the addresses given before. */
		if (vq->ring.desc_uva && virtq_map(&vq->ring, &dev->mem) < 0) {
			log_error("queue %u: a ring of %u does not fit its addresses", s->index, s->num);
			r = -EINVAL;
		}
		pthread_rwlock_unlock(&dev->mem_lock);
		return r;
	case VHOST_USER_SET_VRING_BASE:
		if (vq->started)
			return -EBUSY;
		vq->ring.last_avail_idx = (uint16_t)s->num;
		return 0;
	case VHOST_USER_GET_VRING_BASE:
		vq_stop(vq);
		s->num = vq->ring.last_avail_idx;
		msg->hdr.size = sizeof(*s);
		return 1;
	default: /* SET_VRING_ENABLE */
		if (!(dev->acked_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))) {
			log_error("vhost-user: SET_VRING_ENABLE before PROTOCOL_FEATURES was acked");
			return -EINVAL;
		}
		pthread_mutex_lock(&vq->lock);
		vq->enabled = s->num != 0;
		pthread_mutex_unlock(&vq->lock);
		/* Look at the ring now in case the guest kicked while it was disabled. */
		if (vq->enabled && vq->started)
			vq_self_kick(vq);
		return 0;
	}
}

static int handle_vring_addr(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	struct vhost_vring_addr *a = &msg->payload.addr;
	struct vhost_vq *vq;
	int r = need_size(msg, sizeof(*a));

	if (r < 0)
		return r;
	r = msg_vq(dev, msg, a->index, &vq);
	if (r < 0)
		return r;
	if (a->flags & ~(1u << VHOST_VRING_F_LOG)) {
		log_error("queue %u: ring address flags 0x%x", a->index, a->flags);
		return -EINVAL;
	}
	if (vq->started) {
		/* QEMU turns logging on and off with the same addresses on a running ring (as
		 * migration starts or is cancelled): only the log fields change then. */
		if (a->desc_user_addr != vq->ring.desc_uva || a->avail_user_addr != vq->ring.avail_uva ||
		    a->used_user_addr != vq->ring.used_uva)
			return -EBUSY;
		pthread_rwlock_wrlock(&dev->mem_lock);
		vq->ring.log_used = a->flags & (1u << VHOST_VRING_F_LOG);
		vq->ring.used_gpa = a->log_guest_addr;
		pthread_rwlock_unlock(&dev->mem_lock);
		return 0;
	}
	pthread_rwlock_wrlock(&dev->mem_lock);
	vq->ring.log_used = a->flags & (1u << VHOST_VRING_F_LOG);
	vq->ring.used_gpa = a->log_guest_addr;
	vq->ring.desc_uva = a->desc_user_addr;
	vq->ring.avail_uva = a->avail_user_addr;
	vq->ring.used_uva = a->used_user_addr;
	r = virtq_map(&vq->ring, &dev->mem);
	if (r < 0) {
		/* Forget them: a later SET_VRING_NUM must not be judged against them. */
		log_error("queue %u: ring addresses are not in guest memory", a->index);
		vq->ring.desc_uva = vq->ring.avail_uva = vq->ring.used_uva = 0;
	}
	pthread_rwlock_unlock(&dev->mem_lock);
	return r;
}

static int handle_get_config(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	struct vhost_user_config *c = &msg->payload.config;
	struct virtio_fs_config cfg;
	int r = need_size(msg, offsetof(struct vhost_user_config, region));

	if (r < 0)
		return r;
	if (!dev->has_tag) {
		log_error("vhost-user: GET_CONFIG without --tag");
		return -EINVAL;
	}
	if (c->size > VHOST_USER_CONFIG_MAX || c->offset > VHOST_USER_CONFIG_MAX) {
		log_error("vhost-user: GET_CONFIG offset %u size %u", c->offset, c->size);
		return -EINVAL;
	}
	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.tag, dev->tag, sizeof(cfg.tag));
	/* The one count every VMM provides: a device cannot tell how many rings the VMM made
	 * before the guest reads this, and a guest told of more would fail to set them up.
	 * QEMU's vhost-user-fs-pci and cloud-hypervisor fill in their own num_request_queues. */
	cfg.num_request_queues = 1;
	memset(c->region, 0, c->size);
	if (c->offset < sizeof(cfg))
		memcpy(c->region, (uint8_t *)&cfg + c->offset, MIN(c->size, sizeof(cfg) - c->offset));
	msg->hdr.size = offsetof(struct vhost_user_config, region) + c->size;
	return 1;
}

/* SET_LOG_BASE: the dirty bitmap; SET_LOG_FD: who to tell when it changes. */
static int handle_set_log_base(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	struct {
		uint64_t mmap_size, mmap_offset;
	} log;
	int r = need_size(msg, sizeof(log));

	if (r < 0)
		return r;
	if (msg->nfds != 1) {
		log_error("vhost-user: SET_LOG_BASE with %d fds (LOG_SHMFD gives one)", msg->nfds);
		return -EINVAL;
	}
	memcpy(&log, msg->payload.raw, sizeof(log));
	pthread_rwlock_wrlock(&dev->mem_lock);
	r = vhost_log_set(&dev->log, msg->fds[0], log.mmap_size, log.mmap_offset);
	dev->logging = (dev->acked_features & (1ull << VHOST_F_LOG_ALL)) && dev->log.bits;
	pthread_rwlock_unlock(&dev->mem_lock);
	if (r < 0) {
		log_error("vhost-user: cannot map the dirty log (%llu bytes at %llu): %s",
			  (unsigned long long)log.mmap_size, (unsigned long long)log.mmap_offset,
			  strerror(-r));
		return r;
	}
	log_debug("vhost-user: dirty log of %llu bytes", (unsigned long long)log.mmap_size);
	return reply_u64(msg, 0);
}

static int handle_set_log_fd(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	int fd = take_fd_from(msg), old;

	if (fd < 0) {
		log_error("vhost-user: SET_LOG_FD without an fd");
		return -EINVAL;
	}
	old = __atomic_exchange_n(&dev->log.call_fd, fd, __ATOMIC_ACQ_REL);
	/* Queue threads may be writing to the old one: close it under the write lock. */
	pthread_rwlock_wrlock(&dev->mem_lock);
	vfsd_closep(&old);
	pthread_rwlock_unlock(&dev->mem_lock);
	return 0;
}

/* ---- device state (live migration, snapshots) ---- */

/* A VMM that neither reads nor closes its end does not keep the transfer (and the CHECK that
 * waits for it) forever. */
#define VHOST_DEV_STATE_TIMEOUT_MS (5 * 60 * 1000)

struct state_job {
	struct vhost_dev *dev;
	int fd;
	bool save;
};

static void *state_thread(void *arg)
{
	struct state_job *job = arg;
	struct vhost_dev *dev = job->dev;
	const struct vhost_backend *b = &dev->backend;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (dev->thread_init)
		dev->thread_init();
	if (job->save) {
		r = b->save_state(b->opaque, &buf, &len);
		if (r == 0) {
			r = fd_write_all(job->fd, buf, len, VHOST_DEV_STATE_TIMEOUT_MS);
			if (r < 0)
				log_error("migration: writing the device state: %s", strerror(-r));
			else
				log_info("migration: device state saved (%zu bytes)", len);
		}
	} else {
		r = fd_read_all(job->fd, VHOST_DEV_STATE_MAX, VHOST_DEV_STATE_TIMEOUT_MS, &buf,
				 &len);
		if (r < 0)
			log_error("migration: reading the device state: %s%s", strerror(-r),
				  r == -EFBIG ? " (more than 1 GiB)" : "");
		else
			r = b->load_state(b->opaque, buf, len);
		if (r == 0)
			log_info("migration: device state loaded (%zu bytes)", len);
	}
	free(buf);
	close(job->fd); /* EOF for the reader of a SAVE */
	__atomic_store_n(&dev->state_result, r, __ATOMIC_RELEASE);
	free(job);
	return NULL;
}

#define DEVICE_STATE_NO_FD (1ull << 8) /* reply: the back-end returns no fd of its own */

static int handle_set_device_state_fd(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	struct {
		uint32_t direction, phase;
	} p;
	struct state_job *job;
	int r = need_size(msg, sizeof(p)), fd;

	if (r < 0)
		return reply_u64(msg, DEVICE_STATE_NO_FD | 1); /* it has a reply of its own */
	memcpy(&p, msg->payload.raw, sizeof(p));
	if (!(dev->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_DEVICE_STATE))) {
		log_error("vhost-user: SET_DEVICE_STATE_FD without DEVICE_STATE negotiated");
		return reply_u64(msg, DEVICE_STATE_NO_FD | 1);
	}
	if (p.direction > 1 || p.phase != 0) {
		log_error("vhost-user: SET_DEVICE_STATE_FD direction %u phase %u (vfsd transfers in phase STOPPED only)",
			  p.direction, p.phase);
		return reply_u64(msg, DEVICE_STATE_NO_FD | 1);
	}
	fd = take_fd_from(msg);
	if (fd < 0) {
		log_error("vhost-user: SET_DEVICE_STATE_FD without an fd");
		return reply_u64(msg, DEVICE_STATE_NO_FD | 1);
	}
	/* One transfer at a time: the previous one ends first (its result is dropped unless it
	 * was checked). */
	join_state_thread(dev);
	for (unsigned int i = 0; i < dev->nvqs; i++)
		if (dev->vqs[i] && dev->vqs[i]->started)
			log_warn("migration: queue %u still runs during the %s", i,
				 p.direction ? "LOAD" : "SAVE");
	job = malloc(sizeof(*job));
	if (!job) {
		close(fd);
		return reply_u64(msg, DEVICE_STATE_NO_FD | 1);
	}
	*job = (struct state_job){ .dev = dev, .fd = fd, .save = p.direction == 0 };
	dev->state_result = -EINPROGRESS;
	r = pthread_create(&dev->state_thread, NULL, state_thread, job);
	if (r) {
		log_error("migration: cannot start the transfer thread: %s", strerror(r));
		close(fd);
		free(job);
		return reply_u64(msg, DEVICE_STATE_NO_FD | 1);
	}
	dev->state_running = true;
	dev->state_pending = true;
	log_info("migration: %s of the device state started", p.direction ? "LOAD" : "SAVE");
	return reply_u64(msg, DEVICE_STATE_NO_FD);
}

static int handle_check_device_state(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	int r;

	if (!dev->state_pending) {
		log_error("migration: CHECK_DEVICE_STATE without a transfer before it");
		return reply_u64(msg, 1);
	}
	join_state_thread(dev);
	dev->state_pending = false;
	r = __atomic_load_n(&dev->state_result, __ATOMIC_ACQUIRE);
	if (r < 0)
		log_error("migration: the device state transfer failed: %s", strerror(-r));
	return reply_u64(msg, r < 0 ? 1 : 0);
}

static void reset_device(struct vhost_dev *dev)
{
	int fd;

	/* A transfer under way ends first: its LOAD must not refill what the reset empties. */
	join_state_thread(dev);
	dev->state_pending = false;
	for (unsigned int i = 0; i < dev->nvqs; i++)
		if (dev->vqs[i])
			vq_reset(dev->vqs[i]);
	dev->acked_features = 0;
	dev->features_set = false;
	pthread_rwlock_wrlock(&dev->mem_lock);
	dev->logging = false;
	vhost_log_clear(&dev->log);
	fd = __atomic_exchange_n(&dev->log.call_fd, -1, __ATOMIC_ACQ_REL);
	vfsd_closep(&fd);
	pthread_rwlock_unlock(&dev->mem_lock);
	if (dev->backend.reset)
		dev->backend.reset(dev->backend.opaque);
}

/* Returns 1 when msg holds a reply to send, 0 when done, negative errno on failure. */
static int dispatch(struct vhost_dev *dev, struct vhost_user_msg *msg)
{
	switch (msg->hdr.request) {
	case VHOST_USER_GET_FEATURES:
		return reply_u64(msg, offered_features);
	case VHOST_USER_SET_FEATURES: {
		int r = need_size(msg, sizeof(uint64_t));

		return r < 0 ? r : handle_set_features(dev, msg->payload.u64);
	}
	case VHOST_USER_SET_OWNER:
		return 0;
	case VHOST_USER_RESET_OWNER:
		reset_device(dev);
		return 0;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return reply_u64(msg, offered_protocol_features(dev));
	case VHOST_USER_SET_PROTOCOL_FEATURES: {
		int r = need_size(msg, sizeof(uint64_t));

		if (r < 0)
			return r;
		if (msg->payload.u64 & ~offered_protocol_features(dev)) {
			log_error("vhost-user: SET_PROTOCOL_FEATURES 0x%llx has bits we did not offer",
				  (unsigned long long)msg->payload.u64);
			return -EINVAL;
		}
		dev->protocol_features = msg->payload.u64;
		return 0;
	}
	case VHOST_USER_GET_QUEUE_NUM:
		return reply_u64(msg, VHOST_DEV_NUM_QUEUES);
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		return reply_u64(msg, VHOST_DEV_MAX_MEM_SLOTS);
	case VHOST_USER_SET_MEM_TABLE:
		return handle_set_mem_table(dev, msg);
	case VHOST_USER_ADD_MEM_REG:
		return handle_mem_reg(dev, msg, true);
	case VHOST_USER_REM_MEM_REG:
		return handle_mem_reg(dev, msg, false);
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		return handle_vring_state(dev, msg);
	case VHOST_USER_SET_VRING_ADDR:
		return handle_vring_addr(dev, msg);
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return handle_vring_fd(dev, msg);
	case VHOST_USER_GET_CONFIG:
		return handle_get_config(dev, msg);
	case VHOST_USER_RESET_DEVICE:
		reset_device(dev);
		return 0;
	case VHOST_USER_SET_LOG_BASE:
		return handle_set_log_base(dev, msg);
	case VHOST_USER_SET_LOG_FD:
		return handle_set_log_fd(dev, msg);
	case VHOST_USER_SET_DEVICE_STATE_FD:
		if (!dev->backend.save_state)
			break;
		return handle_set_device_state_fd(dev, msg);
	case VHOST_USER_CHECK_DEVICE_STATE:
		if (!dev->backend.save_state)
			break;
		return handle_check_device_state(dev, msg);
	default:
		break;
	}
	log_error("vhost-user: unsupported request %s (%u)",
		  vhost_user_request_name(msg->hdr.request), msg->hdr.request);
	return -EOPNOTSUPP;
}


static int recv_msg(int sock, struct vhost_user_msg *msg)
{
	struct iovec iov = { .iov_base = &msg->hdr, .iov_len = sizeof(msg->hdr) };
	unsigned int nfds;
	ssize_t n = unix_recv_fds(sock, &iov, 1, 0, msg->fds, VHOST_USER_MAX_FDS, &nfds);

	msg->nfds = (int)nfds;
	if (n == 0)
		return -ECONNRESET;
	if (n == -EMSGSIZE) {
		log_error("vhost-user: too many file descriptors in one message");
		for (int i = 0; i < msg->nfds; i++)
			close(msg->fds[i]);
		msg->nfds = 0;
		return -EPROTO;
	}
	if (n < 0)
		return (int)n;
	if ((size_t)n != sizeof(msg->hdr)) {
		log_error("vhost-user: short header (%zd bytes)", n);
		return -EPROTO;
	}
	if ((msg->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
		log_error("vhost-user: protocol version %u", msg->hdr.flags & VHOST_USER_VERSION_MASK);
		return -EPROTO;
	}
	if (msg->hdr.size > VHOST_USER_MAX_PAYLOAD) {
		log_error("vhost-user: payload of %u bytes is too large", msg->hdr.size);
		return -EPROTO;
	}
	size_t got = 0;

	while (got < msg->hdr.size) {
		n = recv(sock, msg->payload.raw + got, msg->hdr.size - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("vhost-user: payload cut short");
			return -EPROTO;
		}
		got += n;
	}
	memset(msg->payload.raw + got, 0, sizeof(msg->payload.raw) - got);
	return 0;
}

static int send_reply(int sock, struct vhost_user_msg *msg)
{
	struct iovec iov[2] = {
		{ .iov_base = &msg->hdr, .iov_len = sizeof(msg->hdr) },
		{ .iov_base = msg->payload.raw, .iov_len = msg->hdr.size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t left = sizeof(msg->hdr) + msg->hdr.size;

	msg->hdr.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
	while (left > 0) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		left -= (size_t)n;
		/* A short send on a unix socket is rare; step past what went out. */
		while (n > 0 && mh.msg_iovlen > 0) {
			size_t step = MIN((size_t)n, mh.msg_iov->iov_len);

			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (mh.msg_iov->iov_len == 0) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

int vhost_dev_handle_msg(struct vhost_dev *dev, int sock)
{
	struct vhost_user_msg *msg = malloc(sizeof(*msg));
	int r, ret = 0;
	bool need_ack;

	if (!msg)
		return -ENOMEM;
	r = recv_msg(sock, msg);
	if (r < 0) {
		ret = r;
		goto out;
	}
	log_trace("vhost-user: %s flags=0x%x size=%u fds=%d",
		  vhost_user_request_name(msg->hdr.request), msg->hdr.flags, msg->hdr.size,
		  msg->nfds);
	need_ack = (msg->hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
		   (dev->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	r = dispatch(dev, msg);
	/* A request with a reply of its own gets no ack, unless vfsd does not serve it (as
	 * GET_STATUS): then the failure ack is all the peer will hear. */
	if (r != -EOPNOTSUPP && vhost_user_has_own_reply(msg->hdr.request))
		need_ack = false;
	if (r == 1) {
		ret = send_reply(sock, msg);
	} else if (need_ack) {
		msg->hdr.size = sizeof(uint64_t);
		msg->payload.u64 = r < 0 ? 1 : 0;
		ret = send_reply(sock, msg);
	} else if (r < 0) {
		/* Nobody would hear about the failure: the peer is out of step, hang up. */
		log_error("vhost-user: %s failed (%s); closing the connection",
			  vhost_user_request_name(msg->hdr.request), strerror(-r));
		ret = -EPROTO;
	}
out:
	for (int i = 0; i < msg->nfds; i++)
		vfsd_closep(&msg->fds[i]);
	free(msg);
	return ret;
}

bool vhost_dev_paused(const struct vhost_dev *dev)
{
	return dev->paused;
}

void vhost_dev_wait_transfer(struct vhost_dev *dev)
{
	join_state_thread(dev); /* its result stays for CHECK_DEVICE_STATE */
}

int vhost_dev_new(const struct vhost_dev_config *cfg, const struct vhost_backend *backend,
		  struct vhost_dev **out)
{
	struct vhost_dev *dev = calloc(1, sizeof(*dev));
	pthread_rwlockattr_t attr;
	int r;

	if (!dev)
		return -ENOMEM;
	dev->backend = *backend;
	dev->log.call_fd = -1;
	if (cfg->tag) {
		size_t len = strlen(cfg->tag);

		if (len == 0 || len > VHOST_DEV_TAG_MAX) {
			free(dev);
			return -EINVAL;
		}
		memcpy(dev->tag, cfg->tag, len);
		dev->has_tag = true;
	}
	pthread_rwlockattr_init(&attr);
	/* A busy queue thread must not starve memory-table updates. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&dev->mem_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	/* No ring yet: each is made when a message first names it (vhost_dev_vq). */
	dev->queue_poll_ns = cfg->queue_poll_ns;
	dev->loadavg_fd = cfg->loadavg_fd;
	dev->core_free = true;
	{
		cpu_set_t set;

		dev->ncpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? (unsigned int)CPU_COUNT(&set)
									   : 1;
	}
	dev->thread_init = cfg->thread_init;
	if (cfg->thread_pool_size > 0) {
		r = work_pool_new(cfg->thread_pool_size, cfg->thread_init, &dev->pool);
		if (r < 0) {
			vhost_dev_free(dev);
			return r;
		}
	}
	*out = dev;
	return 0;
}

void vhost_dev_free(struct vhost_dev *dev)
{
	if (!dev)
		return;
	for (unsigned int i = 0; i < dev->nvqs; i++)
		if (dev->vqs[i])
			vq_stop(dev->vqs[i]);
	join_state_thread(dev);
	work_pool_free(dev->pool);
	for (unsigned int i = 0; i < dev->nvqs; i++)
		if (dev->vqs[i])
			vq_free(dev->vqs[i]);
	guest_mem_clear(&dev->mem);
	vhost_log_clear(&dev->log);
	vfsd_closep(&dev->log.call_fd);
	pthread_rwlock_destroy(&dev->mem_lock);
	free(dev);
}
