/* The device-state codecs (lib/migrate/): vfsd's own format and the Rust virtiofsd's
 * postcard stream, round trips, byte vectors worked out by hand, the refcount conversion,
 * and the refusals of hostile streams and of states that break the model's rules. */
#include "test_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/state.h"

/* --- helpers, independent of the code under test ---------------------------------------- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* A stream as the tests write it. */
struct bytes {
	uint8_t b[16384];
	size_t n;
};

static void b_raw(struct bytes *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->b));
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void b_le(struct bytes *b, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)(v >> (8 * i));

		b_raw(b, &c, 1);
	}
}

#define B(b, ...)                                                                                  \
	b_raw((b), (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void b_varint(struct bytes *b, uint64_t v)
{
	do {
		uint8_t c = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));

		b_raw(b, &c, 1);
		v >>= 7;
	} while (v);
}

/* CRC-32C bit by bit, as the definition reads (the table-driven one is the code's). */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* Writes the trailer of a native stream over its last four bytes. */
static void fix_crc(uint8_t *buf, size_t len)
{
	uint32_t c = ref_crc32c(buf, len - 4);

	for (int i = 0; i < 4; i++)
		buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void assert_zero_state(const struct mig_state *s)
{
	static const struct mig_state zero;

	assert_memory_equal(s, &zero, sizeof(zero));
}

static void assert_fh_equal(const struct mig_fh *a, const struct mig_fh *b)
{
	assert_int_equal(a->mnt_id, b->mnt_id);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->bytes, b->bytes, a->len);
}

static void assert_fh_zero(const struct mig_fh *a)
{
	static const struct mig_fh zero;

	assert_memory_equal(a, &zero, sizeof(zero));
}

static uint64_t above(uint64_t next, uint64_t top)
{
	return next > top ? next : top + 1;
}

static uint64_t top_inode(const struct mig_state *s)
{
	uint64_t top = 0;

	for (size_t i = 0; i < s->ninodes; i++)
		top = s->inodes[i].id > top ? s->inodes[i].id : top;
	return top;
}

static uint64_t top_handle(const struct mig_state *s)
{
	uint64_t top = 0;

	for (size_t i = 0; i < s->nhandles; i++)
		top = s->handles[i].id > top ? s->handles[i].id : top;
	return top;
}

/*
 * b holds the state a holds. through_postcard: b went through the Rust format, which has no
 * FUSE minor, flags or killpriv_v2, no file positions, and counters above every id.
 */
static void assert_state_equal(const struct mig_state *a, const struct mig_state *b,
			       bool through_postcard)
{
	if (through_postcard) {
		assert_false(b->session.known);
		assert_int_equal(b->session.minor, 0);
		assert_int_equal(b->session.enabled, 0);
		assert_false(b->session.killpriv_v2);
		assert_int_equal(b->next_inode, above(a->next_inode, top_inode(a)));
		assert_int_equal(b->next_handle, a->nhandles ? above(a->next_handle, top_handle(a))
							     : a->next_handle);
	} else {
		assert_int_equal(b->session.known, a->session.known);
		assert_int_equal(b->session.minor, a->session.minor);
		assert_int_equal(b->session.enabled, a->session.enabled);
		assert_int_equal(b->session.killpriv_v2, a->session.killpriv_v2);
		assert_int_equal(b->next_inode, a->next_inode);
		assert_int_equal(b->next_handle, a->next_handle);
	}
	assert_int_equal(b->session.writeback, a->session.writeback);
	assert_int_equal(b->session.announce_submounts, a->session.announce_submounts);
	assert_int_equal(b->session.posix_acl, a->session.posix_acl);
	assert_int_equal(b->session.sup_groups, a->session.sup_groups);

	assert_int_equal(b->ninodes, a->ninodes);
	for (size_t i = 0; i < a->ninodes; i++) {
		const struct mig_inode *x = &a->inodes[i], *y = &b->inodes[i];

		assert_int_equal(y->id, x->id);
		assert_int_equal(y->nlookup, x->nlookup);
		assert_int_equal(y->loc, x->loc);
		assert_int_equal(y->parent, x->loc == MIG_LOC_PATH ? x->parent : 0);
		if (x->loc == MIG_LOC_PATH || x->loc == MIG_LOC_FULL_PATH)
			assert_string_equal(y->name, x->name);
		else
			assert_null(y->name);
		if (x->loc == MIG_LOC_FILE_HANDLE)
			assert_fh_equal(&x->fh, &y->fh);
		else
			assert_fh_zero(&y->fh);
		assert_int_equal(y->has_verify, x->has_verify);
		if (x->has_verify)
			assert_fh_equal(&x->verify, &y->verify);
		else
			assert_fh_zero(&y->verify);
	}
	assert_int_equal(b->nhandles, a->nhandles);
	for (size_t i = 0; i < a->nhandles; i++) {
		const struct mig_handle *x = &a->handles[i], *y = &b->handles[i];

		assert_int_equal(y->id, x->id);
		assert_int_equal(y->node, x->node);
		assert_int_equal(y->flags, x->flags);
		assert_int_equal(y->has_pos, through_postcard ? false : x->has_pos);
		assert_int_equal(y->offset, through_postcard ? 0 : x->offset);
		assert_int_equal(y->dir_off, through_postcard ? 0 : x->dir_off);
	}
	assert_int_equal(b->nmounts, a->nmounts);
	for (size_t i = 0; i < a->nmounts; i++) {
		assert_int_equal(b->mounts[i].id, a->mounts[i].id);
		assert_string_equal(b->mounts[i].path, a->mounts[i].path);
	}
}

static void decodes(const uint8_t *buf, size_t len, struct mig_state *s)
{
	char err[512] = "";
	int rc = mig_decode(buf, len, s, err, sizeof(err));

	if (rc)
		print_message("decode: %d %s\n", rc, err);
	assert_int_equal(rc, 0);
}

/* mig_decode refuses buf with want_rc and a message holding want_msg, leaving *s empty. */
static void refused(const uint8_t *buf, size_t len, int want_rc, const char *want_msg)
{
	struct mig_state s;
	char err[512] = "";
	int rc;

	memset(&s, 0x5a, sizeof(s));
	rc = mig_decode(buf, len, &s, err, sizeof(err));
	if (rc != want_rc || !strstr(err, want_msg))
		print_message("decode of %zu bytes: %d \"%s\", wanted %d \"%s\"\n", len, rc, err,
			      want_rc, want_msg);
	assert_int_equal(rc, want_rc);
	assert_non_null(strstr(err, want_msg));
	assert_zero_state(&s);
}

static void encodes(const struct mig_state *s, enum mig_format f, uint8_t **out, size_t *len)
{
	char err[512] = "";
	int rc = mig_encode(s, f, out, len, err, sizeof(err));

	if (rc)
		print_message("encode: %d %s\n", rc, err);
	assert_int_equal(rc, 0);
	assert_non_null(*out);
}

/* --- states ------------------------------------------------------------------------------ */

/* The small state of the byte vectors below. */
static void tiny_state(struct mig_state *s)
{
	memset(s, 0, sizeof(*s));
	s->session.writeback = s->session.posix_acl = true;
	s->next_inode = 300;
	s->next_handle = 1;
	s->inodes = calloc(2, sizeof(*s->inodes));
	s->handles = calloc(1, sizeof(*s->handles));
	s->mounts = calloc(1, sizeof(*s->mounts));
	assert_true(s->inodes && s->handles && s->mounts);
	s->ninodes = 2;
	s->inodes[0] = (struct mig_inode){ .id = 1, .nlookup = 2, .loc = MIG_LOC_ROOT };
	s->inodes[1] = (struct mig_inode){
		.id = 2,
		.nlookup = 1,
		.loc = MIG_LOC_PATH,
		.parent = 1,
		.name = xstrdup("a"),
		.has_verify = true,
		.verify = { .mnt_id = 5, .type = -2, .len = 2, .bytes = { 0xab, 0xcd } }
	};
	s->nhandles = 1;
	s->handles[0] = (struct mig_handle){ .id = 0, .node = 2, .flags = O_RDWR };
	s->nmounts = 1;
	s->mounts[0] = (struct mig_mount){ .id = 5, .path = xstrdup(".") };
}

