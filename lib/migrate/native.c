/*
 * vfsd's own device-state format: fixed-width little-endian fields after a versioned header,
 * and a CRC-32C of every byte before it as the trailer (docs/migration.md has the layout).
 *
 *   header   "VFSDSTAT", u16 major (1), u16 minor (0), u32 flags (0)
 *   session  u8 known, u32 minor, u64 enabled, u8 bits (writeback, announce_submounts,
 *            posix_acl, sup_groups, killpriv_v2 from bit 0)
 *   u64 next_inode, u64 next_handle
 *   u32 ninodes, each: u64 id, u64 nlookup, u8 loc, then by loc (PATH: u64 parent, u16 len,
 *            name; FULL_PATH: u16 len, path; FILE_HANDLE: fh), then u8 has_verify [fh]
 *            where fh = u64 mnt_id, i32 type, u16 len, bytes
 *   u32 nhandles, each: u64 id, u64 node, i32 flags, u8 has_pos, u64 offset, u64 dir_off
 *   u32 nmounts, each: u64 id, u16 len, path
 *   u32 CRC-32C
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "migrate/codec.h"
#include "migrate/state.h"

#define MAGIC	      "VFSDSTAT"
#define MAGIC_LEN     8
#define VERSION_MAJOR 1
#define VERSION_MINOR 0
#define VERSION_END   12 /* magic and version: what is read before anything else */
#define HEADER_LEN    16
#define TRAILER_LEN   4
#define SESSION_BITS  0x1fu

/* The fewest bytes a record takes: a count larger than what is left over this is refused
 * before anything is allocated for it. */
#define INODE_MIN  (8 + 8 + 1 + 1)
#define HANDLE_MIN (8 + 8 + 4 + 1 + 8 + 8)
#define MOUNT_MIN  (8 + 2)

/* CRC-32C (Castagnoli, reflected). The table is made per call: 1 KiB of work, less than any
 * stream, and nothing to initialise once across threads. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t table[256], crc = ~0u;

	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		table[i] = c;
	}
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

bool mig_native_magic(const uint8_t *buf, size_t len)
{
	return len >= MAGIC_LEN && !memcmp(buf, MAGIC, MAGIC_LEN);
}

/* --- encoding ---------------------------------------------------------------------------- */

static void put_le(struct mig_wbuf *w, uint64_t v, size_t n)
{
	uint8_t b[8];

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	mig_put(w, b, n);
}

static void put_fh(struct mig_wbuf *w, const struct mig_fh *fh)
{
	put_le(w, fh->mnt_id, 8);
	put_le(w, (uint32_t)fh->type, 4);
	put_le(w, fh->len, 2);
	mig_put(w, fh->bytes, fh->len);
}

/* A name or path (mig_state_check bounds it to MIG_NAME_MAX, which a u16 holds). */
static void put_str(struct mig_wbuf *w, const char *s)
{
	size_t n = strlen(s);

	put_le(w, n, 2);
	mig_put(w, s, n);
}

