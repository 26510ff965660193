/* Internals of the passthrough filesystem, shared by its files. */
#ifndef VFSD_FS_INTERNAL_H
#define VFSD_FS_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include "fs/fs.h"

/*
 * An inode the guest knows. Node id = (generation << 32) | slot index: a stale id whose slot
 * was reused fails the generation check. Its size is the fd cache's memory per inode
 * (docs/benchmarks.md): the fields leave no holes (120 bytes), and the first name recorded
 * lives in the same allocation (name_buf), sparing the name a malloc chunk of its own.
 */
struct fs_inode {
	/* O_PATH, never a special file opened for I/O. A handle-backed inode (khandle set) has
	 * it only while refs > 0: inode_get opens it by handle, the last inode_put closes it. */
	int fd;
	int mount_fd; /* with khandle: an fd on its mount (owned by the mount table) */
	/* --inode-file-handles: the inode's kernel file handle (name_to_handle_at), or NULL.
	 * "fh" in vfsd always means a FUSE open handle's number (handle.c), never this. */
	struct file_handle *khandle;
	uint64_t dev, ino, mnt_id;
	uint16_t type;	 /* S_IFMT bits (mode_t's, in 16 bits), fixed for the inode's life */
	/* The guest itself removed a name of it (UNLINK, RMDIR, a RENAME over it) or made it
	 * nameless (TMPFILE): an OPEN of it with no link left is the guest's own business. Without
	 * this, no link left means it was deleted behind the guest's back (open_inode). Set
	 * under inodes.lock, read without it. */
	bool guest_removed;
	uint32_t slot, gen;
	uint32_t refs;		/* guarded by inodes.lock: users in flight */
	/* guarded by inodes.lock: the inodes whose name record names this one as parent; it
	 * stays in the table while there are any, even when the guest forgot it */
	uint32_t nchildren;
	bool lost; /* a migration's destination could not find it: every use fails (EIO) */
	bool idle; /* guarded by inodes.lock: on the idle list (fd held, refs 0, may be evicted) */
	uint16_t name_cap; /* bytes of name_buf (0: none) */
	uint64_t nlookup;	/* guarded by inodes.lock: the guest's references */
	struct fs_inode *hnext; /* guarded by inodes.lock: hash chain */
	/*
	 * The name record (guarded by inodes.lock), for the fd cache: the directory and the
	 * name under which the guest last found the object. An inode held by its fd (no
	 * khandle) whose fd was evicted is opened again by it, and the object so found must be
	 * the inode's (dev, ino, mount) or the use fails with ESTALE (docs/fd-cache.md).
	 * parent NULL: no record (the root, an O_TMPFILE, a migrated inode not looked up since);
	 * such an inode keeps its fd.
	 */
	struct fs_inode *parent;
	char *name; /* name_buf, or allocated when the name did not fit there */
	struct fs_inode *lru_prev, *lru_next; /* guarded by inodes.lock: the idle list */
	struct fs_lock_owner *lock_owners; /* guarded by locks_lock: POSIX lock owners' opens */
	char name_buf[]; /* name_cap bytes, allocated with the inode (inode_alloc) */
};

struct fs_handle {
	int fd;
	struct fs_inode *inode; /* holds a ref */
	uint32_t slot, gen;
	uint32_t refs;		/* guarded by handles.lock */
	bool released;		/* guarded by handles.lock */
	pthread_mutex_t lock;	/* serialises users of the fd offset (READDIR, LSEEK) */
	/* Directory stream, guarded by lock: getdents64 output not yet sent, and the directory
	 * offset of its next entry; a READDIR at that offset goes on without seeking. */
	char *dents;
	size_t dents_len, dents_pos;
	uint64_t dir_off;
};

struct slot_table {
	void **items;	   /* slot index -> object, NULL if free */
	uint32_t *gens;	   /* slot index -> generation of the current/next object */
	uint32_t size;
	uint32_t *free;	   /* stack of free slot indexes */
	uint32_t nfree;
};

