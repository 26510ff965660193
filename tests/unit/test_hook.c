/* vfsd-hook's input: the stage names, the OCI state, config.json and the annotations → a plan. */
#include "test_helpers.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "ctl/proto.h"
#include "hook/hook.h"

/* Every test works on these; the teardown (and each parse helper) releases them. */
static struct hook_input in;
static struct hook_plan plan;
static char err[512];

static void release(void)
{
	hook_plan_free(&plan);
	hook_input_free(&in);
	memset(&plan, 0, sizeof(plan));
	memset(err, 0, sizeof(err));
}

static int teardown(void **state)
{
	(void)state;
	release();
	return 0;
}

/* The message of the last failure names what was wrong. */
static void has_phrase(const char *phrase)
{
	if (!strstr(err, phrase)) {
		print_error("error message '%s' lacks '%s'\n", err, phrase);
		fail();
	}
}

static int state_n(const char *buf, size_t len, bool poststop)
{
	release();
	memset(err, 0xa5, sizeof(err));
	return hook_state_parse(&in, buf, len, poststop, err, sizeof(err));
}

static int state(const char *json, bool poststop)
{
	return state_n(json, strlen(json), poststop);
}

static void state_ok(const char *json, bool poststop)
{
	if (state(json, poststop) != 0) {
		print_error("state refused: %s\n", err);
		fail();
	}
}

static void state_bad(const char *json, bool poststop, const char *phrase)
{
	assert_int_equal(state(json, poststop), -EINVAL);
	has_phrase(phrase);
}

static void state_bad_n(const char *buf, size_t len, bool poststop, const char *phrase)
{
	assert_int_equal(state_n(buf, len, poststop), -EINVAL);
	has_phrase(phrase);
}

/* A plain state (no annotations), then config.json over it. */
#define PLAIN_STATE                                                                                \
	"{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":7,\"bundle\":\"/" \
	"b\"}"

static int config_n(const char *state_json, const char *buf, size_t len)
{
	state_ok(state_json ? state_json : PLAIN_STATE, false);
	memset(err, 0xa5, sizeof(err));
	return hook_config_parse(&in, buf, len, err, sizeof(err));
}

static void config_ok(const char *state_json, const char *json)
{
	if (config_n(state_json, json, strlen(json)) != 0) {
		print_error("config.json refused: %s\n", err);
		fail();
	}
}

static void config_bad(const char *json, const char *phrase)
{
	assert_int_equal(config_n(NULL, json, strlen(json)), -EINVAL);
	has_phrase(phrase);
}

/* A state with these annotations (key, value, ..., NULL) through hook_plan_make. */
static int plan_of(const char *id, ...)
{
	struct json_object *st = json_object_new_object(), *a = json_object_new_object();
	const char *k, *s;
	char *json;
	va_list ap;
	int r;

	json_object_object_add(st, "ociVersion", json_object_new_string("1.0.2-dev"));
	json_object_object_add(st, "id", json_object_new_string(id));
	json_object_object_add(st, "status", json_object_new_string("creating"));
	json_object_object_add(st, "pid", json_object_new_int(4242));
	json_object_object_add(st, "bundle", json_object_new_string("/run/bundles/c1"));
	va_start(ap, id);
	while ((k = va_arg(ap, const char *)))
		json_object_object_add(a, k, json_object_new_string(va_arg(ap, const char *)));
	va_end(ap);
	json_object_object_add(st, "annotations", a);
	s = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN);
	json = strdup(s);
	json_object_put(st);
	assert_non_null(json);
	r = state(json, false);
	free(json);
	if (r != 0) {
		print_error("state refused: %s\n", err);
		fail();
	}
	memset(err, 0xa5, sizeof(err));
	return hook_plan_make(&in, &plan, err, sizeof(err));
}

#define PLAN_OK(...)                                                                               \
	do {                                                                                       \
		if (plan_of(__VA_ARGS__, NULL) != 0) {                                             \
			print_error("plan refused: %s\n", err);                                    \
			fail();                                                                    \
		}                                                                                  \
	} while (0)
#define PLAN_BAD(phrase, ...)                                                                      \
	do {                                                                                       \
		assert_int_equal(plan_of(__VA_ARGS__, NULL), -EINVAL);                             \
		has_phrase(phrase);                                                                \
	} while (0)

/* ---- stages --------------------------------------------------------------------------- */

static void test_stage_parse(void **unused)
{
	static const struct {
		const char *name;
		int stage;
	} good[] = {
		{ "createRuntime", HOOK_CREATE_RUNTIME },
		{ "prestart", HOOK_PRESTART },
		{ "poststart", HOOK_POSTSTART },
		{ "poststop", HOOK_POSTSTOP },
	};
	static const char *const junk[] = { "",		  "Prestart",	   "prestart ",	     "pre",
					    "poststop\n", "createruntime", "create-runtime", "stop",
					    "--help" };
	const char *why;

	(void)unused;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		why = "set";
		assert_int_equal(hook_stage_parse(good[i].name, &why), good[i].stage);
		assert_null(why);
		assert_string_equal(hook_stage_name((enum hook_stage)good[i].stage), good[i].name);
	}
	assert_string_equal(hook_stage_name((enum hook_stage)4), "?");
	assert_string_equal(hook_stage_name((enum hook_stage) - 1), "?");
	/* OCI stages that run in the container's namespaces: refused with the reason */
	assert_int_equal(hook_stage_parse("createContainer", &why), -1);
	assert_non_null(why);
	assert_non_null(strstr(why, "inside the container"));
	assert_int_equal(hook_stage_parse("startContainer", &why), -1);
	assert_non_null(strstr(why, "inside the container"));
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
		why = "set";
		assert_int_equal(hook_stage_parse(junk[i], &why), -1);
		assert_null(why);
	}
}

/* ---- the state on stdin --------------------------------------------------------------- */

