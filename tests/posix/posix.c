/*
 * The differential POSIX transcript: one long, scripted sequence of syscalls in a directory,
 * each result printed in a canonical form ("step: result"). tests/vm/run.sh runs it on the host
 * in a plain directory of the same filesystem as the share; the guest runs it on its vfsd
 * mount and diffs the two (tests/vm/guest/core.sh, posix-differential). Run as root: some
 * steps act as other users through forked children.
 *
 * Usage: posix-transcript DIR (DIR must exist and be empty)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static int dir;

static void out(const char *step, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A syscall's result: "ok" (or the value) or the errno's name. */
static void res(const char *step, long r)
{
	if (r < 0)
		out(step, "%s", strerrorname_np(errno));
	else
		out(step, "%ld", r);
}

static void st(const char *step, const char *path)
{
	struct stat s;

	if (fstatat(dir, path, &s, AT_SYMLINK_NOFOLLOW) < 0) {
		out(step, "stat %s", strerrorname_np(errno));
		return;
	}
	out(step, "mode 0%o nlink %lu uid %u gid %u size %lld", s.st_mode, (unsigned long)s.st_nlink,
	    s.st_uid, s.st_gid, (long long)(S_ISDIR(s.st_mode) ? 0 : s.st_size));
}

static void content(const char *step, const char *path)
{
	char buf[64] = "";
	int fd = openat(dir, path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n < 0)
		out(step, "%s", strerrorname_np(errno));
	else
		out(step, "'%.*s'", (int)n, buf);
}

