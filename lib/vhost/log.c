#include "vhost/log.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

int vhost_log_set(struct vhost_log *log, int fd, uint64_t size, uint64_t offset)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t delta, len;
	struct stat st;
	void *base;

	if (page <= 0)
		page = 4096;
	/* mmap wants a page-aligned offset: map from the page below and step in. */
	delta = offset % (uint64_t)page;
	if (size == 0 || size > (1ull << 40) || offset > UINT64_MAX - size - (uint64_t)page)
		return -EINVAL;
	/* A file shorter than the log would be SIGBUS at the first mark. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < offset + size)
		return -EINVAL;
	len = size + delta;
	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(offset - delta));
	if (base == MAP_FAILED)
		return -errno;
	vhost_log_clear(log);
	log->map_base = base;
	log->map_len = len;
	log->bits = (uint8_t *)base + delta;
	log->size = size;
	log->overflow_warned = false;
	return 0;
}

void vhost_log_clear(struct vhost_log *log)
{
	if (log->map_base)
		munmap(log->map_base, log->map_len);
	log->map_base = NULL;
	log->map_len = 0;
	log->bits = NULL;
	log->size = 0;
}

void vhost_log_gpa(struct vhost_log *log, uint64_t gpa, uint64_t len)
{
	uint64_t first, last;

	if (!log->bits || len == 0)
		return;
	first = gpa / VHOST_LOG_PAGE;
	last = (gpa + len - 1) / VHOST_LOG_PAGE;
	if (gpa + len < gpa || last / 8 >= log->size) {
		/* The VMM sized the log for less memory than it gave us: the page cannot be
		 * marked, and its copy on the destination may be stale. */
		if (!__atomic_exchange_n(&log->overflow_warned, true, __ATOMIC_RELAXED))
			log_error("vhost-user: dirty log of %zu bytes does not cover guest address 0x%llx",
				  log->size, (unsigned long long)(gpa + len - 1));
		if (first / 8 >= log->size)
			return;
		last = log->size * 8 - 1;
	}
	for (uint64_t p = first; p <= last; p++)
		__atomic_or_fetch(&log->bits[p / 8], (uint8_t)(1u << (p % 8)), __ATOMIC_RELAXED);
}

void vhost_log_iov(struct vhost_log *log, const struct guest_mem *mem, const struct iovec *iov,
		   int cnt, size_t len)
{
	if (!log->bits)
		return;
	for (int i = 0; i < cnt && len > 0; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t n = MIN(len, iov[i].iov_len);

		len -= n;
		/* Back from our pointer to the guest's address: the region that holds it. */
		for (unsigned int r = 0; r < mem->nregions && n > 0; r++) {
			const struct guest_mem_region *g = &mem->regions[r];

			if (p >= g->host && p < g->host + g->size) {
				vhost_log_gpa(log, g->gpa + (uint64_t)(p - g->host), n);
				break;
			}
		}
	}
}

void vhost_log_kick(struct vhost_log *log)
{
	uint64_t one = 1;
	int fd = __atomic_load_n(&log->call_fd, __ATOMIC_RELAXED);

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("vhost-user: log eventfd: %s", strerror(errno));
}
