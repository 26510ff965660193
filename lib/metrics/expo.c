/* The Prometheus text exposition format (0.0.4) of the summed regions of one or more daemons. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/request.h"
#include "fuse/server.h"
#include "metrics/metrics.h"

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		if (b->limit && room > b->limit - b->len)
			room = b->limit - b->len + 1;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		if (b->limit && b->len + (size_t)n > b->limit) {
			b->oom = b->full = true; /* past the limit: the text is cut, and says so */
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;

		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void mbuf_free(struct mbuf *b)
{
	free(b->p);
	*b = (struct mbuf){ 0 };
}

void metrics_escape_label(struct mbuf *b, const char *value)
{
	for (const char *s = value; *s; s++) {
		if (*s == '\\')
			mbuf_printf(b, "\\\\");
		else if (*s == '"')
			mbuf_printf(b, "\\\"");
		else if (*s == '\n')
			mbuf_printf(b, "\\n");
		else
			mbuf_printf(b, "%c", *s);
	}
}

static const char *opcode_label(unsigned int op)
{
	return op == METRICS_OTHER_OPCODE ? "other" : fuse_opcode_name(op);
}

static const char *errno_label(unsigned int index)
{
	int e = metrics_errno_value(index);
	const char *name = e ? strerrorname_np(e) : NULL;

	return name ? name : "other";
}

/* name{LABELS,extra} — the daemon's labels and the sample's own, either possibly empty. */
static void sample_start(struct mbuf *b, const char *name, const struct metrics_entry *e,
			 const char *extra)
{
	bool l = e->labels[0], x = extra && extra[0];

	mbuf_printf(b, "%s%s%s%s%s%s", name, l || x ? "{" : "", e->labels, l && x ? "," : "",
		    x ? extra : "", l || x ? "}" : "");
}

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef void emit_fn(struct mbuf *b, const char *name, const struct metrics_entry *e);

static void each(struct mbuf *b, const char *name, const char *type, const char *help,
		 const struct metrics_entry *e, size_t n, emit_fn *emit)
{
	family(b, name, type, help);
	for (size_t i = 0; i < n; i++)
		emit(b, name, &e[i]);
}

static void emit_requests(struct mbuf *b, const char *name, const struct metrics_entry *e)
{
	char extra[64];

	for (unsigned int o = 0; o < METRICS_OPCODES; o++) {
		if (!e->sum->requests[o])
			continue;
		snprintf(extra, sizeof(extra), "opcode=\"%s\"", opcode_label(o));
		sample_start(b, name, e, extra);
		mbuf_printf(b, " %" PRIu64 "\n", e->sum->requests[o]);
	}
}

static void emit_errors(struct mbuf *b, const char *name, const struct metrics_entry *e)
{
	char extra[96];

	for (unsigned int o = 0; o < METRICS_OPCODES; o++) {
		for (unsigned int x = 0; x < METRICS_ERRNOS; x++) {
			if (!e->sum->errors[o][x])
				continue;
			snprintf(extra, sizeof(extra), "opcode=\"%s\",errno=\"%s\"", opcode_label(o),
				 errno_label(x));
			sample_start(b, name, e, extra);
			mbuf_printf(b, " %" PRIu64 "\n", e->sum->errors[o][x]);
		}
	}
}

static void emit_durations(struct mbuf *b, const char *name, const struct metrics_entry *e)
{
	char series[128], extra[96];

	for (unsigned int o = 0; o < METRICS_OPCODES; o++) {
		uint64_t cum = 0;

		if (!e->sum->requests[o])
			continue;
		snprintf(series, sizeof(series), "%s_bucket", name);
		for (unsigned int k = 0; k < METRICS_BUCKETS; k++) {
			uint64_t bound = metrics_bucket_bound_ns(k);

			cum += e->sum->buckets[o][k];
			if (bound == UINT64_MAX)
				snprintf(extra, sizeof(extra), "opcode=\"%s\",le=\"+Inf\"",
					 opcode_label(o));
			else
				snprintf(extra, sizeof(extra), "opcode=\"%s\",le=\"%g\"",
					 opcode_label(o), (double)bound / 1e9);
			sample_start(b, series, e, extra);
			mbuf_printf(b, " %" PRIu64 "\n", cum);
		}
		snprintf(extra, sizeof(extra), "opcode=\"%s\"", opcode_label(o));
		snprintf(series, sizeof(series), "%s_sum", name);
		sample_start(b, series, e, extra);
		mbuf_printf(b, " %.9f\n", (double)e->sum->duration_ns[o] / 1e9);
		snprintf(series, sizeof(series), "%s_count", name);
		sample_start(b, series, e, extra);
		mbuf_printf(b, " %" PRIu64 "\n", cum); /* the +Inf bucket, as the format requires */
	}
}

