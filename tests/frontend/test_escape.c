/*
 * Escape attempts by a hostile guest, each named after what it defends (and the CVE where
 * there is one). A secret file sits next to the shared directory, outside it: no request may
 * read, change or link it, whatever the sandbox (run.sh runs this suite with chroot, namespace
 * and none: with none, vfsd's own name resolution is the only wall).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "harness.h"

#define SECRET "the host's secret\n"

/* The secret, outside the share (its parent is the test's temporary directory). */
static const char *secret_path(struct t_ctx *t)
{
	static char p[PATH_MAX + 16];

	snprintf(p, sizeof(p), "%s/../secret", t->share);
	return p;
}

static struct fc *session_with_secret(struct t_ctx *t, const char *extra)
{
	int fd = open(secret_path(t), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(t, fd >= 0 && write(fd, SECRET, strlen(SECRET)) == (ssize_t)strlen(SECRET),
	      "host: write the secret: %s", strerror(errno));
	close(fd);
	return t_session(t, NULL, extra, NULL);
}

/* The secret is as it was: same content, one link, not replaced. */
static void secret_untouched(struct t_ctx *t)
{
	char buf[64] = "";
	struct stat st;
	int fd = open(secret_path(t), O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	CHECK(t, n == (ssize_t)strlen(SECRET) && strncmp(buf, SECRET, (size_t)n) == 0,
	      "the secret changed: '%.*s'", (int)(n > 0 ? n : 0), buf);
	CHECK(t, stat(secret_path(t), &st) == 0 && st.st_nlink == 1 && (st.st_mode & 07777) == 0600,
	      "the secret has %lu links, mode 0%o", (unsigned long)st.st_nlink, st.st_mode & 07777);
}

/* r is an error (any), not a success. */
static void refused(struct t_ctx *t, int r, const char *what)
{
	CHECK(t, r < 0 && r > -4096, "%s: %s", what, fc_strerror(&t->fc, r));
}

/* What a READ of the node's data returns, if any: -errno when it cannot be opened or read. */
static ssize_t read_node(struct fc *c, uint64_t nodeid, char *buf, size_t size)
{
	struct fuse_open_out o;
	size_t n = 0;
	int r = fc_open(c, nodeid, O_RDONLY, &o);

	if (r < 0)
		return r;
	r = fc_read(c, nodeid, o.fh, 0, buf, size, &n);
	fc_release(c, nodeid, o.fh);
	return r < 0 ? r : (ssize_t)n;
}

/* ".." and "." never leave the root, nor any directory: they are refused as names. */
static void test_dotdot_from_root(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e;
	struct fuse_open_out o;

	refused(t, fc_lookup(c, FC_ROOT, "..", &e), "LOOKUP .. of the root");
	refused(t, fc_lookup(c, FC_ROOT, "../secret", &e), "LOOKUP ../secret");
	refused(t, fc_create(c, FC_ROOT, "../planted", O_CREAT | O_RDWR, 0644, &e, &o),
		"CREATE ../planted");
	refused(t, fc_mkdir(c, FC_ROOT, "..", 0755, &e), "MKDIR ..");
	refused(t, fc_symlink(c, FC_ROOT, "../planted", "x", &e), "SYMLINK ../planted");
	CHECK(t, access(t_path(t, "../planted"), F_OK) < 0, "something was planted next to the share");
	secret_untouched(t);
}

/*
 * A symlink to the secret, absolute and relative: LOOKUP gives the link itself; OPEN, a
 * lookup through it, CREATE/MKDIR/LINK/RENAME into it and SETATTR on it never reach the secret.
 */
static void symlink_out(struct t_ctx *t, const char *target)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e, f, dir;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	struct fuse_setattr_in trunc = { .valid = FATTR_SIZE, .size = 0 };
	struct fuse_setattr_in chmod_in = { .valid = FATTR_MODE, .mode = 0666 };
	char buf[64];

	CHECK(t, symlink(target, t_path(t, "out")) == 0 && symlink("..", t_path(t, "up")) == 0,
	      "host symlinks");
	t_write_file(t, "f", "mine", 4);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "out", &e));
	CHECK(t, S_ISLNK(e.attr.mode), "'out' looked up as mode 0%o: followed", e.attr.mode);
	CHECK(t, read_node(c, e.nodeid, buf, sizeof(buf)) < 0, "READ through the symlink worked");
	refused(t, fc_setattr(c, e.nodeid, &trunc, &a), "truncate through the symlink");
	/* a mode change of the link itself is the host's business; it must not reach the secret */
	fc_setattr(c, e.nodeid, &chmod_in, &a);
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "up", &dir));
	refused(t, fc_lookup(c, dir.nodeid, "secret", &f), "LOOKUP secret under a symlink to ..");
	refused(t, fc_create(c, dir.nodeid, "planted", O_CREAT | O_RDWR, 0644, &f, &o),
		"CREATE under a symlink to ..");
	refused(t, fc_mkdir(c, dir.nodeid, "planted", 0755, &f), "MKDIR under a symlink to ..");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "f", &f));
	refused(t, fc_link(c, f.nodeid, dir.nodeid, "planted", &e), "LINK into a symlink to ..");
	refused(t, fc_rename(c, FC_ROOT, "f", dir.nodeid, "secret"),
		"RENAME over the secret through a symlink to ..");
	CHECK(t, access(t_path(t, "../planted"), F_OK) < 0, "something was planted next to the share");
	secret_untouched(t);
	t_still_serving(t, c);
}