static void test_state_engines(void **unused)
{
	(void)unused;
	/* crun: with its "root" (the state directory) and "rootfs" */
	state_ok(
	    "{\"ociVersion\":\"1.0.0\",\"id\":\"web-1\",\"pid\":4242,\"root\":\"/run/crun/web-1\","
	    "\"bundle\":\"/var/lib/web-1\",\"rootfs\":\"/var/lib/web-1/"
	    "rootfs\",\"status\":\"created\","
	    "\"annotations\":{\"io.vfsd.enable\":\"true\",\"run.oci.keep_original_groups\":\"1\"}}",
	    false);
	assert_string_equal(in.id, "web-1");
	assert_string_equal(in.bundle, "/var/lib/web-1");
	assert_string_equal(in.status, "created");
	assert_string_equal(in.root, "/run/crun/web-1");
	assert_int_equal(in.pid, 4242);
	assert_non_null(in.annotations);
	assert_int_equal(json_object_object_length(in.annotations), 2);
	assert_null(in.config);
	assert_null(in.root_path);

	/* Podman (conmon and crun or runc): a 64-hex id, a storage bundle, its own annotations */
	state_ok("{\"ociVersion\":\"1.0.2-dev\",\"id\":"
		 "\"3f4e2b1c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f\","
		 "\"status\":\"creating\",\"pid\":2480,"
		 "\"bundle\":\"/var/lib/containers/storage/overlay-containers/3f4e/userdata\","
		 "\"annotations\":{\"io.container.manager\":\"libpod\",\"io.podman.annotations."
		 "autoremove\":"
		 "\"FALSE\",\"org.opencontainers.image.stopSignal\":\"15\",\"io.vfsd.enable\":"
		 "\"true\"}}\n",
		 false);
	assert_int_equal(in.pid, 2480);
	assert_null(in.root);
	assert_string_equal(in.status, "creating");

	/* Kata's shim: no status, an empty ociVersion */
	state_ok("{\"ociVersion\":\"\",\"id\":\"7c1d\",\"pid\":913,"
		 "\"bundle\":\"/run/containerd/io.containerd.runtime.v2.task/k8s.io/7c1d\"}",
		 false);
	assert_null(in.status);
	assert_null(in.annotations);
	assert_int_equal(in.pid, 913);

	/* runc's poststop: "stopped" and no pid */
	state_ok("{\"ociVersion\":\"1.0.2-dev\",\"id\":\"cap-runc-2\",\"status\":\"stopped\","
		 "\"bundle\":\"/tmp/ocicap/b\",\"annotations\":{\"io.vfsd.enable\":\"true\"}}",
		 true);
	assert_int_equal(in.pid, 0);
	assert_string_equal(in.status, "stopped");
	/* white space around it, an empty status, unknown members: fine */
	state_ok(
	    " \r\n\t{\"id\":\"a\",\"bundle\":\"/\",\"pid\":1,\"status\":\"\",\"x\":[null,{}]} \n\t",
	    false);
	assert_string_equal(in.status, "");
	assert_string_equal(in.bundle, "/");
}

static void test_state_not_json(void **unused)
{
	static const char nul_after[] = "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1}\0";
	static const char nul_in_id[] = "{\"id\":\"a\0b\",\"bundle\":\"/b\",\"pid\":1}";

	(void)unused;
	state_bad_n("", 0, false, "the state on stdin is empty");
	state_bad_n("", 0, true, "the state on stdin is empty");
	state_bad("   \n", false, "malformed JSON");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1", false, "unexpected end");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pi", false, "malformed JSON");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1} x", false, "text after the object");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1}{}", false, "text after the object");
	state_bad("[{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1}]", false, "is not a JSON object");
	state_bad("null", false, "is not a JSON object");
	state_bad("42", false, "is not a JSON object");
	state_bad("\"id\"", false, "is not a JSON object");
	state_bad("true", false, "is not a JSON object");
	state_bad("{\"id\" \"a\"}", false, "malformed JSON");
	/* a NUL byte in the text, and one escaped in the id */
	state_bad_n(nul_after, sizeof(nul_after) - 1, false, "contains a NUL byte");
	state_bad_n(nul_in_id, sizeof(nul_in_id) - 1, true, "contains a NUL byte");
	state_bad("{\"id\":\"a\\u0000b\",\"bundle\":\"/b\",\"pid\":1}", false, "no \"id\" string");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\\u0000/etc\",\"pid\":1}", false,
		  "no absolute \"bundle\"");
	/* not UTF-8: a stray byte, an overlong '/', a cut sequence */
	state_bad("{\"id\":\"a\xff\",\"bundle\":\"/b\",\"pid\":1}", false, "is not UTF-8");
	state_bad("{\"id\":\"a\",\"bundle\":\"\xc0\xaf\",\"pid\":1}", false, "is not UTF-8");
	state_bad("{\"id\":\"a\xe2\x98\",\"bundle\":\"/b\",\"pid\":1}", false, "is not UTF-8");
	/* UTF-8 is fine */
	state_ok("{\"id\":\"J\xc3\xbcrgen\xe2\x98\x83\",\"bundle\":\"/b\",\"pid\":1}", false);
}

static void test_state_size_and_depth(void **unused)
{
	const char *obj = "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1}";
	size_t n = strlen(obj);
	char *big = malloc(HOOK_STATE_MAX + 1), deep[256];
	int len;

	(void)unused;
	assert_non_null(big);
	/* exactly HOOK_STATE_MAX bytes (padded with white space) passes, one more does not */
	memset(big, ' ', HOOK_STATE_MAX + 1);
	memcpy(big, obj, n);
	assert_int_equal(state_n(big, HOOK_STATE_MAX, false), 0);
	state_bad_n(big, HOOK_STATE_MAX + 1, false, "longer than 1048576 bytes");
	free(big);

	/* nested 20 deep: fine; 40 deep: refused */
	len = snprintf(deep, sizeof(deep),
		       "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"x\":%.20s%.20s}",
		       "[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]");
	assert_int_equal(state_n(deep, (size_t)len, false), 0);
	len = snprintf(deep, sizeof(deep), "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"x\":%s%s}",
		       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
		       "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	state_bad_n(deep, (size_t)len, false, "nesting too deep");
	len = snprintf(deep, sizeof(deep),
		       "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":%s}",
		       "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{"
		       "\"k\":{\"l\":{\"m\":{\"n\":{"
		       "\"o\":{\"p\":{\"q\":{\"r\":{\"s\":{\"t\":{\"u\":{\"v\":{\"w\":{\"x\":{"
		       "\"y\":{\"z\":{\"A\":{\"B\":{"
		       "\"C\":{\"D\":{\"E\":{\"F\":{\"G\":1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}");
	state_bad_n(deep, (size_t)len, false, "nesting too deep");
}

