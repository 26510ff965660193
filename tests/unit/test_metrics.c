/* The metrics registry: indexes, the shared region written and read back, the exposition
 * text, and the Pushgateway's URL and group paths (lib/metrics/). */
#include "test_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "metrics/push.h"

/* --- indexes ---------------------------------------------------------------------------- */

static void test_bucket_index_at_bounds(void **state)
{
	(void)state;
	assert_int_equal(metrics_bucket_index(0), 0);
	assert_int_equal(metrics_bucket_index(1000), 0); /* a bound is in its own bucket (le) */
	assert_int_equal(metrics_bucket_index(1001), 1);
	assert_int_equal(metrics_bucket_index(2500), 1);
	assert_int_equal(metrics_bucket_index(2501), 2);
	assert_int_equal(metrics_bucket_index(10000000000ull), METRICS_BUCKETS - 2);
	assert_int_equal(metrics_bucket_index(10000000001ull), METRICS_BUCKETS - 1);
	assert_int_equal(metrics_bucket_index(UINT64_MAX), METRICS_BUCKETS - 1);
}

static void test_bucket_bounds(void **state)
{
	(void)state;
	assert_int_equal(metrics_bucket_bound_ns(0), 1000);
	assert_int_equal(metrics_bucket_bound_ns(1), 2500);
	assert_int_equal(metrics_bucket_bound_ns(2), 5000);
	assert_int_equal(metrics_bucket_bound_ns(METRICS_BUCKETS - 2), 10000000000ull);
	assert_int_equal(metrics_bucket_bound_ns(METRICS_BUCKETS - 1), UINT64_MAX);
	assert_int_equal(metrics_bucket_bound_ns(1000), UINT64_MAX);
	/* Increasing, and each bound lands in its own bucket. */
	for (unsigned int i = 0; i + 1 < METRICS_BUCKETS; i++) {
		assert_true(metrics_bucket_bound_ns(i) < metrics_bucket_bound_ns(i + 1));
		assert_int_equal(metrics_bucket_index(metrics_bucket_bound_ns(i)), i);
	}
}

static void test_errno_index(void **state)
{
	(void)state;
	assert_int_equal(metrics_errno_index(ENOENT), 1);
	assert_int_equal(metrics_errno_value(1), ENOENT);
	assert_int_equal(metrics_errno_index(EACCES), 9);
	assert_int_equal(metrics_errno_value(9), EACCES);
	assert_int_equal(metrics_errno_index(EHOSTDOWN), METRICS_ERRNOS - 1);
	assert_int_equal(metrics_errno_index(0), METRICS_ERRNOS - 1);
	assert_int_equal(metrics_errno_value(METRICS_ERRNOS - 1), 0);
	assert_int_equal(metrics_errno_value(1000), 0);
	/* No errno twice in the table: each tracked one comes back to its own index. */
	for (unsigned int i = 0; i + 1 < METRICS_ERRNOS; i++) {
		assert_int_not_equal(metrics_errno_value(i), 0);
		assert_int_equal(metrics_errno_index(metrics_errno_value(i)), i);
	}
}

/* --- label escaping ---------------------------------------------------------------------- */

static void escaped_is(const char *value, const char *want)
{
	struct mbuf b = { 0 };

	metrics_escape_label(&b, value);
	assert_false(b.oom);
	assert_string_equal(b.p ? b.p : "", want);
	assert_int_equal(b.len, strlen(want));
	mbuf_free(&b);
}

static void test_escape_label(void **state)
{
	(void)state;
	escaped_is("plain-value_1.2", "plain-value_1.2");
	escaped_is("a\\b", "a\\\\b");
	escaped_is("say \"hi\"", "say \\\"hi\\\"");
	escaped_is("two\nlines\n", "two\\nlines\\n");
	/* UTF-8, and a byte that is none: as they are */
	escaped_is("caf\xc3\xa9 \xe2\x9c\x93 \xff", "caf\xc3\xa9 \xe2\x9c\x93 \xff");
	escaped_is("tab\there", "tab\there");
	escaped_is("", "");
}

/* --- group paths ------------------------------------------------------------------------ */

static struct metrics_gateway node1 = { .instance = "node-1" };

static void path_is(const char *sandbox, const char *name, const char *value, const char *want)
{
	struct mbuf b = { 0 };
	const char *names[] = { name }, *values[] = { value };

	metrics_group_path(&b, &node1, sandbox, names, values, name ? 1 : 0);
	assert_false(b.oom);
	assert_non_null(b.p);
	assert_string_equal(b.p, want);
	mbuf_free(&b);
}