/* Every location kind, verification handles, a parent with a higher id than its child, ids
 * with a generation in the high half, counts that need every varint byte, handle 0. */
#define BIG_ID 0xfffffffe00000007ull
static void rich_state(struct mig_state *s)
{
	struct mig_fh fh128 = { .mnt_id = 21, .type = -7, .len = MIG_FH_MAX };

	for (unsigned int i = 0; i < MIG_FH_MAX; i++)
		fh128.bytes[i] = (uint8_t)(i * 7 + 1);
	memset(s, 0, sizeof(*s));
	s->session = (struct mig_session){ .known = true,
					   .minor = 38,
					   .enabled = 0x123456789abcull,
					   .writeback = true,
					   .posix_acl = true,
					   .sup_groups = true,
					   .killpriv_v2 = true };
	s->next_inode = 0x200000010ull;
	s->next_handle = 7;
	s->ninodes = 8;
	s->inodes = calloc(s->ninodes, sizeof(*s->inodes));
	s->nhandles = 3;
	s->handles = calloc(s->nhandles, sizeof(*s->handles));
	s->nmounts = 3;
	s->mounts = calloc(s->nmounts, sizeof(*s->mounts));
	assert_true(s->inodes && s->handles && s->mounts);
	s->inodes[0] = (struct mig_inode){
		.id = 1,
		.nlookup = 3,
		.loc = MIG_LOC_ROOT,
		.has_verify = true,
		.verify = { .mnt_id = 21, .type = 1, .len = 8, .bytes = { 1, 2, 3, 4, 5, 6, 7, 8 } }
	};
	s->inodes[1] = (struct mig_inode){
		.id = 2, .nlookup = 1, .loc = MIG_LOC_PATH, .parent = 1, .name = xstrdup("dir")
	};
	s->inodes[2] = (struct mig_inode){
		.id = 5,
		.nlookup = 1,
		.loc = MIG_LOC_FILE_HANDLE,
		.fh = { .mnt_id = 33, .type = 0x81, .len = 20, .bytes = { 0xde, 0xad, 0xbe, 0xef } }
	};
	s->inodes[3] = (struct mig_inode){ .id = 9, .nlookup = 4, .loc = MIG_LOC_INVALID };
	s->inodes[4] = (struct mig_inode){ .id = 0x10,
					   .nlookup = 1,
					   .loc = MIG_LOC_PATH,
					   .parent = BIG_ID,
					   .name = xstrdup("later") };
	s->inodes[5] = (struct mig_inode){ .id = 0x100000003ull,
					   .nlookup = 2,
					   .loc = MIG_LOC_PATH,
					   .parent = 2,
					   .name = xstrdup("caf\xc3\xa9"),
					   .has_verify = true,
					   .verify = fh128 };
	s->inodes[6] = (struct mig_inode){ .id = 0x100000004ull,
					   .nlookup = 0,
					   .loc = MIG_LOC_FULL_PATH,
					   .name = xstrdup("dir/sub/file") };
	/* one child: its refcount is UINT64_MAX exactly */
	s->inodes[7] = (struct mig_inode){ .id = BIG_ID,
					   .nlookup = UINT64_MAX - 1,
					   .loc = MIG_LOC_PATH,
					   .parent = 0x100000003ull,
					   .name = xstrdup("x") };
	s->handles[0] = (struct mig_handle){
		.id = 0, .node = 2, .flags = O_RDONLY | O_DIRECTORY, .has_pos = true, .dir_off = 77
	};
	s->handles[1] = (struct mig_handle){ .id = 1,
					     .node = 0x100000003ull,
					     .flags = O_RDWR | O_APPEND,
					     .has_pos = true,
					     .offset = 4096 };
	s->handles[2] = (struct mig_handle){ .id = 300, .node = 5, .flags = O_WRONLY | O_NOATIME };
	s->mounts[0] = (struct mig_mount){ .id = 21, .path = xstrdup(".") };
	s->mounts[1] = (struct mig_mount){ .id = 33, .path = xstrdup("sub/mnt") };
	s->mounts[2] = (struct mig_mount){ .id = 7, .path = xstrdup("a/./b") };
}

/* --- byte vectors ------------------------------------------------------------------------ */

/*
 * The tiny state in vfsd's format, field by field. Offsets of the fields the refusal tests
 * change are kept.
 */
struct native_at {
	size_t flags, known, bits, ninodes, loc2, name2, fh_len2, nhandles, has_pos, node, id2;
};

static void native_tiny(struct bytes *b, struct native_at *at)
{
	b->n = 0;
	b_raw(b, "VFSDSTAT", 8);
	b_le(b, 1, 2); /* major */
	b_le(b, 0, 2); /* minor */
	at->flags = b->n;
	b_le(b, 0, 4);
	at->known = b->n;
	b_le(b, 0, 1); /* session: not known, minor 0, flags 0 */
	b_le(b, 0, 4);
	b_le(b, 0, 8);
	at->bits = b->n;
	b_le(b, 0x05, 1); /* writeback (bit 0), posix_acl (bit 2) */
	b_le(b, 300, 8);  /* next_inode: 2c 01 00 ... */
	b_le(b, 1, 8);	  /* next_handle */
	at->ninodes = b->n;
	b_le(b, 2, 4);
	b_le(b, 1, 8); /* inode 1: id, nlookup 2, ROOT, no verify */
	b_le(b, 2, 8);
	b_le(b, 0, 1);
	b_le(b, 0, 1);
	at->id2 = b->n;
	b_le(b, 2, 8); /* inode 2: id, nlookup 1, PATH, parent 1, "a" */
	b_le(b, 1, 8);
	at->loc2 = b->n;
	b_le(b, 1, 1);
	b_le(b, 1, 8);
	b_le(b, 1, 2);
	at->name2 = b->n;
	b_raw(b, "a", 1);
	b_le(b, 1, 1); /* verify: mnt 5, type -2 (fe ff ff ff), 2 bytes */
	b_le(b, 5, 8);
	b_le(b, 0xfffffffe, 4);
	at->fh_len2 = b->n;
	b_le(b, 2, 2);
	B(b, 0xab, 0xcd);
	at->nhandles = b->n;
	b_le(b, 1, 4);
	b_le(b, 0, 8); /* handle 0 on inode 2, O_RDWR, no position */
	at->node = b->n;
	b_le(b, 2, 8);
	b_le(b, O_RDWR, 4);
	at->has_pos = b->n;
	b_le(b, 0, 1);
	b_le(b, 0, 8);
	b_le(b, 0, 8);
	b_le(b, 1, 4); /* mount 5 at "." */
	b_le(b, 5, 8);
	b_le(b, 1, 2);
	b_raw(b, ".", 1);
	b_le(b, ref_crc32c(b->b, b->n), 4);
}