/* Runs fn as uid:gid with the supplementary groups; prints its result. */
static void as(const char *step, uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
	       long (*fn)(void))
{
	int pfd[2], status;
	long r = 0, e = 0;
	pid_t p;

	fflush(stdout);
	if (pipe(pfd) < 0)
		abort();
	p = fork();
	if (p == 0) {
		long v[2];

		if (setgroups((size_t)ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(99);
		errno = 0;
		v[0] = fn();
		v[1] = errno;
		if (write(pfd[1], v, sizeof(v)) != sizeof(v))
			_exit(98);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &r, sizeof(r)) != sizeof(r) || read(pfd[0], &e, sizeof(e)) != sizeof(e))
		r = -1000;
	close(pfd[0]);
	waitpid(p, &status, 0);
	if (r == -1000)
		out(step, "child failed (status %d)", status);
	else if (r < 0)
		out(step, "%s", strerrorname_np((int)e));
	else
		out(step, "%ld", r);
}

static long create_sticky_a(void)
{
	int fd = openat(dir, "sticky/a", O_CREAT | O_WRONLY, 0644);

	return fd < 0 ? -1 : close(fd);
}
static long unlink_sticky_a(void)
{
	return unlinkat(dir, "sticky/a", 0);
}
static long read_p(void)
{
	int fd = openat(dir, "p", O_RDONLY);

	return fd < 0 ? -1 : close(fd);
}
static long rw_q(void)
{
	int fd = openat(dir, "q", O_RDWR);

	return fd < 0 ? -1 : close(fd);
}
static long create_in_sgid(void)
{
	int fd = openat(dir, "sg/by-1001", O_CREAT | O_WRONLY, 02755);

	return fd < 0 ? -1 : close(fd);
}

/* POSIX ACLs in the kernel's xattr format (linux/posix_acl_xattr.h), without libacl. */
struct acl_entry {
	uint16_t tag, perm;
	uint32_t id;
};
enum { A_USER_OBJ = 1, A_USER = 2, A_GROUP_OBJ = 4, A_GROUP = 8, A_MASK = 0x10, A_OTHER = 0x20 };
#define A_ANY UINT32_MAX

/* The xattr calls go through an fd opened under dir: a user the test switches to may not be
 * able to walk the path to dir. */
enum xop { XSET, XSIZE, XREMOVE };

static long acl_call(enum xop op, const char *path, const char *name, const struct acl_entry *e,
		     int n)
{
	char buf[4 + 8 * 16];
	uint32_t version = 2;
	int fd = openat(dir, path, O_RDONLY), saved;
	long r;

	if (fd < 0)
		return -1;
	memcpy(buf, &version, 4);
	if (n > 0)
		memcpy(buf + 4, e, 8 * (size_t)n);
	if (op == XSET)
		r = fsetxattr(fd, name, buf, 4 + 8 * (size_t)n, 0);
	else if (op == XSIZE)
		r = fgetxattr(fd, name, NULL, 0);
	else
		r = fremovexattr(fd, name);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}
static long set_acl(const char *path, const char *name, const struct acl_entry *e, int n)
{
	return acl_call(XSET, path, name, e, n);
}
static long acl_size(const char *path, const char *name)
{
	return acl_call(XSIZE, path, name, NULL, 0);
}
static long read_acl_f(void)
{
	int fd = openat(dir, "acl-f", O_RDONLY);

	return fd < 0 ? -1 : close(fd);
}
/* The owner, outside the file's group, sets an ACL: the kernel drops the setgid bit. */
static long acl_on_sgid_file(void)
{
	static const struct acl_entry e[] = { { A_USER_OBJ, 7, A_ANY }, { A_USER, 4, 1002 },
					      { A_GROUP_OBJ, 5, A_ANY }, { A_MASK, 5, A_ANY },
					      { A_OTHER, 0, A_ANY } };

	return set_acl("acl-sg", "system.posix_acl_access", e, 5);
}

static void acl_steps(void)
{
	static const struct acl_entry access[] = { { A_USER_OBJ, 6, A_ANY }, { A_USER, 4, 1001 },
						   { A_GROUP_OBJ, 0, A_ANY }, { A_MASK, 4, A_ANY },
						   { A_OTHER, 0, A_ANY } };
	static const struct acl_entry dflt[] = { { A_USER_OBJ, 7, A_ANY }, { A_USER, 7, 1001 },
						 { A_GROUP_OBJ, 5, A_ANY }, { A_MASK, 7, A_ANY },
						 { A_OTHER, 0, A_ANY } };
	int fd;

	fd = openat(dir, "acl-f", O_CREAT | O_WRONLY, 0640);
	close(fd);
	res("acl-set-access", set_acl("acl-f", "system.posix_acl_access", access, 5));
	st("acl-access-mode", "acl-f"); /* the group bits are the mask's */
	res("acl-access-size", acl_size("acl-f", "system.posix_acl_access"));
	as("acl-read-as-named-user", 1001, 1001, NULL, 0, read_acl_f);
	as("acl-read-as-other", 1002, 1002, NULL, 0, read_acl_f);
	/* A default ACL decides new files' modes instead of the umask, and is inherited. */
	res("acl-mkdir", mkdirat(dir, "acl-d", 0755));
	res("acl-set-default", set_acl("acl-d", "system.posix_acl_default", dflt, 5));
	fd = openat(dir, "acl-d/new", O_CREAT | O_WRONLY, 0666);
	close(fd);
	st("acl-inherited-file-mode", "acl-d/new");
	res("acl-inherited-file-access", acl_size("acl-d/new", "system.posix_acl_access"));
	res("acl-mkdir-inheriting", mkdirat(dir, "acl-d/sub", 0777));
	st("acl-inherited-dir-mode", "acl-d/sub");
	res("acl-inherited-dir-default", acl_size("acl-d/sub", "system.posix_acl_default"));
	res("acl-remove-access", acl_call(XREMOVE, "acl-f", "system.posix_acl_access", NULL, 0));
	st("acl-removed-mode", "acl-f");
	res("acl-removed-size", acl_size("acl-f", "system.posix_acl_access"));
	/* setgid dropped when the owner is not in the group */
	fd = openat(dir, "acl-sg", O_CREAT | O_WRONLY, 0770);
	close(fd);
	fchownat(dir, "acl-sg", 1001, 0, 0);
	fchmodat(dir, "acl-sg", 02770, 0);
	st("acl-sgid-before", "acl-sg");
	as("acl-set-by-owner-outside-group", 1001, 1001, NULL, 0, acl_on_sgid_file);
	st("acl-sgid-after", "acl-sg");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void readdir_steps(void)
{
	char *names[64];
	char name[16], a[5][256] = { "" }, b[5][256] = { "" };
	int n = 0, fd;
	long pos;
	DIR *d;
	struct dirent *e;

	mkdirat(dir, "rd", 0755);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "rd/r%02d", i);
		close(openat(dir, name, O_CREAT | O_WRONLY, 0644));
	}
	fd = openat(dir, "rd", O_RDONLY | O_DIRECTORY);
	d = fdopendir(fd);
	for (int i = 0; i < 10 && (e = readdir(d));)
		i += e->d_name[0] == 'r';
	pos = telldir(d);
	for (int i = 0; i < 5 && (e = readdir(d)); i++)
		snprintf(a[i], sizeof(a[i]), "%s", e->d_name);
	seekdir(d, pos);
	for (int i = 0; i < 5 && (e = readdir(d)); i++)
		snprintf(b[i], sizeof(b[i]), "%s", e->d_name);
	out("readdir-seekdir-consistent", "%s", memcmp(a, b, sizeof(a)) == 0 ? "yes" : "no");
	/* entries unlinked while the directory is open are gone after a rewind */
	for (int i = 0; i < 40; i += 8) {
		snprintf(name, sizeof(name), "rd/r%02d", i);
		unlinkat(dir, name, 0);
	}
	rewinddir(d);
	while ((e = readdir(d)) && n < 64) {
		if (e->d_name[0] == 'r')
			names[n++] = strdup(e->d_name);
	}
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	printf("readdir-after-unlinks: %d:", n);
	for (int i = 0; i < n; i++) {
		printf(" %s", names[i]);
		free(names[i]);
	}
	putchar('\n');
	closedir(d);
}

