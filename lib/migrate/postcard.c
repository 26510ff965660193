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

#include "base/util.h"
#include "migrate/codec.h"
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
	qsort(v, k, sizeof(*v), mig_cmp_u64);
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

static void put_varint(struct mig_wbuf *w, uint64_t v)
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
	mig_put(w, b, n);
}

static void put_i32(struct mig_wbuf *w, int32_t v)
{
	uint32_t u = (uint32_t)v;

	put_varint(w, (u << 1) ^ (0u - (u >> 31)));
}

static void put_u8(struct mig_wbuf *w, uint8_t v)
{
	mig_put(w, &v, 1);
}

static void put_str(struct mig_wbuf *w, const char *s)
{
	size_t n = strlen(s);

	put_varint(w, n);
	mig_put(w, s, n);
}

static void put_fh(struct mig_wbuf *w, const struct mig_fh *fh)
{
	put_varint(w, fh->mnt_id);
	put_i32(w, fh->type);
	put_varint(w, fh->len);
	mig_put(w, fh->bytes, fh->len);
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
			return mig_bad(err, errlen,
				   "inode %" PRIu64
				   "'s name is not UTF-8, which the virtiofsd format "
				   "cannot carry",
				   in->id);
		if (in->nlookup > UINT64_MAX - children)
			return mig_bad(err, errlen,
				   "inode %" PRIu64 "'s lookup count %" PRIu64 " and its %" PRIu64
				   " children overflow a virtiofsd refcount",
				   in->id, in->nlookup, children);
	}
	for (size_t i = 0; i < s->nmounts; i++)
		if (!utf8_valid((const uint8_t *)s->mounts[i].path, strlen(s->mounts[i].path)))
			return mig_bad(err, errlen,
				   "mount %" PRIu64
				   "'s path is not UTF-8, which the virtiofsd format "
				   "cannot carry",
				   s->mounts[i].id);
	if (top_inode(s) == UINT64_MAX)
		return mig_bad(err, errlen, "inode %" PRIu64 " leaves virtiofsd no next inode number",
			   UINT64_MAX);
	if (top_handle(s, &top) && top == UINT64_MAX)
		return mig_bad(err, errlen, "handle %" PRIu64 " leaves virtiofsd no next handle number",
			   UINT64_MAX);
	return 0;
}

/* virtiofsd's counters are above every id it has handed out. */
static uint64_t next_above(uint64_t next, uint64_t top_id)
{
	return next > top_id ? next : top_id + 1;
}

