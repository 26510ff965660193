/* The Pushgateway client (libcurl), the supervisor's pusher thread and a standalone
 * daemon's pusher process. */
#include <cap-ng.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "metrics/push.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- the gateway ------------------------------------------------------------------------ */

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int metrics_gateway_init(struct metrics_gateway *gw, const char *url, const char *instance,
			 uint32_t interval_ms, char *err, size_t errlen)
{
	char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL, *user = NULL;
	CURLU *u = curl_url();
	CURLUcode rc;
	int r = -EINVAL;

	*gw = (struct metrics_gateway){ .interval_ms = interval_ms };
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc != CURLUE_OK) {
		snprintf(err, errlen, "--metrics-push: '%s' is not a URL: %s", url,
			 curl_url_strerror(rc));
		goto out;
	}
	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	if (!scheme || (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
		snprintf(err, errlen, "--metrics-push: '%s' is not an http or https URL", url);
		goto out;
	}
	if (!host || !host[0] || query || fragment || user) {
		snprintf(err, errlen,
			 "--metrics-push: '%s' must name a host and no user, query or fragment (the gateway's base URL, e.g. http://127.0.0.1:9091)",
			 url);
		goto out;
	}
	char *norm = NULL, *port = NULL;

	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (port && strcmp(port, "0") == 0) {
		curl_free(port);
		snprintf(err, errlen, "--metrics-push: '%s' has port 0", url);
		goto out;
	}
	curl_free(port);

	/* What curl understood, not what was typed: "http://h/#" is http://h/ to it. */
	if (curl_url_get(u, CURLUPART_URL, &norm, 0) != CURLUE_OK || !norm) {
		snprintf(err, errlen, "--metrics-push: '%s' is not a URL", url);
		goto out;
	}
	gw->url = strdup(norm);
	curl_free(norm);
	gw->instance = strdup(instance);
	if (!gw->url || !gw->instance) {
		snprintf(err, errlen, "out of memory");
		metrics_gateway_free(gw);
		r = -ENOMEM;
		goto out;
	}
	for (size_t n = strlen(gw->url); n && gw->url[n - 1] == '/'; n--)
		gw->url[n - 1] = '\0';
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(query);
	curl_free(fragment);
	curl_free(user);
	curl_url_cleanup(u);
	return r;
}

void metrics_gateway_free(struct metrics_gateway *gw)
{
	if (gw->curl)
		curl_easy_cleanup(gw->curl);
	free(gw->url);
	free(gw->instance);
	*gw = (struct metrics_gateway){ 0 };
}

bool metrics_gateway_ready(const struct metrics_gateway *gw, uint64_t now)
{
	return !gw->failures || now >= gw->retry_at_ms;
}

struct reply {
	char text[200];
	size_t len;
};

/* The gateway's answer, kept short: a 400 explains itself in its first line. */
static size_t keep_reply(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct reply *r = opaque;
	size_t n = size * nmemb, room = sizeof(r->text) - 1 - r->len;

	memcpy(r->text + r->len, data, MIN(n, room));
	r->len += MIN(n, room);
	r->text[r->len] = '\0';
	return n;
}

static void failed(struct metrics_gateway *gw, const char *what, const char *reason)
{
	uint64_t delay, cap = MAX((uint64_t)gw->interval_ms, (uint64_t)METRICS_BACKOFF_MAX_MS);

	if (!gw->failures++) {
		snprintf(gw->reason, sizeof(gw->reason), "%s", reason);
		log_warn("metrics: %s to %s failed: %s; retrying with backoff, counters keep counting",
			 what, gw->url, reason);
	}
	delay = gw->failures > 16 ? cap : MIN(cap, 1000ull << (gw->failures - 1));
	gw->retry_at_ms = now_ms() + delay;
}

