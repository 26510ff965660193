/* The metrics region: mapping it, the writer's slot and bucket choice, and reading it back. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "metrics/metrics.h"

struct metrics_region *vfsd_metrics;
uint64_t vfsd_metrics_tsc_mult;

#if defined(__x86_64__)
static void tsc_pair(struct timespec *c, uint64_t *tsc)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 3; i++) {
		struct timespec now;
		uint64_t lo = __builtin_ia32_rdtsc(), hi;

		clock_gettime(CLOCK_MONOTONIC, &now);
		hi = __builtin_ia32_rdtsc();
		if (hi - lo < best) {
			best = hi - lo;
			*c = now;
			*tsc = lo + (hi - lo) / 2;
		}
	}
}
#endif

/*
 * Uses the TSC for request times when it ticks at one rate whatever the CPU does
 * (constant_tsc and nonstop_tsc), calibrated against CLOCK_MONOTONIC over 2 ms; otherwise
 * leaves clock_gettime. Runs before the sandbox (it reads /proc/cpuinfo).
 */
static void tsc_calibrate(void)
{
#if defined(__x86_64__)
	char line[4096];
	bool constant = false, nonstop = false;
	FILE *f = fopen("/proc/cpuinfo", "re");
	struct timespec a = { 0 }, b = { 0 }, pause = { 0, 2000000 };
	uint64_t t0 = 0, t1 = 0, ns;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		constant = strstr(line, " constant_tsc");
		nonstop = strstr(line, " nonstop_tsc");
		break;
	}
	fclose(f);
	if (!constant || !nonstop)
		return;
	/* Each end is a clock read between two TSC reads, the tightest of three: a preemption
	 * between them would skew the rate. */
	tsc_pair(&a, &t0);
	nanosleep(&pause, NULL);
	tsc_pair(&b, &t1);
	ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
	/* A rate outside 100 MHz to 20 GHz is not a TSC to trust. */
	if (t1 <= t0 || (t1 - t0) < ns / 10 || (t1 - t0) > ns * 20)
		return;
	vfsd_metrics_tsc_mult = (ns << 32) / (t1 - t0);
#endif
}

/* The errnos a passthrough file system returns often enough to deserve their own series. */
static const int tracked_errnos[METRICS_ERRNOS - 1] = {
	EPERM,	 ENOENT, EINTR,	 EIO,	    ENXIO,	  E2BIG,     EBADF,	 EAGAIN,
	ENOMEM,	 EACCES, EFAULT, EBUSY,	    EEXIST,	  EXDEV,     ENODEV,	 ENOTDIR,
	EISDIR,	 EINVAL, ENFILE, EMFILE,    ENOTTY,	  ETXTBSY,   EFBIG,	 ENOSPC,
	ESPIPE,	 EROFS,	 EMLINK, ERANGE,    EDEADLK,	  ENAMETOOLONG, ENOLCK,	 ENOSYS,
	ENOTEMPTY, ELOOP, ENODATA, EOVERFLOW, EOPNOTSUPP, ESTALE,    EDQUOT,
};

/* Upper bounds of the duration buckets, in nanoseconds (from 1 µs to 10 s). */
static const uint64_t bucket_bounds[METRICS_BUCKETS - 1] = {
	1000,	  2500,	     5000,	10000,	    25000,	 50000,	     100000,	250000,
	500000,	  1000000,   2500000,	5000000,    10000000,	 25000000,   50000000,	100000000,
	250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

unsigned int metrics_errno_index(int errnum)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(tracked_errnos); i++)
		if (tracked_errnos[i] == errnum)
			return i;
	return METRICS_ERRNOS - 1;
}

int metrics_errno_value(unsigned int index)
{
	return index < ARRAY_SIZE(tracked_errnos) ? tracked_errnos[index] : 0;
}

unsigned int metrics_bucket_index(uint64_t ns)
{
	unsigned int i = 0;

	while (i < ARRAY_SIZE(bucket_bounds) && ns > bucket_bounds[i])
		i++;
	return i;
}

uint64_t metrics_bucket_bound_ns(unsigned int index)
{
	return index < ARRAY_SIZE(bucket_bounds) ? bucket_bounds[index] : UINT64_MAX;
}

struct metrics_slot *metrics_slot_of_thread(void)
{
	static unsigned int next;
	static __thread unsigned int mine; /* the slot's index + 1: an index, so it holds for
					      any region this process maps */

	if (__builtin_expect(!mine, 0))
		mine = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % METRICS_SLOTS + 1;
	return &vfsd_metrics->slot[mine - 1];
}

