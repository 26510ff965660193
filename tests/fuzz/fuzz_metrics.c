/*
 * libFuzzer target: a metrics region read by metrics_read() and turned into text by
 * metrics_format() (lib/metrics/). The region is written by a daemon that may be hijacked and
 * read by the supervisor or the pusher, so every byte of it is hostile.
 *
 * Input: a control byte, then the file's bytes.
 *  - bit 0: a file shorter than a region is extended with zeros to a region's size (otherwise
 *    it stays short, and must be refused);
 *  - bit 1: the valid header is written over the first bytes (when the file holds a header),
 *    so that the summing and the formatting are reached;
 *  - bits 2-3: the process numbers given to the formatter: none, valid with fds, valid
 *    without fds, fds only. Their values come from the input's last 32 bytes.
 *
 * The result must be -EPROTO exactly when the file is shorter than a region or its header is
 * not this build's, and the sums must be the slots' (checked against a sum made here from the
 * same bytes). The text, for one daemon and for two (one with labels, one without), must be
 * the format 0.0.4 that a Pushgateway accepts: lines ending in '\n'; every family's HELP and
 * TYPE once, TYPE right after HELP; each sample within its family (a histogram's as _bucket,
 * _sum and _count) as NAME[{LABELS}] VALUE with a number for a value; no series twice (the
 * gateway refuses the whole push); a histogram's series of METRICS_BUCKETS buckets ending
 * with le="+Inf", then _sum and _count, _count equal to +Inf, and cumulative unless the
 * hostile counts overflowed; a requests series for each counted opcode that has a name, at
 * most one per counted opcode, the same for both daemons.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuse/request.h"
#include "fuzz_common.h"
#include "metrics/metrics.h"

#define REGION sizeof(struct metrics_region)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

static const struct metrics_header good = { .magic = METRICS_MAGIC,
					    .version = METRICS_VERSION,
					    .size = sizeof(struct metrics_region),
					    .slots = METRICS_SLOTS,
					    .opcodes = METRICS_OPCODES,
					    .errnos = METRICS_ERRNOS,
					    .buckets = METRICS_BUCKETS,
					    .queues = METRICS_QUEUES };

static const char *const family_names[] = {
	"vfsd_fuse_requests_total",
	"vfsd_fuse_errors_total",
	"vfsd_fuse_request_duration_seconds",
	"vfsd_read_bytes_total",
	"vfsd_write_bytes_total",
	"vfsd_inodes",
	"vfsd_open_handles",
	"vfsd_open_fds",
	"vfsd_guest_fd_budget_remaining",
	"vfsd_guest_fd_budget_exhausted_total",
	"vfsd_inode_fd_evictions_total",
	"vfsd_inode_fd_reopens_total",
	"vfsd_vhost_queue_notifications_total",
	"vfsd_process_resident_memory_bytes",
	"vfsd_process_cpu_seconds_total",
	"vfsd_process_threads",
	"vfsd_process_open_fds",
};
#define NFAMILIES (sizeof(family_names) / sizeof(family_names[0]))
#define HISTOGRAM "vfsd_fuse_request_duration_seconds"

/* The sums as the reader must make them, from the region's bytes. */
static void expected_sum(const struct metrics_region *r, struct metrics_sum *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int s = 0; s < METRICS_SLOTS; s++) {
		const struct metrics_slot *sl = &r->slot[s];

		for (unsigned int o = 0; o < METRICS_OPCODES; o++) {
			out->requests[o] += sl->requests[o];
			out->duration_ns[o] += sl->duration_ns[o];
			for (unsigned int b = 0; b < METRICS_BUCKETS; b++)
				out->buckets[o][b] += sl->buckets[o][b];
			for (unsigned int e = 0; e < METRICS_ERRNOS; e++)
				out->errors[o][e] += sl->errors[o][e];
		}
		out->read_bytes += sl->read_bytes;
		out->write_bytes += sl->write_bytes;
	}
	memcpy(out->gauges, r->gauges, sizeof(out->gauges));
	memcpy(out->queue_kicks, r->queue_kicks, sizeof(out->queue_kicks));
}

/* Does some counted opcode's histogram overflow 64 bits (then it need not be cumulative)?
 * Also the sum of those without a name and "other", which the text may show as one. */
