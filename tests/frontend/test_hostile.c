/*
 * A hostile guest: broken descriptor chains, lying FUSE headers, forged ids and handles, bad
 * names, absurd sizes. Every bad request must come back (an error reply or a used entry of
 * length 0, never a hang), the daemon must serve the next good request, and it must still be
 * alive at the end (the harness checks that, and that it exits 0 when the VMM hangs up).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define GETATTR_LEN (sizeof(struct fuse_in_header) + sizeof(struct fuse_getattr_in))
#define OUT_LEN (sizeof(struct fuse_out_header) + sizeof(struct fuse_attr_out))
#define FAR_AWAY 0xdead00000000ull /* no region there */
#define LIT(i) (-1 - (int)(i))	   /* a literal ring index as rd.next */

/* One hand-made descriptor; next is a position in the same chain, or LIT(ring index). */
struct rd {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	int next;
};

struct outcome {
	uint32_t used;
	struct fuse_out_header oh;
};

static struct fc *session(struct t_ctx *t)
{
	return t_session(t, NULL, NULL);
}

/* A FUSE header (with the len given, true or not) followed by args, in guest memory. */
static uint64_t put_req(struct t_ctx *t, uint32_t opcode, uint64_t nodeid, uint32_t len,
			const void *args, size_t arglen)
{
	struct fuse_in_header h = {
		.len = len, .opcode = opcode, .unique = 0x5eed, .nodeid = nodeid
	};
	uint64_t gpa = fe_alloc_any(t->dev, sizeof(h) + arglen);
	uint8_t *p = gpa ? fe_ptr(t->dev, gpa, sizeof(h) + arglen) : NULL;

	CHECK(t, p, "guest memory: %s", fe_error(t->dev));
	memcpy(p, &h, sizeof(h));
	if (arglen)
		memcpy(p + sizeof(h), args, arglen);
	return gpa;
}

static uint64_t put_getattr(struct t_ctx *t)
{
	struct fuse_getattr_in in = { 0 };

	return put_req(t, FUSE_GETATTR, FC_ROOT, GETATTR_LEN, &in, sizeof(in));
}

static uint64_t out_buf(struct t_ctx *t, size_t len)
{
	uint64_t gpa = fe_alloc_any(t->dev, len ? len : 1);

	CHECK(t, gpa, "guest memory: %s", fe_error(t->dev));
	memset(fe_ptr(t->dev, gpa, len ? len : 1), 0xa5, len ? len : 1);
	return gpa;
}

/* Writes the chain into the ring, publishes it, kicks, and waits for it to come back. */
static struct outcome submit(struct t_ctx *t, unsigned int q, const struct rd *r, int n,
			     uint64_t out_gpa)
{
	struct outcome o = { 0 };
	uint16_t idx[n];

	CHECK_FE(t, fe_desc_alloc(t->dev, q, n, idx));
	for (int i = 0; i < n; i++) {
		*fe_desc(t->dev, q, idx[i]) = (struct vring_desc){
			.addr = r[i].addr,
			.len = r[i].len,
			.flags = r[i].flags,
			.next = r[i].next >= 0 ? idx[r[i].next] : (uint16_t)(-r[i].next - 1),
		};
	}
	fe_publish(t->dev, q, idx[0]);
	CHECK_FE(t, fe_kick(t->dev, q));
	if (fe_wait(t->dev, q, idx[0], FE_TIMEOUT_MS, &o.used) < 0)
		t_fail(t, "the request never came back: %s", fe_error(t->dev));
	if (out_gpa && o.used >= sizeof(o.oh))
		memcpy(&o.oh, fe_ptr(t->dev, out_gpa, sizeof(o.oh)), sizeof(o.oh));
	return o;
}

/* The request was refused: an error reply of 16 bytes, or nothing at all. */
static void refused(struct t_ctx *t, struct outcome o, const char *what)
{
	if (o.used == 0)
		return;
	CHECK(t,
	      o.used == sizeof(o.oh) && o.oh.len == o.used && o.oh.error < 0 && o.oh.error > -4096,
	      "%s: used %u bytes, out header len %u error %d", what, o.used, o.oh.len, o.oh.error);
}

/* An fc_* result that is an error reply or an empty used entry, not a success or a hang. */
static void refused_fc(struct t_ctx *t, int r, const char *what)
{
	CHECK(t, (r < 0 && r > -4096) || r == FC_ENOREPLY, "%s: %s", what, fc_strerror(&t->fc, r));
}

#define RD(a, l, f, n) ((struct rd){ .addr = (a), .len = (l), .flags = (f), .next = (n) })
#define RNEXT VRING_DESC_F_NEXT
#define WR VRING_DESC_F_WRITE

/* ---- descriptors ---- */

static void test_addr_outside_memory(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t out = out_buf(t, OUT_LEN);
	struct rd bad_in[] = { RD(FAR_AWAY, GETATTR_LEN, RNEXT, 1), RD(out, OUT_LEN, WR, 0) };
	struct rd bad_out[] = { RD(put_getattr(t), GETATTR_LEN, RNEXT, 1),
				RD(FAR_AWAY, OUT_LEN, WR, 0) };
	struct fe_region *r0 = &t->dev->regions[0];
	/* The last 8 bytes of region 0 and then nothing (region 1 starts at 4 GiB). */
	struct rd straddle[] = { RD(r0->gpa + r0->size - 8, GETATTR_LEN, RNEXT, 1),
				 RD(out, OUT_LEN, WR, 0) };

	refused(t, submit(t, FE_REQUEST, bad_in, 2, out), "readable descriptor far away");
	refused(t, submit(t, FE_REQUEST, bad_out, 2, 0), "writable descriptor far away");
	refused(t, submit(t, FE_REQUEST, straddle, 2, out), "descriptor past a region's end");
	t_still_serving(t, c);
}

