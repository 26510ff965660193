/* Decoding control requests and encoding replies: a table of ops and the fields each takes. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "ctl/proto.h"

enum ctl_field {
	F_OP = 1u << 0,
	F_ID = 1u << 1,
	F_SANDBOX = 1u << 2,
	F_SHARED_DIR = 1u << 3,
	F_SOCKET_PATH = 1u << 4,
	F_USERNS = 1u << 5,
	F_CGROUP = 1u << 6,
	F_ARGS = 1u << 7,
	F_LABELS = 1u << 8,
	F_GRACE_MS = 1u << 9,
	F_IMPORT_STATE = 1u << 10,
};

/* The fields on the wire, each with its bit; "op" and "id" go with every op. */
static const struct {
	const char *name;
	enum ctl_field bit;
} fields[] = {
	{ "op", F_OP },
	{ "id", F_ID },
	{ "sandbox", F_SANDBOX },
	{ "shared_dir", F_SHARED_DIR },
	{ "socket_path", F_SOCKET_PATH },
	{ "userns", F_USERNS },
	{ "cgroup", F_CGROUP },
	{ "args", F_ARGS },
	{ "labels", F_LABELS },
	{ "grace_ms", F_GRACE_MS },
	{ "import_state", F_IMPORT_STATE },
};

static const struct {
	const char *name;
	unsigned int allowed, required;
} ops[CTL_OP_COUNT] = {
	[CTL_OP_PING] = { "ping", 0, 0 },
	[CTL_OP_VERSION] = { "version", 0, 0 },
	[CTL_OP_SPAWN] = { "spawn",
			   F_SANDBOX | F_SHARED_DIR | F_SOCKET_PATH | F_USERNS | F_CGROUP | F_ARGS |
				   F_LABELS | F_IMPORT_STATE,
			   F_SANDBOX | F_SHARED_DIR },
	[CTL_OP_STOP] = { "stop", F_SANDBOX | F_GRACE_MS, F_SANDBOX },
	[CTL_OP_LIST] = { "list", 0, 0 },
	[CTL_OP_STATUS] = { "status", F_SANDBOX, F_SANDBOX },
	[CTL_OP_WATCH] = { "watch", 0, 0 },
	[CTL_OP_METRICS] = { "metrics", F_SANDBOX, 0 },
	[CTL_OP_EXPORT_STATE] = { "export-state", F_SANDBOX, F_SANDBOX },
	[CTL_OP_RESUME] = { "resume", F_SANDBOX, F_SANDBOX },
};

const char *ctl_op_name(enum ctl_op op)
{
	return (unsigned int)op < CTL_OP_COUNT ? ops[op].name : "?";
}

bool ctl_sandbox_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > CTL_SANDBOX_MAX || id[0] == '.' || id[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A Prometheus label name: [A-Za-z_][A-Za-z0-9_]*, at most 63 bytes. */
static bool label_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

void ctl_utf8_clean(char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_char_len((unsigned char *)s + i, len - i);
		if (!n) {
			s[i] = '?';
			n = 1;
		}
	}
}

/* The first n bytes of s, a UTF-8 string cut there, less the incomplete character the cut
 * may have left at their end: a cut message must stay UTF-8 too. */
static size_t utf8_cut(const char *s, size_t n)
{
	size_t i = n, need;
	unsigned char lead;

	while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return n;
	lead = (unsigned char)s[i - 1];
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	return need > n - i + 1 ? i - 1 : n;
}

/* How many bytes of s to quote in a message for at most max ("%.*s"). */
static int quote_len(const char *s, size_t max)
{
	return (int)utf8_cut(s, strnlen(s, max));
}

#define BAD(...)                                     \
	do {                                         \
		snprintf(err, errlen, __VA_ARGS__); \
		return -EINVAL;                      \
	} while (0)

/* A string with no NUL inside and at most max bytes; NULL otherwise. */
static const char *string_of(struct json_object *v, size_t max)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s) || strlen(s) > max)
		return NULL;
	return s;
}