static void emit_kicks(struct mbuf *b, const char *name, const struct metrics_entry *e)
{
	char extra[32];

	for (unsigned int q = 0; q < METRICS_QUEUES; q++) {
		if (!e->sum->queue_kicks[q])
			continue;
		snprintf(extra, sizeof(extra), "queue=\"%u\"", q);
		sample_start(b, name, e, extra);
		mbuf_printf(b, " %" PRIu64 "\n", e->sum->queue_kicks[q]);
	}
}

static void value(struct mbuf *b, const char *name, const struct metrics_entry *e, double v)
{
	sample_start(b, name, e, NULL);
	mbuf_printf(b, " %.17g\n", v);
}

static void integer(struct mbuf *b, const char *name, const struct metrics_entry *e, int64_t v)
{
	sample_start(b, name, e, NULL);
	mbuf_printf(b, " %" PRId64 "\n", v);
}

static void counter(struct mbuf *b, const char *name, const struct metrics_entry *e, uint64_t v)
{
	sample_start(b, name, e, NULL);
	mbuf_printf(b, " %" PRIu64 "\n", v);
}

#define SIMPLE(fn, print, expr)                                                            \
	static void fn(struct mbuf *b, const char *name, const struct metrics_entry *e)    \
	{                                                                                  \
		print(b, name, e, expr);                                                   \
	}
SIMPLE(emit_read_bytes, counter, e->sum->read_bytes)
SIMPLE(emit_write_bytes, counter, e->sum->write_bytes)
SIMPLE(emit_inodes, integer, e->sum->gauges[MG_INODES])
SIMPLE(emit_handles, integer, e->sum->gauges[MG_HANDLES])
SIMPLE(emit_fds, integer, e->sum->gauges[MG_GUEST_FDS])
SIMPLE(emit_exhausted, counter, (uint64_t)e->sum->gauges[MG_BUDGET_EXHAUSTED])
SIMPLE(emit_evictions, counter, (uint64_t)e->sum->gauges[MG_FD_EVICTIONS])
SIMPLE(emit_reopens, counter, (uint64_t)e->sum->gauges[MG_FD_REOPENS])

/* Only a daemon with a budget (--rlimit-nofile 0 leaves it unlimited) has a remainder; one
 * that does not fit (the region's numbers are the daemon's) has none either. */
static void emit_budget(struct mbuf *b, const char *name, const struct metrics_entry *e)
{
	int64_t left;

	if (e->sum->gauges[MG_GUEST_FD_LIMIT] > 0 &&
	    !__builtin_sub_overflow(e->sum->gauges[MG_GUEST_FD_LIMIT], e->sum->gauges[MG_GUEST_FDS],
				    &left))
		integer(b, name, e, left);
}

#define PROC(fn, ok, out)                                                                  \
	static void fn(struct mbuf *b, const char *name, const struct metrics_entry *e)    \
	{                                                                                  \
		if (e->proc && e->proc->ok)                                                \
			out;                                                               \
	}
PROC(emit_rss, valid, integer(b, name, e, (int64_t)e->proc->rss_bytes))
PROC(emit_cpu, valid, value(b, name, e, e->proc->cpu_seconds))
PROC(emit_threads, valid, integer(b, name, e, (int64_t)e->proc->threads))
PROC(emit_proc_fds, fds_valid, integer(b, name, e, (int64_t)e->proc->fds))