static void header_init(struct metrics_header *h)
{
	*h = (struct metrics_header){ .magic = METRICS_MAGIC,
				      .version = METRICS_VERSION,
				      .size = sizeof(struct metrics_region),
				      .slots = METRICS_SLOTS,
				      .opcodes = METRICS_OPCODES,
				      .errnos = METRICS_ERRNOS,
				      .buckets = METRICS_BUCKETS,
				      .queues = METRICS_QUEUES };
}

static bool header_ok(const struct metrics_header *h)
{
	struct metrics_header want;

	header_init(&want);
	return memcmp(h, &want, sizeof(want)) == 0;
}

int metrics_attach(int fd, bool fresh, char *err, size_t errlen)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0) {
		int e = errno;

		snprintf(err, errlen, "metrics fd %d: %s", fd, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(struct metrics_region)) {
		snprintf(err, errlen, "metrics fd %d is not a region of %zu bytes", fd,
			 sizeof(struct metrics_region));
		return -EINVAL;
	}
	p = mmap(NULL, sizeof(struct metrics_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;

		snprintf(err, errlen, "cannot map metrics fd %d: %s", fd, strerror(e));
		return -e;
	}
	if (!vfsd_metrics_tsc_mult)
		tsc_calibrate();
	if (fresh)
		header_init(p);
	else if (!header_ok(p)) {
		munmap(p, sizeof(struct metrics_region));
		snprintf(err, errlen, "metrics fd %d holds no vfsd %d region", fd, METRICS_VERSION);
		return -EPROTO;
	}
	vfsd_metrics = p;
	return 0;
}

int metrics_region_init(int fd)
{
	struct metrics_header h;

	header_init(&h);
	if (ftruncate(fd, sizeof(struct metrics_region)) < 0 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -errno;
	return 0;
}

int metrics_memfd(void)
{
	int fd = memfd_create("vfsd-metrics", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, sizeof(struct metrics_region)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

int metrics_read(int fd, struct metrics_sum *out)
{
	struct metrics_region *r = aligned_alloc(_Alignof(struct metrics_region), sizeof(*r));
	size_t off = 0;
	int ret = 0;

	if (!r)
		return -ENOMEM;
	while (off < sizeof(*r)) {
		ssize_t n = pread(fd, (char *)r + off, sizeof(*r) - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EPROTO; /* EOF: shorter than a region */
			goto out;
		}
		off += (size_t)n;
	}
	if (!header_ok(&r->h)) {
		ret = -EPROTO;
		goto out;
	}
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
out:
	free(r);
	return ret;
}

/* /proc/PID/stat read into BUF; returns the fields after the command name (which may hold
 * anything, ')' included, but ends at the last ')'), or NULL. */
static const char *proc_stat_fields(pid_t pid, char *buf, size_t size)
{
	char path[64], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p ? p + 1 : NULL;
}

pid_t metrics_serving_pid(pid_t pid, const struct metrics_sum *sum)
{
	int64_t claimed = sum->gauges[MG_SERVER_PID];
	char buf[1024];
	const char *p;
	int ppid = 0;

	if (claimed <= 0 || claimed > INT32_MAX || claimed == pid)
		return pid;
	/* The number is in the daemon's region: trusted only if the kernel agrees it is the
	 * spawned process's child, so a hijacked daemon cannot point at another process. */
	p = proc_stat_fields((pid_t)claimed, buf, sizeof(buf));
	if (!p || sscanf(p, " %*c %d", &ppid) != 1 || ppid != pid)
		return pid;
	return (pid_t)claimed;
}

void metrics_proc_read(pid_t pid, struct metrics_proc *out)
{
	char path[64], buf[1024];
	const char *p;
	unsigned long long utime, stime, threads, rss;
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	DIR *d;

	*out = (struct metrics_proc){ 0 };
	p = proc_stat_fields(pid, buf, sizeof(buf));
	/* After ") ": state(3) ... utime(14) stime(15) ... num_threads(20) ... rss(24). */
	if (!p || sscanf(p,
			 " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
			 "%llu %*d %*u %*u %llu",
			 &utime, &stime, &threads, &rss) != 4)
		return;
	out->cpu_seconds = (double)(utime + stime) / (double)(tick > 0 ? tick : 100);
	out->threads = threads;
	out->rss_bytes = rss * (uint64_t)(page > 0 ? page : 4096);
	out->valid = true;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));)
		if (de->d_name[0] != '.')
			out->fds++;
	closedir(d);
	out->fds_valid = true;
}
