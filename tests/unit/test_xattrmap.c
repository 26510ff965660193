/* xattr name mapping (--xattrmap): the grammar, its errors and the documented examples. */
#include "test_helpers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/xattrmap.h"

static void parse_ok(struct vfsd_xattrmap *m, const char *spec)
{
	char err[256] = "";

	if (vfsd_xattrmap_parse(spec, m, err, sizeof(err)) != 0)
		fail_msg("'%s' refused: %s", spec, err);
}

/* The host name of a guest name, or the errno's negative as text ("-1" for EPERM...). */
static const char *host(const struct vfsd_xattrmap *m, const char *name)
{
	static char out[512];
	int r = vfsd_xattrmap_to_host(m, name, out, sizeof(out));

	if (r == -EPERM)
		return "EPERM";
	if (r == -ENOTSUP)
		return "ENOTSUP";
	if (r < 0)
		return "error";
	return out;
}

static const char *guest(const struct vfsd_xattrmap *m, const char *name)
{
	const char *g = vfsd_xattrmap_to_guest(m, name);

	return g ? g : "hidden";
}

static void test_prefix_client(void **state)
{
	struct vfsd_xattrmap m;

	(void)state;
	parse_ok(&m, ":prefix:client:trusted.:user.virtiofs.:");
	assert_string_equal(host(&m, "trusted.foo"), "user.virtiofs.trusted.foo");
	assert_string_equal(host(&m, "user.foo"), "EPERM"); /* no rule matches: refused */
	assert_string_equal(guest(&m, "user.virtiofs.trusted.foo"), "hidden"); /* no server rule */
	assert_false(m.terminated);
	vfsd_xattrmap_free(&m);
}

static void test_prefix_server_and_all(void **state)
{
	struct vfsd_xattrmap m;

	(void)state;
	parse_ok(&m, ":prefix:server::user.virtiofs.:");
	assert_string_equal(guest(&m, "user.virtiofs.trusted.foo"), "trusted.foo");
	assert_string_equal(guest(&m, "user.other"), "hidden");
	assert_string_equal(host(&m, "user.x"), "EPERM");
	vfsd_xattrmap_free(&m);

	parse_ok(&m, ":prefix:all:trusted.:user.virtiofs.:");
	assert_string_equal(host(&m, "trusted.foo"), "user.virtiofs.trusted.foo");
	assert_string_equal(guest(&m, "user.virtiofs.trusted.foo"), "trusted.foo");
	vfsd_xattrmap_free(&m);
}

static void test_ok_bad_unsupported(void **state)
{
	struct vfsd_xattrmap m;

	(void)state;
	parse_ok(&m, ":ok:client:user.:: :ok:server::security.: :bad:server::trusted.: "
		     ":unsupported:client:trusted.:: :ok:all:::");
	assert_true(m.terminated);
	assert_int_equal(m.n, 5);
	assert_string_equal(host(&m, "user.a"), "user.a");
	assert_string_equal(host(&m, "trusted.a"), "ENOTSUP");
	assert_string_equal(host(&m, "security.a"), "security.a"); /* the catch-all */
	assert_string_equal(guest(&m, "security.selinux"), "security.selinux");
	assert_string_equal(guest(&m, "trusted.x"), "hidden");
	assert_string_equal(guest(&m, "user.a"), "user.a");
	vfsd_xattrmap_free(&m);

	/* Hide and deny security.*, pass the rest. */
	parse_ok(&m, "/bad/all/security./security./ /ok/all///");
	assert_string_equal(host(&m, "security.capability"), "EPERM");
	assert_string_equal(guest(&m, "security.selinux"), "hidden");
	assert_string_equal(host(&m, "user.a"), "user.a");
	assert_string_equal(guest(&m, "user.a"), "user.a");
	vfsd_xattrmap_free(&m);
}

/* Two specs that must act the same on every name, in both directions. */
static void assert_same(const char *a, const char *b)
{
	static const char *const names[] = {
		"user.a", "trusted.a", "security.selinux", "security.capability",
		"user.virtiofs.a", "user.virtiofs.trusted.a", "user.virtiofs.user.virtiofs.x",
		"system.posix_acl_access", "", "trusted.", "user.virtiofs.",
	};
	struct vfsd_xattrmap ma, mb;
	char ha[512];

	parse_ok(&ma, a);
	parse_ok(&mb, b);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(ha, sizeof(ha), "%s", host(&ma, names[i]));
		if (strcmp(ha, host(&mb, names[i])) != 0)
			fail_msg("guest '%s': '%s' gives %s, '%s' gives %s", names[i], a, ha, b,
				 host(&mb, names[i]));
		snprintf(ha, sizeof(ha), "%s", guest(&ma, names[i]));
		if (strcmp(ha, guest(&mb, names[i])) != 0)
			fail_msg("host '%s': '%s' shows %s, '%s' shows %s", names[i], a, ha, b,
				 guest(&mb, names[i]));
	}
	vfsd_xattrmap_free(&ma);
	vfsd_xattrmap_free(&mb);
}

