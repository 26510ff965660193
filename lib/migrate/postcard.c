/*
 * The Rust virtiofsd's device state (1.14: serde + postcard 1.x), so that a VM moves
 * between it and vfsd. postcard writes unsigned integers as LEB128 varints, i32 zig-zagged
 * first, bools and Option tags as one byte, strings and vectors as a varint length and the
 * bytes, enums as a varint variant index and the fields, structs as their fields in order:
 *
 *   PassthroughFs     = enum { 0: V1(PassthroughFsV1), 1: V2(PassthroughFsV2) }
 *   PassthroughFsV2   = { v1: PassthroughFsV1, mount_paths: HashMap<u64, String> }
 *   PassthroughFsV1   = { inodes: Vec<Inode>, next_inode: u64, handles: Vec<Handle>,
 *                         next_handle: u64, negotiated_opts: NegotiatedOpts }
 *   NegotiatedOpts    = { writeback, announce_submounts, posix_acl, sup_group_extension: bool }
 *   Inode             = { id: u64, refcount: u64, location: InodeLocation,
 *                         file_handle: Option<SerializableFileHandle> }
 *   InodeLocation     = enum { 0: RootNode, 1: Path { parent: u64, filename: String },
 *                         2: Invalid, 3: FullPath { filename: String },
 *                         4: FileHandle { handle: SerializableFileHandle } }
 *   SerializableFileHandle = { mnt_id: u64, handle_type: i32, handle: Vec<u8> }
 *   Handle            = { id: u64, inode: u64, source: enum { 0: OpenInode { flags: i32 } } }
 *
 * virtiofsd's refcount of an inode is the guest's lookup count plus one for every inode of
 * the stream whose location is Path { parent: it }; the model keeps the lookup count alone.
 * The stream has no FUSE session (minor, flags) and no file positions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "migrate/state.h"

enum { VARIANT_V1, VARIANT_V2 };

/* InodeLocation's variants, and the model's location of each. */
static const uint32_t variant_of_loc[] = {
	[MIG_LOC_ROOT] = 0,	 [MIG_LOC_PATH] = 1,	    [MIG_LOC_INVALID] = 2,
	[MIG_LOC_FULL_PATH] = 3, [MIG_LOC_FILE_HANDLE] = 4,
};
static const enum mig_loc loc_of_variant[] = {
	MIG_LOC_ROOT, MIG_LOC_PATH, MIG_LOC_INVALID, MIG_LOC_FULL_PATH, MIG_LOC_FILE_HANDLE,
};
#define NVARIANTS (sizeof(loc_of_variant) / sizeof(loc_of_variant[0]))

/* The fewest bytes a record takes (an inode: id, refcount, RootNode, None; a handle: id,
 * inode, OpenInode, flags; a mount: key, empty string), to bound counts before allocating. */
#define INODE_MIN  4
#define HANDLE_MIN 4
#define MOUNT_MIN  2

/*
 * Well-formed UTF-8 as Rust's str::from_utf8 takes it (RFC 3629): no overlong forms, no
 * surrogates, nothing past U+10FFFF.
 */
static bool utf8_valid(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		size_t more;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= more)
			return false;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += more + 1;
	}
	return true;
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The parents that Path locations name, sorted (NULL if none): an inode has as many
 * children as its id appears there. 0 or -ENOMEM. */
static int parents_of(const struct mig_state *s, uint64_t **out, size_t *n)
{
	uint64_t *v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < s->ninodes; i++)
		k += s->inodes[i].loc == MIG_LOC_PATH;
	if (!k)
		return 0;
	v = malloc(k * sizeof(*v));
	if (!v)
		return -ENOMEM;
	k = 0;
	for (size_t i = 0; i < s->ninodes; i++)
		if (s->inodes[i].loc == MIG_LOC_PATH)
			v[k++] = s->inodes[i].parent;
	qsort(v, k, sizeof(*v), cmp_u64);
	*out = v;
	*n = k;
	return 0;
}

