/*
 * The metrics registry (docs/metrics.md): counters that the data path bumps without a lock,
 * kept in one region of shared memory so that a process outside the serving one (the
 * supervisor, or a standalone daemon's pusher, forked before the sandbox) reads them. The
 * serving process never formats, sends or even reads them: a hijacked daemon gains no syscall.
 *
 * The region is written by the daemon and read by the pusher, so the reader treats it as
 * hostile: it is read with pread (a region truncated under it reads short, never SIGBUS), its
 * header is checked, and only numbers are taken from it; names and labels come from the
 * reader's own tables.
 */
#ifndef VFSD_METRICS_METRICS_H
#define VFSD_METRICS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define METRICS_MAGIC 0x31727465536d6676ull /* "vfmSetr1" */
#define METRICS_VERSION 1
#define METRICS_SLOTS 8	     /* per-thread counter blocks; more threads share them */
#define METRICS_OPCODES 64   /* FUSE opcodes 0..62 as themselves; 63 is any other */
#define METRICS_OTHER_OPCODE 63
#define METRICS_BUCKETS 23   /* 22 upper bounds and +Inf */
#define METRICS_QUEUES 16    /* vhost queues counted one by one; later ones share the last */

/* The errnos that get a series of their own; any other counts as the last ("other"). */
#define METRICS_ERRNOS 40

enum metrics_gauge {
	MG_INODES,	   /* inodes the guest holds a lookup of */
	MG_HANDLES,	   /* FUSE open handles (files and directories) */
	MG_GUEST_FDS,	   /* fds held for the guest (inode O_PATH fds and open files) */
	MG_GUEST_FD_LIMIT, /* the guest's fd budget; set once */
	MG_BUDGET_EXHAUSTED, /* times a request was refused because the budget was spent */
	MG_FD_EVICTIONS,     /* idle inodes' fds given back to the budget (the fd cache) */
	MG_FD_REOPENS,	     /* evicted inodes opened again by their name */
	MG_SERVER_PID,	   /* the namespace sandbox's serving child, as its parent's pid
			      namespace sees it (the parent is the process spawned); 0: itself */
	MG_COUNT,
};

struct metrics_header {
	uint64_t magic;
	uint32_t version;
	uint32_t size; /* sizeof(struct metrics_region) */
	uint32_t slots, opcodes, errnos, buckets, queues;
	uint32_t reserved;
};

struct metrics_slot {
	uint64_t requests[METRICS_OPCODES];
	uint64_t duration_ns[METRICS_OPCODES];
	uint64_t buckets[METRICS_OPCODES][METRICS_BUCKETS]; /* not cumulative */
	uint64_t errors[METRICS_OPCODES][METRICS_ERRNOS];
	uint64_t read_bytes, write_bytes;
} __attribute__((aligned(64)));

struct metrics_region {
	struct metrics_header h;
	int64_t gauges[MG_COUNT];
	uint64_t queue_kicks[METRICS_QUEUES];
	struct metrics_slot slot[METRICS_SLOTS] __attribute__((aligned(4096)));
};

/* --- the writer: the serving process ---------------------------------------------------- */

/* The region this process counts into, or NULL when metrics are off (each call below is then
 * one load and a branch). Set before any thread starts. */
extern struct metrics_region *vfsd_metrics;

/* Maps fd (a file or memfd of at least sizeof(struct metrics_region)) shared and, when fresh
 * is set, writes its header; the region becomes vfsd_metrics. -errno with a sentence. */
int metrics_attach(int fd, bool fresh, char *err, size_t errlen);
/* Sizes the new empty file fd as a region and writes its header (the supervisor, for a child
 * that attaches it with fresh unset). 0 or -errno. */
int metrics_region_init(int fd);
/* A new memfd of the region's size (for a standalone daemon), or -errno. */
int metrics_memfd(void);

struct metrics_slot *metrics_slot_of_thread(void);
unsigned int metrics_errno_index(int errnum);
unsigned int metrics_bucket_index(uint64_t ns);
/* The reader's side of those indexes: the errno of a series (0: "other"), a bucket's bound. */
int metrics_errno_value(unsigned int index);
uint64_t metrics_bucket_bound_ns(unsigned int index);

static inline void metrics_add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

/* One FUSE request done: its opcode, its result (0 or a negative errno), its time. */
static inline void metrics_request(uint32_t opcode, int err, uint64_t ns)
{
	struct metrics_slot *s;
	unsigned int op = opcode < METRICS_OTHER_OPCODE ? opcode : METRICS_OTHER_OPCODE;

	if (__builtin_expect(!vfsd_metrics, 1))
		return;
	s = metrics_slot_of_thread();
	metrics_add(&s->requests[op], 1);
	metrics_add(&s->duration_ns[op], ns);
	metrics_add(&s->buckets[op][metrics_bucket_index(ns)], 1);
	if (err < 0)
		metrics_add(&s->errors[op][metrics_errno_index(-err)], 1);
}

