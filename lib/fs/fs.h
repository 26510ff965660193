/*
 * The filesystem contract behind the FUSE server. Every member returns 0 or a negative
 * errno; on 0 the output arguments are filled. Node ids and file handles are the numbers
 * the guest knows: they are checked here, never trusted.
 */
#ifndef VFSD_FS_FS_H
#define VFSD_FS_FS_H

#include <linux/fuse.h>
/* Protocol 7.38's INIT flag that Debian 12's UAPI header (Linux 6.1) lacks. */
#ifndef FUSE_CREATE_SUPP_GROUP
#define FUSE_CREATE_SUPP_GROUP (1ULL << 34)
#endif
#include <linux/limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fs/idmap.h"
#include "fs/xattrmap.h"

/* INIT flags newer than the UAPI headers of Debian 12 (Linux 6.1). */
#ifndef FUSE_DIRECT_IO_ALLOW_MMAP
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#endif

/* Who asked: the credentials of the guest process behind the request. */
struct vfsd_req_ctx {
	uint32_t uid;
	uint32_t gid;
	uint32_t pid;
	/* Request extensions of the creating ops (CREATE, MKNOD, MKDIR, SYMLINK, TMPFILE):
	 * supplementary groups of the creator (CREATE_SUPP_GROUP; guest ids), and the security
	 * context to store on the new inode (SECURITY_CTX; secctx_name NULL when none). */
	const uint32_t *groups;
	uint32_t ngroups;
	const char *secctx_name;
	const void *secctx;
	uint32_t secctx_len;
};

/* Where READDIR/READDIRPLUS entries go; add() returns -ENOSPC when the next one does not fit. */
struct vfsd_dirbuf {
	uint8_t *buf;
	size_t size;
	size_t used;
	bool plus;
};

/*
 * Appends one entry (entry is used only in plus mode and may be NULL for "." and "..").
 * Returns 0 or -ENOSPC.
 */
int vfsd_dirbuf_add(struct vfsd_dirbuf *db, const char *name, size_t namelen, uint64_t ino,
		    uint64_t off, uint32_t type, const struct fuse_entry_out *entry);

struct vfsd_fs_ops {
	/* New session (INIT): drop any previous state, open the root; *want gets FUSE_* flags
	 * the filesystem asks for, given what the kernel is capable of. */
	int (*init)(void *fs, uint64_t capable, uint64_t *want);
	/* End of session (DESTROY, device reset): drop every inode and handle. */
	void (*destroy)(void *fs);
	/* Resolves name in parent; the node's lookup count goes up by one. */
	int (*lookup)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
		      struct fuse_entry_out *out);
	/* Drops nlookup references; unknown ids are ignored. */
	void (*forget)(void *fs, uint64_t nodeid, uint64_t nlookup);
	int (*getattr)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
		       struct fuse_attr_out *out);
	int (*setattr)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
		       const struct fuse_setattr_in *in, struct fuse_attr_out *out);
	/* Target of a symlink, not NUL-terminated; *len is its length. */
	int (*readlink)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, char *buf,
			size_t size, size_t *len);
	int (*symlink)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
		       const char *target, struct fuse_entry_out *out);
	int (*mknod)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
		     uint32_t mode, uint32_t rdev, uint32_t umask, struct fuse_entry_out *out);
	int (*mkdir)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
		     uint32_t mode, uint32_t umask, struct fuse_entry_out *out);
	int (*unlink)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name);
	int (*rmdir)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name);
	/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT. */
	int (*rename)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t olddir, const char *oldname,
		      uint64_t newdir, const char *newname, uint32_t flags);
	int (*link)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t newparent,
		    const char *newname, struct fuse_entry_out *out);
	int (*open)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t flags,
		    uint32_t open_flags, struct fuse_open_out *out);
	int (*create)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, const char *name,
		      uint32_t flags, uint32_t mode, uint32_t umask, uint32_t open_flags,
		      struct fuse_entry_out *entry, struct fuse_open_out *open);
	/* An unnamed open file in the directory parent (O_TMPFILE), linkable unless O_EXCL. */
	int (*tmpfile)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t parent, uint32_t flags,
		       uint32_t mode, uint32_t umask, uint32_t open_flags,
		       struct fuse_entry_out *entry, struct fuse_open_out *open);
	/* Reads up to size bytes at off straight into dst; *done is the count (0 at EOF). */
	int (*read)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		    uint64_t off, size_t size, const struct iovec *dst, int cnt, size_t *done);
	/* Writes the bytes of src at off (write_in.flags carries the guest's O_APPEND). */
	int (*write)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		     uint64_t off, uint32_t write_flags, uint32_t flags, const struct iovec *src,
		     int cnt, size_t *done);
	int (*statfs)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
		      struct fuse_kstatfs *out);
	/* Ends a handle from OPEN/CREATE/OPENDIR. */
	int (*release)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh);
	int (*flush)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh);
	int (*fsync)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		     bool datasync);
	int (*opendir)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t flags,
		       struct fuse_open_out *out);
	/* Fills db from directory offset off; in plus mode each entry is looked up. */
	int (*readdir)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		       uint64_t off, struct vfsd_dirbuf *db);
	int (*access)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint32_t mask);
	/* fallocate(2) on the handle's file, any mode the host supports. */
	int (*fallocate)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
			 uint32_t mode, uint64_t off, uint64_t len);
	/* lseek(2) on the handle's file (SEEK_DATA and SEEK_HOLE included); *out is the result. */
	int (*lseek)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		     uint64_t off, uint32_t whence, uint64_t *out);
	/* copy_file_range(2) between two handles; *done is the count copied. */
	int (*copy_file_range)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid_in,
			       uint64_t fh_in, uint64_t off_in, uint64_t nodeid_out, uint64_t fh_out,
			       uint64_t off_out, uint64_t len, uint64_t flags, size_t *done);
	/* syncfs(2) of the filesystem the inode lives on. */
	int (*syncfs)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid);
	/* Extended attributes of the inode itself (a symlink's own, never its target's).
	 * getxattr/listxattr with size 0 set *len to the room needed. */
	int (*getxattr)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, const char *name,
			void *buf, size_t size, size_t *len);
	int (*listxattr)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, void *buf,
			 size_t size, size_t *len);
	/* flags: XATTR_CREATE, XATTR_REPLACE. */
	/* setxattr_flags: FUSE_SETXATTR_ACL_KILL_SGID (with SETXATTR_EXT). */
	int (*setxattr)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, const char *name,
			const void *value, size_t size, int flags, uint32_t setxattr_flags);
	int (*removexattr)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid,
			   const char *name);
	/*
	 * Locks the host sees. POSIX record locks belong to owner; flock (is_flock) locks to the
	 * handle fh. getlk answers the first conflicting lock, or type F_UNLCK. setlk with wait
	 * blocks until the lock is granted or the thread gets a signal (-EINTR); without wait a
	 * conflict is -EAGAIN.
	 */
	int (*getlk)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		     uint64_t owner, struct fuse_file_lock *lk);
	int (*setlk)(void *fs, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
		     uint64_t owner, const struct fuse_file_lock *lk, bool is_flock, bool wait);
	/* The owner closed the file (FLUSH): its POSIX locks on nodeid go. */
	void (*forget_lock_owner)(void *fs, uint64_t nodeid, uint64_t owner);
};

