/* FUSE request decoding: short, oversized and malformed requests get an error reply. */
#include "test_helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuse/server.h"

static int lookups, forgets, writes, inits;
static uint64_t forgotten;

static int mock_init(void *fs, uint64_t capable, uint64_t *want)
{
	(void)fs;
	inits++;
	*want = capable & FUSE_DO_READDIRPLUS;
	return 0;
}
static void mock_destroy(void *fs)
{
	(void)fs;
}
static int mock_lookup(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
		       struct fuse_entry_out *out)
{
	(void)fs;
	(void)ctx;
	(void)parent;
	(void)name;
	lookups++;
	memset(out, 0, sizeof(*out));
	out->nodeid = 42;
	return 0;
}
static void mock_forget(void *fs, uint64_t nodeid, uint64_t n)
{
	(void)fs;
	(void)nodeid;
	forgets++;
	forgotten += n;
}
static int mock_write(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		      uint64_t off, uint32_t wf, uint32_t flags, const struct iovec *src, int cnt,
		      size_t *done)
{
	(void)fs;
	(void)ctx;
	(void)nodeid;
	(void)fh;
	(void)off;
	(void)wf;
	(void)flags;
	writes++;
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += src[i].iov_len;
	*done = n;
	return 0;
}

static const struct vfsd_fs_ops mock_ops = {
	.init = mock_init,
	.destroy = mock_destroy,
	.lookup = mock_lookup,
	.forget = mock_forget,
	.write = mock_write,
};

struct fixture {
	struct fuse_server srv;
	uint8_t req[8192];
	uint8_t reply[8192];
};

/* Sends len bytes of f->req with a reply buffer of cap bytes; returns the reply length. */
static uint32_t send_req(struct fixture *f, size_t len, size_t cap)
{
	struct iovec rd = { f->req, len }, wr = { f->reply, cap };

	memset(f->reply, 0xee, sizeof(f->reply));
	return fuse_server_handle(&f->srv, &rd, 1, &wr, 1);
}

static struct fuse_in_header *hdr(struct fixture *f, uint32_t opcode, uint32_t len)
{
	struct fuse_in_header *h = (struct fuse_in_header *)f->req;

	memset(h, 0, sizeof(*h));
	h->opcode = opcode;
	h->len = len;
	h->unique = 77;
	h->nodeid = 1;
	return h;
}

static int reply_error(struct fixture *f)
{
	return ((struct fuse_out_header *)f->reply)->error;
}

/* INIT as a 6.1 kernel sends it: 104 bytes with INIT_EXT and flags2. */
static void do_init(struct fixture *f)
{
	struct fuse_init_in *in = (struct fuse_init_in *)(f->req + sizeof(struct fuse_in_header));

	hdr(f, FUSE_INIT, sizeof(struct fuse_in_header) + sizeof(*in));
	assert_int_equal(sizeof(struct fuse_in_header) + sizeof(*in), 104);
	*in = (struct fuse_init_in){ .major = 7, .minor = 38, .max_readahead = 65536,
				     .flags = FUSE_DO_READDIRPLUS | FUSE_ASYNC_READ | FUSE_POSIX_LOCKS |
					      FUSE_INIT_EXT };
	assert_int_equal(send_req(f, sizeof(struct fuse_in_header) + sizeof(*in), 4096),
			 sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out));
	assert_int_equal(reply_error(f), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	fuse_server_init(&f->srv, &mock_ops, NULL);
	lookups = forgets = writes = inits = 0;
	forgotten = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fuse_server_cleanup(&f->srv);
	free(f);
	return 0;
}

static void test_init_negotiates(void **state)
{
	struct fixture *f = *state;
	struct fuse_init_out *out;

	do_init(f);
	out = (struct fuse_init_out *)(f->reply + sizeof(struct fuse_out_header));
	assert_int_equal(out->major, 7);
	assert_int_equal(out->minor, 38);
	assert_int_equal(out->max_write, 1 << 20);
	assert_true(out->flags & FUSE_DO_READDIRPLUS);
	assert_true(out->flags & FUSE_ASYNC_READ);
	assert_false(out->flags & FUSE_POSIX_LOCKS); /* offered by the kernel, not wanted */
	assert_int_equal(inits, 1);
}

static void test_init_without_ext(void **state)
{
	struct fixture *f = *state;
	size_t len = sizeof(struct fuse_in_header) + 16; /* a kernel before 7.36 */
	struct fuse_init_in *in = (struct fuse_init_in *)(f->req + sizeof(struct fuse_in_header));

	hdr(f, FUSE_INIT, len);
	*in = (struct fuse_init_in){ .major = 7, .minor = 31, .flags = FUSE_ASYNC_READ };
	assert_int_equal(send_req(f, len, 4096),
			 sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out));
	assert_int_equal(reply_error(f), 0);
	/* INIT_EXT announced but the extension is missing */
	in->flags |= FUSE_INIT_EXT;
	send_req(f, len, 4096);
	assert_int_equal(reply_error(f), -EINVAL);
}