static void test_symlink_absolute_out(struct t_ctx *t)
{
	symlink_out(t, secret_path(t));
}

static void test_symlink_relative_out(struct t_ctx *t)
{
	symlink_out(t, "../secret");
}

/* /proc names: planted symlinks to /proc/self/root and /proc/self/fd/N are only links. */
static void test_proc_self_names(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e, x;
	char buf[64];

	CHECK(t, symlink("/proc/self/root", t_path(t, "root")) == 0 &&
		 symlink("/proc/self/fd/3", t_path(t, "fd3")) == 0 &&
		 symlink("/proc/self/cwd", t_path(t, "cwd")) == 0,
	      "host symlinks");
	for (int i = 0; i < 3; i++) {
		const char *name = (const char *[]){ "root", "fd3", "cwd" }[i];

		CHECK_OK(t, fc_lookup(c, FC_ROOT, name, &e));
		CHECK(t, S_ISLNK(e.attr.mode), "'%s' is mode 0%o", name, e.attr.mode);
		refused(t, fc_lookup(c, e.nodeid, "etc", &x), name);
		CHECK(t, read_node(c, e.nodeid, buf, sizeof(buf)) < 0, "READ of '%s' worked", name);
	}
	refused(t, fc_lookup(c, FC_ROOT, "/proc/self/root", &x), "LOOKUP of an absolute name");
	secret_untouched(t);
}

/*
 * A symlink swapped in between LOOKUP and OPEN: the host keeps exchanging a regular file and
 * a symlink to the secret under one name while the guest looks it up, opens and reads it.
 * vfsd opens the inode it looked up (O_PATH fd), never the name again, so the guest reads the
 * file or gets an error, never the secret.
 */
struct swapper {
	struct t_ctx *t;
	atomic_bool stop;
	atomic_long swaps;
};

static void *swap_loop(void *arg)
{
	struct swapper *s = arg;
	char a[PATH_MAX + 16], b[PATH_MAX + 16];

	snprintf(a, sizeof(a), "%s/x", s->t->share);
	snprintf(b, sizeof(b), "%s/x-link", s->t->share);
	while (!atomic_load(&s->stop)) {
		if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
			atomic_fetch_add(&s->swaps, 1);
	}
	return NULL;
}

static void test_symlink_swap_race(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct swapper s = { .t = t };
	long reads = 0, secrets = 0;
	pthread_t th;
	char buf[64];

	t_write_file(t, "x", "plain file\n", 11);
	CHECK(t, symlink(secret_path(t), t_path(t, "x-link")) == 0, "host symlink");
	CHECK(t, pthread_create(&th, NULL, swap_loop, &s) == 0, "thread");
	for (int i = 0; i < 2000; i++) {
		struct fuse_entry_out e;
		ssize_t n;

		if (fc_lookup(c, FC_ROOT, "x", &e) < 0)
			continue;
		n = read_node(c, e.nodeid, buf, sizeof(buf) - 1);
		if (n > 0) {
			reads++;
			buf[n] = '\0';
			if (strstr(buf, "secret"))
				secrets++;
		}
		fc_forget(c, e.nodeid, 1);
	}
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	CHECK(t, secrets == 0, "the guest read the secret %ld times", secrets);
	CHECK(t, reads > 0 && atomic_load(&s.swaps) > 0, "no race happened: %ld reads, %ld swaps",
	      reads, atomic_load(&s.swaps));
	secret_untouched(t);
}

/* Forged node ids and handles name nothing outside the tables: no LINK of an outside file. */
static void test_link_forged_source(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e;
	static const uint64_t forged[] = { 0, 2, 3, 0x100000001ull, 0xffffffffull, ~0ull };

	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
		refused(t, fc_link(c, forged[i], FC_ROOT, "planted", &e), "LINK from a forged id");
	CHECK(t, access(t_path(t, "planted"), F_OK) < 0, "a link was made");
	secret_untouched(t);
}