static void test_len_overflow(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t out = out_buf(t, OUT_LEN), hdr = put_getattr(t);
	struct rd wrap[] = { RD(0xfffffffffffff000ull, 0x2000, RNEXT, 1), RD(out, OUT_LEN, WR, 0) };
	struct rd huge[] = { RD(hdr, 0xffffffffu, RNEXT, 1), RD(out, OUT_LEN, WR, 0) };
	struct rd huge_out[] = { RD(hdr, GETATTR_LEN, RNEXT, 1), RD(out, 0xffffffffu, WR, 0) };

	refused(t, submit(t, FE_REQUEST, wrap, 2, out), "address + length wraps around");
	refused(t, submit(t, FE_REQUEST, huge, 2, out), "4 GiB readable length");
	refused(t, submit(t, FE_REQUEST, huge_out, 2, 0), "4 GiB writable length");
	t_still_serving(t, c);
}

static void test_chain_loops(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t out = out_buf(t, OUT_LEN), hdr = put_getattr(t);
	struct rd loop[] = { RD(hdr, 40, RNEXT, 1), RD(hdr + 40, 16, RNEXT, 0) };
	struct rd self[] = { RD(hdr, GETATTR_LEN, RNEXT, 0) };
	struct rd wloop[] = { RD(hdr, GETATTR_LEN, RNEXT, 1), RD(out, 16, WR | RNEXT, 2),
			      RD(out + 16, OUT_LEN - 16, WR | RNEXT, 1) };
	struct rd far[] = { RD(hdr, GETATTR_LEN, RNEXT, LIT(9999)) };

	refused(t, submit(t, FE_REQUEST, loop, 2, 0), "a chain that loops");
	refused(t, submit(t, FE_REQUEST, self, 1, 0), "a descriptor that names itself");
	refused(t, submit(t, FE_REQUEST, wloop, 3, 0), "a loop in the writable part");
	refused(t, submit(t, FE_REQUEST, far, 1, 0), "next index past the ring");
	t_still_serving(t, c);
}

static void test_bad_order_and_sizes(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t out = out_buf(t, OUT_LEN), hdr = put_getattr(t);
	struct rd rd_after_wr[] = { RD(hdr, 40, RNEXT, 1), RD(out, OUT_LEN, WR | RNEXT, 2),
				    RD(hdr + 40, 16, 0, 0) };
	struct rd zero[] = { RD(hdr, 0, RNEXT, 1), RD(hdr, 0, RNEXT, 2), RD(out, 0, WR, 0) };
	struct rd no_wr[] = { RD(hdr, GETATTR_LEN, 0, 0) };
	struct rd short_hdr[] = { RD(hdr, 20, RNEXT, 1), RD(out, OUT_LEN, WR, 0) };
	struct rd tiny_out[] = { RD(hdr, GETATTR_LEN, RNEXT, 1), RD(out, 20, WR, 0) };
	struct rd hdr_out[] = { RD(hdr, GETATTR_LEN, RNEXT, 1), RD(out, 16, WR, 0) };
	struct rd small_out[] = { RD(hdr, GETATTR_LEN, RNEXT, 1), RD(out, 8, WR, 0) };
	struct outcome o;

	refused(t, submit(t, FE_REQUEST, rd_after_wr, 3, out), "readable after writable");
	refused(t, submit(t, FE_REQUEST, zero, 3, 0), "zero-length descriptors");
	o = submit(t, FE_REQUEST, no_wr, 1, 0);
	CHECK(t, o.used == 0, "no writable part, yet %u bytes used", o.used);
	refused(t, submit(t, FE_REQUEST, short_hdr, 2, out), "a 20-byte FUSE header");
	refused(t, submit(t, FE_REQUEST, tiny_out, 2, out), "20 bytes for a 120-byte reply");
	refused(t, submit(t, FE_REQUEST, hdr_out, 2, out), "16 bytes for a 120-byte reply");
	o = submit(t, FE_REQUEST, small_out, 2, out);
	CHECK(t, o.used == 0, "8 writable bytes, yet %u used", o.used);
	t_still_serving(t, c);
}

/* A good GETATTR whose header comes one byte per descriptor: must simply work. */
static void test_header_in_pieces(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t out = out_buf(t, OUT_LEN), hdr = put_getattr(t);
	struct rd r[GETATTR_LEN + 1];
	struct outcome o;

	for (unsigned int i = 0; i < GETATTR_LEN; i++)
		r[i] = RD(hdr + i, 1, RNEXT, (int)i + 1);
	r[GETATTR_LEN] = RD(out, OUT_LEN, WR, 0);
	o = submit(t, FE_REQUEST, r, GETATTR_LEN + 1, out);
	CHECK(t, o.used == OUT_LEN && o.oh.error == 0, "used %u error %d", o.used, o.oh.error);
	t_still_serving(t, c);
}

/* Regions that touch in guest-physical space: a buffer may run from one into the next. */
static void test_across_adjacent_regions(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fe_region *r1 = &t->dev->regions[1];
	uint64_t edge = r1->gpa + r1->size, out = out_buf(t, OUT_LEN);
	struct fuse_getattr_in in = { 0 };
	struct fuse_in_header h = {
		.len = GETATTR_LEN, .opcode = FUSE_GETATTR, .unique = 9, .nodeid = FC_ROOT
	};
	uint8_t req[GETATTR_LEN];
	struct outcome o;
	int n = fe_region_new(t->dev, edge, 1 << 20);

	CHECK(t, n >= 0, "fe_region_new: %s", strerror(-n));
	CHECK_FE(t, fe_region_add(t->dev, n));
	memcpy(req, &h, sizeof(h));
	memcpy(req + sizeof(h), &in, sizeof(in));
	memcpy(fe_ptr(t->dev, edge - 20, 20), req, 20);
	memcpy(fe_ptr(t->dev, edge, GETATTR_LEN - 20), req + 20, GETATTR_LEN - 20);
	o = submit(t, FE_REQUEST,
		   (struct rd[]){ RD(edge - 20, GETATTR_LEN, RNEXT, 1), RD(out, OUT_LEN, WR, 0) },
		   2, out);
	CHECK(t, o.used == OUT_LEN && o.oh.error == 0 && o.oh.unique == 9,
	      "a request across two regions: used %u error %d", o.used, o.oh.error);
	t_still_serving(t, c);
}

