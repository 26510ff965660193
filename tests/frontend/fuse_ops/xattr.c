/* The FUSE opcode suite (test_fuse_ops): Extended attributes, POSIX ACLs, security labels, supplementary groups, --xattrmap. */
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

static void host_getxattr(struct t_ctx *t, const char *rel, const char *name, char *buf,
			  size_t size)
{
	ssize_t n = lgetxattr(t_path(t, rel), name, buf, size - 1);

	buf[n < 0 ? 0 : n] = '\0';
}

static bool list_has(const char *list, size_t len, const char *name)
{
	for (size_t i = 0; i < len; i += strnlen(list + i, len - i) + 1) {
		if (strcmp(list + i, name) == 0)
			return true;
	}
	return false;
}

/* An ACL in the kernel's xattr format: user::rw-, user:1001:r--, group::---, mask::r--,
 * other::--- (perms of the given ones). */
static size_t make_acl(uint8_t *buf, uint16_t user_obj, uint16_t named, uint16_t group_obj,
		       uint16_t mask, uint16_t other)
{
	const struct {
		uint16_t tag, perm;
		uint32_t id;
	} e[] = { { 1, user_obj, UINT32_MAX }, { 2, named, 1001 }, { 4, group_obj, UINT32_MAX },
		  { 0x10, mask, UINT32_MAX }, { 0x20, other, UINT32_MAX } };
	uint32_t version = 2;

	memcpy(buf, &version, 4);
	memcpy(buf + 4, e, sizeof(e));
	return 4 + sizeof(e);
}

/* --posix-acl: ACL names reach the host, modes come under the guest's umask or the parent's
 * default ACL, and a SETXATTR that asks for it drops the setgid bit. */
