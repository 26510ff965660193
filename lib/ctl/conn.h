/*
 * A client's connection to the control socket: one request line out (with an fd, if any),
 * reply and event lines in. Used by `vfsd ctl` and by vfsd-hook, which gives every step a
 * deadline so that a supervisor that hangs cannot hang a container engine.
 */
#ifndef VFSD_CTL_CONN_H
#define VFSD_CTL_CONN_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctl_conn {
	int fd;
	uint64_t deadline_ms; /* CLOCK_MONOTONIC milliseconds; 0: wait for ever */
	char *buf;	      /* grows to CTL_OUT_MAX: a list of many daemons is long */
	size_t len, cap;
	char *raw; /* the last line ctl_conn_recv() returned, as it came */
};

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t ctl_clock_ms(void);

/* Connects to the control socket at path before deadline_ms (0: no deadline). Returns 0, or
 * -errno (-ETIMEDOUT when the deadline passed). */
int ctl_conn_open(struct ctl_conn *c, const char *path, uint64_t deadline_ms);

/* Sends one request line with pass_fd (if >= 0) attached to its first bytes. 0 or -errno. */
int ctl_conn_send(struct ctl_conn *c, struct json_object *req, int pass_fd);
/* The same with nfds fds (in that order). */
int ctl_conn_send_fds(struct ctl_conn *c, struct json_object *req, const int *fds,
		      unsigned int nfds);

/* The next reply or event line, parsed (the caller puts it), its text in c->raw. NULL at the
 * end of the stream, on a line longer than a supervisor sends or that is not JSON, or at the
 * deadline; *err (if not NULL) says which as -errno: 0 (end of stream), -ETIMEDOUT, -EPROTO,
 * -ENOMEM or a read error. */
struct json_object *ctl_conn_recv(struct ctl_conn *c, int *err);

void ctl_conn_close(struct ctl_conn *c);

/* The reply's "ok". */
bool ctl_reply_ok(struct json_object *reply);

#endif