static void test_state_fields(void **unused)
{
	char id[1100], buf[1200];

	(void)unused;
	state_bad("{\"bundle\":\"/b\",\"pid\":1}", false, "no \"id\" string");
	state_bad("{\"id\":\"\",\"bundle\":\"/b\",\"pid\":1}", false, "no \"id\" string");
	state_bad("{\"id\":7,\"bundle\":\"/b\",\"pid\":1}", false, "no \"id\" string");
	state_bad("{\"id\":null,\"bundle\":\"/b\",\"pid\":1}", false, "no \"id\" string");
	state_bad("{\"id\":[\"a\"],\"bundle\":\"/b\",\"pid\":1}", true, "no \"id\" string");
	/* an id of 1024 bytes passes (hook_plan_make judges it as a sandbox id), 1025 do not */
	memset(id, 'i', sizeof(id));
	id[1024] = '\0';
	snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"bundle\":\"/b\",\"pid\":1}", id);
	state_ok(buf, false);
	assert_int_equal(strlen(in.id), 1024);
	id[1024] = 'i';
	id[1025] = '\0';
	snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"bundle\":\"/b\",\"pid\":1}", id);
	state_bad(buf, false, "no \"id\" string");

	state_bad("{\"id\":\"a\",\"pid\":1}", false, "no absolute \"bundle\" path");
	state_bad("{\"id\":\"a\",\"bundle\":\"b\",\"pid\":1}", false,
		  "no absolute \"bundle\" path");
	state_bad("{\"id\":\"a\",\"bundle\":\"./b\",\"pid\":1}", true,
		  "no absolute \"bundle\" path");
	state_bad("{\"id\":\"a\",\"bundle\":\"\",\"pid\":1}", false, "no absolute \"bundle\" path");
	state_bad("{\"id\":\"a\",\"bundle\":{},\"pid\":1}", false, "no absolute \"bundle\" path");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"status\":3}", false,
		  "\"status\" is not a string");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"status\":null}", false,
		  "\"status\" is not a string");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"root\":false}", false,
		  "\"root\" is not a string");
}

static void test_state_pid(void **unused)
{
	static const char *const bad[] = {
		"0",
		"-1",
		"-4242",
		"4194305",
		"2147483648",
		"9223372036854775807",
		"18446744073709551616",
		"99999999999999999999999",
		"\"42\"",
		"42.0",
		"4.2e1",
		"1e3",
		"true",
		"null",
		"[42]",
		"{}",
	};
	char buf[256];

	(void)unused;
	state_ok("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1}", false);
	assert_int_equal(in.pid, 1);
	state_ok("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":4194304}", false);
	assert_int_equal(in.pid, 4194304);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(buf, sizeof(buf), "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":%s}", bad[i]);
		assert_int_equal(state(buf, false), -EINVAL);
		/* 0 reads as "no process"; the rest as not a process id */
		has_phrase(strcmp(bad[i], "0") == 0 ? "has no \"pid\""
						    : "\"pid\" is not a process id");
		if (strcmp(bad[i], "0") != 0) {
			assert_int_equal(state(buf, true), -EINVAL);
			has_phrase("\"pid\" is not a process id");
		}
	}
	/* missing: only in poststop, where the process is gone */
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\"}", false, "has no \"pid\"");
	state_ok("{\"id\":\"a\",\"bundle\":\"/b\"}", true);
	assert_int_equal(in.pid, 0);
	state_ok("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":0}", true);
	assert_int_equal(in.pid, 0);
	state_ok("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":77}", true);
	assert_int_equal(in.pid, 77);
}

static void test_state_annotations(void **unused)
{
	(void)unused;
	state_ok("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{}}", false);
	assert_non_null(in.annotations);
	assert_int_equal(json_object_object_length(in.annotations), 0);
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":[]}", false,
		  "\"annotations\" is not an object");
	state_bad(
	    "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":\"io.vfsd.enable=true\"}",
	    false, "\"annotations\" is not an object");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":null}", false,
		  "\"annotations\" is not an object");
	state_bad(
	    "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{\"io.vfsd.enable\":true}}",
	    false, "annotation 'io.vfsd.enable' is not a string");
	state_bad(
	    "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{\"a\":\"1\",\"n\":2}}",
	    false, "the state: annotation 'n' is not a string");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{\"o\":{}}}", true,
		  "annotation 'o' is not a string");
	state_bad("{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{\"z\":null}}", false,
		  "annotation 'z' is not a string");
}

/* ---- config.json ---------------------------------------------------------------------- */

/* `crun spec` (1.8), root.path made relative as it is, plus annotations */
static const char crun_spec[] =
    "{\"ociVersion\":\"1.0.0\",\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},"
    "\"args\":[\"sh\"],\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/"
    "bin\","
    "\"TERM=xterm\"],\"cwd\":\"/"
    "\",\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\","
    "\"CAP_NET_BIND_SERVICE\"]},\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":"
    "1024}],"
    "\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":"
    "\"crun\","
    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"}],"
    "\"annotations\":{\"io.vfsd.enable\":\"true\",\"io.vfsd.options\":\"[\\\"--cache=auto\\\"]\"},"
    "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
    "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},{\"type\":"
    "\"uts\"},"
    "{\"type\":\"user\"},{\"type\":\"mount\"}],"
    "\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1},"
    "{\"containerID\":1,\"hostID\":100000,\"size\":65536}],"
    "\"gidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}],"
    "\"maskedPaths\":[\"/proc/acpi\"],\"readonlyPaths\":[\"/proc/bus\"]}}";

static void test_config_crun_spec(void **unused)
{
	(void)unused;
	config_ok(NULL, crun_spec);
	assert_non_null(in.config);
	assert_string_equal(in.root_path, "rootfs");
	assert_true(in.has_userns);
	assert_null(in.userns_path);
	assert_true(in.has_uid_map);
	assert_int_equal(in.map_host_uid, 1000);
	assert_null(in.cgroups_path);
	/* the state had no annotations: config.json's are used */
	assert_non_null(in.annotations);
	assert_string_equal(
	    json_object_get_string(json_object_object_get(in.annotations, "io.vfsd.enable")),
	    "true");
	assert_int_equal(hook_plan_make(&in, &plan, err, sizeof(err)), 0);
	assert_true(plan.enabled);
	assert_int_equal(plan.noptions, 1);
	assert_string_equal(plan.options[0], "--cache=auto");
}

static void test_config_root(void **unused)
{
	(void)unused;
	config_ok(NULL, "{\"root\":{\"path\":\"/var/lib/c1/rootfs\"}}");
	assert_string_equal(in.root_path, "/var/lib/c1/rootfs");
	config_ok(NULL, "{\"root\":{\"path\":\"rootfs\"}}");
	assert_string_equal(in.root_path, "rootfs");
	config_ok(NULL, "{\"root\":{\"readonly\":true}}");
	assert_null(in.root_path);
	config_ok(NULL, "{}");
	assert_null(in.root_path);
	assert_false(in.has_userns);
	assert_false(in.has_uid_map);
	assert_null(in.annotations);
	config_bad("{\"root\":{\"path\":\"\"}}", "\"root.path\" is not a path");
	config_bad("{\"root\":{\"path\":42}}", "\"root.path\" is not a path");
	config_bad("{\"root\":{\"path\":[\"/r\"]}}", "\"root.path\" is not a path");
	config_bad("{\"root\":{\"path\":\"/r\\u0000/etc\"}}", "\"root.path\" is not a path");
	config_bad("{\"root\":\"rootfs\"}", "\"root\" is not an object");
	config_bad("{\"root\":null}", "\"root\" is not an object");
}