enum vfsd_cache_policy {
	VFSD_CACHE_NEVER,
	VFSD_CACHE_METADATA,
	VFSD_CACHE_AUTO,
	VFSD_CACHE_ALWAYS,
};

/* --inode-file-handles: how inodes not in use are held. */
enum vfsd_file_handles {
	VFSD_FILE_HANDLES_NEVER,     /* an O_PATH fd each */
	VFSD_FILE_HANDLES_PREFER,    /* a file handle where the filesystem has them, else an fd */
	VFSD_FILE_HANDLES_MANDATORY, /* a file handle; EOPNOTSUPP where there is none */
};

/* How a SAVE describes each inode (--migration-mode). */
enum vfsd_migration_mode {
	VFSD_MIGRATION_FIND_PATHS,   /* by its path in the shared directory */
	VFSD_MIGRATION_FILE_HANDLES, /* by its file handle (same filesystem on both sides) */
};

struct vfsd_fs_config {
	const char *root_dir;	/* path opened as the root inode ("/" inside a sandbox) */
	int proc_self_fd;	/* O_PATH fd of /proc/self/fd, for re-opening inodes */
	enum vfsd_cache_policy cache;
	bool readonly;
	bool readdirplus;
	enum vfsd_file_handles file_handles;
	bool xattr;		/* the four xattr ops; off: ENOSYS */
	bool posix_acl;		/* ask for POSIX_ACL (+ DONT_MASK, SETXATTR_EXT): host ACLs */
	bool security_label;	/* ask for SECURITY_CTX: store the guest's label on creation */
	bool announce_submounts; /* mark mount points with FUSE_ATTR_SUBMOUNT */
	bool writeback;		/* ask for WRITEBACK_CACHE */
	bool allow_direct_io;	/* keep the guest's O_DIRECT */
	bool allow_mmap;	/* ask for DIRECT_IO_ALLOW_MMAP */
	bool preserve_noatime;	/* keep the guest's O_NOATIME */
	bool killpriv_v2;	/* ask for HANDLE_KILLPRIV_V2: the host drops set-id bits */
	bool posix_lock;	/* POSIX locks through the daemon (POSIX_LOCKS); off: ENOSYS */
	bool flock;		/* flock locks through the daemon (FLOCK_LOCKS); off: ENOSYS */
	/* fds the daemon may hold for the guest (inodes' O_PATH fds, open files); 0: no limit */
	long guest_fd_limit;
	/* --xattrmap (NULL: names pass as they are); owned by the caller */
	const struct vfsd_xattrmap *xattrmap;
	/* --translate-uid / --translate-gid (NULL: ids pass as they are); owned by the caller */
	const struct vfsd_idmap *uid_map, *gid_map;
	/* Migration (docs/migration.md). */
	enum vfsd_migration_mode migration_mode;
	bool migration_guest_error;    /* --migration-on-error=guest-error (else abort) */
	bool migration_verify_handles; /* send each inode's file handle for the destination */
	bool migration_confirm_paths;  /* a SAVE fails unless every path is confirmed */
	int migration_format;	       /* enum mig_format SAVE writes */
};

struct vfsd_passthrough;

extern const struct vfsd_fs_ops vfsd_passthrough_ops;

/* Creates the passthrough filesystem; it takes ownership of cfg->proc_self_fd. */
int vfsd_passthrough_new(const struct vfsd_fs_config *cfg, struct vfsd_passthrough **out);
void vfsd_passthrough_free(struct vfsd_passthrough *fs);
/* Gives the calling thread its own cwd and umask (every thread that serves requests). */
void vfsd_passthrough_thread_init(void);

#endif
