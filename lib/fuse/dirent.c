/* Encoding of READDIR and READDIRPLUS records. */
#include <errno.h>
#include <string.h>

#include "fs/fs.h"

int vfsd_dirbuf_add(struct vfsd_dirbuf *db, const char *name, size_t namelen, uint64_t ino,
		    uint64_t off, uint32_t type, const struct fuse_entry_out *entry)
{
	size_t head = db->plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t rec = FUSE_DIRENT_ALIGN(head + namelen);
	struct fuse_dirent *d;

	if (rec > db->size - db->used)
		return -ENOSPC;
	uint8_t *p = db->buf + db->used;

	if (db->plus) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)p;

		if (entry)
			dp->entry_out = *entry;
		else
			memset(&dp->entry_out, 0, sizeof(dp->entry_out));
		d = &dp->dirent;
	} else {
		d = (struct fuse_dirent *)p;
	}
	d->ino = ino;
	d->off = off;
	d->namelen = namelen;
	d->type = type;
	memcpy(d->name, name, namelen);
	memset(d->name + namelen, 0, rec - head - namelen);
	db->used += rec;
	return 0;
}