int metrics_gateway_send(struct metrics_gateway *gw, const char *group, const char *body,
			 size_t len, char *why, size_t whylen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	CURL *c;
	struct curl_slist *hdr = NULL;
	struct reply reply = { .len = 0 };
	struct mbuf url = { 0 };
	char reason[256];
	long code = 0, timeout = MIN(MAX((long)gw->interval_ms, 1000L), 10000L);
	CURLcode rc;

	/* libcurl starts in the pusher, never in a serving process. */
	pthread_once(&once, global_init);
	if (!gw->curl && !(gw->curl = curl_easy_init()))
		return -ENOMEM;
	c = gw->curl;
	mbuf_printf(&url, "%s/metrics%s", gw->url, group);
	if (url.oom) {
		mbuf_free(&url);
		return -ENOMEM;
	}
	curl_easy_reset(c); /* keeps the connection */
	curl_easy_setopt(c, CURLOPT_URL, url.p);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_reply);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vfsd/" VFSD_VERSION);
	if (body) {
		hdr = curl_slist_append(NULL, "Content-Type: text/plain; version=0.0.4");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hdr);
	mbuf_free(&url);
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		if (gw->failures)
			log_info("metrics: %s answers again after %u failed attempts", gw->url,
				 gw->failures);
		gw->failures = 0;
		return 0;
	}
	if (rc != CURLE_OK) {
		snprintf(reason, sizeof(reason), "%s", curl_easy_strerror(rc));
	} else {
		reply.text[strcspn(reply.text, "\r\n")] = '\0';
		snprintf(reason, sizeof(reason), "HTTP %ld%s%s", code, reply.text[0] ? ": " : "",
			 reply.text);
	}
	if (rc == CURLE_OK && code >= 400 && code < 500) {
		/* The gateway works and refused this group (a family of another type elsewhere,
		 * say): the group's own trouble, not an outage. */
		if (gw->failures)
			log_info("metrics: %s answers again after %u failed attempts", gw->url,
				 gw->failures);
		gw->failures = 0;
		snprintf(why, whylen, "%s", reason);
		return -EBADMSG;
	}
	failed(gw, body ? "push" : "delete", reason);
	snprintf(why, whylen, "%s", reason);
	return -EIO;
}

/* A label pair of a group's path: NAME/VALUE, or NAME@base64/BASE64URL when VALUE holds
 * anything but letters, digits, '-', '_' and '.', or is empty. */
static void path_label(struct mbuf *b, const char *name, const char *value)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(value);
	bool plain = n > 0;

	for (const char *s = value; *s && plain; s++)
		plain = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			(*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.';
	if (plain && strcmp(value, ".") && strcmp(value, "..")) {
		mbuf_printf(b, "/%s/%s", name, value);
		return;
	}
	mbuf_printf(b, "/%s@base64/", name);
	if (!n)
		mbuf_printf(b, "=");
	for (size_t i = 0; i < n; i += 3) {
		const unsigned char *p = (const unsigned char *)value + i;
		uint32_t v = (uint32_t)p[0] << 16 | (i + 1 < n ? (uint32_t)p[1] << 8 : 0) |
			     (i + 2 < n ? p[2] : 0);

		mbuf_printf(b, "%c%c%c%c", b64[v >> 18 & 63], b64[v >> 12 & 63],
			    i + 1 < n ? b64[v >> 6 & 63] : '=', i + 2 < n ? b64[v & 63] : '=');
	}
}

void metrics_group_path(struct mbuf *b, const struct metrics_gateway *gw, const char *sandbox,
			const char *const *names, const char *const *values, size_t n)
{
	path_label(b, "job", "vfsd");
	path_label(b, "instance", gw->instance);
	path_label(b, "sandbox", sandbox);
	for (size_t i = 0; i < n; i++)
		path_label(b, names[i], values[i]);
}

void metrics_sample_labels(struct mbuf *b, const char *sandbox, const char *const *names,
			   const char *const *values, size_t n)
{
	mbuf_printf(b, "sandbox=\"");
	metrics_escape_label(b, sandbox);
	mbuf_printf(b, "\"");
	for (size_t i = 0; i < n; i++) {
		mbuf_printf(b, ",%s=\"", names[i]);
		metrics_escape_label(b, values[i]);
		mbuf_printf(b, "\"");
	}
}