static void put_state(struct mig_wbuf *w, const struct mig_state *s, const uint64_t *parents,
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
	struct mig_wbuf w = { 0 };
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
			rc = mig_bad(err, errlen,
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

static void truncated(struct mig_rd *r, const char *what, size_t at)
{
	mig_refuse(r, -EINVAL, "state stream is truncated (%s at byte %zu)", what, at);
}

/*
 * An unsigned integer of bits (32 or 64) bits, as postcard reads it: at most ceil(bits / 7)
 * bytes, the last of which may carry only the bits left (64: 1, 32: 4). A group of zeros
 * at the end is taken, as postcard takes it.
 */
static uint64_t get_varint(struct mig_rd *r, unsigned int bits, const char *what)
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
	mig_refuse(r, -EINVAL, "state stream has a varint too long for %u bits (%s at byte %zu)", bits,
	       what, at);
	return 0;
}

static uint64_t get_u64(struct mig_rd *r, const char *what)
{
	return get_varint(r, 64, what);
}

static int32_t get_i32(struct mig_rd *r, const char *what)
{
	uint32_t z = (uint32_t)get_varint(r, 32, what);

	return (int32_t)((z >> 1) ^ (0u - (z & 1)));
}

/* A bool or an Option's tag: one byte, 0 or 1. */
static bool get_tag(struct mig_rd *r, const char *what)
{
	size_t at = r->pos;
	const uint8_t *p = mig_take(r, 1, what);

	if (p && *p > 1)
		mig_refuse(r, -EINVAL, "state stream has %s %u at byte %zu, not 0 or 1", what, *p, at);
	return p && *p == 1;
}

/* A String as a NUL-terminated copy: UTF-8, no NUL inside; NULL on failure. */
static char *get_str(struct mig_rd *r, const char *what)
{
	uint64_t n = get_u64(r, what);
	size_t at = r->pos;
	const uint8_t *p;

	if (!r->rc && n > MIG_NAME_MAX) {
		mig_refuse(r, -EINVAL, "state stream has %s of %" PRIu64 " bytes, more than %u", what,
		       n, MIG_NAME_MAX);
		return NULL;
	}
	p = mig_take(r, n, what);
	if (!p)
		return NULL;
	if (!utf8_valid(p, n)) {
		mig_refuse(r, -EINVAL, "state stream has %s at byte %zu that is not UTF-8", what, at);
		return NULL;
	}
	return mig_copy_str(r, p, n, what);
}

static void get_fh(struct mig_rd *r, struct mig_fh *fh, const char *what)
{
	uint64_t n;
	const uint8_t *p;

	fh->mnt_id = get_u64(r, what);
	fh->type = get_i32(r, what);
	n = get_u64(r, what);
	if (!r->rc && n > MIG_FH_MAX) {
		mig_refuse(r, -EINVAL, "state stream has %s of %" PRIu64 " bytes, more than %u", what,
		       n, MIG_FH_MAX);
		return;
	}
	p = mig_take(r, n, what);
	if (!p)
		return;
	fh->len = (uint32_t)n;
	memcpy(fh->bytes, p, n);
}

static void get_inode(struct mig_rd *r, struct mig_inode *in)
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
		mig_refuse(r, -EINVAL,
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

static void get_handle(struct mig_rd *r, struct mig_handle *h)
{
	size_t at;
	uint64_t source;

	h->id = get_u64(r, "a handle's id");
	h->node = get_u64(r, "a handle's inode");
	at = r->pos;
	source = get_varint(r, 32, "a handle's source");
	if (!r->rc && source != 0) {
		mig_refuse(r, -EINVAL,
		       "state stream has handle %" PRIu64 " with source %" PRIu64
		       " at byte %zu, which this vfsd does not know",
		       h->id, source, at);
		return;
	}
	h->flags = get_i32(r, "a handle's open flags");
}

/* PassthroughFsV1 into s, whose tables are set before they are filled so that
 * mig_state_free() can free what a failure leaves. */
static void get_v1(struct mig_rd *r, struct mig_state *s)
{
	uint64_t n;

	n = get_u64(r, "the inode count");
	if (!mig_count_ok(r, n, MIG_MAX_INODES, INODE_MIN, "inodes"))
		return;
	if (n && !(s->inodes = calloc(n, sizeof(*s->inodes)))) {
		mig_oom(r);
		return;
	}
	s->ninodes = n;
	for (size_t i = 0; i < n && !r->rc; i++)
		get_inode(r, &s->inodes[i]);
	s->next_inode = get_u64(r, "the next inode number");

	n = get_u64(r, "the handle count");
	if (!mig_count_ok(r, n, MIG_MAX_HANDLES, HANDLE_MIN, "handles"))
		return;
	if (n && !(s->handles = calloc(n, sizeof(*s->handles)))) {
		mig_oom(r);
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

static void get_mounts(struct mig_rd *r, struct mig_state *s)
{
	uint64_t n = get_u64(r, "the mount count");

	if (!mig_count_ok(r, n, MIG_MAX_MOUNTS, MOUNT_MIN, "mounts"))
		return;
	if (n && !(s->mounts = calloc(n, sizeof(*s->mounts)))) {
		mig_oom(r);
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
			rc = mig_bad(err, errlen,
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
	struct mig_rd r = { .p = buf, .end = len, .err = err, .errlen = errlen };
	uint64_t version;

	memset(s, 0, sizeof(*s));
	if (len > MIG_STREAM_MAX)
		return mig_bad(err, errlen, "state stream of %zu bytes is larger than the %u accepted",
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
		mig_refuse(&r, -EINVAL, "state stream has %zu bytes after the state", len - r.pos);
	if (!r.rc)
		r.rc = mig_state_check(s, err, errlen);
	if (!r.rc)
		r.rc = refcounts_to_lookups(s, err, errlen);
	if (r.rc)
		mig_state_free(s);
	return r.rc;
}
