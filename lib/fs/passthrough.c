/* The passthrough filesystem: set-up, session life cycle, shared helpers and the ops table. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "fs/internal.h"
#include "metrics/metrics.h"

static const double cache_timeouts[] = {
	[VFSD_CACHE_NEVER] = 0.0,
	[VFSD_CACHE_METADATA] = 86400.0,
	[VFSD_CACHE_AUTO] = 1.0,
	[VFSD_CACHE_ALWAYS] = 86400.0,
};

static int stat_with(int dirfd, const char *name, int flags, struct statx *st)
{
	if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_MNT_ID, st) < 0)
		return -errno;
	if (!(st->stx_mask & STATX_MNT_ID))
		st->stx_mnt_id = 0;
	return 0;
}

int fs_stat(int fd, struct statx *st)
{
	return stat_with(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, st);
}

int fs_stat_name(int dirfd, const char *name, struct statx *st)
{
	return stat_with(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, st);
}

void fs_fill_timeouts(const struct vfsd_passthrough *fs, uint64_t *sec, uint32_t *nsec)
{
	*sec = (uint64_t)fs->timeout;
	*nsec = (uint32_t)((fs->timeout - (double)*sec) * 1e9);
}

void fs_fill_attr(const struct vfsd_passthrough *fs, const struct statx *st, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->stx_ino;
	a->size = st->stx_size;
	a->blocks = st->stx_blocks;
	a->atime = st->stx_atime.tv_sec;
	a->mtime = st->stx_mtime.tv_sec;
	a->ctime = st->stx_ctime.tv_sec;
	a->atimensec = st->stx_atime.tv_nsec;
	a->mtimensec = st->stx_mtime.tv_nsec;
	a->ctimensec = st->stx_ctime.tv_nsec;
	a->mode = st->stx_mode;
	a->nlink = st->stx_nlink;
	a->uid = vfsd_idmap_to_guest(fs->cfg.uid_map, st->stx_uid);
	a->gid = vfsd_idmap_to_guest(fs->cfg.gid_map, st->stx_gid);
	a->rdev = makedev(st->stx_rdev_major, st->stx_rdev_minor);
	a->blksize = st->stx_blksize;
}

int fs_open_child(struct vfsd_passthrough *fs, int dirfd, const char *name, int flags, mode_t mode)
{
	int fd;

	if (fs->has_openat2) {
		struct open_how how = {
			.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
			.mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode & 07777) : 0,
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};

		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	} else {
		fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	}
	return fd < 0 ? -errno : fd;
}

int fs_reopen(struct vfsd_passthrough *fs, const struct fs_inode *inode, int flags)
{
	char name[16];
	int fd;

	/* Never open a FIFO, socket or device on the guest's behalf (CVE-2020-35517). */
	if (inode->type != S_IFREG && inode->type != S_IFDIR)
		return -EBADF;
	snprintf(name, sizeof(name), "%d", inode->fd);
	fd = openat(fs->proc_self_fd, name, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* With submounts announced, a directory on another mount than its parent is marked: the
 * guest then mounts it apart, with its own st_dev (and sends SYNCFS for it). */
static void mark_submount(const struct vfsd_passthrough *fs, const struct fs_inode *parent,
			  const struct statx *st, struct fuse_entry_out *e)
{
	if (fs_session(fs, FS_SESSION_SUBMOUNTS) && S_ISDIR(st->stx_mode) &&
	    (makedev(st->stx_dev_major, st->stx_dev_minor) != parent->dev ||
	     st->stx_mnt_id != parent->mnt_id))
		e->attr.flags |= FUSE_ATTR_SUBMOUNT;
}

bool fs_fd_try(struct vfsd_passthrough *fs)
{
	if (fs->cfg.guest_fd_limit > 0 && __atomic_sub_fetch(&fs->fd_budget, 1, __ATOMIC_RELAXED) < 0) {
		__atomic_add_fetch(&fs->fd_budget, 1, __ATOMIC_RELAXED);
		return false;
	}
	metrics_gauge_add(MG_GUEST_FDS, 1);
	return true;
}

int fs_fd_take(struct vfsd_passthrough *fs)
{
	/* Spent: the least recently used idle inode gives its fd back, and we try again
	 * (another thread may take it first). */
	while (!fs_fd_try(fs)) {
		if (inode_evict_one(fs))
			continue;
		metrics_gauge_add(MG_BUDGET_EXHAUSTED, 1);
		if (!__atomic_exchange_n(&fs->fd_budget_warned, true, __ATOMIC_RELAXED))
			log_warn("No more file descriptors available to the guest (0 available out of %ld initially), consider increasing the --rlimit-nofile value",
				 fs->cfg.guest_fd_limit);
		return -ENFILE;
	}
	return 0;
}

void fs_fd_give(struct vfsd_passthrough *fs)
{
	metrics_gauge_add(MG_GUEST_FDS, -1);
	if (fs->cfg.guest_fd_limit > 0)
		__atomic_add_fetch(&fs->fd_budget, 1, __ATOMIC_RELAXED);
}

int fs_lookup_at(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name,
		 struct fuse_entry_out *e)
{
	struct statx st;
	int r;

	/*
	 * name is one component (never "", ".", ".." or with '/'), not followed if a symlink: the
	 * stat cannot leave parent. A known (dev, ino, mount) is the object whose O_PATH fd the
	 * table holds, so its number cannot have been reused, unless the fd cache evicted it
	 * (docs/fd-cache.md says what a reused number then means). With file handles it could
	 * have been: the name is always opened and its handle compared.
	 */
	if (fs->use_khandles)
		return fs_lookup_open(fs, parent, name, e);
	r = fs_stat_name(parent->fd, name, &st);
	if (r == 0 && inode_lookup_known(fs, parent, name, &st, e) == 0) {
		mark_submount(fs, parent, &st, e);
		return 0;
	}
	if (r == -ENOENT || r == -ENOTDIR)
		return r;
	return fs_lookup_open(fs, parent, name, e);
}

int fs_lookup_open(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name,
		   struct fuse_entry_out *e)
{
	struct statx st;
	int fd = fs_open_child(fs, parent->fd, name, O_PATH, 0);
	int r;

	if (fd < 0)
		return fd;
	r = fs_stat(fd, &st);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = inode_register(fs, parent, name, fd, &st, e);
	if (r == 0)
		mark_submount(fs, parent, &st, e);
	return r;
}

uint32_t fs_open_flags(const struct vfsd_passthrough *fs, bool dir)
{
	switch (fs->cfg.cache) {
	case VFSD_CACHE_NEVER:
		return dir ? 0 : FOPEN_DIRECT_IO;
	case VFSD_CACHE_METADATA:
		return dir ? (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE) : FOPEN_DIRECT_IO;
	case VFSD_CACHE_ALWAYS:
		return dir ? (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE) : FOPEN_KEEP_CACHE;
	case VFSD_CACHE_AUTO:
	default:
		return 0;
	}
}

static int fs_init(void *opaque, uint64_t capable, uint64_t *want)
{
	struct vfsd_passthrough *fs = opaque;
	unsigned int session = 0;
	struct fs_inode *root;

	__atomic_store_n(&fs->session, 0, __ATOMIC_RELEASE); /* until this INIT succeeds */
	handle_table_clear(fs);
	inode_table_clear(fs);
	pthread_mutex_lock(&fs->inodes.lock);
	root = slot_get(&fs->inodes.slots, FS_ROOT_ID);
	root->nlookup = 2;
	pthread_mutex_unlock(&fs->inodes.lock);
	*want = 0;
	if (fs->cfg.readdirplus)
		*want |= FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
	if (fs->cfg.announce_submounts && (capable & FUSE_SUBMOUNTS)) {
		session |= FS_SESSION_SUBMOUNTS;
		*want |= FUSE_SUBMOUNTS;
	}
	else if (fs->cfg.announce_submounts)
		log_warn("fuse: cannot announce submounts, the kernel does not offer it");
	if (fs->cfg.writeback && (capable & FUSE_WRITEBACK_CACHE)) {
		session |= FS_SESSION_WRITEBACK;
		*want |= FUSE_WRITEBACK_CACHE;
	}
	if (fs->cfg.allow_mmap)
		*want |= FUSE_DIRECT_IO_ALLOW_MMAP;
	if (fs->cfg.killpriv_v2 && (capable & FUSE_HANDLE_KILLPRIV_V2)) {
		session |= FS_SESSION_KILLPRIV_V2;
		*want |= FUSE_HANDLE_KILLPRIV_V2;
	}
	else if (fs->cfg.killpriv_v2)
		log_warn("fuse: cannot enable KILLPRIV_V2, the kernel does not offer it");
	if (fs->cfg.posix_acl) {
		const uint64_t acl_flags = FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT;

		/* As virtiofsd: ACLs the guest kernel cannot apply would be a lie. */
		if ((capable & acl_flags) != acl_flags) {
			log_error("fuse: --posix-acl needs POSIX_ACL, DONT_MASK and SETXATTR_EXT from the guest kernel, which offers 0x%llx of them",
				  (unsigned long long)(capable & acl_flags));
			return -EPROTO;
		}
		session |= FS_SESSION_ACL;
		*want |= acl_flags;
	}
	if (fs->cfg.security_label) {
		if (!(capable & FUSE_SECURITY_CTX)) {
			log_error("fuse: --security-label needs SECURITY_CTX with protocol 7.38 (Linux 6.1) from the guest kernel");
			return -EPROTO;
		}
		*want |= FUSE_SECURITY_CTX;
	}
	/* Agreed whenever offered (the FUSE server's always-supported set). */
	if (capable & FUSE_CREATE_SUPP_GROUP)
		session |= FS_SESSION_SUPP_GROUPS;
	__atomic_store_n(&fs->session, session, __ATOMIC_RELEASE);
	if (fs->cfg.posix_lock)
		*want |= FUSE_POSIX_LOCKS;
	if (fs->cfg.flock)
		*want |= FUSE_FLOCK_LOCKS;
	return 0;
}

static void fs_destroy(void *opaque)
{
	struct vfsd_passthrough *fs = opaque;

	handle_table_clear(fs);
	inode_table_clear(fs);
}

void fs_forget(void *opaque, uint64_t nodeid, uint64_t nlookup)
{
	inode_forget(opaque, nodeid, nlookup);
}

static int open_root(struct vfsd_passthrough *fs)
{
	struct fuse_entry_out e;
	struct statx st;
	int fd = open(fs->cfg.root_dir, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = fs_stat(fd, &st);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (!S_ISDIR(st.stx_mode)) {
		close(fd);
		return -ENOTDIR;
	}
	r = inode_register(fs, NULL, NULL, fd, &st, &e);
	if (r == 0 && e.nodeid != FS_ROOT_ID)
		r = -EINVAL; /* the table was not empty: a programming error */
	if (r == 0)
		fs->root_fd = fd;
	return r;
}

static bool probe_openat2(void)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC };
	int fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int vfsd_passthrough_new(const struct vfsd_fs_config *cfg, struct vfsd_passthrough **out)
{
	struct vfsd_passthrough *fs = calloc(1, sizeof(*fs));
	int r;

	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->proc_self_fd = cfg->proc_self_fd;
	fs->timeout = cache_timeouts[cfg->cache];
	fs->fd_budget = cfg->guest_fd_limit;
	metrics_gauge_set(MG_GUEST_FD_LIMIT, cfg->guest_fd_limit);
	fs->has_openat2 = probe_openat2();
	pthread_mutex_init(&fs->locks_lock, NULL);
	pthread_mutex_init(&fs->mounts_lock, NULL);
	r = inode_table_init(&fs->inodes);
	if (r == 0)
		r = handle_table_init(&fs->handles);
	if (r == 0)
		r = open_root(fs);
	if (r == 0)
		r = fs_xattr_init(fs);
	if (r == 0)
		r = khandle_start(fs);
	if (r < 0) {
		vfsd_passthrough_free(fs);
		return r;
	}
	/* Guest modes are applied as given; the guest kernel already applied its umask. */
	umask(0);
	*out = fs;
	return 0;
}

void vfsd_passthrough_free(struct vfsd_passthrough *fs)
{
	if (!fs)
		return;
	handle_table_clear(fs);
	inode_table_clear(fs);
	if (fs->inodes.slots.size > FS_ROOT_ID && fs->inodes.slots.items[FS_ROOT_ID]) {
		struct fs_inode *root = fs->inodes.slots.items[FS_ROOT_ID];

		fs_lock_owners_free(root);
		close(root->fd);
		free(root);
	}
	slot_table_free(&fs->inodes.slots);
	slot_table_free(&fs->handles.slots);
	free(fs->inodes.hash);
	khandle_stop(fs);
	vfsd_closep(&fs->proc_self_fd);
	free(fs->cap_xattr);
	free(fs);
}

void vfsd_passthrough_thread_init(void)
{
	if (unshare(CLONE_FS) < 0)
		log_warn("request thread: unshare(CLONE_FS): %s", strerror(errno));
}

const struct vfsd_fs_ops vfsd_passthrough_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.symlink = fs_symlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.create = fs_create,
	.tmpfile = fs_tmpfile,
	.read = fs_read,
	.write = fs_write,
	.statfs = fs_statfs,
	.release = fs_release,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.access = fs_access,
	.fallocate = fs_fallocate,
	.lseek = fs_lseek,
	.copy_file_range = fs_copy_file_range,
	.syncfs = fs_syncfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
	.getlk = fs_getlk,
	.setlk = fs_setlk,
	.forget_lock_owner = fs_forget_lock_owner,
};