/*
 * The tiny state in the Rust format, worked out from postcard's rules:
 *   01                      PassthroughFs::V2
 *   02                      inodes: 2
 *   01 03 00 00             id 1, refcount 3 (lookups 2 + child 2), RootNode, None
 *   02 01 01 01 01 61       id 2, refcount 1, Path { parent 1, "a" }
 *   01 05 03 02 ab cd       Some { mnt_id 5, handle_type -2 (zig-zag 3), [ab cd] }
 *   ac 02                   next_inode 300 (0x2c | 0x80, 300 >> 7 = 2)
 *   01 00 02 00 04          handles: 1; id 0, inode 2, OpenInode, flags 2 (zig-zag 4)
 *   01                      next_handle 1
 *   01 00 01 00             writeback, announce_submounts, posix_acl, sup_group_extension
 *   01 05 01 2e             mount_paths: 1; 5 -> "."
 */
static const uint8_t postcard_tiny[] = {
	0x01, 0x02, 0x01, 0x03, 0x00, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x61,
	0x01, 0x05, 0x03, 0x02, 0xab, 0xcd, 0xac, 0x02, 0x01, 0x00, 0x02, 0x00,
	0x04, 0x01, 0x01, 0x00, 0x01, 0x00, 0x01, 0x05, 0x01, 0x2e,
};

/*
 * V1 (no mount_paths), every other location, no handles:
 *   00                      PassthroughFs::V1
 *   04                      inodes: 4
 *   01 01 00 00             id 1, refcount 1, RootNode, None
 *   03 00 03 03 78 2f 79 00 id 3, refcount 0, FullPath { "x/y" }, None
 *   04 01 04 07 02 01 11 00 id 4, refcount 1, FileHandle { mnt 7, type 1 (zig-zag 2), [11] }
 *   05 01 02 00             id 5, refcount 1, Invalid, None
 *   06 00 00                next_inode 6, handles: 0, next_handle 0
 *   00 01 00 00             writeback, announce_submounts (set), posix_acl, sup_group_extension
 */
static const uint8_t postcard_v1[] = {
	0x00, 0x04, 0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 0x03, 0x03, 0x78,
	0x2f, 0x79, 0x00, 0x04, 0x01, 0x04, 0x07, 0x02, 0x01, 0x11, 0x00,
	0x05, 0x01, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
};

/*
 * Refcounts that hold children's references: the root named by 2 and 3, 3 by 4.
 *   01 04                   V2, inodes: 4
 *   01 05 00 00             id 1, refcount 5: 3 lookups + 2 children
 *   02 01 01 01 01 62 00    id 2, refcount 1: 1 lookup; Path { 1, "b" }
 *   03 01 01 01 01 63 00    id 3, refcount 1: 0 lookups + 1 child; Path { 1, "c" }
 *   04 07 01 03 01 64 00    id 4, refcount 7: 7 lookups; Path { 3, "d" }
 *   05 00 00 00 00 00 00 00 next_inode 5, no handles, next_handle 0, no options, no mounts
 */