static int path_field(struct json_object *v, const char *name, size_t max, const char **out,
		      char *err, size_t errlen)
{
	const char *s = string_of(v, max);

	if (!s)
		BAD("\"%s\" must be a string of at most %zu bytes with no NUL", name, max);
	if (s[0] != '/')
		BAD("\"%s\" must be an absolute path, not '%.*s'", name, quote_len(s, 200), s);
	*out = s;
	return 0;
}

static int decode_args(struct json_object *v, struct ctl_request *req, char *err, size_t errlen)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		BAD("\"args\" must be an array of strings (vfsd options)");
	n = json_object_array_length(v);
	if (n > CTL_ARGS_MAX)
		BAD("\"args\" has %zu entries, at most %d are allowed", n, CTL_ARGS_MAX);
	for (size_t i = 0; i < n; i++) {
		const char *s = string_of(json_object_array_get_idx(v, i), CTL_ARG_MAX);

		if (!s)
			BAD("\"args\"[%zu] must be a string of at most %d bytes with no NUL", i,
			    CTL_ARG_MAX);
		req->args[req->nargs++] = s;
	}
	return 0;
}

static int decode_labels(struct json_object *v, struct ctl_request *req, char *err,
			 size_t errlen)
{
	if (!json_object_is_type(v, json_type_object))
		BAD("\"labels\" must be an object of strings");
	if (json_object_object_length(v) > CTL_LABELS_MAX)
		BAD("\"labels\" has more than %d entries", CTL_LABELS_MAX);
	json_object_object_foreach(v, key, val)
	{
		if (!label_name_valid(key))
			BAD("label name '%.*s' is not [A-Za-z_][A-Za-z0-9_]* of at most 63 bytes",
			    quote_len(key, 80), key);
		if (!string_of(val, CTL_LABEL_MAX))
			BAD("label '%s' must be a string of at most %d bytes with no NUL", key,
			    CTL_LABEL_MAX);
	}
	req->labels = v;
	return 0;
}

static int decode_field(const char *key, struct json_object *v, struct ctl_request *req,
			char *err, size_t errlen)
{
	if (strcmp(key, "sandbox") == 0) {
		req->sandbox = string_of(v, CTL_SANDBOX_MAX);
		if (!req->sandbox || !ctl_sandbox_id_valid(req->sandbox))
			BAD("\"sandbox\" must be 1 to %d characters of [A-Za-z0-9._-], not starting with '.' or '-'",
			    CTL_SANDBOX_MAX);
		return 0;
	}
	if (strcmp(key, "shared_dir") == 0)
		return path_field(v, key, PATH_MAX - 1, &req->shared_dir, err, errlen);
	if (strcmp(key, "socket_path") == 0)
		return path_field(v, key, 107, &req->socket_path, err, errlen);
	if (strcmp(key, "userns") == 0)
		return path_field(v, key, PATH_MAX - 1, &req->userns, err, errlen);
	if (strcmp(key, "cgroup") == 0)
		return path_field(v, key, PATH_MAX - 32, &req->cgroup, err, errlen);
	if (strcmp(key, "args") == 0)
		return decode_args(v, req, err, errlen);
	if (strcmp(key, "labels") == 0)
		return decode_labels(v, req, err, errlen);
	if (strcmp(key, "grace_ms") == 0) {
		int64_t ms;

		if (!json_object_is_type(v, json_type_int))
			BAD("\"grace_ms\" must be an integer");
		ms = json_object_get_int64(v);
		if (ms < 0 || ms > CTL_GRACE_MAX_MS)
			BAD("\"grace_ms\" must be 0 to %d", CTL_GRACE_MAX_MS);
		req->has_grace = true;
		req->grace_ms = (uint32_t)ms;
		return 0;
	}
	if (strcmp(key, "import_state") == 0) {
		if (!json_object_is_type(v, json_type_boolean))
			BAD("\"import_state\" must be true or false (the state comes as a file descriptor with the request)");
		req->import_state = json_object_get_boolean(v);
		return 0;
	}
	return 0; /* "op" and "id": read by the caller */
}