static void test_config_not_json(void **unused)
{
	char *big;

	(void)unused;
	assert_int_equal(config_n(NULL, "", 0), -EINVAL);
	has_phrase("config.json");
	config_bad("[]", "config.json is not a JSON object");
	config_bad("null", "config.json is not a JSON object");
	config_bad("{\"root\":", "config.json: malformed JSON");
	config_bad("{} {}", "text after the object");
	config_bad("{\"x\":\"\xfe\"}", "config.json is not UTF-8");
	assert_int_equal(config_n(NULL, "{}\0", 3), -EINVAL);
	has_phrase("config.json contains a NUL byte");
	big = malloc(HOOK_CONFIG_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', HOOK_CONFIG_MAX + 1);
	big[0] = '{';
	big[HOOK_CONFIG_MAX - 1] = '}';
	assert_int_equal(config_n(NULL, big, HOOK_CONFIG_MAX), 0);
	assert_int_equal(config_n(NULL, big, HOOK_CONFIG_MAX + 1), -EINVAL);
	has_phrase("config.json is longer than 8388608 bytes");
	free(big);
	config_bad("{\"linux\":[]}", "\"linux\" is not an object");
}

static void test_config_namespaces(void **unused)
{
	(void)unused;
	config_ok(NULL, "{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}]}}");
	assert_false(in.has_userns);
	assert_null(in.userns_path);
	config_ok(NULL, "{\"linux\":{\"namespaces\":[]}}");
	assert_false(in.has_userns);
	config_ok(NULL, "{\"linux\":{\"namespaces\":[{\"type\":\"user\"},{\"type\":\"network\","
			"\"path\":\"/var/run/netns/cni-1\"}]}}");
	assert_true(in.has_userns);
	assert_null(in.userns_path);
	/* Kubernetes with user namespaces: the pod's namespace, by path */
	config_ok(NULL, "{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"user\","
			"\"path\":\"/proc/4242/ns/user\"}]}}");
	assert_true(in.has_userns);
	assert_string_equal(in.userns_path, "/proc/4242/ns/user");

	config_bad("{\"linux\":{\"namespaces\":{\"type\":\"user\"}}}",
		   "\"linux.namespaces\" is not an array");
	config_bad("{\"linux\":{\"namespaces\":\"user\"}}", "\"linux.namespaces\" is not an array");
	config_bad("{\"linux\":{\"namespaces\":[\"user\"]}}",
		   "\"linux.namespaces\"[0] is not a namespace");
	config_bad("{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},null]}}",
		   "\"linux.namespaces\"[1] is not a namespace");
	config_bad("{\"linux\":{\"namespaces\":[{\"path\":\"/proc/1/ns/user\"}]}}",
		   "\"linux.namespaces\"[0] is not a namespace");
	config_bad("{\"linux\":{\"namespaces\":[{\"type\":7}]}}", "[0] is not a namespace");
	config_bad("{\"linux\":{\"namespaces\":[{\"type\":\"user\",\"path\":1}]}}",
		   "[0] is not a namespace");
	config_bad("{\"linux\":{\"namespaces\":[{\"type\":\"user\",\"path\":\"/p\\u0000q\"}]}}",
		   "[0] is not a namespace");
	config_bad(
	    "{\"linux\":{\"namespaces\":[{\"type\":\"userxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]}}",
	    "[0] is not a namespace");
	config_bad("{\"linux\":{\"namespaces\":[[{\"type\":\"user\"}]]}}",
		   "[0] is not a namespace");
}

static void test_config_uid_mappings(void **unused)
{
	static const char *const bad[] = {
		"{\"containerID\":0,\"hostID\":1000}",
		"{\"hostID\":1000,\"size\":1}",
		"{\"containerID\":0,\"size\":1}",
		"{\"containerID\":0,\"hostID\":1000,\"size\":0}",
		"{\"containerID\":0,\"hostID\":-1,\"size\":1}",
		"{\"containerID\":-1,\"hostID\":1000,\"size\":1}",
		"{\"containerID\":0,\"hostID\":1000,\"size\":-5}",
		"{\"containerID\":0,\"hostID\":4294967296,\"size\":1}",
		"{\"containerID\":4294967296,\"hostID\":0,\"size\":1}",
		"{\"containerID\":0,\"hostID\":0,\"size\":4294967296}",
		"{\"containerID\":0,\"hostID\":99999999999999999999999,\"size\":1}",
		"{\"containerID\":0,\"hostID\":18446744073709551615,\"size\":1}",
		"{\"containerID\":\"0\",\"hostID\":1000,\"size\":1}",
		"{\"containerID\":0,\"hostID\":1000.5,\"size\":1}",
		"{\"containerID\":0,\"hostID\":null,\"size\":1}",
		"[0,1000,1]",
		"\"0:1000:1\"",
		"null",
	};
	char buf[256];

	(void)unused;
	config_ok(NULL, "{\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":100000,"
			"\"size\":65536}]}}");
	assert_true(in.has_uid_map);
	assert_int_equal(in.map_host_uid, 100000);
	config_ok(NULL, "{\"linux\":{\"uidMappings\":[{\"containerID\":1,\"hostID\":100000,"
			"\"size\":65535},{\"size\":1,\"hostID\":4294967295,\"containerID\":0}]}}");
	assert_true(in.has_uid_map);
	assert_int_equal(in.map_host_uid, 4294967295u);
	/* mappings without the container's root: no host uid for it */
	config_ok(NULL, "{\"linux\":{\"uidMappings\":[{\"containerID\":1000,\"hostID\":1000,"
			"\"size\":1}]}}");
	assert_false(in.has_uid_map);
	config_ok(NULL, "{\"linux\":{\"uidMappings\":[]}}");
	assert_false(in.has_uid_map);
	config_ok(NULL, "{\"linux\":{\"uidMappings\":[{\"containerID\":4294967295,\"hostID\":0,"
			"\"size\":4294967295}]}}");
	assert_false(in.has_uid_map);

	config_bad("{\"linux\":{\"uidMappings\":{}}}", "\"linux.uidMappings\" is not an array");
	config_bad("{\"linux\":{\"uidMappings\":\"0 1000 1\"}}",
		   "\"linux.uidMappings\" is not an array");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(buf, sizeof(buf),
			 "{\"linux\":{\"uidMappings\":[{\"containerID\":1,\"hostID\":2,\"size\":3},"
			 "%s]}}",
			 bad[i]);
		config_bad(buf, "\"linux.uidMappings\"[1] is not a mapping");
	}
}