static const uint8_t postcard_refs[] = {
	0x01, 0x04, 0x01, 0x05, 0x00, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x62,
	0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x63, 0x00, 0x04, 0x07, 0x01, 0x03,
	0x01, 0x64, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
#define REFS_ROOT_REFCOUNT 3  /* offset of the root's refcount */
#define REFS_3_REFCOUNT	   14 /* offset of inode 3's refcount */

static void test_crc_reference(void **state)
{
	(void)state;
	/* The check value of CRC-32C; the trailers below are made with this function. */
	assert_int_equal(ref_crc32c((const uint8_t *)"123456789", 9), 0xe3069283u);
}

static void test_native_vector(void **state)
{
	struct mig_state s, d;
	struct bytes b;
	struct native_at at;
	uint8_t *out;
	size_t len;

	(void)state;
	tiny_state(&s);
	native_tiny(&b, &at);
	assert_int_equal(b.n, 173);
	encodes(&s, MIG_FORMAT_VFSD, &out, &len);
	assert_int_equal(len, b.n);
	assert_memory_equal(out, b.b, len);
	assert_true(mig_native_magic(out, len));
	decodes(b.b, b.n, &d);
	assert_state_equal(&s, &d, false);
	free(out);
	mig_state_free(&d);
	mig_state_free(&s);
}

static void test_postcard_vector(void **state)
{
	struct mig_state s, d;
	uint8_t *out;
	size_t len;

	(void)state;
	tiny_state(&s);
	encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
	assert_int_equal(len, sizeof(postcard_tiny));
	assert_memory_equal(out, postcard_tiny, len);
	assert_false(mig_native_magic(out, len));
	free(out);

	decodes(postcard_tiny, sizeof(postcard_tiny), &d);
	assert_state_equal(&s, &d, true);
	assert_int_equal(d.inodes[0].nlookup, 2); /* refcount 3 less its child */
	assert_int_equal(d.next_inode, 300);
	mig_state_free(&d);
	mig_state_free(&s);
}

static void test_postcard_v1_and_locations(void **state)
{
	struct mig_state d;
	uint8_t *out;
	size_t len;

	(void)state;
	decodes(postcard_v1, sizeof(postcard_v1), &d);
	assert_false(d.session.known);
	assert_false(d.session.writeback);
	assert_true(d.session.announce_submounts);
	assert_int_equal(d.ninodes, 4);
	assert_int_equal(d.inodes[0].loc, MIG_LOC_ROOT);
	assert_int_equal(d.inodes[1].loc, MIG_LOC_FULL_PATH);
	assert_string_equal(d.inodes[1].name, "x/y");
	assert_int_equal(d.inodes[1].nlookup, 0);
	assert_int_equal(d.inodes[2].loc, MIG_LOC_FILE_HANDLE);
	assert_int_equal(d.inodes[2].fh.mnt_id, 7);
	assert_int_equal(d.inodes[2].fh.type, 1);
	assert_int_equal(d.inodes[2].fh.len, 1);
	assert_int_equal(d.inodes[2].fh.bytes[0], 0x11);
	assert_false(d.inodes[2].has_verify);
	assert_int_equal(d.inodes[3].loc, MIG_LOC_INVALID);
	assert_int_equal(d.inodes[3].id, 5);
	assert_int_equal(d.next_inode, 6);
	assert_int_equal(d.nhandles, 0);
	assert_int_equal(d.nmounts, 0);

	/* Written back as V2: the same bytes after the variant, and an empty mount map. */
	encodes(&d, MIG_FORMAT_VIRTIOFSD, &out, &len);
	assert_int_equal(len, sizeof(postcard_v1) + 1);
	assert_int_equal(out[0], 0x01);
	assert_memory_equal(out + 1, postcard_v1 + 1, sizeof(postcard_v1) - 1);
	assert_int_equal(out[len - 1], 0x00);
	free(out);
	mig_state_free(&d);
}

static void test_refcounts(void **state)
{
	struct mig_state d;
	uint8_t bad[sizeof(postcard_refs)], *out;
	size_t len;

	(void)state;
	decodes(postcard_refs, sizeof(postcard_refs), &d);
	assert_int_equal(d.inodes[0].nlookup, 3);
	assert_int_equal(d.inodes[1].nlookup, 1);
	assert_int_equal(d.inodes[2].nlookup, 0);
	assert_int_equal(d.inodes[3].nlookup, 7);
	encodes(&d, MIG_FORMAT_VIRTIOFSD, &out, &len);
	assert_int_equal(len, sizeof(postcard_refs));
	assert_memory_equal(out, postcard_refs, len);
	free(out);

	/* vfsd's format keeps the lookup counts as they are. */
	encodes(&d, MIG_FORMAT_VFSD, &out, &len);
	assert_int_equal(out[50 + 8], 3); /* inode 1's nlookup, after the 50-byte prelude */
	free(out);
	mig_state_free(&d);

	memcpy(bad, postcard_refs, sizeof(bad));
	bad[REFS_ROOT_REFCOUNT] = 1;
	refused(bad, sizeof(bad), -EINVAL, "inode 1 has refcount 1 but 2 children name it");
	bad[REFS_ROOT_REFCOUNT] = 0;
	refused(bad, sizeof(bad), -EINVAL, "inode 1 has refcount 0 but 2 children name it");
	memcpy(bad, postcard_refs, sizeof(bad));
	bad[REFS_3_REFCOUNT] = 0;
	refused(bad, sizeof(bad), -EINVAL, "inode 3 has refcount 0 but 1 children name it");
}

static void test_round_trip_native(void **state)
{
	struct mig_state s, d;
	uint8_t *out, *again;
	size_t len, len2;

	(void)state;
	rich_state(&s);
	encodes(&s, MIG_FORMAT_VFSD, &out, &len);
	decodes(out, len, &d);
	assert_state_equal(&s, &d, false);
	encodes(&d, MIG_FORMAT_VFSD, &again, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, out, len);
	free(again);
	free(out);
	mig_state_free(&d);
	mig_state_free(&s);
	assert_zero_state(&s);
}

static void test_round_trip_postcard(void **state)
{
	struct mig_state s, d, n;
	uint8_t *out, *again;
	size_t len, len2;

	(void)state;
	rich_state(&s);
	encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
	decodes(out, len, &d);
	assert_state_equal(&s, &d, true);
	assert_int_equal(d.next_inode, BIG_ID + 1);
	assert_int_equal(d.next_handle, 301);
	assert_int_equal(d.inodes[7].nlookup, UINT64_MAX - 1);
	/* Canonical: what was decoded is written the same way again. */
	encodes(&d, MIG_FORMAT_VIRTIOFSD, &again, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, out, len);
	free(again);
	/* And through vfsd's format, nothing more is lost. */
	encodes(&d, MIG_FORMAT_VFSD, &again, &len2);
	decodes(again, len2, &n);
	assert_state_equal(&d, &n, false);
	free(again);
	free(out);
	mig_state_free(&n);
	mig_state_free(&d);
	mig_state_free(&s);
}

/* The counters are raised above the ids, never lowered. */
static void test_postcard_counters(void **state)
{
	struct mig_state s, d;
	uint8_t *out;
	size_t len;

	(void)state;
	tiny_state(&s);
	s.next_inode = 0;
	s.next_handle = 0;
	encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
	decodes(out, len, &d);
	assert_int_equal(d.next_inode, 3);
	assert_int_equal(d.next_handle, 1);
	free(out);
	mig_state_free(&d);

	free(s.handles);
	s.handles = NULL;
	s.nhandles = 0;
	s.next_handle = 42;
	encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
	decodes(out, len, &d);
	assert_int_equal(d.next_handle, 42);
	free(out);
	mig_state_free(&d);
	mig_state_free(&s);
}

/* --- varints ----------------------------------------------------------------------------- */

/* A V1 stream with only the root, whose next_inode is the bytes given. */
static void with_next_inode(struct bytes *b, const uint8_t *v, size_t n)
{
	b->n = 0;
	B(b, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00);
	b_raw(b, v, n);
	B(b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
}

static void test_varints(void **state)
{
	static const uint8_t max64[] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
	};
	static const uint8_t over64[] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02
	};
	static const uint8_t long64[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					  0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t padded[] = { 0x82, 0x80, 0x00 }; /* 2, with groups of zeros */
	struct mig_state d;
	struct bytes b;

	(void)state;
	with_next_inode(&b, max64, sizeof(max64));
	decodes(b.b, b.n, &d);
	assert_int_equal(d.next_inode, UINT64_MAX);
	mig_state_free(&d);
	with_next_inode(&b, padded, sizeof(padded));
	decodes(b.b, b.n, &d);
	assert_int_equal(d.next_inode, 2);
	mig_state_free(&d);
	with_next_inode(&b, over64, sizeof(over64));
	refused(b.b, b.n, -EINVAL, "varint too long for 64 bits (the next inode number at byte 6)");
	with_next_inode(&b, long64, sizeof(long64));
	refused(b.b, b.n, -EINVAL, "varint too long for 64 bits");

	/* i32 zig-zag at its ends, through a handle's flags (5 bytes at most, 4 bits in the
	 * last): INT32_MIN is ff ff ff ff 0f, -1 is 01; a fifth byte of 0x10 overflows. */
	static const struct {
		uint8_t v[6];
		size_t n;
		int32_t want;
	} flags[] = {
		{ { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5, INT32_MIN },
		{ { 0xfe, 0xff, 0xff, 0xff, 0x0f }, 5, INT32_MAX },
		{ { 0x01 }, 1, -1 },
		{ { 0x80, 0x01 }, 2, 64 },		  /* O_CREAT */
		{ { 0x84, 0x10 }, 2, O_RDWR | O_APPEND }, /* 0x402, zig-zag 0x804 */
		{ { 0xfb, 0xff, 0xff, 0xff, 0x0f },
		  5,
		  INT32_MIN | O_RDWR }, /* zig-zag 0xfffffffb */
	};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		b.n = 0;
		B(&b, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x02, 0x01, 0x09, 0x01, 0x00);
		b_raw(&b, flags[i].v, flags[i].n);
		B(&b, 0x0a, 0x00, 0x00, 0x00, 0x00);
		if (flags[i].want & (O_CREAT | O_EXCL | O_TRUNC)) {
			refused(b.b, b.n, -EINVAL, "O_CREAT, O_EXCL or O_TRUNC");
			continue;
		}
		decodes(b.b, b.n, &d);
		assert_int_equal(d.handles[0].flags, flags[i].want);
		assert_int_equal(d.handles[0].id, 9);
		assert_int_equal(d.next_handle, 10);
		mig_state_free(&d);
	}
	b.n = 0;
	B(&b, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x02, 0x01, 0x09, 0x01, 0x00, 0xff, 0xff, 0xff,
	  0xff, 0x10, 0x0a, 0x00, 0x00, 0x00, 0x00);
	refused(b.b, b.n, -EINVAL,
		"varint too long for 32 bits (a handle's open flags at byte 11)");
}

/* An i32 at its ends written as zig-zag: INT32_MIN as ff ff ff ff 0f, -1 as 01. */
static void test_zigzag_encode(void **state)
{
	struct mig_state s;
	uint8_t *out;
	size_t len;

	(void)state;
	tiny_state(&s);
	s.inodes[1].verify.type = INT32_MIN;
	encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
	/* postcard_tiny with handle_type's one byte (offset 14) replaced by five */
	assert_int_equal(len, sizeof(postcard_tiny) + 4);
	assert_memory_equal(out, postcard_tiny, 14);
	assert_memory_equal(out + 14, ((const uint8_t[]){ 0xff, 0xff, 0xff, 0xff, 0x0f }), 5);
	assert_memory_equal(out + 19, postcard_tiny + 15, sizeof(postcard_tiny) - 15);
	free(out);
	s.inodes[1].verify.type = -1;
	encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
	assert_int_equal(len, sizeof(postcard_tiny));
	assert_int_equal(out[14], 0x01);
	free(out);
	mig_state_free(&s);
}

/* --- refusals of streams ----------------------------------------------------------------- */

static void test_native_refusals(void **state)
{
	struct bytes b;
	struct native_at at;
	uint8_t *p = b.b;

	(void)state;
	/* the header */
	native_tiny(&b, &at);
	p[7] = 'X';
	refused(p, b.n, -EINVAL, "not a vfsd state stream");
	native_tiny(&b, &at);
	p[8] = 2;
	refused(p, b.n, -EPROTONOSUPPORT, "state format version 2.0; this vfsd reads 1.x");
	native_tiny(&b, &at);
	p[8] = 0;
	refused(p, b.n, -EPROTONOSUPPORT, "state format version 0.0; this vfsd reads 1.x");
	native_tiny(&b, &at);
	p[10] = 1;
	refused(p, b.n, -EPROTONOSUPPORT, "state format version 1.1; this vfsd reads 1.0");
	native_tiny(&b, &at);
	p[at.flags] = 1;
	fix_crc(p, b.n);
	refused(p, b.n, -EPROTONOSUPPORT, "flags 0x1 that this vfsd does not know");
	/* a damaged flags field is damage, not a feature */
	native_tiny(&b, &at);
	p[at.flags] = 1;
	refused(p, b.n, -EINVAL, "state stream is corrupted (checksum");

	/* the checksum */
	native_tiny(&b, &at);
	p[at.name2] = 'b';
	refused(p, b.n, -EINVAL, "state stream is corrupted (checksum");
	native_tiny(&b, &at);
	p[b.n - 1] ^= 0x80;
	refused(p, b.n, -EINVAL, "state stream is corrupted (checksum");
	native_tiny(&b, &at);
	/* the last path runs over the trailer, zeroed, to the very end: refused for its NUL,
	 * then blamed on the checksum, read where it is and not past the end */
	p[b.n - 7] = 5;
	memset(p + b.n - 4, 0, 4);
	refused(p, b.n, -EINVAL, "state stream is corrupted (checksum 00000000");
	native_tiny(&b, &at);
	p[at.known] = 7; /* a bad value under a bad checksum: the checksum is said */
	refused(p, b.n, -EINVAL, "state stream is corrupted (checksum");
	native_tiny(&b, &at);
	B(&b, 0x00);
	refused(p, b.n, -EINVAL, "goes on for 1 bytes after its checksum");
	native_tiny(&b, &at);
	B(&b, 0x00);
	p[b.n - 5] = 0x77; /* a byte between the last mount and the trailer, under its checksum */
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "has 1 bytes between the state and its checksum");

	/* values, under a good checksum */
	native_tiny(&b, &at);
	p[at.known] = 2;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "a session flag 2 at byte 16, not 0 or 1");
	native_tiny(&b, &at);
	p[at.bits] = 0x25;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL,
		"session options 0x25 at byte 29, with bits this vfsd does not know");
	native_tiny(&b, &at);
	p[at.loc2] = 7;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "inode 2 with location 7");
	native_tiny(&b, &at);
	p[at.name2] = '\0';
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "an inode's name with a NUL byte");
	native_tiny(&b, &at);
	p[at.name2] = '/';
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "inode 2's name is not one path component");
	native_tiny(&b, &at);
	p[at.fh_len2] = 129;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "an inode's verification handle of 129 bytes, more than 128");
	native_tiny(&b, &at);
	p[at.has_pos] = 3;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "a handle's position flag 3");
	native_tiny(&b, &at);
	p[at.node] = 9;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "handle 0 is on inode 9, which is not in the state");
	native_tiny(&b, &at);
	p[at.id2] = 1;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "inode 1 appears twice");
	native_tiny(&b, &at);
	p[at.id2 + 5] = 1; /* inode 2 becomes 0x10000000002: the handle's inode 2 is gone */
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "handle 0 is on inode 2");

	/* counts: bounded by what is left before anything is allocated, and by the limits */
	native_tiny(&b, &at);
	p[at.ninodes] = 0xe8; /* 1000 */
	p[at.ninodes + 1] = 0x03;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "state stream is truncated (1000 inodes cannot fit in the");
	native_tiny(&b, &at);
	p[at.ninodes] = 1;
	p[at.ninodes + 3] = 1; /* 2^24 + 1 */
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "16777217 inodes, more than the 16777216 accepted");
	native_tiny(&b, &at);
	p[at.nhandles + 3] = 0x80;
	fix_crc(p, b.n);
	refused(p, b.n, -EINVAL, "2147483649 handles, more than the 16777216 accepted");

	/* larger than any stream: refused before a byte is read past the header */
	native_tiny(&b, &at);
	refused(p, (size_t)MIG_STREAM_MAX + 1, -EINVAL, "larger than the 1073741824 accepted");
}

