/*
 * libFuzzer target: FUSE requests decoded by fuse_server_handle() and served by the real
 * passthrough filesystem on a scratch directory.
 *
 * Input: one config byte (bit 0 readonly, bit 1 readdirplus, bits 2-3 cache policy, bit 4
 * xattr, bit 5 POSIX and flock locks, bit 6 announced submounts, bit 7 the 7.38 side: POSIX
 * ACLs, security labels and supplementary groups agreed at INIT, an xattr map, inodes held
 * by file handles), then
 * records until the input ends:
 *     u16 writable capacity | u8 shape | u16 length | length bytes of request
 * shape: bits 0-1 readable iovecs (1 + n % 3), bits 2-3 writable iovecs (1 + n % 3),
 * bit 4 sets the in header's len to the real length, bit 5 cuts the readable part after the
 * 40-byte in header, bit 6 cuts the writable part after the 16-byte out header.
 * Every iovec is its own heap block, so AddressSanitizer sees a byte past any of them.
 *
 * Each input gets a fresh filesystem and an INIT, so node ids and file handles start from
 * the same numbers every time (root 1, then 2, 3, ...; handles 1, 2, ...) and a crash file
 * replays alone. The scratch tree is rebuilt after inputs that could have changed it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fuse.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fuse/server.h"
#include "fuzz_common.h"

#define MAX_RECORDS 64
/* Largest file the guest may make: WRITE, SETATTR, FALLOCATE and COPY_FILE_RANGE get EFBIG
 * past it, so that an input cannot fill the machine's memory or disk. */
#define MAX_FILE_SIZE (16 << 20)
#define OUT_HDR sizeof(struct fuse_out_header)
#define IN_HDR sizeof(struct fuse_in_header)

static char base_dir[64];    /* DIR/vfsd-fuzz-XXXXXX */
static char root_dir[80];    /* the shared directory */
static char outside_dir[80]; /* beside it: nothing the guest does may change it */
static char secret_path[96];
static struct stat outside_st, secret_st;
static bool tree_dirty = true;

static int chmod_dirs(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_D || type == FTW_DNR)
		chmod(path, 0700); /* so that a non-root run can empty it */
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	if (ftw->level > 0)
		FUZZ_CHECK(remove(path) == 0, "remove %s: %s", path, strerror(errno));
	return 0;
}

static void write_file(int dfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	FUZZ_CHECK(fd >= 0, "create %s: %s", name, strerror(errno));
	FUZZ_CHECK(write(fd, data, len) == (ssize_t)len, "write %s", name);
	close(fd);
}

/* root/{f, big, d/, d/g, d/e/, l -> f, esc -> ../outside/secret, abs -> /…/secret, p (fifo),
 * h (hard link to f)} */