int metrics_daemon_text(struct mbuf *b, int fd, pid_t pid, const char *labels)
{
	struct metrics_sum *sum = malloc(sizeof(*sum));
	struct metrics_proc proc = { .valid = false };
	struct metrics_entry e;
	int r;

	if (!sum)
		return -ENOMEM;
	r = metrics_read(fd, sum);
	if (r == 0) {
		if (pid > 0)
			metrics_proc_read(metrics_serving_pid(pid, sum), &proc);
		e = (struct metrics_entry){ .sum = sum, .proc = &proc, .labels = labels };
		metrics_format(b, &e, 1);
		if (b->oom)
			r = -ENOMEM;
	}
	free(sum);
	return r;
}

/* --- the supervisor's pusher thread ----------------------------------------------------- */

#define ENDED_MAX 4096 /* ended daemons waiting for their last push while the gateway is down */
#define TEXT_MAX (16u << 20) /* one daemon's text: a hostile region's could be much longer */

struct target {
	char *sandbox, *group;
	int fd;
	pid_t pid;
	bool ended, clean, pushed, deleted;
	bool fresh;		/* never pushed: its first push goes out at once */
	unsigned int refusals;	/* the gateway refused its group this many times in a row */
	uint64_t retry_at_ms;	/* while refused: not before */
	struct target *next;
};

struct metrics_pusher {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC: a clock step does not hold pushes back */
	pthread_t thread;
	struct metrics_gateway *gw;
	struct target *targets; /* guarded by lock; unlinked and freed by the pusher thread only */
	unsigned int nended;
	bool stop, woken;
};

static void target_free(struct target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	free(t->sandbox);
	free(t->group);
	free(t);
}

/* The gateway refused t's group (4xx): logged once per streak, and t backs off alone. */
static void target_refused(struct metrics_gateway *gw, struct target *t, const char *why)
{
	uint64_t cap = MAX((uint64_t)gw->interval_ms, (uint64_t)METRICS_BACKOFF_MAX_MS);

	if (!t->refusals++)
		log_warn("metrics: %s refused the group of sandbox %s: %s; retrying with backoff",
			 gw->url, t->sandbox, why);
	t->retry_at_ms = now_ms() + (t->refusals > 16 ? cap : MIN(cap, 1000ull << (t->refusals - 1)));
}

static int send_target(struct metrics_gateway *gw, struct target *t, const char *body,
		       size_t len)
{
	char why[256];
	int r = metrics_gateway_send(gw, t->group, body, len, why, sizeof(why));

	if (r == -EBADMSG) {
		target_refused(gw, t, why);
	} else if (r == 0 && t->refusals) {
		log_info("metrics: %s takes the group of sandbox %s again", gw->url, t->sandbox);
		t->refusals = 0;
	}
	return r;
}

/* One push of t: 0, -EBADMSG (its group refused) or -EIO (the gateway failed: the round stops,
 * it is in backoff). A region that is not one of ours (the daemon's memory is not to be
 * trusted), cannot be read or gives a text past TEXT_MAX has nothing to push: 0. */
static int push_target(struct metrics_gateway *gw, struct target *t)
{
	struct mbuf text = { .limit = TEXT_MAX };
	int r = metrics_daemon_text(&text, t->fd, t->ended ? 0 : t->pid, "");

	if (r == 0)
		r = send_target(gw, t, text.p ? text.p : "", text.len);
	else
		r = 0;
	mbuf_free(&text);
	t->fresh = false;
	return r;
}

static bool target_waits(const struct target *t, uint64_t now)
{
	return t->refusals && now < t->retry_at_ms;
}

