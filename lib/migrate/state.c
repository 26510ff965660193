/* The device-state model: freeing it, checking what a decoder made of a stream, and the
 * choice of codec. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/codec.h"
#include "migrate/state.h"

#define COMPONENT_MAX 255 /* NAME_MAX: one name in a directory */

/* Open flags a handle never carries: reopening with them on the destination would create or
 * truncate files (the Rust virtiofsd strips them on the source). */
#define HANDLE_FLAGS_NEVER (O_CREAT | O_EXCL | O_TRUNC)

void mig_state_free(struct mig_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ninodes && s->inodes; i++)
		free(s->inodes[i].name);
	free(s->inodes);
	free(s->handles);
	for (size_t i = 0; i < s->nmounts && s->mounts; i++)
		free(s->mounts[i].path);
	free(s->mounts);
	memset(s, 0, sizeof(*s));
}

/* Whether id is among the n ascending values of v. */
static bool sorted_has(const uint64_t *v, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] == id)
			return true;
		if (v[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* The ids (at byte off) of n records of size bytes each, sorted, in *out; NULL if n is 0. A
 * state may list its records in any order: the source's tables go by slot, not by id. */
static int sorted_ids(const void *records, size_t n, size_t size, size_t off, uint64_t **out,
		      char *err, size_t errlen)
{
	uint64_t *v = NULL;

	*out = NULL;
	if (n) {
		v = malloc(n * sizeof(*v));
		if (!v) {
			snprintf(err, errlen, "out of memory checking the device state");
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			memcpy(&v[i], (const char *)records + i * size + off, sizeof(*v));
		qsort(v, n, sizeof(*v), mig_cmp_u64);
	}
	*out = v;
	return 0;
}

static bool is_dot_or_dotdot(const char *c, size_t n)
{
	return (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.');
}

/* One name in a directory: not empty, no '/', not "." or "..", at most NAME_MAX bytes. */
static bool component_ok(const char *name)
{
	size_t n = strnlen(name, COMPONENT_MAX + 1);

	return n > 0 && n <= COMPONENT_MAX && !memchr(name, '/', n) && !is_dot_or_dotdot(name, n);
}

/* A relative path of non-empty components, none "..", and "." only where dot_ok: it stays
 * under the directory it starts from. */
static bool relative_ok(const char *path, bool dot_ok)
{
	size_t n = strnlen(path, MIG_NAME_MAX + 1);

	if (n == 0 || n > MIG_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n;) {
		const char *slash = memchr(path + i, '/', n - i);
		size_t len = slash ? (size_t)(slash - (path + i)) : n - i;

		if (len == 0 || (len == 2 && path[i] == '.' && path[i + 1] == '.') ||
		    (!dot_ok && len == 1 && path[i] == '.'))
			return false;
		i += len + 1;
	}
	return true;
}

/* Ids nonzero with a nonzero slot, each once (ids: sorted); node id 1 and the root are one
 * and the same. */
static int check_inode_ids(const struct mig_state *s, const uint64_t *ids, char *err, size_t errlen)
{
	for (size_t i = 1; i < s->ninodes; i++)
		if (ids[i] == ids[i - 1])
			return mig_bad(err, errlen, "inode %" PRIu64 " appears twice in the state",
				   ids[i]);
	for (size_t i = 0; i < s->ninodes; i++) {
		const struct mig_inode *in = &s->inodes[i];

		if ((uint32_t)in->id == 0)
			return mig_bad(err, errlen,
				   "inode id %#" PRIx64 " has slot 0, which no inode has", in->id);
		if (in->loc == MIG_LOC_ROOT && in->id != 1)
			return mig_bad(err, errlen,
				   "inode %" PRIu64 " is a root, but only node id 1 can be",
				   in->id);
		if (in->loc != MIG_LOC_ROOT && in->id == 1)
			return mig_bad(err, errlen, "inode 1 is not the root");
	}
	if (!s->ninodes || ids[0] != 1)
		return mig_bad(err, errlen, "the state has no root inode (node id 1)");
	return 0;
}

static int check_fh(const struct mig_fh *fh, uint64_t id, const char *what, char *err,
		    size_t errlen)
{
	if (fh->len > MIG_FH_MAX)
		return mig_bad(err, errlen,
			   "inode %" PRIu64 "'s %s has %" PRIu32
			   " bytes, more than the %u a file handle may have",
			   id, what, fh->len, MIG_FH_MAX);
	return 0;
}

static int check_inode(const struct mig_state *s, const struct mig_inode *in, const uint64_t *ids,
		       char *err, size_t errlen)
{
	switch (in->loc) {
	case MIG_LOC_ROOT:
	case MIG_LOC_INVALID:
		break;
	case MIG_LOC_PATH:
		if (in->parent == in->id)
			return mig_bad(err, errlen, "inode %" PRIu64 " is its own parent", in->id);
		if (!sorted_has(ids, s->ninodes, in->parent))
			return mig_bad(err, errlen,
				   "inode %" PRIu64 "'s parent %" PRIu64 " is not in the state",
				   in->id, in->parent);
		if (!in->name || !component_ok(in->name))
			return mig_bad(err, errlen,
				   "inode %" PRIu64 "'s name is not one path component (non-empty, "
				   "no '/', not \".\" or \"..\", at most %u bytes)",
				   in->id, COMPONENT_MAX);
		break;
	case MIG_LOC_FULL_PATH:
		if (!in->name || !relative_ok(in->name, false))
			return mig_bad(err, errlen,
				   "inode %" PRIu64 "'s path is not a relative path of at most %u "
				   "bytes without empty, \".\" or \"..\" components",
				   in->id, MIG_NAME_MAX);
		break;
	case MIG_LOC_FILE_HANDLE:
		if (check_fh(&in->fh, in->id, "file handle", err, errlen))
			return -EINVAL;
		break;
	default:
		return mig_bad(err, errlen, "inode %" PRIu64 " has an unknown location (%d)", in->id,
			   (int)in->loc);
	}
	if (in->has_verify && check_fh(&in->verify, in->id, "verification handle", err, errlen))
		return -EINVAL;
	return 0;
}

static int check_handles(const struct mig_state *s, const uint64_t *ids, char *err, size_t errlen)
{
	uint64_t *hids;
	int rc;

	for (size_t i = 0; i < s->nhandles; i++) {
		const struct mig_handle *h = &s->handles[i];

		if (!sorted_has(ids, s->ninodes, h->node))
			return mig_bad(err, errlen,
				   "handle %" PRIu64 " is on inode %" PRIu64
				   ", which is not in the state",
				   h->id, h->node);
		if (h->flags & HANDLE_FLAGS_NEVER)
			return mig_bad(err, errlen,
				   "handle %" PRIu64
				   " has open flags %#x, with O_CREAT, O_EXCL or O_TRUNC",
				   h->id, (unsigned int)h->flags);
	}
	rc = sorted_ids(s->handles, s->nhandles, sizeof(*s->handles),
			offsetof(struct mig_handle, id), &hids, err, errlen);
	for (size_t i = 1; !rc && i < s->nhandles; i++)
		if (hids[i] == hids[i - 1])
			rc = mig_bad(err, errlen, "handle %" PRIu64 " appears twice in the state",
				 hids[i]);
	free(hids);
	return rc;
}

/* Mounts come in any order (a HashMap in the Rust format); there are few of them. */
static int check_mounts(const struct mig_state *s, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->nmounts; i++) {
		const struct mig_mount *m = &s->mounts[i];

		if (!m->path || !relative_ok(m->path, true))
			return mig_bad(err, errlen,
				   "mount %" PRIu64
				   "'s path is not a relative path of at most %u bytes "
				   "without empty or \"..\" components",
				   m->id, MIG_NAME_MAX);
		for (size_t j = 0; j < i; j++)
			if (s->mounts[j].id == m->id)
				return mig_bad(err, errlen,
					   "mount %" PRIu64 " appears twice in the state", m->id);
	}
	return 0;
}

int mig_state_check(const struct mig_state *s, char *err, size_t errlen)
{
	uint64_t *ids;
	int rc;

	if (s->ninodes > MIG_MAX_INODES || s->nhandles > MIG_MAX_HANDLES ||
	    s->nmounts > MIG_MAX_MOUNTS)
		return mig_bad(
			err, errlen,
			"the state has %zu inodes, %zu handles and %zu mounts; at most %u, %u and "
			"%u are accepted",
			s->ninodes, s->nhandles, s->nmounts, MIG_MAX_INODES, MIG_MAX_HANDLES,
			MIG_MAX_MOUNTS);
	if ((s->ninodes && !s->inodes) || (s->nhandles && !s->handles) ||
	    (s->nmounts && !s->mounts))
		return mig_bad(err, errlen, "the state counts entries it does not hold");
	if (s->session.known && (s->session.minor < 27 || s->session.minor > 1000))
		return mig_bad(err, errlen,
			   "the FUSE session's protocol minor %" PRIu32
			   " is not between 27 and 1000",
			   s->session.minor);
	rc = sorted_ids(s->inodes, s->ninodes, sizeof(*s->inodes), offsetof(struct mig_inode, id),
			&ids, err, errlen);
	if (rc < 0)
		return rc;
	rc = check_inode_ids(s, ids, err, errlen);
	for (size_t i = 0; !rc && i < s->ninodes; i++)
		rc = check_inode(s, &s->inodes[i], ids, err, errlen);
	if (!rc)
		rc = check_handles(s, ids, err, errlen);
	if (!rc)
		rc = check_mounts(s, err, errlen);
	free(ids);
	return rc;
}

int mig_encode(const struct mig_state *s, enum mig_format f, uint8_t **out, size_t *len, char *err,
	       size_t errlen)
{
	switch (f) {
	case MIG_FORMAT_VFSD:
		return mig_native_encode(s, out, len, err, errlen);
	case MIG_FORMAT_VIRTIOFSD:
		return mig_postcard_encode(s, out, len, err, errlen);
	}
	*out = NULL;
	*len = 0;
	return mig_bad(err, errlen, "unknown state format %d", (int)f);
}

int mig_decode(const uint8_t *buf, size_t len, struct mig_state *s, char *err, size_t errlen)
{
	/* A postcard stream starts with its version variant, 0 or 1; 'V' (86) is none, so a
	 * stream cut inside vfsd's magic, or with a damaged one, reaches the decoder that says
	 * so rather than one that would call it a virtiofsd version from the future. */
	if (mig_native_magic(buf, len) || (len > 0 && buf[0] == 'V'))
		return mig_native_decode(buf, len, s, err, errlen);
	return mig_postcard_decode(buf, len, s, err, errlen);
}