static void build_tree(void)
{
	static uint8_t big[5000];
	int dfd;

	nftw(root_dir, chmod_dirs, 16, FTW_PHYS | FTW_MOUNT);
	FUZZ_CHECK(nftw(root_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0,
		   "cannot empty %s", root_dir);
	FUZZ_CHECK(chmod(root_dir, 0755) == 0 && lchown(root_dir, geteuid(), getegid()) == 0,
		   "reset %s: %s", root_dir, strerror(errno));
	dfd = open(root_dir, O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(dfd >= 0, "open %s: %s", root_dir, strerror(errno));
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	write_file(dfd, "f", "hello, world\n", 13);
	write_file(dfd, "big", big, sizeof(big));
	FUZZ_CHECK(mkdirat(dfd, "d", 0755) == 0, "mkdir d");
	write_file(dfd, "d/g", "g\n", 2);
	FUZZ_CHECK(mkdirat(dfd, "d/e", 0700) == 0, "mkdir d/e");
	FUZZ_CHECK(symlinkat("f", dfd, "l") == 0, "symlink l");
	FUZZ_CHECK(symlinkat("../outside/secret", dfd, "esc") == 0, "symlink esc");
	FUZZ_CHECK(symlinkat(secret_path, dfd, "abs") == 0, "symlink abs");
	FUZZ_CHECK(mkfifoat(dfd, "p", 0644) == 0, "mkfifo p");
	FUZZ_CHECK(linkat(dfd, "f", dfd, "h", 0) == 0, "link h");
	close(dfd);
	tree_dirty = false;
}

static void remove_scratch(void)
{
	nftw(base_dir, chmod_dirs, 16, FTW_PHYS | FTW_MOUNT);
	nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	rmdir(base_dir);
}

/* In VFSD_FUZZ_SCRATCH, else on tmpfs (fsync is free there), else in /tmp. */
static void setup_scratch(void)
{
	const char *parent = getenv("VFSD_FUZZ_SCRATCH");

	if (!parent)
		parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	FUZZ_CHECK(snprintf(base_dir, sizeof(base_dir), "%s/vfsd-fuzz-XXXXXX", parent) <
			   (int)sizeof(base_dir),
		   "VFSD_FUZZ_SCRATCH is too long");
	FUZZ_CHECK(mkdtemp(base_dir), "mkdtemp in %s: %s", parent, strerror(errno));
	snprintf(root_dir, sizeof(root_dir), "%s/root", base_dir);
	snprintf(outside_dir, sizeof(outside_dir), "%s/outside", base_dir);
	snprintf(secret_path, sizeof(secret_path), "%s/secret", outside_dir);
	FUZZ_CHECK(mkdir(root_dir, 0755) == 0 && mkdir(outside_dir, 0755) == 0, "mkdir");
	{
		int fd = open(outside_dir, O_DIRECTORY | O_CLOEXEC);

		FUZZ_CHECK(fd >= 0, "open %s", outside_dir);
		write_file(fd, "secret", "do not touch\n", 13);
		close(fd);
	}
	FUZZ_CHECK(stat(outside_dir, &outside_st) == 0 && stat(secret_path, &secret_st) == 0,
		   "stat %s", outside_dir);
	atexit(remove_scratch);
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_mode == b->st_mode && a->st_nlink == b->st_nlink &&
	       a->st_uid == b->st_uid && a->st_gid == b->st_gid && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void check_outside_untouched(void)
{
	struct stat st;

	FUZZ_CHECK(stat(outside_dir, &st) == 0 && same_file_state(&st, &outside_st),
		   "the directory beside the share changed: the filesystem escaped its root");
	FUZZ_CHECK(stat(secret_path, &st) == 0 && same_file_state(&st, &secret_st),
		   "a file outside the share changed: the filesystem escaped its root");
}

/* Opcodes after which the scratch tree may differ from the one build_tree() makes. */
static bool may_change_tree(uint32_t opcode)
{
	switch (opcode) {
	case FUSE_SETATTR:
	case FUSE_SYMLINK:
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_LINK:
	case FUSE_OPEN: /* O_TRUNC */
	case FUSE_CREATE:
	case FUSE_WRITE:
	case FUSE_FALLOCATE:
	case FUSE_COPY_FILE_RANGE:
	case FUSE_SETXATTR:
	case FUSE_REMOVEXATTR:
		return true;
	default:
		return false;
	}
}

/* Cuts total into n pieces; with early set, the first cut is at most hdr bytes in. */
static void cut(size_t total, int n, bool early, size_t hdr, size_t *len)
{
	size_t first = early ? (total < hdr ? total : hdr) : total / 2;

	len[0] = n == 1 ? total : first;
	if (n == 2)
		len[1] = total - first;
	if (n == 3) {
		len[1] = (total - first) / 2;
		len[2] = total - first - len[1];
	}
}

static void gather(const struct iovec *iov, int n, void *buf, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t take = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy((uint8_t *)buf + done, iov[i].iov_base, take);
		done += take;
	}
}

/* READDIR(PLUS) replies are records the guest kernel parses: each must be well formed. */
static void check_dirents(const uint8_t *body, size_t len, bool plus)
{
	size_t head = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t skip = plus ? offsetof(struct fuse_direntplus, dirent) : 0;

	for (size_t pos = 0; pos < len;) {
		struct fuse_dirent d;
		size_t rec;

		FUZZ_CHECK(len - pos >= head, "dirent header cut at %zu of %zu", pos, len);
		memcpy(&d, body + pos + skip, sizeof(d));
		rec = FUSE_DIRENT_ALIGN(head + d.namelen);
		FUZZ_CHECK(d.namelen > 0 && d.namelen <= 255 && rec <= len - pos,
			   "dirent at %zu: namelen %u, %zu bytes left", pos, d.namelen, len - pos);
		pos += rec;
	}
}

/* The effective capability set of this thread (creating ops change it for their call). */
static uint64_t effective_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	return data[0].effective | (uint64_t)data[1].effective << 32;
}

static void serve_record(struct fuse_server *srv, size_t cap, uint8_t shape, const uint8_t *req,
			 size_t len)
{
	int nrd = 1 + (shape & 3) % 3, nwr = 1 + ((shape >> 2) & 3) % 3;
	struct fuse_in_header in = { 0 };
	struct fuse_out_header out;
	struct iovec rd[3], wr[3];
	size_t rlen[3], wlen[3], off = 0;
	uid_t euid = geteuid();
	gid_t egid = getegid();
	uint64_t caps = effective_caps();
	const char *op;
	uint32_t ret;

	cut(len, nrd, shape & 0x20, IN_HDR, rlen);
	cut(cap, nwr, shape & 0x40, OUT_HDR, wlen);
	for (int i = 0; i < nrd; i++) {
		rd[i].iov_base = malloc(rlen[i]);
		rd[i].iov_len = rlen[i];
		memcpy(rd[i].iov_base, req + off, rlen[i]);
		off += rlen[i];
	}
	if ((shape & 0x10) && len >= sizeof(uint32_t)) {
		uint32_t real = (uint32_t)len;

		/* the len field may straddle iovecs: write it through the same cut */
		for (size_t i = 0, o = 0; i < (size_t)nrd && o < sizeof(real); i++) {
			size_t take = rlen[i] < sizeof(real) - o ? rlen[i] : sizeof(real) - o;

			memcpy(rd[i].iov_base, (uint8_t *)&real + o, take);
			o += take;
		}
	}
	for (int i = 0; i < nwr; i++) {
		wr[i].iov_base = malloc(wlen[i]);
		wr[i].iov_len = wlen[i];
		memset(wr[i].iov_base, 0xa5, wlen[i]);
	}
	gather(rd, nrd, &in, len < IN_HDR ? len : IN_HDR);
	if (len >= 8)
		tree_dirty |= may_change_tree(in.opcode);

	ret = fuse_server_handle(srv, rd, nrd, wr, nwr);
	if (fuzz_trace) {
		memset(&out, 0, sizeof(out));
		gather(wr, nwr, &out, ret < OUT_HDR ? ret : OUT_HDR);
		fprintf(stderr, "fuzz: %s nodeid %llu (%zu bytes) -> %u bytes, error %d\n",
			fuse_opcode_name(in.opcode), (unsigned long long)in.nodeid, len, ret,
			out.error);
	}

	op = fuse_opcode_name(in.opcode);
	FUZZ_CHECK(geteuid() == euid && getegid() == egid && effective_caps() == caps,
		   "credentials not restored after %s", op);
	FUZZ_CHECK(ret <= cap, "%s: reply of %u bytes into %zu", op, ret, cap);
	FUZZ_CHECK(ret == 0 || ret >= OUT_HDR, "%s: reply of %u bytes", op, ret);
	if (ret >= OUT_HDR) {
		bool plus = in.opcode == FUSE_READDIRPLUS, dir = plus || in.opcode == FUSE_READDIR;

		gather(wr, nwr, &out, OUT_HDR);
		FUZZ_CHECK(out.len == ret, "%s: out.len %u, returned %u", op, out.len, ret);
		FUZZ_CHECK(out.error <= 0 && out.error > -4096, "%s: error %d", op, out.error);
		FUZZ_CHECK(out.error == 0 || ret == OUT_HDR, "%s: error %d with %u bytes", op,
			   out.error, ret);
		FUZZ_CHECK(len < IN_HDR || out.unique == in.unique, "%s: unique %llu for %llu", op,
			   (unsigned long long)out.unique, (unsigned long long)in.unique);
		if (out.error == 0 && dir) {
			uint8_t *reply = malloc(ret);

			gather(wr, nwr, reply, ret);
			check_dirents(reply + OUT_HDR, ret - OUT_HDR, plus);
			free(reply);
		}
	}
	for (int i = 0; i < nrd; i++)
		free(rd[i].iov_base);
	for (int i = 0; i < nwr; i++)
		free(wr[i].iov_base);
}

static void send_init(struct fuse_server *srv, uint64_t extra)
{
	struct {
		struct fuse_in_header h;
		struct fuse_init_in i;
	} req = {
		.h = { .len = sizeof(req), .opcode = FUSE_INIT, .unique = 1 },
		.i = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
		       .max_readahead = 131072,
		       .flags = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
				FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS |
				FUSE_MAX_PAGES | FUSE_INIT_EXT | (uint32_t)extra,
		       .flags2 = (uint32_t)(extra >> 32) },
	};
	struct {
		struct fuse_out_header h;
		struct fuse_init_out o;
	} reply;
	struct iovec rd = { &req, sizeof(req) }, wr = { &reply, sizeof(reply) };
	uint32_t ret = fuse_server_handle(srv, &rd, 1, &wr, 1);

	FUZZ_CHECK(ret == sizeof(reply) && reply.h.error == 0, "INIT: %u bytes, error %d", ret,
		   reply.h.error);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	setup_scratch();
	FUZZ_CHECK(setrlimit(RLIMIT_FSIZE, &(struct rlimit){ MAX_FILE_SIZE, MAX_FILE_SIZE }) == 0,
		   "setrlimit: %s", strerror(errno));
	return 0;
}