static void test_group_path_plain(void **state)
{
	(void)state;
	path_is("sb1", NULL, NULL, "/job/vfsd/instance/node-1/sandbox/sb1");
	path_is("sb1", "pod", "web-0", "/job/vfsd/instance/node-1/sandbox/sb1/pod/web-0");
	path_is("A.b_c-9", "x", "...", "/job/vfsd/instance/node-1/sandbox/A.b_c-9/x/...");
}

/* Expected values from python3 base64.urlsafe_b64encode (padding kept). */
static void test_group_path_base64(void **state)
{
	(void)state;
#define SB1 "/job/vfsd/instance/node-1/sandbox/sb1"
	path_is("a/b", NULL, NULL, "/job/vfsd/instance/node-1/sandbox@base64/YS9i");
	path_is("sb1", "pod", "ns/pod-1", SB1 "/pod@base64/bnMvcG9kLTE=");
	path_is("sb1", "pod", "my pod", SB1 "/pod@base64/bXkgcG9k");
	path_is("sb1", "q", "say \"hi\"", SB1 "/q@base64/c2F5ICJoaSI=");
	path_is("sb1", "n", "caf\xc3\xa9", SB1 "/n@base64/Y2Fmw6k=");
	path_is("sb1", "n", "~", SB1 "/n@base64/fg==");
	path_is("sb1", "n", "\xfb\xff", SB1 "/n@base64/-_8="); /* the url-safe letters */
	path_is("sb1", "n", "", SB1 "/n@base64/=");
	path_is("sb1", "n", ".", SB1 "/n@base64/Lg==");
	path_is("..", NULL, NULL, "/job/vfsd/instance/node-1/sandbox@base64/Li4=");
#undef SB1
}

static void test_group_path_instance(void **state)
{
	struct metrics_gateway gw;
	struct mbuf b = { 0 };
	char err[512];

	(void)state;
	assert_int_equal(metrics_gateway_init(&gw, "http://127.0.0.1:9", "rack 7/node", 1000, err,
					      sizeof(err)),
			 0);
	metrics_group_path(&b, &gw, "sb1", NULL, NULL, 0);
	assert_string_equal(b.p, "/job/vfsd/instance@base64/cmFjayA3L25vZGU=/sandbox/sb1");
	mbuf_free(&b);
	metrics_gateway_free(&gw);
	assert_null(gw.url);
	assert_null(gw.instance);
}

/* --- the gateway's URL -------------------------------------------------------------------- */

static void url_refused(const char *url)
{
	struct metrics_gateway gw;
	char err[512], quoted[128];

	memset(err, 0, sizeof(err));
	assert_int_equal(metrics_gateway_init(&gw, url, "node-1", 1000, err, sizeof(err)), -EINVAL);
	snprintf(quoted, sizeof(quoted), "'%s'", url);
	if (!strstr(err, quoted)) {
		print_error("error for %s: '%s'\n", url, err);
		fail();
	}
	assert_null(gw.url);
	assert_null(gw.instance);
	metrics_gateway_free(&gw);
}

static void test_gateway_url_refused(void **state)
{
	(void)state;
	url_refused("ftp://x/");
	url_refused("not a url");
	url_refused("http://h/?q=1");
	url_refused("http://u@h/");
	url_refused("http://h#f");
	url_refused("");
}

static void test_gateway_url_trailing_slash(void **state)
{
	struct metrics_gateway gw;
	char err[512] = "";

	(void)state;
	assert_int_equal(metrics_gateway_init(&gw, "http://127.0.0.1:9091/", "node-1", 15000, err,
					      sizeof(err)),
			 0);
	assert_string_equal(gw.url, "http://127.0.0.1:9091");
	assert_string_equal(gw.instance, "node-1");
	assert_int_equal(gw.interval_ms, 15000);
	assert_int_equal(gw.failures, 0);
	assert_null(gw.curl); /* libcurl starts with the first push */
	metrics_gateway_free(&gw);

	assert_int_equal(metrics_gateway_init(&gw, "https://gw.example:443/prefix//", "n", 1000,
					      err, sizeof(err)),
			 0);
	assert_string_equal(gw.url, "https://gw.example:443/prefix");
	metrics_gateway_free(&gw);
}

/* --- the region ------------------------------------------------------------------------- */

/*
 * One region for every test that counts: a thread keeps the slot it took first
 * (metrics_slot_of_thread() caches it), so a second mapping would leave this thread writing
 * into the first one. Each test starts with the counters zeroed and ends with vfsd_metrics
 * NULL again, as every other test expects; the group's teardown unmaps it.
 */
static struct metrics_region *region;
static int region_fd = -1;

static int region_setup(void **state)
{
	char err[256] = "";

	(void)state;
	if (!region) {
		region_fd = metrics_memfd();
		assert_true(region_fd >= 0);
		if (metrics_attach(region_fd, true, err, sizeof(err)) != 0) {
			print_error("attach: %s\n", err);
			return -1;
		}
		region = vfsd_metrics;
	}
	vfsd_metrics = region;
	memset((char *)region + offsetof(struct metrics_region, gauges), 0,
	       sizeof(*region) - offsetof(struct metrics_region, gauges));
	return 0;
}