int ctl_json_parse(const char *buf, size_t len, const char *what, int depth, json_type want,
		   struct json_object **out, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *o;

	*out = NULL;
	if (memchr(buf, '\0', len))
		BAD("%s contains a NUL byte", what);
	if (!utf8_valid(buf, len))
		BAD("%s is not UTF-8", what);
	if (len > INT32_MAX)
		BAD("%s is too long", what);
	tok = json_tokener_new_ex(depth);
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);

	/* A bare number or word ("42", "true") may go on: the end of the text ends it. */
	if (jerr == json_tokener_continue && end == len) {
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(o);
		BAD("%s: malformed JSON: %s", what,
		    jerr == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(jerr));
	}
	for (; end < len; end++) {
		if (buf[end] != ' ' && buf[end] != '\t' && buf[end] != '\r' && buf[end] != '\n') {
			json_object_put(o);
			BAD("%s: malformed JSON: text after the object", what);
		}
	}
	/* (json-c has no object for null: "null" parses as NULL) */
	if (!o || !json_object_is_type(o, want)) {
		json_object_put(o);
		BAD("%s is not a JSON %s", what, want == json_type_array ? "array" : "object");
	}
	*out = o;
	return 0;
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, char *err,
		      size_t errlen)
{
	struct json_object *op, *id;
	unsigned int seen = 0;
	const char *name;
	int r;

	*req = (struct ctl_request){ .op = CTL_OP_COUNT };
	if (len > CTL_LINE_MAX) {
		snprintf(err, errlen, "request line longer than %d bytes", CTL_LINE_MAX);
		return -E2BIG;
	}
	r = ctl_json_parse(line, len, "request line", 16, json_type_object, &req->root, err, errlen);
	if (r < 0)
		return r;
	if (json_object_object_get_ex(req->root, "id", &id)) {
		/* (json-c has no object for null: an "id" of null could not be echoed) */
		if (!json_object_is_type(id, json_type_string) && !json_object_is_type(id, json_type_int))
			BAD("\"id\" must be a string or an integer");
		if (json_object_is_type(id, json_type_string) && !string_of(id, 256))
			BAD("\"id\" must be at most 256 bytes with no NUL");
		req->id = id;
	}
	if (!json_object_object_get_ex(req->root, "op", &op))
		BAD("the request has no \"op\"");
	name = string_of(op, 32);
	if (!name)
		BAD("\"op\" must be a string");
	for (unsigned int i = 0; i < CTL_OP_COUNT; i++) {
		if (strcmp(name, ops[i].name) == 0)
			req->op = (enum ctl_op)i;
	}
	if (req->op == CTL_OP_COUNT) {
		snprintf(err, errlen, "unknown op '%s' (the version op lists them)", name);
		return -ENOSYS;
	}
	json_object_object_foreach(req->root, key, val)
	{
		unsigned int bit = 0;

		for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
			if (strcmp(key, fields[i].name) == 0)
				bit = fields[i].bit;
		}
		if (!(bit & (ops[req->op].allowed | F_OP | F_ID)))
			BAD("unknown field '%.*s' for op '%s'", quote_len(key, 80), key, name);
		r = decode_field(key, val, req, err, errlen);
		if (r < 0)
			return r;
		seen |= bit;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if ((ops[req->op].required & fields[i].bit) && !(seen & fields[i].bit))
			BAD("op '%s' needs \"%s\"", name, fields[i].name);
	}
	return 0;
}

void ctl_request_free(struct ctl_request *req)
{
	json_object_put(req->root);
	*req = (struct ctl_request){ .op = CTL_OP_COUNT };
}

struct json_object *ctl_reply_new(bool ok, struct json_object *id)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (id)
		json_object_object_add(o, "id", json_object_get(id));
	return o;
}

struct json_object *ctl_reply_error(struct json_object *id, int errnum, const char *fmt, ...)
{
	struct json_object *o = ctl_reply_new(false, id);
	char msg[1024];
	va_list ap;
	int n;

	if (!o)
		return NULL;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(msg))
		msg[utf8_cut(msg, sizeof(msg) - 1)] = '\0'; /* cut, not inside a character */
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "errno", json_object_new_int(errnum));
	return o;
}

char *ctl_line(struct json_object *obj, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &n);
	char *line = s ? malloc(n + 2) : NULL;

	if (!line)
		return NULL;
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}
