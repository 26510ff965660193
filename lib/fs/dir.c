/* Directory listing: READDIR and READDIRPLUS from the host's getdents64 stream. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"
#include "fs/internal.h"

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Adds one host entry; in plus mode looks it up first. Returns 0, -ENOSPC or a lookup error. */
static int emit(struct vfsd_passthrough *fs, struct fs_inode *dir, struct vfsd_dirbuf *db,
		const struct linux_dirent64 *d)
{
	size_t namelen = strlen(d->d_name);
	struct fuse_entry_out e;
	int r;

	if (!db->plus || is_dot_or_dotdot(d->d_name)) {
		const struct fuse_entry_out *pe = NULL;

		if (db->plus) {
			memset(&e, 0, sizeof(e));
			e.attr.ino = d->d_ino;
			e.attr.mode = (uint32_t)d->d_type << 12;
			pe = &e;
		}
		return vfsd_dirbuf_add(db, d->d_name, namelen, d->d_ino, d->d_off, d->d_type, pe);
	}
	/* Check the room first so that a lookup is not done for an entry that cannot be sent. */
	if (FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen) > db->size - db->used)
		return -ENOSPC;
	/*
	 * An entry no inode on the directory's device has is new to the guest: opened at once
	 * (fs_lookup_at would stat the name first to ask the table). That is every entry of a
	 * cold listing (`ls -l` of a directory the guest has not seen). A known number goes the
	 * usual way, which also catches a mount point (the name's object is on another device).
	 */
	if (!inode_known_ino(fs, dir->dev, d->d_ino, dir->mnt_id))
		r = fs_lookup_open(fs, dir, d->d_name, &e);
	else
		r = fs_lookup_at(fs, dir, d->d_name, &e);
	if (r < 0)
		return r;
	r = vfsd_dirbuf_add(db, d->d_name, namelen, e.attr.ino, d->d_off, d->d_type, &e);
	if (r < 0)
		fs_forget(fs, e.nodeid, 1);
	return r;
}

#define DENTS_SIZE 32768

int fs_readdir(void *opaque, const struct vfsd_req_ctx *ctx, uint64_t nodeid, uint64_t fh,
	       uint64_t off, struct vfsd_dirbuf *db)
{
	struct vfsd_passthrough *fs = opaque;
	struct fs_handle *h = handle_get(fs, nodeid, fh);
	int r = 0;

	(void)ctx;
	if (!h)
		return -EBADF;
	pthread_mutex_lock(&h->lock);
	if (!h->dents) {
		h->dents = malloc(DENTS_SIZE);
		if (!h->dents) {
			r = -ENOMEM;
			goto out;
		}
	}
	/* The guest usually asks for the offset where the last reply stopped: go on from there. */
	if (off != h->dir_off) {
		if (lseek(h->fd, (off_t)off, SEEK_SET) < 0) {
			r = -errno;
			goto out;
		}
		h->dents_len = h->dents_pos = 0;
		h->dir_off = off;
	}
	for (;;) {
		const struct linux_dirent64 *d;
		int e;

		if (h->dents_pos >= h->dents_len) {
			long n = syscall(SYS_getdents64, h->fd, h->dents, DENTS_SIZE);

			if (n < 0) {
				r = db->used ? 0 : -errno;
				break;
			}
			if (n == 0)
				break;
			h->dents_len = (size_t)n;
			h->dents_pos = 0;
		}
		d = (const void *)(h->dents + h->dents_pos);
		e = emit(fs, h->inode, db, d);
		if (e == -ENOSPC)
			break;
		if (e < 0 && e != -ENOENT) {
			/* A name that cannot be looked up: an error only if nothing was sent. */
			if (db->used == 0)
				r = e;
			break;
		}
		/* Sent, or removed since getdents64 saw it (no longer part of the listing). */
		h->dents_pos += d->d_reclen;
		h->dir_off = (uint64_t)d->d_off;
	}
out:
	pthread_mutex_unlock(&h->lock);
	handle_put(fs, h);
	return r;
}