void test_posix_acl(struct t_ctx *t)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc *c;
	struct stat st;
	uint8_t acl[64];
	char buf[128];
	size_t len, n;
	uint64_t f, d, g;

	t_write_file(t, "g", "", 0);
	CHECK(t, chown(t_path(t, "g"), 1001, 0) == 0 && chmod(t_path(t, "g"), 02770) == 0,
	      "host chown/chmod");
	c = t_session(t, NULL, "--posix-acl", NULL);
	CHECK(t, (c->init.flags & (FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT)) ==
			 (FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT),
	      "INIT flags 0x%x lack the ACL ones", c->init.flags);
	/* the guest sends the mode unmasked (DONT_MASK) and its umask 022: vfsd applies it */
	CHECK_OK(t, fc_create(c, FC_ROOT, "f", O_CREAT | O_RDWR, 0666, &e, &o));
	f = e.nodeid;
	CHECK_OK(t, fc_release(c, f, o.fh));
	host_stat(t, "f", &st);
	CHECK(t, (st.st_mode & 07777) == 0644, "created with mode 0%o", st.st_mode & 07777);
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "d", 0777, &e));
	d = e.nodeid;
	host_stat(t, "d", &st);
	CHECK(t, (st.st_mode & 07777) == 0755, "mkdir gave mode 0%o", st.st_mode & 07777);
	/* an access ACL: stored on the host, the group bits become the mask */
	len = make_acl(acl, 6, 4, 0, 4, 0);
	CHECK_OK(t, fc_setxattr(c, f, "system.posix_acl_access", acl, len, 0));
	CHECK(t, lgetxattr(t_path(t, "f"), "system.posix_acl_access", buf, sizeof(buf)) == (ssize_t)len,
	      "the host has no access ACL");
	host_stat(t, "f", &st);
	CHECK(t, (st.st_mode & 07777) == 0640, "mode 0%o after the ACL", st.st_mode & 07777);
	CHECK_OK(t, fc_getxattr(c, f, "system.posix_acl_access", buf, sizeof(buf), &n));
	CHECK(t, n == len && memcmp(buf, acl, len) == 0, "ACL read back: %zu bytes", n);
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &n));
	CHECK(t, list_has(buf, n, "system.posix_acl_access"), "the list hides the ACL (%zu bytes)",
	      n); /* cp -a and rsync -X copy what the list names */
	/* a default ACL decides the mode of what is created below it, not the umask */
	len = make_acl(acl, 7, 7, 5, 7, 0);
	CHECK_OK(t, fc_setxattr(c, d, "system.posix_acl_default", acl, len, 0));
	CHECK_OK(t, fc_create(c, d, "new", O_CREAT | O_RDWR, 0666, &e, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	host_stat(t, "d/new", &st);
	CHECK(t, (st.st_mode & 07777) == 0660, "created under a default ACL with mode 0%o",
	      st.st_mode & 07777);
	/* ACL_KILL_SGID: asked by the kernel when the caller is outside the group */
	g = lookup_id(t, c, FC_ROOT, "g");
	len = make_acl(acl, 7, 4, 7, 7, 0);
	CHECK_OK(t, fc_setxattr_ext(c, g, "system.posix_acl_access", acl, len, 0, 0));
	host_stat(t, "g", &st);
	CHECK(t, (st.st_mode & S_ISGID), "setgid dropped without the flag: 0%o", st.st_mode);
	CHECK_OK(t, fc_setxattr_ext(c, g, "system.posix_acl_access", acl, len, 0,
				    FUSE_SETXATTR_ACL_KILL_SGID));
	host_stat(t, "g", &st);
	CHECK(t, !(st.st_mode & S_ISGID) && (st.st_mode & 0777) == 0770,
	      "after ACL_KILL_SGID: mode 0%o", st.st_mode & 07777);
	t_still_serving(t, c);
}

/* --posix-acl against a kernel that cannot apply ACLs: INIT fails, as in virtiofsd. */
void test_posix_acl_needs_kernel(struct t_ctx *t)
{
	struct fuse_init_out out;
	int r;

	t_started(t, NULL, "--posix-acl", NULL);
	r = fc_init_with(&t->fc, 7, 38, FUSE_ASYNC_READ | FUSE_INIT_EXT | FUSE_DONT_MASK, &out);
	CHECK(t, r == -EPROTO, "INIT without POSIX_ACL: %s", fc_strerror(&t->fc, r));
	/* the session did not start; a kernel that can is served */
	r = fc_init(&t->fc);
	CHECK(t, r == 0, "INIT of a 6.1 kernel after it: %s", fc_strerror(&t->fc, r));
	t_still_serving(t, &t->fc);
}

/* Request extensions (protocol 7.38), built as a kernel builds them. */
#define EXT_SUPP_GROUPS 32
#define INIT_CREATE_SUPP_GROUP (1ULL << 34)

/* A security context header with nr contexts (0 or 1: name and value). */
static size_t secctx_ext(uint8_t *buf, uint32_t nr, const char *name, const char *value)
{
	struct fuse_ext_header h = { .type = nr };
	struct fuse_secctx sc = { .size = value ? (uint32_t)strlen(value) : 0 };
	size_t len = sizeof(h);

	memset(buf, 0, 256);
	if (nr) {
		memcpy(buf + len, &sc, sizeof(sc));
		len += sizeof(sc);
		memcpy(buf + len, name, strlen(name) + 1);
		len += strlen(name) + 1;
		memcpy(buf + len, value, sc.size);
		len += sc.size;
	}
	len = (len + 7) & ~(size_t)7;
	h.size = (uint32_t)len;
	memcpy(buf, &h, sizeof(h));
	return len;
}

static size_t groups_ext(uint8_t *buf, const uint32_t *groups, uint32_t n)
{
	struct fuse_ext_header h = { .type = EXT_SUPP_GROUPS };
	size_t len = sizeof(h) + 4 + 4 * (size_t)n;

	memset(buf, 0, 256);
	len = (len + 7) & ~(size_t)7;
	h.size = (uint32_t)len;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &n, 4);
	memcpy(buf + sizeof(h) + 4, groups, 4 * (size_t)n);
	return len;
}

static void ext_next(struct fc *c, const uint8_t *buf, size_t len)
{
	c->ext = buf;
	c->ext_len = len;
}

/* --security-label: the label a kernel sends with each creation is stored on the new inode
 * (here under trusted.virtiofs., the documented map), a label that cannot be stored undoes
 * the creation, and malformed or missing context records are refused. */