static void test_truncation_everywhere(void **state)
{
	struct mig_state s;
	struct bytes b;
	struct native_at at;
	uint8_t *out;
	size_t len;

	(void)state;
	native_tiny(&b, &at);
	for (size_t cut = 0; cut < b.n; cut++)
		refused(b.b, cut, -EINVAL, "state stream is truncated");
	for (size_t cut = 0; cut < sizeof(postcard_tiny); cut++)
		refused(postcard_tiny, cut, -EINVAL, "state stream is truncated");
	for (size_t cut = 0; cut < sizeof(postcard_v1); cut++)
		refused(postcard_v1, cut, -EINVAL, "state stream is truncated");

	/* the rich state, in both formats */
	rich_state(&s);
	encodes(&s, MIG_FORMAT_VFSD, &out, &len);
	for (size_t cut = 0; cut < len; cut++)
		refused(out, cut, -EINVAL, "state stream is truncated");
	free(out);
	encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
	for (size_t cut = 0; cut < len; cut++)
		refused(out, cut, -EINVAL, "state stream is truncated");
	free(out);
	mig_state_free(&s);
}

/* The postcard_tiny stream with byte at replaced by the bytes given. */
static void tiny_with(struct bytes *b, size_t at, size_t drop, const uint8_t *v, size_t n)
{
	b->n = 0;
	b_raw(b, postcard_tiny, at);
	b_raw(b, v, n);
	b_raw(b, postcard_tiny + at + drop, sizeof(postcard_tiny) - at - drop);
}
#define TINY_WITH(b, at, drop, ...)                                                                \
	tiny_with((b), (at), (drop), (const uint8_t[]){ __VA_ARGS__ },                             \
		  sizeof((const uint8_t[]){ __VA_ARGS__ }))
/* Offsets in postcard_tiny. */
#define PT_NAME_LEN	10 /* inode 2's filename length (01), then 'a' */
#define PT_OPTION	12 /* inode 2's Option tag (01) */
#define PT_FH_LEN	15 /* its handle's length (02) */
#define PT_SOURCE	23 /* the handle's source (00) */
#define PT_OPTS		26 /* the four bools */
#define PT_HANDLE_INODE 22 /* the handle's inode (02) */

