/* vfsd-hook's input: the OCI state on stdin, the bundle's config.json, the annotations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "ctl/proto.h"
#include "hook/hook.h"

#define BAD(...)                                     \
	do {                                         \
		snprintf(err, errlen, __VA_ARGS__); \
		return -EINVAL;                      \
	} while (0)

static const char *const stage_names[] = {
	[HOOK_CREATE_RUNTIME] = "createRuntime",
	[HOOK_PRESTART] = "prestart",
	[HOOK_POSTSTART] = "poststart",
	[HOOK_POSTSTOP] = "poststop",
};

int hook_stage_parse(const char *name, const char **why)
{
	*why = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(stage_names); i++) {
		if (strcmp(name, stage_names[i]) == 0)
			return (int)i;
	}
	if (strcmp(name, "createContainer") == 0 || strcmp(name, "startContainer") == 0)
		*why = "runs inside the container, where the supervisor is out of reach";
	return -1;
}

const char *hook_stage_name(enum hook_stage stage)
{
	return (unsigned int)stage < ARRAY_SIZE(stage_names) ? stage_names[stage] : "?";
}

/* A string member of o of at most max bytes with no NUL: the string, NULL when absent, or
 * (const char *)-1 when present with another type. */
#define WRONG ((const char *)-1)
static const char *member_str(struct json_object *o, const char *key, size_t max)
{
	struct json_object *v;
	const char *s;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string))
		return WRONG;
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) > max || strlen(s) != (size_t)json_object_get_string_len(v))
		return WRONG;
	return s;
}

/* A member that must be an object (or absent): 0, or -EINVAL. */
static int member_obj(struct json_object *o, const char *key, json_type type,
		      struct json_object **out)
{
	struct json_object *v;

	*out = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, type))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Annotations: an object of strings (a value of another type is refused). */
static int check_annotations(struct json_object *a, const char *where, char *err, size_t errlen)
{
	json_object_object_foreach(a, key, val)
	{
		if (!json_object_is_type(val, json_type_string))
			BAD("%s: annotation '%.80s' is not a string", where, key);
	}
	return 0;
}

int hook_state_parse(struct hook_input *in, const char *buf, size_t len, bool for_poststop,
		     char *err, size_t errlen)
{
	struct json_object *pid, *a;
	int r;

	*in = (struct hook_input){ 0 };
	if (len == 0)
		BAD("the state on stdin is empty (the engine runs a hook with the container's state)");
	if (len > HOOK_STATE_MAX)
		BAD("the state on stdin is longer than %u bytes", HOOK_STATE_MAX);
	r = ctl_json_parse(buf, len, "the state on stdin", 32, json_type_object, &in->state, err, errlen);
	if (r < 0)
		return r;
	in->id = member_str(in->state, "id", 1024);
	if (!in->id || in->id == WRONG || !*in->id)
		BAD("the state on stdin has no \"id\" string");
	in->bundle = member_str(in->state, "bundle", 4096);
	if (!in->bundle || in->bundle == WRONG || in->bundle[0] != '/')
		BAD("the state on stdin has no absolute \"bundle\" path");
	in->status = member_str(in->state, "status", 64);
	if (in->status == WRONG)
		BAD("the state's \"status\" is not a string");
	in->root = member_str(in->state, "root", 4096);
	if (in->root == WRONG)
		BAD("the state's \"root\" is not a string");
	if (json_object_object_get_ex(in->state, "pid", &pid)) {
		int64_t v = json_object_get_int64(pid);

		if (!json_object_is_type(pid, json_type_int) || v < 0 || v > 4194304)
			BAD("the state's \"pid\" is not a process id");
		in->pid = (pid_t)v;
	}
	if (in->pid == 0 && !for_poststop)
		BAD("the state on stdin has no \"pid\" (the container's process)");
	if (member_obj(in->state, "annotations", json_type_object, &a) < 0)
		BAD("the state's \"annotations\" is not an object");
	if (a && (r = check_annotations(a, "the state", err, errlen)) < 0)
		return r;
	in->annotations = a;
	return 0;
}

