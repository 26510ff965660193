/*
 * Guest memory: the regions the VMM shares with us (one mmap per passed fd) and the
 * translation of guest-physical and VMM-virtual addresses into our own pointers. Every
 * translation is bounds-checked against the region it lands in.
 *
 * Not thread-safe by itself: the vhost device serialises changes against readers.
 */
#ifndef VFSD_VHOST_GUEST_MEM_H
#define VFSD_VHOST_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define GUEST_MEM_MAX_REGIONS 509

struct guest_mem_region {
	uint64_t gpa;	      /* guest physical address of the first byte */
	uint64_t size;	      /* bytes */
	uint64_t uva;	      /* the VMM's virtual address of the first byte */
	uint64_t mmap_offset; /* offset of the first byte in the fd */
	void *mmap_base;      /* what mmap returned (covers mmap_offset + size) */
	size_t mmap_len;
	uint8_t *host;	      /* our pointer to the first byte */
};

struct guest_mem {
	struct guest_mem_region *regions;
	unsigned int nregions;
};

/* Maps size bytes of fd from mmap_offset and adds the region; fails with -EINVAL on overlap. */
int guest_mem_add(struct guest_mem *mem, int fd, uint64_t gpa, uint64_t size, uint64_t uva,
		  uint64_t mmap_offset);
/* Removes (and unmaps) the region that matches gpa and size exactly; -ENOENT if none does. */
int guest_mem_remove(struct guest_mem *mem, uint64_t gpa, uint64_t size);
/* Unmaps every region. */
void guest_mem_clear(struct guest_mem *mem);

/* Pointer to len contiguous bytes at guest-physical gpa, or NULL if they are not all mapped
 * inside one region. */
void *guest_mem_gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Same for an address in the VMM's address space (used for vring addresses). */
void *guest_mem_uva_ptr(const struct guest_mem *mem, uint64_t uva, uint64_t len);

/*
 * Appends iovecs covering [gpa, gpa+len) to iov (which holds *cnt entries, capacity max),
 * splitting at region boundaries. Returns 0, -EFAULT if any byte is unmapped or the range
 * wraps, or -ENOBUFS if max is too small.
 */
int guest_mem_map_iov(const struct guest_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
		      int *cnt, int max);

#endif