void test_security_label(struct t_ctx *t)
{
	static const char label[] = "system_u:object_r:tmp_t:s0";
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc *c = &t->fc;
	uint8_t ext[256];
	char buf[128];

	t_started(t, NULL, "--security-label", "--xattrmap=:map:security.selinux:trusted.virtiofs.:",
		  "--modcaps=+sys_admin", NULL);
	CHECK_OK(t, fc_init_plus(c, FUSE_SECURITY_CTX));
	CHECK(t, c->init.flags2 & (FUSE_SECURITY_CTX >> 32), "SECURITY_CTX not agreed");

	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "d", 0755, &e));
	host_getxattr(t, "d", "trusted.virtiofs.security.selinux", buf, sizeof(buf));
	CHECK(t, strcmp(buf, label) == 0, "the directory's label on the host: '%s'", buf);
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_create(c, FC_ROOT, "f", O_CREAT | O_RDWR, 0644, &e, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	host_getxattr(t, "f", "trusted.virtiofs.security.selinux", buf, sizeof(buf));
	CHECK(t, strcmp(buf, label) == 0, "the file's label on the host: '%s'", buf);
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_symlink(c, FC_ROOT, "l", "f", &e));
	CHECK(t, lgetxattr(t_path(t, "l"), "trusted.virtiofs.security.selinux", buf, sizeof(buf)) ==
			 (ssize_t)strlen(label),
	      "the symlink has no label of its own");
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", label));
	CHECK_OK(t, fc_mknod(c, FC_ROOT, "n", S_IFREG | 0600, 0, &e));
	/* a kernel without a security module sends the header with no context */
	ext_next(c, ext, secctx_ext(ext, 0, NULL, NULL));
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "plain", 0755, &e));
	CHECK(t, lgetxattr(t_path(t, "plain"), "trusted.virtiofs.security.selinux", buf, sizeof(buf)) < 0,
	      "a label appeared without a context");
	/* a label the host refuses (not a valid capability): the creation is undone */
	ext_next(c, ext, secctx_ext(ext, 1, "security.capability", "bad"));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "refused", 0755, &e), EINVAL);
	CHECK(t, !t_exists(t, "refused"), "a refused label left the directory behind");
	ext_next(c, ext, secctx_ext(ext, 1, "security.capability", "bad"));
	CHECK_ERR(t, fc_create(c, FC_ROOT, "refused", O_CREAT | O_RDWR, 0644, &e, &o), EINVAL);
	CHECK(t, !t_exists(t, "refused"), "a refused label left the file behind");
	/* a "context" outside security.* (an ACL, trusted.*) is refused before anything */
	ext_next(c, ext, secctx_ext(ext, 1, "trusted.virtiofs.x", label));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "refused", 0755, &e), EINVAL);
	ext_next(c, ext, secctx_ext(ext, 1, "system.posix_acl_default", label));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "refused", 0755, &e), EINVAL);
	CHECK(t, !t_exists(t, "refused"), "a refused context created the directory");
	/* malformed: no context record, two contexts, an empty value, an unknown type */
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	ext_next(c, ext, secctx_ext(ext, 2, "security.selinux", label));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	ext_next(c, ext, secctx_ext(ext, 1, "security.selinux", ""));
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	secctx_ext(ext, 0, NULL, NULL);
	ext[4] = 33; /* type */
	ext_next(c, ext, 8);
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 5 }, 1)); /* groups were not agreed */
	CHECK_ERR(t, fc_mkdir(c, FC_ROOT, "x", 0755, &e), EINVAL);
	CHECK(t, !t_exists(t, "x"), "a refused request created x");
	t_still_serving(t, c);
}

/* --security-label with a kernel older than 7.38 (its context format is not the extension
 * records vfsd reads): INIT fails with EPROTO, rather than every creation later. */
void test_security_label_needs_738(struct t_ctx *t)
{
	struct fuse_init_out out;
	int r;

	t_started(t, NULL, "--security-label", NULL);
	r = fc_init_with(&t->fc, 7, 37, FUSE_ASYNC_READ | FUSE_INIT_EXT | FUSE_SECURITY_CTX, &out);
	CHECK(t, r == -EPROTO, "INIT 7.37 with SECURITY_CTX: %s", fc_strerror(&t->fc, r));
	r = fc_init_plus(&t->fc, FUSE_SECURITY_CTX);
	CHECK(t, r == 0, "INIT 7.38 after it: %s", fc_strerror(&t->fc, r));
	t_still_serving(t, &t->fc);
}

/* CREATE_SUPP_GROUP: a creator's group that the daemon cannot know otherwise decides on the
 * host as it did in the guest; without it the host refuses. */
