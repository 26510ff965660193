/* The rings at work: queue threads, pool workers, replies that come later, and the start and
 * stop of a ring's thread. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "metrics/metrics.h"
#include "vhost/device_int.h"
#include "vhost/protocol.h"

/* ---- request processing (queue threads and pool workers) ---- */

static void vq_notify_locked(struct vhost_vq *vq)
{
	if (vq->call_fd >= 0 && virtq_should_notify(&vq->ring)) {
		uint64_t one = 1;

		if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("queue %u: call eventfd: %s", vq->index, strerror(errno));
	}
}

static void vq_report_broken(struct vhost_vq *vq)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vq->lock);
	if (vq->err_fd >= 0 && write(vq->err_fd, &one, sizeof(one)) < 0)
		log_warn("queue %u: error eventfd: %s", vq->index, strerror(errno));
	pthread_mutex_unlock(&vq->lock);
}

/* A chain handed to the pool: only its head, translated by the worker under the memory lock
 * (the memory map may change between the pop and the worker's turn). */
struct pool_job {
	struct vhost_vq *vq;
	uint16_t head;
};

static void log_bad_chain(const struct vhost_vq *vq, uint16_t head, int r)
{
	log_warn("queue %u: malformed descriptor chain at head %u (%s), returned empty", vq->index,
		 head, strerror(-r));
}

/* The reply of a chain counted in flight (pool work, a deferred reply) is pushed, unless it
 * was deferred once more. Called with dev->mem_lock held for reading: the used ring is guest
 * memory. */
static void vq_push_reply(struct vhost_vq *vq, uint16_t head, uint32_t len)
{
	if (len == VFSD_DEFERRED)
		return;
	pthread_mutex_lock(&vq->lock);
	virtq_push(&vq->ring, head, len);
	vq_log_used(vq);
	vq_notify_locked(vq);
	pthread_mutex_unlock(&vq->lock);
}

/*
 * The chain is no longer in flight, and a ring waiting to stop learns it is drained. This is
 * the caller's last touch of the device, after it let go of mem_lock: once the count is
 * zero, vq_stop() returns and vhost_dev_free() may free everything.
 */
static void vq_drop_inflight(struct vhost_vq *vq)
{
	pthread_mutex_lock(&vq->lock);
	if (--vq->inflight == 0)
		pthread_cond_broadcast(&vq->drained);
	pthread_mutex_unlock(&vq->lock);
}

static void pool_run(void *arg)
{
	struct pool_job *job = arg;
	struct vhost_vq *vq = job->vq;
	struct vhost_dev *dev = vq->dev;
	struct virtq_elem elem;
	uint32_t len = 0;
	int r;

	pthread_rwlock_rdlock(&dev->mem_lock);
	r = virtq_walk(&vq->ring, &dev->mem, job->head, &elem);
	elem.queue = vq->index;
	if (r > 0) {
		len = dev->backend.handle(dev->backend.opaque, &elem);
		vq_log_write(vq, &elem, len);
	} else {
		log_bad_chain(vq, job->head, r);
	}
	vq_push_reply(vq, job->head, len);
	pthread_rwlock_unlock(&dev->mem_lock);
	free(job);
	vq_drop_inflight(vq);
}

/* ---- requests answered later (a lock that waits) ---- */

struct vhost_deferred {
	struct vhost_vq *vq;
	uint16_t head;
};

struct vhost_deferred *vhost_dev_defer(struct vhost_dev *dev, const struct virtq_elem *elem)
{
	struct vhost_deferred *d;

	/* The chain's own ring: it runs, so its slot was filled before it started. */
	if (elem->queue >= VHOST_DEV_NUM_QUEUES || !dev->vqs[elem->queue])
		return NULL;
	d = malloc(sizeof(*d));
	if (!d)
		return NULL;
	d->vq = dev->vqs[elem->queue];
	d->head = elem->head;
	pthread_mutex_lock(&d->vq->lock);
	d->vq->inflight++; /* the ring does not stop before it is completed */
	pthread_mutex_unlock(&d->vq->lock);
	return d;
}

