/*
 * libFuzzer target: a device-state stream through mig_decode() (lib/migrate/state.c,
 * native.c, postcard.c). The stream comes from the VMM, which took it from another daemon:
 * every byte of it is hostile.
 *
 * Input: a control byte, then the stream.
 *  - bit 0: when the stream has vfsd's magic and room for a header and a trailer, its last
 *    four bytes are replaced by the CRC-32C of the bytes before them, so that mutations reach
 *    past the checksum.
 *
 * A refusal must be -EINVAL, -EPROTONOSUPPORT or -ENOMEM with a message, and leave the state
 * empty. A decoded state must pass mig_state_check() and the checks made here (names and
 * mount paths from the Rust format are UTF-8 by the table of the Unicode standard); then:
 *  - vfsd's format carries all of it: encoding succeeds, gives back the input's very bytes
 *    when the input was in that format, and decodes to an equal state;
 *  - the Rust format is refused exactly when the state holds what it cannot carry (a name or
 *    mount path that is not UTF-8, an id that leaves no next number, a refcount past 64
 *    bits); otherwise it decodes to the same state less what that format has no room for
 *    (the FUSE minor and flags, killpriv_v2, file positions) and with its counters raised
 *    above the ids, and encoding that again gives the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>

#include "fuzz_common.h"
#include "migrate/state.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

/* CRC-32C bit by bit (the code's is table-driven). */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* Well-formed UTF-8 by the table of the Unicode standard (3.9, table 3-7): each lead byte
 * with the range its second byte must be in. */
static bool utf8_ok(const char *str)
{
	const uint8_t *s = (const uint8_t *)str;

	while (*s) {
		uint8_t c = *s, lo = 0x80, hi = 0xbf;
		int more;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1;
		else if (c == 0xe0)
			more = 2, lo = 0xa0;
		else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
			more = 2;
		else if (c == 0xed)
			more = 2, hi = 0x9f;
		else if (c == 0xf0)
			more = 3, lo = 0x90;
		else if (c >= 0xf1 && c <= 0xf3)
			more = 3;
		else if (c == 0xf4)
			more = 3, hi = 0x8f;
		else
			return false;
		if (s[1] < lo || s[1] > hi)
			return false;
		for (int k = 2; k <= more; k++)
			if (s[k] < 0x80 || s[k] > 0xbf)
				return false;
		s += more + 1;
	}
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The ids of n records (each size bytes, the id at off), sorted. */
static uint64_t *sorted(const void *records, size_t n, size_t size, size_t off)
{
	uint64_t *v = malloc((n ? n : 1) * sizeof(*v));

	FUZZ_CHECK(v, "out of memory");
	for (size_t i = 0; i < n; i++)
		memcpy(&v[i], (const char *)records + i * size + off, sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_u64);
	return v;
}

static bool has(const uint64_t *v, size_t n, uint64_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_u64);
}

/* How many of the n sorted values are x. */
static uint64_t count_of(const uint64_t *v, size_t n, uint64_t x)
{
	const uint64_t *p = n ? bsearch(&x, v, n, sizeof(*v), cmp_u64) : NULL;
	size_t lo, hi;

	if (!p)
		return 0;
	lo = hi = (size_t)(p - v);
	while (lo > 0 && v[lo - 1] == x)
		lo--;
	while (hi + 1 < n && v[hi + 1] == x)
		hi++;
	return hi - lo + 1;
}

static uint64_t *parents(const struct mig_state *s, size_t *n)
{
	uint64_t *v = malloc((s->ninodes ? s->ninodes : 1) * sizeof(*v));

	FUZZ_CHECK(v, "out of memory");
	*n = 0;
	for (size_t i = 0; i < s->ninodes; i++)
		if (s->inodes[i].loc == MIG_LOC_PATH)
			v[(*n)++] = s->inodes[i].parent;
	qsort(v, *n, sizeof(*v), cmp_u64);
	return v;
}

static void check_fh(const struct mig_fh *fh)
{
	FUZZ_CHECK(fh->len <= MIG_FH_MAX, "a file handle of %" PRIu32 " bytes", fh->len);
}