/* One round: the ended daemons' last pushes and DELETEs first (a sandbox spawned again under
 * the same id then wins), then every live daemon when due, and the new ones at once. False
 * when the gateway failed. */
static bool pusher_round(struct metrics_gateway *gw, struct target *list, bool due)
{
	uint64_t now = now_ms();
	int r = 0;

	for (struct target *t = list; t && r != -EIO; t = t->next) {
		if (!__atomic_load_n(&t->ended, __ATOMIC_ACQUIRE) || target_waits(t, now))
			continue;
		if (!t->pushed) {
			r = push_target(gw, t);
			t->pushed = r != -EIO; /* refused: as pushed as it will be */
		}
		if (r != -EIO && t->clean && !t->deleted) {
			r = send_target(gw, t, NULL, 0);
			t->deleted = r != -EIO;
		}
	}
	for (struct target *t = list; t && r != -EIO; t = t->next)
		if (!__atomic_load_n(&t->ended, __ATOMIC_ACQUIRE) && (due || t->fresh) &&
		    !target_waits(t, now))
			r = push_target(gw, t);
	return r != -EIO;
}

static void *pusher_main(void *opaque)
{
	struct metrics_pusher *p = opaque;
	uint64_t next_due = now_ms();
	bool dropped_logged = false;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t now = now_ms(), wake = next_due;

		if (p->gw->failures && p->gw->retry_at_ms > wake)
			wake = p->gw->retry_at_ms;
		if (p->woken && p->gw->failures && p->gw->retry_at_ms > now)
			p->woken = false; /* an end during an outage waits for the retry */
		if (!p->woken && now < wake) {
			struct timespec ts;
			uint64_t ms = MIN(wake - now, 1000u); /* refused groups' retries too */

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(ms / 1000);
			ts.tv_nsec += (long)(ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) != ETIMEDOUT || ms == wake - now)
				continue;
		}
		p->woken = false;
		if (!metrics_gateway_ready(p->gw, now))
			continue;
		bool due = now >= next_due;

		if (due)
			next_due = now + p->gw->interval_ms;
		/* The targets stay linked while the lock is let go: only this thread unlinks and
		 * frees them; the loop thread adds at the head and sets ended. */
		struct target *list = p->targets;

		pthread_mutex_unlock(&p->lock);
		if (pusher_round(p->gw, list, due))
			dropped_logged = false;
		pthread_mutex_lock(&p->lock);
		/* Newest first: past ENDED_MAX waiting, the oldest ended ones are given up. */
		unsigned int ended_seen = 0;

		for (struct target **pt = &p->targets; *pt;) {
			struct target *t = *pt;
			bool done = t->ended && t->pushed && (!t->clean || t->deleted);

			if (t->ended && !done && ++ended_seen > ENDED_MAX) {
				if (!dropped_logged)
					log_warn("metrics: more than %d ended daemons wait for %s: the groups of the oldest stay there",
						 ENDED_MAX, p->gw->url);
				dropped_logged = done = true;
			}
			if (done) {
				*pt = t->next;
				p->nended--;
				target_free(t);
			} else {
				pt = &t->next;
			}
		}
	}
	while (p->targets) {
		struct target *t = p->targets;

		p->targets = t->next;
		target_free(t);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct metrics_pusher *metrics_pusher_start(struct metrics_gateway *gw)
{
	struct metrics_pusher *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	if (!p)
		return NULL;
	p->gw = gw;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* The supervisor takes its signals through a signalfd: this thread must not. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&p->thread, NULL, pusher_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p);
		errno = r;
		return NULL;
	}
	return p;
}