void vhost_dev_complete(struct vhost_deferred *d, const void *reply, uint32_t len)
{
	struct vhost_vq *vq = d->vq;
	struct vhost_dev *dev = vq->dev;
	struct virtq_elem *elem = malloc(sizeof(*elem));
	uint32_t written = 0;

	/* The chain again, with the memory map of now: it may have changed meanwhile. */
	pthread_rwlock_rdlock(&dev->mem_lock);
	if (elem && virtq_walk(&vq->ring, &dev->mem, d->head, elem) > 0 &&
	    iov_length(virtq_elem_wr(elem), elem->nwr) >= len) {
		iov_from_buf(virtq_elem_wr(elem), elem->nwr, 0, reply, len);
		written = len;
		vq_log_write(vq, elem, written);
	} else {
		log_warn("queue %u: deferred reply to chain %u does not fit, returned empty",
			 vq->index, d->head);
	}
	vq_push_reply(vq, d->head, written);
	pthread_rwlock_unlock(&dev->mem_lock);
	free(elem);
	free(d);
	vq_drop_inflight(vq);
}

/* Hands the next chain to the pool; returns as virtq_pop_head. Called with vq->lock held. */
static int vq_dispatch_one(struct vhost_vq *vq)
{
	struct pool_job *job;
	uint16_t head;
	int r = virtq_pop_head(&vq->ring, &head);

	if (r <= 0)
		return r;
	job = malloc(sizeof(*job));
	if (job) {
		job->vq = vq;
		job->head = head;
		vq->inflight++;
		if (work_pool_submit(vq->dev->pool, pool_run, job) == 0)
			return 1;
		vq->inflight--;
		free(job);
	}
	log_error("queue %u: out of memory, request returned empty", vq->index);
	virtq_push(&vq->ring, head, 0);
	vq_log_used(vq);
	return 1;
}

/* Serves the next chain on this thread; returns as virtq_pop_head. Called with vq->lock held,
 * which is dropped while the request runs. */