void test_supp_groups(struct t_ctx *t)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fc *c = &t->fc;
	struct stat st;
	uint8_t ext[256];
	uint64_t d;

	t_mkdir(t, "g");
	CHECK(t, chown(t_path(t, "g"), 0, 500) == 0 && chmod(t_path(t, "g"), 0770) == 0,
	      "host chown/chmod");
	t_started(t, NULL, NULL);
	CHECK_OK(t, fc_init_plus(c, INIT_CREATE_SUPP_GROUP));
	CHECK(t, c->init.flags2 & (INIT_CREATE_SUPP_GROUP >> 32), "CREATE_SUPP_GROUP not agreed");
	d = lookup_id(t, c, FC_ROOT, "g");
	c->uid = 1001;
	c->gid = 1001;
	/* agreed, and no group sent: the host decides with uid 1001 alone */
	CHECK_ERR(t, fc_create(c, d, "none", O_CREAT | O_RDWR, 0644, &e, &o), EACCES);
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 500 }, 1));
	CHECK_OK(t, fc_create(c, d, "member", O_CREAT | O_RDWR, 0644, &e, &o));
	CHECK_OK(t, fc_release(c, e.nodeid, o.fh));
	host_stat(t, "g/member", &st);
	CHECK(t, st.st_uid == 1001 && st.st_gid == 1001, "owner %u:%u", st.st_uid, st.st_gid);
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 500 }, 1));
	CHECK_OK(t, fc_mkdir(c, d, "sub", 0755, &e));
	ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 600 }, 1)); /* not the directory's group */
	CHECK_ERR(t, fc_mkdir(c, d, "other", 0755, &e), EACCES);
	/* extensions belong to creating ops only: a READ with one is refused, whole */
	{
		char rbuf[16];
		size_t got;

		ext_next(c, ext, groups_ext(ext, (uint32_t[]){ 500 }, 1));
		CHECK_ERR(t, fc_read(c, d, 1, 0, rbuf, sizeof(rbuf), &got), EINVAL);
	}
	/* a record whose size disagrees with its count */
	groups_ext(ext, (uint32_t[]){ 500, 501 }, 2);
	ext[8] = 3;
	ext_next(c, ext, 16);
	CHECK_ERR(t, fc_mkdir(c, d, "bad", 0755, &e), EINVAL);
	/* the thread gave the groups back: root's next creation does not carry them */
	c->uid = 0;
	c->gid = 0;
	CHECK_OK(t, fc_mkdir(c, FC_ROOT, "root-dir", 0755, &e));
	CHECK(t, !t_exists(t, "g/bad") && !t_exists(t, "g/other"), "a refused creation happened");
	t_still_serving(t, c);
}

/* --xattrmap: the documented "everything under user.virtiofs." map, and a remapped
 * security.capability that vfsd drops itself where the host kernel would not. */
void test_xattrmap(struct t_ctx *t)
{
	struct fuse_open_out o;
	struct fc *c;
	char buf[256];
	uint64_t f;
	size_t len, n;

	t_write_file(t, "f", "data", 4);
	CHECK(t, setxattr(t_path(t, "f"), "user.plain", "host", 4, 0) == 0, "host setxattr");
	c = t_session(t, NULL, "--xattrmap=:map::user.virtiofs.:", NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	/* trusted.* of the guest lives in the host's user.* (no privilege needed) */
	CHECK_OK(t, fc_setxattr(c, f, "trusted.a", "1", 1, 0));
	host_getxattr(t, "f", "user.virtiofs.trusted.a", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "1") == 0, "host reads user.virtiofs.trusted.a = '%s'", buf);
	CHECK_OK(t, fc_getxattr(c, f, "trusted.a", buf, sizeof(buf), &len));
	CHECK(t, len == 1 && buf[0] == '1', "value of %zu bytes", len);
	/* the host's unprefixed names are hidden and out of reach */
	CHECK_ERR(t, fc_getxattr(c, f, "user.plain", buf, sizeof(buf), &len), ENODATA);
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "trusted.a") && !list_has(buf, len, "user.plain") &&
		 !list_has(buf, len, "user.virtiofs.trusted.a"),
	      "guest list of %zu bytes is not {trusted.a}", len);
	CHECK_OK(t, fc_removexattr(c, f, "trusted.a"));
	host_getxattr(t, "f", "user.virtiofs.trusted.a", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "host still has user.virtiofs.trusted.a");
	/* A capability stored under another name: a write must drop it as the host kernel
	 * drops a real security.capability. */
	CHECK_OK(t, fc_setxattr(c, f, "security.capability", "cap", 3, 0));
	host_getxattr(t, "f", "user.virtiofs.security.capability", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "cap") == 0, "host capability xattr = '%s'", buf);
	CHECK_OK(t, fc_open(c, f, O_RDWR, &o));
	CHECK_OK(t, fc_write(c, f, o.fh, 0, "x", 1, &n));
	host_getxattr(t, "f", "user.virtiofs.security.capability", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "a WRITE left the remapped capability: '%s'", buf);
	CHECK_OK(t, fc_release(c, f, o.fh));
	host_getxattr(t, "f", "user.plain", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "host") == 0, "the host's own user.plain changed: '%s'", buf);
}