/* LINK of a symlink to the secret links the symlink, not the secret. */
static void test_link_of_symlink_out(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e, l;
	struct stat st;

	CHECK(t, symlink(secret_path(t), t_path(t, "out")) == 0, "host symlink");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "out", &e));
	if (fc_link(c, e.nodeid, FC_ROOT, "out2", &l) == 0) {
		CHECK(t, lstat(t_path(t, "out2"), &st) == 0 && S_ISLNK(st.st_mode),
		      "LINK of a symlink made mode 0%o", st.st_mode);
	}
	secret_untouched(t);
}

/*
 * CVE-2020-35517: the guest creates a device node (as guest root, allowed) and asks vfsd to
 * open it, hoping vfsd opens the host's device with its privileges. /dev/mem (1:1) and the
 * host's disk would be the prize; 1:3 (/dev/null) and 1:5 (/dev/zero) are what a READ could
 * show here.
 */
static void test_device_node_cve_2020_35517(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	struct fuse_setattr_in trunc = { .valid = FATTR_SIZE, .size = 0 };
	char buf[16];

	CHECK_OK(t, fc_mknod(c, FC_ROOT, "zero", S_IFCHR | 0666, makedev(1, 5), &e));
	CHECK(t, S_ISCHR(e.attr.mode), "mode 0%o", e.attr.mode);
	CHECK(t, read_node(c, e.nodeid, buf, sizeof(buf)) < 0,
	      "READ of a guest-made /dev/zero node returned data: the daemon opened the device");
	refused(t, fc_open(c, e.nodeid, O_RDWR, &o), "OPEN O_RDWR of a device node");
	refused(t, fc_opendir(c, e.nodeid, &o), "OPENDIR of a device node");
	refused(t, fc_setattr(c, e.nodeid, &trunc, &a), "truncate of a device node");
	CHECK_OK(t, fc_mknod(c, FC_ROOT, "fifo", S_IFIFO | 0666, 0, &e));
	refused(t, fc_open(c, e.nodeid, O_RDONLY, &o), "OPEN of a FIFO (would block)");
	t_still_serving(t, c);
}

/*
 * CVE-2022-0358: a guest user who is not in a setgid directory's group creates a file with
 * the setgid bit there. The file takes the directory's group, so the bit must be stripped,
 * or the user gets a setgid-to-someone-else's-group program. vfsd creates with the user's
 * credentials and without CAP_FSETID in effect, so the host kernel strips it.
 */
static void test_sgid_create_cve_2022_0358(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e, d;
	struct fuse_open_out o;
	struct stat st;

	t_mkdir(t, "sgid");
	CHECK(t, chown(t_path(t, "sgid"), 0, 5555) == 0 && chmod(t_path(t, "sgid"), 02777) == 0,
	      "host: setgid directory of group 5555");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "sgid", &d));
	c->uid = 4242;
	c->gid = 4343; /* not 5555 */
	CHECK_OK(t, fc_create(c, d.nodeid, "prog", O_CREAT | O_RDWR, 02755, &e, &o));
	CHECK_OK(t, fc_mknod(c, d.nodeid, "prog2", S_IFREG | 02755, 0, &e));
	c->uid = c->gid = 0;
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "sgid/prog2" : "sgid/prog";

		CHECK(t, stat(t_path(t, name), &st) == 0, "host stat %s", name);
		CHECK(t, st.st_gid == 5555 && !(st.st_mode & S_ISGID),
		      "%s: group %u, mode 0%o: setgid kept for a non-member", name, st.st_gid,
		      st.st_mode & 07777);
	}
}

/* One WRITE of "x" at 0 with these write_flags. */
static int write_with_flags(struct fc *c, uint64_t nodeid, uint64_t fh, uint32_t write_flags)
{
	struct fuse_write_in in = { .fh = fh, .size = 1, .write_flags = write_flags };
	struct fc_arg a[2] = { { &in, sizeof(in) }, { "x", 1 } };
	struct fuse_write_out out;
	size_t len;

	return fc_call(c, FUSE_WRITE, nodeid, a, 2, &out, sizeof(out), &len);
}

/*
 * A guest writer without CAP_FSETID (any non-root process) marks its WRITE with
 * FUSE_WRITE_KILL_SUIDGID; in direct-I/O mode only the daemon can then drop the set-id bits,
 * or the writer leaves a setuid program with its own content in it. Without the flag (a root
 * writer) they stay, as on a local filesystem.
 */