static void test_postcard_refusals(void **state)
{
	struct bytes b;

	(void)state;
	/* versions */
	TINY_WITH(&b, 0, 1, 0x02);
	refused(b.b, b.n, -EPROTONOSUPPORT,
		"virtiofsd state version V3; this vfsd reads V1 and V2");
	/* bools and options */
	TINY_WITH(&b, PT_OPTS, 1, 0x02);
	refused(b.b, b.n, -EINVAL, "the writeback option 2 at byte 26, not 0 or 1");
	TINY_WITH(&b, PT_OPTS + 3, 1, 0xff);
	refused(b.b, b.n, -EINVAL, "the sup_group_extension option 255");
	TINY_WITH(&b, PT_OPTION, 1, 0x02);
	refused(b.b, b.n, -EINVAL, "an inode's file_handle option 2 at byte 12");
	/* enums */
	TINY_WITH(&b, 8, 1, 0x05);
	refused(b.b, b.n, -EINVAL,
		"inode 2 with location 5 at byte 8, which this vfsd does not know");
	TINY_WITH(&b, PT_SOURCE, 1, 0x01);
	refused(b.b, b.n, -EINVAL, "handle 0 with source 1");
	/* strings: UTF-8 strictly, no NUL; "a" becomes the bytes given */
	static const struct {
		uint8_t v[5];
		size_t n;
	} not_utf8[] = {
		{ { 0xff }, 1 },		   /* never in UTF-8 */
		{ { 0x80 }, 1 },		   /* a continuation alone */
		{ { 0xc0, 0xaf }, 2 },		   /* overlong '/' */
		{ { 0xe0, 0x80, 0xaf }, 3 },	   /* overlong '/' in three bytes */
		{ { 0xed, 0xa0, 0x80 }, 3 },	   /* a surrogate (U+D800) */
		{ { 0xf4, 0x90, 0x80, 0x80 }, 4 }, /* past U+10FFFF */
		{ { 0xe2, 0x82 }, 2 },		   /* cut short */
		{ { 0x61, 0xc3 }, 2 },		   /* cut short at the end */
	};
	for (size_t i = 0; i < sizeof(not_utf8) / sizeof(not_utf8[0]); i++) {
		uint8_t v[6] = { (uint8_t)not_utf8[i].n };

		memcpy(v + 1, not_utf8[i].v, not_utf8[i].n);
		tiny_with(&b, PT_NAME_LEN, 2, v, not_utf8[i].n + 1);
		refused(b.b, b.n, -EINVAL, "an inode's name at byte 11 that is not UTF-8");
	}
	TINY_WITH(&b, PT_NAME_LEN, 2, 0x04, 0xf0, 0x9f, 0x98, 0x80); /* U+1F600 is fine */
	{
		struct mig_state d;

		decodes(b.b, b.n, &d);
		assert_string_equal(d.inodes[1].name, "\xf0\x9f\x98\x80");
		mig_state_free(&d);
	}
	TINY_WITH(&b, PT_NAME_LEN, 2, 0x02, 0x61, 0x00);
	refused(b.b, b.n, -EINVAL, "an inode's name with a NUL byte");
	TINY_WITH(&b, PT_NAME_LEN, 2, 0x81, 0x20); /* 4097 bytes */
	refused(b.b, b.n, -EINVAL, "an inode's name of 4097 bytes, more than 4096");
	/* names the model refuses */
	TINY_WITH(&b, PT_NAME_LEN, 2, 0x02, 0x2e, 0x2e);
	refused(b.b, b.n, -EINVAL, "inode 2's name is not one path component");
	TINY_WITH(&b, PT_NAME_LEN, 2, 0x01, 0x2f);
	refused(b.b, b.n, -EINVAL, "inode 2's name is not one path component");
	TINY_WITH(&b, PT_NAME_LEN, 2, 0x03, 0x61, 0x2f, 0x62);
	refused(b.b, b.n, -EINVAL, "inode 2's name is not one path component");
	TINY_WITH(&b, PT_NAME_LEN, 2, 0x00);
	refused(b.b, b.n, -EINVAL, "inode 2's name is not one path component");
	/* file handles */
	TINY_WITH(&b, PT_FH_LEN, 1, 0x81, 0x01);
	refused(b.b, b.n, -EINVAL, "an inode's verification handle of 129 bytes, more than 128");
	/* references */
	TINY_WITH(&b, PT_HANDLE_INODE, 1, 0x07);
	refused(b.b, b.n, -EINVAL, "handle 0 is on inode 7, which is not in the state");
	/* trailing bytes */
	b.n = 0;
	b_raw(&b, postcard_tiny, sizeof(postcard_tiny));
	B(&b, 0x00);
	refused(b.b, b.n, -EINVAL, "state stream has 1 bytes after the state");
	b.n = 0;
	b_raw(&b, postcard_v1, sizeof(postcard_v1));
	B(&b, 0x00); /* an empty mount map does not belong in V1 */
	refused(b.b, b.n, -EINVAL, "state stream has 1 bytes after the state");
}

static void test_postcard_counts(void **state)
{
	struct bytes b;

	(void)state;
	/* 100 inodes in 4 bytes: refused before an inode is allocated */
	b.n = 0;
	B(&b, 0x01, 0x64, 0x01, 0x01, 0x00, 0x00);
	refused(b.b, b.n, -EINVAL,
		"state stream is truncated (100 inodes cannot fit in the 4 bytes");
	b.n = 0;
	B(&b, 0x01);
	b_varint(&b, MIG_MAX_INODES + 1ull);
	refused(b.b, b.n, -EINVAL, "16777217 inodes, more than the 16777216 accepted");
	b.n = 0;
	B(&b, 0x01);
	b_varint(&b, UINT64_MAX);
	refused(b.b, b.n, -EINVAL, "18446744073709551615 inodes, more than");
	/* handles and mounts the same */
	TINY_WITH(&b, 20, 1, 0x7f);
	refused(b.b, b.n, -EINVAL, "state stream is truncated (127 handles cannot fit");
	TINY_WITH(&b, 30, 1, 0x0a);
	refused(b.b, b.n, -EINVAL, "state stream is truncated (10 mounts cannot fit");
	TINY_WITH(&b, 30, 1, 0x81, 0x20);
	refused(b.b, b.n, -EINVAL, "4097 mounts, more than the 4096 accepted");
}