int hook_config_parse(struct hook_input *in, const char *buf, size_t len, char *err,
		      size_t errlen)
{
	struct json_object *root, *linux_, *ns, *maps, *a;
	int r;

	if (len > HOOK_CONFIG_MAX)
		BAD("config.json is longer than %u bytes", HOOK_CONFIG_MAX);
	r = ctl_json_parse(buf, len, "config.json", 64, json_type_object, &in->config, err, errlen);
	if (r < 0)
		return r;
	if (member_obj(in->config, "annotations", json_type_object, &a) < 0)
		BAD("config.json: \"annotations\" is not an object");
	if (a && (r = check_annotations(a, "config.json", err, errlen)) < 0)
		return r;
	if (a && in->annotations) {
		/* both: config.json's, with the state's over them (Podman's state in poststop
		 * carries fewer than config.json) */
		struct json_object *m = json_object_new_object();

		if (!m) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		json_object_object_foreach(a, ck, cv)
			json_object_object_add(m, ck, json_object_get(cv));
		json_object_object_foreach(in->annotations, sk, sv)
			json_object_object_add(m, sk, json_object_get(sv));
		in->merged = m;
		in->annotations = m;
	} else if (a) {
		in->annotations = a;
	}
	if (member_obj(in->config, "root", json_type_object, &root) < 0)
		BAD("config.json: \"root\" is not an object");
	in->root_path = member_str(root, "path", 4096);
	if (in->root_path == WRONG || (in->root_path && !*in->root_path))
		BAD("config.json: \"root.path\" is not a path");
	if (member_obj(in->config, "linux", json_type_object, &linux_) < 0)
		BAD("config.json: \"linux\" is not an object");
	if (member_obj(linux_, "namespaces", json_type_array, &ns) < 0)
		BAD("config.json: \"linux.namespaces\" is not an array");
	for (size_t i = 0; ns && i < json_object_array_length(ns); i++) {
		struct json_object *e = json_object_array_get_idx(ns, i);
		const char *type = json_object_is_type(e, json_type_object) ? member_str(e, "type", 32)
									     : WRONG;
		const char *path = type == WRONG ? NULL : member_str(e, "path", 4096);

		if (!type || type == WRONG || path == WRONG)
			BAD("config.json: \"linux.namespaces\"[%zu] is not a namespace", i);
		if (strcmp(type, "user") == 0) {
			in->has_userns = true;
			in->userns_path = path;
		}
	}
	if (member_obj(linux_, "uidMappings", json_type_array, &maps) < 0)
		BAD("config.json: \"linux.uidMappings\" is not an array");
	for (size_t i = 0; maps && i < json_object_array_length(maps); i++) {
		struct json_object *e = json_object_array_get_idx(maps, i), *c, *h, *s;

		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "containerID", &c) ||
		    !json_object_object_get_ex(e, "hostID", &h) ||
		    !json_object_object_get_ex(e, "size", &s) || !json_object_is_type(c, json_type_int) ||
		    !json_object_is_type(h, json_type_int) || !json_object_is_type(s, json_type_int) ||
		    json_object_get_int64(c) < 0 || json_object_get_int64(c) > UINT32_MAX ||
		    json_object_get_int64(h) < 0 || json_object_get_int64(h) > UINT32_MAX ||
		    json_object_get_int64(s) < 1 || json_object_get_int64(s) > UINT32_MAX)
			BAD("config.json: \"linux.uidMappings\"[%zu] is not a mapping", i);
		if (json_object_get_int64(c) == 0) {
			in->has_uid_map = true;
			in->map_host_uid = (uint32_t)json_object_get_int64(h);
		}
	}
	in->cgroups_path = member_str(linux_, "cgroupsPath", 4096);
	if (in->cgroups_path == WRONG)
		BAD("config.json: \"linux.cgroupsPath\" is not a string");
	return 0;
}

void hook_input_free(struct hook_input *in)
{
	json_object_put(in->state);
	json_object_put(in->config);
	json_object_put(in->merged);
	*in = (struct hook_input){ 0 };
}

/* --- the annotations ----------------------------------------------------------------- */