/* ---- indirect tables ---- */

static uint64_t put_table(struct t_ctx *t, const struct vring_desc *d, int n)
{
	uint64_t gpa = fe_alloc_any(t->dev, 16ull * n);

	CHECK(t, gpa, "guest memory: %s", fe_error(t->dev));
	memcpy(fe_ptr(t->dev, gpa, 16ull * n), d, 16ull * n);
	return gpa;
}

static void test_indirect(struct t_ctx *t)
{
	struct fc *c = session(t);
	uint64_t out = out_buf(t, OUT_LEN), hdr = put_getattr(t);
	struct vring_desc good[2] = { { hdr, GETATTR_LEN, RNEXT, 1 }, { out, OUT_LEN, WR, 0 } };
	uint64_t inner = put_table(t, good, 2);
	struct vring_desc nested[1] = { { inner, 32, VRING_DESC_F_INDIRECT, 0 } };
	struct vring_desc loop[2] = { { hdr, 40, RNEXT, 1 }, { hdr + 40, 16, RNEXT, 0 } };
	struct vring_desc escape[2] = { { hdr, GETATTR_LEN, RNEXT, 50 }, { out, OUT_LEN, WR, 0 } };
	uint64_t tn = put_table(t, nested, 1), tl = put_table(t, loop, 2);
	uint64_t te = put_table(t, escape, 2), tg = put_table(t, good, 2);
	const uint16_t ind = VRING_DESC_F_INDIRECT;
	static struct vring_desc many[2000];
	uint64_t tm;
	struct outcome o;

	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(tn, 16, ind, 0) }, 1, out),
		"an indirect table inside an indirect table");
	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(tl, 32, ind, 0) }, 1, out),
		"a loop inside an indirect table");
	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(te, 32, ind, 0) }, 1, out),
		"next index past the indirect table");
	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(tg, 20, ind, 0) }, 1, out),
		"indirect length not a multiple of 16");
	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(tg, 0, ind, 0) }, 1, out),
		"indirect length 0");
	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(FAR_AWAY, 32, ind, 0) }, 1, out),
		"indirect table outside guest memory");
	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(tg, 0xfffffff0u, ind, 0) }, 1, out),
		"indirect table of 4 GiB");
	refused(t,
		submit(t, FE_REQUEST,
		       (struct rd[]){ RD(tg, 32, ind | RNEXT, 1), RD(out, OUT_LEN, WR, 0) }, 2,
		       out),
		"INDIRECT together with NEXT");
	/* 2000 one-byte pieces: more than a device takes for one request. */
	for (int i = 0; i < 2000; i++)
		many[i] =
			(struct vring_desc){ hdr + (i % GETATTR_LEN), 1, RNEXT, (uint16_t)(i + 1) };
	many[1999] = (struct vring_desc){ out, OUT_LEN, WR, 0 };
	tm = put_table(t, many, 2000);
	refused(t, submit(t, FE_REQUEST, (struct rd[]){ RD(tm, sizeof(many), ind, 0) }, 1, out),
		"an indirect table of 2000 pieces");
	/* The same good table still works. */
	o = submit(t, FE_REQUEST, (struct rd[]){ RD(tg, 32, ind, 0) }, 1, out);
	CHECK(t, o.used == OUT_LEN && o.oh.error == 0, "a good indirect chain: used %u error %d",
	      o.used, o.oh.error);
	t_still_serving(t, c);
}

/* ---- FUSE headers ---- */

static void test_header_len_lies(struct t_ctx *t)
{
	static const uint32_t lens[] = { 0, 10, 39, GETATTR_LEN + 1, 4096, 0x7fffffff, 0xffffffff };
	struct fc *c = session(t);
	struct fuse_getattr_in in = { 0 };
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 0 };
	uint64_t out = out_buf(t, OUT_LEN);

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint64_t hdr = put_req(t, FUSE_GETATTR, FC_ROOT, lens[i], &in, sizeof(in));

		refused(t,
			submit(t, FE_REQUEST,
			       (struct rd[]){ RD(hdr, GETATTR_LEN, RNEXT, 1),
					      RD(out, OUT_LEN, WR, 0) },
			       2, out),
			"header len disagreeing with the buffers");
	}
	/* len that cuts off the arguments: SETATTR's struct, LOOKUP's name. */
	uint64_t h1 = put_req(t, FUSE_SETATTR, FC_ROOT, 40, &sa, sizeof(sa));
	uint64_t h2 = put_req(t, FUSE_LOOKUP, FC_ROOT, 40, "name", 5);

	refused(t,
		submit(t, FE_REQUEST,
		       (struct rd[]){ RD(h1, 40 + sizeof(sa), RNEXT, 1), RD(out, OUT_LEN, WR, 0) },
		       2, out),
		"SETATTR whose len leaves out its arguments");
	refused(t,
		submit(t, FE_REQUEST,
		       (struct rd[]){ RD(h2, 45, RNEXT, 1), RD(out, OUT_LEN, WR, 0) }, 2, out),
		"LOOKUP whose len leaves out the name");
	t_still_serving(t, c);
}

