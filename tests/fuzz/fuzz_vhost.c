/*
 * libFuzzer target: vhost-user messages through vhost_dev_handle_msg(), as a VMM would send
 * them on the connection socket.
 *
 * Input: one config byte (bits 0-1 worker pool size, 3 meaning 0; bit 2 a --tag), then
 * messages until the input ends, each a 12-byte header (request, flags, size) and size bytes
 * of payload (fewer at the end of the input). Each message goes out in one sendmsg() and the
 * device handles it at once; replies are read and dropped. The input stops at the first
 * message the device fails on.
 *
 * File descriptors ride along as a VMM would pass them: SET_MEM_TABLE carries one per region
 * (its nregions, at most 8) and ADD_MEM_REG one, all of them the same memfd of guest memory;
 * SET_VRING_KICK/CALL/ERR carry a fresh eventfd. Header flag bit 31 sends none, bit 30 adds
 * an eventfd to any message (the device ignores both bits).
 *
 * Two requests never reach the device and act as the guest instead:
 *   FZ_POKE  payload u32 offset, then bytes written into guest memory at that offset
 *   FZ_KICK  payload u8 queue: kicks the queue through the kick eventfd the device was given,
 *            and waits a little for the queue thread to take the kick
 * The backend touches the first and last byte of every buffer a chain maps.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/unix.h"
#include "fuzz_common.h"
#include "vhost/device.h"
#include "vhost/protocol.h"

#define FZ_POKE 0x1001
#define FZ_KICK 0x1002
#define FLAG_NO_FDS (1u << 31)
#define FLAG_EXTRA_FD (1u << 30)
#define GUEST_MEM_SIZE (1u << 20)
#define MAX_MESSAGES 128
#define KICK_WAIT_NS 2000000

static int guest_fd = -1;	   /* the guest's memory: every region maps part of it */
static int kick[VHOST_DEV_NUM_QUEUES]; /* our copies of the kick eventfds the device holds */

static uint32_t touch_buffers(void *opaque, struct virtq_elem *elem)
{
	uint64_t written = 0;

	(void)opaque;
	if (fuzz_trace)
		fprintf(stderr, "fuzz: chain at head %u: %d readable, %d writable iovecs\n",
			elem->head, elem->nrd, elem->nwr);
	FUZZ_CHECK(elem->nrd >= 0 && elem->nwr >= 0 && elem->nrd + elem->nwr <= VIRTQ_MAX_IOV,
		   "chain of %d + %d iovecs", elem->nrd, elem->nwr);
	for (int i = 0; i < elem->nrd + elem->nwr; i++) {
		volatile uint8_t *p = elem->iov[i].iov_base;
		size_t len = elem->iov[i].iov_len;

		if (len == 0)
			continue;
		if (i < elem->nrd) {
			(void)p[0];
			(void)p[len - 1];
		} else {
			p[0] = 0x5a;
			p[len - 1] = 0x5a;
			written += len;
		}
	}
	return written > UINT32_MAX ? UINT32_MAX : (uint32_t)written;
}

static void no_reset(void *opaque)
{
	(void)opaque;
}

/* Reads and drops whatever the device replied; the device never sends descriptors. */
static void drain_replies(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} control;
	static uint8_t buf[65536];

	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return;
		FUZZ_CHECK(mh.msg_controllen == 0, "the device sent a control message");
	}
}