static void test_old_kernel_refused(void **state)
{
	struct fixture *f = *state;
	struct fuse_init_in *in = (struct fuse_init_in *)(f->req + sizeof(struct fuse_in_header));

	hdr(f, FUSE_INIT, sizeof(struct fuse_in_header) + sizeof(*in));
	*in = (struct fuse_init_in){ .major = 7, .minor = 20 };
	send_req(f, sizeof(struct fuse_in_header) + sizeof(*in), 4096);
	assert_int_equal(reply_error(f), -EPROTO);
}

static void test_request_before_init(void **state)
{
	struct fixture *f = *state;

	hdr(f, FUSE_LOOKUP, sizeof(struct fuse_in_header) + 2);
	memcpy(f->req + sizeof(struct fuse_in_header), "a", 2);
	send_req(f, sizeof(struct fuse_in_header) + 2, 4096);
	assert_int_equal(reply_error(f), -EIO);
	assert_int_equal(lookups, 0);
}

static void test_short_header(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(send_req(f, 10, 4096), sizeof(struct fuse_out_header));
	assert_int_equal(reply_error(f), -EINVAL);
	/* no room even for an error: nothing is written */
	assert_int_equal(send_req(f, 10, 8), 0);
}

static void test_len_disagrees_with_buffers(void **state)
{
	struct fixture *f = *state;

	do_init(f);
	hdr(f, FUSE_LOOKUP, 200); /* says 200, only 42 readable */
	memcpy(f->req + sizeof(struct fuse_in_header), "a", 2);
	send_req(f, sizeof(struct fuse_in_header) + 2, 4096);
	assert_int_equal(reply_error(f), -EINVAL);
	hdr(f, FUSE_LOOKUP, 12); /* smaller than the header itself */
	send_req(f, sizeof(struct fuse_in_header) + 2, 4096);
	assert_int_equal(reply_error(f), -EINVAL);
	assert_int_equal(lookups, 0);
}

static void test_oversized_request(void **state)
{
	struct fixture *f = *state;
	size_t big = FUSE_SERVER_MAX_REQUEST + 4096;
	uint8_t *buf = calloc(1, big);
	struct fuse_in_header *h = (struct fuse_in_header *)buf;
	struct iovec rd = { buf, big }, wr = { f->reply, 4096 };

	do_init(f);
	h->opcode = FUSE_LOOKUP;
	h->len = big;
	fuse_server_handle(&f->srv, &rd, 1, &wr, 1);
	assert_int_equal(reply_error(f), -ENOMEM);
	free(buf);
}

static void test_unknown_opcode(void **state)
{
	struct fixture *f = *state;

	do_init(f);
	hdr(f, 4000, sizeof(struct fuse_in_header));
	send_req(f, sizeof(struct fuse_in_header), 4096);
	assert_int_equal(reply_error(f), -ENOSYS);
	hdr(f, FUSE_BMAP, sizeof(struct fuse_in_header));
	send_req(f, sizeof(struct fuse_in_header), 4096);
	assert_int_equal(reply_error(f), -ENOSYS);
	/* an op the filesystem does not provide (the mock has no getattr) */
	hdr(f, FUSE_GETATTR, sizeof(struct fuse_in_header) + sizeof(struct fuse_getattr_in));
	send_req(f, sizeof(struct fuse_in_header) + sizeof(struct fuse_getattr_in), 4096);
	assert_int_equal(reply_error(f), -ENOSYS);
}

static void test_bad_names(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = { "a/b", "..", ".", "" };
	char longname[300];

	do_init(f);
	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(names[i]) + 1;

		hdr(f, FUSE_LOOKUP, sizeof(struct fuse_in_header) + n);
		memcpy(f->req + sizeof(struct fuse_in_header), names[i], n);
		send_req(f, sizeof(struct fuse_in_header) + n, 4096);
		assert_int_equal(reply_error(f), -EINVAL);
	}
	/* no NUL at all */
	hdr(f, FUSE_LOOKUP, sizeof(struct fuse_in_header) + 3);
	memcpy(f->req + sizeof(struct fuse_in_header), "abc", 3);
	send_req(f, sizeof(struct fuse_in_header) + 3, 4096);
	assert_int_equal(reply_error(f), -EINVAL);
	/* longer than NAME_MAX */
	memset(longname, 'x', sizeof(longname));
	longname[299] = '\0';
	hdr(f, FUSE_LOOKUP, sizeof(struct fuse_in_header) + 300);
	memcpy(f->req + sizeof(struct fuse_in_header), longname, 300);
	send_req(f, sizeof(struct fuse_in_header) + 300, 4096);
	assert_int_equal(reply_error(f), -ENAMETOOLONG);
	assert_int_equal(lookups, 0);
	/* and a good one still works */
	hdr(f, FUSE_LOOKUP, sizeof(struct fuse_in_header) + 2);
	memcpy(f->req + sizeof(struct fuse_in_header), "a", 2);
	assert_int_equal(send_req(f, sizeof(struct fuse_in_header) + 2, 4096),
			 sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out));
	assert_int_equal(reply_error(f), 0);
	assert_int_equal(lookups, 1);
}