static void test_unknown_opcodes(struct t_ctx *t)
{
	static const uint32_t ops[] = {
		0, 7, 19, 52, 53, 1000, 4096, 4097, 0x7fffffff, 0xffffffff
	};
	struct fc *c = session(t);
	uint8_t zero[64] = { 0 };

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct fc_arg a = { zero, sizeof(zero) };
		int r = fc_call(c, ops[i], FC_ROOT, &a, 1, NULL, 0, NULL);

		CHECK(t, r == -ENOSYS, "opcode %u: %s", ops[i], fc_strerror(c, r));
	}
	t_still_serving(t, c);
}

static void test_before_init(struct t_ctx *t)
{
	struct fuse_attr_out a;
	struct fuse_entry_out e;

	t_started(t, NULL, NULL);
	refused_fc(t, fc_getattr(&t->fc, FC_ROOT, &a), "GETATTR before INIT");
	refused_fc(t, fc_lookup(&t->fc, FC_ROOT, "x", &e), "LOOKUP before INIT");
	refused_fc(t, fc_mkdir(&t->fc, FC_ROOT, "x", 0755, &e), "MKDIR before INIT");
	CHECK(t, !t_exists(t, "x"), "MKDIR before INIT reached the host");
	CHECK_OK(t, fc_init(&t->fc));
	t_still_serving(t, &t->fc);
}

static void test_init_twice_and_short(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_init_in in = { .major = 7, .minor = 38, .flags = FUSE_INIT_EXT };
	struct fc_arg a8 = { &in, 8 }, a16 = { &in, 16 };
	char out[128];

	CHECK_OK(t, fc_init(c));
	t_still_serving(t, c);
	refused_fc(t, fc_call(c, FUSE_INIT, 0, &a8, 1, out, sizeof(out), NULL), "INIT of 8 bytes");
	refused_fc(t, fc_call(c, FUSE_INIT, 0, &a16, 1, out, sizeof(out), NULL),
		   "INIT_EXT without the extension");
	refused_fc(t, fc_call(c, FUSE_INIT, 0, NULL, 0, out, sizeof(out), NULL), "empty INIT");
	CHECK_OK(t, fc_init(c));
	t_still_serving(t, c);
	CHECK_OK(t, fc_destroy(c));
	refused_fc(t, fc_getattr(c, FC_ROOT, &(struct fuse_attr_out){ 0 }),
		   "GETATTR after DESTROY");
	CHECK_OK(t, fc_destroy(c)); /* twice */
	CHECK_OK(t, fc_init(c));
	t_still_serving(t, c);
}

/* ---- ids and handles ---- */

static void test_forged_node_ids(struct t_ctx *t)
{
	static const uint64_t ids[] = { 0,
					2,
					3,
					1000,
					0xffffffffull,
					(5ull << 32) | 1,
					(1ull << 32) | 2,
					0x8000000000000001ull,
					UINT64_MAX };
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_attr_out a;
	struct fuse_open_out o;
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 0777 };

	t_write_file(t, "f", "x", 1);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		refused_fc(t, fc_getattr(c, ids[i], &a), "GETATTR of a forged node id");
		refused_fc(t, fc_lookup(c, ids[i], "f", &e), "LOOKUP under a forged node id");
		refused_fc(t, fc_mkdir(c, ids[i], "d", 0755, &e), "MKDIR under a forged node id");
		refused_fc(t, fc_open(c, ids[i], O_RDWR, &o), "OPEN of a forged node id");
		refused_fc(t, fc_opendir(c, ids[i], &o), "OPENDIR of a forged node id");
		refused_fc(t, fc_setattr(c, ids[i], &sa, &a), "SETATTR of a forged node id");
		refused_fc(t, fc_link(c, ids[i], FC_ROOT, "l", &e), "LINK of a forged node id");
		refused_fc(t, fc_unlink(c, ids[i], "f"), "UNLINK under a forged node id");
		CHECK_OK(t, fc_forget(c, ids[i], 1));
	}
	CHECK(t, t_exists(t, "f") && !t_exists(t, "d") && !t_exists(t, "l"),
	      "a forged id changed the host directory");
	/* Forgetting the root any number of times leaves it. */
	CHECK_OK(t, fc_forget(c, FC_ROOT, UINT64_MAX));
	t_still_serving(t, c);
}

static void test_forgotten_node_ids(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e, g;
	struct fuse_attr_out a;
	struct fuse_open_out o;

	t_write_file(t, "f", "x", 1);
	t_write_file(t, "g", "yy", 2);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &e));
	CHECK_OK(t, fc_forget(c, e.nodeid, 1));
	CHECK_OK(t, fc_forget(c, e.nodeid, 1)); /* twice */
	/* The slot is taken again by another file: the old id must not name it. */
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "g", &g));
	if (fc_getattr(c, e.nodeid, &a) == 0)
		CHECK(t, a.attr.size != 2, "a forgotten node id now names another file");
	refused_fc(t, fc_getattr(c, e.nodeid, &a), "GETATTR of a forgotten node id");
	refused_fc(t, fc_open(c, e.nodeid, O_RDONLY, &o), "OPEN of a forgotten node id");
	t_still_serving(t, c);
}