static int region_teardown(void **state)
{
	(void)state;
	vfsd_metrics = NULL;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	vfsd_metrics = NULL;
	if (region)
		munmap(region, sizeof(*region));
	if (region_fd >= 0)
		close(region_fd);
	region = NULL;
	region_fd = -1;
	return 0;
}

static struct metrics_sum *read_region(void)
{
	struct metrics_sum *sum = calloc(1, sizeof(*sum));

	assert_non_null(sum);
	assert_int_equal(metrics_read(region_fd, sum), 0);
	return sum;
}

static void test_memfd_size(void **state)
{
	int fd = metrics_memfd();

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)sizeof(struct metrics_region));
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static void test_fresh_region_header(void **state)
{
	(void)state;
	assert_ptr_equal(vfsd_metrics, region);
	assert_true(region->h.magic == METRICS_MAGIC);
	assert_int_equal(region->h.version, METRICS_VERSION);
	assert_int_equal(region->h.size, sizeof(struct metrics_region));
	assert_int_equal(region->h.slots, METRICS_SLOTS);
	assert_int_equal(region->h.opcodes, METRICS_OPCODES);
	assert_int_equal(region->h.errnos, METRICS_ERRNOS);
	assert_int_equal(region->h.buckets, METRICS_BUCKETS);
	assert_int_equal(region->h.queues, METRICS_QUEUES);
	assert_int_equal(region->h.reserved, 0);
}

static void test_region_round_trip(void **state)
{
	struct metrics_sum *sum;

	(void)state;
	for (int i = 0; i < 3; i++)
		metrics_request(FUSE_GETATTR, 0, 1500);
	metrics_request(FUSE_LOOKUP, -ENOENT, 50);
	metrics_bytes(true, 4096);
	metrics_bytes(false, 0); /* nothing */
	metrics_gauge_add(MG_INODES, 2);
	metrics_gauge_set(MG_GUEST_FD_LIMIT, 1000);
	metrics_gauge_add(MG_HANDLES, 1);
	metrics_gauge_add(MG_HANDLES, -1);
	metrics_queue_kicks(1, 5);
	metrics_queue_kicks(99, 1); /* past the last queue: counted in the last slot */
	metrics_queue_kicks(METRICS_QUEUES - 1, 2);
	sum = read_region();

	assert_int_equal(sum->requests[FUSE_GETATTR], 3);
	assert_int_equal(sum->duration_ns[FUSE_GETATTR], 4500);
	assert_int_equal(sum->buckets[FUSE_GETATTR][1], 3); /* 1500 ns: (1 µs, 2.5 µs] */
	assert_int_equal(sum->buckets[FUSE_GETATTR][0], 0);
	assert_int_equal(sum->buckets[FUSE_GETATTR][2], 0);
	assert_int_equal(sum->requests[FUSE_LOOKUP], 1);
	assert_int_equal(sum->duration_ns[FUSE_LOOKUP], 50);
	assert_int_equal(sum->buckets[FUSE_LOOKUP][0], 1);
	assert_int_equal(sum->errors[FUSE_LOOKUP][1], 1); /* ENOENT's index */
	assert_int_equal(sum->errors[FUSE_LOOKUP][METRICS_ERRNOS - 1], 0);
	assert_int_equal(sum->errors[FUSE_GETATTR][1], 0); /* successes are no errors */
	assert_int_equal(sum->requests[FUSE_SETATTR], 0);
	assert_int_equal(sum->write_bytes, 4096);
	assert_int_equal(sum->read_bytes, 0);
	assert_int_equal(sum->gauges[MG_INODES], 2);
	assert_int_equal(sum->gauges[MG_HANDLES], 0);
	assert_int_equal(sum->gauges[MG_GUEST_FD_LIMIT], 1000);
	assert_int_equal(sum->gauges[MG_GUEST_FDS], 0);
	assert_int_equal(sum->queue_kicks[0], 0);
	assert_int_equal(sum->queue_kicks[1], 5);
	assert_int_equal(sum->queue_kicks[METRICS_QUEUES - 1], 3);
	free(sum);
}

