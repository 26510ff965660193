/* Shared set-up for unit tests: a guest memory made of memfd regions. */
#ifndef VFSD_TEST_HELPERS_H
#define VFSD_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost/guest_mem.h"

/* The VMM's address of guest-physical 0 in these tests. */
#define TEST_UVA_BASE 0x7f0000000000ull

/* Adds a region of size bytes at gpa backed by a fresh memfd. */
static inline void test_mem_add(struct guest_mem *mem, uint64_t gpa, uint64_t size)
{
	int fd = memfd_create("guest", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(guest_mem_add(mem, fd, gpa, size, TEST_UVA_BASE + gpa, 0), 0);
	close(fd);
}

#endif