static void test_forged_handles(struct t_ctx *t)
{
	static const uint64_t fhs[] = { 0, 1, 2, 0xffffffffull, (7ull << 32) | 1, UINT64_MAX };
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_open_out o, dh;
	struct fuse_attr_out a;
	char buf[64];
	size_t n;

	t_write_file(t, "f", "content", 7);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &e));
	CHECK_OK(t, fc_opendir(c, FC_ROOT, &dh));
	for (size_t i = 0; i < sizeof(fhs) / sizeof(fhs[0]) + 1; i++) {
		/* Last round: the directory's real handle, used on the file. */
		uint64_t fh = i < sizeof(fhs) / sizeof(fhs[0]) ? fhs[i] : dh.fh;
		struct fuse_setattr_in sa = { .valid = FATTR_FH | FATTR_SIZE, .fh = fh };

		refused_fc(t, fc_read(c, e.nodeid, fh, 0, buf, sizeof(buf), &n), "READ");
		refused_fc(t, fc_write(c, e.nodeid, fh, 0, "x", 1, &n), "WRITE");
		refused_fc(t, fc_flush(c, e.nodeid, fh), "FLUSH");
		refused_fc(t, fc_fsync(c, e.nodeid, fh, false), "FSYNC");
		refused_fc(t, fc_setattr(c, e.nodeid, &sa, &a), "SETATTR with a forged handle");
		refused_fc(t, fc_release(c, e.nodeid, fh), "RELEASE");
		refused_fc(
			t,
			fc_readdir(c, FC_ROOT, fh == dh.fh ? 12345 : fh, 0, buf, sizeof(buf), &n),
			"READDIR");
	}
	CHECK(t, t_read_file(t, "f", buf, sizeof(buf)) == 7, "a forged handle changed the file");
	/* A released handle, its slot taken again by another open. */
	CHECK_OK(t, fc_open(c, e.nodeid, O_RDONLY, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK_OK(t, fc_releasedir(c, FC_ROOT, dh.fh));
	CHECK_OK(t, fc_opendir(c, FC_ROOT, &dh));
	refused_fc(t, fc_read(c, e.nodeid, o.fh, 0, buf, sizeof(buf), &n),
		   "READ of a released handle");
	refused_fc(t, fc_readdir(c, FC_ROOT, o.fh, 0, buf, sizeof(buf), &n),
		   "READDIR through a released file handle");
	CHECK_OK(t, fc_releasedir(c, FC_ROOT, dh.fh));
	t_still_serving(t, c);
}

/* ---- names ---- */

static int count_entries(struct t_ctx *t, const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;

	CHECK(t, d, "host: opendir %s", dir);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_bad_names(struct t_ctx *t)
{
	static const char *const names[] = { "a/b", "../escape", "/etc/passwd", "..",
					     ".",   "",		 "x/",		"/" };
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	int before, outside;
	uint64_t file;

	t_mkdir(t, "a");
	t_write_file(t, "a/b", "x", 1);
	t_write_file(t, "file", "x", 1);
	before = count_entries(t, t->share);
	outside = count_entries(t, t->dir);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "file", &e));
	file = e.nodeid;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		refused_fc(t, fc_lookup(c, FC_ROOT, names[i], &e), names[i]);
		refused_fc(t, fc_mkdir(c, FC_ROOT, names[i], 0755, &e), names[i]);
		refused_fc(t, fc_create(c, FC_ROOT, names[i], O_CREAT | O_RDWR, 0644, &e, &o),
			   names[i]);
		refused_fc(t, fc_mknod(c, FC_ROOT, names[i], S_IFREG | 0644, 0, &e), names[i]);
		refused_fc(t, fc_symlink(c, FC_ROOT, names[i], "target", &e), names[i]);
		refused_fc(t, fc_unlink(c, FC_ROOT, names[i]), names[i]);
		refused_fc(t, fc_rmdir(c, FC_ROOT, names[i]), names[i]);
		refused_fc(t, fc_rename(c, FC_ROOT, "a", FC_ROOT, names[i]), names[i]);
		refused_fc(t, fc_rename(c, FC_ROOT, names[i], FC_ROOT, "z"), names[i]);
		refused_fc(t, fc_link(c, file, FC_ROOT, names[i], &e), names[i]);
	}
	CHECK(t,
	      t_exists(t, "a/b") && count_entries(t, t->share) == before &&
		      count_entries(t, t->dir) == outside,
	      "a bad name changed something in or next to the shared directory");
	t_still_serving(t, c);
}

static void test_names_without_nul(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_mkdir_in mk = { .mode = 0755 };
	struct fuse_rename_in rn = { .newdir = FC_ROOT };
	struct fc_arg lookup[] = { { "abc", 3 } };
	struct fc_arg mkdir[] = { { &mk, sizeof(mk) }, { "abc", 3 } };
	struct fc_arg symlink[] = { { "abc\0target", 10 } };
	struct fc_arg rename[] = { { &rn, sizeof(rn) }, { "f\0g", 3 } };
	char out[256];

	t_write_file(t, "f", "x", 1);
	refused_fc(t, fc_call(c, FUSE_LOOKUP, FC_ROOT, lookup, 1, out, sizeof(out), NULL),
		   "LOOKUP name without NUL");
	refused_fc(t, fc_call(c, FUSE_MKDIR, FC_ROOT, mkdir, 2, out, sizeof(out), NULL),
		   "MKDIR name without NUL");
	refused_fc(t, fc_call(c, FUSE_SYMLINK, FC_ROOT, symlink, 1, out, sizeof(out), NULL),
		   "SYMLINK target without NUL");
	refused_fc(t, fc_call(c, FUSE_RENAME, FC_ROOT, rename, 2, out, sizeof(out), NULL),
		   "RENAME new name without NUL");
	CHECK(t, !t_exists(t, "abc") && t_exists(t, "f") && !t_exists(t, "g"),
	      "a name without NUL changed the host directory");
	t_still_serving(t, c);
}

static void test_long_names(struct t_ctx *t)
{
	struct fc *c = session(t);
	static char name[4097], target[8193];
	struct fuse_entry_out e;
	struct fuse_open_out o;

	memset(name, 'n', sizeof(name) - 1);
	memset(target, 't', sizeof(target) - 1);
	refused_fc(t, fc_lookup(c, FC_ROOT, name, &e), "LOOKUP of a 4 KiB name");
	refused_fc(t, fc_mkdir(c, FC_ROOT, name, 0755, &e), "MKDIR of a 4 KiB name");
	refused_fc(t, fc_create(c, FC_ROOT, name, O_CREAT | O_RDWR, 0644, &e, &o),
		   "CREATE of a 4 KiB name");
	refused_fc(t, fc_symlink(c, FC_ROOT, "s", target, &e), "SYMLINK to an 8 KiB target");
	CHECK_ERR(t, fc_lookup(c, FC_ROOT, name + 4096 - 256, &e), ENAMETOOLONG);
	CHECK_ERR(t, fc_lookup(c, FC_ROOT, name + 4096 - 255, &e), ENOENT); /* 255 is fine */
	t_still_serving(t, c);
}

