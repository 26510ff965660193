/* Guest memory translation: every byte must land inside a region or be refused. */
#include "test_helpers.h"

#include <errno.h>
#include <string.h>

static void two_regions(struct guest_mem *mem)
{
	memset(mem, 0, sizeof(*mem));
	test_mem_add(mem, 0, 0x10000);
	test_mem_add(mem, 0x10000, 0x10000); /* adjacent: a range may span both */
}

static void test_gpa_inside_and_at_edges(void **state)
{
	struct guest_mem mem;

	(void)state;
	two_regions(&mem);
	assert_non_null(guest_mem_gpa_ptr(&mem, 0, 0x10000));
	assert_non_null(guest_mem_gpa_ptr(&mem, 0xfff0, 0x10));
	assert_null(guest_mem_gpa_ptr(&mem, 0xfff0, 0x11)); /* crosses into the next region */
	assert_null(guest_mem_gpa_ptr(&mem, 0x20000, 1));    /* past the end */
	assert_null(guest_mem_gpa_ptr(&mem, UINT64_MAX, 2)); /* wraps */
	assert_null(guest_mem_gpa_ptr(&mem, 0x1000, UINT64_MAX));
	guest_mem_clear(&mem);
}

static void test_uva_translation(void **state)
{
	struct guest_mem mem;
	uint8_t *a, *b;

	(void)state;
	two_regions(&mem);
	a = guest_mem_gpa_ptr(&mem, 0x10010, 4);
	b = guest_mem_uva_ptr(&mem, TEST_UVA_BASE + 0x10010, 4);
	assert_ptr_equal(a, b);
	assert_null(guest_mem_uva_ptr(&mem, TEST_UVA_BASE - 1, 1));
	guest_mem_clear(&mem);
}

static void test_iov_split_across_regions(void **state)
{
	struct guest_mem mem;
	struct iovec iov[4];
	int cnt = 0;

	(void)state;
	two_regions(&mem);
	assert_int_equal(guest_mem_map_iov(&mem, 0xff00, 0x200, iov, &cnt, 4), 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(iov[0].iov_len, 0x100);
	assert_int_equal(iov[1].iov_len, 0x100);
	/* a write through the iovecs lands where the gpa says */
	memset(iov[1].iov_base, 0xab, 1);
	assert_int_equal(*(uint8_t *)guest_mem_gpa_ptr(&mem, 0x10000, 1), 0xab);
	guest_mem_clear(&mem);
}

static void test_iov_refuses_unmapped_and_overflow(void **state)
{
	struct guest_mem mem;
	struct iovec iov[4];
	int cnt = 0;

	(void)state;
	two_regions(&mem);
	assert_int_equal(guest_mem_map_iov(&mem, 0x1ff00, 0x200, iov, &cnt, 4), -EFAULT);
	cnt = 0;
	assert_int_equal(guest_mem_map_iov(&mem, 0x100, UINT64_MAX, iov, &cnt, 4), -EFAULT);
	cnt = 0;
	assert_int_equal(guest_mem_map_iov(&mem, 0xff00, 0x200, iov, &cnt, 1), -ENOBUFS);
	guest_mem_clear(&mem);
}

static void test_overlap_refused_and_remove(void **state)
{
	struct guest_mem mem;
	int fd = memfd_create("g", MFD_CLOEXEC);

	(void)state;
	two_regions(&mem);
	assert_int_equal(ftruncate(fd, 0x10000), 0);
	assert_int_equal(guest_mem_add(&mem, fd, 0x8000, 0x1000, 0, 0), -EINVAL);
	assert_int_equal(guest_mem_add(&mem, fd, 0, 0, 0, 0), -EINVAL);
	assert_int_equal(guest_mem_add(&mem, fd, UINT64_MAX - 10, 0x1000, 0, 0), -EINVAL);
	close(fd);
	assert_int_equal(guest_mem_remove(&mem, 0, 0x10000), 0);
	assert_null(guest_mem_gpa_ptr(&mem, 0, 1));
	assert_non_null(guest_mem_gpa_ptr(&mem, 0x10000, 1));
	assert_int_equal(guest_mem_remove(&mem, 0, 0x10000), -ENOENT);
	guest_mem_clear(&mem);
}

/* A region that claims more than its file holds would fault with SIGBUS when touched. */
static void test_region_past_end_of_file(void **state)
{
	struct guest_mem mem = { 0 };
	int fd = memfd_create("g", MFD_CLOEXEC);

	(void)state;
	assert_int_equal(ftruncate(fd, 0x10000), 0);
	assert_int_equal(guest_mem_add(&mem, fd, 0, 0x20000, 0, 0), -EINVAL);
	assert_int_equal(guest_mem_add(&mem, fd, 0, 0x10000, 0, 0x1000), -EINVAL);
	assert_int_equal(guest_mem_add(&mem, fd, 0, 0xe000, 0, 0x1001), -EINVAL); /* misaligned */
	assert_int_equal(guest_mem_add(&mem, fd, 0, 0xe000, 0x10, 0x1000), -EINVAL);
	assert_int_equal(guest_mem_add(&mem, fd, 0, 0xf000, 0, 0x1000), 0);
	close(fd);
	guest_mem_clear(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpa_inside_and_at_edges),
		cmocka_unit_test(test_uva_translation),
		cmocka_unit_test(test_iov_split_across_regions),
		cmocka_unit_test(test_iov_refuses_unmapped_and_overflow),
		cmocka_unit_test(test_overlap_refused_and_remove),
		cmocka_unit_test(test_region_past_end_of_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