static void test_region_other_opcode_and_errno(void **state)
{
	struct metrics_sum *sum;

	(void)state;
	/* the last opcode with its own index, an untracked errno, past the last bound */
	metrics_request(METRICS_OTHER_OPCODE - 1, -EHOSTDOWN, 20000000000ull);
	metrics_request(METRICS_OTHER_OPCODE, 0, 1);
	metrics_request(4096, -EACCES, 1);
	metrics_request(UINT32_MAX, 0, 1);
	sum = read_region();
	assert_int_equal(sum->requests[METRICS_OTHER_OPCODE - 1], 1);
	assert_int_equal(sum->buckets[METRICS_OTHER_OPCODE - 1][METRICS_BUCKETS - 1], 1);
	assert_int_equal(sum->errors[METRICS_OTHER_OPCODE - 1][METRICS_ERRNOS - 1], 1);
	assert_int_equal(sum->requests[METRICS_OTHER_OPCODE], 3);
	assert_int_equal(sum->errors[METRICS_OTHER_OPCODE][9], 1); /* EACCES */
	free(sum);
}

static void test_region_off_counts_nothing(void **state)
{
	struct metrics_sum *sum;

	(void)state;
	vfsd_metrics = NULL;
	assert_int_equal(metrics_stamp(), 0);
	metrics_request(FUSE_GETATTR, -EIO, 100);
	metrics_bytes(false, 10);
	metrics_gauge_add(MG_INODES, 1);
	metrics_gauge_set(MG_GUEST_FD_LIMIT, 7);
	metrics_queue_kicks(0, 1);
	vfsd_metrics = region;
	assert_true(metrics_stamp() > 0);
	sum = read_region();
	assert_int_equal(sum->requests[FUSE_GETATTR], 0);
	assert_int_equal(sum->errors[FUSE_GETATTR][metrics_errno_index(EIO)], 0);
	assert_int_equal(sum->read_bytes, 0);
	assert_int_equal(sum->gauges[MG_INODES], 0);
	assert_int_equal(sum->gauges[MG_GUEST_FD_LIMIT], 0);
	assert_int_equal(sum->queue_kicks[0], 0);
	free(sum);
}

static void *count_reads(void *arg)
{
	(void)arg;
	metrics_request(FUSE_READ, 0, 2000);
	metrics_request(FUSE_READ, 0, 2000);
	metrics_bytes(false, 100);
	return metrics_slot_of_thread();
}

