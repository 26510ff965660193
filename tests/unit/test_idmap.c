/* Soft UID/GID translation: the rule grammar and its examples from the reference. */
#include "test_helpers.h"

#include <errno.h>
#include <string.h>

#include "fs/idmap.h"

static uint32_t host_of(const struct vfsd_idmap *m, uint32_t guest)
{
	uint32_t h = 0xdeadbeef;

	assert_int_equal(vfsd_idmap_to_host(m, guest, &h), 0);
	return h;
}

static void add_ok(struct vfsd_idmap *m, const char *spec)
{
	char err[256];

	assert_int_equal(vfsd_idmap_add(m, spec, err, sizeof(err)), 0);
}

/* The README's unprivileged example: every guest id squashed to 1001, host 1001 shown as 1000. */
static void test_squash_example(void **state)
{
	struct vfsd_idmap m = { 0 };

	(void)state;
	add_ok(&m, "squash-guest:0:1001:4294967295");
	add_ok(&m, "host:1001:1000:1");
	assert_int_equal(host_of(&m, 0), 1001);
	assert_int_equal(host_of(&m, 4294967294u), 1001);
	assert_int_equal(vfsd_idmap_to_guest(&m, 1001), 1000);
	assert_int_equal(vfsd_idmap_to_guest(&m, 1002), 1002); /* no rule: itself */
	vfsd_idmap_free(&m);
}

static void test_map_both_directions(void **state)
{
	struct vfsd_idmap m = { 0 };

	(void)state;
	add_ok(&m, "map:1000:2000:10");
	assert_int_equal(host_of(&m, 1000), 2000);
	assert_int_equal(host_of(&m, 1009), 2009);
	assert_int_equal(host_of(&m, 1010), 1010); /* half-open */
	assert_int_equal(host_of(&m, 999), 999);
	assert_int_equal(vfsd_idmap_to_guest(&m, 2005), 1005);
	assert_int_equal(vfsd_idmap_to_guest(&m, 1005), 1005);
	vfsd_idmap_free(&m);
	/* any separator that is not alphanumeric, '-' or '_'; the type in any case */
	add_ok(&m, "MAP/7/8/1");
	assert_int_equal(host_of(&m, 7), 8);
	vfsd_idmap_free(&m);
}

static void test_forbid_and_squash_host(void **state)
{
	struct vfsd_idmap m = { 0 };
	uint32_t h;

	(void)state;
	add_ok(&m, "forbid-guest:500:2");
	add_ok(&m, "squash-host:0:65534:1000");
	add_ok(&m, "guest:2000:3000:5");
	assert_int_equal(vfsd_idmap_to_host(&m, 500, &h), -EPERM);
	assert_int_equal(vfsd_idmap_to_host(&m, 501, &h), -EPERM);
	assert_int_equal(host_of(&m, 502), 502);
	assert_int_equal(host_of(&m, 2004), 3004);
	assert_int_equal(vfsd_idmap_to_guest(&m, 0), 65534);
	assert_int_equal(vfsd_idmap_to_guest(&m, 999), 65534);
	assert_int_equal(vfsd_idmap_to_guest(&m, 1000), 1000);
	assert_int_equal(vfsd_idmap_to_guest(&m, 3004), 3004); /* guest: rules are one-way */
	assert_int_equal(host_of(NULL, 42), 42);		   /* no map: identity */
	vfsd_idmap_free(&m);
}

static void test_errors(void **state)
{
	static const struct {
		const char *spec;
		int err;
		const char *msg;
	} bad[] = {
		{ "bogus:1:2:3", -EINVAL, "Invalid ID map prefix bogus" },
		{ "squash_guest:1:2:3", -EINVAL, "Invalid ID map prefix" },
		{ "map", -EINVAL, "Invalid ID map prefix" },
		{ "map:1:2", -EINVAL, "expected 3 elements, got 2 elements" },
		{ "forbid-guest:1:2:3", -EINVAL, "expected 2 elements, got 3 elements" },
		{ "map::1:2", -EINVAL, "Invalid value" },
		{ "map:1:2:-3", -EINVAL, "Invalid value -3" },
		{ "map:1:2:4294967296", -EINVAL, "Invalid value" },
		{ "guest:4294967295:0:2", -ERANGE, "Range overflow" },
		{ "guest:0:4294967295:2", -ERANGE, "Range overflow" },
	};
	struct vfsd_idmap m = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vfsd_idmap_add(&m, bad[i].spec, err, sizeof(err)), bad[i].err);
		assert_non_null(strstr(err, bad[i].msg));
	}
	add_ok(&m, "guest:10:100:10");
	assert_int_equal(vfsd_idmap_add(&m, "squash-guest:19:0:5", err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "intersects previously added entry"));
	add_ok(&m, "host:10:100:10"); /* the other direction: no conflict */
	vfsd_idmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_squash_example),
		cmocka_unit_test(test_map_both_directions),
		cmocka_unit_test(test_forbid_and_squash_host),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