static void test_map_equivalences(void **state)
{
	struct vfsd_xattrmap m;

	(void)state;
	assert_same(":prefix:all::user.virtiofs.::bad:all:::", ":map::user.virtiofs.:");
	assert_same("/prefix/all/trusted./user.virtiofs./ /bad/server//trusted./ "
		    "/bad/client/user.virtiofs.// /ok/all///",
		    "/map/trusted./user.virtiofs./");
	parse_ok(&m, ":map::user.virtiofs.:");
	assert_string_equal(host(&m, "trusted.a"), "user.virtiofs.trusted.a");
	assert_string_equal(guest(&m, "user.virtiofs.trusted.a"), "trusted.a");
	assert_string_equal(guest(&m, "user.plain"), "hidden");
	vfsd_xattrmap_free(&m);
}

/* The SELinux recommendation: the guest's label stored as trusted.virtiofs.security.selinux. */
static void test_selinux_example(void **state)
{
	struct vfsd_xattrmap m;

	(void)state;
	parse_ok(&m, ":map:security.selinux:trusted.virtiofs.:");
	assert_int_equal(m.n, 3);
	assert_true(m.terminated);
	assert_string_equal(host(&m, "security.selinux"), "trusted.virtiofs.security.selinux");
	assert_string_equal(guest(&m, "trusted.virtiofs.security.selinux"), "security.selinux");
	assert_string_equal(guest(&m, "security.selinux"), "hidden"); /* the host's own label */
	assert_string_equal(host(&m, "trusted.virtiofs.x"), "EPERM"); /* not directly */
	assert_string_equal(host(&m, "user.a"), "user.a");
	assert_string_equal(guest(&m, "user.a"), "user.a");
	vfsd_xattrmap_free(&m);
}

static void test_whitespace_and_delimiters(void **state)
{
	struct vfsd_xattrmap m;

	(void)state;
	parse_ok(&m, "\n  :ok:client:user.::\n\t|prefix|server||x.|  \n");
	assert_int_equal(m.n, 2);
	assert_string_equal(guest(&m, "x.y"), "y");
	vfsd_xattrmap_free(&m);
	/* The delimiter is any character, even a letter. */
	parse_ok(&m, "xokxallxxx");
	assert_string_equal(host(&m, "anything"), "anything");
	vfsd_xattrmap_free(&m);
}

static void test_errors(void **state)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "", "no rules provided" },
		{ "  \n ", "no rules provided" },
		{ ":allow:all:::", "invalid type 'allow'" },
		{ ":ok:both:::", "invalid scope 'both'" },
		{ ":ok:all::", "rule 1 is incomplete" },
		{ ":ok", "rule 1 is incomplete" },
		{ ":ok:all::: :prefix:all:a:", "rule 2 is incomplete" },
		{ ":map:a:", "rule 1 is incomplete" },
		{ ":map:a:b:c: :ok:all:::", "must be the last" },
		{ ":map::p: :map::q:", "must be the last" },
	};
	struct vfsd_xattrmap m;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(vfsd_xattrmap_parse(bad[i].spec, &m, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("'%s': message '%s' lacks '%s'", bad[i].spec, err, bad[i].msg);
		assert_int_equal(m.n, 0);
	}
}

static void test_long_names(void **state)
{
	struct vfsd_xattrmap m;
	char name[300], out[64];

	(void)state;
	parse_ok(&m, ":prefix:all::user.virtiofs.:");
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(vfsd_xattrmap_to_host(&m, name, out, sizeof(out)), -ERANGE);
	vfsd_xattrmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_client),
		cmocka_unit_test(test_prefix_server_and_all),
		cmocka_unit_test(test_ok_bad_unsupported),
		cmocka_unit_test(test_map_equivalences),
		cmocka_unit_test(test_selinux_example),
		cmocka_unit_test(test_whitespace_and_delimiters),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