void metrics_pusher_add(struct metrics_pusher *p, const char *sandbox, int fd, pid_t pid,
			const char *group)
{
	struct target *t = calloc(1, sizeof(*t));

	if (!t || !(t->sandbox = strdup(sandbox)) || !(t->group = strdup(group)) ||
	    (t->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		log_warn("metrics: cannot push %s's metrics: %s", sandbox,
			 t ? strerror(errno) : "out of memory");
		if (t) {
			t->fd = -1;
			target_free(t);
		}
		return;
	}
	t->pid = pid;
	t->fresh = true;
	pthread_mutex_lock(&p->lock);
	t->next = p->targets;
	p->targets = t;
	p->woken = true; /* its first push now */
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void metrics_pusher_end(struct metrics_pusher *p, const char *sandbox, bool clean)
{
	pthread_mutex_lock(&p->lock);
	for (struct target *t = p->targets; t; t = t->next) {
		if (t->ended || strcmp(t->sandbox, sandbox))
			continue;
		t->clean = clean;
		__atomic_store_n(&t->ended, true, __ATOMIC_RELEASE);
		p->nended++;
		p->woken = true;
		pthread_cond_signal(&p->cond);
		break;
	}
	pthread_mutex_unlock(&p->lock);
}

void metrics_pusher_stop(struct metrics_pusher *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* A push under way ends within its timeout (10 s at most): then the process may exit
	 * with no thread inside libcurl. */
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

/* --- a standalone daemon's pusher process ----------------------------------------------- */

int metrics_push_helper(struct metrics_gateway *gw, int region_fd, int status_fd,
			const char *sandbox)
{
	struct target t = { .sandbox = (char *)sandbox, .fd = region_fd };
	struct mbuf group = { 0 };
	uint64_t next_due = now_ms();
	char line[64];
	size_t len = 0;
	bool eof = false;

	prctl(PR_SET_NAME, "vfsd-metrics");
	/* A stop of the daemon's process group must leave the last push and the DELETE to do:
	 * the end is the status pipe's. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* It talks to the network: none of the daemon's privileges come along. */
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_apply(CAPNG_SELECT_BOTH) < 0 && geteuid() == 0)
		log_warn("metrics: the pusher cannot drop its capabilities");
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	metrics_group_path(&group, gw, sandbox, NULL, NULL, 0);
	if (group.oom)
		return 1;
	t.group = group.p;
	while (!eof) {
		uint64_t now = now_ms(), wake = next_due;

		if (gw->failures && gw->retry_at_ms > wake)
			wake = gw->retry_at_ms;
		struct pollfd pfd = { .fd = status_fd, .events = POLLIN };
		int r = poll(&pfd, 1, now >= wake ? 0 : (int)MIN(wake - now, 60000u));

		if (r < 0 && errno != EINTR)
			break;
		if (r > 0) {
			ssize_t n = read(status_fd, line + len, sizeof(line) - 1 - len);

			if (n <= 0) {
				eof = n == 0 || errno != EINTR;
			} else {
				len += (size_t)n;
				line[len] = '\0';
				for (char *nl; (nl = memchr(line, '\n', len));) {
					*nl = '\0';
					if (line[0] == 'P' && !t.pid)
						t.pid = (pid_t)strtol(line + 1, NULL, 10);
					else if (line[0] == 'X')
						t.clean = strtol(line + 1, NULL, 10) == 0;
					else if (line[0] == 'T')
						t.clean = true;
					len -= (size_t)(nl + 1 - line);
					memmove(line, nl + 1, len);
				}
				if (len == sizeof(line) - 1)
					len = 0; /* not a line of ours */
			}
			/* no shortcut back to poll: a flood of lines must not stop the pushes */
		}
		now = now_ms();
		if (!eof && now >= next_due && metrics_gateway_ready(gw, now) && !target_waits(&t, now)) {
			next_due = now + gw->interval_ms;
			push_target(gw, &t);
		}
	}
	/* The daemon ended: its last numbers, and the group goes if it ended cleanly. One last
	 * try each, whatever the backoff (an outage already logged stays logged once). */
	t.ended = true;
	gw->retry_at_ms = 0;
	t.refusals = 0;
	if (push_target(gw, &t) != -EIO && t.clean)
		send_target(gw, &t, NULL, 0);
	mbuf_free(&group);
	return 0;
}
