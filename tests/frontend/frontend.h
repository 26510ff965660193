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

#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost/protocol.h"

/* Rings a device can have: hiprio (0) and request queues from 1 (fe_opts.request_queues);
 * 256, the most a SET_VRING_KICK/CALL/ERR index can name. */
#define FE_MAX_QUEUES 256
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
	uint16_t *chain_next; /* descriptor -> the next one its chain took, or 0xffff (ours too) */
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
	bool migration;		 /* also ask for LOG_SHMFD and DEVICE_STATE (QEMU >= 8.2) */
	/* Request queues after hiprio (default 1), as QEMU's num-request-queues: 1 + this many
	 * rings in guest memory, each with its eventfds, all set up by fe_start. */
	unsigned int request_queues;
};

/* The dirty log the VMM shares with the daemon (SET_LOG_BASE): bit (gpa / 4096) set = the
 * daemon wrote into that page. */
struct fe_log {
	int fd;		  /* memfd holding the bitmap, -1 before fe_log_base */
	uint8_t *map;	  /* our mapping of it */
	uint64_t size;	  /* mmap_size sent: bytes of bitmap */
	uint64_t map_len; /* bytes mapped (size rounded to a page) */
	int notify_fd;	  /* the SET_LOG_FD eventfd, -1 without */
	bool on;	  /* LOG_ALL is set in the features the daemon has */
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
	unsigned int nqueues;  /* rings: 1 + opts.request_queues; vq[nqueues..] are unused */
	struct fe_vring vq[FE_MAX_QUEUES];
	/* Findings about the device, counted as they happen. */
	unsigned int missed_calls; /* used entries that came without a call */
	unsigned int bad_used;	   /* used entries for chains not in flight */
	unsigned int kicks;	   /* kick eventfd writes (asked for, or forced by always_kick) */
	unsigned int kicks_spared; /* fe_kick calls the device said it did not need */
	char err[512];
	struct fe_log log;
	/* GET_VRING_BASE answers of fe_stop_rings: where a restarted ring resumes. */
	bool stopped;
	unsigned int stop_base[FE_MAX_QUEUES];
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
/* Waits up to timeout_ms for fd to be readable: 0, -ETIMEDOUT or -errno. */
int fe_wait_readable(int fd, int timeout_ms);
/* Receives the reply to request (FE_TIMEOUT_MS) and checks it is one: -EPROTO otherwise. */
int fe_recv_reply(struct fe_dev *d, uint32_t request, struct vhost_user_msg *m);
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
/* Everything above for every ring (nqueues), rings enabled. */
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

/* ---- migration: the VMM's side of dirty logging and device state ---- */

#define FE_LOG_PAGE 4096u
#define FE_STATE_SAVE 0u
#define FE_STATE_LOAD 1u
#define FE_PHASE_STOPPED 0u
/* SET_DEVICE_STATE_FD's answer: bits 0-7 zero on success, bit 8 "no fd of the back-end's". */
#define FE_STATE_NOFD 0x100u
/* fe_state_save/load: the daemon refused SET_DEVICE_STATE_FD (its answer, or a nack), or
 * CHECK_DEVICE_STATE said the transfer failed. Other failures are other negative errnos. */
#define FE_EREFUSED (-EREMOTEIO)
#define FE_ECHECK (-EBADMSG)

/* SET_LOG_BASE with a fresh memfd log covering guest addresses 0 to the end of the highest
 * region; replaces a log set before. Accepts both known replies: a u64 0, and the Rust
 * library's echo of the request. */
int fe_log_base(struct fe_dev *d);
/* SET_LOG_FD with a fresh eventfd (REPLY_ACK asked for). */
int fe_log_fd(struct fe_dev *d);
/* Logging on as QEMU turns it on: SET_FEATURES with LOG_ALL added, then SET_VRING_ADDR of
 * every ring with VHOST_VRING_F_LOG and the used ring's gpa. fe_log_stop undoes both. */
int fe_log_start(struct fe_dev *d);
int fe_log_stop(struct fe_dev *d);
/* SET_VRING_ADDR of queue q with or without the LOG flag (log_guest_addr = used ring gpa). */
int fe_vring_addr_log(struct fe_dev *d, unsigned int q, bool log);
void fe_log_clear(struct fe_dev *d);
/* Whether the log marks the page holding gpa (false beyond the log). */
bool fe_log_dirty(const struct fe_dev *d, uint64_t gpa);
/* Pages marked in the whole log. */
uint64_t fe_log_count(const struct fe_dev *d);
/* Waits up to timeout_ms for the SET_LOG_FD eventfd; returns 1 (and clears it) or 0. */
int fe_log_notified(struct fe_dev *d, int timeout_ms);

/* SET_DEVICE_STATE_FD (with fd, or none when fd < 0); *result gets the daemon's u64. With
 * need_reply, NEED_REPLY is flagged (so that a daemon that nacks it has a way to say so). */
int fe_state_fd(struct fe_dev *d, uint32_t direction, uint32_t phase, int fd, bool need_reply,
		uint64_t *result);
/* CHECK_DEVICE_STATE; *result gets the daemon's u64 (0 = the transfer succeeded). */
int fe_state_check(struct fe_dev *d, uint64_t *result);
/* A whole SAVE: a pipe (or a socketpair), SET_DEVICE_STATE_FD, the stream read to EOF, then
 * CHECK_DEVICE_STATE. *buf (malloc'd) and *len get the state, also when the check fails.
 * 0, FE_EREFUSED, FE_ECHECK or another -errno (fe_error says why). */
int fe_state_save(struct fe_dev *d, bool use_socketpair, uint8_t **buf, size_t *len);
/* A whole LOAD: the bytes written then the channel closed, then CHECK_DEVICE_STATE. A daemon
 * that stops reading early (a stream it refuses) is not an error by itself: the check says. */
int fe_state_load(struct fe_dev *d, bool use_socketpair, const uint8_t *buf, size_t len);
/* Reads fd to EOF into *buf (malloc'd), at most timeout_ms without progress. */
int fe_read_all(struct fe_dev *d, int fd, uint8_t **buf, size_t *len, int timeout_ms);
/* Writes len bytes to fd, at most timeout_ms without progress; -EPIPE when the reader left. */
int fe_write_all(struct fe_dev *d, int fd, const uint8_t *buf, size_t len, int timeout_ms);

/* Stops every ring (GET_VRING_BASE), remembers where each resumes, and collects every used
 * entry the device pushed. Returns how many chains are still in flight (0: the device
 * completed all of them before answering), or a negative errno. */
int fe_stop_rings(struct fe_dev *d);
/* The daemon went away (stopped, killed) without GET_VRING_BASE: each ring will resume at
 * the used index the device last wrote, as QEMU does. */
void fe_backend_lost(struct fe_dev *d);
/* Restarts every ring on the same daemon after fe_stop_rings (the source resumes). */
int fe_resume_rings(struct fe_dev *d);
/*
 * Moves this guest to another daemon: the same memory, rings (not zeroed), in-flight
 * bookkeeping and FUSE session. Negotiates on sock, sends every region again, and restarts
 * every ring at the index fe_stop_rings saw (or our avail index). The old connection goes to
 * *old_sock, or is closed when old_sock is NULL. No log on the new daemon.
 */
int fe_reconnect(struct fe_dev *d, int sock, int *old_sock);
/* fe_reconnect in QEMU's two steps, for a LOAD in between as QEMU sends it (the device state
 * is loaded with the incoming migration, the rings start when the VM runs): _begin switches
 * to sock and negotiates (features, protocol features, SET_OWNER); _rings sends the call fds,
 * SET_FEATURES, the memory and starts the rings. */
int fe_reconnect_begin(struct fe_dev *d, int sock, int *old_sock);
int fe_reconnect_rings(struct fe_dev *d);
/* Kicks queue q whatever the device asked for (chains published before a stop, which the new
 * daemon has not seen). */
int fe_kick_now(struct fe_dev *d, unsigned int q);

#endif
