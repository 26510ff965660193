/*
 * libFuzzer target: vfsd-hook's input, the OCI state an engine writes on the hook's stdin and
 * the bundle's config.json, through hook_state_parse(), hook_config_parse() and
 * hook_plan_make() (lib/hook/oci.c; never lib/hook/hook.c, which talks to the supervisor).
 *
 * Input: STATE [NUL CONFIG]. The bytes before the first NUL are the state; the bytes after it
 * (NULs and all) are config.json; with no NUL there is no config.json, as in a poststop whose
 * bundle is gone. Each part is a heap block of exactly its length with no NUL after it, so
 * that AddressSanitizer sees oci.c or proto.c read past it (json-c is not instrumented).
 *
 * The state is parsed as for poststop and as for the other stages, then config.json and the
 * plan for each. Checked: results are 0 or -EINVAL (-ENOMEM) with a message; a parsed state
 * has its required fields within their limits, and parsing it for poststop gives the same;
 * config.json's fields agree with its JSON and the annotations come from the state when it
 * has them; a plan follows the annotations exactly (a value the hook reads is used as given
 * or refused, never taken as absent), its paths are absolute and fit, its sandbox id is
 * valid; releasing the input and the plan leaves nothing behind (LeakSanitizer).
 */
#include <errno.h>
#include <stdbool.h>

#include "ctl/proto.h"
#include "fuzz_common.h"
#include "hook/hook.h"

#define ERR_SIZE 2048 /* vfsd-hook's */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

/* A string member of o as json-c has it (NUL bytes and all): the string and *len, or NULL
 * when absent or of another type. */
static const char *raw(struct json_object *o, const char *key, size_t *len)
{
	struct json_object *v;

	*len = 0;
	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

static bool raw_is(const char *s, size_t len, const char *want)
{
	return s && len == strlen(want) && memcmp(s, want, len) == 0;
}

/* The first of keys (NULL-terminated) that is set and not empty, as hook_plan_make reads. */
static const char *first_raw(struct json_object *a, const char *const *keys, size_t *len)
{
	for (; *keys; keys++) {
		const char *s = raw(a, *keys, len);

		if (s && *len)
			return s;
	}
	*len = 0;
	return NULL;
}

static void check_error(int r, const char *err, const char *what)
{
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM, "%s returned %d", what, r);
	if (r < 0) {
		FUZZ_CHECK(memchr(err, '\0', ERR_SIZE), "%s: message not NUL-terminated", what);
		FUZZ_CHECK(err[0] != '\0' && (unsigned char)err[0] != 0xa5, "%s: no message for %d",
			   what, r);
	}
}

static void check_annotations(struct json_object *a, const char *what)
{
	if (!a)
		return;
	FUZZ_CHECK(json_object_is_type(a, json_type_object), "%s: annotations not an object", what);
	json_object_object_foreach(a, key, val)
	{
		FUZZ_CHECK(json_object_is_type(val, json_type_string),
			   "%s: annotation %s of type %s", what, key,
			   json_type_to_name(json_object_get_type(val)));
	}
}

static void check_state(const struct hook_input *in, bool poststop)
{
	struct json_object *a = NULL;

	FUZZ_CHECK(in->state && json_object_is_type(in->state, json_type_object),
		   "state not an object");
	FUZZ_CHECK(!in->config, "config set by the state");
	FUZZ_CHECK(fuzz_check_str(in->id, 1024, "id") > 0, "an empty id");
	fuzz_check_str(in->bundle, 4096, "bundle");
	FUZZ_CHECK(in->bundle[0] == '/', "bundle '%s' is not absolute", in->bundle);
	if (in->status)
		fuzz_check_str(in->status, 64, "status");
	if (in->root)
		fuzz_check_str(in->root, 4096, "root");
	FUZZ_CHECK(in->pid >= 0 && in->pid <= 4194304, "pid %d", (int)in->pid);
	FUZZ_CHECK(poststop || in->pid > 0, "no pid outside poststop");
	json_object_object_get_ex(in->state, "annotations", &a);
	FUZZ_CHECK(in->annotations == a, "annotations are not the state's");
	check_annotations(in->annotations, "state");
	FUZZ_CHECK(!in->root_path && !in->has_userns && !in->userns_path && !in->has_uid_map &&
		       !in->map_host_uid && !in->cgroups_path,
		   "config.json's fields set by the state");
}

