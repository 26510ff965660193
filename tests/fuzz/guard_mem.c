/*
 * Guard zones around guest memory. AddressSanitizer does not watch mmap()ed memory, so an
 * access a little past a region could land in a neighbouring mapping and go unseen. The
 * targets are linked with --wrap=mmap,--wrap=munmap: every shared file mapping (that is,
 * guest memory in lib/vhost/guest_mem.c) is placed between two inaccessible 2 MiB zones, so
 * such an access faults where it happens.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define GUARD (2ul << 20)
#define MAX_GUARDED 1024

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

struct guarded {
	void *user; /* what the caller got */
	void *base; /* the whole reservation, guards included */
	size_t total;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct guarded table[MAX_GUARDED]; /* guarded by lock */

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct guarded *slot = NULL;
	uint8_t *base, *p = MAP_FAILED;
	size_t total = len + 2 * GUARD;

	if (fd < 0 || !(flags & MAP_SHARED) || addr || len > SIZE_MAX - 2 * GUARD)
		return __real_mmap(addr, len, prot, flags, fd, off);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_GUARDED && !slot; i++) {
		if (!table[i].user)
			slot = &table[i];
	}
	if (!slot) {
		pthread_mutex_unlock(&lock);
		return __real_mmap(addr, len, prot, flags, fd, off);
	}
	base = __real_mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			   0);
	if (base != MAP_FAILED) {
		p = __real_mmap(base + GUARD, len, prot, flags | MAP_FIXED, fd, off);
		if (p == MAP_FAILED) {
			int saved = errno;

			__real_munmap(base, total);
			errno = saved;
		} else {
			*slot = (struct guarded){ .user = p, .base = base, .total = total };
		}
	}
	pthread_mutex_unlock(&lock);
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	struct guarded g = { 0 };

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_GUARDED; i++) {
		if (table[i].user == addr) {
			g = table[i];
			table[i] = (struct guarded){ 0 };
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	if (g.user)
		return __real_munmap(g.base, g.total);
	return __real_munmap(addr, len);
}