/* How many times id appears among the n sorted parents. */
static uint64_t children_of(const uint64_t *parents, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n, first;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (parents[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (parents[mid] <= id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - first;
}

/* The largest inode and handle ids of a checked state (which has the root). */
static uint64_t top_inode(const struct mig_state *s)
{
	uint64_t top = 0;

	for (size_t i = 0; i < s->ninodes; i++)
		if (s->inodes[i].id > top)
			top = s->inodes[i].id;
	return top;
}

static bool top_handle(const struct mig_state *s, uint64_t *top)
{
	*top = 0;
	for (size_t i = 0; i < s->nhandles; i++)
		if (s->handles[i].id > *top)
			*top = s->handles[i].id;
	return s->nhandles > 0;
}

/* --- encoding ---------------------------------------------------------------------------- */

/* The stream being written; rc keeps the first failure, and later writes do nothing. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int rc; /* -ENOMEM, or -EFBIG past MIG_STREAM_MAX */
};

static void put(struct wbuf *w, const void *src, size_t n)
{
	if (w->rc || n == 0)
		return;
	if (n > MIG_STREAM_MAX - w->len) {
		w->rc = -EFBIG;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *q;

		while (cap < w->len + n)
			cap *= 2;
		q = realloc(w->p, cap);
		if (!q) {
			w->rc = -ENOMEM;
			return;
		}
		w->p = q;
		w->cap = cap;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_varint(struct wbuf *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	put(w, b, n);
}

static void put_i32(struct wbuf *w, int32_t v)
{
	uint32_t u = (uint32_t)v;

	put_varint(w, (u << 1) ^ (0u - (u >> 31)));
}

static void put_u8(struct wbuf *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put_str(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);

	put_varint(w, n);
	put(w, s, n);
}

static void put_fh(struct wbuf *w, const struct mig_fh *fh)
{
	put_varint(w, fh->mnt_id);
	put_i32(w, fh->type);
	put_varint(w, fh->len);
	put(w, fh->bytes, fh->len);
}

/* What a checked state may still hold that the Rust format cannot: names that are not UTF-8
 * (a Rust String), ids that leave no next number, refcounts past 64 bits. */
static int expressible(const struct mig_state *s, const uint64_t *parents, size_t nparents,
		       char *err, size_t errlen)
{
	uint64_t top;

	for (size_t i = 0; i < s->ninodes; i++) {
		const struct mig_inode *in = &s->inodes[i];
		uint64_t children = children_of(parents, nparents, in->id);

		if ((in->loc == MIG_LOC_PATH || in->loc == MIG_LOC_FULL_PATH) &&
		    !utf8_valid((const uint8_t *)in->name, strlen(in->name)))
			return bad(err, errlen,
				   "inode %" PRIu64
				   "'s name is not UTF-8, which the virtiofsd format "
				   "cannot carry",
				   in->id);
		if (in->nlookup > UINT64_MAX - children)
			return bad(err, errlen,
				   "inode %" PRIu64 "'s lookup count %" PRIu64 " and its %" PRIu64
				   " children overflow a virtiofsd refcount",
				   in->id, in->nlookup, children);
	}
	for (size_t i = 0; i < s->nmounts; i++)
		if (!utf8_valid((const uint8_t *)s->mounts[i].path, strlen(s->mounts[i].path)))
			return bad(err, errlen,
				   "mount %" PRIu64
				   "'s path is not UTF-8, which the virtiofsd format "
				   "cannot carry",
				   s->mounts[i].id);
	if (top_inode(s) == UINT64_MAX)
		return bad(err, errlen, "inode %" PRIu64 " leaves virtiofsd no next inode number",
			   UINT64_MAX);
	if (top_handle(s, &top) && top == UINT64_MAX)
		return bad(err, errlen, "handle %" PRIu64 " leaves virtiofsd no next handle number",
			   UINT64_MAX);
	return 0;
}

/* virtiofsd's counters are above every id it has handed out. */
static uint64_t next_above(uint64_t next, uint64_t top_id)
{
	return next > top_id ? next : top_id + 1;
}

static void put_state(struct wbuf *w, const struct mig_state *s, const uint64_t *parents,
		      size_t nparents)
{
	uint64_t top;

	put_varint(w, VARIANT_V2);
	put_varint(w, s->ninodes);
	for (size_t i = 0; i < s->ninodes; i++) {
		const struct mig_inode *in = &s->inodes[i];

		put_varint(w, in->id);
		put_varint(w, in->nlookup + children_of(parents, nparents, in->id));
		put_varint(w, variant_of_loc[in->loc]);
		switch (in->loc) {
		case MIG_LOC_PATH:
			put_varint(w, in->parent);
			put_str(w, in->name);
			break;
		case MIG_LOC_FULL_PATH:
			put_str(w, in->name);
			break;
		case MIG_LOC_FILE_HANDLE:
			put_fh(w, &in->fh);
			break;
		case MIG_LOC_ROOT:
		case MIG_LOC_INVALID:
			break;
		}
		put_u8(w, in->has_verify);
		if (in->has_verify)
			put_fh(w, &in->verify);
	}
	put_varint(w, next_above(s->next_inode, top_inode(s)));
	put_varint(w, s->nhandles);
	for (size_t i = 0; i < s->nhandles; i++) {
		put_varint(w, s->handles[i].id);
		put_varint(w, s->handles[i].node);
		put_varint(w, 0); /* HandleSource::OpenInode */
		put_i32(w, s->handles[i].flags);
	}
	put_varint(w, top_handle(s, &top) ? next_above(s->next_handle, top) : s->next_handle);
	put_u8(w, s->session.writeback);
	put_u8(w, s->session.announce_submounts);
	put_u8(w, s->session.posix_acl);
	put_u8(w, s->session.sup_groups);
	put_varint(w, s->nmounts);
	for (size_t i = 0; i < s->nmounts; i++) {
		put_varint(w, s->mounts[i].id);
		put_str(w, s->mounts[i].path);
	}
}

int mig_postcard_encode(const struct mig_state *s, uint8_t **out, size_t *len, char *err,
			size_t errlen)
{
	struct wbuf w = { 0 };
	uint64_t *parents;
	size_t nparents;
	int rc;

	*out = NULL;
	*len = 0;
	rc = mig_state_check(s, err, errlen);
	if (rc < 0)
		return rc;
	if (parents_of(s, &parents, &nparents) < 0) {
		snprintf(err, errlen, "out of memory encoding the device state");
		return -ENOMEM;
	}
	rc = expressible(s, parents, nparents, err, errlen);
	if (!rc) {
		put_state(&w, s, parents, nparents);
		rc = w.rc;
		if (rc == -ENOMEM)
			snprintf(err, errlen, "out of memory encoding the device state");
		else if (rc)
			rc = bad(err, errlen,
				 "the device state takes more than the %u bytes a stream may have",
				 MIG_STREAM_MAX);
	}
	free(parents);
	if (rc) {
		free(w.p);
		return rc;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}

/* --- decoding ---------------------------------------------------------------------------- */

/* The stream being read; rc keeps the first failure, and later reads yield zeros. */
struct rd {
	const uint8_t *p;
	size_t pos, end;
	int rc;
	char *err;
	size_t errlen;
};

static void refuse(struct rd *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(struct rd *r, int rc, const char *fmt, ...)
{
	va_list ap;

	if (r->rc)
		return;
	r->rc = rc;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
}

static void oom(struct rd *r)
{
	refuse(r, -ENOMEM, "out of memory decoding the device state");
}

static void truncated(struct rd *r, const char *what, size_t at)
{
	refuse(r, -EINVAL, "state stream is truncated (%s at byte %zu)", what, at);
}

/* The next n bytes, or NULL. */
static const uint8_t *take(struct rd *r, size_t n, const char *what)
{
	const uint8_t *p = r->p + r->pos;

	if (r->rc)
		return NULL;
	if (r->end - r->pos < n) {
		truncated(r, what, r->pos);
		return NULL;
	}
	r->pos += n;
	return p;
}

/*
 * An unsigned integer of bits (32 or 64) bits, as postcard reads it: at most ceil(bits / 7)
 * bytes, the last of which may carry only the bits left (64: 1, 32: 4). A group of zeros
 * at the end is taken, as postcard takes it.
 */
static uint64_t get_varint(struct rd *r, unsigned int bits, const char *what)
{
	unsigned int max = (bits + 6) / 7;
	size_t at = r->pos;
	uint64_t v = 0;

	if (r->rc)
		return 0;
	for (unsigned int i = 0; i < max; i++) {
		uint8_t b;

		if (r->pos == r->end) {
			truncated(r, what, at);
			return 0;
		}
		b = r->p[r->pos++];
		if (i == max - 1 && b >= 1u << (bits % 7))
			break;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return v;
	}
	refuse(r, -EINVAL, "state stream has a varint too long for %u bits (%s at byte %zu)", bits,
	       what, at);
	return 0;
}

static uint64_t get_u64(struct rd *r, const char *what)
{
	return get_varint(r, 64, what);
}

static int32_t get_i32(struct rd *r, const char *what)
{
	uint32_t z = (uint32_t)get_varint(r, 32, what);

	return (int32_t)((z >> 1) ^ (0u - (z & 1)));
}

/* A bool or an Option's tag: one byte, 0 or 1. */
static bool get_tag(struct rd *r, const char *what)
{
	size_t at = r->pos;
	const uint8_t *p = take(r, 1, what);

	if (p && *p > 1)
		refuse(r, -EINVAL, "state stream has %s %u at byte %zu, not 0 or 1", what, *p, at);
	return p && *p == 1;
}

/* A count of records of at least min bytes each: within max, and within what is left. */
static bool count_ok(struct rd *r, uint64_t n, uint64_t max, size_t min, const char *what)
{
	if (r->rc)
		return false;
	if (n > max) {
		refuse(r, -EINVAL,
		       "state stream has %" PRIu64 " %s, more than the %" PRIu64 " accepted", n,
		       what, max);
		return false;
	}
	if (n > (r->end - r->pos) / min) {
		refuse(r, -EINVAL,
		       "state stream is truncated (%" PRIu64
		       " %s cannot fit in the %zu bytes left at "
		       "byte %zu)",
		       n, what, r->end - r->pos, r->pos);
		return false;
	}
	return true;
}

/* A String as a NUL-terminated copy: UTF-8, no NUL inside; NULL on failure. */
static char *get_str(struct rd *r, const char *what)
{
	uint64_t n = get_u64(r, what);
	size_t at = r->pos;
	const uint8_t *p;
	char *s;

	if (!r->rc && n > MIG_NAME_MAX) {
		refuse(r, -EINVAL, "state stream has %s of %" PRIu64 " bytes, more than %u", what,
		       n, MIG_NAME_MAX);
		return NULL;
	}
	p = take(r, n, what);
	if (!p)
		return NULL;
	if (!utf8_valid(p, n)) {
		refuse(r, -EINVAL, "state stream has %s at byte %zu that is not UTF-8", what, at);
		return NULL;
	}
	if (memchr(p, '\0', n)) {
		refuse(r, -EINVAL, "state stream has %s with a NUL byte at byte %zu", what, at);
		return NULL;
	}
	s = malloc(n + 1);
	if (!s) {
		oom(r);
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void get_fh(struct rd *r, struct mig_fh *fh, const char *what)
{
	uint64_t n;
	const uint8_t *p;

	fh->mnt_id = get_u64(r, what);
	fh->type = get_i32(r, what);
	n = get_u64(r, what);
	if (!r->rc && n > MIG_FH_MAX) {
		refuse(r, -EINVAL, "state stream has %s of %" PRIu64 " bytes, more than %u", what,
		       n, MIG_FH_MAX);
		return;
	}
	p = take(r, n, what);
	if (!p)
		return;
	fh->len = (uint32_t)n;
	memcpy(fh->bytes, p, n);
}

static void get_inode(struct rd *r, struct mig_inode *in)
{
	size_t at;
	uint64_t variant;

	in->id = get_u64(r, "an inode's id");
	in->nlookup = get_u64(r, "an inode's refcount"); /* made a lookup count after the check */
	at = r->pos;
	variant = get_varint(r, 32, "an inode's location");
	if (r->rc)
		return;
	if (variant >= NVARIANTS) {
		refuse(r, -EINVAL,
		       "state stream has inode %" PRIu64 " with location %" PRIu64
		       " at byte %zu, which this vfsd does not know",
		       in->id, variant, at);
		return;
	}
	in->loc = loc_of_variant[variant];
	switch (in->loc) {
	case MIG_LOC_PATH:
		in->parent = get_u64(r, "an inode's parent");
		in->name = get_str(r, "an inode's name");
		break;
	case MIG_LOC_FULL_PATH:
		in->name = get_str(r, "an inode's path");
		break;
	case MIG_LOC_FILE_HANDLE:
		get_fh(r, &in->fh, "an inode's file handle");
		break;
	case MIG_LOC_ROOT:
	case MIG_LOC_INVALID:
		break;
	}
	in->has_verify = get_tag(r, "an inode's file_handle option");
	if (in->has_verify)
		get_fh(r, &in->verify, "an inode's verification handle");
}

static void get_handle(struct rd *r, struct mig_handle *h)
{
	size_t at;
	uint64_t source;

	h->id = get_u64(r, "a handle's id");
	h->node = get_u64(r, "a handle's inode");
	at = r->pos;
	source = get_varint(r, 32, "a handle's source");
	if (!r->rc && source != 0) {
		refuse(r, -EINVAL,
		       "state stream has handle %" PRIu64 " with source %" PRIu64
		       " at byte %zu, which this vfsd does not know",
		       h->id, source, at);
		return;
	}
	h->flags = get_i32(r, "a handle's open flags");
}

/* PassthroughFsV1 into s, whose tables are set before they are filled so that
 * mig_state_free() can free what a failure leaves. */
static void get_v1(struct rd *r, struct mig_state *s)
{
	uint64_t n;

	n = get_u64(r, "the inode count");
	if (!count_ok(r, n, MIG_MAX_INODES, INODE_MIN, "inodes"))
		return;
	if (n && !(s->inodes = calloc(n, sizeof(*s->inodes)))) {
		oom(r);
		return;
	}
	s->ninodes = n;
	for (size_t i = 0; i < n && !r->rc; i++)
		get_inode(r, &s->inodes[i]);
	s->next_inode = get_u64(r, "the next inode number");

	n = get_u64(r, "the handle count");
	if (!count_ok(r, n, MIG_MAX_HANDLES, HANDLE_MIN, "handles"))
		return;
	if (n && !(s->handles = calloc(n, sizeof(*s->handles)))) {
		oom(r);
		return;
	}
	s->nhandles = n;
	for (size_t i = 0; i < n && !r->rc; i++)
		get_handle(r, &s->handles[i]);
	s->next_handle = get_u64(r, "the next handle number");

	s->session.writeback = get_tag(r, "the writeback option");
	s->session.announce_submounts = get_tag(r, "the announce_submounts option");
	s->session.posix_acl = get_tag(r, "the posix_acl option");
	s->session.sup_groups = get_tag(r, "the sup_group_extension option");
}

static void get_mounts(struct rd *r, struct mig_state *s)
{
	uint64_t n = get_u64(r, "the mount count");

	if (!count_ok(r, n, MIG_MAX_MOUNTS, MOUNT_MIN, "mounts"))
		return;
	if (n && !(s->mounts = calloc(n, sizeof(*s->mounts)))) {
		oom(r);
		return;
	}
	s->nmounts = n;
	for (size_t i = 0; i < n && !r->rc; i++) {
		s->mounts[i].id = get_u64(r, "a mount's id");
		s->mounts[i].path = get_str(r, "a mount's path");
	}
}

/* Takes the children's references out of the refcounts, leaving the lookup counts. */
static int refcounts_to_lookups(struct mig_state *s, char *err, size_t errlen)
{
	uint64_t *parents;
	size_t nparents;
	int rc = 0;

	if (parents_of(s, &parents, &nparents) < 0) {
		snprintf(err, errlen, "out of memory decoding the device state");
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->ninodes && !rc; i++) {
		struct mig_inode *in = &s->inodes[i];
		uint64_t children = children_of(parents, nparents, in->id);

		if (in->nlookup < children)
			rc = bad(err, errlen,
				 "inode %" PRIu64 " has refcount %" PRIu64 " but %" PRIu64
				 " children name it",
				 in->id, in->nlookup, children);
		else
			in->nlookup -= children;
	}
	free(parents);
	return rc;
}

int mig_postcard_decode(const uint8_t *buf, size_t len, struct mig_state *s, char *err,
			size_t errlen)
{
	struct rd r = { .p = buf, .end = len, .err = err, .errlen = errlen };
	uint64_t version;

	memset(s, 0, sizeof(*s));
	if (len > MIG_STREAM_MAX)
		return bad(err, errlen, "state stream of %zu bytes is larger than the %u accepted",
			   len, MIG_STREAM_MAX);
	version = get_varint(&r, 32, "the state's version");
	if (!r.rc && version > VARIANT_V2) {
		snprintf(err, errlen,
			 "virtiofsd state version V%" PRIu64 "; this vfsd reads V1 and V2",
			 version + 1);
		return -EPROTONOSUPPORT;
	}
	get_v1(&r, s);
	if (version == VARIANT_V2)
		get_mounts(&r, s);
	if (!r.rc && r.pos != len)
		refuse(&r, -EINVAL, "state stream has %zu bytes after the state", len - r.pos);
	if (!r.rc)
		r.rc = mig_state_check(s, err, errlen);
	if (!r.rc)
		r.rc = refcounts_to_lookups(s, err, errlen);
	if (r.rc)
		mig_state_free(s);
	return r.rc;
}