int main(int argc, char **argv)
{
	struct timespec ts[2];
	char buf[256];
	int fd, fd2, r;
	struct stat s;
	ssize_t n;

	if (argc != 2 || (dir = open(argv[1], O_RDONLY | O_DIRECTORY)) < 0) {
		fprintf(stderr, "usage: posix-transcript DIR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fchmod(dir, 0755);
	umask(022);

	/* creation modes, O_EXCL, O_APPEND, O_TRUNC */
	fd = openat(dir, "f", O_CREAT | O_WRONLY, 0666);
	res("create", fd < 0 ? -1 : 0);
	st("create-stat", "f");
	res("create-excl-existing", openat(dir, "f", O_CREAT | O_EXCL | O_WRONLY, 0600));
	res("write", write(fd, "hello", 5));
	close(fd);
	fd = openat(dir, "f", O_WRONLY | O_APPEND);
	res("append", write(fd, "!!", 2));
	res("pwrite-on-append", pwrite(fd, "AB", 2, 0)); /* Linux appends anyway */
	close(fd);
	content("after-append", "f");
	fd = openat(dir, "t", O_CREAT | O_WRONLY, 0640);
	res("write-t", write(fd, "0123456789", 10));
	close(fd);
	close(openat(dir, "t", O_WRONLY | O_TRUNC));
	st("after-trunc-open", "t");

	/* directories and rename */
	res("mkdir", mkdirat(dir, "d1", 0777));
	st("mkdir-stat", "d1");
	res("mkdir-existing", mkdirat(dir, "d1", 0777));
	close(openat(dir, "d1/inner", O_CREAT | O_WRONLY, 0644));
	res("rmdir-nonempty", unlinkat(dir, "d1", AT_REMOVEDIR));
	res("rename-file-over-dir", renameat(dir, "f", dir, "d1"));
	res("rename-dir-over-file", renameat(dir, "d1", dir, "f"));
	res("rename-noreplace", renameat2(dir, "f", dir, "t", RENAME_NOREPLACE));
	res("rename-exchange", renameat2(dir, "f", dir, "t", RENAME_EXCHANGE));
	content("exchanged-f", "f");
	content("exchanged-t", "t");
	res("rename-into-own-subdir", renameat(dir, "d1", dir, "d1/inner/x"));
	st("dir-nlink", "d1");

	/* links */
	res("link", linkat(dir, "f", dir, "f2", 0));
	st("link-stat", "f");
	res("link-dir", linkat(dir, "d1", dir, "d1l", 0));
	res("unlink-link", unlinkat(dir, "f2", 0));
	st("after-unlink", "f");
	res("symlink", symlinkat("f", dir, "s"));
	n = readlinkat(dir, "s", buf, sizeof(buf));
	out("readlink", "'%.*s'", (int)(n > 0 ? n : 0), buf);
	st("symlink-lstat", "s");
	res("open-nofollow-symlink", openat(dir, "s", O_RDONLY | O_NOFOLLOW));
	res("symlink-dangling", symlinkat("nowhere", dir, "dangling"));
	res("open-dangling", openat(dir, "dangling", O_RDONLY));

	/* sticky directory: only the owner removes */
	mkdirat(dir, "sticky", 0777);
	fchmodat(dir, "sticky", 01777, 0);
	as("sticky-create-1001", 1001, 1001, NULL, 0, create_sticky_a);
	as("sticky-unlink-by-1002", 1002, 1002, NULL, 0, unlink_sticky_a);
	as("sticky-unlink-by-owner", 1001, 1001, NULL, 0, unlink_sticky_a);

	/* setgid directory: the group and the bit are inherited */
	mkdirat(dir, "sg", 0777);
	fchownat(dir, "sg", 0, 500, 0);
	fchmodat(dir, "sg", 02777, 0);
	close(openat(dir, "sg/x", O_CREAT | O_WRONLY, 0644));
	st("sgid-file", "sg/x");
	mkdirat(dir, "sg/y", 0755);
	st("sgid-subdir", "sg/y");
	as("sgid-create-non-member", 1001, 1001, NULL, 0, create_in_sgid);
	st("sgid-non-member-file", "sg/by-1001");

	/* permissions as other users, and through supplementary groups */
	close(openat(dir, "p", O_CREAT | O_WRONLY, 0600));
	fchownat(dir, "p", 1001, 1001, 0);
	as("perm-other-user", 1002, 1002, NULL, 0, read_p);
	as("perm-owner", 1001, 1001, NULL, 0, read_p);
	close(openat(dir, "q", O_CREAT | O_WRONLY, 0660));
	fchownat(dir, "q", 0, 600, 0);
	fchmodat(dir, "q", 0660, 0);
	{
		gid_t g600[] = { 600 };

		as("perm-supp-group", 1003, 1003, g600, 1, rw_q);
		as("perm-no-group", 1003, 1003, NULL, 0, rw_q);
	}

	/* timestamps */
	ts[0] = (struct timespec){ .tv_sec = 1000, .tv_nsec = 500000000 };
	ts[1] = (struct timespec){ .tv_sec = 2000, .tv_nsec = 250000000 };
	res("utimensat", utimensat(dir, "q", ts, 0));
	fstatat(dir, "q", &s, 0);
	out("times", "atime %ld.%09ld mtime %ld.%09ld", (long)s.st_atim.tv_sec, s.st_atim.tv_nsec,
	    (long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1] = (struct timespec){ .tv_sec = 3000 };
	res("utimensat-omit", utimensat(dir, "q", ts, 0));
	fstatat(dir, "q", &s, 0);
	out("times-omit", "atime %ld mtime %ld", (long)s.st_atim.tv_sec, (long)s.st_mtim.tv_sec);

	/* owners, modes, set-id bits */
	res("chown", fchownat(dir, "p", 1234, 5678, 0));
	st("chown-stat", "p");
	fchmodat(dir, "p", 04755, 0);
	res("chown-setuid", fchownat(dir, "p", 1, 1, 0));
	st("chown-clears-setuid", "p");
	fd = openat(dir, "t", O_RDWR);
	res("ftruncate-up", ftruncate(fd, 10000));
	st("truncated-up", "t");
	res("ftruncate-down", ftruncate(fd, 3));
	st("truncated-down", "t");
	close(fd);

	/* xattrs */
	fd = openat(dir, "f", O_RDWR);
	res("fsetxattr", fsetxattr(fd, "user.colour", "blue", 4, 0));
	res("fsetxattr-create-existing", fsetxattr(fd, "user.colour", "red", 3, XATTR_CREATE));
	res("fsetxattr-replace-missing", fsetxattr(fd, "user.size", "x", 1, XATTR_REPLACE));
	res("fgetxattr-size", fgetxattr(fd, "user.colour", NULL, 0));
	n = fgetxattr(fd, "user.colour", buf, sizeof(buf));
	out("fgetxattr", "'%.*s'", (int)(n > 0 ? n : 0), buf);
	res("fgetxattr-erange", fgetxattr(fd, "user.colour", buf, 1));
	n = flistxattr(fd, buf, sizeof(buf));
	out("flistxattr", "%s", n > 0 && memmem(buf, (size_t)n, "user.colour", 12) ? "has user.colour" : "missing");
	res("fremovexattr", fremovexattr(fd, "user.colour"));
	res("fgetxattr-removed", fgetxattr(fd, "user.colour", buf, sizeof(buf)));
	close(fd);

	/* space: fallocate, punch hole, SEEK_DATA/SEEK_HOLE, copy_file_range */
	fd = openat(dir, "sparse", O_CREAT | O_RDWR, 0644);
	res("fallocate", fallocate(fd, 0, 0, 1 << 20));
	fstat(fd, &s);
	out("fallocated", "size %lld blocks>=2048 %s", (long long)s.st_size, s.st_blocks >= 2048 ? "yes" : "no");
	res("punch-hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1 << 19));
	if (pwrite(fd, "data", 4, 1 << 20) != 4)
		out("pwrite-data", "%s", strerrorname_np(errno));
	res("seek-data", lseek(fd, 0, SEEK_DATA));
	res("seek-hole", lseek(fd, 1 << 19, SEEK_HOLE));
	fd2 = openat(dir, "copy", O_CREAT | O_RDWR, 0644);
	{
		loff_t in = 1 << 20, outoff = 0;

		res("copy-file-range", copy_file_range(fd, &in, fd2, &outoff, 4, 0));
	}
	close(fd2);
	close(fd);
	content("copied", "copy");

	/* O_TMPFILE, then linked into the namespace */
	fd = openat(dir, ".", O_TMPFILE | O_RDWR, 0600);
	res("o-tmpfile", fd < 0 ? -1 : 0);
	if (fd >= 0) {
		char p[64];

		res("tmpfile-write", write(fd, "tmp", 3));
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		res("tmpfile-linkat", linkat(AT_FDCWD, p, dir, "from-tmpfile", AT_SYMLINK_FOLLOW));
		close(fd);
		content("tmpfile-content", "from-tmpfile");
	}

	/* locks: OFD locks and flock between two opens */
	fd = openat(dir, "f", O_RDWR);
	fd2 = openat(dir, "f", O_RDWR);
	{
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };

		res("ofd-lock", fcntl(fd, F_OFD_SETLK, &fl));
		res("ofd-lock-conflict", fcntl(fd2, F_OFD_SETLK, &fl));
		fl.l_type = F_RDLCK;
		r = fcntl(fd2, F_OFD_GETLK, &fl);
		out("ofd-getlk", "%d type %s start %lld len %lld", r, fl.l_type == F_WRLCK ? "wr" : "other",
		    (long long)fl.l_start, (long long)fl.l_len);
		res("flock", flock(fd, LOCK_EX));
		res("flock-conflict", flock(fd2, LOCK_EX | LOCK_NB));
	}
	close(fd);
	close(fd2);

	acl_steps();
	readdir_steps();
	return 0;
}
