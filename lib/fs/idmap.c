/* Soft UID/GID translation: the rule grammar and the two lookups. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/idmap.h"

#define ID_SPACE (1ull << 32)

static int add_range(struct vfsd_idmap_dir *d, uint32_t from, uint32_t to, uint64_t count,
		     int kind, const char *spec, char *err, size_t errlen)
{
	struct vfsd_idmap_range *r;

	if ((uint64_t)from + count > ID_SPACE || (kind == IDMAP_SHIFT && (uint64_t)to + count > ID_SPACE)) {
		snprintf(err, errlen, "Range overflow in ID map '%s'", spec);
		return -ERANGE;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (from < d->r[i].from + d->r[i].count && d->r[i].from < from + count) {
			snprintf(err, errlen,
				 "ID map '%s' intersects previously added entry", spec);
			return -EEXIST;
		}
	}
	r = realloc(d->r, (d->n + 1) * sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->r = r;
	d->r[d->n++] = (struct vfsd_idmap_range){ .from = from, .to = to, .count = count,
						  .kind = kind };
	return 0;
}

static const struct {
	const char *name;
	int fields;
} types[] = {
	{ "guest", 3 }, { "host", 3 }, { "squash-guest", 3 }, { "squash-host", 3 },
	{ "forbid-guest", 2 }, { "map", 3 },
};

int vfsd_idmap_add(struct vfsd_idmap *m, const char *spec, char *err, size_t errlen)
{
	char type[32];
	size_t tlen = 0;
	const char *p = spec;
	uint32_t v[3];
	int t = -1, nf = 0, r;
	char sep;

	while (*p && (isalnum((unsigned char)*p) || *p == '-' || *p == '_')) {
		if (tlen + 1 < sizeof(type))
			type[tlen++] = (char)tolower((unsigned char)*p);
		p++;
	}
	type[tlen] = '\0';
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(type, types[i].name) == 0)
			t = (int)i;
	}
	if (t < 0 || !*p) {
		snprintf(err, errlen, "Invalid ID map prefix %s", type);
		return -EINVAL;
	}
	sep = *p++;
	/* the rest, split on sep: every field a decimal u32 */
	for (;;) {
		const char *end = strchr(p, sep);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		unsigned long long x = 0;

		if (len == 0 || len > 10 || strspn(p, "0123456789") < len) {
			snprintf(err, errlen, "Invalid value %.*s in ID map: not a decimal number",
				 (int)(len > 40 ? 40 : len), p);
			return -EINVAL;
		}
		for (size_t i = 0; i < len; i++)
			x = x * 10 + (unsigned)(p[i] - '0');
		if (x > UINT32_MAX) {
			snprintf(err, errlen, "Invalid value %.*s in ID map: too large", (int)len, p);
			return -EINVAL;
		}
		if (nf < 3)
			v[nf] = (uint32_t)x;
		nf++;
		if (!end)
			break;
		p = end + 1;
	}
	if (nf != types[t].fields) {
		snprintf(err, errlen, "Invalid ID map length (expected %d elements, got %d elements)",
			 types[t].fields, nf);
		return -EINVAL;
	}
	err[0] = '\0';
	switch (t) {
	case 0: /* guest:<guest base>:<host base>:<count> */
		return add_range(&m->to_host, v[0], v[1], v[2], IDMAP_SHIFT, spec, err, errlen);
	case 1: /* host:<host base>:<guest base>:<count> */
		return add_range(&m->to_guest, v[0], v[1], v[2], IDMAP_SHIFT, spec, err, errlen);
	case 2: /* squash-guest:<guest base>:<host id>:<count> */
		return add_range(&m->to_host, v[0], v[1], v[2], IDMAP_SQUASH, spec, err, errlen);
	case 3: /* squash-host:<host base>:<guest id>:<count> */
		return add_range(&m->to_guest, v[0], v[1], v[2], IDMAP_SQUASH, spec, err, errlen);
	case 4: /* forbid-guest:<guest base>:<count> */
		return add_range(&m->to_host, v[0], 0, v[1], IDMAP_FORBID, spec, err, errlen);
	default: /* map:<guest base>:<host base>:<count>, both directions */
		r = add_range(&m->to_host, v[0], v[1], v[2], IDMAP_SHIFT, spec, err, errlen);
		return r < 0 ? r : add_range(&m->to_guest, v[1], v[0], v[2], IDMAP_SHIFT, spec, err, errlen);
	}
}

void vfsd_idmap_free(struct vfsd_idmap *m)
{
	free(m->to_host.r);
	free(m->to_guest.r);
	*m = (struct vfsd_idmap){ 0 };
}

static const struct vfsd_idmap_range *find(const struct vfsd_idmap_dir *d, uint32_t id)
{
	for (size_t i = 0; i < d->n; i++) {
		if (id >= d->r[i].from && (uint64_t)id < d->r[i].from + d->r[i].count)
			return &d->r[i];
	}
	return NULL;
}

static uint32_t apply(const struct vfsd_idmap_range *r, uint32_t id)
{
	return r->kind == IDMAP_SQUASH ? r->to : r->to + (id - r->from);
}

int vfsd_idmap_to_host(const struct vfsd_idmap *m, uint32_t guest, uint32_t *host)
{
	const struct vfsd_idmap_range *r = m ? find(&m->to_host, guest) : NULL;

	if (r && r->kind == IDMAP_FORBID)
		return -EPERM;
	*host = r ? apply(r, guest) : guest;
	return 0;
}

uint32_t vfsd_idmap_to_guest(const struct vfsd_idmap *m, uint32_t host)
{
	const struct vfsd_idmap_range *r = m ? find(&m->to_guest, host) : NULL;

	return r ? apply(r, host) : host;
}