#define A_PREFIX "io.vfsd."
#define A_VALUE_MAX 65536 /* bytes of an annotation's value that the hook reads */

static const char *const vfsd_keys[] = {
	"io.vfsd.enable", "io.vfsd.share",  "io.vfsd.socket",
	"io.vfsd.options", "io.vfsd.control-socket", "io.vfsd.cgroup",
};
/* the container's part in its pod and the pod's sandbox id: containerd's, then CRI-O's */
static const char *const type_keys[] = { "io.kubernetes.cri.container-type",
					 "io.kubernetes.cri-o.ContainerType" };
static const char *const sandbox_keys[] = { "io.kubernetes.cri.sandbox-id",
					    "io.kubernetes.cri-o.SandboxID" };
/* the pod's name, namespace and uid: containerd's, then CRI-O's own and the kubelet's labels,
 * which CRI-O copies into the annotations (kata-monitor's label names) */
static const struct {
	const char *label, *keys[3];
} pod[HOOK_LABELS] = {
	{ "cri_name",
	  { "io.kubernetes.cri.sandbox-name", "io.kubernetes.cri-o.KubeName",
	    "io.kubernetes.pod.name" } },
	{ "cri_namespace",
	  { "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri-o.Namespace",
	    "io.kubernetes.pod.namespace" } },
	{ "cri_uid", { "io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid", NULL } },
};

/* A value the hook reads; usable() has refused the ones it could not use. */
static const char *annotation(const struct hook_input *in, const char *key)
{
	const char *v = member_str(in->annotations, key, A_VALUE_MAX);

	return v == WRONG ? NULL : v; /* (check_annotations refused other types) */
}

/* Refuses a value of these keys with a NUL byte or past A_VALUE_MAX bytes: taken for absent,
 * it would mean another share, socket, cgroup or sandbox than the one asked for. */
static int usable(const struct hook_input *in, const char *const *keys, size_t n, char *err,
		  size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (keys[i] && member_str(in->annotations, keys[i], A_VALUE_MAX) == WRONG)
			BAD("annotation %s has a NUL byte or is longer than %d bytes", keys[i],
			    A_VALUE_MAX);
	}
	return 0;
}

/* The first of keys that is set and not empty. */
static const char *first_of(const struct hook_input *in, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = annotation(in, keys[i]);

		if (v && *v)
			return v;
	}
	return NULL;
}

static int abs_path(const char *key, const char *v, size_t max, char *err, size_t errlen)
{
	if (v && (v[0] != '/' || strlen(v) >= max))
		BAD("annotation %s must be an absolute path shorter than %zu bytes, not '%.200s'",
		    key, max, v);
	return 0;
}