static bool buckets_wrap(const struct metrics_sum *s)
{
	uint64_t other = 0;

	for (unsigned int o = 0; o < METRICS_OPCODES; o++) {
		uint64_t cum = 0;

		for (unsigned int b = 0; b < METRICS_BUCKETS && s->requests[o]; b++)
			if (__builtin_add_overflow(cum, s->buckets[o][b], &cum))
				return true;
	}
	for (unsigned int b = 0; b < METRICS_BUCKETS; b++)
		for (unsigned int o = 0; o < METRICS_OPCODES; o++)
			if ((o == METRICS_OTHER_OPCODE || !fuse_op_lookup(o)) &&
			    __builtin_add_overflow(other, s->buckets[o][b], &other))
				return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The histogram series being read: its labels (without le), buckets so far, last value. */
struct hist {
	char labels[256];
	unsigned int buckets;
	uint64_t last;
	bool want_sum, want_count;
};

static uint64_t sample_count(const char *v, const char *line)
{
	char *end;
	uint64_t n;

	errno = 0;
	n = strtoull(v, &end, 10);
	FUZZ_CHECK(v[0] >= '0' && v[0] <= '9' && !*end && !errno, "not a count: %s", line);
	return n;
}

/* A HELP line and the TYPE line after it (at *p, which moves past it): the family, counted
 * in seen; its type in *type. */
static const char *family_lines(const char *help, const char **p, size_t *seen, const char **type)
{
	const char *family, *t = *p, *nl = strchr(t, '\n');
	size_t i, f;

	for (i = 0; i < NFAMILIES; i++) {
		f = strlen(family_names[i]);
		if (!strncmp(help + 7, family_names[i], f) && help[7 + f] == ' ')
			break;
	}
	FUZZ_CHECK(i < NFAMILIES, "unknown family: %s", help);
	FUZZ_CHECK(++seen[i] == 1, "family twice: %s", help);
	family = family_names[i];
	FUZZ_CHECK(nl && !strncmp(t, "# TYPE ", 7) && !strncmp(t + 7, family, f) && t[7 + f] == ' ',
		   "no TYPE after HELP of %s", family);
	*type = t + 8 + f;
	FUZZ_CHECK(!strncmp(*type, "counter\n", 8) || !strncmp(*type, "gauge\n", 6) ||
			   !strncmp(*type, "histogram\n", 10),
		   "type of %s", family);
	*p = nl + 1;
	return family;
}

/* A bucket: of the series begun (or beginning one), le="+Inf" exactly as the last. */
static void bucket_sample(struct hist *h, const char *labels, const char *line,
			  const char *value, bool cumulative)
{
	const char *le = strstr(labels, ",le=\"");
	size_t ll;
	uint64_t v;
	bool inf;

	FUZZ_CHECK(le, "a bucket without le: %s", line);
	ll = (size_t)(le - labels);
	if (h->buckets == 0) {
		FUZZ_CHECK(!h->want_sum && !h->want_count, "histogram %s cut short", h->labels);
		FUZZ_CHECK(ll < sizeof(h->labels), "labels too long: %s", line);
		memcpy(h->labels, labels, ll);
		h->labels[ll] = '\0';
		h->last = 0;
	} else {
		FUZZ_CHECK(ll == strlen(h->labels) && !strncmp(h->labels, labels, ll),
			   "bucket of another series inside %s: %s", h->labels, line);
	}
	v = sample_count(value, line);
	FUZZ_CHECK(!cumulative || v >= h->last, "buckets not cumulative: %s", line);
	h->last = v;
	h->buckets++;
	inf = !strcmp(le, ",le=\"+Inf\"}");
	FUZZ_CHECK(inf == (h->buckets == METRICS_BUCKETS), "bucket %u is %s", h->buckets, line);
	if (inf) {
		h->buckets = 0;
		h->want_sum = h->want_count = true;
	}
}

/* A sample of the histogram family: NAME_bucket, then NAME_sum and NAME_count. */
static void histogram_sample(struct hist *h, const char *family, const char *line,
			     const char *value, bool cumulative)
{
	const char *suffix = line + strlen(family), *labels;
	bool sum = !strncmp(suffix, "_sum{", 5);

	FUZZ_CHECK(!strncmp(line, family, strlen(family)), "%s in %s", line, family);
	if (!strncmp(suffix, "_bucket{", 8)) {
		bucket_sample(h, suffix + 8, line, value, cumulative);
		return;
	}
	FUZZ_CHECK(sum || !strncmp(suffix, "_count{", 7), "%s in %s", line, family);
	FUZZ_CHECK(!strstr(line, ",le=\""), "le outside a bucket: %s", line);
	FUZZ_CHECK(h->buckets == 0 && (sum ? h->want_sum : !h->want_sum && h->want_count),
		   "%s out of order", line);
	labels = suffix + (sum ? 5 : 7);
	FUZZ_CHECK(!strncmp(labels, h->labels, strlen(h->labels)) &&
			   !strcmp(labels + strlen(h->labels), "}"),
		   "%s is not of series %s", line, h->labels);
	if (sum) {
		h->want_sum = false;
	} else {
		FUZZ_CHECK(sample_count(value, line) == h->last,
			   "_count %s differs from +Inf %" PRIu64, value, h->last);
		h->want_count = false;
	}
}

/* Keeps line (NAME{LABELS}, the value cut off) for the check that no series is there twice. */
static void keep_series(char ***series, size_t *n, size_t *cap, char *line)
{
	if (*n == *cap) {
		char **more = realloc(*series, 2 * *cap * sizeof(**series));

		FUZZ_CHECK(more, "out of memory");
		*series = more;
		*cap *= 2;
	}
	(*series)[(*n)++] = line;
}

/* Checks the text (see the top). requests_series gets the number of requests series of the
 * daemon whose labels are labels0, then of the one without labels. */
static void check_text(const char *text, size_t len, bool cumulative, size_t *requests_series,
		       const char *labels0)
{
	size_t seen[NFAMILIES] = { 0 }, nseries = 0, cap = 1024, l0 = strlen(labels0);
	char **series = malloc(cap * sizeof(*series));
	const char *family = NULL, *type = NULL;
	struct hist h = { .buckets = 0 };

	FUZZ_CHECK(series, "out of memory");
	FUZZ_CHECK(strlen(text) == len, "text of %zu bytes has a NUL at %zu", len, strlen(text));
	FUZZ_CHECK(len && text[len - 1] == '\n', "text does not end with a newline");
	requests_series[0] = requests_series[1] = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		char *line = strndup(p, (size_t)(nl - p)), *value, *end;
		size_t namelen;

		FUZZ_CHECK(line, "out of memory");
		p = nl + 1;
		if (!strncmp(line, "# HELP ", 7)) {
			FUZZ_CHECK(!h.want_sum && !h.want_count, "histogram %s cut short",
				   h.labels);
			family = family_lines(line, &p, seen, &type);
			free(line);
			continue;
		}
		FUZZ_CHECK(line[0] != '#', "a comment that is not HELP: %s", line);
		FUZZ_CHECK(family, "a sample before any family: %s", line);
		value = strrchr(line, ' ');
		FUZZ_CHECK(value && value > line, "no value: %s", line);
		*value++ = '\0';
		FUZZ_CHECK(!strchr(line, ' '), "a space in a sample's name or labels: %s", line);
		namelen = strcspn(line, "{");
		FUZZ_CHECK(!line[namelen] || (line[strlen(line) - 1] == '}' &&
					      strlen(line) > namelen + 2),
			   "labels not closed, or empty: %s", line);
		(void)strtod(value, &end);
		FUZZ_CHECK(*value && !*end, "value is not a number: %s %s", line, value);
		if (!strncmp(type, "histogram", 9)) {
			histogram_sample(&h, family, line, value, cumulative);
		} else {
			FUZZ_CHECK(namelen == strlen(family) && !strncmp(line, family, namelen),
				   "%s in %s", line, family);
			if (!strcmp(family, "vfsd_fuse_requests_total")) {
				bool first = l0 && !strncmp(line + namelen + 1, labels0, l0);

				requests_series[first ? 0 : 1]++;
			}
		}
		keep_series(&series, &nseries, &cap, line);
	}
	FUZZ_CHECK(!h.buckets && !h.want_sum && !h.want_count, "histogram %s cut short", h.labels);
	for (size_t i = 0; i < NFAMILIES; i++)
		FUZZ_CHECK(seen[i] == 1, "family %s %zu times", family_names[i], seen[i]);
	qsort(series, nseries, sizeof(*series), cmp_str);
	for (size_t i = 1; i < nseries; i++)
		FUZZ_CHECK(strcmp(series[i - 1], series[i]), "series twice: %s", series[i]);
	for (size_t i = 0; i < nseries; i++)
		free(series[i]);
	free(series);
}