/* config.json's fields, recomputed from its JSON. */
static void check_config(const struct hook_input *in, struct json_object *state_annotations)
{
	struct json_object *c = in->config, *root = NULL, *lx = NULL, *ns = NULL, *maps = NULL;
	struct json_object *a = NULL;
	bool userns = false, map0 = false;
	const char *userns_path = NULL;
	uint32_t host0 = 0;
	size_t n;

	FUZZ_CHECK(c && json_object_is_type(c, json_type_object), "config not an object");
	json_object_object_get_ex(c, "annotations", &a);
	check_annotations(a, "config.json");
	if (state_annotations && a) {
		/* both: every key of each, the state's values over config.json's */
		FUZZ_CHECK(in->annotations == in->merged, "annotations not merged");
		json_object_object_foreach(a, ck, cv)
		{
			struct json_object *sv, *mv;

			FUZZ_CHECK(json_object_object_get_ex(in->annotations, ck, &mv), "lost a key");
			FUZZ_CHECK(mv == (json_object_object_get_ex(state_annotations, ck, &sv) ? sv : cv),
				   "a value from the wrong place");
		}
		json_object_object_foreach(state_annotations, sk, sv2)
		{
			struct json_object *mv;

			FUZZ_CHECK(json_object_object_get_ex(in->annotations, sk, &mv) && mv == sv2,
				   "lost a state key");
		}
	} else {
		FUZZ_CHECK(in->annotations == (state_annotations ? state_annotations : a),
			   "annotations from the wrong place");
	}
	json_object_object_get_ex(c, "root", &root);
	if (in->root_path) {
		FUZZ_CHECK(fuzz_check_str(in->root_path, 4096, "root.path") > 0, "an empty root.path");
		FUZZ_CHECK(raw(root, "path", &n) == in->root_path && n == strlen(in->root_path),
			   "root.path is not config.json's");
	} else {
		FUZZ_CHECK(!root || !json_object_object_get_ex(root, "path", NULL),
			   "root.path present and not read");
	}
	json_object_object_get_ex(c, "linux", &lx);
	json_object_object_get_ex(lx, "namespaces", &ns);
	for (size_t i = 0; ns && i < json_object_array_length(ns); i++) {
		struct json_object *e = json_object_array_get_idx(ns, i);

		if (raw_is(raw(e, "type", &n), n, "user")) {
			userns = true;
			userns_path = raw(e, "path", &n);
		}
	}
	FUZZ_CHECK(in->has_userns == userns, "has_userns %d", in->has_userns);
	FUZZ_CHECK(in->userns_path == userns_path, "userns_path");
	if (in->userns_path)
		fuzz_check_str(in->userns_path, 4096, "userns path");
	json_object_object_get_ex(lx, "uidMappings", &maps);
	for (size_t i = 0; maps && i < json_object_array_length(maps); i++) {
		struct json_object *e = json_object_array_get_idx(maps, i), *v, *h, *s;

		FUZZ_CHECK(json_object_object_get_ex(e, "containerID", &v) &&
			       json_object_object_get_ex(e, "hostID", &h) &&
			       json_object_object_get_ex(e, "size", &s) &&
			       json_object_is_type(v, json_type_int) &&
			       json_object_is_type(h, json_type_int) &&
			       json_object_is_type(s, json_type_int),
			   "uidMappings[%zu] passed", i);
		FUZZ_CHECK(
		    json_object_get_int64(v) >= 0 && json_object_get_int64(v) <= UINT32_MAX &&
			json_object_get_int64(h) >= 0 && json_object_get_int64(h) <= UINT32_MAX &&
			json_object_get_int64(s) >= 1 && json_object_get_int64(s) <= UINT32_MAX,
		    "uidMappings[%zu] out of range passed", i);
		if (json_object_get_int64(v) == 0) {
			map0 = true;
			host0 = (uint32_t)json_object_get_int64(h);
		}
	}
	FUZZ_CHECK(in->has_uid_map == map0 && in->map_host_uid == host0, "uid map %d %u",
		   in->has_uid_map, in->map_host_uid);
	if (in->cgroups_path)
		fuzz_check_str(in->cgroups_path, 4096, "cgroupsPath");
	else
		FUZZ_CHECK(!lx || !json_object_object_get_ex(lx, "cgroupsPath", NULL),
			   "cgroupsPath present and not read");
}

/* The keys hook_plan_make reads (docs/hook.md). */
static const char *const k_type[] = { "io.kubernetes.cri.container-type",
				      "io.kubernetes.cri-o.ContainerType", NULL };
static const char *const k_sandbox[] = { "io.kubernetes.cri.sandbox-id",
					 "io.kubernetes.cri-o.SandboxID", NULL };
static const char *const k_label[HOOK_LABELS][4] = {
	{ "io.kubernetes.cri.sandbox-name", "io.kubernetes.cri-o.KubeName",
	  "io.kubernetes.pod.name", NULL },
	{ "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri-o.Namespace",
	  "io.kubernetes.pod.namespace", NULL },
	{ "io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid", NULL, NULL },
};
static const char *const label_name[HOOK_LABELS] = { "cri_name", "cri_namespace", "cri_uid" };
static const char *const k_vfsd[] = {
	"io.vfsd.enable",  "io.vfsd.share",	     "io.vfsd.socket",
	"io.vfsd.options", "io.vfsd.control-socket", "io.vfsd.cgroup"
};