static void put_inode(struct mig_wbuf *w, const struct mig_inode *in)
{
	put_le(w, in->id, 8);
	put_le(w, in->nlookup, 8);
	put_le(w, in->loc, 1);
	switch (in->loc) {
	case MIG_LOC_PATH:
		put_le(w, in->parent, 8);
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
	put_le(w, in->has_verify, 1);
	if (in->has_verify)
		put_fh(w, &in->verify);
}

int mig_native_encode(const struct mig_state *s, uint8_t **out, size_t *len, char *err,
		      size_t errlen)
{
	const struct mig_session *se = &s->session;
	struct mig_wbuf w = { 0 };
	int rc;

	*out = NULL;
	*len = 0;
	rc = mig_state_check(s, err, errlen);
	if (rc < 0)
		return rc;
	mig_put(&w, MAGIC, MAGIC_LEN);
	put_le(&w, VERSION_MAJOR, 2);
	put_le(&w, VERSION_MINOR, 2);
	put_le(&w, 0, 4);
	put_le(&w, se->known, 1);
	put_le(&w, se->minor, 4);
	put_le(&w, se->enabled, 8);
	put_le(&w,
	       (unsigned int)se->writeback | (unsigned int)se->announce_submounts << 1 |
		       (unsigned int)se->posix_acl << 2 | (unsigned int)se->sup_groups << 3 |
		       (unsigned int)se->killpriv_v2 << 4,
	       1);
	put_le(&w, s->next_inode, 8);
	put_le(&w, s->next_handle, 8);
	put_le(&w, s->ninodes, 4);
	for (size_t i = 0; i < s->ninodes; i++)
		put_inode(&w, &s->inodes[i]);
	put_le(&w, s->nhandles, 4);
	for (size_t i = 0; i < s->nhandles; i++) {
		const struct mig_handle *h = &s->handles[i];

		put_le(&w, h->id, 8);
		put_le(&w, h->node, 8);
		put_le(&w, (uint32_t)h->flags, 4);
		put_le(&w, h->has_pos, 1);
		put_le(&w, h->offset, 8);
		put_le(&w, h->dir_off, 8);
	}
	put_le(&w, s->nmounts, 4);
	for (size_t i = 0; i < s->nmounts; i++) {
		put_le(&w, s->mounts[i].id, 8);
		put_str(&w, s->mounts[i].path);
	}
	if (!w.rc)
		put_le(&w, crc32c(w.p, w.len), 4);
	if (w.rc) {
		free(w.p);
		if (w.rc == -ENOMEM) {
			snprintf(err, errlen, "out of memory encoding the device state");
			return -ENOMEM;
		}
		snprintf(err, errlen,
			 "the device state takes more than the %u bytes a stream may have",
			 MIG_STREAM_MAX);
		return -EINVAL;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}

/* --- decoding ---------------------------------------------------------------------------- */

static uint64_t get(struct mig_rd *r, size_t n, const char *what)
{
	const uint8_t *p = mig_take(r, n, what);

	return p ? le(p, n) : 0;
}

static bool get_bool(struct mig_rd *r, const char *what)
{
	size_t at = r->pos;
	uint64_t v = get(r, 1, what);

	if (v > 1)
		mig_refuse(r, -EINVAL, "state stream has %s %" PRIu64 " at byte %zu, not 0 or 1", what,
		       v, at);
	return v == 1;
}

static void get_fh(struct mig_rd *r, struct mig_fh *fh, const char *what)
{
	const uint8_t *p;

	fh->mnt_id = get(r, 8, what);
	fh->type = (int32_t)(uint32_t)get(r, 4, what);
	fh->len = (uint32_t)get(r, 2, what);
	if (!r->rc && fh->len > MIG_FH_MAX) {
		mig_refuse(r, -EINVAL, "state stream has %s of %" PRIu32 " bytes, more than %u", what,
		       fh->len, MIG_FH_MAX);
		return;
	}
	p = mig_take(r, fh->len, what);
	if (p)
		memcpy(fh->bytes, p, fh->len);
}

/* A u16-counted string as a NUL-terminated copy; NULL on failure. */
static char *get_str(struct mig_rd *r, const char *what)
{
	size_t n = get(r, 2, what);

	return mig_copy_str(r, mig_take(r, n, what), n, what);
}

static void get_inode(struct mig_rd *r, struct mig_inode *in)
{
	size_t at;
	uint64_t loc;

	in->id = get(r, 8, "an inode's id");
	in->nlookup = get(r, 8, "an inode's lookup count");
	at = r->pos;
	loc = get(r, 1, "an inode's location");
	switch (loc) {
	case MIG_LOC_PATH:
		in->parent = get(r, 8, "an inode's parent");
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
	default:
		mig_refuse(r, -EINVAL,
		       "state stream has inode %" PRIu64 " with location %" PRIu64
		       " at byte %zu, which this vfsd does not know",
		       in->id, loc, at);
		return;
	}
	in->loc = (enum mig_loc)loc;
	in->has_verify = get_bool(r, "an inode's verification flag");
	if (in->has_verify)
		get_fh(r, &in->verify, "an inode's verification handle");
}

static void get_session(struct mig_rd *r, struct mig_session *se)
{
	size_t at;
	uint64_t bits;

	se->known = get_bool(r, "a session flag");
	se->minor = (uint32_t)get(r, 4, "the session's protocol minor");
	se->enabled = get(r, 8, "the session's FUSE flags");
	at = r->pos;
	bits = get(r, 1, "the session's options");
	if (bits & ~(uint64_t)SESSION_BITS)
		mig_refuse(r, -EINVAL,
		       "state stream has session options %#" PRIx64
		       " at byte %zu, with bits this vfsd does not know",
		       bits, at);
	se->writeback = bits & 1;
	se->announce_submounts = bits & 2;
	se->posix_acl = bits & 4;
	se->sup_groups = bits & 8;
	se->killpriv_v2 = bits & 16;
}

/* Everything after the version, up to the trailer: into s, whose tables are set before they
 * are filled so that mig_state_free() can free what a failure leaves. */
static void parse(struct mig_rd *r, struct mig_state *s)
{
	uint64_t flags, n;

	flags = get(r, 4, "the header's flags");
	if (flags)
		mig_refuse(r, -EPROTONOSUPPORT,
		       "state stream has flags %#" PRIx64 " that this vfsd does not know", flags);
	get_session(r, &s->session);
	s->next_inode = get(r, 8, "the next inode number");
	s->next_handle = get(r, 8, "the next handle number");

	n = get(r, 4, "the inode count");
	if (!mig_count_ok(r, n, MIG_MAX_INODES, INODE_MIN, "inodes"))
		return;
	if (n && !(s->inodes = calloc(n, sizeof(*s->inodes)))) {
		mig_oom(r);
		return;
	}
	s->ninodes = n;
	for (size_t i = 0; i < n && !r->rc; i++)
		get_inode(r, &s->inodes[i]);

	n = get(r, 4, "the handle count");
	if (!mig_count_ok(r, n, MIG_MAX_HANDLES, HANDLE_MIN, "handles"))
		return;
	if (n && !(s->handles = calloc(n, sizeof(*s->handles)))) {
		mig_oom(r);
		return;
	}
	s->nhandles = n;
	for (size_t i = 0; i < n && !r->rc; i++) {
		struct mig_handle *h = &s->handles[i];

		h->id = get(r, 8, "a handle's id");
		h->node = get(r, 8, "a handle's inode");
		h->flags = (int32_t)(uint32_t)get(r, 4, "a handle's open flags");
		h->has_pos = get_bool(r, "a handle's position flag");
		h->offset = get(r, 8, "a handle's offset");
		h->dir_off = get(r, 8, "a handle's directory offset");
	}

	n = get(r, 4, "the mount count");
	if (!mig_count_ok(r, n, MIG_MAX_MOUNTS, MOUNT_MIN, "mounts"))
		return;
	if (n && !(s->mounts = calloc(n, sizeof(*s->mounts)))) {
		mig_oom(r);
		return;
	}
	s->nmounts = n;
	for (size_t i = 0; i < n && !r->rc; i++) {
		s->mounts[i].id = get(r, 8, "a mount's id");
		s->mounts[i].path = get_str(r, "a mount's path");
	}
}

/*
 * The trailer is not the checksum of what precedes it, and the parse found no end of the
 * stream: say whether bytes were cut off (the parse ran out), added after a whole stream, or
 * changed. What a parse of changed bytes reports is a symptom; the checksum is the cause.
 */
static void diagnose(struct mig_rd *r, const uint8_t *buf, size_t len)
{
	size_t at = r->pos;

	if (r->truncated || r->rc == -ENOMEM)
		return;
	if (!r->rc && len - at < TRAILER_LEN) {
		mig_refuse(r, -EINVAL, "state stream is truncated (the checksum at byte %zu)", at);
		r->truncated = true;
		return;
	}
	if (!r->rc && len - at > TRAILER_LEN && crc32c(buf, at) == le(buf + at, TRAILER_LEN)) {
		mig_refuse(r, -EINVAL, "state stream goes on for %zu bytes after its checksum",
		       len - at - TRAILER_LEN);
		return;
	}
	if (r->rc)
		at = len - TRAILER_LEN;
	r->rc = 0;
	mig_refuse(r, -EINVAL,
	       "state stream is corrupted (checksum %08" PRIx32 ", its bytes give %08" PRIx32 ")",
	       (uint32_t)le(buf + at, TRAILER_LEN), crc32c(buf, at));
}

int mig_native_decode(const uint8_t *buf, size_t len, struct mig_state *s, char *err, size_t errlen)
{
	struct mig_rd r = { .p = buf, .err = err, .errlen = errlen };
	unsigned int major, minor;
	bool intact;

	memset(s, 0, sizeof(*s));
	if (len > MIG_STREAM_MAX) {
		snprintf(err, errlen, "state stream of %zu bytes is larger than the %u accepted",
			 len, MIG_STREAM_MAX);
		return -EINVAL;
	}
	if (!mig_native_magic(buf, len)) {
		if (len && len < MAGIC_LEN && !memcmp(buf, MAGIC, len))
			snprintf(err, errlen, "state stream is truncated (the magic at byte 0)");
		else
			snprintf(err, errlen, "not a vfsd state stream (no VFSDSTAT magic)");
		return -EINVAL;
	}
	if (len < VERSION_END) {
		snprintf(err, errlen, "state stream is truncated (the version at byte %u)",
			 MAGIC_LEN);
		return -EINVAL;
	}
	major = (unsigned int)le(buf + 8, 2);
	minor = (unsigned int)le(buf + 10, 2);
	if (major != VERSION_MAJOR) {
		snprintf(err, errlen, "state format version %u.%u; this vfsd reads %u.x", major,
			 minor, VERSION_MAJOR);
		return -EPROTONOSUPPORT;
	}
	if (minor != VERSION_MINOR) {
		snprintf(err, errlen, "state format version %u.%u; this vfsd reads %u.%u only",
			 major, minor, VERSION_MAJOR, VERSION_MINOR);
		return -EPROTONOSUPPORT;
	}

	intact = len >= HEADER_LEN + TRAILER_LEN &&
		 crc32c(buf, len - TRAILER_LEN) == le(buf + len - TRAILER_LEN, TRAILER_LEN);
	r.pos = VERSION_END;
	r.end = intact ? len - TRAILER_LEN : len;
	parse(&r, s);
	if (!intact)
		diagnose(&r, buf, len);
	else if (!r.rc && r.pos != r.end)
		mig_refuse(&r, -EINVAL, "state stream has %zu bytes between the state and its checksum",
		       r.end - r.pos);
	if (!r.rc)
		r.rc = mig_state_check(s, err, errlen);
	if (r.rc)
		mig_state_free(s);
	return r.rc;
}