/* What a decoded state must be, checked here without the code under test. */
static void check_state(const struct mig_state *s)
{
	uint64_t *ids, *hids;
	size_t roots = 0;

	FUZZ_CHECK(s->ninodes >= 1 && s->ninodes <= MIG_MAX_INODES, "%zu inodes", s->ninodes);
	FUZZ_CHECK(s->nhandles <= MIG_MAX_HANDLES && s->nmounts <= MIG_MAX_MOUNTS, "counts");
	FUZZ_CHECK(!s->session.known || (s->session.minor >= 27 && s->session.minor <= 1000),
		   "minor %" PRIu32, s->session.minor);
	ids = sorted(s->inodes, s->ninodes, sizeof(*s->inodes), offsetof(struct mig_inode, id));
	for (size_t i = 1; i < s->ninodes; i++)
		FUZZ_CHECK(ids[i] != ids[i - 1], "inode %" PRIu64 " twice", ids[i]);
	for (size_t i = 0; i < s->ninodes; i++) {
		const struct mig_inode *in = &s->inodes[i];
		size_t n;

		FUZZ_CHECK((uint32_t)in->id != 0, "inode %#" PRIx64 " has slot 0", in->id);
		FUZZ_CHECK((in->loc == MIG_LOC_ROOT) == (in->id == 1), "root %" PRIu64, in->id);
		roots += in->loc == MIG_LOC_ROOT;
		switch (in->loc) {
		case MIG_LOC_PATH:
			n = fuzz_check_str(in->name, 255, "a name");
			FUZZ_CHECK(n > 0 && !strchr(in->name, '/') && strcmp(in->name, ".") &&
					   strcmp(in->name, ".."),
				   "name \"%s\"", in->name);
			FUZZ_CHECK(in->parent != in->id && has(ids, s->ninodes, in->parent),
				   "inode %" PRIu64 "'s parent %" PRIu64, in->id, in->parent);
			break;
		case MIG_LOC_FULL_PATH:
			n = fuzz_check_str(in->name, MIG_NAME_MAX, "a path");
			FUZZ_CHECK(n > 0 && in->name[0] != '/' && in->name[n - 1] != '/' &&
					   !strstr(in->name, "//") && strcmp(in->name, ".") &&
					   strcmp(in->name, "..") && strncmp(in->name, "./", 2) &&
					   strncmp(in->name, "../", 3) &&
					   !strstr(in->name, "/./") && !strstr(in->name, "/../") &&
					   (n < 2 || strcmp(in->name + n - 2, "/.")) &&
					   (n < 3 || strcmp(in->name + n - 3, "/..")),
				   "path \"%s\"", in->name);
			break;
		case MIG_LOC_FILE_HANDLE:
			check_fh(&in->fh);
			break;
		case MIG_LOC_ROOT:
		case MIG_LOC_INVALID:
			break;
		default:
			FUZZ_CHECK(false, "location %d", (int)in->loc);
		}
		if (in->has_verify)
			check_fh(&in->verify);
	}
	FUZZ_CHECK(roots == 1, "%zu roots", roots);
	hids = sorted(s->handles, s->nhandles, sizeof(*s->handles),
		      offsetof(struct mig_handle, id));
	for (size_t i = 1; i < s->nhandles; i++)
		FUZZ_CHECK(hids[i] != hids[i - 1], "handle %" PRIu64 " twice", hids[i]);
	for (size_t i = 0; i < s->nhandles; i++)
		FUZZ_CHECK(has(ids, s->ninodes, s->handles[i].node) &&
				   !(s->handles[i].flags & (O_CREAT | O_EXCL | O_TRUNC)),
			   "handle %" PRIu64, s->handles[i].id);
	for (size_t i = 0; i < s->nmounts; i++) {
		const char *p = s->mounts[i].path;
		size_t n = fuzz_check_str(p, MIG_NAME_MAX, "a mount path");

		FUZZ_CHECK(n > 0 && p[0] != '/' && strcmp(p, "..") && strncmp(p, "../", 3) &&
				   !strstr(p, "/../") && (n < 3 || strcmp(p + n - 3, "/..")),
			   "mount path \"%s\"", p);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(s->mounts[j].id != s->mounts[i].id, "mount twice");
	}
	free(hids);
	free(ids);
}

/* A Rust String is UTF-8: whatever came in one is. */
static void check_utf8(const struct mig_state *s)
{
	for (size_t i = 0; i < s->ninodes; i++)
		FUZZ_CHECK(!s->inodes[i].name || utf8_ok(s->inodes[i].name),
			   "inode %" PRIu64 "'s name is not UTF-8", s->inodes[i].id);
	for (size_t i = 0; i < s->nmounts; i++)
		FUZZ_CHECK(utf8_ok(s->mounts[i].path), "mount %" PRIu64 "'s path is not UTF-8",
			   s->mounts[i].id);
}

