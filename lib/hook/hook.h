/*
 * vfsd-hook: the OCI hook that gives a sandbox its vfsd daemon (docs/hook.md).
 *
 * An engine runs `vfsd-hook STAGE` with the container's state JSON on stdin. The hook reads
 * the state and the bundle's config.json (hook_input_parse: hostile input, every field checked),
 * decides what to ask for from the annotations (hook_plan_make), and asks the supervisor over
 * the control socket (hook_run): spawn the sandbox's daemon in the runtime-namespace stages,
 * stop it in poststop.
 */
#ifndef VFSD_HOOK_HOOK_H
#define VFSD_HOOK_HOOK_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HOOK_STATE_MAX (1u << 20)  /* bytes of the state JSON on stdin */
#define HOOK_CONFIG_MAX (8u << 20) /* bytes of the bundle's config.json */
#define HOOK_TIMEOUT_MS 5000	   /* the hook's own deadline by default */
#define HOOK_CONTROL_SOCKET "/run/vfsd/control.sock"

enum hook_stage {
	HOOK_CREATE_RUNTIME,
	HOOK_PRESTART,
	HOOK_POSTSTART,
	HOOK_POSTSTOP,
};

/* "createRuntime" ... ; -1 for a name that is not a stage the hook serves (with *why set
 * when it is an OCI stage it refuses, e.g. one that runs inside the container). */
int hook_stage_parse(const char *name, const char **why);
const char *hook_stage_name(enum hook_stage stage);

enum hook_ctype {
	HOOK_STANDALONE, /* no CRI annotations: the container is its own sandbox */
	HOOK_SANDBOX,	 /* the pod's sandbox (pause) container */
	HOOK_CONTAINER,	 /* an application container of a pod */
};

/* What the state and config.json say; every string belongs to the json objects kept here. */
struct hook_input {
	struct json_object *state, *config; /* config is NULL when not read */
	const char *id, *bundle, *status, *root; /* root: crun's extra field, or NULL */
	pid_t pid;				 /* 0 when absent (allowed in poststop only) */
	struct json_object *annotations;	 /* the state's over config.json's; may be NULL */
	struct json_object *merged;		 /* owns annotations when both had some */
	const char *root_path;			 /* config.json's root.path as given */
	bool has_userns;			 /* linux.namespaces has a "user" entry */
	const char *userns_path;		 /* its "path", or NULL */
	bool has_uid_map;			 /* linux.uidMappings has entries */
	uint32_t map_host_uid;			 /* what the container's uid 0 is on the host */
	const char *cgroups_path;		 /* linux.cgroupsPath, or NULL */
};

/*
 * Parses the state JSON (len bytes): 0, or -EINVAL with a sentence in err. Requires "id" and
 * "bundle" (absolute), and "pid" > 0 unless for_poststop.
 */
int hook_state_parse(struct hook_input *in, const char *buf, size_t len, bool for_poststop,
		     char *err, size_t errlen);
/* Parses the bundle's config.json (len bytes) into in: 0 or -EINVAL with err. */
int hook_config_parse(struct hook_input *in, const char *buf, size_t len, char *err,
		      size_t errlen);
void hook_input_free(struct hook_input *in);

#define HOOK_LABELS 3
#define HOOK_OPTIONS_MAX 64

/* What the hook asks the supervisor for. Strings point into the input or into owned[]. */
struct hook_plan {
	bool enabled; /* io.vfsd.enable=true */
	enum hook_ctype ctype;
	char sandbox[129];
	const char *control_socket;
	const char *share;	 /* io.vfsd.share, or NULL: the container's rootfs */
	const char *socket_path; /* io.vfsd.socket, or NULL: the default in the hook dir */
	const char *cgroup_mode; /* io.vfsd.cgroup: NULL (the container's), "none" or a path */
	const char *options[HOOK_OPTIONS_MAX];
	unsigned int noptions;
	const char *label_names[HOOK_LABELS], *label_values[HOOK_LABELS];
	unsigned int nlabels;
	struct json_object *options_json; /* io.vfsd.options parsed: owns options[] */
};

/* Reads the annotations: 0 (plan->enabled false when the hook has nothing to do), or -EINVAL
 * with a sentence in err. */
int hook_plan_make(const struct hook_input *in, struct hook_plan *plan, char *err,
		   size_t errlen);
void hook_plan_free(struct hook_plan *plan);

struct hook_opts {
	enum hook_stage stage;
	uint64_t deadline_ms;	    /* CLOCK_MONOTONIC */
	const char *control_socket; /* --control-socket, overrides the annotation */
	const char *hook_dir;	    /* where the hook keeps sockets and members; NULL: default */
	bool trust_annotations;	    /* --trust-annotations: a root hook takes every annotation */
};

/* The default hook directory: /run/vfsd-hook for root, else /run/user/UID/vfsd.
 * 0, or -errno with a sentence in err. */
int hook_default_dir(char *out, size_t len, char *err, size_t errlen);

/* Does what the stage asks, with in and plan made above. Returns 0, or -errno with one line
 * for the user in err (what failed and where). */
int hook_run(const struct hook_opts *o, const struct hook_input *in,
	     const struct hook_plan *plan, char *err, size_t errlen);

#endif