/* Descriptors that go with a message, as a VMM would attach them; returns the count. */
static int attach_fds(const struct vhost_user_header *h, const uint8_t *payload, size_t len,
		      int *fds)
{
	int n = 0;

	if (!(h->flags & FLAG_NO_FDS)) {
		switch (h->request) {
		case VHOST_USER_SET_MEM_TABLE: {
			uint32_t nregions = 0;

			memcpy(&nregions, payload, len < 4 ? len : 4);
			for (; n < (int)nregions && n < VHOST_USER_MAX_FDS; n++)
				fds[n] = dup(guest_fd);
			break;
		}
		case VHOST_USER_ADD_MEM_REG:
			fds[n++] = dup(guest_fd);
			break;
		case VHOST_USER_SET_VRING_KICK:
		case VHOST_USER_SET_VRING_CALL:
		case VHOST_USER_SET_VRING_ERR:
			fds[n++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			break;
		default:
			break;
		}
	}
	if (h->flags & FLAG_EXTRA_FD)
		fds[n++] = eventfd(0, EFD_CLOEXEC);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(fds[i] >= 0, "cannot make a descriptor: %s", strerror(errno));
	return n;
}

/* Remembers the kick eventfd the device now has for a queue, to kick it later. */
static void note_kick(const uint8_t *payload, size_t len, int fd)
{
	uint64_t v = 0;
	unsigned int q;

	memcpy(&v, payload, len < 8 ? len : 8);
	q = v & VHOST_USER_VRING_IDX_MASK;
	if (q >= VHOST_DEV_NUM_QUEUES || (v & VHOST_USER_VRING_NOFD_MASK))
		return;
	if (kick[q] >= 0)
		close(kick[q]);
	kick[q] = dup(fd);
}

static void send_msg(int sock, const struct vhost_user_header *h, const uint8_t *payload,
		     size_t len)
{
	struct iovec iov[2] = { { (void *)h, sizeof(*h) }, { (void *)payload, len } };
	int fds[VHOST_USER_MAX_FDS + 1];
	int nfds = attach_fds(h, payload, len, fds);
	ssize_t n = unix_send_fds(sock, iov, 2, fds, nfds > 0 ? (unsigned int)nfds : 0);

	FUZZ_CHECK(n == (ssize_t)(sizeof(*h) + len), "sendmsg: %s", strerror(n < 0 ? (int)-n : 0));
	if (h->request == VHOST_USER_SET_VRING_KICK && nfds > 0 && !(h->flags & FLAG_NO_FDS))
		note_kick(payload, len, fds[0]);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void poke(const uint8_t *payload, size_t len)
{
	uint32_t off = 0;

	if (len < 4)
		return;
	memcpy(&off, payload, 4);
	off %= GUEST_MEM_SIZE;
	len -= 4;
	if (len > GUEST_MEM_SIZE - off)
		len = GUEST_MEM_SIZE - off;
	FUZZ_CHECK(pwrite(guest_fd, payload + 4, len, off) == (ssize_t)len, "pwrite: %s",
		   strerror(errno));
}

/* Kicks a queue and waits (briefly) until its thread has read the kick. */
static void guest_kick(const uint8_t *payload, size_t len)
{
	uint64_t one = 1;
	struct timespec start, now;
	unsigned int q = len ? payload[0] : 0;

	if (q >= VHOST_DEV_NUM_QUEUES || kick[q] < 0)
		return;
	if (write(kick[q], &one, sizeof(one)) < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = kick[q], .events = POLLIN };

		if (poll(&pfd, 1, 0) == 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) >
		    KICK_WAIT_NS)
			return;
		sched_yield();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	guest_fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
	FUZZ_CHECK(guest_fd >= 0, "memfd_create: %s", strerror(errno));
	for (int q = 0; q < VHOST_DEV_NUM_QUEUES; q++)
		kick[q] = -1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t conf = (uint8_t)fuzz_take(&in, 1);
	struct vhost_dev_config cfg = {
		.tag = (conf & 4) ? "fuzzfs" : NULL,
		.thread_pool_size = (conf & 3) == 3 ? 0 : conf & 3,
		.loadavg_fd = -1,
	};
	struct vhost_backend backend = { .handle = touch_buffers, .reset = no_reset };
	struct vhost_dev *dev;
	int sv[2], fds_before, r;

	fds_before = fuzz_count_fds();
	/* Fresh zeroed guest memory for every input. */
	FUZZ_CHECK(ftruncate(guest_fd, 0) == 0 && ftruncate(guest_fd, GUEST_MEM_SIZE) == 0,
		   "ftruncate: %s", strerror(errno));
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
		   strerror(errno));
	r = vhost_dev_new(&cfg, &backend, &dev);
	FUZZ_CHECK(r == 0, "vhost_dev_new: %s", strerror(-r));

	for (int n = 0; n < MAX_MESSAGES && in.left > 0; n++) {
		struct vhost_user_header h = { 0 };
		size_t hlen, len;
		const uint8_t *hp = fuzz_bytes(&in, sizeof(h), &hlen);
		const uint8_t *payload;

		memcpy(&h, hp, hlen);
		if (hlen < sizeof(h)) {
			/* a header cut short: the device must see the hang-up */
			FUZZ_CHECK(send(sv[0], hp, hlen, MSG_NOSIGNAL) == (ssize_t)hlen, "send");
			shutdown(sv[0], SHUT_WR);
			vhost_dev_handle_msg(dev, sv[1]);
			break;
		}
		payload = fuzz_bytes(&in, h.size, &len);
		if (h.request == FZ_POKE) {
			poke(payload, len);
			continue;
		}
		if (h.request == FZ_KICK) {
			guest_kick(payload, len);
			continue;
		}
		send_msg(sv[0], &h, payload, len);
		if (in.left == 0)
			shutdown(sv[0], SHUT_WR); /* a payload cut short ends in a hang-up */
		r = vhost_dev_handle_msg(dev, sv[1]);
		if (fuzz_trace)
			fprintf(stderr, "fuzz: %s (%zu bytes) -> %d\n",
				vhost_user_request_name(h.request), len, r);
		drain_replies(sv[0]);
		if (r < 0)
			break;
	}

	vhost_dev_free(dev);
	close(sv[0]);
	close(sv[1]);
	for (int q = 0; q < VHOST_DEV_NUM_QUEUES; q++) {
		if (kick[q] >= 0)
			close(kick[q]);
		kick[q] = -1;
	}
	FUZZ_CHECK(fuzz_count_fds() == fds_before, "%d fds open after the input, %d before",
		   fuzz_count_fds(), fds_before);
	return 0;
}
