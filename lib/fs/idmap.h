/* Soft UID/GID translation (--translate-uid, --translate-gid): ids as the guest sees them and
 * as the host stores them, without a user namespace. */
#ifndef VFSD_FS_IDMAP_H
#define VFSD_FS_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vfsd_idmap_range {
	uint32_t from, to;
	uint64_t count;
	enum { IDMAP_SHIFT, IDMAP_SQUASH, IDMAP_FORBID } kind;
};

struct vfsd_idmap_dir {
	struct vfsd_idmap_range *r;
	size_t n;
};

/* One per id kind (uids, gids): the two directions are independent. */
struct vfsd_idmap {
	struct vfsd_idmap_dir to_host, to_guest;
};

/*
 * Adds one rule in virtiofsd's grammar, "<type><sep><n1><sep><n2>[<sep><n3>]": guest,
 * host, squash-guest, squash-host, forbid-guest or map (e.g. "map:1000:2000:1"). Returns 0;
 * -EINVAL for a malformed rule (a command-line error); -ERANGE when base + count passes
 * 2^32, -EEXIST when the range meets an earlier one of the same direction. err gets the
 * message.
 */
int vfsd_idmap_add(struct vfsd_idmap *m, const char *spec, char *err, size_t errlen);
void vfsd_idmap_free(struct vfsd_idmap *m);

/* Guest id -> host id; -EPERM for an id a forbid-guest rule covers. A NULL map is identity. */
int vfsd_idmap_to_host(const struct vfsd_idmap *m, uint32_t guest, uint32_t *host);
/* Host id -> guest id. */
uint32_t vfsd_idmap_to_guest(const struct vfsd_idmap *m, uint32_t host);

#endif
