/*
 * A vhost-user frontend for tests: it plays the VMM (socket, features, guest memory, vrings)
 * and the guest's virtio driver (split rings, descriptor chains, kicks and calls) against a
 * vhost-user-fs daemon, with no VM. Everything a guest could get wrong can be done on
 * purpose through the raw descriptor calls.
 *
 * Errors: functions return 0 (or a count) on success and a negative errno on failure, and
 * leave a sentence for the person in fe_error(dev).
 */
#ifndef VFSD_TESTS_FRONTEND_H
#define VFSD_TESTS_FRONTEND_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost/protocol.h"

#define FE_NUM_QUEUES 2
#define FE_HIPRIO 0
#define FE_REQUEST 1
#define FE_MAX_REGIONS 8
#define FE_TIMEOUT_MS 5000

#define FE_BIT(n) (1ull << (n))

/* How a chain is laid out in the ring. */
enum fe_chain {
	FE_DIRECT,   /* descriptors linked in the ring itself */
	FE_INDIRECT, /* one ring descriptor pointing to a table in guest memory */
};

/* One device-readable or device-writable buffer of a chain, in guest-physical terms. */
struct fe_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct fe_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t mmap_offset; /* offset of the first byte in fd */
	uint8_t *host;	      /* our mapping of the first byte, also the "VMM address" */
	void *map_base;	      /* what mmap returned, when this region owns the mapping */
	size_t map_len;
	int fd;
	bool added;    /* the daemon knows about it */
	uint64_t base; /* first byte of the scratch allocator (rings come before) */
	uint64_t next; /* scratch allocator: next free offset */
};

/* Allocator position in every region, to give back everything allocated after it. */
struct fe_mark {
	uint64_t next[FE_MAX_REGIONS];
};

struct fe_slot {
	bool busy;
	bool done;
	uint32_t len; /* used length the device reported */
};

struct fe_vring {
	unsigned int num;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;  /* next avail index we publish */
	uint16_t kicked_idx; /* avail index at the last kick decision */
	uint16_t last_used;  /* next used entry we consume */
	uint16_t *free_next; /* our free list (not in guest memory: a test may scribble) */
	uint16_t *owner;     /* descriptor -> head of the chain holding it, or 0xffff */
	uint16_t free_head;
	unsigned int num_free;
	struct fe_slot *slots; /* by head */
	int kick_fd, call_fd, err_fd;
	bool enabled;
};

struct fe_opts {
	uint64_t mem_size;	 /* bytes of guest RAM at start (default 64 MiB) */
	int nregions;		 /* split in that many regions (default 2) */
	bool mem_table;		 /* SET_MEM_TABLE instead of ADD_MEM_REG */
	bool no_event_idx;	 /* do not ack EVENT_IDX */
	bool no_indirect;	 /* do not ack INDIRECT_DESC */
	unsigned int queue_size; /* default 256 */
	uint16_t base;		 /* first avail/used index (SET_VRING_BASE), default 0 */
	bool ack_all;		 /* NEED_REPLY on every message (cloud-hypervisor style) */
	bool always_kick;	 /* kick even when the device asked not to */
	uint64_t protocol_mask;	 /* protocol features to ask for (0: QEMU-like) */
};

struct fe_dev {
	int sock;
	struct fe_opts opts;
	uint64_t dev_features;	/* what GET_FEATURES offered */
	uint64_t dev_protocol;	/* what GET_PROTOCOL_FEATURES offered */
	uint64_t features;	/* acked */
	uint64_t protocol;	/* acked */
	uint64_t queue_num;	/* GET_QUEUE_NUM, when MQ */
	uint64_t max_mem_slots; /* GET_MAX_MEM_SLOTS, when CONFIGURE_MEM_SLOTS */
	struct fe_region regions[FE_MAX_REGIONS];
	int nregions;
	unsigned int alloc_rr; /* round robin of the region used by fe_alloc_any */
	struct fe_vring vq[FE_NUM_QUEUES];
	/* Findings about the device, counted as they happen. */
	unsigned int missed_calls; /* used entries that came without a call */
	unsigned int bad_used;	   /* used entries for chains not in flight */
	char err[512];
};

/* ---- connection and messages ---- */

/* Connects to a listening unix socket, retrying every 100 ms (as cloud-hypervisor does). */
int fe_connect(const char *path, int timeout_ms);
/* Allocates the guest memory and rings for opts (NULL: defaults); nothing is sent yet.
 * The device owns sock from then on, even on failure. */