static void test_region_second_thread(void **state)
{
	struct metrics_slot *mine, *theirs;
	struct metrics_sum *sum;
	pthread_t th;
	void *ret;

	(void)state;
	metrics_request(FUSE_READ, 0, 3000);
	metrics_bytes(false, 1);
	mine = metrics_slot_of_thread();
	assert_int_equal(pthread_create(&th, NULL, count_reads, NULL), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	theirs = ret;

	assert_true(mine >= &region->slot[0] && mine < &region->slot[METRICS_SLOTS]);
	assert_true(theirs >= &region->slot[0] && theirs < &region->slot[METRICS_SLOTS]);
	assert_ptr_not_equal(mine, theirs);
	assert_int_equal(mine->requests[FUSE_READ], 1);
	assert_int_equal(theirs->requests[FUSE_READ], 2);
	assert_int_equal(theirs->read_bytes, 100);

	sum = read_region();
	assert_int_equal(sum->requests[FUSE_READ], 3);
	assert_int_equal(sum->duration_ns[FUSE_READ], 7000);
	assert_int_equal(sum->buckets[FUSE_READ][1], 2); /* 2000 ns */
	assert_int_equal(sum->buckets[FUSE_READ][2], 1); /* 3000 ns */
	assert_int_equal(sum->read_bytes, 101);
	free(sum);
}

/* --- hostile or foreign regions --------------------------------------------------------- */

static struct metrics_header good_header(void)
{
	return (struct metrics_header){ .magic = METRICS_MAGIC,
					.version = METRICS_VERSION,
					.size = sizeof(struct metrics_region),
					.slots = METRICS_SLOTS,
					.opcodes = METRICS_OPCODES,
					.errnos = METRICS_ERRNOS,
					.buckets = METRICS_BUCKETS,
					.queues = METRICS_QUEUES };
}

/* A memfd of size bytes holding h (when given) at offset 0. */
static int region_file(size_t size, const struct metrics_header *h)
{
	int fd = memfd_create("test-metrics", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (h)
		assert_int_equal(pwrite(fd, h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	return fd;
}

static int read_file(size_t size, const struct metrics_header *h)
{
	struct metrics_sum *sum = calloc(1, sizeof(*sum));
	int fd = region_file(size, h), r;

	assert_non_null(sum);
	r = metrics_read(fd, sum);
	close(fd);
	free(sum);
	return r;
}

static void test_read_good_header(void **state)
{
	struct metrics_header h = good_header();
	struct metrics_sum *sum = malloc(sizeof(*sum));
	int fd = region_file(sizeof(struct metrics_region), &h);
	uint64_t v = 7;

	(void)state;
	assert_non_null(sum);
	memset(sum, 0xa5, sizeof(*sum));
	off_t last = (off_t)offsetof(struct metrics_region, slot[METRICS_SLOTS - 1].write_bytes);

	assert_int_equal(pwrite(fd, &v, sizeof(v), last), sizeof(v));
	assert_int_equal(metrics_read(fd, sum), 0);
	assert_int_equal(sum->write_bytes, 7); /* the last slot is summed */
	assert_int_equal(sum->requests[0], 0); /* and the rest zeroed */
	assert_int_equal(sum->gauges[MG_COUNT - 1], 0);
	close(fd);
	free(sum);
	/* Longer than a region: the rest is not looked at. */
	assert_int_equal(read_file(sizeof(struct metrics_region) + 4096, &h), 0);
}

static void test_read_refuses_short_file(void **state)
{
	struct metrics_header h = good_header();

	(void)state;
	assert_int_equal(read_file(sizeof(struct metrics_region) - 1, &h), -EPROTO);
	assert_int_equal(read_file(sizeof(h), &h), -EPROTO);
	assert_int_equal(read_file(0, NULL), -EPROTO);
}

static void test_read_refuses_bad_header(void **state)
{
	struct metrics_header h;

	(void)state;
	h = good_header();
	h.magic ^= 1;
	assert_int_equal(read_file(sizeof(struct metrics_region), &h), -EPROTO);
	h = good_header();
	h.version = METRICS_VERSION + 1;
	assert_int_equal(read_file(sizeof(struct metrics_region), &h), -EPROTO);
	h = good_header();
	h.size--;
	assert_int_equal(read_file(sizeof(struct metrics_region), &h), -EPROTO);
	h = good_header();
	h.slots = METRICS_SLOTS * 2;
	assert_int_equal(read_file(sizeof(struct metrics_region), &h), -EPROTO);
	h = good_header();
	h.reserved = 1;
	assert_int_equal(read_file(sizeof(struct metrics_region), &h), -EPROTO);
	assert_int_equal(read_file(sizeof(struct metrics_region), NULL), -EPROTO); /* zeros */
}

static void test_read_bad_fd(void **state)
{
	struct metrics_sum *sum = malloc(sizeof(*sum));

	(void)state;
	assert_non_null(sum);
	assert_int_equal(metrics_read(-1, sum), -EBADF);
	free(sum);
}

static void test_attach_refusals(void **state)
{
	char err[256];
	int fd;

	(void)state;
	assert_null(vfsd_metrics);
	fd = region_file(sizeof(struct metrics_region), NULL);
	err[0] = '\0';
	assert_int_equal(metrics_attach(fd, false, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "holds no vfsd"));
	close(fd);

	fd = region_file(100, NULL);
	err[0] = '\0';
	assert_int_equal(metrics_attach(fd, false, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a region of"));
	err[0] = '\0';
	assert_int_equal(metrics_attach(fd, true, err, sizeof(err)), -EINVAL); /* fresh or not */
	assert_true(err[0] != '\0');
	close(fd);

	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(metrics_attach(fd, false, err, sizeof(err)), -EINVAL);
	close(fd);
	assert_int_equal(metrics_attach(-1, false, err, sizeof(err)), -EBADF);
	assert_null(vfsd_metrics); /* a refusal leaves metrics off */
}

/* The supervisor's way: it writes the header, the child attaches without rewriting it. */
static void test_region_init_then_attach(void **state)
{
	struct metrics_header h;
	char err[256] = "";
	int fd = memfd_create("test-metrics", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(metrics_region_init(fd), 0);
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)sizeof(struct metrics_region));
	assert_int_equal(pread(fd, &h, sizeof(h), 0), sizeof(h));
	assert_true(h.magic == METRICS_MAGIC);
	assert_int_equal(metrics_attach(fd, false, err, sizeof(err)), 0);
	assert_non_null(vfsd_metrics);
	assert_int_equal(vfsd_metrics->h.version, METRICS_VERSION);
	munmap(vfsd_metrics, sizeof(struct metrics_region));
	vfsd_metrics = NULL;
	close(fd);
}

/* --- the exposition text ---------------------------------------------------------------- */

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

static size_t count_str(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Lines that start with prefix, whole lines only. */
static size_t count_lines(const char *text, const char *prefix)
{
	size_t n = 0, len = strlen(prefix);

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');

		if (!strncmp(p, prefix, len))
			n++;
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

static void has_line(const char *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strstr(text, want)) {
		print_error("no line '%s' in:\n%s\n", line, text);
		fail();
	}
}

/* Every family's HELP and TYPE once, TYPE right after HELP, and every sample within its
 * family (a histogram's as _bucket, _sum and _count). */
static void check_families(const char *text)
{
	size_t seen[NFAMILIES] = { 0 };
	char family[128] = "", type[32] = "";

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len;
		char line[512], name[128];

		assert_non_null(nl); /* every line ends with a newline */
		len = (size_t)(nl - p);
		assert_true(len > 0 && len < sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl + 1;
		if (!strncmp(line, "# HELP ", 7)) {
			size_t i;
			char want[200];

			assert_int_equal(sscanf(line + 7, "%127s", family), 1);
			for (i = 0; i < NFAMILIES && strcmp(family_names[i], family); i++)
				;
			assert_true(i < NFAMILIES);
			seen[i]++;
			nl = strchr(p, '\n');
			assert_non_null(nl);
			snprintf(want, sizeof(want), "# TYPE %s ", family);
			assert_true(!strncmp(p, want, strlen(want)));
			assert_int_equal(sscanf(p + strlen(want), "%31s", type), 1);
			p = nl + 1;
			continue;
		}
		assert_true(line[0] != '#');
		assert_true(family[0] != '\0');
		len = strcspn(line, "{ ");
		assert_true(len < sizeof(name));
		memcpy(name, line, len);
		name[len] = '\0';
		if (!strcmp(type, "histogram")) {
			size_t f = strlen(family);

			assert_true(!strncmp(name, family, f));
			assert_true(!strcmp(name + f, "_bucket") || !strcmp(name + f, "_sum") ||
				    !strcmp(name + f, "_count"));
		} else {
			assert_string_equal(name, family);
		}
	}
	for (size_t i = 0; i < NFAMILIES; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(count_str(text, "# HELP "), NFAMILIES);
	assert_int_equal(count_str(text, "# TYPE "), NFAMILIES);
}

/* The series of the histogram of one opcode: cumulative, ending with +Inf that equals _count. */
static void check_histogram(const char *text, const char *labels, uint64_t want_count)
{
	char prefix[256], count_line[256];
	uint64_t prev = 0, v = 0;
	size_t n = 0, plen;
	const char *p = text;

	snprintf(prefix, sizeof(prefix), "vfsd_fuse_request_duration_seconds_bucket{%s,le=\"",
		 labels);
	plen = strlen(prefix);
	while ((p = strstr(p, prefix))) {
		const char *q = strchr(p + plen, '"');

		assert_non_null(q);
		assert_int_equal(sscanf(q, "\"} %" SCNu64, &v), 1);
		assert_true(v >= prev);
		prev = v;
		if (++n == METRICS_BUCKETS)
			assert_true(!strncmp(p + plen, "+Inf\"", 5));
		else
			assert_true(strncmp(p + plen, "+Inf\"", 5));
		p = q;
	}
	assert_int_equal(n, METRICS_BUCKETS);
	assert_int_equal(v, want_count);
	snprintf(count_line, sizeof(count_line),
		 "vfsd_fuse_request_duration_seconds_count{%s} %" PRIu64, labels, want_count);
	has_line(text, count_line);
}

static void test_format_two_daemons(void **state)
{
	struct metrics_sum *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct metrics_proc proc = { .valid = true,
				     .fds_valid = true,
				     .rss_bytes = 4096,
				     .cpu_seconds = 1.5,
				     .threads = 3,
				     .fds = 7 };
	struct metrics_entry e[2] = { { .sum = a, .proc = &proc, .labels = "sandbox=\"a\"" },
				      { .sum = b, .proc = NULL, .labels = "" } };
	struct mbuf out = { 0 };
	const char *t;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	a->requests[FUSE_GETATTR] = 3;
	a->duration_ns[FUSE_GETATTR] = 4500;
	a->buckets[FUSE_GETATTR][1] = 2;
	a->buckets[FUSE_GETATTR][METRICS_BUCKETS - 1] = 1;
	a->requests[FUSE_LOOKUP] = 3;
	a->duration_ns[FUSE_LOOKUP] = 150;
	a->buckets[FUSE_LOOKUP][0] = 3;
	a->errors[FUSE_LOOKUP][metrics_errno_index(ENOENT)] = 1;
	a->errors[FUSE_LOOKUP][METRICS_ERRNOS - 1] = 2;
	/* counted durations without requests (a region is not to be trusted): no series */
	a->buckets[FUSE_SETATTR][0] = 5;
	a->duration_ns[FUSE_SETATTR] = 5;
	a->read_bytes = 10;
	a->write_bytes = 4096;
	a->gauges[MG_INODES] = 2;
	a->gauges[MG_HANDLES] = 1;
	a->gauges[MG_GUEST_FDS] = 5;
	a->gauges[MG_GUEST_FD_LIMIT] = 100;
	a->gauges[MG_FD_EVICTIONS] = 31;
	a->gauges[MG_FD_REOPENS] = 12;
	a->queue_kicks[0] = 5;
	a->queue_kicks[METRICS_QUEUES - 1] = 1;
	b->requests[FUSE_READ] = 1;
	b->duration_ns[FUSE_READ] = 30000;
	b->buckets[FUSE_READ][5] = 1;
	b->requests[METRICS_OTHER_OPCODE] = 4;
	b->buckets[METRICS_OTHER_OPCODE][METRICS_BUCKETS - 1] = 4;
	b->duration_ns[METRICS_OTHER_OPCODE] = 40000000000ull;
	b->gauges[MG_INODES] = -1; /* a gauge may be anything */

	metrics_format(&out, e, 2);
	assert_false(out.oom);
	assert_non_null(out.p);
	assert_int_equal(strlen(out.p), out.len);
	t = out.p;
	check_families(t);

	has_line(t, "# TYPE vfsd_fuse_request_duration_seconds histogram");
	has_line(t, "# TYPE vfsd_fuse_requests_total counter");
	has_line(t, "# TYPE vfsd_inodes gauge");
	has_line(t, "vfsd_fuse_requests_total{sandbox=\"a\",opcode=\"GETATTR\"} 3");
	has_line(t, "vfsd_fuse_requests_total{sandbox=\"a\",opcode=\"LOOKUP\"} 3");
	has_line(t, "vfsd_fuse_requests_total{opcode=\"READ\"} 1");
	has_line(t, "vfsd_fuse_requests_total{opcode=\"other\"} 4");
	has_line(t, "vfsd_fuse_errors_total{sandbox=\"a\",opcode=\"LOOKUP\",errno=\"ENOENT\"} 1");
	has_line(t, "vfsd_fuse_errors_total{sandbox=\"a\",opcode=\"LOOKUP\",errno=\"other\"} 2");
	assert_int_equal(count_lines(t, "vfsd_fuse_errors_total"), 2);

#define A_GETATTR "{sandbox=\"a\",opcode=\"GETATTR\""
	has_line(t, "vfsd_fuse_request_duration_seconds_bucket" A_GETATTR ",le=\"1e-06\"} 0");
	has_line(t, "vfsd_fuse_request_duration_seconds_bucket" A_GETATTR ",le=\"2.5e-06\"} 2");
	has_line(t, "vfsd_fuse_request_duration_seconds_bucket" A_GETATTR ",le=\"0.0001\"} 2");
	has_line(t, "vfsd_fuse_request_duration_seconds_bucket" A_GETATTR ",le=\"10\"} 2");
	has_line(t, "vfsd_fuse_request_duration_seconds_bucket" A_GETATTR ",le=\"+Inf\"} 3");
	has_line(t, "vfsd_fuse_request_duration_seconds_sum" A_GETATTR "} 0.000004500");
#undef A_GETATTR
	has_line(t, "vfsd_fuse_request_duration_seconds_bucket{opcode=\"READ\",le=\"2.5e-05\"} 0");
	has_line(t, "vfsd_fuse_request_duration_seconds_bucket{opcode=\"READ\",le=\"5e-05\"} 1");
	has_line(t, "vfsd_fuse_request_duration_seconds_sum{opcode=\"READ\"} 0.000030000");
	has_line(t, "vfsd_fuse_request_duration_seconds_sum{opcode=\"other\"} 40.000000000");
	check_histogram(t, "sandbox=\"a\",opcode=\"GETATTR\"", 3);
	check_histogram(t, "sandbox=\"a\",opcode=\"LOOKUP\"", 3);
	check_histogram(t, "opcode=\"READ\"", 1);
	check_histogram(t, "opcode=\"other\"", 4);
	assert_null(strstr(t, "opcode=\"SETATTR\""));
	assert_null(strstr(t, "opcode=\"UNKNOWN\""));
	assert_int_equal(count_lines(t, "vfsd_fuse_requests_total"), 4);
	assert_int_equal(count_lines(t, "vfsd_fuse_request_duration_seconds_count"), 4);

	has_line(t, "vfsd_read_bytes_total{sandbox=\"a\"} 10");
	has_line(t, "vfsd_read_bytes_total 0");
	has_line(t, "vfsd_write_bytes_total{sandbox=\"a\"} 4096");
	has_line(t, "vfsd_inodes{sandbox=\"a\"} 2");
	has_line(t, "vfsd_inodes -1");
	has_line(t, "vfsd_open_handles{sandbox=\"a\"} 1");
	has_line(t, "vfsd_open_fds{sandbox=\"a\"} 5");
	/* only a daemon with a budget has a remainder */
	has_line(t, "vfsd_guest_fd_budget_remaining{sandbox=\"a\"} 95");
	assert_int_equal(count_lines(t, "vfsd_guest_fd_budget_remaining"), 1);
	has_line(t, "vfsd_guest_fd_budget_exhausted_total 0");
	has_line(t, "vfsd_inode_fd_evictions_total{sandbox=\"a\"} 31");
	has_line(t, "vfsd_inode_fd_reopens_total{sandbox=\"a\"} 12");
	has_line(t, "vfsd_inode_fd_evictions_total 0");
	has_line(t, "vfsd_vhost_queue_notifications_total{sandbox=\"a\",queue=\"0\"} 5");
	has_line(t, "vfsd_vhost_queue_notifications_total{sandbox=\"a\",queue=\"15\"} 1");
	assert_int_equal(count_lines(t, "vfsd_vhost_queue_notifications_total"), 2);
	/* the process only for the daemon that has one */
	has_line(t, "vfsd_process_resident_memory_bytes{sandbox=\"a\"} 4096");
	has_line(t, "vfsd_process_cpu_seconds_total{sandbox=\"a\"} 1.5");
	has_line(t, "vfsd_process_threads{sandbox=\"a\"} 3");
	has_line(t, "vfsd_process_open_fds{sandbox=\"a\"} 7");
	assert_int_equal(count_lines(t, "vfsd_process_"), 4);
	assert_true(t[out.len - 1] == '\n');
	mbuf_free(&out);
	free(a);
	free(b);
}

/* No daemon at all: the families, no samples; fds_valid alone gives the fd count only. */
static void test_format_no_samples(void **state)
{
	struct metrics_sum *s = calloc(1, sizeof(*s));
	struct metrics_proc proc = { .valid = false, .fds_valid = true, .fds = 9, .threads = 2 };
	struct metrics_entry e = { .sum = s, .proc = &proc, .labels = "" };
	struct mbuf out = { 0 };

	(void)state;
	assert_non_null(s);
	metrics_format(&out, NULL, 0);
	assert_false(out.oom);
	check_families(out.p);
	assert_int_equal(count_lines(out.p, "vfsd_"), 0);
	mbuf_free(&out);

	metrics_format(&out, &e, 1);
	check_families(out.p);
	has_line(out.p, "vfsd_process_open_fds 9");
	assert_int_equal(count_lines(out.p, "vfsd_process_"), 1);
	assert_int_equal(count_lines(out.p, "vfsd_fuse_"), 0);
	mbuf_free(&out);
	free(s);
}

static void test_mbuf_grows(void **state)
{
	struct mbuf b = { 0 };
	char big[10000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mbuf_printf(&b, "%s", "");
	assert_non_null(b.p);
	assert_string_equal(b.p, "");
	mbuf_printf(&b, "ab");
	mbuf_printf(&b, "%s", big);
	mbuf_printf(&b, "%d", 42);
	assert_false(b.oom);
	assert_int_equal(b.len, 2 + sizeof(big) - 1 + 2);
	assert_true(b.cap > b.len);
	assert_int_equal(strlen(b.p), b.len);
	assert_true(!strncmp(b.p, "abxxx", 5));
	assert_string_equal(b.p + b.len - 3, "x42");
	mbuf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

static void test_sample_labels(void **state)
{
	struct mbuf b = { 0 };
	const char *names[] = { "pod", "namespace" }, *values[] = { "web \"0\"", "a\\b\n" };

	(void)state;
	metrics_sample_labels(&b, "sb1", names, values, 2);
	assert_string_equal(b.p, "sandbox=\"sb1\",pod=\"web \\\"0\\\"\",namespace=\"a\\\\b\\n\"");
	mbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_index_at_bounds),
		cmocka_unit_test(test_bucket_bounds),
		cmocka_unit_test(test_errno_index),
		cmocka_unit_test(test_escape_label),
		cmocka_unit_test(test_group_path_plain),
		cmocka_unit_test(test_group_path_base64),
		cmocka_unit_test(test_group_path_instance),
		cmocka_unit_test(test_gateway_url_refused),
		cmocka_unit_test(test_gateway_url_trailing_slash),
		cmocka_unit_test(test_memfd_size),
		cmocka_unit_test_setup_teardown(test_fresh_region_header, region_setup,
						region_teardown),
		cmocka_unit_test_setup_teardown(test_region_round_trip, region_setup,
						region_teardown),
		cmocka_unit_test_setup_teardown(test_region_other_opcode_and_errno, region_setup,
						region_teardown),
		cmocka_unit_test_setup_teardown(test_region_off_counts_nothing, region_setup,
						region_teardown),
		cmocka_unit_test_setup_teardown(test_region_second_thread, region_setup,
						region_teardown),
		cmocka_unit_test(test_read_good_header),
		cmocka_unit_test(test_read_refuses_short_file),
		cmocka_unit_test(test_read_refuses_bad_header),
		cmocka_unit_test(test_read_bad_fd),
		cmocka_unit_test(test_attach_refusals),
		cmocka_unit_test(test_region_init_then_attach),
		cmocka_unit_test(test_format_two_daemons),
		cmocka_unit_test(test_format_no_samples),
		cmocka_unit_test(test_mbuf_grows),
		cmocka_unit_test(test_sample_labels),
	};

	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