/* Symlinks in the share point out of it: vfsd neither follows nor opens them. */
static void test_symlinks_not_followed(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e, pw;
	struct fuse_open_out o;
	struct fuse_attr_out a;

	CHECK(t,
	      symlink("/", t_path(t, "root")) == 0 && symlink("/etc/passwd", t_path(t, "pw")) == 0,
	      "host symlinks");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "root", &e));
	CHECK(t, S_ISLNK(e.attr.mode), "'root' is mode 0%o", e.attr.mode);
	refused_fc(t, fc_lookup(c, e.nodeid, "etc", &e), "LOOKUP through a symlink");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "pw", &pw));
	refused_fc(t, fc_open(c, pw.nodeid, O_RDONLY, &o), "OPEN of a symlink");
	refused_fc(t, fc_opendir(c, e.nodeid, &o), "OPENDIR of a symlink");
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 0 };

	refused_fc(t, fc_setattr(c, pw.nodeid, &sa, &a), "truncate through a symlink");
	t_still_serving(t, c);
}

/* FIFOs, sockets and devices in the share are never opened (a FIFO would block forever). */
static void test_special_files(struct t_ctx *t)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	struct fuse_setattr_in trunc = { .valid = FATTR_SIZE, .size = 0 };
	const char *names[] = { "fifo", "sock", "null" };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t_path(t, "sock"));
	CHECK(t,
	      mkfifo(t_path(t, "fifo"), 0666) == 0 && s >= 0 &&
		      bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		      mknod(t_path(t, "null"), S_IFCHR | 0666, makedev(1, 3)) == 0,
	      "host special files: %s", strerror(errno));
	for (size_t i = 0; i < 3; i++) {
		CHECK_OK(t, fc_lookup(c, FC_ROOT, names[i], &e));
		refused_fc(t, fc_open(c, e.nodeid, O_RDONLY, &o), names[i]);
		refused_fc(t, fc_open(c, e.nodeid, O_WRONLY, &o), names[i]);
		refused_fc(t, fc_opendir(c, e.nodeid, &o), names[i]);
		refused_fc(t, fc_setattr(c, e.nodeid, &trunc, &a), names[i]);
	}
	close(s);
	t_still_serving(t, c);
}

/* ---- sizes ---- */

static void test_readdir_sizes(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_open_out o;
	char buf[8192];
	size_t n;
	int r;

	t_write_file(t, "f", "", 0);
	CHECK_OK(t, fc_opendir(c, FC_ROOT, &o));
	for (int plus = 0; plus < 2; plus++) {
		for (size_t size = 0; size < 64; size += (size < 8 ? 1 : 13)) {
			r = plus ? fc_readdirplus(c, FC_ROOT, o.fh, 0, buf, size, &n) :
				   fc_readdir(c, FC_ROOT, o.fh, 0, buf, size, &n);
			if (r == 0)
				CHECK(t, n <= size, "READDIR%s of %zu bytes answered %zu",
				      plus ? "PLUS" : "", size, n);
			else
				refused_fc(t, r, "READDIR with a tiny buffer");
		}
	}
	/* size larger than the buffer the guest left: refused, nothing written past it. */
	struct fuse_read_in in = { .fh = o.fh, .size = 8192 };
	struct fc_arg a = { &in, sizeof(in) };

	refused_fc(t, fc_call(c, FUSE_READDIR, FC_ROOT, &a, 1, buf, 100, &n),
		   "READDIR size bigger than the reply buffer");
	in.size = 0xffffffff;
	refused_fc(t, fc_call(c, FUSE_READDIRPLUS, FC_ROOT, &a, 1, buf, sizeof(buf), &n),
		   "READDIRPLUS of 4 GiB");
	CHECK_OK(t, fc_releasedir(c, FC_ROOT, o.fh));
	t_still_serving(t, c);
}

static void test_batch_forget_counts(struct t_ctx *t)
{
	static const uint32_t counts[] = { 0, 2, 100, 65536, 70000, 0x10000000, 0xffffffff };
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_attr_out a;

	t_write_file(t, "f", "x", 1);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &e));
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct {
			struct fuse_batch_forget_in in;
			struct fuse_forget_one one;
		} req = { { .count = counts[i] }, { .nodeid = 12345, .nlookup = 1 } };
		uint32_t len = sizeof(struct fuse_in_header) + sizeof(req);
		uint64_t hdr = put_req(t, FUSE_BATCH_FORGET, 0, len, &req, sizeof(req));
		/* A reply buffer a guest would not give, so that an error can be told. */
		uint64_t out = out_buf(t, 16);

		refused(t,
			submit(t, FE_HIPRIO,
			       (struct rd[]){ RD(hdr, len, RNEXT, 1), RD(out, 16, WR, 0) }, 2, out),
			"BATCH_FORGET whose count is not its length");
	}
	CHECK_OK(t, fc_getattr(c, e.nodeid, &a)); /* nothing real was forgotten */
	t_still_serving(t, c);
}