int hook_plan_make(const struct hook_input *in, struct hook_plan *plan, char *err,
		   size_t errlen)
{
	const char *v, *type, *sandbox;
	int r;

	*plan = (struct hook_plan){ .control_socket = HOOK_CONTROL_SOCKET };
	/* a misspelt io.vfsd.* annotation (io.vfsd.enabled=true too) would otherwise be
	 * ignored without a word */
	if (!in->annotations)
		return 0;
	json_object_object_foreach(in->annotations, key, val)
	{
		bool known = false;

		(void)val;
		if (strncmp(key, A_PREFIX, strlen(A_PREFIX)) != 0)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(vfsd_keys); i++)
			known |= strcmp(key, vfsd_keys[i]) == 0;
		if (!known)
			BAD("unknown annotation '%.80s' (docs/hook.md lists the io.vfsd.* ones)", key);
	}
	v = member_str(in->annotations, "io.vfsd.enable", A_VALUE_MAX);
	if (!v || (v != WRONG && strcmp(v, "false") == 0))
		return 0;
	if ((r = usable(in, vfsd_keys, ARRAY_SIZE(vfsd_keys), err, errlen)) < 0)
		return r;
	if (strcmp(v, "true") != 0)
		BAD("annotation io.vfsd.enable must be \"true\" or \"false\", not '%.80s'", v);
	if ((r = usable(in, type_keys, ARRAY_SIZE(type_keys), err, errlen)) < 0 ||
	    (r = usable(in, sandbox_keys, ARRAY_SIZE(sandbox_keys), err, errlen)) < 0)
		return r;
	for (size_t i = 0; i < HOOK_LABELS; i++) {
		if ((r = usable(in, pod[i].keys, ARRAY_SIZE(pod[i].keys), err, errlen)) < 0)
			return r;
	}
	plan->enabled = true;

	type = first_of(in, type_keys, ARRAY_SIZE(type_keys));
	sandbox = first_of(in, sandbox_keys, ARRAY_SIZE(sandbox_keys));
	if (!type && !sandbox)
		plan->ctype = HOOK_STANDALONE;
	else if (type && strcmp(type, "sandbox") == 0)
		plan->ctype = HOOK_SANDBOX;
	else if (type && strcmp(type, "container") == 0)
		plan->ctype = HOOK_CONTAINER;
	else if (type)
		BAD("container type '%.80s' is neither \"sandbox\" nor \"container\"", type);
	else
		plan->ctype = HOOK_CONTAINER; /* a sandbox id and no type: one of its containers */
	if (!sandbox) {
		if (plan->ctype == HOOK_CONTAINER)
			BAD("an application container with no sandbox id annotation (io.kubernetes.cri.sandbox-id or io.kubernetes.cri-o.SandboxID)");
		sandbox = in->id;
	}
	if (!ctl_sandbox_id_valid(sandbox))
		BAD("sandbox id '%.140s' is not 1 to %d of [A-Za-z0-9._-] (not starting with '.' or '-')",
		    sandbox, CTL_SANDBOX_MAX);
	snprintf(plan->sandbox, sizeof(plan->sandbox), "%s", sandbox);

	for (size_t i = 0; i < HOOK_LABELS; i++) {
		v = first_of(in, pod[i].keys, pod[i].keys[2] ? 3 : 2);
		if (!v)
			continue;
		if (strlen(v) > CTL_LABEL_MAX)
			BAD("the pod's %s is longer than %d bytes", pod[i].label, CTL_LABEL_MAX);
		plan->label_names[plan->nlabels] = pod[i].label;
		plan->label_values[plan->nlabels++] = v;
	}

	plan->share = annotation(in, "io.vfsd.share");
	plan->socket_path = annotation(in, "io.vfsd.socket");
	v = annotation(in, "io.vfsd.control-socket");
	if (v)
		plan->control_socket = v;
	if ((r = abs_path("io.vfsd.share", plan->share, 4096, err, errlen)) < 0 ||
	    (r = abs_path("io.vfsd.socket", plan->socket_path, 108, err, errlen)) < 0 ||
	    (r = abs_path("io.vfsd.control-socket", v, 108, err, errlen)) < 0)
		return r;
	v = annotation(in, "io.vfsd.cgroup");
	if (v && strcmp(v, "none") != 0 && strcmp(v, "container") != 0 &&
	    (r = abs_path("io.vfsd.cgroup", v, 4096, err, errlen)) < 0)
		return r;
	plan->cgroup_mode = v && strcmp(v, "container") == 0 ? NULL : v;

	v = annotation(in, "io.vfsd.options");
	if (v) {
		r = ctl_json_parse(v, strlen(v), "annotation io.vfsd.options (a JSON array of vfsd options)",
				   4, json_type_array, &plan->options_json, err, errlen);
		if (r < 0)
			return r;
		if (json_object_array_length(plan->options_json) > HOOK_OPTIONS_MAX)
			BAD("annotation io.vfsd.options has more than %d entries", HOOK_OPTIONS_MAX);
		for (size_t i = 0; i < json_object_array_length(plan->options_json); i++) {
			struct json_object *e = json_object_array_get_idx(plan->options_json, i);

			if (!json_object_is_type(e, json_type_string) ||
			    strlen(json_object_get_string(e)) != (size_t)json_object_get_string_len(e))
				BAD("annotation io.vfsd.options[%zu] is not a string", i);
			plan->options[plan->noptions++] = json_object_get_string(e);
		}
	}
	return 0;
}

void hook_plan_free(struct hook_plan *plan)
{
	json_object_put(plan->options_json);
	plan->options_json = NULL;
}