struct inode_table {
	pthread_mutex_t lock;
	struct slot_table slots;
	struct fs_inode **hash;
	uint32_t hash_size; /* power of two */
	uint32_t count;
	/* The fd cache: inodes that hold an fd nobody is using, least recently used first;
	 * fs_fd_take evicts from the head when the guest's fd budget is spent. */
	struct fs_inode *lru_head, *lru_tail;
};

struct handle_table {
	pthread_mutex_t lock;
	struct slot_table slots;
};

/* What the FUSE session agreed that changes how requests are served. */
enum {
	FS_SESSION_SUBMOUNTS = 1u << 0,	  /* announce_submounts and the kernel agreed */
	FS_SESSION_WRITEBACK = 1u << 1,	  /* WRITEBACK_CACHE */
	FS_SESSION_KILLPRIV_V2 = 1u << 2, /* HANDLE_KILLPRIV_V2 */
	FS_SESSION_ACL = 1u << 3,	  /* POSIX_ACL, DONT_MASK and SETXATTR_EXT */
	FS_SESSION_SUPP_GROUPS = 1u << 4, /* CREATE_SUPP_GROUP */
};

struct vfsd_passthrough {
	struct vfsd_fs_config cfg;
	int proc_self_fd;
	int root_fd; /* O_PATH fd of the shared root, the root inode's (where threads' cwd is) */
	bool has_openat2;
	/* FS_SESSION_* agreed at INIT: written once per INIT (fs_init, under the FUSE server's
	 * lock) and read by requests on every thread, only through fs_session(). */
	unsigned int session;
	struct inode_table inodes;
	struct handle_table handles;
	pthread_mutex_t locks_lock; /* the inodes' lock_owners lists */
	long fd_budget;	     /* atomic: fds the guest may still make vfsd hold (see fs_fd_take) */
	bool fd_budget_warned; /* atomic: the exhaustion was logged */
	bool use_khandles; /* file handles in use (configured, and the start-up check passed) */
	pthread_mutex_t mounts_lock;
	struct fs_mount { uint64_t id; int fd; } *mounts; /* guarded by mounts_lock */
	size_t nmounts;					  /* guarded by mounts_lock */
	bool handles_warned; /* guarded by mounts_lock: the fallback was logged */
	double timeout; /* entry and attribute validity, seconds */
	/* The host name --xattrmap gives security.capability when it is not that name itself:
	 * the host kernel then does not drop it on writes and owner changes, so vfsd does. */
	char *cap_xattr;
};

#define FS_ROOT_ID 1

/* slot tables */
int slot_alloc(struct slot_table *t, void *item, uint32_t *slot, uint32_t *gen);
void *slot_get(const struct slot_table *t, uint64_t id);

static inline bool fs_session(const struct vfsd_passthrough *fs, unsigned int flag)
{
	return __atomic_load_n(&fs->session, __ATOMIC_ACQUIRE) & flag;
}
void slot_release(struct slot_table *t, uint32_t slot);
/* Puts item at exactly the id (a migration's destination): -EEXIST if taken, -E2BIG past
 * FS_SLOTS_PLACE_MAX. slot_settle() then rebuilds the free list from the holes. */
#define FS_SLOTS_PLACE_MAX (1u << 24)
int slot_place(struct slot_table *t, uint64_t id, void *item);
void slot_settle(struct slot_table *t);
void slot_table_free(struct slot_table *t);
static inline uint64_t slot_id(uint32_t slot, uint32_t gen)
{
	return ((uint64_t)gen << 32) | slot;
}

/* inodes (inode.c) */
int inode_table_init(struct inode_table *t);
void inode_table_clear(struct vfsd_passthrough *fs);
/* Takes a ref on the inode named by nodeid into *out, with its fd open. Returns 0, -EBADF
 * for an id that is not live, or -ESTALE for an inode whose object cannot be found again (a
 * handle-backed one that is gone, an evicted one whose name no longer leads to it): the
 * guest then looks the name up again. */