/* plan's path field p against the annotation: the value itself, absolute, shorter than max. */
static void check_path(struct json_object *a, const char *key, const char *p, size_t max)
{
	size_t n;
	const char *s = raw(a, key, &n);

	if (!s) {
		FUZZ_CHECK(!p, "%s set without its annotation", key);
		return;
	}
	FUZZ_CHECK(p, "%s given (%zu bytes) and not used", key, n);
	FUZZ_CHECK(p == s && n == strlen(p), "%s is not the annotation's value", key);
	FUZZ_CHECK(p[0] == '/' && n < max, "%s '%s' is not an absolute path under %zu bytes", key,
		   p, max);
}

static void check_plan(const struct hook_input *in, const struct hook_plan *p)
{
	struct json_object *a = in->annotations;
	const char *type, *sandbox, *s;
	size_t tn, sn, n;
	unsigned int nl = 0;

	/* an accepted plan, enabled or not, has no unknown io.vfsd.* annotation */
	if (a) {
		json_object_object_foreach(a, key, val)
		{
			bool known = strncmp(key, "io.vfsd.", 8) != 0;

			(void)val;
			for (size_t i = 0; i < sizeof(k_vfsd) / sizeof(k_vfsd[0]); i++)
				known |= strcmp(key, k_vfsd[i]) == 0;
			FUZZ_CHECK(known, "unknown annotation %s passed", key);
		}
	}
	s = raw(a, "io.vfsd.enable", &n);
	if (!p->enabled) {
		FUZZ_CHECK(!s || raw_is(s, n, "false"), "io.vfsd.enable '%s' (%zu bytes) ignored",
			   s, n);
		FUZZ_CHECK(!p->options_json && p->noptions == 0 && p->nlabels == 0 && !p->share &&
			       !p->socket_path && !p->cgroup_mode,
			   "a disabled plan with fields set");
		FUZZ_CHECK(strcmp(p->control_socket, HOOK_CONTROL_SOCKET) == 0, "control socket");
		return;
	}
	FUZZ_CHECK(raw_is(s, n, "true"), "enabled by '%s' (%zu bytes)", s, n);

	/* the container's part in its pod, and the sandbox it serves */
	type = first_raw(a, k_type, &tn);
	sandbox = first_raw(a, k_sandbox, &sn);
	fuzz_check_str(p->sandbox, CTL_SANDBOX_MAX, "sandbox");
	FUZZ_CHECK(ctl_sandbox_id_valid(p->sandbox), "sandbox id '%s'", p->sandbox);
	switch (p->ctype) {
	case HOOK_STANDALONE:
		FUZZ_CHECK(!type && !sandbox, "standalone with CRI annotations");
		break;
	case HOOK_SANDBOX:
		FUZZ_CHECK(raw_is(type, tn, "sandbox"), "a sandbox of type '%s'", type);
		break;
	case HOOK_CONTAINER:
		FUZZ_CHECK(type ? raw_is(type, tn, "container") : sandbox != NULL,
			   "a container of type '%s'", type);
		FUZZ_CHECK(sandbox, "a container without a sandbox id");
		break;
	default:
		FUZZ_CHECK(0, "ctype %d", (int)p->ctype);
	}
	if (sandbox)
		FUZZ_CHECK(sn == strlen(p->sandbox) && memcmp(sandbox, p->sandbox, sn) == 0,
			   "sandbox '%s' is not the annotation's", p->sandbox);
	else
		FUZZ_CHECK(strcmp(p->sandbox, in->id) == 0, "sandbox '%s' is not the id",
			   p->sandbox);

	/* the pod's labels: each from the first key that has one */
	FUZZ_CHECK(p->nlabels <= HOOK_LABELS, "%u labels", p->nlabels);
	for (size_t i = 0; i < HOOK_LABELS; i++) {
		s = first_raw(a, k_label[i], &n);
		if (!s)
			continue;
		FUZZ_CHECK(nl < p->nlabels && strcmp(p->label_names[nl], label_name[i]) == 0,
			   "label %s missing", label_name[i]);
		FUZZ_CHECK(p->label_values[nl] == s && n == strlen(s) && n <= CTL_LABEL_MAX,
			   "label %s is not the annotation's", label_name[i]);
		nl++;
	}
	FUZZ_CHECK(nl == p->nlabels, "%u labels for %u annotations", p->nlabels, nl);

	check_path(a, "io.vfsd.share", p->share, 4096);
	check_path(a, "io.vfsd.socket", p->socket_path, 108);
	s = raw(a, "io.vfsd.control-socket", &n);
	if (s)
		check_path(a, "io.vfsd.control-socket", p->control_socket, 108);
	else
		FUZZ_CHECK(strcmp(p->control_socket, HOOK_CONTROL_SOCKET) == 0, "control socket");
	s = raw(a, "io.vfsd.cgroup", &n);
	if (raw_is(s, n, "container"))
		FUZZ_CHECK(!p->cgroup_mode, "cgroup 'container' kept");
	else if (raw_is(s, n, "none"))
		FUZZ_CHECK(p->cgroup_mode == s, "cgroup 'none' lost");
	else
		check_path(a, "io.vfsd.cgroup", p->cgroup_mode, 4096);

	s = raw(a, "io.vfsd.options", &n);
	if (!s) {
		FUZZ_CHECK(!p->options_json && p->noptions == 0, "options without the annotation");
		return;
	}
	FUZZ_CHECK(p->options_json && json_object_is_type(p->options_json, json_type_array),
		   "io.vfsd.options given (%zu bytes) and not used", n);
	FUZZ_CHECK(p->noptions <= HOOK_OPTIONS_MAX &&
		       p->noptions == json_object_array_length(p->options_json),
		   "%u options of %zu", p->noptions, json_object_array_length(p->options_json));
	for (unsigned int i = 0; i < p->noptions; i++) {
		const char *o =
		    json_object_get_string(json_object_array_get_idx(p->options_json, i));

		FUZZ_CHECK(p->options[i] == o, "options[%u] is not the array's", i);
		FUZZ_CHECK(strlen(o) == (size_t)json_object_get_string_len(
					    json_object_array_get_idx(p->options_json, i)),
			   "options[%u] has a NUL", i);
	}
}