static void same_fh(const struct mig_fh *a, const struct mig_fh *b, uint64_t id)
{
	FUZZ_CHECK(a->mnt_id == b->mnt_id && a->type == b->type && a->len == b->len &&
			   !memcmp(a->bytes, b->bytes, a->len),
		   "inode %" PRIu64 "'s file handle differs", id);
}

static uint64_t above(uint64_t next, uint64_t top)
{
	return next > top ? next : top + 1;
}

/* b holds a's state; through_postcard: less what the Rust format cannot carry. */
static void same_state(const struct mig_state *a, const struct mig_state *b, bool through_postcard)
{
	const struct mig_session *x = &a->session, *y = &b->session;
	uint64_t top = 0, htop = 0;

	for (size_t i = 0; i < a->ninodes; i++)
		top = a->inodes[i].id > top ? a->inodes[i].id : top;
	for (size_t i = 0; i < a->nhandles; i++)
		htop = a->handles[i].id > htop ? a->handles[i].id : htop;
	if (through_postcard) {
		FUZZ_CHECK(!y->known && !y->minor && !y->enabled && !y->killpriv_v2, "session");
		FUZZ_CHECK(b->next_inode == above(a->next_inode, top), "next_inode %" PRIu64,
			   b->next_inode);
		FUZZ_CHECK(b->next_handle ==
				   (a->nhandles ? above(a->next_handle, htop) : a->next_handle),
			   "next_handle %" PRIu64, b->next_handle);
	} else {
		FUZZ_CHECK(x->known == y->known && x->minor == y->minor &&
				   x->enabled == y->enabled && x->killpriv_v2 == y->killpriv_v2,
			   "session");
		FUZZ_CHECK(a->next_inode == b->next_inode && a->next_handle == b->next_handle,
			   "counters");
	}
	FUZZ_CHECK(x->writeback == y->writeback && x->announce_submounts == y->announce_submounts &&
			   x->posix_acl == y->posix_acl && x->sup_groups == y->sup_groups,
		   "session options");
	FUZZ_CHECK(a->ninodes == b->ninodes && a->nhandles == b->nhandles &&
			   a->nmounts == b->nmounts,
		   "counts %zu/%zu/%zu, then %zu/%zu/%zu", a->ninodes, a->nhandles, a->nmounts,
		   b->ninodes, b->nhandles, b->nmounts);
	for (size_t i = 0; i < a->ninodes; i++) {
		const struct mig_inode *p = &a->inodes[i], *q = &b->inodes[i];
		bool named = p->loc == MIG_LOC_PATH || p->loc == MIG_LOC_FULL_PATH;

		FUZZ_CHECK(p->id == q->id && p->nlookup == q->nlookup && p->loc == q->loc,
			   "inode %" PRIu64 " (lookups %" PRIu64 ") came back as %" PRIu64
			   " (lookups %" PRIu64 ")",
			   p->id, p->nlookup, q->id, q->nlookup);
		FUZZ_CHECK(p->loc != MIG_LOC_PATH || p->parent == q->parent, "parent");
		FUZZ_CHECK(named ? q->name && !strcmp(p->name, q->name) : !q->name, "name");
		if (p->loc == MIG_LOC_FILE_HANDLE)
			same_fh(&p->fh, &q->fh, p->id);
		FUZZ_CHECK(p->has_verify == q->has_verify, "has_verify");
		if (p->has_verify)
			same_fh(&p->verify, &q->verify, p->id);
	}
	for (size_t i = 0; i < a->nhandles; i++) {
		const struct mig_handle *p = &a->handles[i], *q = &b->handles[i];

		FUZZ_CHECK(p->id == q->id && p->node == q->node && p->flags == q->flags,
			   "handle %" PRIu64, p->id);
		if (through_postcard)
			FUZZ_CHECK(!q->has_pos && !q->offset && !q->dir_off, "a position");
		else
			FUZZ_CHECK(p->has_pos == q->has_pos && p->offset == q->offset &&
					   p->dir_off == q->dir_off,
				   "handle %" PRIu64 "'s position", p->id);
	}
	for (size_t i = 0; i < a->nmounts; i++)
		FUZZ_CHECK(a->mounts[i].id == b->mounts[i].id &&
				   !strcmp(a->mounts[i].path, b->mounts[i].path),
			   "mount %" PRIu64, a->mounts[i].id);
}