/* Opcodes counted (at most one series each), and of them those with a name of their own
 * (exactly one series each; the others may share "other"). */
static void counted_opcodes(const struct metrics_sum *s, size_t *all, size_t *named)
{
	*all = *named = 0;
	for (unsigned int o = 0; o < METRICS_OPCODES; o++) {
		*all += s->requests[o] != 0;
		*named += s->requests[o] && o != METRICS_OTHER_OPCODE && fuse_op_lookup(o);
	}
}

static void format_and_check(const struct metrics_sum *sum, const struct metrics_proc *proc)
{
	static const char labels0[] = "sandbox=\"a\\\"b\"";
	struct metrics_entry e[2] = { { .sum = sum, .proc = proc, .labels = labels0 },
				      { .sum = sum, .proc = NULL, .labels = "" } };
	bool cumulative = !buckets_wrap(sum);
	size_t all, named, got[2];
	struct mbuf b = { 0 };

	counted_opcodes(sum, &all, &named);
	metrics_format(&b, e, 1);
	if (!b.oom) {
		check_text(b.p, b.len, cumulative, got, labels0);
		FUZZ_CHECK(got[0] >= named && got[0] <= all && got[1] == 0,
			   "%zu requests series for %zu opcodes (%zu named)", got[0], all, named);
	}
	if (fuzz_trace)
		fprintf(stderr, "fuzz: one daemon: %zu bytes of text, %zu opcodes\n", b.len, all);
	mbuf_free(&b);

	metrics_format(&b, e, 2);
	if (!b.oom) {
		size_t one = got[0];

		check_text(b.p, b.len, cumulative, got, labels0);
		FUZZ_CHECK(got[0] == one && got[1] == one, "%zu and %zu requests series, not %zu",
			   got[0], got[1], one);
	}
	mbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in tail;
	struct metrics_proc proc;
	struct metrics_region *img;
	struct metrics_sum *sum, *want;
	uint8_t ctl = size ? data[0] : 0;
	const uint8_t *bytes = size ? data + 1 : data;
	size_t len = size ? size - 1 : 0, file_len = len;
	bool ok;
	int fd, r, fds = fuzz_count_fds();

	fd = memfd_create("fuzz-metrics", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	if (len)
		FUZZ_CHECK(pwrite(fd, bytes, len, 0) == (ssize_t)len, "pwrite: %s",
			   strerror(errno));
	if ((ctl & 1) && len < REGION) {
		FUZZ_CHECK(ftruncate(fd, REGION) == 0, "ftruncate: %s", strerror(errno));
		file_len = REGION;
	}
	if ((ctl & 2) && file_len >= sizeof(good))
		FUZZ_CHECK(pwrite(fd, &good, sizeof(good), 0) == (ssize_t)sizeof(good), "pwrite");

	/* What the file now holds, as the reader must see it. */
	img = aligned_alloc(_Alignof(struct metrics_region), REGION); /* a page: the slots' */
	sum = malloc(sizeof(*sum));
	want = malloc(sizeof(*want));
	FUZZ_CHECK(img && sum && want, "out of memory");
	memset(img, 0, REGION);
	memcpy(img, bytes, len < REGION ? len : REGION);
	if ((ctl & 2) && file_len >= sizeof(good))
		img->h = good;
	ok = file_len >= REGION && !memcmp(&img->h, &good, sizeof(good));

	memset(sum, 0x5a, sizeof(*sum));
	r = metrics_read(fd, sum);
	if (fuzz_trace)
		fprintf(stderr, "fuzz: ctl %#x, file of %zu bytes: metrics_read %d\n", ctl,
			file_len, r);
	FUZZ_CHECK(r == (ok ? 0 : -EPROTO), "metrics_read of %zu bytes returned %d", file_len, r);
	if (r == 0) {
		expected_sum(img, want);
		FUZZ_CHECK(!memcmp(sum, want, sizeof(*want)), "the sums are not the slots'");

		tail = (struct fuzz_in){ .p = data + (size > 32 ? size - 32 : 0),
					 .left = size > 32 ? 32 : size };
		proc = (struct metrics_proc){ .valid = (ctl & 12) == 4 || (ctl & 12) == 8,
					      .fds_valid = (ctl & 12) == 4 || (ctl & 12) == 12 };
		proc.rss_bytes = fuzz_take(&tail, 8);
		proc.cpu_seconds = (double)fuzz_take(&tail, 8) / 100; /* as from clock ticks */
		proc.threads = fuzz_take(&tail, 8);
		proc.fds = fuzz_take(&tail, 8);
		format_and_check(sum, (ctl & 12) ? &proc : NULL);
	}
	free(want);
	free(sum);
	free(img);
	close(fd);
	FUZZ_CHECK(fuzz_count_fds() == fds, "an fd left open");
	return 0;
}