/* The model's rules, through decoded streams. */
static void test_postcard_model_refusals(void **state)
{
	struct bytes b;

	(void)state;
	/* two inodes of id 1 (the root and an Invalid one) */
	b.n = 0;
	B(&b, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00,
	  0x00, 0x00, 0x00, 0x00);
	refused(b.b, b.n, -EINVAL, "inode 1 appears twice");
	/* no root: inode 2, Invalid */
	b.n = 0;
	B(&b, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
	refused(b.b, b.n, -EINVAL, "the state has no root inode (node id 1)");
	/* the same id twice, apart */
	b.n = 0;
	B(&b, 0x01, 0x03, 0x03, 0x01, 0x02, 0x00, 0x01, 0x01, 0x00, 0x00, 0x03, 0x01, 0x02, 0x00,
	  0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
	refused(b.b, b.n, -EINVAL, "inode 3 appears twice");
	/* out of order is fine, and stays so: 3 before 2 */
	b.n = 0;
	B(&b, 0x01, 0x03, 0x01, 0x01, 0x00, 0x00, 0x03, 0x01, 0x02, 0x00, 0x02, 0x01, 0x02, 0x00,
	  0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
	{
		struct mig_state d;
		uint8_t *out;
		size_t len;

		decodes(b.b, b.n, &d);
		assert_int_equal(d.inodes[1].id, 3);
		assert_int_equal(d.inodes[2].id, 2);
		encodes(&d, MIG_FORMAT_VIRTIOFSD, &out, &len);
		assert_int_equal(len, b.n);
		assert_memory_equal(out, b.b, len);
		free(out);
		mig_state_free(&d);
	}
	/* a root that is not node 1 */
	b.n = 0;
	B(&b, 0x01, 0x01, 0x02, 0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
	refused(b.b, b.n, -EINVAL, "inode 2 is a root, but only node id 1 can be");
	/* a parent not in the stream */
	b.n = 0;
	B(&b, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00, 0x02, 0x01, 0x01, 0x09, 0x01, 0x62, 0x00, 0x03,
	  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
	refused(b.b, b.n, -EINVAL, "inode 2's parent 9 is not in the state");
	/* a mount path that climbs out */
	b.n = 0;
	B(&b, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	  0x04, 0x05, 0x61, 0x2f, 0x2e, 0x2e, 0x2f);
	refused(b.b, b.n, -EINVAL, "mount 4's path is not a relative path");
	/* the same mount id twice (a map has each key once) */
	b.n = 0;
	B(&b, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	  0x04, 0x01, 0x2e, 0x04, 0x01, 0x61);
	refused(b.b, b.n, -EINVAL, "mount 4 appears twice");
}

/* --- the model's rules ------------------------------------------------------------------- */

static void set_name(struct mig_inode *in, const char *name)
{
	free(in->name);
	in->name = name ? xstrdup(name) : NULL;
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/*
 * Breaks one rule in the tiny state (which), and returns what the refusal says; NULL past
 * the last rule.
 */
static const char *break_rule(struct mig_state *s, int which)
{
	struct mig_inode *root = &s->inodes[0], *child = &s->inodes[1];

	switch (which) {
	case 0:
		child->id = 1;
		return "inode 1 appears twice";
	case 1:
		root->loc = MIG_LOC_FULL_PATH;
		set_name(root, "r");
		return "inode 1 is not the root";
	case 2:
		root->id = 0;
		return "inode id 0 has slot 0";
	case 3:
		child->id = 0x100000000ull;
		return "inode id 0x100000000 has slot 0";
	case 4:
		child->loc = MIG_LOC_ROOT;
		return "inode 2 is a root, but only node id 1 can be";
	case 5:
		root->loc = MIG_LOC_INVALID;
		return "inode 1 is not the root";
	case 6:
		free(child->name);
		*root = (struct mig_inode){ .id = 2, .loc = MIG_LOC_INVALID };
		s->ninodes = 1;
		return "the state has no root inode";
	case 7:
		child->parent = 2;
		return "inode 2 is its own parent";
	case 8:
		child->parent = 9;
		return "inode 2's parent 9 is not in the state";
	case 9:
		set_name(child, "");
		return "inode 2's name is not one path component";
	case 10:
		set_name(child, ".");
		return "inode 2's name is not one path component";
	case 11:
		set_name(child, "..");
		return "inode 2's name is not one path component";
	case 12:
		set_name(child, "a/b");
		return "inode 2's name is not one path component";
	case 13:
		set_name(child, "/");
		return "inode 2's name is not one path component";
	case 14:
		free(child->name);
		child->name = repeat('x', 256);
		return "inode 2's name is not one path component";
	case 15:
		set_name(child, NULL);
		return "inode 2's name is not one path component";
	case 16:
	case 17:
	case 18:
	case 19:
	case 20:
	case 21:
	case 22:
	case 23:
	case 24: {
		static const char *const paths[] = { "",    "/a",   "a//b", "a/", "a/./b",
						     "./a", "a/..", "..",   NULL };

		child->loc = MIG_LOC_FULL_PATH;
		set_name(child, paths[which - 16]);
		return "inode 2's path is not a relative path";
	}
	case 25:
		child->loc = MIG_LOC_FULL_PATH;
		free(child->name);
		child->name = repeat('x', MIG_NAME_MAX + 1);
		return "inode 2's path is not a relative path";
	case 26:
		child->loc = MIG_LOC_FILE_HANDLE;
		child->fh.len = MIG_FH_MAX + 1;
		return "inode 2's file handle has 129 bytes, more than the 128";
	case 27:
		child->verify.len = MIG_FH_MAX + 1;
		return "inode 2's verification handle has 129 bytes";
	case 28:
		child->loc = (enum mig_loc)9;
		return "inode 2 has an unknown location (9)";
	case 29:
		s->handles[0].node = 9;
		return "handle 0 is on inode 9, which is not in the state";
	case 30:
	case 31:
	case 32:
		s->handles[0].flags = O_RDWR | (which == 30   ? O_CREAT
						: which == 31 ? O_EXCL
							      : O_TRUNC);
		return "with O_CREAT, O_EXCL or O_TRUNC";
	case 33:
	case 34:
	case 35:
	case 36:
	case 37:
	case 38: {
		static const char *const paths[] = { "..", "/abs", "a/../b", "", "a//b", NULL };

		free(s->mounts[0].path);
		s->mounts[0].path = paths[which - 33] ? xstrdup(paths[which - 33]) : NULL;
		return "mount 5's path is not a relative path";
	}
	case 39:
		s->session.known = true;
		s->session.minor = 26;
		return "protocol minor 26 is not between 27 and 1000";
	case 40:
		s->session.known = true;
		s->session.minor = 1001;
		return "protocol minor 1001 is not between 27 and 1000";
	case 41:
		free(s->handles);
		s->handles = NULL;
		return "counts entries it does not hold";
	default:
		return NULL;
	}
}

/* The same tiny state with a rule pushed to its edge, still valid. */
static bool keep_rule(struct mig_state *s, int which)
{
	struct mig_inode *child = &s->inodes[1];

	switch (which) {
	case 0:
		free(child->name);
		child->name = repeat('x', 255);
		return true;
	case 1:
		child->loc = MIG_LOC_FULL_PATH;
		free(child->name);
		child->name = repeat('x', MIG_NAME_MAX);
		return true;
	case 2:
		child->loc = MIG_LOC_FULL_PATH;
		set_name(child, "a/...b/..c/.d/e.");
		return true;
	case 3:
		set_name(child, "...");
		return true;
	case 4:
		child->loc = MIG_LOC_FILE_HANDLE;
		child->fh.len = MIG_FH_MAX;
		child->verify.len = MIG_FH_MAX;
		return true;
	case 5:
		s->session.known = true;
		s->session.minor = 27;
		return true;
	case 6:
		s->session.known = true;
		s->session.minor = 1000;
		return true;
	case 7:
		s->session.minor = 5; /* not known: not checked */
		return true;
	case 8:
		free(s->mounts[0].path);
		s->mounts[0].path = xstrdup("a/./b/.");
		return true;
	case 9:
		child->loc = MIG_LOC_INVALID; /* no name needed */
		return true;
	case 10:
		child->id = 0xffffffff00000001ull; /* any generation */
		s->handles[0].node = child->id;
		return true;
	case 11: {
		/* any order: the source's tables go by slot, and a slot's generation is in the
		 * high half of the id */
		struct mig_inode t = s->inodes[0];

		s->inodes[0] = *child;
		s->inodes[1] = t;
		s->inodes[0].id = 0x500000001ull;
		s->handles[0].node = 0x500000001ull;
		return true;
	}
	default:
		return false;
	}
}

static void test_state_rules(void **state)
{
	char err[512];
	const char *want;
	uint8_t *out;
	size_t len;

	(void)state;
	for (int which = 0;; which++) {
		struct mig_state s;
		size_t ninodes;

		tiny_state(&s);
		ninodes = s.ninodes;
		want = break_rule(&s, which);
		if (!want) {
			mig_state_free(&s);
			break;
		}
		err[0] = '\0';
		assert_int_equal(mig_state_check(&s, err, sizeof(err)), -EINVAL);
		if (!strstr(err, want))
			print_message("rule %d: \"%s\", wanted \"%s\"\n", which, err, want);
		assert_non_null(strstr(err, want));
		/* The encoders check too: they never write a stream the decoders refuse. */
		out = (uint8_t *)&len;
		assert_int_equal(mig_native_encode(&s, &out, &len, err, sizeof(err)), -EINVAL);
		assert_null(out);
		assert_int_equal(len, 0);
		out = (uint8_t *)&len;
		assert_int_equal(mig_postcard_encode(&s, &out, &len, err, sizeof(err)), -EINVAL);
		assert_null(out);
		if (which != 6) /* 6 freed the second inode's name itself */
			s.ninodes = ninodes;
		mig_state_free(&s);
	}
	for (int which = 0;; which++) {
		struct mig_state s, d;

		tiny_state(&s);
		if (!keep_rule(&s, which)) {
			mig_state_free(&s);
			break;
		}
		err[0] = '\0';
		if (mig_state_check(&s, err, sizeof(err)))
			print_message("kept rule %d refused: %s\n", which, err);
		assert_int_equal(mig_state_check(&s, err, sizeof(err)), 0);
		encodes(&s, MIG_FORMAT_VFSD, &out, &len);
		decodes(out, len, &d);
		assert_state_equal(&s, &d, false);
		free(out);
		mig_state_free(&d);
		encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
		decodes(out, len, &d);
		assert_state_equal(&s, &d, true);
		free(out);
		mig_state_free(&d);
		mig_state_free(&s);
	}
}

static void test_state_limits(void **state)
{
	struct mig_state s;
	char err[512];

	(void)state;
	tiny_state(&s);
	s.ninodes = MIG_MAX_INODES + 1;
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "16777217 inodes"));
	s.ninodes = 2;
	s.nhandles = MIG_MAX_HANDLES + 1;
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "16777217 handles"));
	s.nhandles = 1;
	s.nmounts = MIG_MAX_MOUNTS + 1;
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "4097 mounts"));
	s.nmounts = 1;
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), 0);
	mig_state_free(&s);
	assert_zero_state(&s);
	mig_state_free(&s); /* twice is harmless */
	mig_state_free(NULL);
}