static void test_suid_cleared_on_write(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, NULL);
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct stat st;

	t_write_file(t, "prog", "#!/bin/sh\n", 10);
	CHECK(t, chmod(t_path(t, "prog"), 06755) == 0, "host chmod");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "prog", &e));
	CHECK_OK(t, fc_open(c, e.nodeid, O_RDWR, &o));
	CHECK_OK(t, write_with_flags(c, e.nodeid, o.fh, 0));
	CHECK(t, stat(t_path(t, "prog"), &st) == 0 && (st.st_mode & 07777) == 06755,
	      "a privileged write dropped bits: mode 0%o", st.st_mode & 07777);
	CHECK_OK(t, write_with_flags(c, e.nodeid, o.fh, FUSE_WRITE_KILL_SUIDGID));
	CHECK(t, stat(t_path(t, "prog"), &st) == 0 && (st.st_mode & 07777) == 0755,
	      "after a write by a writer without CAP_FSETID: mode 0%o", st.st_mode & 07777);
	/* the daemon got its CAP_FSETID back: a privileged write keeps new bits again */
	CHECK(t, chmod(t_path(t, "prog"), 06755) == 0, "host chmod");
	CHECK_OK(t, write_with_flags(c, e.nodeid, o.fh, 0));
	CHECK(t, stat(t_path(t, "prog"), &st) == 0 && (st.st_mode & 07777) == 06755,
	      "CAP_FSETID not restored: mode 0%o", st.st_mode & 07777);
}

/* mode of a host file, set-id bits included */
static unsigned int host_mode(struct t_ctx *t, const char *rel)
{
	struct stat st;

	CHECK(t, stat(t_path(t, rel), &st) == 0, "host stat %s", rel);
	return st.st_mode & 07777;
}

/*
 * With HANDLE_KILLPRIV_V2 the guest leaves dropping set-id bits to the daemon: an O_TRUNC
 * open (FUSE_OPEN_KILL_SUIDGID) and a truncate (FATTR_KILL_SUIDGID) by a guest user without
 * CAP_FSETID must drop them on the host; the same requests from root keep them.
 */
static void test_killpriv_v2(struct t_ctx *t)
{
	struct fc *c = session_with_secret(t, "--killpriv-v2");
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fuse_attr_out a;
	struct fuse_open_in oi = { .flags = O_RDWR | O_TRUNC, .open_flags = FUSE_OPEN_KILL_SUIDGID };
	struct fuse_setattr_in trunc = { .valid = FATTR_SIZE | FATTR_KILL_SUIDGID, .size = 1 };

	CHECK(t, c->init.flags & FUSE_HANDLE_KILLPRIV_V2, "INIT flags 0x%x lack HANDLE_KILLPRIV_V2",
	      c->init.flags);
	t_write_file(t, "p", "data", 4);
	CHECK(t, chmod(t_path(t, "p"), 06755) == 0, "host chmod");
	CHECK_OK(t, fc_lookup(c, FC_ROOT, "p", &e));
	/* root's requests (no kill flags) keep the bits */
	CHECK_OK(t, fc_open(c, e.nodeid, O_RDWR | O_TRUNC, &o));
	CHECK(t, host_mode(t, "p") == 06755, "a root O_TRUNC open dropped bits: 0%o", host_mode(t, "p"));
	CHECK_OK(t, fc_call_fixed(c, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, NULL, &o, sizeof(o)));
	CHECK(t, host_mode(t, "p") == 0755, "after an O_TRUNC open with KILL_SUIDGID: 0%o",
	      host_mode(t, "p"));
	CHECK(t, chmod(t_path(t, "p"), 06755) == 0, "host chmod");
	CHECK_OK(t, fc_setattr(c, e.nodeid, &trunc, &a));
	CHECK(t, host_mode(t, "p") == 0755, "after a truncate with KILL_SUIDGID: 0%o",
	      host_mode(t, "p"));
}

static const struct t_case cases[] = {
	{ "dotdot-from-root", test_dotdot_from_root, NULL },
	{ "symlink-absolute-out", test_symlink_absolute_out, NULL },
	{ "symlink-relative-out", test_symlink_relative_out, NULL },
	{ "proc-self-names", test_proc_self_names, NULL },
	{ "symlink-swap-race", test_symlink_swap_race, NULL },
	{ "link-forged-source", test_link_forged_source, NULL },
	{ "link-of-symlink-out", test_link_of_symlink_out, NULL },
	{ "device-node-cve-2020-35517", test_device_node_cve_2020_35517, NULL },
	{ "sgid-create-cve-2022-0358", test_sgid_create_cve_2022_0358, NULL },
	{ "suid-cleared-on-write-kill-suidgid", test_suid_cleared_on_write, NULL },
	{ "suid-cleared-killpriv-v2", test_killpriv_v2, NULL },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases, "escape");
}