int inode_get(struct vfsd_passthrough *fs, uint64_t nodeid, struct fs_inode **out);
void inode_ref(struct vfsd_passthrough *fs, struct fs_inode *inode);
/* inode_ref with inodes.lock held. */
void inode_ref_locked(struct vfsd_passthrough *fs, struct fs_inode *inode);
/* A new O_PATH fd of an inode that has none (evicted, or handle-backed) for the caller to
 * close, the inode held by the caller; -ESTALE when its object cannot be found again. */
int inode_open_again(struct vfsd_passthrough *fs, struct fs_inode *inode);
/* The fd cache: gives back the fd of the least recently used idle inode. Returns whether
 * one was evicted. Called without inodes.lock. */
bool inode_evict_one(struct vfsd_passthrough *fs);
/* A guest rename of oldname under olddir to newname under newdir succeeded (flags as given
 * to renameat2): the moved objects' name records follow. */
void inode_renamed(struct vfsd_passthrough *fs, struct fs_inode *olddir, const char *oldname,
		   struct fs_inode *newdir, const char *newname, unsigned int flags);
/* The guest removed a name of the object st describes (or made it nameless): its inode, if
 * known, says so (fs_inode.guest_removed). */
void inode_guest_removed(struct vfsd_passthrough *fs, const struct statx *st);
void inode_put(struct vfsd_passthrough *fs, struct fs_inode *inode);
/* Drops n guest references. */
void inode_forget(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t n);
/*
 * Registers the object open on fd (O_PATH, consumed) with stat st, found as name under
 * parent (both NULL: no name, as for the root or an O_TMPFILE): finds the existing inode or
 * adds one, counts one guest reference, records the name and fills e.
 */
int inode_register(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name, int fd,
		   const struct statx *st, struct fuse_entry_out *e);
/*
 * A migration's destination: the inode id, with nlookup guest references, held by fd
 * (O_PATH, consumed) for the object st describes; lost (fd -1, st NULL) for one that was not
 * found. Its name record is name under the inode parent (already placed), none if parent is
 * 0. The tables must have been emptied (a new session) and are settled by
 * fs_tables_settle() once every inode and handle is in. 0 or -errno.
 */
int inode_place(struct vfsd_passthrough *fs, uint64_t id, int fd, const struct statx *st,
		uint64_t nlookup, bool lost, uint64_t parent, const char *name);
int handle_place(struct vfsd_passthrough *fs, uint64_t id, struct fs_inode *inode, int fd,
		 uint64_t dir_off);
void fs_tables_settle(struct vfsd_passthrough *fs);
/* As inode_register without an fd: -ENOENT when no inode is known for st (or the one known
 * has no fd and another type: its number was reused). */
int inode_lookup_known(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name,
		       const struct statx *st, struct fuse_entry_out *e);
/* Whether an inode with these numbers is in the table (for READDIRPLUS: an entry whose
 * d_ino no inode on the directory's device has is opened at once, without a stat first). */
bool inode_known_ino(struct vfsd_passthrough *fs, uint64_t dev, uint64_t ino, uint64_t mnt_id);
static inline uint64_t inode_id(const struct fs_inode *i)
{
	return slot_id(i->slot, i->gen);
}

/* The guest fd budget (passthrough.c): every inode held by an O_PATH fd and every open file
 * takes one fd of cfg.guest_fd_limit, so a guest cannot spend the fds the daemon needs for
 * itself. When it is spent, idle inodes give theirs back (inode_evict_one); -ENFILE (logged
 * once) when none can. Never called with inodes.lock held. */
int fs_fd_take(struct vfsd_passthrough *fs);
/* One fd of the budget if one is left, without evicting and without a warning. */
bool fs_fd_try(struct vfsd_passthrough *fs);
void fs_fd_give(struct vfsd_passthrough *fs);

/* file handles (khandle.c) */
/* Start-up: checks the root's handle when file handles are configured (sets fs->use_khandles);
 * -errno when mandatory and unusable. */
int khandle_start(struct vfsd_passthrough *fs);
void khandle_stop(struct vfsd_passthrough *fs);
/* Room for a handle as name_to_handle_at fills it (a larger one counts as unsupported). */
#define FH_MAX_BYTES 128
struct khandle_buf {
	_Alignas(struct file_handle) unsigned char raw[sizeof(struct file_handle) + FH_MAX_BYTES];
};
/* The handle of the object open on fd, in buf, and its mount's fd; *fh NULL when the object is
 * to be held by its fd (handles off, or prefer on a filesystem without them). */
