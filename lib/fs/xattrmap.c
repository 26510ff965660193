#include "fs/xattrmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "--xattrmap: ");

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int add_rule(struct vfsd_xattrmap *m, enum vfsd_xattrmap_type type, unsigned int scope,
		    const char *key, size_t keylen, const char *prepend, size_t prependlen)
{
	struct vfsd_xattrmap_rule *r = realloc(m->rules, (m->n + 1) * sizeof(*r));

	if (!r)
		return -ENOMEM;
	m->rules = r;
	r += m->n;
	r->type = type;
	r->scope = scope;
	r->key = strndup(key, keylen);
	r->prepend = strndup(prepend, prependlen);
	if (!r->key || !r->prepend) {
		free(r->key);
		free(r->prepend);
		return -ENOMEM;
	}
	m->n++;
	return 0;
}

/* Reads one field ending in delim at *pos; field/len point into spec. */
static bool next_field(const char *spec, size_t *pos, char delim, const char **field, size_t *len)
{
	const char *start = spec + *pos, *end = strchr(start, delim);

	if (!end)
		return false;
	*field = start;
	*len = (size_t)(end - start);
	*pos += *len + 1;
	return true;
}

static bool field_is(const char *f, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(f, word, len) == 0;
}

int vfsd_xattrmap_parse(const char *spec, struct vfsd_xattrmap *m, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum vfsd_xattrmap_type type;
	} types[] = { { "prefix", XATTRMAP_PREFIX },
		      { "ok", XATTRMAP_OK },
		      { "bad", XATTRMAP_BAD },
		      { "unsupported", XATTRMAP_UNSUPPORTED } };
	size_t pos = 0, nrule = 0;
	int r = 0;

	memset(m, 0, sizeof(*m));
	for (;;) {
		const char *f[4];
		size_t len[4], nfields;
		char delim;
		bool is_map;

		while (spec[pos] && isspace((unsigned char)spec[pos]))
			pos++;
		if (!spec[pos])
			break;
		nrule++;
		delim = spec[pos++];
		if (!next_field(spec, &pos, delim, &f[0], &len[0])) {
			r = parse_error(err, errlen, "rule %zu is incomplete: no '%c' after its type",
					nrule, delim);
			goto fail;
		}
		is_map = field_is(f[0], len[0], "map");
		nfields = is_map ? 3 : 4;
		for (size_t i = 1; i < nfields; i++) {
			if (!next_field(spec, &pos, delim, &f[i], &len[i])) {
				r = parse_error(err, errlen,
						"rule %zu is incomplete: it needs %zu fields, each ended by '%c'",
						nrule, nfields, delim);
				goto fail;
			}
		}
		if (is_map) {
			size_t rest = pos;

			while (spec[rest] && isspace((unsigned char)spec[rest]))
				rest++;
			if (spec[rest]) {
				r = parse_error(err, errlen,
						"a 'map' rule must be the last one (rule %zu is followed by more)",
						nrule);
				goto fail;
			}
			/* prefix all K P; then, for a non-empty K: bad all P K (the guest may not
			 * reach P* itself, and unprefixed host K* names are hidden); then a
			 * catch-all: ok for a non-empty K, bad for an empty one. */
			r = add_rule(m, XATTRMAP_PREFIX, XATTRMAP_CLIENT | XATTRMAP_SERVER, f[1], len[1],
				     f[2], len[2]);
			if (r == 0 && len[1] > 0)
				r = add_rule(m, XATTRMAP_BAD, XATTRMAP_CLIENT | XATTRMAP_SERVER, f[2],
					     len[2], f[1], len[1]);
			if (r == 0)
				r = add_rule(m, len[1] > 0 ? XATTRMAP_OK : XATTRMAP_BAD,
					     XATTRMAP_CLIENT | XATTRMAP_SERVER, "", 0, "", 0);
			if (r < 0)
				goto nomem;
			break;
		}

		size_t t;
		unsigned int scope;

		for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			if (field_is(f[0], len[0], types[t].name))
				break;
		}
		if (t == sizeof(types) / sizeof(types[0])) {
			r = parse_error(err, errlen,
					"rule %zu has the invalid type '%.*s' (prefix, ok, bad, unsupported or map)",
					nrule, (int)len[0], f[0]);
			goto fail;
		}
		if (field_is(f[1], len[1], "client")) {
			scope = XATTRMAP_CLIENT;
		} else if (field_is(f[1], len[1], "server")) {
			scope = XATTRMAP_SERVER;
		} else if (field_is(f[1], len[1], "all")) {
			scope = XATTRMAP_CLIENT | XATTRMAP_SERVER;
		} else {
			r = parse_error(err, errlen,
					"rule %zu has the invalid scope '%.*s' (client, server or all)",
					nrule, (int)len[1], f[1]);
			goto fail;
		}
		r = add_rule(m, types[t].type, scope, f[2], len[2], f[3], len[3]);
		if (r < 0)
			goto nomem;
	}
	if (m->n == 0) {
		r = parse_error(err, errlen, "no rules provided");
		goto fail;
	}
	/* Does some rule catch every name in each direction (an empty key for the client, an
	 * empty prepend for the server)? Without one, an unmatched name is refused. */
	unsigned int caught = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (m->rules[i].scope & XATTRMAP_CLIENT && !m->rules[i].key[0])
			caught |= XATTRMAP_CLIENT;
		if (m->rules[i].scope & XATTRMAP_SERVER && !m->rules[i].prepend[0])
			caught |= XATTRMAP_SERVER;
	}
	m->terminated = caught == (XATTRMAP_CLIENT | XATTRMAP_SERVER);
	return 0;
nomem:
	r = parse_error(err, errlen, "out of memory");
fail:
	vfsd_xattrmap_free(m);
	return r;
}

void vfsd_xattrmap_free(struct vfsd_xattrmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->rules[i].key);
		free(m->rules[i].prepend);
	}
	free(m->rules);
	m->rules = NULL;
	m->n = 0;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int vfsd_xattrmap_to_host(const struct vfsd_xattrmap *m, const char *name, char *out,
			  size_t outlen)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct vfsd_xattrmap_rule *r = &m->rules[i];
		int n;

		if (!(r->scope & XATTRMAP_CLIENT) || !starts_with(name, r->key))
			continue;
		switch (r->type) {
		case XATTRMAP_PREFIX:
			n = snprintf(out, outlen, "%s%s", r->prepend, name);
			return n < 0 || (size_t)n >= outlen ? -ERANGE : 0;
		case XATTRMAP_OK:
			n = snprintf(out, outlen, "%s", name);
			return n < 0 || (size_t)n >= outlen ? -ERANGE : 0;
		case XATTRMAP_BAD:
			return -EPERM;
		case XATTRMAP_UNSUPPORTED:
			return -ENOTSUP;
		}
	}
	return -EPERM; /* no rule: refused (virtiofsd aborts) */
}

const char *vfsd_xattrmap_to_guest(const struct vfsd_xattrmap *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct vfsd_xattrmap_rule *r = &m->rules[i];

		if (!(r->scope & XATTRMAP_SERVER) || !starts_with(name, r->prepend))
			continue;
		switch (r->type) {
		case XATTRMAP_PREFIX:
			return name + strlen(r->prepend);
		case XATTRMAP_OK:
			return name;
		case XATTRMAP_BAD:
		case XATTRMAP_UNSUPPORTED:
			return NULL;
		}
	}
	return NULL;
}
