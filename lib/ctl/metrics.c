/*
 * The supervisor's side of metrics (docs/metrics.md): a region file per child, passed to it
 * before exec; the pusher thread that sends every child's region to the Pushgateway; and the
 * "metrics" op, which formats the same text on the loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "ctl/supervisor.h"
#include "metrics/metrics.h"
#include "metrics/push.h"

/* Label names the group or the samples already use: a spawn's label of that name is not
 * pushed (the gateway would refuse the whole group). */
static bool label_reserved(const char *name)
{
	static const char *const reserved[] = { "job",	  "instance", "sandbox", "opcode",
						"errno",  "queue",    "le" };

	if (strncmp(name, "__", 2) == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
		if (strcmp(name, reserved[i]) == 0)
			return true;
	return false;
}

/* The labels of ch's spawn that metrics carry, at most METRICS_LABELS_MAX. */
static size_t child_labels(const struct ctl_child *ch, const char **names, const char **values)
{
	struct json_object *labels;
	size_t n = 0;

	if (!json_object_object_get_ex(ch->info, "labels", &labels) ||
	    !json_object_is_type(labels, json_type_object))
		return 0;
	json_object_object_foreach(labels, k, v)
	{
		if (n == METRICS_LABELS_MAX || label_reserved(k) || !json_object_is_type(v, json_type_string))
			continue;
		names[n] = k;
		values[n++] = json_object_get_string(v);
	}
	return n;
}

int ctl_metrics_setup(struct ctl_supervisor *s)
{
	const struct vfsd_metrics_config *m = &s->cfg->metrics;
	char err[512], host[256] = "localhost";

	if (!m->url)
		return 0;
	if (!m->instance)
		gethostname(host, sizeof(host) - 1);
	s->gateway = calloc(1, sizeof(*s->gateway));
	if (!s->gateway)
		return -ENOMEM;
	if (metrics_gateway_init(s->gateway, m->url, m->instance ? m->instance : host,
				 m->interval_ms, err, sizeof(err)) < 0) {
		log_error("%s", err);
		free(s->gateway);
		s->gateway = NULL;
		return -EINVAL;
	}
	s->pusher = metrics_pusher_start(s->gateway);
	if (!s->pusher) {
		log_error("cannot start the metrics pusher: %s", strerror(errno));
		return -EAGAIN;
	}
	log_info("pushing the daemons' metrics to %s every %u s", m->url, m->interval_ms / 1000);
	return 0;
}

void ctl_metrics_shutdown(struct ctl_supervisor *s)
{
	/* A push under way is waited for (its timeout bounds it): then nothing is left inside
	 * libcurl when the process exits. */
	if (s->pusher)
		metrics_pusher_stop(s->pusher);
	s->pusher = NULL;
	if (s->gateway)
		metrics_gateway_free(s->gateway);
	free(s->gateway);
	s->gateway = NULL;
}

int ctl_metrics_region_new(struct ctl_supervisor *s, const char *sandbox)
{
	char path[4096];
	int fd, r;

	if (ctl_child_dir(s, sandbox, "metrics", path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = metrics_region_init(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

void ctl_metrics_region_open(struct ctl_supervisor *s, struct ctl_child *ch)
{
	char path[4096];

	if (ch->metrics_fd < 0 && ctl_child_dir(s, ch->sandbox, "metrics", path, sizeof(path)) == 0)
		ch->metrics_fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

void ctl_metrics_begin(struct ctl_supervisor *s, struct ctl_child *ch)
{
	const char *names[METRICS_LABELS_MAX], *values[METRICS_LABELS_MAX];
	struct mbuf group = { 0 };
	size_t n;

	if (!s->pusher || ch->metrics_fd < 0 || ch->pushed)
		return;
	n = child_labels(ch, names, values);
	metrics_group_path(&group, s->gateway, ch->sandbox, names, values, n);
	if (!group.oom) {
		metrics_pusher_add(s->pusher, ch->sandbox, ch->metrics_fd, ch->pid, group.p);
		ch->pushed = true;
	}
	mbuf_free(&group);
}

void ctl_metrics_end(struct ctl_supervisor *s, struct ctl_child *ch, bool clean)
{
	if (s->pusher && ch->pushed)
		metrics_pusher_end(s->pusher, ch->sandbox, clean);
	ch->pushed = false;
}

/* Whether ch's numbers can be shown: serving, with a region; else why not into err. */
static int child_showable(const struct ctl_child *ch, char *err, size_t errlen)
{
	if (ch->state != CHILD_RUNNING && ch->state != CHILD_STOPPING) {
		snprintf(err, errlen, "sandbox '%s' has no daemon serving (%s)", ch->sandbox,
			 ctl_state_names[ch->state]);
		return -ESRCH;
	}
	if (ch->metrics_fd < 0) {
		snprintf(err, errlen, "sandbox '%s' has no metrics region (spawned by a supervisor without metrics)",
			 ch->sandbox);
		return -ENOENT;
	}
	return 0;
}

void ctl_metrics_reply(struct ctl_supervisor *s, struct ctl_client *c,
		       const struct ctl_request *req)
{
	struct ctl_child *one = req->sandbox ? ctl_child_find(s, req->sandbox) : NULL;
	struct metrics_sum *sums = NULL;
	struct metrics_proc *procs = NULL;
	struct metrics_entry *e = NULL;
	struct mbuf *labels = NULL, text = { .limit = CTL_OUT_MAX };
	struct json_object *o;
	char err[512];
	size_t max = 0, n = 0;
	int r;

	if (req->sandbox) {
		if (!one) {
			ctl_client_send(s, c, ctl_reply_error(req->id, ENOENT, "no sandbox '%s'",
							      req->sandbox));
			return;
		}
		if (!ctl_may_see(c, one)) {
			ctl_client_send(s, c, ctl_reply_error(req->id, EPERM,
							      "sandbox '%s' was spawned by another user",
							      req->sandbox));
			return;
		}
		if ((r = child_showable(one, err, sizeof(err))) < 0) {
			ctl_client_send(s, c, ctl_reply_error(req->id, -r, "%s", err));
			return;
		}
	}
	for (struct ctl_child *ch = s->children; ch; ch = ch->next)
		max++;
	if (max) {
		sums = calloc(max, sizeof(*sums));
		procs = calloc(max, sizeof(*procs));
		e = calloc(max, sizeof(*e));
		labels = calloc(max, sizeof(*labels));
		if (!sums || !procs || !e || !labels)
			goto oom;
	}
	for (struct ctl_child *ch = s->children; ch; ch = ch->next) {
		const char *names[METRICS_LABELS_MAX], *values[METRICS_LABELS_MAX];

		if ((one && ch != one) || !ctl_may_see(c, ch) || child_showable(ch, err, sizeof(err)) < 0)
			continue;
		if (metrics_read(ch->metrics_fd, &sums[n]) < 0)
			continue; /* not a region of ours: that daemon shows nothing */
		metrics_proc_read(metrics_serving_pid(ch->pid, &sums[n]), &procs[n]);
		metrics_sample_labels(&labels[n], ch->sandbox, names, values,
				      child_labels(ch, names, values));
		if (labels[n].oom)
			goto oom;
		e[n] = (struct metrics_entry){ .sum = &sums[n], .proc = &procs[n], .labels = labels[n].p };
		n++;
	}
	/* Formatting stops at the reply's limit: a hostile region's numbers could make the text
	 * of one daemon tens of MB. The limit is checked again on the line, escaped as JSON. */
	metrics_format(&text, e, n);
	if (text.oom && !text.full)
		goto oom;
	size_t line_len = 0;

	o = ctl_reply_new(true, req->id);
	json_object_object_add(o, "text", json_object_new_string_len(text.p ? text.p : "",
								   (int)text.len));
	if (!text.oom) {
		char *line = ctl_line(o, &line_len);

		free(line);
		if (!line)
			line_len = SIZE_MAX;
	}
	if (text.oom || line_len > CTL_OUT_MAX - 1024) {
		json_object_put(o);
		ctl_client_send(s, c, ctl_reply_error(req->id, E2BIG,
			"the metrics of %s do not fit one reply (%u bytes)%s",
			req->sandbox ? "this sandbox" : "these daemons", CTL_OUT_MAX,
			req->sandbox ? "" : ": ask for one sandbox at a time"));
		goto out;
	}
	ctl_client_send(s, c, o);
	goto out;
oom:
	ctl_client_send(s, c, ctl_reply_error(req->id, ENOMEM, "out of memory"));
out:
	for (size_t i = 0; labels && i < max; i++)
		mbuf_free(&labels[i]);
	free(labels);
	free(e);
	free(procs);
	free(sums);
	mbuf_free(&text);
}