int fe_new(int sock, const struct fe_opts *opts, struct fe_dev **out);
/* Closes the socket, eventfds and memory. */
void fe_free(struct fe_dev *d);
const char *fe_error(const struct fe_dev *d);
void fe_seterr(struct fe_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Sends one message; when it has a reply of its own, or REPLY_ACK is negotiated and
 * need_ack, waits for the reply and puts it in *reply (if not NULL). A nack (non-zero
 * REPLY_ACK payload) is -EREMOTEIO.
 */
int fe_msg(struct fe_dev *d, uint32_t request, const void *payload, uint32_t size, const int *fds,
	   int nfds, bool need_ack, struct vhost_user_msg *reply);
/* Sends exactly the bytes given (a header with any flags); no reply is read. */
int fe_send_raw(struct fe_dev *d, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, int nfds);
/* Receives one reply within timeout_ms; -ETIMEDOUT, -ECONNRESET. */
int fe_recv(struct fe_dev *d, struct vhost_user_msg *reply, int timeout_ms);
int fe_get_u64(struct fe_dev *d, uint32_t request, uint64_t *v);
int fe_set_u64(struct fe_dev *d, uint32_t request, uint64_t v);
int fe_vring_state(struct fe_dev *d, uint32_t request, unsigned int index, unsigned int num);
int fe_get_vring_base(struct fe_dev *d, unsigned int index, unsigned int *num);
/* Reads size bytes of the device config space at offset into buf. */
int fe_get_config(struct fe_dev *d, uint32_t offset, uint32_t size, void *buf);

/* ---- set-up steps (fe_start runs them all, in QEMU 7.2's order) ---- */

/* GET_FEATURES, GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, SET_OWNER. */
int fe_negotiate(struct fe_dev *d);
/* SET_FEATURES with what we want of what was offered. */
int fe_set_features(struct fe_dev *d);
/* Tells the daemon about every region not yet added (ADD_MEM_REG or SET_MEM_TABLE). */
int fe_send_memory(struct fe_dev *d);
/* SET_VRING_CALL (and ERR) for a queue, with fresh eventfds. */
int fe_vring_call(struct fe_dev *d, unsigned int q);
/* Zeroes the ring in guest memory and resets our side of it (base = opts.base). */
void fe_vring_prepare(struct fe_dev *d, unsigned int q);
/* SET_VRING_ADDR with the ring's VMM addresses. */
int fe_vring_addr(struct fe_dev *d, unsigned int q);
/* SET_VRING_KICK/CALL/ERR of queue q with fd (-1: the "no fd" flag). */
int fe_vring_fd(struct fe_dev *d, uint32_t request, unsigned int q, int fd);
/* fe_vring_prepare, then SET_VRING_NUM/BASE/ADDR/KICK. */
int fe_vring_setup(struct fe_dev *d, unsigned int q);
/* Restarts a stopped ring where it was (QEMU after GET_VRING_BASE): CALL, NUM, BASE = our
 * avail index, ADDR, KICK, ENABLE; the ring's memory is left as it is. */
int fe_vring_restart(struct fe_dev *d, unsigned int q);
int fe_vring_enable(struct fe_dev *d, unsigned int q, bool on);
/* Everything above for both queues, rings enabled. */
int fe_start(struct fe_dev *d);

/* ---- guest memory ---- */

/* Adds a region backed by a fresh memfd at gpa (not sent: see fe_send_memory). */
int fe_region_new(struct fe_dev *d, uint64_t gpa, uint64_t size);
/* ADD_MEM_REG of region i (it must not be known to the daemon yet). */
int fe_region_add(struct fe_dev *d, int i);
/* REM_MEM_REG of region i. */
int fe_region_remove(struct fe_dev *d, int i);
/* Host pointer of [gpa, gpa+len), or NULL. */
void *fe_ptr(struct fe_dev *d, uint64_t gpa, uint64_t len);
/* Scratch allocation in region i (8-byte aligned, or align); 0 when out of space. */
uint64_t fe_alloc(struct fe_dev *d, int region, uint64_t size, uint64_t align);
/* Scratch allocation in the next region of a round robin over the added regions. */
uint64_t fe_alloc_any(struct fe_dev *d, uint64_t size);
/* Copies len bytes into a new scratch buffer; returns its gpa (0 when out of space). */
uint64_t fe_put(struct fe_dev *d, const void *data, uint64_t len);
void fe_mark(struct fe_dev *d, struct fe_mark *m);
void fe_release(struct fe_dev *d, const struct fe_mark *m);

/* ---- the guest driver side of the rings ---- */

/* Builds a chain of n buffers (readable first), publishes it and kicks; *head gets its id. */
int fe_submit(struct fe_dev *d, unsigned int q, const struct fe_buf *bufs, int n,
	      enum fe_chain mode, uint16_t *head);
/* Same without the kick (fe_kick sends one for a batch). */
int fe_add(struct fe_dev *d, unsigned int q, const struct fe_buf *bufs, int n, enum fe_chain mode,
	   uint16_t *head);
/* Kicks if the device wants it (or always with opts.always_kick). */
int fe_kick(struct fe_dev *d, unsigned int q);
/* Waits for the chain head to come back; *len gets the used length. -ETIMEDOUT. */
int fe_wait(struct fe_dev *d, unsigned int q, uint16_t head, int timeout_ms, uint32_t *len);
/* Waits for any chain; *head and *len describe it. */
int fe_wait_any(struct fe_dev *d, unsigned int q, int timeout_ms, uint16_t *head, uint32_t *len);
/* Collects what the device pushed so far without waiting; returns how many. */
int fe_poll_used(struct fe_dev *d, unsigned int q);
/* Number of chains in flight on q. */
unsigned int fe_inflight(const struct fe_dev *d, unsigned int q);

/* Raw access, for chains no driver would build: takes n free descriptors (idx[0] is the
 * head the caller publishes), returns a pointer to ring descriptor i. */
int fe_desc_alloc(struct fe_dev *d, unsigned int q, int n, uint16_t *idx);
struct vring_desc *fe_desc(struct fe_dev *d, unsigned int q, uint16_t i);
/* Puts head in the avail ring and marks it in flight (no kick). */
void fe_publish(struct fe_dev *d, unsigned int q, uint16_t head);

#endif