static void test_read_write_sizes(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	static char big[64];
	size_t n;

	CHECK_OK(t, fc_create(c, FC_ROOT, "f", O_CREAT | O_RDWR, 0644, &e, &o));
	CHECK_OK(t, fc_write(c, e.nodeid, o.fh, 0, "0123456789", 10, &n));
	for (int i = 0; i < 2; i++) {
		struct fuse_write_in in = { .fh = o.fh, .size = i ? 0xffffffffu : 1000 };
		struct fc_arg a[2] = { { &in, sizeof(in) }, { "abcdefghij", 10 } };
		struct fuse_write_out out;

		refused_fc(t, fc_call(c, FUSE_WRITE, e.nodeid, a, 2, &out, sizeof(out), NULL),
			   "WRITE whose size is more than its payload");
	}
	CHECK(t, t_read_file(t, "f", big, sizeof(big)) == 10 && memcmp(big, "0123456789", 10) == 0,
	      "a refused WRITE changed the file");
	/* READ of 4 GiB: refused; READ bigger than the reply buffer: cut to it. */
	struct fuse_read_in rd = { .fh = o.fh, .size = 0xffffffffu };
	struct fc_arg ra = { &rd, sizeof(rd) };

	refused_fc(t, fc_call(c, FUSE_READ, e.nodeid, &ra, 1, big, sizeof(big), &n),
		   "READ of 4 GiB");
	rd.size = 1 << 20;
	int r = fc_call(c, FUSE_READ, e.nodeid, &ra, 1, big, 4, &n);

	if (r == 0)
		CHECK(t, n <= 4, "a READ into 4 bytes answered %zu", n);
	else
		refused_fc(t, r, "READ bigger than its buffer");
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	t_still_serving(t, c);
}

static void test_oversized_requests(struct t_ctx *t)
{
	struct fc *c = session(t);
	size_t size = (2u << 20) + 100;
	char *name = malloc(size);
	struct fc_arg a = { name, size };
	char out[256];

	CHECK(t, name, "out of memory");
	memset(name, 'x', size);
	name[size - 1] = '\0';
	c->chain = FE_INDIRECT;
	c->split_pages = true;
	refused_fc(t, fc_call(c, FUSE_LOOKUP, FC_ROOT, &a, 1, out, sizeof(out), NULL),
		   "a 2 MiB LOOKUP");
	refused_fc(t, fc_call(c, FUSE_SYMLINK, FC_ROOT, &a, 1, out, sizeof(out), NULL),
		   "a 2 MiB SYMLINK");
	free(name);
	t_still_serving(t, c);
}

static void test_bad_flags(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_setattr_in sa = { .valid = 0xffffffffu, .fh = 4242, .size = 1ull << 62 };
	struct fuse_attr_out a;
	struct fuse_open_out o;
	struct fuse_entry_out e;

	t_write_file(t, "f", "x", 1);
	t_write_file(t, "g", "y", 1);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &e));
	refused_fc(t, fc_rename2(c, FC_ROOT, "f", FC_ROOT, "g", 0xffffffffu), "RENAME2 flags ~0");
	refused_fc(t, fc_setattr(c, e.nodeid, &sa, &a), "SETATTR valid ~0 with a forged handle");
	refused_fc(t, fc_open(c, e.nodeid, O_DIRECTORY | O_RDONLY, &o),
		   "OPEN of a file O_DIRECTORY");
	/* An absurd fallocate/lseek/copy on a real handle: errors from the host, no harm. */
	CHECK_OK(t, fc_open(c, e.nodeid, O_RDWR, &o));
	refused_fc(t, fc_fallocate(c, e.nodeid, o.fh, 0xffffffffu, 0, 1), "FALLOCATE mode ~0");
	refused_fc(t, fc_fallocate(c, e.nodeid, o.fh, 0, UINT64_MAX - 10, 100),
		   "FALLOCATE past 2^64");
	uint64_t pos;

	refused_fc(t, fc_lseek(c, e.nodeid, o.fh, 0, 77, &pos), "LSEEK whence 77");
	size_t n;

	refused_fc(t,
		   fc_copy_file_range(c, e.nodeid, o.fh, UINT64_MAX - 1, e.nodeid, o.fh, 0, 10, &n),
		   "COPY_FILE_RANGE from offset 2^64-1");
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	CHECK(t, t_exists(t, "f") && t_exists(t, "g"), "RENAME2 with every flag did something");
	t_still_serving(t, c);
}

/* ---- rings ---- */

/* Random chains (some good requests among them), all in flight at once. */
static void storm(struct t_ctx *t, unsigned int q, const char *pool)
{
	struct fe_opts opts = { .queue_size = 1024 }; /* 160 chains of up to 5 + 40 good ones */
	struct fc *c = t_session(t, &opts, pool, NULL);
	struct fe_dev *d = t->dev;
	uint64_t junk = fe_alloc_any(d, 1 << 20), seed = 0x9e3779b97f4a7c15ull;
	uint8_t *jp = fe_ptr(d, junk, 1 << 20);
	struct fc_req good[40];
	uint16_t heads[160];
	int nheads = 0, ngood = 0;

	CHECK(t, jp, "guest memory");
	for (size_t i = 0; i < (1 << 20); i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		jp[i] = (uint8_t)(seed >> 56);
	}
	c->queue = q;
	c->chain = FE_INDIRECT;
	for (int i = 0; i < 200; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		if (i % 5 == 0) {
			struct fuse_getattr_in in = { 0 };
			struct fc_arg a = { &in, sizeof(in) };

			CHECK_OK(t, fc_start(c, &good[ngood++], FUSE_GETATTR, FC_ROOT, &a, 1,
					     sizeof(struct fuse_attr_out)));
			continue;
		}
		int n = 1 + (int)((seed >> 20) % 5);
		uint16_t idx[5];

		CHECK_FE(t, fe_desc_alloc(d, q, n, idx));
		for (int k = 0; k < n; k++) {
			uint64_t s = (seed >> (k * 7)) ^ (seed << (k + 3));
			uint16_t flags = (uint16_t)(s & 7); /* NEXT, WRITE, INDIRECT at random */
			uint64_t addr;

			switch ((s >> 8) % 4) {
			case 0:
				addr = FAR_AWAY + (s & 0xffff);
				break;
			case 1:
				addr = UINT64_MAX - (s & 0xff);
				break;
			default: /* in the junk area: reads random, writes harmless */
				addr = junk + ((s >> 12) % ((1 << 20) - 4096));
			}
			*fe_desc(d, q, idx[k]) = (struct vring_desc){
				.addr = addr,
				.len = (uint32_t)((s >> 24) % 5000),
				.flags = flags,
				/* Out of the ring, or anywhere in this chain (loops too),
				 * never into a good request's buffers. */
				.next = (s >> 40) % 3 == 0 ?
						(uint16_t)(d->vq[q].num + (s >> 44) % 999) :
						idx[(s >> 44) % n],
			};
		}
		fe_publish(d, q, idx[0]);
		CHECK_FE(t, fe_kick(d, q));
		heads[nheads++] = idx[0];
	}
	for (int i = 0; i < nheads; i++) {
		uint32_t len;

		if (fe_wait(d, q, heads[i], FE_TIMEOUT_MS, &len) < 0)
			t_fail(t, "a random chain never came back: %s", fe_error(d));
	}
	for (int i = ngood - 1; i >= 0; i--) {
		struct fuse_attr_out a;

		CHECK_OK(t, fc_finish(c, &good[i], &a, sizeof(a), NULL));
	}
	c->queue = FE_REQUEST;
	t_still_serving(t, c);
}