static void test_reply_does_not_fit(void **state)
{
	struct fixture *f = *state;

	do_init(f);
	hdr(f, FUSE_LOOKUP, sizeof(struct fuse_in_header) + 2);
	memcpy(f->req + sizeof(struct fuse_in_header), "a", 2);
	assert_int_equal(send_req(f, sizeof(struct fuse_in_header) + 2, 20),
			 sizeof(struct fuse_out_header));
	assert_int_equal(reply_error(f), -ERANGE);
}

static void test_short_fixed_args(void **state)
{
	struct fixture *f = *state;

	do_init(f);
	hdr(f, FUSE_WRITE, sizeof(struct fuse_in_header) + 8); /* write_in is 40 bytes */
	send_req(f, sizeof(struct fuse_in_header) + 8, 4096);
	assert_int_equal(reply_error(f), -EINVAL);
	assert_int_equal(writes, 0);
}

static void test_write_size_beyond_payload(void **state)
{
	struct fixture *f = *state;
	struct fuse_write_in *in = (struct fuse_write_in *)(f->req + sizeof(struct fuse_in_header));
	size_t len = sizeof(struct fuse_in_header) + sizeof(*in) + 100;

	do_init(f);
	hdr(f, FUSE_WRITE, len);
	*in = (struct fuse_write_in){ .size = 1000 };
	send_req(f, len, 4096);
	assert_int_equal(reply_error(f), -EINVAL);
	assert_int_equal(writes, 0);
	in->size = 100;
	send_req(f, len, 4096);
	assert_int_equal(reply_error(f), 0);
	assert_int_equal(((struct fuse_write_out *)(f->reply + 16))->size, 100);
}

static void test_forget_has_no_reply(void **state)
{
	struct fixture *f = *state;
	struct fuse_forget_in *in = (struct fuse_forget_in *)(f->req + sizeof(struct fuse_in_header));

	do_init(f);
	hdr(f, FUSE_FORGET, sizeof(struct fuse_in_header) + sizeof(*in));
	in->nlookup = 3;
	assert_int_equal(send_req(f, sizeof(struct fuse_in_header) + sizeof(*in), 4096), 0);
	assert_int_equal(forgotten, 3);
}

static void test_batch_forget_huge_count(void **state)
{
	struct fixture *f = *state;
	struct fuse_batch_forget_in *in =
		(struct fuse_batch_forget_in *)(f->req + sizeof(struct fuse_in_header));
	struct fuse_forget_one *one = (struct fuse_forget_one *)(in + 1);
	size_t len = sizeof(struct fuse_in_header) + sizeof(*in) + 2 * sizeof(*one);

	do_init(f);
	hdr(f, FUSE_BATCH_FORGET, len);
	in->count = UINT32_MAX;
	assert_int_equal(send_req(f, len, 4096), sizeof(struct fuse_out_header));
	assert_int_equal(reply_error(f), -ENOMEM);
	in->count = 5; /* claims more entries than the request carries */
	assert_int_equal(send_req(f, len, 4096), 0);
	assert_int_equal(forgets, 0);
	in->count = 2;
	one[0] = (struct fuse_forget_one){ .nodeid = 5, .nlookup = 1 };
	one[1] = (struct fuse_forget_one){ .nodeid = 6, .nlookup = 2 };
	assert_int_equal(send_req(f, len, 4096), 0);
	assert_int_equal(forgets, 2);
	assert_int_equal(forgotten, 3);
}

static void test_init_twice_restarts(void **state)
{
	struct fixture *f = *state;

	do_init(f);
	do_init(f);
	assert_int_equal(inits, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_negotiates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_without_ext, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_kernel_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_before_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_len_disagrees_with_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_opcode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_does_not_fit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_fixed_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_size_beyond_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_has_no_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_forget_huge_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_twice_restarts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