static void test_handle_ids(void **state)
{
	struct mig_state s;
	char err[512];

	(void)state;
	tiny_state(&s);
	s.handles = realloc(s.handles, 2 * sizeof(*s.handles));
	assert_non_null(s.handles);
	s.nhandles = 2;
	s.handles[1] = (struct mig_handle){ .id = 0, .node = 1 };
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "handle 0 appears twice"));
	s.handles[0].id = 5; /* 5 then 0: any order */
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), 0);
	s.handles = realloc(s.handles, 3 * sizeof(*s.handles));
	assert_non_null(s.handles);
	s.nhandles = 3;
	s.handles[2] = (struct mig_handle){ .id = 5, .node = 1 };
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "handle 5 appears twice"));
	s.handles[2].id = 2;
	assert_int_equal(mig_state_check(&s, err, sizeof(err)), 0);
	/* the counter goes above the largest, wherever it is */
	{
		struct mig_state d;
		uint8_t *out;
		size_t len;

		s.next_handle = 0;
		encodes(&s, MIG_FORMAT_VIRTIOFSD, &out, &len);
		decodes(out, len, &d);
		assert_int_equal(d.next_handle, 6);
		assert_int_equal(d.handles[0].id, 5);
		assert_int_equal(d.handles[1].id, 0);
		free(out);
		mig_state_free(&d);
	}
	mig_state_free(&s);
}

/* --- encoders' own refusals -------------------------------------------------------------- */

static void postcard_refuses(struct mig_state *s, const char *want)
{
	char err[512] = "";
	uint8_t *out = (uint8_t *)err;
	size_t len = 1;

	assert_int_equal(mig_state_check(s, err, sizeof(err)), 0);
	assert_int_equal(mig_postcard_encode(s, &out, &len, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		print_message("\"%s\", wanted \"%s\"\n", err, want);
	assert_non_null(strstr(err, want));
	assert_null(out);
	assert_int_equal(len, 0);
	/* vfsd's format carries it */
	assert_int_equal(mig_native_encode(s, &out, &len, err, sizeof(err)), 0);
	free(out);
}

static void test_postcard_cannot_express(void **state)
{
	struct mig_state s;
	char err[512];
	uint8_t *out;
	size_t len;

	(void)state;
	tiny_state(&s);
	set_name(&s.inodes[1], "caf\xe9"); /* Latin-1: a Linux name, not a Rust String */
	postcard_refuses(&s, "inode 2's name is not UTF-8");
	s.inodes[1].loc = MIG_LOC_FULL_PATH;
	postcard_refuses(&s, "inode 2's name is not UTF-8");
	mig_state_free(&s);

	tiny_state(&s);
	free(s.mounts[0].path);
	s.mounts[0].path = xstrdup("\xff");
	postcard_refuses(&s, "mount 5's path is not UTF-8");
	mig_state_free(&s);

	tiny_state(&s);
	s.inodes[1].id = UINT64_MAX;
	s.handles[0].node = UINT64_MAX;
	postcard_refuses(&s, "leaves virtiofsd no next inode number");
	mig_state_free(&s);

	tiny_state(&s);
	s.handles[0].id = UINT64_MAX;
	postcard_refuses(&s, "leaves virtiofsd no next handle number");
	mig_state_free(&s);

	tiny_state(&s);
	s.inodes[0].nlookup = UINT64_MAX; /* and one child */
	postcard_refuses(&s, "inode 1's lookup count 18446744073709551615 and its 1 children");
	s.inodes[0].nlookup = UINT64_MAX - 1;
	assert_int_equal(mig_postcard_encode(&s, &out, &len, err, sizeof(err)), 0);
	free(out);
	mig_state_free(&s);

	tiny_state(&s);
	out = (uint8_t *)err;
	assert_int_equal(mig_encode(&s, (enum mig_format)7, &out, &len, err, sizeof(err)), -EINVAL);
	assert_null(out);
	assert_non_null(strstr(err, "unknown state format 7"));
	mig_state_free(&s);
}

static void test_decode_dispatch(void **state)
{
	struct mig_state d;
	char err[256];
	struct bytes b;
	struct native_at at;

	(void)state;
	native_tiny(&b, &at);
	/* Each codec refuses the other's stream; mig_decode picks by the magic. */
	assert_int_equal(mig_postcard_decode(b.b, b.n, &d, err, sizeof(err)), -EPROTONOSUPPORT);
	assert_zero_state(&d);
	assert_int_equal(
		mig_native_decode(postcard_tiny, sizeof(postcard_tiny), &d, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "not a vfsd state stream"));
	assert_zero_state(&d);
	assert_int_equal(mig_native_decode(b.b, b.n, &d, err, sizeof(err)), 0);
	mig_state_free(&d);
	assert_int_equal(
		mig_postcard_decode(postcard_tiny, sizeof(postcard_tiny), &d, err, sizeof(err)), 0);
	mig_state_free(&d);
	refused(NULL, 0, -EINVAL, "state stream is truncated (the state's version at byte 0)");
	refused((const uint8_t *)"VFSD", 4, -EINVAL, "state stream is truncated (the magic");
	refused((const uint8_t *)"VFSDSTAT\x01", 9, -EINVAL, "truncated (the version at byte 8)");
	refused((const uint8_t *)"Vxxxxxxxx", 9, -EINVAL, "not a vfsd state stream");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_reference),
		cmocka_unit_test(test_native_vector),
		cmocka_unit_test(test_postcard_vector),
		cmocka_unit_test(test_postcard_v1_and_locations),
		cmocka_unit_test(test_refcounts),
		cmocka_unit_test(test_round_trip_native),
		cmocka_unit_test(test_round_trip_postcard),
		cmocka_unit_test(test_postcard_counters),
		cmocka_unit_test(test_varints),
		cmocka_unit_test(test_zigzag_encode),
		cmocka_unit_test(test_native_refusals),
		cmocka_unit_test(test_truncation_everywhere),
		cmocka_unit_test(test_postcard_refusals),
		cmocka_unit_test(test_postcard_counts),
		cmocka_unit_test(test_postcard_model_refusals),
		cmocka_unit_test(test_state_rules),
		cmocka_unit_test(test_state_limits),
		cmocka_unit_test(test_handle_ids),
		cmocka_unit_test(test_postcard_cannot_express),
		cmocka_unit_test(test_decode_dispatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
