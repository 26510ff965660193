/*
 * GETLK, SETLK and SETLKW. A SETLKW that has to wait must not hold the thread that serves the
 * ring: it is answered later. A waiter thread blocks in the filesystem's setlk; INTERRUPT of
 * that request, DESTROY, or the transport stopping the ring ends the wait with EINTR.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "fuse/request.h"

/* Sent to a waiter thread to end its blocking lock call (EINTR): no SA_RESTART. */
#define WAITER_SIGNAL SIGUSR2

struct fuse_waiter {
	struct fuse_server *srv;
	uint64_t unique;
	void *token;
	struct vfsd_req_ctx ctx;
	uint64_t nodeid, fh, owner;
	struct fuse_file_lock lk;
	bool is_flock;
	bool cancelled; /* guarded by srv->waiters_lock */
	pthread_t thread;
	struct fuse_waiter *next;
};

static void on_waiter_signal(int sig)
{
	(void)sig;
}

static void install_once(void)
{
	struct sigaction sa = { .sa_handler = on_waiter_signal }; /* no SA_RESTART */

	sigaction(WAITER_SIGNAL, &sa, NULL);
}

static void install_waiter_signal(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install_once);
}

static void complete(struct fuse_waiter *w, int err)
{
	struct fuse_out_header oh = { .len = sizeof(oh), .error = err, .unique = w->unique };

	w->srv->transport.complete(w->token, &oh, sizeof(oh));
}

static void *waiter_main(void *arg)
{
	struct fuse_waiter *w = arg;
	struct fuse_server *srv = w->srv;
	struct fuse_waiter **p;
	int r;

	for (;;) {
		bool cancelled;

		pthread_mutex_lock(&srv->waiters_lock);
		cancelled = w->cancelled;
		pthread_mutex_unlock(&srv->waiters_lock);
		if (cancelled) {
			r = -EINTR;
			break;
		}
		r = srv->ops->setlk(srv->fs, &w->ctx, w->nodeid, w->fh, w->owner, &w->lk, w->is_flock,
				    true);
		if (r != -EINTR)
			break; /* granted, or failed; an EINTR goes round to look at cancelled */
	}
	/* Answered while still listed: whoever cancels the waiters (a ring stop, the end of the
	 * /dev/fuse transport) waits for the list to empty, so the transport is alive here. */
	complete(w, r);
	pthread_mutex_lock(&srv->waiters_lock);
	for (p = &srv->waiters; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	pthread_cond_broadcast(&srv->waiters_cond);
	pthread_mutex_unlock(&srv->waiters_lock); /* the last touch of srv */
	free(w);
	return NULL;
}

/* Hands a SETLKW whose lock is held elsewhere to a waiter thread. */
static int defer_lock(struct fuse_req *req, const struct fuse_lk_in *in, bool is_flock)
{
	struct fuse_server *srv = req->srv;
	struct fuse_waiter *w;
	pthread_attr_t attr;
	int r;

	if (!srv->transport.defer || !req->treq)
		return -EAGAIN; /* a transport that cannot answer later */
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOLCK;
	*w = (struct fuse_waiter){ .srv = srv, .unique = req->in.unique, .ctx = req->ctx,
				   .nodeid = req->in.nodeid, .fh = in->fh, .owner = in->owner,
				   .lk = in->lk, .is_flock = is_flock };
	w->token = srv->transport.defer(srv->transport.opaque, req->treq);
	if (!w->token) {
		free(w);
		return -ENOLCK;
	}
	install_waiter_signal();
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_mutex_lock(&srv->waiters_lock);
	r = pthread_create(&w->thread, &attr, waiter_main, w);
	if (r == 0) {
		w->next = srv->waiters;
		srv->waiters = w;
	}
	pthread_mutex_unlock(&srv->waiters_lock);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		log_warn("fuse: cannot start a thread for a waiting lock: %s", strerror(r));
		complete(w, -ENOLCK);
		free(w);
	}
	return FUSE_OP_DEFERRED;
}

void fuse_cancel_waiters(struct fuse_server *srv, uint64_t unique, bool all)
{
	pthread_mutex_lock(&srv->waiters_lock);
	for (;;) {
		struct fuse_waiter *w;
		struct timespec ts;

		for (w = srv->waiters; w && !all && w->unique != unique; w = w->next)
			;
		if (!w)
			break;
		/* Again until it is gone: the signal may land before the thread blocks. */
		w->cancelled = true;
		pthread_kill(w->thread, WAITER_SIGNAL);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&srv->waiters_cond, &srv->waiters_lock, &ts);
	}
	pthread_mutex_unlock(&srv->waiters_lock);
}

int fuse_do_getlk(struct fuse_req *req)
{
	const struct fuse_lk_in *in = req_arg(req, sizeof(*in));
	struct fuse_lk_out out = { .lk = in->lk };
	int r;

	if (!req->srv->ops->getlk)
		return -ENOSYS;
	r = req->srv->ops->getlk(req->srv->fs, &req->ctx, req->in.nodeid, in->fh, in->owner,
				 &out.lk);
	return r < 0 ? r : reply_struct(req, &out, sizeof(out));
}

static int setlk_common(struct fuse_req *req, bool wait)
{
	const struct fuse_lk_in *in = req_arg(req, sizeof(*in));
	bool is_flock = in->lk_flags & FUSE_LK_FLOCK;
	int r;

	if (!req->srv->ops->setlk)
		return -ENOSYS;
	r = req->srv->ops->setlk(req->srv->fs, &req->ctx, req->in.nodeid, in->fh, in->owner,
				 &in->lk, is_flock, false);
	if (r == -EAGAIN && wait)
		return defer_lock(req, in, is_flock);
	return r;
}

int fuse_do_setlk(struct fuse_req *req)
{
	return setlk_common(req, false);
}

int fuse_do_setlkw(struct fuse_req *req)
{
	return setlk_common(req, true);
}
