/* Descriptor-chain walking against a hostile guest: loops, overflows, bad addresses. */
#include "test_helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhost/virtq.h"

#define QSIZE 16
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define DATA_GPA 0x10000
#define MEM_SIZE 0x40000

struct fixture {
	struct guest_mem mem;
	struct virtq vq;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct virtq_elem elem;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	test_mem_add(&f->mem, 0, MEM_SIZE);
	f->vq.num = QSIZE;
	f->vq.desc_uva = TEST_UVA_BASE + DESC_GPA;
	f->vq.avail_uva = TEST_UVA_BASE + AVAIL_GPA;
	f->vq.used_uva = TEST_UVA_BASE + USED_GPA;
	assert_int_equal(virtq_map(&f->vq, &f->mem), 0);
	f->desc = guest_mem_gpa_ptr(&f->mem, DESC_GPA, QSIZE * sizeof(struct vring_desc));
	f->avail = guest_mem_gpa_ptr(&f->mem, AVAIL_GPA, 64);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	guest_mem_clear(&f->mem);
	free(f);
	return 0;
}

static void set_desc(struct fixture *f, int i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	f->desc[i] = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void offer(struct fixture *f, uint16_t head)
{
	f->avail->ring[f->avail->idx % QSIZE] = head;
	f->avail->idx++;
}

static void test_simple_chain(void **state)
{
	struct fixture *f = *state;

	set_desc(f, 0, DATA_GPA, 40, VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA_GPA + 0x100, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(f, 2, DATA_GPA + 0x200, 4096, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), 1);
	assert_int_equal(f->elem.head, 0);
	assert_int_equal(f->elem.nrd, 1);
	assert_int_equal(f->elem.nwr, 2);
	assert_int_equal(virtq_elem_wr(&f->elem)[1].iov_len, 4096);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), 0); /* empty now */
	virtq_push(&f->vq, 0, 16);
	assert_int_equal(f->vq.used->idx, 1);
	assert_int_equal(f->vq.used->ring[0].len, 16);
}

static void test_loop_detected(void **state)
{
	struct fixture *f = *state;

	set_desc(f, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA_GPA, 8, VRING_DESC_F_NEXT, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
	/* the queue still works for the next good chain */
	set_desc(f, 2, DATA_GPA, 8, 0, 0);
	offer(f, 2);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), 1);
}

static void test_next_out_of_range(void **state)
{
	struct fixture *f = *state;

	set_desc(f, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, QSIZE + 3);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
}

static void test_address_outside_memory(void **state)
{
	struct fixture *f = *state;

	set_desc(f, 0, MEM_SIZE - 4, 8, 0, 0); /* runs past the end */
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EFAULT);
	set_desc(f, 1, UINT64_MAX - 2, 8, 0, 0); /* wraps */
	offer(f, 1);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EFAULT);
}

static void test_readable_after_writable(void **state)
{
	struct fixture *f = *state;

	set_desc(f, 0, DATA_GPA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA_GPA + 16, 16, 0, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
}

static void test_indirect(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *table = guest_mem_gpa_ptr(&f->mem, DATA_GPA, 4 * sizeof(*table));

	table[0] = (struct vring_desc){ DATA_GPA + 0x1000, 40, VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ DATA_GPA + 0x2000, 64, VRING_DESC_F_WRITE, 0 };
	set_desc(f, 0, DATA_GPA, 2 * sizeof(*table), VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), 0 + 1);
	assert_int_equal(f->elem.nrd, 1);
	assert_int_equal(f->elem.nwr, 1);
}

static void test_indirect_hostile(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *table = guest_mem_gpa_ptr(&f->mem, DATA_GPA, 4 * sizeof(*table));

	/* an indirect table inside an indirect table */
	table[0] = (struct vring_desc){ DATA_GPA, 32, VRING_DESC_F_INDIRECT, 0 };
	set_desc(f, 0, DATA_GPA, 2 * sizeof(*table), VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
	/* a loop inside the table */
	table[0] = (struct vring_desc){ DATA_GPA + 0x1000, 8, VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ DATA_GPA + 0x1000, 8, VRING_DESC_F_NEXT, 0 };
	set_desc(f, 1, DATA_GPA, 2 * sizeof(*table), VRING_DESC_F_INDIRECT, 0);
	offer(f, 1);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
	/* a table length that is not a multiple of a descriptor, or zero */
	set_desc(f, 2, DATA_GPA, 17, VRING_DESC_F_INDIRECT, 0);
	offer(f, 2);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
	set_desc(f, 3, DATA_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	offer(f, 3);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
	/* an index past the table's end */
	table[0] = (struct vring_desc){ DATA_GPA + 0x1000, 8, VRING_DESC_F_NEXT, 7 };
	set_desc(f, 4, DATA_GPA, 2 * sizeof(*table), VRING_DESC_F_INDIRECT, 0);
	offer(f, 4);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EINVAL);
}

static void test_broken_avail_ring(void **state)
{
	struct fixture *f = *state;

	f->avail->ring[0] = QSIZE + 5; /* head out of range */
	f->avail->idx = 1;
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EIO);
	assert_true(f->vq.broken);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), 0); /* stays stopped */
}

static void test_avail_index_jump(void **state)
{
	struct fixture *f = *state;

	f->avail->idx = QSIZE + 1; /* more entries than the ring holds */
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -EIO);
}

static void test_too_many_segments(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *table = guest_mem_gpa_ptr(&f->mem, DATA_GPA, 0x10000);
	uint32_t n = 2048; /* more than VIRTQ_MAX_IOV */

	for (uint32_t i = 0; i < n; i++)
		table[i] = (struct vring_desc){ DATA_GPA + 0x10000, 1,
						(uint16_t)(i + 1 < n ? VRING_DESC_F_NEXT : 0),
						(uint16_t)(i + 1) };
	set_desc(f, 0, DATA_GPA, n * sizeof(*table), VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->vq, &f->mem, &f->elem), -ENOBUFS);
}

static void test_event_idx_notify(void **state)
{
	struct fixture *f = *state;
	uint16_t *used_event = &f->avail->ring[QSIZE];

	f->vq.event_idx = true;
	virtq_push(&f->vq, 0, 0);
	assert_true(virtq_should_notify(&f->vq)); /* first one always */
	*used_event = 5;			  /* guest wants to hear at index 6 */
	virtq_push(&f->vq, 0, 0);
	assert_false(virtq_should_notify(&f->vq));
	for (int i = 0; i < 4; i++)
		virtq_push(&f->vq, 0, 0);
	assert_true(virtq_should_notify(&f->vq));
}

static void test_misaligned_ring_refused(void **state)
{
	struct fixture *f = *state;
	struct virtq vq = f->vq;

	vq.desc_uva += 8; /* descriptors must be 16-byte aligned */
	assert_int_equal(virtq_map(&vq, &f->mem), -EINVAL);
	vq = f->vq;
	vq.used_uva += 2; /* the used ring 4-byte aligned */
	assert_int_equal(virtq_map(&vq, &f->mem), -EINVAL);
	vq = f->vq;
	vq.avail_uva += 1;
	assert_int_equal(virtq_map(&vq, &f->mem), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_simple_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_outside_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readable_after_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_avail_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_index_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misaligned_ring_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