static void test_config_cgroups_path(void **unused)
{
	(void)unused;
	config_ok(NULL, "{\"linux\":{\"cgroupsPath\":\"/kubepods/burstable/pod1/c1\"}}");
	assert_string_equal(in.cgroups_path, "/kubepods/burstable/pod1/c1");
	config_ok(NULL, "{\"linux\":{\"cgroupsPath\":\"machine.slice:libpod:3f4e\"}}");
	assert_string_equal(in.cgroups_path, "machine.slice:libpod:3f4e");
	config_ok(NULL, "{\"linux\":{}}");
	assert_null(in.cgroups_path);
	config_bad("{\"linux\":{\"cgroupsPath\":5}}", "\"linux.cgroupsPath\" is not a string");
	config_bad("{\"linux\":{\"cgroupsPath\":null}}", "\"linux.cgroupsPath\" is not a string");
	config_bad("{\"linux\":{\"cgroupsPath\":[\"/a\"]}}",
		   "\"linux.cgroupsPath\" is not a string");
	config_bad("{\"linux\":{\"cgroupsPath\":\"/a\\u0000b\"}}",
		   "\"linux.cgroupsPath\" is not a string");
}

static void test_config_annotations(void **unused)
{
	static const char with[] =
	    "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{\"from\":\"state\"}}";
	static const char empty[] = "{\"id\":\"a\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{}}";
	struct json_object *v;

	(void)unused;
	/* the state has none: config.json's */
	config_ok(NULL, "{\"annotations\":{\"from\":\"config\"}}");
	assert_true(json_object_object_get_ex(in.annotations, "from", &v));
	assert_string_equal(json_object_get_string(v), "config");
	/* both: the state's over config.json's, and config.json's the state lacks */
	config_ok(with, "{\"annotations\":{\"from\":\"config\",\"only\":\"config\"}}");
	assert_true(json_object_object_get_ex(in.annotations, "from", &v));
	assert_string_equal(json_object_get_string(v), "state");
	assert_true(json_object_object_get_ex(in.annotations, "only", &v));
	assert_string_equal(json_object_get_string(v), "config");
	config_ok(empty, "{\"annotations\":{\"from\":\"config\"}}");
	assert_int_equal(json_object_object_length(in.annotations), 1);
	config_ok(with, "{}");
	assert_true(json_object_object_get_ex(in.annotations, "from", &v));
	config_ok(NULL, "{\"annotations\":{}}");
	assert_non_null(in.annotations);
	/* config.json's are checked even when the state's are used */
	config_bad("{\"annotations\":{\"k\":1}}", "config.json: annotation 'k' is not a string");
	assert_int_equal(config_n(with, "{\"annotations\":{\"k\":[]}}", 24), -EINVAL);
	has_phrase("config.json: annotation 'k' is not a string");
	config_bad("{\"annotations\":[\"io.vfsd.enable=true\"]}",
		   "\"annotations\" is not an object");
	config_bad("{\"annotations\":null}", "\"annotations\" is not an object");
}

/* ---- annotations → plan --------------------------------------------------------------- */

static void test_plan_enable(void **unused)
{
	static const char *const bad[] = { "TRUE", "True", "1", "yes", "on", "", " true", "true " };

	(void)unused;
	PLAN_OK("c1");
	assert_false(plan.enabled);
	assert_null(plan.options_json);
	PLAN_OK("c1", "io.vfsd.enable", "false");
	assert_false(plan.enabled);
	/* disabled: the rest is not read */
	PLAN_OK("c1", "io.vfsd.enable", "false", "io.vfsd.share", "x", "io.vfsd.options", "[");
	assert_false(plan.enabled);
	/* but a misspelt io.vfsd.* key is refused even then: io.vfsd.enabled=true would
	 * otherwise leave the container without its daemon, without a word */
	PLAN_BAD("unknown annotation 'io.vfsd.enabled'", "c1", "io.vfsd.enabled", "true");
	PLAN_BAD("unknown annotation 'io.vfsd.shrae'", "c1", "io.vfsd.enable", "false",
		 "io.vfsd.shrae", "/x");
	PLAN_OK("c1", "io.vfsd.enable", "true");
	assert_true(plan.enabled);
	assert_int_equal(plan.ctype, HOOK_STANDALONE);
	assert_string_equal(plan.sandbox, "c1");
	assert_string_equal(plan.control_socket, HOOK_CONTROL_SOCKET);
	assert_null(plan.share);
	assert_null(plan.socket_path);
	assert_null(plan.cgroup_mode);
	assert_int_equal(plan.noptions, 0);
	assert_int_equal(plan.nlabels, 0);
	assert_null(plan.options_json);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		PLAN_BAD("io.vfsd.enable must be \"true\" or \"false\"", "c1", "io.vfsd.enable",
			 bad[i]);
		assert_false(plan.enabled);
	}
	/* no annotations at all (neither the state nor config.json) */
	state_ok(PLAIN_STATE, false);
	assert_int_equal(hook_plan_make(&in, &plan, err, sizeof(err)), 0);
	assert_false(plan.enabled);
}