static int vq_serve_one(struct vhost_vq *vq)
{
	struct vhost_dev *dev = vq->dev;
	uint32_t len = 0;
	uint16_t head;
	int r = virtq_pop_head(&vq->ring, &head);

	if (r <= 0)
		return r;
	r = virtq_walk(&vq->ring, &dev->mem, head, vq->elem);
	vq->elem->queue = vq->index;
	if (r > 0) {
		pthread_mutex_unlock(&vq->lock);
		len = dev->backend.handle(dev->backend.opaque, vq->elem);
		pthread_mutex_lock(&vq->lock);
	} else {
		log_bad_chain(vq, head, r);
	}
	if (len == VFSD_DEFERRED)
		return 1; /* vhost_dev_complete pushes it */
	vq_log_write(vq, vq->elem, len);
	virtq_push(&vq->ring, head, len);
	vq_log_used(vq);
	/* Each reply is signalled at once (EVENT_IDX spares the calls the guest did not ask for): a
	 * slow request later in the ring must not hold back replies that are ready. */
	vq_notify_locked(vq);
	return 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Polling (docs/benchmarks.md, "Polling"). A queue thread that keeps looking at an emptied
 * ring serves a guest with more requests coming without the cost of a kick and a wake-up
 * (tens of microseconds on a virtualised host). It costs a core, and loses when that core is
 * wanted by someone else: a vCPU of the same guest, or another daemon. So each ring adapts,
 * as KVM's halt polling does:
 * - it polls for poll_ns (at most --queue-poll-us), starting at 0;
 * - a poll that finds nothing is followed by sleep; when the next kick comes within the
 *   longest poll of the moment the ring went idle, polling longer would have caught it, and
 *   poll_ns grows (from POLL_START_NS, doubling); a kick that comes later halves it (to 0
 *   below POLL_START_NS), so that the gap between two bursts of requests does not undo
 *   what the bursts taught;
 * - there is no polling at all while the host has no core free for it: more threads ready
 *   to run than CPUs, /proc/loadavg says (counting this one), sampled at most every
 *   LOAD_SAMPLE_NS;
 * - a spin stops once /proc/loadavg, read at every turn, has shown more threads ready than
 *   CPUs for WAITING_NS in a row, so that some thread waits for a CPU: under TCG a vCPU or
 *   the VMM's thread our call woke, and the guest's own work waits on the spin
 *   (docs/benchmarks.md, "Session 15"). The count is host-wide, and other spinning queue
 *   threads are in it;
 * - the hiprio queue is never polled: nobody waits for a FORGET's reply, and its spin would
 *   take the core the next request needs (docs/benchmarks.md, "Session 14");
 * - and the spin yields the CPU at each turn (sched_yield): a thread that becomes ready on
 *   this core meanwhile (the VMM's thread that turns our call into the guest's interrupt,
 *   or a vCPU) runs at once instead of waiting for the spin to end, which would delay the
 *   very request the spin waits for.
 */
#define POLL_START_NS 10000u
#define LOAD_SAMPLE_NS 100000u
#define WAITING_NS 10000u

/* Whether no thread waits for a CPU, counting this one: read from /proc/loadavg ("0.50 0.40
 * 0.30 R/T LASTPID", R the entities runnable now, this thread among them). */
static bool core_free_now(struct vhost_dev *dev)
{
	unsigned int running = 0, total = 0;
	char buf[128];
	ssize_t n;

	n = pread(dev->loadavg_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	return sscanf(buf, "%*s %*s %*s %u/%u", &running, &total) != 2 || running <= dev->ncpus;
}

/* The same, cached for LOAD_SAMPLE_NS: whether to begin a poll. */
static bool core_free(struct vhost_dev *dev, uint64_t now)
{
	uint64_t last = __atomic_load_n(&dev->load_sampled_ns, __ATOMIC_RELAXED);
	bool ok;

	if (dev->loadavg_fd < 0)
		return true;
	if (now - last < LOAD_SAMPLE_NS ||
	    !__atomic_compare_exchange_n(&dev->load_sampled_ns, &last, now, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return __atomic_load_n(&dev->core_free, __ATOMIC_RELAXED);
	ok = core_free_now(dev);
	__atomic_store_n(&dev->core_free, ok, __ATOMIC_RELAXED);
	return ok;
}

/* Keeps looking at an emptied ring for the ring's poll time before the thread sleeps.
 * Returns true if the guest made chains available. */
static bool vq_poll_briefly(struct vhost_vq *vq)
{
	struct vhost_dev *dev = vq->dev;
	uint64_t start, end, now, waiting_since = 0;

	vq->idle_since = 0;
	if (!dev->queue_poll_ns)
		return false;
	start = mono_ns();
	if (!core_free(dev, start))
		return false; /* sleep at once; the next wake-up does not judge the poll time */
	vq->idle_since = start;
	if (!vq->poll_ns)
		return false;
	end = start + vq->poll_ns;
	do {
		if (virtq_has_avail(&vq->ring)) {
			vq->idle_since = 0; /* polling paid */
			return true;
		}
		sched_yield();
		now = mono_ns();
		/* A thread kept waiting for a CPU all along (a vCPU, the VMM's thread our last call
		 * woke): the spin gives its core up. The yield does not: a thread queued on another
		 * CPU comes here only once this one goes idle. One that runs briefly (a kworker)
		 * got its turn with the yield and does not end the spin. */
		if (dev->loadavg_fd < 0 || core_free_now(dev)) {
			waiting_since = 0;
		} else if (!waiting_since) {
			waiting_since = now;
		} else if (now - waiting_since >= WAITING_NS) {
			vq->idle_since = 0;
			return false;
		}
	} while (now < end && !__atomic_load_n(&vq->stopping, __ATOMIC_RELAXED));
	return false;
}

/* The thread was kicked awake after a poll that found nothing: adapt the poll time. */
static void vq_poll_adapt(struct vhost_vq *vq)
{
	uint64_t max = vq->dev->queue_poll_ns, waited;

	if (!vq->idle_since)
		return;
	waited = mono_ns() - vq->idle_since;
	vq->idle_since = 0;
	if (waited <= max) /* a longer poll would have caught it */
		vq->poll_ns = vq->poll_ns ? MIN(vq->poll_ns * 2, max) : MIN(POLL_START_NS, max);
	else if (vq->poll_ns > POLL_START_NS) /* halved: one late kick between bursts */
		vq->poll_ns /= 2;
	else
		vq->poll_ns = 0;
}

/*
 * Drains the ring, at most one ring's worth of chains, then polls it briefly. Returns true
 * when there is more to do: the caller releases mem_lock (so the message thread can change
 * the memory map) and calls again. Called with mem_lock held for reading.
 *
 * The poll runs with the guest's notifications still off (the flag set, or avail_event left
 * behind): a guest adding chains meanwhile need not kick, and the thread, having served
 * them, is not woken again by a kick it no longer needs (which would also make the poll
 * time grow for nothing). Only a poll that found nothing turns them on, looks once more
 * and lets the thread sleep.
 */
static bool vq_process(struct vhost_vq *vq)
{
	struct vhost_dev *dev = vq->dev;
	unsigned int budget;
	/* --queue-poll-us=0, and the hiprio queue: straight to sleep */
	bool polled = !dev->queue_poll_ns || vq->index == VHOST_HIPRIO_QUEUE;
	int r = 0;

	pthread_mutex_lock(&vq->lock);
	if (!vq->enabled || !vq->ring.desc) {
		pthread_mutex_unlock(&vq->lock);
		return false;
	}
	budget = vq->ring.num;
	for (;;) {
		virtq_disable_notify(&vq->ring);
		do
			r = dev->pool ? vq_dispatch_one(vq) : vq_serve_one(vq);
		while (r > 0 && --budget > 0);
		if (!dev->pool)
			vq_notify_locked(vq);
		if (r != 0)
			break; /* broken, or out of budget with more there */
		if (!polled) {
			bool found;

			polled = true;
			vq_log_used(vq);
			pthread_mutex_unlock(&vq->lock);
			found = vq_poll_briefly(vq);
			pthread_mutex_lock(&vq->lock);
			if (found) {
				r = 1; /* more: served on the caller's next call */
				break;
			}
			if (!vq->enabled)
				break;
		}
		if (!virtq_enable_notify(&vq->ring))
			break; /* empty with notifications on: sleep */
		/* A chain came just after the poll ended: a longer one would have caught it. */
		vq_poll_adapt(vq);
	}
	vq_log_used(vq); /* the notification flags and avail_event are in the used ring */
	pthread_mutex_unlock(&vq->lock);
	if (r < 0) {
		vq_report_broken(vq);
		return false;
	}
	return r > 0;
}

void vq_self_kick(struct vhost_vq *vq)
{
	uint64_t one = 1;

	if (write(vq->kick_fd, &one, sizeof(one)) == sizeof(one))
		__atomic_add_fetch(&vq->self_kicks, 1, __ATOMIC_RELAXED);
	else
		log_debug("queue %u: self-kick: %s", vq->index, strerror(errno));
}

/* Of the n wake-ups the kick eventfd counted, those the guest sent. A self-kick read before
 * it is counted passes for the guest's here and is taken from the next read: over time the
 * sum is exact. */
static uint64_t guest_kicks(struct vhost_vq *vq, uint64_t n)
{
	uint64_t self = __atomic_exchange_n(&vq->self_kicks, 0, __ATOMIC_RELAXED);

	if (self <= n)
		return n - self;
	__atomic_add_fetch(&vq->self_kicks, self - n, __ATOMIC_RELAXED);
	return 0;
}

/*
 * A ring whose thread slept RESCUE_MS without a kick is looked at once. A driver and a
 * device each tell the other of new entries, and each side's last look at the other's index
 * needs a full memory barrier between its own write and that read. Without it one side
 * misses the other's notification: QEMU before 8.1 under TCG with one vCPU leaves the
 * guest's barriers out (docs/error-handling.md, "A notification lost"). The guest then waits
 * forever: for chains it made available and never kicked (a FORGET burst left 704 of them
 * on a hiprio ring, and the unmount waited for them), or for a call never sent. So:
 * - chains available that nobody took are served, as a kick would have: vq_rescue returns
 *   how many, and the thread waits RESCUE_GRACE_MS more for the kick a guest sends right
 *   after it made them available before it calls the kick lost;
 * - used entries past the guest's used_event, that is entries it asked a call for and has
 *   not taken, and so for two looks in a row, get one more call (once for each such state:
 *   a spare interrupt only costs the guest a look at its ring, and a paused guest is not
 *   called every second).
 * Each is logged: it means a notification was lost, which is the VMM's or the guest's bug.
 */
#define RESCUE_MS 1000
#define RESCUE_GRACE_MS 50

static uint16_t vq_rescue(struct vhost_vq *vq)
{
	struct vhost_dev *dev = vq->dev;
	uint16_t waiting = 0, used = 0, event = 0;
	bool call = false;

	pthread_rwlock_rdlock(&dev->mem_lock);
	pthread_mutex_lock(&vq->lock);
	if (vq->enabled && vq->ring.desc) {
		uint32_t state;

		waiting = virtq_avail_pending(&vq->ring);
		used = vq->ring.used_idx;
		event = virtq_used_event(&vq->ring);
		state = (uint32_t)used << 16 | event;
		if (!waiting && vq->call_fd >= 0 && virtq_used_past_event(&vq->ring)) {
			call = vq->rescue_looked && vq->rescue_state == state &&
			       !(vq->rescue_called && vq->rescued_state == state);
			vq->rescue_looked = true;
		} else {
			vq->rescue_looked = false;
		}
		vq->rescue_state = state;
		if (call) {
			uint64_t one = 1;

			vq->rescue_called = true;
			vq->rescued_state = state;
			if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
				log_warn("queue %u: call eventfd: %s", vq->index, strerror(errno));
		}
	}
	pthread_mutex_unlock(&vq->lock);
	pthread_rwlock_unlock(&dev->mem_lock);
	if (call)
		log_warn("queue %u: the guest asked for a call at used entry %u and has not taken "
			 "it in %d ms (used index %u): called again (a lost notification, see "
			 "docs/error-handling.md)",
			 vq->index, event, 2 * RESCUE_MS, used);
	return waiting;
}

static void *vq_thread(void *arg)
{
	struct vhost_vq *vq = arg;
	struct pollfd pfd[2] = {
		{ .fd = vq->kick_fd, .events = POLLIN },
		{ .fd = vq->stop_fd, .events = POLLIN },
	};
	char name[16];

	/* "vfsd-queueN" in ps -L, top -H and /proc/PID/task/TID/comm: which ring is busy. */
	snprintf(name, sizeof(name), "vfsd-queue%u", vq->index);
	prctl(PR_SET_NAME, name);
	if (vq->dev->thread_init)
		vq->dev->thread_init();
	for (;;) {
		uint64_t v;
		bool more;
		int n = poll(pfd, 2, RESCUE_MS);

		if (n == 0) {
			uint16_t waiting = vq_rescue(vq);

			if (!waiting)
				continue;
			n = poll(pfd, 2, RESCUE_GRACE_MS); /* the kick may be on its way */
			if (n == 0)
				log_warn("queue %u: %u chains were made available with no kick for %d ms: "
					 "served now (a lost notification, see docs/error-handling.md)",
					 vq->index, waiting, RESCUE_MS + RESCUE_GRACE_MS);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("queue %u: poll: %s", vq->index, strerror(errno));
			break;
		}
		if (n > 0) {
			if (pfd[1].revents)
				break;
			if (pfd[0].revents & (POLLERR | POLLNVAL)) {
				log_error("queue %u: kick fd failed", vq->index);
				break;
			}
			ssize_t got = read(vq->kick_fd, &v, sizeof(v));

			if (got < 0 && errno != EAGAIN)
				continue;
			log_trace("queue %u: kicked", vq->index);
			vq_poll_adapt(vq);
			if (got == sizeof(v))
				metrics_queue_kicks(vq->index, guest_kicks(vq, v));
		}
		do {
			pthread_rwlock_rdlock(&vq->dev->mem_lock);
			more = vq_process(vq);
			pthread_rwlock_unlock(&vq->dev->mem_lock);
		} while (more && !__atomic_load_n(&vq->stopping, __ATOMIC_RELAXED));
	}
	return NULL;
}

/* ---- ring lifecycle (message thread) ---- */

struct vhost_vq *vhost_dev_vq(struct vhost_dev *dev, unsigned int index)
{
	struct vhost_vq *vq = dev->vqs[index];

	if (vq)
		return vq;
	vq = calloc(1, sizeof(*vq));
	if (!vq)
		return NULL;
	vq->dev = dev;
	vq->index = index;
	vq->call_fd = vq->kick_fd = vq->err_fd = vq->stop_fd = -1;
	pthread_mutex_init(&vq->lock, NULL);
	pthread_cond_init(&vq->drained, NULL);
	/* As SET_FEATURES would have left it, had the ring existed then. */
	vq->ring.event_idx = dev->acked_features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->enabled = dev->features_set &&
		      !(dev->acked_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	dev->vqs[index] = vq;
	if (index >= dev->nvqs)
		dev->nvqs = index + 1;
	return vq;
}

void vq_free(struct vhost_vq *vq)
{
	vfsd_closep(&vq->call_fd);
	vfsd_closep(&vq->err_fd);
	vfsd_closep(&vq->stop_fd);
	free(vq->elem);
	pthread_mutex_destroy(&vq->lock);
	pthread_cond_destroy(&vq->drained);
	free(vq);
}

int vq_start(struct vhost_vq *vq)
{
	int r;

	if (vq->dev->paused) {
		/* Started by vhost_dev_resume, with the ring where the VMM set it. */
		vq->halted = true;
		return 0;
	}
	if (vq->stop_fd < 0) {
		vq->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (vq->stop_fd < 0)
			return -errno;
	}
	if (!vq->dev->pool && !vq->elem) {
		vq->elem = malloc(sizeof(*vq->elem));
		if (!vq->elem)
			return -ENOMEM;
	}
	if (vq->ring.used)
		vq->ring.used_idx = __atomic_load_n(&vq->ring.used->idx, __ATOMIC_ACQUIRE);
	vq->ring.signalled_used_valid = false;
	vq->ring.broken = false;
	r = pthread_create(&vq->thread, NULL, vq_thread, vq);
	if (r)
		return -r;
	vq->started = true;
	/* The thread looks at the ring once before it first sleeps: a thread that stopped
	 * while polling left the guest's notifications off, so chains added since came with
	 * no kick (and the guest may have kicked while nobody listened). */
	if (vq->kick_fd >= 0)
		vq_self_kick(vq);
	return 0;
}

/* Stops the queue thread and waits for the pool to finish this ring's requests; the kick fd
 * is kept (a pause) or closed. */
static void vq_halt(struct vhost_vq *vq, bool keep_kick)
{
	uint64_t one = 1;

	if (vq->started) {
		__atomic_store_n(&vq->stopping, true, __ATOMIC_RELAXED);
		if (write(vq->stop_fd, &one, sizeof(one)) < 0)
			log_error("queue %u: stop eventfd: %s", vq->index, strerror(errno));
		pthread_join(vq->thread, NULL);
		__atomic_store_n(&vq->stopping, false, __ATOMIC_RELAXED);
		if (read(vq->stop_fd, &one, sizeof(one)) < 0)
			log_debug("queue %u: stop eventfd drain: %s", vq->index, strerror(errno));
		vq->started = false;
	}
	pthread_mutex_lock(&vq->lock);
	while (vq->inflight > 0) {
		struct timespec ts;

		if (!vq->dev->backend.cancel_deferred) {
			pthread_cond_wait(&vq->drained, &vq->lock);
			continue;
		}
		/* Requests that wait (locks) end now; a pool job may still defer one, so look
		 * again every 10 ms. */
		pthread_mutex_unlock(&vq->lock);
		vq->dev->backend.cancel_deferred(vq->dev->backend.opaque);
		pthread_mutex_lock(&vq->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vq->drained, &vq->lock, &ts);
	}
	pthread_mutex_unlock(&vq->lock);
	if (!keep_kick) {
		vq->halted = false;
		vfsd_closep(&vq->kick_fd);
		vq->self_kicks = 0; /* they went with the eventfd */
	}
}

void vq_stop(struct vhost_vq *vq)
{
	vq_halt(vq, false);
}

void vhost_dev_pause(struct vhost_dev *dev)
{
	dev->paused = true;
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		struct vhost_vq *vq = dev->vqs[i];

		if (vq && vq->started) {
			vq_halt(vq, true);
			vq->halted = true;
		}
	}
}

int vhost_dev_resume(struct vhost_dev *dev)
{
	int r = 0;

	dev->paused = false;
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		struct vhost_vq *vq = dev->vqs[i];

		if (!vq || !vq->halted || vq->kick_fd < 0)
			continue;
		vq->halted = false;
		if (vq_start(vq) < 0) {
			r = -EIO;
			continue;
		}
		/* vq_start looked at the ring: the guest may have kicked while nobody listened. */
	}
	return r;
}

/* Back to a ring never set up: nothing of it is held any more but the struct. */
void vq_reset(struct vhost_vq *vq)
{
	vq_stop(vq);
	pthread_mutex_lock(&vq->lock);
	vfsd_closep(&vq->call_fd);
	vfsd_closep(&vq->err_fd);
	vq->enabled = false;
	pthread_mutex_unlock(&vq->lock);
	vfsd_closep(&vq->stop_fd);
	free(vq->elem);
	vq->elem = NULL;
	virtq_unmap(&vq->ring);
	vq->ring.num = 0;
	vq->ring.last_avail_idx = 0;
	vq->ring.used_idx = 0;
	vq->ring.broken = false;
}

/* ---- dirty logging ---- */

void vq_log_write(struct vhost_vq *vq, const struct virtq_elem *elem, uint32_t len)
{
	struct vhost_dev *dev = vq->dev;

	if (!dev->logging || len == 0 || len == VFSD_DEFERRED)
		return;
	vhost_log_iov(&dev->log, &dev->mem, elem->iov + elem->nrd, elem->nwr, len);
}

void vq_log_used(struct vhost_vq *vq)
{
	struct vhost_dev *dev = vq->dev;

	if (!dev->logging || !vq->ring.log_used || !vq->ring.num)
		return;
	/* flags, idx, the entries and avail_event: a few pages at most, all marked. */
	vhost_log_gpa(&dev->log, vq->ring.used_gpa,
		      offsetof(struct vring_used, ring) +
			      vq->ring.num * sizeof(struct vring_used_elem) + sizeof(uint16_t));
	vhost_log_kick(&dev->log);
}

/* Re-resolves every ring after the memory map changed; called with mem_lock held for writing. */
void remap_rings(struct vhost_dev *dev)
{
	for (unsigned int i = 0; i < dev->nvqs; i++) {
		struct vhost_vq *vq = dev->vqs[i];

		if (vq && vq->ring.num && vq->ring.desc_uva && virtq_map(&vq->ring, &dev->mem) < 0)
			log_debug("queue %u: ring not mapped by the current memory table", i);
	}
}
