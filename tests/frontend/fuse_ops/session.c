/* The FUSE opcode suite (test_fuse_ops): INIT, DESTROY, INTERRUPT and the opcodes answered ENOSYS. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fuse_ops.h"

/* ---- INIT ---- */

void test_init(struct t_ctx *t)
{
	/* What a Linux 6.1 guest offers (fuse_client.c) and what vfsd must keep of it. */
	const uint64_t vfsd_flags = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
				    FUSE_HAS_IOCTL_DIR | FUSE_AUTO_INVAL_DATA | FUSE_ASYNC_DIO |
				    FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_INIT_EXT |
				    FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_SUBMOUNTS |
				    FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS;
	struct fc *c = session(t);
	const struct fuse_init_out *o = &c->init;
	uint64_t flags = o->flags | ((uint64_t)o->flags2 << 32);
	struct fuse_init_out again;

	CHECK(t, o->major == 7, "major %u", o->major);
	CHECK(t, t->c_virtiofsd ? o->minor >= 31 : o->minor == 38, "minor %u", o->minor);
	CHECK(t, !(flags & FUSE_SECURITY_CTX) && !(flags & FUSE_WRITEBACK_CACHE),
	      "flags 0x%llx enable what this session did not ask for", (unsigned long long)flags);
	CHECK(t, o->max_write >= 4096, "max_write %u", o->max_write);
	if (!t->c_virtiofsd) {
		CHECK(t, flags == vfsd_flags, "flags 0x%llx, expected 0x%llx",
		      (unsigned long long)flags, (unsigned long long)vfsd_flags);
		CHECK(t, o->max_write == 1u << 20 && o->max_pages == 256,
		      "max_write %u max_pages %u", o->max_write, o->max_pages);
		CHECK(t, o->max_readahead == 128 * 1024, "max_readahead %u not echoed",
		      o->max_readahead);
		CHECK(t,
		      o->max_background == 65535 && o->congestion_threshold == 49149 &&
			      o->time_gran == 1,
		      "max_background %u congestion %u time_gran %u", o->max_background,
		      o->congestion_threshold, o->time_gran);
	}
	/* Major 8: the answer names 7 so the kernel can retry. */
	CHECK_OK(t, fc_init_with(c, 8, 0, 0, &again));
	CHECK(t, again.major == 7, "INIT 8.0 answered major %u", again.major);
	/* Too old, or major 6: EPROTO. */
	CHECK_ERR(t, fc_init_with(c, 7, 26, 0, &again), EPROTO);
	CHECK_ERR(t, fc_init_with(c, 6, 38, 0, &again), EPROTO);
	/* Without INIT_EXT (16 bytes of init_in) still fine. */
	CHECK_OK(t, fc_init_with(c, 7, 38, FUSE_ASYNC_READ | FUSE_BIG_WRITES, &again));
	CHECK(t, again.major == 7 && !(again.flags & FUSE_INIT_EXT),
	      "INIT without INIT_EXT: flags 0x%x", again.flags);
	t_still_serving(t, c);
}


/* ---- session ---- */

void test_destroy(struct t_ctx *t)
{
	struct fc *c = session(t);
	struct fuse_attr_out a;
	uint64_t id;

	t_write_file(t, "f", "x", 1);
	id = lookup_id(t, c, FC_ROOT, "f");
	CHECK_OK(t, fc_destroy(c));
	if (!t->c_virtiofsd)
		CHECK_ERR(t, fc_getattr(c, FC_ROOT, &a), EIO); /* no session until INIT */
	CHECK_OK(t, fc_init(c));
	t_still_serving(t, c);
	if (!t->c_virtiofsd)
		CHECK_ERR(t, fc_getattr(c, id, &a), EBADF); /* the old session's ids are gone */
}

void test_interrupt(struct t_ctx *t)
{
	struct fc *c = session(t);

	CHECK_OK(t, fc_interrupt(c, 123456));
	t_still_serving(t, c);
}

/* Opcodes a guest may send that the daemon does not implement (ops.c's do_enosys entries,
 * and opcodes nobody defined): ENOSYS, nothing else. Each gets well-formed arguments. */
void test_enosys(struct t_ctx *t)
{
	struct {
		uint32_t size, flags; /* the 8-byte fuse_setxattr_in: SETXATTR_EXT is not agreed */
		char name[7], value[1];
	} __attribute__((packed)) setx = { .size = 1, .name = "user.x", .value = "v" };
	struct {
		struct fuse_getxattr_in in;
		char name[7];
	} getx = { .in = { .size = 64 }, .name = "user.x" };
	struct fuse_bmap_in bmap = { .blocksize = 4096 };
	struct fuse_ioctl_in ioctl = { 0 };
	struct fuse_poll_in poll = { 0 };
	struct fuse_setupmapping_in map = { 0 };
	struct fuse_removemapping_in unmap = { 0 };
	static const uint8_t zero[16];
	const struct {
		uint32_t opcode;
		const void *arg;
		size_t len;
		bool both; /* the C virtiofsd lacks it too */
	} ops[] = {
		{ FUSE_SETXATTR, &setx, sizeof(setx), true },
		{ FUSE_GETXATTR, &getx, sizeof(getx), true },
		{ FUSE_LISTXATTR, &getx.in, sizeof(getx.in), true },
		{ FUSE_REMOVEXATTR, "user.x", 7, true },
		{ FUSE_BMAP, &bmap, sizeof(bmap), true },
		{ FUSE_IOCTL, &ioctl, sizeof(ioctl), true },
		{ FUSE_POLL, &poll, sizeof(poll), true },
		{ FUSE_NOTIFY_REPLY, zero, sizeof(zero), false },
		{ FUSE_SETUPMAPPING, &map, sizeof(map), false },
		{ FUSE_REMOVEMAPPING, &unmap, sizeof(unmap), false },
		{ 7, zero, sizeof(zero), true },
		{ 19, zero, sizeof(zero), true },
		{ 99, zero, sizeof(zero), true },
		{ 4096, zero, sizeof(zero),
		  false }, /* CUSE_INIT: the C virtiofsd ends the session */
	};
	struct fc *c = session(t);
	char out[256];

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct fc_arg a = { ops[i].arg, ops[i].len };
		int r;

		if (t->c_virtiofsd && !ops[i].both)
			continue;
		r = fc_call(c, ops[i].opcode, FC_ROOT, &a, 1, out, sizeof(out), NULL);
		CHECK(t, r == -ENOSYS, "opcode %u: %s, expected ENOSYS", ops[i].opcode,
		      fc_strerror(c, r));
	}
	t_still_serving(t, c);
}

/* A value read back from the host, "" when absent. */
