/*
 * The control protocol's wire format (docs/control.md): one JSON object per line, both ways.
 * A request line is hostile input: ctl_request_parse() checks every field's presence, type,
 * length and characters, so the handlers see only well-formed values.
 */
#ifndef VFSD_CTL_PROTO_H
#define VFSD_CTL_PROTO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_PROTOCOL_VERSION 1
#define CTL_LINE_MAX 65536   /* bytes of one request line, newline excluded */
#define CTL_ARGS_MAX 64	     /* entries of a spawn's "args" */
#define CTL_ARG_MAX 4096     /* bytes of one of them */
#define CTL_LABELS_MAX 16    /* entries of a spawn's "labels" */
#define CTL_LABEL_MAX 1024   /* bytes of a label's value */
#define CTL_SANDBOX_MAX 128  /* bytes of a sandbox id */
#define CTL_GRACE_MAX_MS 3600000
#define CTL_OUT_MAX (4u << 20) /* replies and events a client has not read yet (so the
				  longest reply line too) */

enum ctl_op {
	CTL_OP_PING,
	CTL_OP_VERSION,
	CTL_OP_SPAWN,
	CTL_OP_STOP,
	CTL_OP_LIST,
	CTL_OP_STATUS,
	CTL_OP_WATCH,
	CTL_OP_METRICS,
	CTL_OP_EXPORT_STATE,
	CTL_OP_RESUME,
	CTL_OP_COUNT,
};

/* The op's name on the wire ("ping", ...). */
const char *ctl_op_name(enum ctl_op op);

struct ctl_request {
	enum ctl_op op;
	struct json_object *root; /* the parsed line: owns every string below */
	struct json_object *id;	  /* "id", echoed in the reply; NULL when absent */
	const char *sandbox, *shared_dir, *socket_path, *userns, *cgroup;
	const char *args[CTL_ARGS_MAX];
	unsigned int nargs;
	struct json_object *labels; /* "labels": an object of strings, or NULL */
	bool has_grace;
	uint32_t grace_ms; /* stop's "grace_ms" */
	bool import_state; /* spawn's "import_state": a state fd comes with the request */
};

/*
 * Parses one request line (len bytes, no newline). Returns 0, or -EINVAL (malformed, wrong
 * type, unknown or missing field), -ENOSYS (unknown op), -E2BIG (too long) with a sentence
 * in err. req->id is set whenever the line was an object with an "id", so that even an error
 * reply echoes it. Always release req with ctl_request_free().
 */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, char *err,
		      size_t errlen);
void ctl_request_free(struct ctl_request *req);

/*
 * Parses buf (len bytes) as exactly one JSON value of type want (an object or an array),
 * nested at most depth deep: strict UTF-8, no NUL byte, nothing but white space after it.
 * 0 with *out (the caller puts it), or -EINVAL (-ENOMEM) with a sentence that starts with
 * what ("request line", "config.json") in err.
 */
int ctl_json_parse(const char *buf, size_t len, const char *what, int depth, json_type want,
		   struct json_object **out, char *err, size_t errlen);

/* Checks a sandbox id: 1 to CTL_SANDBOX_MAX of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool ctl_sandbox_id_valid(const char *id);

/* A reply object {"ok": ok[, "id": id]}; the caller adds fields and owns it. */
struct json_object *ctl_reply_new(bool ok, struct json_object *id);
/* A failure reply: {"ok": false, "error": msg, "errno": errnum[, "id": id]}. */
struct json_object *ctl_reply_error(struct json_object *id, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Replaces every byte of s that does not belong to a UTF-8 character with '?': text from
 * elsewhere (a daemon's log) for a reply, which must be UTF-8. */
void ctl_utf8_clean(char *s);

/* Serializes obj as one line with its newline into a malloc'ed string (*len bytes). */
char *ctl_line(struct json_object *obj, size_t *len);

#endif