static const struct {
	const char *name, *type, *help;
	emit_fn *emit;
} families[] = {
	{ "vfsd_fuse_requests_total", "counter", "FUSE requests served, by opcode.",
	  emit_requests },
	{ "vfsd_fuse_errors_total", "counter", "FUSE requests answered with an error, by opcode and errno.",
	  emit_errors },
	{ "vfsd_fuse_request_duration_seconds", "histogram",
	  "Time from a FUSE request's arrival to its reply, by opcode.", emit_durations },
	{ "vfsd_read_bytes_total", "counter", "Bytes READ requests returned to the guest.",
	  emit_read_bytes },
	{ "vfsd_write_bytes_total", "counter", "Bytes WRITE requests wrote for the guest.",
	  emit_write_bytes },
	{ "vfsd_inodes", "gauge", "Inodes the guest holds a reference to.", emit_inodes },
	{ "vfsd_open_handles", "gauge", "Files and directories the guest has open.",
	  emit_handles },
	{ "vfsd_open_fds", "gauge", "File descriptors held for the guest (inodes and open files).",
	  emit_fds },
	{ "vfsd_guest_fd_budget_remaining", "gauge",
	  "File descriptors the guest may still make the daemon hold.", emit_budget },
	{ "vfsd_guest_fd_budget_exhausted_total", "counter",
	  "Requests refused with ENFILE because the guest's fd budget was spent.", emit_exhausted },
	{ "vfsd_inode_fd_evictions_total", "counter",
	  "Idle inodes that gave their file descriptor back when the guest's fd budget was spent.",
	  emit_evictions },
	{ "vfsd_inode_fd_reopens_total", "counter",
	  "Evicted inodes opened again by the name under which the guest found them.",
	  emit_reopens },
	{ "vfsd_vhost_queue_notifications_total", "counter",
	  "Kicks (available-buffer notifications) the guest sent, by virtqueue.", emit_kicks },
	{ "vfsd_process_resident_memory_bytes", "gauge", "Resident memory of the daemon process.",
	  emit_rss },
	{ "vfsd_process_cpu_seconds_total", "counter",
	  "User and system CPU time of the daemon process.", emit_cpu },
	{ "vfsd_process_threads", "gauge", "Threads of the daemon process.", emit_threads },
	{ "vfsd_process_open_fds", "gauge", "Open file descriptors of the daemon process.",
	  emit_proc_fds },
};

/*
 * Every opcode this build has no name for counts as "other": each would print as "UNKNOWN",
 * a series twice, and the gateway would refuse the whole push. The region is the daemon's to
 * write, so the reader folds them whatever the daemon counted.
 */
static void fold_unnamed(struct metrics_sum *s)
{
	const unsigned int to = METRICS_OTHER_OPCODE;

	for (unsigned int o = 0; o < METRICS_OPCODES; o++) {
		if (o == to || fuse_op_lookup(o))
			continue;
		s->requests[to] += s->requests[o];
		s->duration_ns[to] += s->duration_ns[o];
		for (unsigned int k = 0; k < METRICS_BUCKETS; k++)
			s->buckets[to][k] += s->buckets[o][k];
		for (unsigned int x = 0; x < METRICS_ERRNOS; x++)
			s->errors[to][x] += s->errors[o][x];
		s->requests[o] = s->duration_ns[o] = 0;
		memset(s->buckets[o], 0, sizeof(s->buckets[o]));
		memset(s->errors[o], 0, sizeof(s->errors[o]));
	}
}

void metrics_format(struct mbuf *b, const struct metrics_entry *e, size_t n)
{
	struct metrics_sum *sums = n ? malloc(n * sizeof(*sums)) : NULL;
	struct metrics_entry *folded = n ? malloc(n * sizeof(*folded)) : NULL;

	if (n && (!sums || !folded)) {
		b->oom = true;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sums[i] = *e[i].sum;
		fold_unnamed(&sums[i]);
		folded[i] = e[i];
		folded[i].sum = &sums[i];
	}
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		each(b, families[i].name, families[i].type, families[i].help, folded, n,
		     families[i].emit);
out:
	free(folded);
	free(sums);
}