/* --xattrmap rules without a catch-all: a name none matches is refused, never a crash. */
void test_xattrmap_unterminated(struct t_ctx *t)
{
	struct fc *c;
	char buf[256];
	uint64_t f;
	size_t len;

	t_write_file(t, "f", "data", 4);
	CHECK(t, setxattr(t_path(t, "f"), "user.plain", "host", 4, 0) == 0, "host setxattr");
	c = t_session(t, NULL,
		      "--xattrmap= :bad:server::user.hidden: :ok:all:user.:: :unsupported:client:trusted.::",
		      NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	CHECK(t, setxattr(t_path(t, "f"), "user.hidden1", "h", 1, 0) == 0, "host setxattr");
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "user.plain") && !list_has(buf, len, "user.hidden1"),
	      "guest list of %zu bytes", len);
	CHECK_ERR(t, fc_getxattr(c, f, "trusted.x", buf, sizeof(buf), &len), EOPNOTSUPP);
	CHECK_ERR(t, fc_setxattr(c, f, "security.x", "v", 1, 0), EPERM);
	CHECK_ERR(t, fc_getxattr(c, f, "security.x", buf, sizeof(buf), &len), ENODATA);
	CHECK_ERR(t, fc_removexattr(c, f, "security.x"), EPERM);
	t_still_serving(t, c);
}

