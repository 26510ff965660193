/*
 * Inside lib/vhost: the device and its rings, shared by device.c (vhost-user messages, the
 * device's life) and queue.c (queue threads, pool workers, deferred replies, rings started
 * and stopped).
 */
#ifndef VFSD_VHOST_DEVICE_INT_H
#define VFSD_VHOST_DEVICE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vhost/device.h"
#include "vhost/guest_mem.h"
#include "vhost/log.h"
#include "vhost/pool.h"
#include "vhost/virtq.h"

struct vhost_vq {
	struct vhost_dev *dev;
	unsigned int index;
	/* Ring state: indexes are guarded by lock; layout fields change only under the device
	 * write lock with the queue thread stopped. */
	struct virtq ring;
	pthread_mutex_t lock;
	int call_fd;   /* guarded by lock; -1 = none */
	int kick_fd;   /* owned by the queue thread while it runs */
	int err_fd;    /* guarded by lock */
	bool enabled;  /* guarded by lock */
	bool started;  /* message thread only: a queue thread runs */
	bool halted;   /* message thread only: paused with its kick fd kept (vhost_dev_pause) */
	pthread_t thread;
	/* The ring's own resources, made when it first starts and kept until a reset or the
	 * device's end: a ring the VMM never starts costs no fd, no thread and no buffer. */
	int stop_fd;		 /* eventfd that ends the queue thread; -1 until then */
	bool stopping;		 /* atomic: vq_stop is waiting for the queue thread */
	unsigned int inflight;	 /* guarded by lock: chains handed to the pool */
	pthread_cond_t drained;	 /* signalled when inflight drops to 0 */
	struct virtq_elem *elem; /* inline mode's buffer (no pool), used by the queue thread only */
	/* Adaptive polling, queue thread only: how long an emptied ring is polled now, and when
	 * the ring last went idle after a poll that found nothing (0: it did not). */
	uint64_t poll_ns;
	uint64_t idle_since;
	/* atomic: the daemon's own wake-ups of the ring (vq_self_kick) not yet taken out of
	 * what the kick eventfd counted: the metrics count the guest's kicks only */
	uint64_t self_kicks;
	/* Queue thread only (vq_rescue): the (used index << 16 | used_event) of its last look,
	 * whether that look found used entries past used_event, and the state a call was last
	 * repeated for, so that a guest that stays stuck is called once, not every second. */
	uint32_t rescue_state, rescued_state;
	bool rescue_looked, rescue_called;
};

struct vhost_dev {
	struct vhost_backend backend;
	char tag[VHOST_DEV_TAG_MAX];
	bool has_tag;
	struct work_pool *pool;
	uint64_t queue_poll_ns; /* the most a ring is polled */
	/* Whether a core is free for a polling thread, sampled from /proc/loadavg at most every
	 * LOAD_SAMPLE_NS (queue.c) by whichever queue thread asks (atomics). */
	int loadavg_fd;
	unsigned int ncpus;	  /* the CPUs this process may run on */
	uint64_t load_sampled_ns; /* atomic */
	bool core_free;		  /* atomic */
	void (*thread_init)(void); /* run by each queue thread and pool worker first */
	/* Guards guest memory and the ring layouts: readers are queue threads and workers while
	 * they touch guest memory, the writer is the message thread. */
	pthread_rwlock_t mem_lock;
	struct guest_mem mem;
	/* Dirty logging, changed under mem_lock held for writing: logging is on while LOG_ALL
	 * is acked and a log was given. */
	struct vhost_log log;
	bool logging;
	/* Device state transfer (SET_DEVICE_STATE_FD): its thread and result. */
	pthread_t state_thread;
	bool state_running; /* message thread only: state_thread must be joined */
	int state_result;   /* written by the thread before it ends */
	bool state_pending; /* message thread only: a transfer awaits its CHECK */
	bool paused; /* message thread only: vhost_dev_pause, rings take no request */
	uint64_t acked_features;   /* message thread only */
	bool features_set;	   /* message thread only: SET_FEATURES came since the last reset */
	uint64_t protocol_features; /* message thread only */
	/*
	 * The rings, each allocated when a message first names it (vhost_dev_vq) and freed with
	 * the device; nvqs is one past the highest allocated. Written by the message thread only;
	 * a queue thread, worker or waiter reads only its own ring's slot, filled before that
	 * ring started.
	 */
	struct vhost_vq *vqs[VHOST_DEV_NUM_QUEUES];
	unsigned int nvqs;
};

/* Ring life cycle (queue.c), called by the message thread. */
/* The ring at index (< VHOST_DEV_NUM_QUEUES), allocated on first use; NULL when out of
 * memory. */
struct vhost_vq *vhost_dev_vq(struct vhost_dev *dev, unsigned int index);
/* Frees a stopped ring (vq_stop first). */
void vq_free(struct vhost_vq *vq);
int vq_start(struct vhost_vq *vq);
/* Wakes the ring's thread to look at the ring (its kick eventfd), not counted as a kick. */
void vq_self_kick(struct vhost_vq *vq);
void vq_stop(struct vhost_vq *vq);
void vq_reset(struct vhost_vq *vq);
/* Guest memory changed: every ring's addresses are translated again. */
void remap_rings(struct vhost_dev *dev);
/* Marks what a request wrote into guest memory (len bytes of the chain's writable part) and
 * the used ring, when logging is on. Called with mem_lock held for reading. */
void vq_log_write(struct vhost_vq *vq, const struct virtq_elem *elem, uint32_t len);
void vq_log_used(struct vhost_vq *vq);

#endif
