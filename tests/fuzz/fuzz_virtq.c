/*
 * libFuzzer target: virtq_pop() and the used-ring side over a ring the guest laid out as it
 * liked, in guest memory made of memfd regions.
 *
 * Guest memory: gpa [0, 64K) and [64K, 128K) (two regions, contiguous for the guest, so
 * buffers may straddle them), a hole, then [192K, 196K). The VMM's address of gpa g is
 * UVA_BASE + g.
 * Input: u8 log2 of the ring size (mod 16), u8 flags (bit 0 EVENT_IDX), u16 last_avail_idx,
 * u16 used_idx, then u32 desc, avail and used gpas (mod 256K, any alignment); the rest is
 * the guest memory from gpa 0.
 * The ring is drained as the device does: bad chains are pushed back empty, a broken ring
 * stops. Every iovec must lie inside one region.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "vhost/virtq.h"

#define UVA_BASE 0x7f0000000000ull
#define REGION_SIZE 0x10000u
#define SMALL_GPA 0x30000u
#define SMALL_SIZE 0x1000u
#define RING_GPA_SPAN 0x40000u
#define MAX_POPS 512

static struct guest_mem mem;
static struct virtq_elem elem;

static void add_region(int fd, uint64_t gpa, uint64_t size, uint64_t offset)
{
	int r = guest_mem_add(&mem, fd, gpa, size, UVA_BASE + gpa, offset);

	FUZZ_CHECK(r == 0, "guest_mem_add: %s", strerror(-r));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd = memfd_create("fuzz-guest", MFD_CLOEXEC);

	(void)argc;
	(void)argv;
	fuzz_log_init();
	FUZZ_CHECK(fd >= 0 && ftruncate(fd, 2 * REGION_SIZE + SMALL_SIZE) == 0, "memfd: %s",
		   strerror(errno));
	add_region(fd, 0, REGION_SIZE, 0);
	add_region(fd, REGION_SIZE, REGION_SIZE, REGION_SIZE);
	add_region(fd, SMALL_GPA, SMALL_SIZE, 2 * REGION_SIZE);
	close(fd);
	return 0;
}

static bool inside_a_region(const struct iovec *iov)
{
	uintptr_t p = (uintptr_t)iov->iov_base;

	for (unsigned int i = 0; i < mem.nregions; i++) {
		uintptr_t host = (uintptr_t)mem.regions[i].host;

		uint64_t size = mem.regions[i].size;

		if (p >= host && iov->iov_len <= size && p - host <= size - iov->iov_len)
			return true;
	}
	return false;
}

static void check_elem(const struct virtq *vq)
{
	FUZZ_CHECK(elem.head < vq->num, "head %u on a ring of %u", elem.head, vq->num);
	FUZZ_CHECK(elem.nrd >= 0 && elem.nwr >= 0 && elem.nrd + elem.nwr <= VIRTQ_MAX_IOV,
		   "chain of %d + %d iovecs", elem.nrd, elem.nwr);
	for (int i = 0; i < elem.nrd + elem.nwr; i++) {
		FUZZ_CHECK(inside_a_region(&elem.iov[i]), "iovec %d (%p, %zu) outside guest memory",
			   i, elem.iov[i].iov_base, elem.iov[i].iov_len);
		FUZZ_CHECK(elem.iov[i].iov_len > 0, "iovec %d is empty", i);
	}
}

static uint32_t writable_len(void)
{
	uint64_t n = 0;

	for (int i = elem.nrd; i < elem.nrd + elem.nwr; i++)
		n += elem.iov[i].iov_len;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct virtq vq = { 0 };
	uint8_t flags;
	size_t len;
	const uint8_t *image;

	vq.num = 1u << (fuzz_take(&in, 1) % 16);
	flags = (uint8_t)fuzz_take(&in, 1);
	vq.event_idx = flags & 1;
	vq.last_avail_idx = (uint16_t)fuzz_take(&in, 2);
	vq.used_idx = (uint16_t)fuzz_take(&in, 2);
	vq.desc_uva = UVA_BASE + fuzz_take(&in, 4) % RING_GPA_SPAN;
	vq.avail_uva = UVA_BASE + fuzz_take(&in, 4) % RING_GPA_SPAN;
	vq.used_uva = UVA_BASE + fuzz_take(&in, 4) % RING_GPA_SPAN;

	/* The guest's memory: the rest of the input from gpa 0, zeros after it. */
	image = fuzz_bytes(&in, 2 * REGION_SIZE, &len);
	memset(mem.regions[0].host, 0, REGION_SIZE);
	memset(mem.regions[1].host, 0, REGION_SIZE);
	memset(mem.regions[2].host, 0, SMALL_SIZE);
	memcpy(mem.regions[0].host, image, len < REGION_SIZE ? len : REGION_SIZE);
	if (len > REGION_SIZE)
		memcpy(mem.regions[1].host, image + REGION_SIZE, len - REGION_SIZE);

	if (virtq_map(&vq, &mem) < 0)
		return 0;
	virtq_disable_notify(&vq);
	for (int n = 0; n < MAX_POPS; n++) {
		int r = virtq_pop(&vq, &mem, &elem);

		if (fuzz_trace)
			fprintf(stderr, "fuzz: pop -> %d, head %u, %d + %d iovecs\n", r, elem.head,
				elem.nrd, elem.nwr);

		if (r == 0)
			break;
		if (r == -EIO) {
			FUZZ_CHECK(vq.broken, "-EIO without a broken ring");
			break;
		}
		FUZZ_CHECK(r == 1 || r == -EINVAL || r == -EFAULT || r == -ENOBUFS,
			   "virtq_pop returned %d", r);
		if (r < 0) {
			FUZZ_CHECK(elem.head < vq.num, "bad chain at head %u on a ring of %u",
				   elem.head, vq.num);
			virtq_push(&vq, elem.head, 0);
			continue;
		}
		check_elem(&vq);
		virtq_push(&vq, elem.head, writable_len());
		(void)virtq_should_notify(&vq);
	}
	(void)virtq_enable_notify(&vq);
	(void)virtq_should_notify(&vq);
	virtq_unmap(&vq);
	return 0;
}