static void test_plan_unknown_key(void **unused)
{
	(void)unused;
	PLAN_BAD("unknown annotation 'io.vfsd.shrae'", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.shrae", "/srv");
	assert_false(plan.enabled);
	PLAN_BAD("unknown annotation 'io.vfsd.'", "c1", "io.vfsd.enable", "true", "io.vfsd.", "");
	PLAN_BAD("unknown annotation 'io.vfsd.Enable'", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.Enable", "true");
	PLAN_BAD("docs/hook.md", "c1", "io.vfsd.enable", "true", "io.vfsd.options.x", "1");
	/* other prefixes are none of the hook's business */
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsdx.share", "x", "io.vfsd", "x",
		"org.example.io.vfsd.share", "x");
	assert_true(plan.enabled);
	assert_null(plan.share);
}

static void test_plan_containerd(void **unused)
{
	(void)unused;
	PLAN_OK("5c3f9a", "io.vfsd.enable", "true", "io.kubernetes.cri.container-type", "sandbox",
		"io.kubernetes.cri.sandbox-id", "5c3f9a", "io.kubernetes.cri.sandbox-name", "web-0",
		"io.kubernetes.cri.sandbox-namespace", "default", "io.kubernetes.cri.sandbox-uid",
		"0b2c6c1e-3c58-4f0b-9a7e-5b8d9c0e1f2a", "io.kubernetes.cri.sandbox-log-directory",
		"/var/log/pods/default_web-0_0b2c");
	assert_true(plan.enabled);
	assert_int_equal(plan.ctype, HOOK_SANDBOX);
	assert_string_equal(plan.sandbox, "5c3f9a");
	assert_int_equal(plan.nlabels, 3);
	assert_string_equal(plan.label_names[0], "cri_name");
	assert_string_equal(plan.label_values[0], "web-0");
	assert_string_equal(plan.label_names[1], "cri_namespace");
	assert_string_equal(plan.label_values[1], "default");
	assert_string_equal(plan.label_names[2], "cri_uid");
	assert_string_equal(plan.label_values[2], "0b2c6c1e-3c58-4f0b-9a7e-5b8d9c0e1f2a");

	/* an application container: its pod's sandbox, not its own id */
	PLAN_OK("a1b2c3", "io.vfsd.enable", "true", "io.kubernetes.cri.container-type", "container",
		"io.kubernetes.cri.sandbox-id", "5c3f9a", "io.kubernetes.cri.container-name",
		"nginx", "io.kubernetes.cri.image-name", "docker.io/library/nginx:latest",
		"io.kubernetes.cri.sandbox-name", "web-0", "io.kubernetes.cri.sandbox-namespace",
		"default");
	assert_int_equal(plan.ctype, HOOK_CONTAINER);
	assert_string_equal(plan.sandbox, "5c3f9a");
	assert_int_equal(plan.nlabels, 2);
	assert_string_equal(plan.label_names[1], "cri_namespace");

	/* a sandbox without a sandbox id annotation is its own */
	PLAN_OK("5c3f9a", "io.vfsd.enable", "true", "io.kubernetes.cri.container-type", "sandbox");
	assert_int_equal(plan.ctype, HOOK_SANDBOX);
	assert_string_equal(plan.sandbox, "5c3f9a");
	/* a sandbox id and no type: one of its containers */
	PLAN_OK("a1b2c3", "io.vfsd.enable", "true", "io.kubernetes.cri.sandbox-id", "5c3f9a");
	assert_int_equal(plan.ctype, HOOK_CONTAINER);
	assert_string_equal(plan.sandbox, "5c3f9a");
	/* an empty one counts as absent */
	PLAN_OK("a1b2c3", "io.vfsd.enable", "true", "io.kubernetes.cri.sandbox-id", "",
		"io.kubernetes.cri.container-type", "");
	assert_int_equal(plan.ctype, HOOK_STANDALONE);
	assert_string_equal(plan.sandbox, "a1b2c3");

	PLAN_BAD("an application container with no sandbox id annotation", "a1b2c3",
		 "io.vfsd.enable", "true", "io.kubernetes.cri.container-type", "container");
	PLAN_BAD("io.kubernetes.cri.sandbox-id or io.kubernetes.cri-o.SandboxID", "a1b2c3",
		 "io.vfsd.enable", "true", "io.kubernetes.cri.container-type", "container",
		 "io.kubernetes.cri.sandbox-id", "");
	PLAN_BAD("container type 'podsandbox' is neither \"sandbox\" nor \"container\"", "a1",
		 "io.vfsd.enable", "true", "io.kubernetes.cri.container-type", "podsandbox",
		 "io.kubernetes.cri.sandbox-id", "5c3f9a");
	PLAN_BAD("neither", "a1", "io.vfsd.enable", "true", "io.kubernetes.cri.container-type",
		 "Sandbox");
}

static void test_plan_crio(void **unused)
{
	(void)unused;
	/* CRI-O's own keys, and the kubelet's labels it copies into the annotations */
	PLAN_OK("9f8e7d", "io.vfsd.enable", "true", "io.kubernetes.cri-o.ContainerType", "sandbox",
		"io.kubernetes.cri-o.SandboxID", "9f8e7d", "io.kubernetes.cri-o.KubeName", "web-0",
		"io.kubernetes.cri-o.Namespace", "prod", "io.kubernetes.pod.uid", "uid-1",
		"io.kubernetes.pod.name", "web-0-kubelet", "io.kubernetes.pod.namespace",
		"prod-kubelet", "io.kubernetes.cri-o.Labels", "{\"app\":\"web\"}");
	assert_int_equal(plan.ctype, HOOK_SANDBOX);
	assert_string_equal(plan.sandbox, "9f8e7d");
	assert_int_equal(plan.nlabels, 3);
	assert_string_equal(plan.label_values[0], "web-0");
	assert_string_equal(plan.label_values[1], "prod");
	assert_string_equal(plan.label_values[2], "uid-1");

	PLAN_OK("c0ffee", "io.vfsd.enable", "true", "io.kubernetes.cri-o.ContainerType",
		"container", "io.kubernetes.cri-o.SandboxID", "9f8e7d", "io.kubernetes.pod.name",
		"web-0", "io.kubernetes.pod.namespace", "prod");
	assert_int_equal(plan.ctype, HOOK_CONTAINER);
	assert_string_equal(plan.sandbox, "9f8e7d");
	assert_int_equal(plan.nlabels, 2);
	assert_string_equal(plan.label_names[0], "cri_name");
	assert_string_equal(plan.label_values[0], "web-0");
	assert_string_equal(plan.label_names[1], "cri_namespace");
	assert_string_equal(plan.label_values[1], "prod");

	/* containerd's keys come first; an empty value gives way to the next */
	PLAN_OK("c0ffee", "io.vfsd.enable", "true", "io.kubernetes.cri.container-type", "",
		"io.kubernetes.cri-o.ContainerType", "container", "io.kubernetes.cri.sandbox-id",
		"from-containerd", "io.kubernetes.cri-o.SandboxID", "from-crio",
		"io.kubernetes.cri.sandbox-uid", "", "io.kubernetes.pod.uid", "kubelet-uid",
		"io.kubernetes.cri.sandbox-name", "ctrd", "io.kubernetes.cri-o.KubeName", "crio");
	assert_int_equal(plan.ctype, HOOK_CONTAINER);
	assert_string_equal(plan.sandbox, "from-containerd");
	assert_int_equal(plan.nlabels, 2);
	assert_string_equal(plan.label_names[0], "cri_name");
	assert_string_equal(plan.label_values[0], "ctrd");
	assert_string_equal(plan.label_names[1], "cri_uid");
	assert_string_equal(plan.label_values[1], "kubelet-uid");

	PLAN_BAD("no sandbox id annotation", "c0ffee", "io.vfsd.enable", "true",
		 "io.kubernetes.cri-o.ContainerType", "container");
}

static void test_plan_labels_long(void **unused)
{
	char v[CTL_LABEL_MAX + 2];

	(void)unused;
	memset(v, 'n', sizeof(v) - 2);
	v[CTL_LABEL_MAX] = '\0';
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.kubernetes.pod.name", v);
	assert_int_equal(strlen(plan.label_values[0]), CTL_LABEL_MAX);
	v[CTL_LABEL_MAX] = 'n';
	v[CTL_LABEL_MAX + 1] = '\0';
	PLAN_BAD("the pod's cri_name is longer than 1024 bytes", "c1", "io.vfsd.enable", "true",
		 "io.kubernetes.pod.name", v);
	PLAN_BAD("the pod's cri_uid is longer", "c1", "io.vfsd.enable", "true",
		 "io.kubernetes.cri.sandbox-uid", v);
}

static void test_plan_sandbox_id(void **unused)
{
	char id[CTL_SANDBOX_MAX + 2];

	(void)unused;
	memset(id, 'a', sizeof(id));
	id[CTL_SANDBOX_MAX] = '\0';
	PLAN_OK(id, "io.vfsd.enable", "true");
	assert_string_equal(plan.sandbox, id);
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.kubernetes.cri.sandbox-id", id);
	assert_string_equal(plan.sandbox, id);
	id[CTL_SANDBOX_MAX] = 'a';
	id[CTL_SANDBOX_MAX + 1] = '\0';
	PLAN_BAD("is not 1 to 128 of [A-Za-z0-9._-]", id, "io.vfsd.enable", "true");
	PLAN_BAD("is not 1 to 128 of", "c1", "io.vfsd.enable", "true",
		 "io.kubernetes.cri.sandbox-id", id);
	PLAN_BAD("sandbox id '../etc'", "c1", "io.vfsd.enable", "true",
		 "io.kubernetes.cri.sandbox-id", "../etc");
	PLAN_BAD("sandbox id 'a/b'", "a/b", "io.vfsd.enable", "true");
	PLAN_BAD("sandbox id '-rf'", "-rf", "io.vfsd.enable", "true",
		 "io.kubernetes.cri.container-type", "sandbox");
	PLAN_BAD("sandbox id '.hidden'", "c1", "io.vfsd.enable", "true",
		 "io.kubernetes.cri-o.SandboxID", ".hidden");
	PLAN_BAD("not starting with '.' or '-'", "c1", "io.vfsd.enable", "true",
		 "io.kubernetes.cri.sandbox-id", "a b");
	PLAN_BAD("not starting with '.' or '-'", "c1", "io.vfsd.enable", "true",
		 "io.kubernetes.cri.sandbox-id", "J\xc3\xbcrgen");
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.kubernetes.cri.sandbox-id", "A.b_c-9");
	assert_string_equal(plan.sandbox, "A.b_c-9");
}

static void test_plan_options(void **unused)
{
	char many[64 * 5 + 16];
	size_t n = 0;

	(void)unused;
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.options",
		"[\"--cache=auto\", \"--xattr\", \"\", \"--log-level=J\\u00fcrgen\"]");
	assert_int_equal(plan.noptions, 4);
	assert_string_equal(plan.options[0], "--cache=auto");
	assert_string_equal(plan.options[1], "--xattr");
	assert_string_equal(plan.options[2], "");
	assert_string_equal(plan.options[3], "--log-level=J\xc3\xbcrgen");
	assert_non_null(plan.options_json);
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.options", " [ ] ");
	assert_int_equal(plan.noptions, 0);

	PLAN_BAD("io.vfsd.options (a JSON array of vfsd options) is not a JSON array", "c1",
		 "io.vfsd.enable", "true", "io.vfsd.options", "\"--xattr\"");
	PLAN_BAD("is not a JSON array", "c1", "io.vfsd.enable", "true", "io.vfsd.options",
		 "{\"cache\":\"auto\"}");
	PLAN_BAD("is not a JSON array", "c1", "io.vfsd.enable", "true", "io.vfsd.options", "null");
	PLAN_BAD("io.vfsd.options (a JSON array of vfsd options): malformed JSON", "c1",
		 "io.vfsd.enable", "true", "io.vfsd.options", "--cache=auto --xattr");
	PLAN_BAD("malformed JSON", "c1", "io.vfsd.enable", "true", "io.vfsd.options", "");
	PLAN_BAD("malformed JSON", "c1", "io.vfsd.enable", "true", "io.vfsd.options",
		 "[\"--xattr\",");
	PLAN_BAD("text after the object", "c1", "io.vfsd.enable", "true", "io.vfsd.options",
		 "[\"--xattr\"] [\"-x\"]");
	PLAN_BAD("nesting too deep", "c1", "io.vfsd.enable", "true", "io.vfsd.options",
		 "[[[[[\"x\"]]]]]");
	PLAN_BAD("io.vfsd.options[1] is not a string", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.options", "[\"--xattr\", 1]");
	PLAN_BAD("io.vfsd.options[0] is not a string", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.options", "[null]");
	PLAN_BAD("io.vfsd.options[0] is not a string", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.options", "[[\"--xattr\"]]");
	PLAN_BAD("io.vfsd.options[0] is not a string", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.options", "[\"--shared-dir=/\\u0000/etc\"]");

	/* 64 entries: fine; 65: refused */
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%c\"-x\"", i ? ',' : '[');
	snprintf(many + n, sizeof(many) - n, "]");
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.options", many);
	assert_int_equal(plan.noptions, HOOK_OPTIONS_MAX);
	snprintf(many + n, sizeof(many) - n, ",\"-x\"]");
	PLAN_BAD("io.vfsd.options has more than 64 entries", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.options", many);
}

static void test_plan_paths(void **unused)
{
	char path[4200];

	(void)unused;
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.share", "/srv/share", "io.vfsd.socket",
		"/run/vfsd/c1.sock", "io.vfsd.control-socket", "/run/user/1000/vfsd/control.sock");
	assert_string_equal(plan.share, "/srv/share");
	assert_string_equal(plan.socket_path, "/run/vfsd/c1.sock");
	assert_string_equal(plan.control_socket, "/run/user/1000/vfsd/control.sock");

	PLAN_BAD(
	    "annotation io.vfsd.share must be an absolute path shorter than 4096 bytes, not 'srv'",
	    "c1", "io.vfsd.enable", "true", "io.vfsd.share", "srv");
	PLAN_BAD("io.vfsd.share must be an absolute path", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.share", "");
	PLAN_BAD("io.vfsd.socket must be an absolute path shorter than 108 bytes", "c1",
		 "io.vfsd.enable", "true", "io.vfsd.socket", "c1.sock");
	PLAN_BAD("io.vfsd.control-socket must be an absolute path shorter than 108 bytes", "c1",
		 "io.vfsd.enable", "true", "io.vfsd.control-socket", "./control.sock");

	/* a socket's path has to fit sun_path: 107 bytes and its NUL */
	memset(path, 's', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.socket", path, "io.vfsd.control-socket",
		path);
	assert_int_equal(strlen(plan.socket_path), 107);
	assert_int_equal(strlen(plan.control_socket), 107);
	path[107] = 's';
	path[108] = '\0';
	PLAN_BAD("io.vfsd.socket must be an absolute path shorter than 108 bytes", "c1",
		 "io.vfsd.enable", "true", "io.vfsd.socket", path);
	PLAN_BAD("io.vfsd.control-socket must be an absolute path shorter than 108 bytes", "c1",
		 "io.vfsd.enable", "true", "io.vfsd.control-socket", path);
	path[108] = 's';
	path[4095] = '\0';
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.share", path);
	assert_int_equal(strlen(plan.share), 4095);
	path[4095] = 's';
	path[4096] = '\0';
	PLAN_BAD("io.vfsd.share must be an absolute path shorter than 4096 bytes", "c1",
		 "io.vfsd.enable", "true", "io.vfsd.share", path);
}

/* A value the hook reads but cannot use (a NUL byte, past 64 KiB) is refused, not ignored:
 * taken for absent, it would share the rootfs, use another socket or sandbox. */
static void test_plan_unusable_values(void **unused)
{
	static const struct {
		const char *annotations, *phrase;
	} bad[] = {
		{ "\"io.vfsd.enable\":\"true\\u0000\"",
		  "annotation io.vfsd.enable has a NUL byte" },
		{ "\"io.vfsd.enable\":\"false\\u0000x\"", "io.vfsd.enable has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.vfsd.share\":\"/srv/share\\u0000/../etc\"",
		  "annotation io.vfsd.share has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.vfsd.socket\":\"/run/a\\u0000.sock\"",
		  "annotation io.vfsd.socket has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.vfsd.control-socket\":\"\\u0000\"",
		  "annotation io.vfsd.control-socket has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.vfsd.cgroup\":\"/sys/fs/cgroup/a\\u0000\"",
		  "annotation io.vfsd.cgroup has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.vfsd.options\":\"[]\\u0000\"",
		  "annotation io.vfsd.options has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.kubernetes.cri.container-type\":"
		  "\"sandbox\\u0000\","
		  "\"io.kubernetes.cri.sandbox-id\":\"other\"",
		  "annotation io.kubernetes.cri.container-type has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.kubernetes.cri-o.SandboxID\":\"\\u0000\","
		  "\"io.kubernetes.cri.container-type\":\"sandbox\"",
		  "annotation io.kubernetes.cri-o.SandboxID has a NUL byte" },
		{ "\"io.vfsd.enable\":\"true\",\"io.kubernetes.pod.uid\":\"u\\u0000\"",
		  "annotation io.kubernetes.pod.uid has a NUL byte" },
	};
	char buf[512], *big;
	size_t n;

	(void)unused;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(buf, sizeof(buf),
			 "{\"id\":\"c1\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{%s}}",
			 bad[i].annotations);
		state_ok(buf, false);
		assert_int_equal(hook_plan_make(&in, &plan, err, sizeof(err)), -EINVAL);
		has_phrase(bad[i].phrase);
	}
	/* others' annotations may hold anything */
	state_ok("{\"id\":\"c1\",\"bundle\":\"/b\",\"pid\":1,\"annotations\":{\"io.vfsd.enable\":"
		 "\"true\",\"org.example.blob\":\"a\\u0000b\"}}",
		 false);
	assert_int_equal(hook_plan_make(&in, &plan, err, sizeof(err)), 0);
	assert_true(plan.enabled);
	/* past 64 KiB: io.vfsd.share refused, someone else's annotation (CRI-O's copy of the
	 * pod's annotations can be that long) fine */
	big = malloc(70000 + 256);
	assert_non_null(big);
	for (int k = 0; k < 2; k++) {
		n = (size_t)snprintf(big, 256,
				     "{\"id\":\"c1\",\"bundle\":\"/b\",\"pid\":1,"
				     "\"annotations\":{\"io.vfsd.enable\":\"true\",\"%s\":\"/",
				     k ? "io.kubernetes.cri-o.Annotations" : "io.vfsd.share");
		memset(big + n, 's', 70000);
		n += 70000;
		n += (size_t)snprintf(big + n, 256, "\"}}");
		assert_int_equal(state_n(big, n, false), 0);
		assert_int_equal(hook_plan_make(&in, &plan, err, sizeof(err)), k ? 0 : -EINVAL);
		if (!k)
			has_phrase("annotation io.vfsd.share has a NUL byte or is longer than "
				   "65536 bytes");
	}
	free(big);
}

static void test_plan_cgroup(void **unused)
{
	(void)unused;
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.cgroup", "none");
	assert_string_equal(plan.cgroup_mode, "none");
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.cgroup", "container");
	assert_null(plan.cgroup_mode);
	PLAN_OK("c1", "io.vfsd.enable", "true", "io.vfsd.cgroup", "/sys/fs/cgroup/vfsd/c1");
	assert_string_equal(plan.cgroup_mode, "/sys/fs/cgroup/vfsd/c1");
	PLAN_BAD("annotation io.vfsd.cgroup must be an absolute path shorter than 4096 bytes, not "
		 "'vfsd/c1'",
		 "c1", "io.vfsd.enable", "true", "io.vfsd.cgroup", "vfsd/c1");
	PLAN_BAD("io.vfsd.cgroup must be an absolute path", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.cgroup", "None");
	PLAN_BAD("io.vfsd.cgroup must be an absolute path", "c1", "io.vfsd.enable", "true",
		 "io.vfsd.cgroup", "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_stage_parse, teardown),
		cmocka_unit_test_teardown(test_state_engines, teardown),
		cmocka_unit_test_teardown(test_state_not_json, teardown),
		cmocka_unit_test_teardown(test_state_size_and_depth, teardown),
		cmocka_unit_test_teardown(test_state_fields, teardown),
		cmocka_unit_test_teardown(test_state_pid, teardown),
		cmocka_unit_test_teardown(test_state_annotations, teardown),
		cmocka_unit_test_teardown(test_config_crun_spec, teardown),
		cmocka_unit_test_teardown(test_config_root, teardown),
		cmocka_unit_test_teardown(test_config_not_json, teardown),
		cmocka_unit_test_teardown(test_config_namespaces, teardown),
		cmocka_unit_test_teardown(test_config_uid_mappings, teardown),
		cmocka_unit_test_teardown(test_config_cgroups_path, teardown),
		cmocka_unit_test_teardown(test_config_annotations, teardown),
		cmocka_unit_test_teardown(test_plan_enable, teardown),
		cmocka_unit_test_teardown(test_plan_unknown_key, teardown),
		cmocka_unit_test_teardown(test_plan_containerd, teardown),
		cmocka_unit_test_teardown(test_plan_crio, teardown),
		cmocka_unit_test_teardown(test_plan_labels_long, teardown),
		cmocka_unit_test_teardown(test_plan_sandbox_id, teardown),
		cmocka_unit_test_teardown(test_plan_options, teardown),
		cmocka_unit_test_teardown(test_plan_paths, teardown),
		cmocka_unit_test_teardown(test_plan_cgroup, teardown),
		cmocka_unit_test_teardown(test_plan_unusable_values, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