void test_xattr(struct t_ctx *t)
{
	struct fc *c;
	char buf[256], name[300];
	uint64_t f, l, p, d;
	size_t len;

	t_write_file(t, "f", "data", 4);
	t_mkdir(t, "d");
	CHECK(t, symlink("f", t_path(t, "l")) == 0 && mkfifo(t_path(t, "p"), 0600) == 0,
	      "host symlink and fifo");
	/* CAP_SYS_ADMIN, dropped by default, is what trusted.* and security.* need. */
	c = t_session(t, NULL, "-o", "xattr,modcaps=+sys_admin", NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	d = lookup_id(t, c, FC_ROOT, "d");
	l = lookup_id(t, c, FC_ROOT, "l");
	p = lookup_id(t, c, FC_ROOT, "p");

	/* set, get, list and remove on a file; the host sees each change */
	CHECK_OK(t, fc_setxattr(c, f, "user.colour", "blue", 4, 0));
	host_getxattr(t, "f", "user.colour", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "blue") == 0, "host reads user.colour = '%s'", buf);
	CHECK_OK(t, fc_getxattr(c, f, "user.colour", NULL, 0, &len));
	CHECK(t, len == 4, "size query: %zu", len);
	CHECK_OK(t, fc_getxattr(c, f, "user.colour", buf, sizeof(buf), &len));
	CHECK(t, len == 4 && memcmp(buf, "blue", 4) == 0, "value of %zu bytes", len);
	CHECK_ERR(t, fc_getxattr(c, f, "user.colour", buf, 2, &len), ERANGE);
	CHECK_ERR(t, fc_getxattr(c, f, "user.none", buf, sizeof(buf), &len), ENODATA);
	CHECK_ERR(t, fc_setxattr(c, f, "user.colour", "red", 3, XATTR_CREATE), EEXIST);
	CHECK_ERR(t, fc_setxattr(c, f, "user.none", "red", 3, XATTR_REPLACE), ENODATA);
	CHECK_OK(t, fc_setxattr(c, f, "user.empty", "", 0, 0));
	CHECK_OK(t, fc_listxattr(c, f, NULL, 0, &len));
	CHECK(t, len >= sizeof("user.colour") + sizeof("user.empty"), "list size query: %zu", len);
	CHECK_OK(t, fc_listxattr(c, f, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "user.colour") && list_has(buf, len, "user.empty"),
	      "list of %zu bytes lacks a name", len);
	CHECK_ERR(t, fc_listxattr(c, f, buf, 3, &len), ERANGE);
	CHECK_OK(t, fc_removexattr(c, f, "user.colour"));
	host_getxattr(t, "f", "user.colour", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "host still reads user.colour = '%s'", buf);
	CHECK_ERR(t, fc_removexattr(c, f, "user.colour"), ENODATA);
	/* a directory */
	CHECK_OK(t, fc_setxattr(c, d, "user.dir", "1", 1, 0));
	host_getxattr(t, "d", "user.dir", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "1") == 0, "host reads the directory's user.dir = '%s'", buf);
	/*
	 * A symlink's own attributes, never its target's, and a FIFO nobody writes to: opening
	 * it would hang the daemon (CVE-2020-35517 is the same mistake for devices), so its
	 * attributes are reached without an open. user.* is not allowed on either: the host
	 * sets security.* (readable without privileges).
	 */
	CHECK(t, lsetxattr(t_path(t, "l"), "security.vfsd", "link", 4, 0) == 0 &&
		 lsetxattr(t_path(t, "p"), "security.vfsd", "fifo", 4, 0) == 0,
	      "host lsetxattr");
	CHECK_OK(t, fc_getxattr(c, l, "security.vfsd", buf, sizeof(buf), &len));
	CHECK(t, len == 4 && memcmp(buf, "link", 4) == 0, "symlink value of %zu bytes", len);
	CHECK_ERR(t, fc_getxattr(c, f, "security.vfsd", buf, sizeof(buf), &len), ENODATA);
	CHECK_OK(t, fc_getxattr(c, p, "security.vfsd", buf, sizeof(buf), &len));
	CHECK(t, len == 4 && memcmp(buf, "fifo", 4) == 0, "fifo value of %zu bytes", len);
	CHECK_OK(t, fc_listxattr(c, p, buf, sizeof(buf), &len));
	CHECK(t, list_has(buf, len, "security.vfsd"), "fifo list of %zu bytes", len);
	/* changed through the daemon */
	CHECK_OK(t, fc_setxattr(c, l, "trusted.vfsd", "link", 4, 0));
	host_getxattr(t, "l", "trusted.vfsd", buf, sizeof(buf));
	CHECK(t, strcmp(buf, "link") == 0, "host reads the symlink's trusted.vfsd = '%s'",
	      buf);
	host_getxattr(t, "f", "trusted.vfsd", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "the symlink's target got trusted.vfsd = '%s'", buf);
	CHECK_OK(t, fc_removexattr(c, p, "security.vfsd"));
	host_getxattr(t, "p", "security.vfsd", buf, sizeof(buf));
	CHECK(t, buf[0] == '\0', "the fifo kept security.vfsd = '%s'", buf);
	/* bad names */
	CHECK_ERR(t, fc_setxattr(c, f, "", "x", 1, 0), ERANGE);
	memset(name, 'a', sizeof(name) - 1);
	memcpy(name, "user.", 5);
	name[sizeof(name) - 1] = '\0';
	CHECK_ERR(t, fc_setxattr(c, f, name, "x", 1, 0), ERANGE);
	CHECK_ERR(t, fc_getxattr(c, STALE_ID, "user.x", buf, sizeof(buf), &len), EBADF);
	if (!t->c_virtiofsd) {
		/* ACLs are not handled (no --posix-acl): refused, and hidden from lists */
		CHECK_ERR(t, fc_setxattr(c, f, "system.posix_acl_access", "x", 1, 0), ENOTSUP);
		CHECK_ERR(t, fc_getxattr(c, f, "system.posix_acl_default", buf, sizeof(buf), &len),
			  ENOTSUP);
	}
	t_still_serving(t, c);
}

void test_xattr_readonly(struct t_ctx *t)
{
	struct fc *c;
	char buf[16];
	size_t len;
	uint64_t f;

	t_write_file(t, "f", "data", 4);
	CHECK(t, setxattr(t_path(t, "f"), "user.k", "v", 1, 0) == 0, "host setxattr");
	c = t_session(t, NULL, "--xattr", "--readonly", NULL);
	f = lookup_id(t, c, FC_ROOT, "f");
	CHECK_OK(t, fc_getxattr(c, f, "user.k", buf, sizeof(buf), &len));
	CHECK(t, len == 1 && buf[0] == 'v', "value of %zu bytes", len);
	CHECK_ERR(t, fc_setxattr(c, f, "user.k", "w", 1, 0), EROFS);
	CHECK_ERR(t, fc_removexattr(c, f, "user.k"), EROFS);
}

/* Looks up "mnt" (a tmpfs mounted for the call) and "plain" in a session with the extra
 * daemon argument; returns their attr.flags. */