/* Whether the Rust format can carry s (see the top). */
static bool postcard_can(const struct mig_state *s)
{
	size_t np;
	uint64_t *par = parents(s, &np);
	bool ok = true;

	for (size_t i = 0; i < s->ninodes && ok; i++) {
		const struct mig_inode *in = &s->inodes[i];

		if ((in->loc == MIG_LOC_PATH || in->loc == MIG_LOC_FULL_PATH) && !utf8_ok(in->name))
			ok = false;
		if (in->id == UINT64_MAX || in->nlookup > UINT64_MAX - count_of(par, np, in->id))
			ok = false;
	}
	for (size_t i = 0; i < s->nhandles && ok; i++)
		ok = s->handles[i].id != UINT64_MAX;
	for (size_t i = 0; i < s->nmounts && ok; i++)
		ok = utf8_ok(s->mounts[i].path);
	free(par);
	return ok;
}

static void check_refusal(int rc, const char *err, const struct mig_state *s, const char *what)
{
	static const struct mig_state zero;

	FUZZ_CHECK(rc == -EINVAL || rc == -EPROTONOSUPPORT || rc == -ENOMEM, "%s: %d", what, rc);
	fuzz_check_str(err, 511, "the message");
	FUZZ_CHECK(err[0], "%s: %d without a message", what, rc);
	FUZZ_CHECK(!memcmp(s, &zero, sizeof(zero)), "%s left a state behind", what);
}

/* Encodes in f, decodes, compares; returns the stream (NULL when out of memory). */
static uint8_t *round_trip(const struct mig_state *s, enum mig_format f, size_t *len,
			   struct mig_state *back)
{
	char err[512] = "";
	uint8_t *out;
	int rc = mig_encode(s, f, &out, len, err, sizeof(err));

	if (rc == -ENOMEM)
		return NULL;
	FUZZ_CHECK(rc == 0 && out, "encoding a decoded state in format %d: %d %s", (int)f, rc, err);
	rc = mig_decode(out, *len, back, err, sizeof(err));
	if (rc == -ENOMEM) {
		free(out);
		return NULL;
	}
	FUZZ_CHECK(rc == 0, "decoding what format %d wrote: %d %s", (int)f, rc, err);
	same_state(s, back, f == MIG_FORMAT_VIRTIOFSD);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mig_state s, n, p, pp;
	char err[512] = "";
	uint8_t ctl = size ? data[0] : 0, *buf, *out, *again;
	size_t len = size ? size - 1 : 0, olen, alen;
	bool native;
	int rc;

	buf = malloc(len ? len : 1);
	FUZZ_CHECK(buf, "out of memory");
	if (len)
		memcpy(buf, data + 1, len);
	native = mig_native_magic(buf, len);
	if ((ctl & 1) && native && len >= 20) {
		uint32_t c = crc32c(buf, len - 4);

		for (int i = 0; i < 4; i++)
			buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
	}

	memset(&s, 0x5a, sizeof(s));
	rc = mig_decode(buf, len, &s, err, sizeof(err));
	if (fuzz_trace)
		fprintf(stderr, "fuzz: %zu bytes (%s): %d %s\n", len, native ? "vfsd" : "virtiofsd",
			rc, err);
	if (rc) {
		check_refusal(rc, err, &s, "mig_decode");
		free(buf);
		return 0;
	}
	FUZZ_CHECK(mig_state_check(&s, err, sizeof(err)) == 0, "decoded, then refused: %s", err);
	check_state(&s);
	if (!native)
		check_utf8(&s);

	/* vfsd's format: everything, and the very bytes of a stream in it */
	out = round_trip(&s, MIG_FORMAT_VFSD, &olen, &n);
	if (out) {
		FUZZ_CHECK(!native || (olen == len && !memcmp(out, buf, len)),
			   "vfsd's format written again differs (%zu bytes, then %zu)", len, olen);
		free(out);
		mig_state_free(&n);
	}

	/* the Rust format: what it can carry, and canonically */
	if (!postcard_can(&s)) {
		rc = mig_postcard_encode(&s, &out, &olen, err, sizeof(err));
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "the Rust format took it: %d", rc);
		FUZZ_CHECK(!out && !olen && err[0], "a refusal with a stream or no message");
	} else if ((out = round_trip(&s, MIG_FORMAT_VIRTIOFSD, &olen, &p))) {
		again = round_trip(&p, MIG_FORMAT_VIRTIOFSD, &alen, &pp);
		if (again) {
			FUZZ_CHECK(alen == olen && !memcmp(again, out, olen),
				   "the Rust format written twice differs");
			free(again);
			mig_state_free(&pp);
		}
		again = round_trip(&p, MIG_FORMAT_VFSD, &alen, &pp);
		if (again) {
			free(again);
			mig_state_free(&pp);
		}
		free(out);
		mig_state_free(&p);
	}
	mig_state_free(&s);
	free(buf);
	return 0;
}
