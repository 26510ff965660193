/*
 * Pushing to a Prometheus Pushgateway (docs/metrics.md): PUT of a group's whole text, DELETE
 * of the group when its daemon stopped cleanly, and one outage state per gateway (exponential
 * backoff, the reason logged once per outage). Never called by a serving process.
 */
#ifndef VFSD_METRICS_PUSH_H
#define VFSD_METRICS_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics/metrics.h"

#define METRICS_BACKOFF_MAX_MS 60000
#define METRICS_LABELS_MAX 8

struct metrics_gateway {
	char *url;	  /* the base: scheme://host[:port][/prefix], no trailing slash */
	char *instance;	  /* the instance label: the node */
	void *curl;	  /* one easy handle: its connection is reused */
	uint32_t interval_ms;
	unsigned int failures; /* in a row; 0 while it works */
	uint64_t retry_at_ms;  /* while failing: not before */
	char reason[256];      /* of the outage, logged once */
};

/* Checks url (http or https, a host) and prepares the client. -EINVAL with a sentence. */
int metrics_gateway_init(struct metrics_gateway *gw, const char *url, const char *instance,
			 uint32_t interval_ms, char *err, size_t errlen);
void metrics_gateway_free(struct metrics_gateway *gw);
/* Not in backoff at now_ms (a monotonic clock). */
bool metrics_gateway_ready(const struct metrics_gateway *gw, uint64_t now_ms);
/* One push (PUT body under group) or, with body NULL, the group's DELETE. 0; -EBADMSG when
 * the gateway refused the group (4xx: the group's trouble, the gateway works); -EIO when it
 * failed (down, timed out, 5xx), recorded as the gateway's outage (logged if it starts one).
 * why says what the gateway said. */
int metrics_gateway_send(struct metrics_gateway *gw, const char *group, const char *body,
			 size_t len, char *why, size_t whylen);

/* A group's path: /job/vfsd/instance/I/sandbox/S[/NAME/VALUE...], each value that a path
 * segment cannot carry as NAME@base64/BASE64URL. names and values: n pairs. */
void metrics_group_path(struct mbuf *b, const struct metrics_gateway *gw, const char *sandbox,
			const char *const *names, const char *const *values, size_t n);

/* The labels of a daemon's samples for `vfsd ctl metrics`: sandbox and the pairs, escaped. */
void metrics_sample_labels(struct mbuf *b, const char *sandbox, const char *const *names,
			   const char *const *values, size_t n);

/* One daemon's text: its region read from fd, its process pid (0: none), labels for samples. */
int metrics_daemon_text(struct mbuf *b, int fd, pid_t pid, const char *labels);

/*
 * The pusher thread of the supervisor: targets come and go from the loop thread, pushes take
 * place on the pusher's thread only, so a slow gateway never holds the loop back.
 */
struct metrics_pusher;
struct metrics_pusher *metrics_pusher_start(struct metrics_gateway *gw);
/* Starts pushing a daemon's region (fd is dup'ed) under its group. */
void metrics_pusher_add(struct metrics_pusher *p, const char *sandbox, int fd, pid_t pid,
			const char *group);
/* Its daemon ended: a last push, then the group's DELETE if it ended cleanly. */
void metrics_pusher_end(struct metrics_pusher *p, const char *sandbox, bool clean);
/* Forgets every target without pushing or deleting (the supervisor exits; its children
 * live on and the next supervisor pushes them); waits for a push under way, then frees p. */
void metrics_pusher_stop(struct metrics_pusher *p);

/*
 * A standalone daemon's pusher: a process forked before the sandbox. It reads lines from
 * status_fd: "P<pid>" (the serving process), "X<status>" (exited), "T" (stopped by a signal,
 * a clean stop); EOF without either is a crash. Returns its exit status.
 */
int metrics_push_helper(struct metrics_gateway *gw, int region_fd, int status_fd,
			const char *sandbox);

#endif
