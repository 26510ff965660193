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
	int stop_fd;		 /* eventfd that ends the queue thread */
	bool stopping;		 /* atomic: vq_stop is waiting for the queue thread */
	unsigned int inflight;	 /* guarded by lock: chains handed to the pool */
	pthread_cond_t drained;	 /* signalled when inflight drops to 0 */
	struct virtq_elem *elem; /* inline mode's buffer, used by the queue thread only */
};

struct vhost_dev {
	struct vhost_backend backend;
	char tag[VHOST_DEV_TAG_MAX];
	bool has_tag;
	struct work_pool *pool;
	uint64_t queue_poll_ns;
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
	uint64_t protocol_features; /* message thread only */
	struct vhost_vq vqs[VHOST_DEV_NUM_QUEUES];
};

/* Ring life cycle (queue.c), called by the message thread. */
int vq_start(struct vhost_vq *vq);
void vq_stop(struct vhost_vq *vq);
void vq_reset(struct vhost_vq *vq);
/* Guest memory changed: every ring's addresses are translated again. */
void remap_rings(struct vhost_dev *dev);
/* Marks what a request wrote into guest memory (len bytes of the chain's writable part) and
 * the used ring, when logging is on. Called with mem_lock held for reading. */
void vq_log_write(struct vhost_vq *vq, const struct virtq_elem *elem, uint32_t len);
void vq_log_used(struct vhost_vq *vq);

#endif
