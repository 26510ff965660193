#include "vhost/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define GUEST_MEM_ALIGN 4096ull

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int guest_mem_add(struct guest_mem *mem, int fd, uint64_t gpa, uint64_t size, uint64_t uva,
		  uint64_t mmap_offset)
{
	struct guest_mem_region *r, *grown;
	struct stat st;
	void *base;

	if (size == 0 || gpa + size < gpa || uva + size < uva || mmap_offset + size < mmap_offset ||
	    mmap_offset + size > SIZE_MAX)
		return -EINVAL;
	/* Page-aligned offsets and addresses keep our pointers as aligned as the VMM's. */
	if (mmap_offset % GUEST_MEM_ALIGN || uva % GUEST_MEM_ALIGN)
		return -EINVAL;
	if (mem->nregions >= GUEST_MEM_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned int i = 0; i < mem->nregions; i++) {
		if (ranges_overlap(gpa, size, mem->regions[i].gpa, mem->regions[i].size))
			return -EINVAL;
	}
	/* Touching a mapping past the end of its file would kill us with SIGBUS. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < mmap_offset + size)
		return -EINVAL;
	grown = realloc(mem->regions, (mem->nregions + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	mem->regions = grown;

	base = mmap(NULL, mmap_offset + size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		    0);
	if (base == MAP_FAILED)
		return -errno;
	r = &mem->regions[mem->nregions++];
	r->gpa = gpa;
	r->size = size;
	r->uva = uva;
	r->mmap_offset = mmap_offset;
	r->mmap_base = base;
	r->mmap_len = mmap_offset + size;
	r->host = (uint8_t *)base + mmap_offset;
	return 0;
}

int guest_mem_remove(struct guest_mem *mem, uint64_t gpa, uint64_t size)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		struct guest_mem_region *r = &mem->regions[i];

		if (r->gpa == gpa && r->size == size) {
			munmap(r->mmap_base, r->mmap_len);
			mem->regions[i] = mem->regions[--mem->nregions];
			return 0;
		}
	}
	return -ENOENT;
}

void guest_mem_clear(struct guest_mem *mem)
{
	for (unsigned int i = 0; i < mem->nregions; i++)
		munmap(mem->regions[i].mmap_base, mem->regions[i].mmap_len);
	free(mem->regions);
	mem->regions = NULL;
	mem->nregions = 0;
}

void *guest_mem_gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void *guest_mem_uva_ptr(const struct guest_mem *mem, uint64_t uva, uint64_t len)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];

		if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva))
			return r->host + (uva - r->uva);
	}
	return NULL;
}

int guest_mem_map_iov(const struct guest_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
		      int *cnt, int max)
{
	if (gpa + len < gpa)
		return -EFAULT;
	while (len > 0) {
		const struct guest_mem_region *hit = NULL;

		for (unsigned int i = 0; i < mem->nregions; i++) {
			const struct guest_mem_region *r = &mem->regions[i];

			if (gpa >= r->gpa && gpa - r->gpa < r->size) {
				hit = r;
				break;
			}
		}
		if (!hit)
			return -EFAULT;
		if (*cnt >= max)
			return -ENOBUFS;

		uint64_t in_region = hit->size - (gpa - hit->gpa);
		uint64_t take = len < in_region ? len : in_region;

		iov[*cnt].iov_base = hit->host + (gpa - hit->gpa);
		iov[*cnt].iov_len = take;
		(*cnt)++;
		gpa += take;
		len -= take;
	}
	return 0;
}
