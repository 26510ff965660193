/*
 * libFuzzer target: control request lines decoded by ctl_request_parse() and the replies a
 * supervisor builds for them with ctl_reply_new()/ctl_reply_error(), serialized by ctl_line().
 *
 * Input: the bytes a client writes on its control connection. They are read twice:
 *  - whole, as one request line (newlines and all; past CTL_LINE_MAX bytes it is -E2BIG);
 *  - cut at each '\n' as the supervisor's client_process() does: every complete line is
 *    parsed on its own; a rest without a newline waits for more and is not parsed, unless
 *    it has CTL_LINE_MAX bytes, which gets the supervisor's closing E2BIG reply.
 * Every line is a heap block of exactly its length with no NUL after it, so that
 * AddressSanitizer sees proto.c read past it (json-c itself is not instrumented).
 *
 * A failure gets ctl_reply_error() with the returned errno and message, echoing the id; a
 * success gets a reply that echoes every decoded field (each string, arg and label), and a
 * spawn also the error reply of a spawn that failed later, quoting its shared_dir. Then:
 * the result is consistent with the op's table (required fields set, others not, limits
 * kept); the reply is one line of UTF-8 (docs/control.md: "both ways, UTF-8", whatever the
 * request was) that parses back to the same object; a request re-serialized from what was
 * decoded parses to the same request.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "ctl/proto.h"
#include "fuzz_common.h"

#define ERR_SIZE 512 /* the supervisor's */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static bool utf8_valid(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* An optional path field: absolute when set. */
static void check_path(const char *s, size_t max, const char *what)
{
	if (s) {
		fuzz_check_str(s, max, what);
		FUZZ_CHECK(s[0] == '/', "%s '%s' is not absolute", what, s);
	}
}

static void add_string(struct json_object *o, const char *key, const char *s)
{
	if (s)
		json_object_object_add(o, key, json_object_new_string(s));
}

/* What a decoded request must look like, given its op's entry in proto.c's table. */
static void check_request(const struct ctl_request *req)
{
	bool spawn = req->op == CTL_OP_SPAWN, stop = req->op == CTL_OP_STOP;
	bool status = req->op == CTL_OP_STATUS;
	const char *op;

	FUZZ_CHECK((unsigned int)req->op < CTL_OP_COUNT, "op %d", (int)req->op);
	op = ctl_op_name(req->op);
	FUZZ_CHECK(strcmp(op, "?") != 0, "op %d has no name", (int)req->op);
	FUZZ_CHECK(req->root && json_object_is_type(req->root, json_type_object), "%s: root not an object",
	      op);
	FUZZ_CHECK(!req->id || json_object_is_type(req->id, json_type_string) ||
		      json_object_is_type(req->id, json_type_int),
	      "%s: id of type %s", op, json_type_to_name(json_object_get_type(req->id)));
	if (json_object_is_type(req->id, json_type_string))
		fuzz_check_str(json_object_get_string(req->id), 256, "id");

	FUZZ_CHECK(spawn || stop || status || !req->sandbox, "%s with a sandbox", op);
	if (spawn || stop || status) {
		FUZZ_CHECK(req->sandbox, "%s without a sandbox", op);
		fuzz_check_str(req->sandbox, CTL_SANDBOX_MAX, "sandbox");
		FUZZ_CHECK(ctl_sandbox_id_valid(req->sandbox), "%s: sandbox '%s'", op, req->sandbox);
	}
	FUZZ_CHECK(spawn || (!req->shared_dir && !req->socket_path && !req->userns && !req->cgroup &&
			req->nargs == 0 && !req->labels),
	      "%s with spawn's fields", op);
	FUZZ_CHECK(stop || (!req->has_grace && req->grace_ms == 0), "%s with a grace_ms", op);
	FUZZ_CHECK(!spawn || req->shared_dir, "spawn without a shared_dir");
	check_path(req->shared_dir, PATH_MAX - 1, "shared_dir");
	check_path(req->socket_path, 107, "socket_path");
	check_path(req->userns, PATH_MAX - 1, "userns");
	check_path(req->cgroup, PATH_MAX - 32, "cgroup");
	FUZZ_CHECK(req->nargs <= CTL_ARGS_MAX, "%u args", req->nargs);
	for (unsigned int i = 0; i < req->nargs; i++)
		fuzz_check_str(req->args[i], CTL_ARG_MAX, "an arg");
	if (req->labels) {
		FUZZ_CHECK(json_object_is_type(req->labels, json_type_object), "labels not an object");
		FUZZ_CHECK(json_object_object_length(req->labels) <= CTL_LABELS_MAX, "%d labels",
		      json_object_object_length(req->labels));
		json_object_object_foreach(req->labels, key, val)
		{
			size_t n = fuzz_check_str(key, 63, "a label name");

			FUZZ_CHECK(n > 0, "an empty label name");
			FUZZ_CHECK(json_object_is_type(val, json_type_string), "label %s: %s", key,
			      json_type_to_name(json_object_get_type(val)));
			FUZZ_CHECK(fuzz_check_str(json_object_get_string(val), CTL_LABEL_MAX, "a label") ==
				      (size_t)json_object_get_string_len(val),
			      "label %s has a NUL", key);
		}
	}
	FUZZ_CHECK(req->grace_ms <= CTL_GRACE_MAX_MS, "grace_ms %u", req->grace_ms);
}

/* The reply a supervisor would build for a good request, echoing every decoded field. */
static struct json_object *success_reply(const struct ctl_request *req)
{
	struct json_object *o = ctl_reply_new(true, req->id);

	FUZZ_CHECK(o, "ctl_reply_new failed");
	json_object_object_add(o, "op", json_object_new_string(ctl_op_name(req->op)));
	add_string(o, "sandbox", req->sandbox);
	add_string(o, "shared_dir", req->shared_dir);
	add_string(o, "socket_path", req->socket_path);
	add_string(o, "userns", req->userns);
	add_string(o, "cgroup", req->cgroup);
	if (req->op == CTL_OP_SPAWN) {
		struct json_object *args = json_object_new_array();

		for (unsigned int i = 0; i < req->nargs; i++)
			json_object_array_add(args, json_object_new_string(req->args[i]));
		json_object_object_add(o, "args", args);
	}
	if (req->labels) {
		struct json_object *labels = json_object_new_object();

		json_object_object_foreach(req->labels, key, val)
		{
			json_object_object_add(labels, key,
					       json_object_new_string(json_object_get_string(val)));
		}
		json_object_object_add(o, "labels", labels);
	}
	if (req->has_grace)
		json_object_object_add(o, "grace_ms", json_object_new_int64(req->grace_ms));
	return o;
}

/* Serializes a reply as the supervisor sends it and checks that it is one line of JSON that
 * reads back to the same object. Returns the line (the caller frees it). */
static char *check_reply(struct json_object *o, bool ok, size_t *len)
{
	struct json_object *back, *v;
	size_t n = 0;
	char *line;

	FUZZ_CHECK(o, "no reply object");
	line = ctl_line(o, &n);
	FUZZ_CHECK(line, "ctl_line failed");
	FUZZ_CHECK(n >= 2 && strlen(line) == n, "reply of %zu bytes, strlen %zu", n, strlen(line));
	FUZZ_CHECK(line[n - 1] == '\n', "reply does not end with a newline");
	FUZZ_CHECK(!memchr(line, '\n', n - 1), "reply has a newline inside: %s", line);
	FUZZ_CHECK(utf8_valid((const uint8_t *)line, n), "reply is not UTF-8: %s", line);
	back = json_tokener_parse(line);
	FUZZ_CHECK(json_object_is_type(back, json_type_object), "reply does not parse back: %s", line);
	FUZZ_CHECK(json_object_object_get_ex(back, "ok", &v) && json_object_is_type(v, json_type_boolean) &&
		      json_object_get_boolean(v) == ok,
	      "reply's \"ok\": %s", line);
	FUZZ_CHECK(json_object_equal(o, back), "reply changes on the way: %s", line);
	json_object_put(back);
	*len = n;
	return line;
}

/* A spawn that fails later gets an error naming what it could not use (child.c quotes the
 * daemon's words): with a long shared_dir, past ctl_reply_error()'s 1024 bytes. */
static void spawn_failure(const struct ctl_request *req)
{
	struct json_object *o = ctl_reply_error(req->id, EIO, "sandbox %s: cannot open %s: %s",
						req->sandbox, req->shared_dir, strerror(ENOENT));
	size_t n;
	char *line = check_reply(o, false, &n);

	free(line);
	json_object_put(o);
}

static void trace(const char *what, const char *line, size_t len, int r, const char *reply)
{
	if (fuzz_trace)
		fprintf(stderr, "fuzz: %s %zu bytes '%.*s' -> %d: %s", what, len,
			(int)(len < 200 ? len : 200), line, r, reply);
}

/* One request line through the parser and the reply; a good one also once more as its
 * decoded fields re-serialized, which must decode the same (when it still fits a line). */
static void one_line(const char *data, size_t len, const char *what)
{
	char *line = malloc(len ? len : 1), *reply;
	struct ctl_request req;
	struct json_object *o;
	char err[ERR_SIZE];
	size_t rlen;
	int r;

	FUZZ_CHECK(line, "out of memory");
	memcpy(line, data, len);
	memset(err, 0xa5, sizeof(err));
	r = ctl_request_parse(line, len, &req, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL || r == -ENOSYS || r == -E2BIG || r == -ENOMEM, "returned %d", r);
		FUZZ_CHECK((r == -E2BIG) == (len > CTL_LINE_MAX), "%zu bytes: %d", len, r);
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "error message not NUL-terminated");
		FUZZ_CHECK(err[0] != '\0', "empty error message for %d", r);
		FUZZ_CHECK(req.op == CTL_OP_COUNT || r != -ENOSYS, "unknown op decoded as %d", req.op);
		FUZZ_CHECK(!req.id || json_object_is_type(req.id, json_type_string) ||
			      json_object_is_type(req.id, json_type_int),
		      "echoed id of type %s", json_type_to_name(json_object_get_type(req.id)));
		o = ctl_reply_error(req.id, -r, "%s", err);
		FUZZ_CHECK(o, "ctl_reply_error failed");
		{
			struct json_object *v;

			FUZZ_CHECK(json_object_object_get_ex(o, "error", &v) &&
				      strcmp(json_object_get_string(v), err) == 0,
			      "reply's error is not the message");
		}
	} else {
		FUZZ_CHECK(r == 0, "returned %d", r);
		FUZZ_CHECK(utf8_valid((const uint8_t *)line, len), "a line that is not UTF-8 passed");
		check_request(&req);
		if (req.op == CTL_OP_SPAWN)
			spawn_failure(&req);
		o = success_reply(&req);
	}
	{
		struct json_object *v;

		FUZZ_CHECK(json_object_object_get_ex(o, "id", &v) == (req.id != NULL) &&
			      (!req.id || json_object_equal(v, req.id)),
		      "the id is not echoed");
		FUZZ_CHECK(r == 0 || (json_object_object_get_ex(o, "errno", &v) &&
				 json_object_get_int(v) == -r),
		      "reply's errno is not %d", -r);
	}
	reply = check_reply(o, r == 0, &rlen);
	trace(what, line, len, r, reply);

	if (r == 0) {
		size_t n;
		const char *s = json_object_to_json_string_length(
			req.root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
		struct ctl_request req2;
		struct json_object *o2;
		int r2;

		FUZZ_CHECK(s, "cannot serialize the request");
		if (n <= CTL_LINE_MAX) {
			r2 = ctl_request_parse(s, n, &req2, err, sizeof(err));
			FUZZ_CHECK(r2 == 0, "re-serialized request fails (%d, %s): %s", r2, err, s);
			o2 = success_reply(&req2);
			FUZZ_CHECK(json_object_equal(o, o2), "re-serialized request decodes otherwise: %s", s);
			json_object_put(o2);
			ctl_request_free(&req2);
		}
	}
	free(reply);
	json_object_put(o);
	ctl_request_free(&req);
	FUZZ_CHECK(!req.root && !req.id && req.op == CTL_OP_COUNT, "ctl_request_free left fields");
	free(line);
}

/* The supervisor's closing reply to a line that fills its buffer without a newline. */
static void too_long(void)
{
	struct json_object *o = ctl_reply_error(
		NULL, E2BIG, "request line longer than %d bytes: closing", CTL_LINE_MAX);
	size_t n;
	char *line = check_reply(o, false, &n);

	free(line);
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;

	one_line(p, size, "whole");
	while (left > 0) {
		size_t window = left < CTL_LINE_MAX ? left : CTL_LINE_MAX;
		const char *nl = memchr(p, '\n', window);

		if (!nl) {
			if (left >= CTL_LINE_MAX)
				too_long();
			break;
		}
		one_line(p, (size_t)(nl - p), "line");
		left -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	return 0;
}