static inline void metrics_bytes(bool write, uint64_t n)
{
	struct metrics_slot *s;

	if (__builtin_expect(!vfsd_metrics, 1) || !n)
		return;
	s = metrics_slot_of_thread();
	metrics_add(write ? &s->write_bytes : &s->read_bytes, n);
}

static inline void metrics_gauge_add(enum metrics_gauge g, int64_t n)
{
	if (__builtin_expect(!vfsd_metrics, 1))
		return;
	__atomic_fetch_add(&vfsd_metrics->gauges[g], n, __ATOMIC_RELAXED);
}

static inline void metrics_gauge_set(enum metrics_gauge g, int64_t v)
{
	if (__builtin_expect(!vfsd_metrics, 1))
		return;
	__atomic_store_n(&vfsd_metrics->gauges[g], v, __ATOMIC_RELAXED);
}

/* n kicks of a queue (an eventfd read gives how many arrived since the last). */
static inline void metrics_queue_kicks(unsigned int queue, uint64_t n)
{
	if (__builtin_expect(!vfsd_metrics, 1))
		return;
	metrics_add(&vfsd_metrics->queue_kicks[queue < METRICS_QUEUES ? queue : METRICS_QUEUES - 1],
		    n);
}

/* Nanoseconds per TSC tick, times 2^32, when metrics_attach found an invariant TSC (x86-64:
 * constant_tsc and nonstop_tsc) and calibrated it; 0: stamps are CLOCK_MONOTONIC ns. A TSC
 * read costs a third of a clock_gettime, and a request takes two. */
extern uint64_t vfsd_metrics_tsc_mult;

static inline uint64_t metrics_raw_now(void)
{
	struct timespec ts;

#if defined(__x86_64__)
	if (vfsd_metrics_tsc_mult)
		return __builtin_ia32_rdtsc();
#endif
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A request's arrival, for metrics_elapsed_ns(); 0 (and nothing read) when metrics are off. */
static inline uint64_t metrics_stamp(void)
{
	if (__builtin_expect(!vfsd_metrics, 1))
		return 0;
	return metrics_raw_now();
}

/* Nanoseconds since stamp. */
static inline uint64_t metrics_elapsed_ns(uint64_t stamp)
{
	uint64_t d = metrics_raw_now() - stamp;

	if ((int64_t)d < 0)
		return 0; /* a TSC that stepped back (another CPU's, a migrated VM) */
	if (vfsd_metrics_tsc_mult)
		return (uint64_t)(((unsigned __int128)d * vfsd_metrics_tsc_mult) >> 32);
	return d;
}

/* --- the reader: the supervisor, the pusher, `vfsd ctl metrics` ------------------------- */

/* A region's slots summed: what one daemon has counted so far. */
struct metrics_sum {
	uint64_t requests[METRICS_OPCODES];
	uint64_t duration_ns[METRICS_OPCODES];
	uint64_t buckets[METRICS_OPCODES][METRICS_BUCKETS];
	uint64_t errors[METRICS_OPCODES][METRICS_ERRNOS];
	uint64_t read_bytes, write_bytes;
	int64_t gauges[MG_COUNT];
	uint64_t queue_kicks[METRICS_QUEUES];
};

/* Reads the region in fd and sums it into *out. -EPROTO for a region that is not one of this
 * version (wrong magic, version or size), -errno if it cannot be read. */
int metrics_read(int fd, struct metrics_sum *out);

/* The process gauges, from /proc/PID/stat (valid) and /proc/PID/fd (fds_valid): false when
 * it could not be read. */
struct metrics_proc {
	bool valid, fds_valid;
	uint64_t rss_bytes;
	double cpu_seconds;
	uint64_t threads;
	uint64_t fds;
};
void metrics_proc_read(pid_t pid, struct metrics_proc *out);
/* The process that serves for the daemon spawned as pid: the serving child its region names
 * (MG_SERVER_PID) when that really is pid's child, else pid itself. */
pid_t metrics_serving_pid(pid_t pid, const struct metrics_sum *sum);

/* A growing text buffer; oom is set (and the text cut) when memory ran out or the text
 * would pass limit (when not 0): a hostile region's numbers could otherwise make it huge. */
struct mbuf {
	char *p;
	size_t len, cap;
	size_t limit;
	bool oom;
	bool full; /* oom because of the limit */
};
void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mbuf_free(struct mbuf *b);

/* Appends value to b as the exposition format's label value wants it: \\, \" and \n
 * escaped (the quotes are the caller's). */
void metrics_escape_label(struct mbuf *b, const char *value);

/* One daemon's numbers and the labels every sample of it carries (`name="value",...`,
 * already escaped; "" for none). */
struct metrics_entry {
	const struct metrics_sum *sum;
	const struct metrics_proc *proc;
	const char *labels;
};

/* Appends the text exposition format 0.0.4 of n daemons: every family once with its HELP and
 * TYPE lines, then each daemon's samples; no timestamps. */
void metrics_format(struct mbuf *b, const struct metrics_entry *e, size_t n);

#endif