static struct vfsd_xattrmap xattr_map;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct vfsd_passthrough *fs;
	struct fuse_server srv;
	uint8_t conf = (uint8_t)fuzz_take(&in, 1);
	struct vfsd_fs_config cfg = {
		.root_dir = root_dir,
		.cache = (enum vfsd_cache_policy)((conf >> 2) & 3),
		.readonly = conf & 1,
		.readdirplus = conf & 2,
		.xattr = conf & 16,
		.posix_lock = conf & 32,
		.flock = conf & 32,
		.announce_submounts = conf & 64,
		.posix_acl = conf & 128,
		.security_label = conf & 128,
		.file_handles = conf & 128 ? VFSD_FILE_HANDLES_PREFER : VFSD_FILE_HANDLES_NEVER,
		.xattrmap = conf & 128 ? &xattr_map : NULL,
	};
	/* POSIX_ACL, DONT_MASK, SETXATTR_EXT, SECURITY_CTX, CREATE_SUPP_GROUP */
	const uint64_t ext_flags = FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT |
				   FUSE_SECURITY_CTX | (1ULL << 34);
	static bool once;
	int fds_before, r;

	if (!once) {
		char err[128];

		/* EFBIG is the answer past MAX_FILE_SIZE, not a signal (libFuzzer installs its
		 * own handler after LLVMFuzzerInitialize). */
		signal(SIGXFSZ, SIG_IGN);
		/* guest trusted.* in the host's user.virtiofs.*, everything else as it is */
		FUZZ_CHECK(vfsd_xattrmap_parse(":prefix:all:trusted.:user.virtiofs.: :ok:all:::",
					       &xattr_map, err, sizeof(err)) == 0,
			   "xattrmap: %s", err);
		once = true;
	}
	if (tree_dirty)
		build_tree();
	fds_before = fuzz_count_fds();
	cfg.proc_self_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(cfg.proc_self_fd >= 0, "open /proc/self/fd: %s", strerror(errno));
	r = vfsd_passthrough_new(&cfg, &fs);
	FUZZ_CHECK(r == 0, "vfsd_passthrough_new: %s", strerror(-r));
	fuse_server_init(&srv, &vfsd_passthrough_ops, fs);
	send_init(&srv, conf & 128 ? ext_flags : 0);

	for (int n = 0; n < MAX_RECORDS && in.left > 0; n++) {
		size_t cap = (size_t)fuzz_take(&in, 2);
		uint8_t shape = (uint8_t)fuzz_take(&in, 1);
		size_t want = (size_t)fuzz_take(&in, 2), len;
		const uint8_t *req = fuzz_bytes(&in, want, &len);

		serve_record(&srv, cap, shape, req, len);
	}

	fuse_server_cleanup(&srv);
	vfsd_passthrough_free(fs);
	FUZZ_CHECK(fuzz_count_fds() == fds_before, "%d fds open after the input, %d before",
		   fuzz_count_fds(), fds_before);
	check_outside_untouched();
	return 0;
}