static void test_storm_request_queue(struct t_ctx *t)
{
	storm(t, FE_REQUEST, NULL);
}

static void test_storm_hiprio_pool(struct t_ctx *t)
{
	storm(t, FE_HIPRIO, "--thread-pool-size=4");
}

static void test_storm_request_pool(struct t_ctx *t)
{
	storm(t, FE_REQUEST, "--thread-pool-size=4");
}

/*
 * An avail index that jumps past the ring, then a head out of the ring: the device may stop
 * the ring (and say so on the error eventfd), but when the VMM restarts the ring, as it does
 * after the guest resets the device, it must serve again.
 */
static void broken_ring(struct t_ctx *t, bool jump)
{
	struct fc *c = session(t);
	struct fe_dev *d = t->dev;
	struct fe_vring *vq = &d->vq[FE_REQUEST];
	struct pollfd p = { .fd = vq->err_fd, .events = POLLIN };
	unsigned int base;

	if (jump) {
		vq->avail_idx += (uint16_t)(vq->num + 10);
	} else {
		vq->avail->ring[vq->avail_idx % vq->num] = (uint16_t)(vq->num + 5);
		vq->avail_idx++;
	}
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	CHECK_FE(t, fe_kick(d, FE_REQUEST));
	CHECK(t, poll(&p, 1, 2000) == 1, "the broken ring was not reported on the error eventfd");
	CHECK(t, t_alive(t), "the daemon died (%s)", t_status(t));
	/* The VMM stops the ring and starts it afresh. */
	CHECK_FE(t, fe_vring_enable(d, FE_REQUEST, false));
	CHECK_FE(t, fe_get_vring_base(d, FE_REQUEST, &base));
	CHECK_FE(t, fe_vring_fd(d, VHOST_USER_SET_VRING_CALL, FE_REQUEST, vq->call_fd));
	CHECK_FE(t, fe_vring_setup(d, FE_REQUEST));
	CHECK_FE(t, fe_vring_enable(d, FE_REQUEST, true));
	t_still_serving(t, c);
}

static void test_avail_index_jump(struct t_ctx *t)
{
	broken_ring(t, true);
}

static void test_avail_head_out_of_ring(struct t_ctx *t)
{
	broken_ring(t, false);
}

static const struct t_case cases[] = {
	{ "desc-addr-outside-memory", test_addr_outside_memory, NULL },
	{ "desc-len-overflow", test_len_overflow, NULL },
	{ "desc-chain-loops", test_chain_loops, NULL },
	{ "desc-order-and-sizes", test_bad_order_and_sizes, NULL },
	{ "desc-header-in-40-pieces", test_header_in_pieces, NULL },
	{ "desc-across-adjacent-regions", test_across_adjacent_regions, NULL },
	{ "indirect-tables", test_indirect, NULL },
	{ "fuse-len-disagrees", test_header_len_lies, NULL },
	{ "unknown-opcodes", test_unknown_opcodes, NULL },
	{ "requests-before-init", test_before_init, NULL },
	{ "init-twice-short-destroy", test_init_twice_and_short, NULL },
	{ "forged-node-ids", test_forged_node_ids, NULL },
	{ "forgotten-node-ids", test_forgotten_node_ids, NULL },
	{ "forged-file-handles", test_forged_handles, NULL },
	{ "names-slash-dot-empty", test_bad_names, NULL },
	{ "names-without-nul", test_names_without_nul, NULL },
	{ "names-4k", test_long_names, NULL },
	{ "symlinks-not-followed", test_symlinks_not_followed, NULL },
	{ "special-files-not-opened", test_special_files, NULL },
	{ "readdir-tiny-buffers", test_readdir_sizes, NULL },
	{ "batch-forget-huge-count", test_batch_forget_counts, NULL },
	{ "read-write-sizes", test_read_write_sizes, NULL },
	{ "oversized-requests", test_oversized_requests, NULL },
	{ "bad-flags", test_bad_flags, NULL },
	{ "storm-request-queue", test_storm_request_queue, NULL },
	{ "storm-hiprio-pool", test_storm_hiprio_pool, NULL },
	{ "storm-request-pool", test_storm_request_pool, NULL },
	{ "broken-ring-avail-jump", test_avail_index_jump, NULL },
	{ "broken-ring-head-out-of-range", test_avail_head_out_of_ring, NULL },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, "hostile");
}
