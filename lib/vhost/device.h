/*
 * A vhost-user backend device with a hiprio queue (0) and request queues (1 and up), as many
 * as the VMM sets up (QEMU's vhost-user-fs-pci,num-request-queues=N gives 1 + N rings).
 *
 * The caller owns the event loop: it calls vhost_dev_handle_msg() whenever the connection
 * socket is readable. Each started ring gets a queue thread that pops descriptor chains and
 * hands them to the backend's handle() callback, inline or through a worker pool shared by
 * all rings.
 */
#ifndef VFSD_VHOST_DEVICE_H
#define VFSD_VHOST_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "vhost/virtq.h"

/*
 * Queues offered (GET_QUEUE_NUM): hiprio plus 255 request queues, the most the 8-bit index of
 * SET_VRING_KICK/CALL/ERR can name. A ring costs nothing (no memory, fd or thread) until a
 * message names it, and no fd or thread until the VMM starts it.
 */
#define VHOST_DEV_NUM_QUEUES 256
#define VHOST_HIPRIO_QUEUE 0 /* FORGET, BATCH_FORGET, INTERRUPT */
#define VHOST_DEV_TAG_MAX 36
/* The largest device state read from the VMM. */
#define VHOST_DEV_STATE_MAX (1u << 30)

struct vhost_backend {
	/*
	 * Serves one request. elem->iov holds the device-readable then the device-writable
	 * buffers, already translated and bounds-checked. Returns the number of bytes written
	 * into the writable part. Called concurrently from queue and pool threads.
	 */
	uint32_t (*handle)(void *opaque, struct virtq_elem *elem);
	/* The VMM reset the device: forget the session (as FUSE DESTROY). */
	void (*reset)(void *opaque);
	/* A ring stops: complete every deferred request now (may be NULL if none are made). */
	void (*cancel_deferred)(void *opaque);
	/*
	 * Device state for migration (both NULL: DEVICE_STATE is not offered). save_state
	 * returns the state as bytes (*buf malloc'd) with every ring stopped; load_state
	 * applies a state read from the VMM. 0 or a negative errno (logged by the backend).
	 * Called on the transfer thread, never while a ring runs.
	 */
	int (*save_state)(void *opaque, uint8_t **buf, size_t *len);
	int (*load_state)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
};

/* handle() may answer later: it calls vhost_dev_defer(elem) and returns VFSD_DEFERRED. */

struct vhost_deferred;
struct vhost_dev;

/*
 * Keeps the chain of elem out of the used ring until vhost_dev_complete. Only from handle().
 * The ring does not stop (GET_VRING_BASE, reset) before it is completed: backend
 * cancel_deferred is called then. Returns NULL when out of memory (answer at once instead).
 */
struct vhost_deferred *vhost_dev_defer(struct vhost_dev *dev, const struct virtq_elem *elem);
/* Writes reply (len bytes) into the chain's writable buffers, pushes it, signals the guest
 * and frees d. From any thread. */
void vhost_dev_complete(struct vhost_deferred *d, const void *reply, uint32_t len);

struct vhost_dev_config {
	const char *tag;		/* NULL: no CONFIG protocol feature */
	unsigned int thread_pool_size;	/* 0: requests run on the queue thread */
	/* The longest an emptied ring is polled before its thread sleeps (0: never); how long
	 * it really is adapts to the guest (queue.c, "Polling"). */
	uint64_t queue_poll_ns;
	/* An fd of /proc/loadavg (opened before the sandbox), or -1: polling only while a core
	 * is free for it. Owned by the caller. */
	int loadavg_fd;
	void (*thread_init)(void);	/* run first by each queue thread and pool worker (or NULL) */
};

struct vhost_dev;

int vhost_dev_new(const struct vhost_dev_config *cfg, const struct vhost_backend *backend,
		  struct vhost_dev **out);
/* Stops every queue thread and waits for requests in flight, then frees the device. */
void vhost_dev_free(struct vhost_dev *dev);

/*
 * Stops every ring's thread (requests in flight end first) while keeping the rings as the VMM
 * set them: nothing is taken from them until vhost_dev_resume. From the message thread, as
 * vhost_dev_handle_msg; a ring the VMM starts meanwhile waits too.
 */
void vhost_dev_pause(struct vhost_dev *dev);
int vhost_dev_resume(struct vhost_dev *dev);
bool vhost_dev_paused(const struct vhost_dev *dev);
/* Waits for a device-state transfer under way (SET_DEVICE_STATE_FD) to end. */
void vhost_dev_wait_transfer(struct vhost_dev *dev);

/*
 * Reads and handles one message from the connected socket. Returns 0 to go on, or a
 * negative errno when the connection must be closed: -ECONNRESET when the peer hung up,
 * -EPROTO when it broke the protocol (logged).
 */
int vhost_dev_handle_msg(struct vhost_dev *dev, int sock);

#endif