int khandle_of(struct vfsd_passthrough *fs, int fd, const struct statx *st, struct khandle_buf *buf,
	  struct file_handle **fh, int *mount_fd);
/* A copy of fh the size it needs, for an inode to keep; NULL without memory. */
struct file_handle *khandle_dup(const struct file_handle *fh);
/* An O_PATH fd of a handle-backed inode, or -errno (ESTALE when it is gone). */
int khandle_open(const struct fs_inode *inode);
bool khandle_equal(const struct file_handle *a, const struct file_handle *b);

/* handles (handle.c) */
int handle_table_init(struct handle_table *t);
void handle_table_clear(struct vfsd_passthrough *fs);
/* Registers fd (consumed) as a handle on inode (a ref is taken); *fh gets the id. */
int handle_new(struct vfsd_passthrough *fs, struct fs_inode *inode, int fd, uint64_t *fh);
/* The handle fh if it is live and belongs to nodeid (ref taken), else NULL. */
struct fs_handle *handle_get(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t fh);
void handle_put(struct vfsd_passthrough *fs, struct fs_handle *h);
int handle_release(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t fh);

/* helpers (passthrough.c) */
int fs_stat(int fd, struct statx *st);
/* The stat of name under dirfd, not followed if a symlink nor automounted: 0 or -errno. */
int fs_stat_name(int dirfd, const char *name, struct statx *st);
void fs_fill_attr(const struct vfsd_passthrough *fs, const struct statx *st, struct fuse_attr *a);
void fs_fill_timeouts(const struct vfsd_passthrough *fs, uint64_t *sec, uint32_t *nsec);
/* Opens name under dir without following symlinks or leaving dir. */
int fs_open_child(struct vfsd_passthrough *fs, int dirfd, const char *name, int flags, mode_t mode);
/* The flags a migration's destination opens a handle with again (open flags the source
 * had), under OPEN's policy (--readonly, O_DIRECT, O_NOATIME): flags, or -EROFS. */
int fs_reopen_flags(const struct vfsd_passthrough *fs, uint32_t flags);
/* Re-opens an inode for I/O through /proc/self/fd; only regular files and directories. */
int fs_reopen(struct vfsd_passthrough *fs, const struct fs_inode *inode, int flags);
/*
 * Looks up name under parent, counts one guest reference and fills e. fs_lookup_at first
 * asks the inode table by a stat of the name (one syscall when the guest already knows the
 * object, the common case of a revalidation); fs_lookup_open always opens the name, for the
 * names a creating op has just made.
 */
int fs_lookup_at(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name,
		 struct fuse_entry_out *e);
int fs_lookup_open(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name,
		   struct fuse_entry_out *e);
/* Open reply flags of the cache policy. */
uint32_t fs_open_flags(const struct vfsd_passthrough *fs, bool dir);

/* xattrs (xattr.c) */
/* Sets fs->cap_xattr from the xattr map; -ENOMEM. */
int fs_xattr_init(struct vfsd_passthrough *fs);
/* Removes the remapped security.capability (fs->cap_xattr, if any) from the file open on fd
 * (fd >= 0) or from the inode. */
void fs_xattr_drop_cap(struct vfsd_passthrough *fs, const struct fs_inode *inode, int fd);
/* Stores the request's security context (SECURITY_CTX) on the new inode nodeid. */
int fs_xattr_set_secctx(struct vfsd_passthrough *fs, const struct vfsd_req_ctx *ctx,
			uint64_t nodeid);

/* credentials (creds.c) */
struct fs_creds {
	bool uid_changed, gid_changed, groups_changed, umask_set;
	uid_t old_uid;
	gid_t old_gid;
};
/*
 * A creating op's identity: this thread's effective uid/gid become the request's (translated
 * to host ids; -EPERM for a forbidden one), with its supplementary groups when the kernel sent
 * them. With ACLs (the guest sent the mode without its umask, DONT_MASK) the thread also takes
 * guest_umask, so that the host kernel applies it, or the parent's default ACL instead; the
 * umask is per thread (request threads unshare CLONE_FS) and 0 otherwise. Undone by
 * creds_restore.
 */