/* A copy of len bytes in a block of exactly that size (one byte for none). */
static char *dup_exact(const uint8_t *p, size_t len)
{
	char *b = malloc(len ? len : 1);

	FUZZ_CHECK(b, "out of memory");
	memcpy(b, p, len);
	return b;
}

static void trace(const char *what, int r, const char *err)
{
	if (fuzz_trace)
		fprintf(stderr, "fuzz: %s -> %d%s%s\n", what, r, r ? ": " : "", r ? err : "");
}

/* One run as vfsd-hook does it; returns the state's result and its pid. */
static int one(const char *st, size_t slen, const char *cfg, size_t clen, bool poststop, pid_t *pid)
{
	struct hook_input in;
	struct hook_plan plan = { 0 };
	struct json_object *sa;
	char err[ERR_SIZE];
	int r, rs;

	memset(err, 0xa5, sizeof(err));
	rs = r = hook_state_parse(&in, st, slen, poststop, err, sizeof(err));
	trace(poststop ? "state (poststop)" : "state", r, err);
	check_error(r, err, "hook_state_parse");
	*pid = in.pid;
	if (r == 0) {
		check_state(&in, poststop);
		sa = in.annotations;
		if (cfg) {
			memset(err, 0xa5, sizeof(err));
			r = hook_config_parse(&in, cfg, clen, err, sizeof(err));
			trace("config.json", r, err);
			check_error(r, err, "hook_config_parse");
			if (r == 0)
				check_config(&in, sa);
		}
		if (r == 0) {
			memset(err, 0xa5, sizeof(err));
			r = hook_plan_make(&in, &plan, err, sizeof(err));
			trace(plan.enabled ? "plan (enabled)" : "plan", r, err);
			check_error(r, err, "hook_plan_make");
			if (r == 0)
				check_plan(&in, &plan);
		}
	}
	hook_plan_free(&plan);
	FUZZ_CHECK(!plan.options_json, "hook_plan_free left options_json");
	hook_input_free(&in);
	FUZZ_CHECK(!in.state && !in.config && !in.annotations && !in.id,
		   "hook_input_free left fields");
	return rs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t slen = nul ? (size_t)(nul - data) : size;
	char *st = dup_exact(data, slen), *cfg = nul ? dup_exact(nul + 1, size - slen - 1) : NULL;
	pid_t pid_run, pid_stop;
	int r_run, r_stop;

	r_run = one(st, slen, cfg, cfg ? size - slen - 1 : 0, false, &pid_run);
	r_stop = one(st, slen, cfg, cfg ? size - slen - 1 : 0, true, &pid_stop);
	/* poststop differs only in letting the pid go */
	FUZZ_CHECK(r_run != 0 || (r_stop == 0 && pid_stop == pid_run),
		   "a state good for a run is refused for poststop (%d)", r_stop);
	FUZZ_CHECK(r_stop != 0 || r_run == 0 || pid_stop == 0,
		   "a state with pid %d good for poststop only", (int)pid_stop);
	free(st);
	free(cfg);
	return 0;
}
