/*
 * Device state: what a running vfsd knows that the guest relies on (the node ids it holds,
 * their lookup counts, its open handles, the FUSE session it negotiated), in a form that
 * does not depend on this process: every inode is described by how to find it again.
 *
 * The model is filled by migrate_collect() on the source (collect.c), carried as bytes in
 * one of two encodings, and applied by migrate_apply() on the destination (apply.c):
 *  - vfsd's own, versioned format (native.c, docs/migration.md);
 *  - the Rust virtiofsd's postcard stream (postcard.c), so that a VM moves between the two.
 * Decoders treat the bytes as hostile: every count, length and enum is checked, and a bad
 * stream is refused whole with a sentence saying why.
 */
#ifndef VFSD_MIGRATE_STATE_H
#define VFSD_MIGRATE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest stream accepted, and the largest counts, so that a hostile stream cannot make the
 * destination allocate without bound. */
#define MIG_STREAM_MAX (1u << 30)
#define MIG_MAX_INODES (1u << 24)
#define MIG_MAX_HANDLES (1u << 24)
#define MIG_MAX_MOUNTS 4096
#define MIG_NAME_MAX 4096     /* one path or file name, bytes */
#define MIG_FH_MAX 128	      /* file handle bytes (MAX_HANDLE_SZ) */

enum mig_loc {
	MIG_LOC_ROOT,	     /* the shared directory itself (node id 1) */
	MIG_LOC_PATH,	     /* name under another inode of the state (parent) */
	MIG_LOC_FULL_PATH,   /* path relative to the shared directory */
	MIG_LOC_FILE_HANDLE, /* a file handle on a source mount (see mounts) */
	MIG_LOC_INVALID,     /* the source could not say where it is */
};

struct mig_fh {
	uint64_t mnt_id; /* the source's mount id */
	int32_t type;
	uint32_t len;
	uint8_t bytes[MIG_FH_MAX];
};

struct mig_inode {
	uint64_t id;	  /* the node id the guest knows */
	uint64_t nlookup; /* the guest's lookup count (never counts children's records) */
	enum mig_loc loc;
	uint64_t parent;  /* MIG_LOC_PATH */
	char *name;	  /* MIG_LOC_PATH: one component; MIG_LOC_FULL_PATH: a relative path */
	struct mig_fh fh; /* MIG_LOC_FILE_HANDLE */
	bool has_verify;  /* --migration-verify-handles: the object's handle, to check */
	struct mig_fh verify;
};

struct mig_handle {
	uint64_t id;   /* the fh the guest knows */
	uint64_t node; /* its inode's node id */
	int32_t flags; /* open flags (O_CREAT, O_EXCL and O_TRUNC never) */
	bool has_pos;  /* vfsd's format: where the fd stood */
	uint64_t offset;  /* file offset (lseek SEEK_CUR) */
	uint64_t dir_off; /* directories: the offset of the next entry READDIR would send */
};

struct mig_mount {
	uint64_t id;  /* source mount id */
	char *path;   /* its root relative to the shared directory, "." for the share's own */
};

/* The FUSE session negotiated at INIT. */
struct mig_session {
	bool known;	  /* false when the stream does not carry it (the Rust format) */
	uint32_t minor;	  /* the kernel's protocol minor */
	uint64_t enabled; /* FUSE_* flags agreed */
	/* The filesystem's session bits, as the Rust format names them. */
	bool writeback, announce_submounts, posix_acl, sup_groups, killpriv_v2;
};

struct mig_state {
	struct mig_session session;
	struct mig_inode *inodes; /* any order (a slot's generation makes ids jump) */
	size_t ninodes;
	struct mig_handle *handles; /* any order */
	size_t nhandles;
	struct mig_mount *mounts;
	size_t nmounts;
	uint64_t next_inode, next_handle; /* the Rust format's counters (above every id) */
};

enum mig_format {
	MIG_FORMAT_VFSD,      /* vfsd's own (default) */
	MIG_FORMAT_VIRTIOFSD, /* the Rust virtiofsd's postcard stream (its V2) */
};

void mig_state_free(struct mig_state *s);

/* Encoders: *out is malloc'd. 0 or -ENOMEM / -EINVAL (a state that cannot be expressed, with
 * a sentence in err). */
int mig_encode(const struct mig_state *s, enum mig_format f, uint8_t **out, size_t *len,
	       char *err, size_t errlen);
/* Decodes either format (told apart by vfsd's magic); 0 or -EINVAL / -EPROTONOSUPPORT (a
 * version this build does not read) / -ENOMEM, with a sentence in err. On failure *s is
 * empty. */
int mig_decode(const uint8_t *buf, size_t len, struct mig_state *s, char *err, size_t errlen);

/* The two codecs, for tests and the fuzz target. */
int mig_native_encode(const struct mig_state *s, uint8_t **out, size_t *len, char *err,
		      size_t errlen);
int mig_native_decode(const uint8_t *buf, size_t len, struct mig_state *s, char *err,
		      size_t errlen);
int mig_postcard_encode(const struct mig_state *s, uint8_t **out, size_t *len, char *err,
			size_t errlen);
int mig_postcard_decode(const uint8_t *buf, size_t len, struct mig_state *s, char *err,
			size_t errlen);
/* Whether buf starts with vfsd's magic. */
bool mig_native_magic(const uint8_t *buf, size_t len);

/* Checks a decoded state is self-consistent (unique ids, the root present, names that are
 * one component or a relative path without "..", handles on known inodes, counts in range);
 * both decoders call it. */
int mig_state_check(const struct mig_state *s, char *err, size_t errlen);

#endif