int creds_switch(const struct vfsd_passthrough *fs, const struct vfsd_req_ctx *ctx,
		 uint32_t guest_umask, struct fs_creds *saved);
void creds_restore(const struct fs_creds *saved);
/* Drops CAP_FSETID from this thread's effective set, so that the host kernel clears set-id
 * bits as for an unprivileged writer; returns whether it did (then restore it). */
bool creds_drop_fsetid(void);
void creds_restore_fsetid(void);

/* ops implemented in each file */
int fs_lookup(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	      struct fuse_entry_out *out);
void fs_forget(void *fs, uint64_t nodeid, uint64_t nlookup);
int fs_getattr(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, struct fuse_attr_out *out);
int fs_setattr(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
	       const struct fuse_setattr_in *in, struct fuse_attr_out *out);
int fs_readlink(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, char *buf, size_t size,
		size_t *len);
int fs_symlink(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	       const char *target, struct fuse_entry_out *out);
int fs_mknod(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	     uint32_t mode, uint32_t rdev, uint32_t umask, struct fuse_entry_out *out);
int fs_mkdir(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	     uint32_t mode, uint32_t umask, struct fuse_entry_out *out);
int fs_unlink(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name);
int fs_rmdir(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name);
int fs_rename(void *fs, const struct vfsd_req_ctx *ctx, uint64_t olddir, const char *oldname,
	      uint64_t newdir, const char *newname, uint32_t flags);
int fs_link(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t newparent,
	    const char *newname, struct fuse_entry_out *out);
int fs_open(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t flags,
	    uint32_t open_flags, struct fuse_open_out *out);
int fs_create(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
	      uint32_t flags, uint32_t mode, uint32_t umask, uint32_t open_flags,
	      struct fuse_entry_out *entry, struct fuse_open_out *open);
int fs_tmpfile(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, uint32_t flags,
	       uint32_t mode, uint32_t umask, uint32_t open_flags, struct fuse_entry_out *entry,
	       struct fuse_open_out *open);
int fs_read(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t off,
	    size_t size, const struct iovec *dst, int cnt, size_t *done);
int fs_write(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t off,
	     uint32_t write_flags, uint32_t flags, const struct iovec *src, int cnt, size_t *done);
int fs_statfs(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, struct fuse_kstatfs *out);
int fs_release(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh);
int fs_flush(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh);
int fs_fsync(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh, bool datasync);
int fs_opendir(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t flags,
	       struct fuse_open_out *out);
int fs_readdir(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t off,
	       struct vfsd_dirbuf *db);
int fs_access(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t mask);
int fs_fallocate(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		 uint32_t mode, uint64_t off, uint64_t len);
int fs_lseek(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh, uint64_t off,
	     uint32_t whence, uint64_t *out);
int fs_copy_file_range(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid_in, uint64_t fh_in,
		       uint64_t off_in, uint64_t nodeid_out, uint64_t fh_out, uint64_t off_out,
		       uint64_t len, uint64_t flags, size_t *done);
int fs_syncfs(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid);
int fs_getxattr(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, const char *name,
		void *buf, size_t size, size_t *len);
int fs_listxattr(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, void *buf,
		 size_t size, size_t *len);
int fs_setxattr(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, const char *name,
		const void *value, size_t size, int flags, uint32_t setxattr_flags);
int fs_removexattr(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, const char *name);
int fs_getlk(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	     uint64_t owner, struct fuse_file_lock *lk);
int fs_setlk(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	     uint64_t owner, const struct fuse_file_lock *lk, bool is_flock, bool wait);
void fs_forget_lock_owner(void *fs, uint64_t nodeid, uint64_t owner);
/* Closes the opens of an inode's lock owners (the inode is going). */
void fs_lock_owners_free(struct fs_inode *inode);

#endif
