/*
 * Migration of one daemon's state (docs/migration.md): SAVE on the source collects what the
 * guest relies on from the inode and handle tables and the FUSE session (collect.c) and
 * encodes it; LOAD on the destination decodes it and rebuilds the tables with the same node
 * ids and handle numbers (apply.c). Both run with the rings stopped.
 */
#ifndef VFSD_MIGRATE_MIGRATE_H
#define VFSD_MIGRATE_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "fuse/server.h"
#include "migrate/state.h"

struct vfsd_passthrough;

/* The state as bytes in the format --migration-format names (*buf malloc'd); 0 or -errno
 * (logged). */
int migrate_save(struct vfsd_passthrough *fs, struct fuse_server *srv, uint8_t **buf,
		 size_t *len);
/* Replaces the session and tables by the state in buf (either format); 0 or -errno
 * (logged). On failure the daemon has no session: the VMM may LOAD again, or the guest
 * start over with INIT. */
int migrate_load(struct vfsd_passthrough *fs, struct fuse_server *srv, const uint8_t *buf,
		 size_t len);

/* The file handle of the object open on fd (name_to_handle_at, which needs no capability):
 * 0, or -errno (-EOVERFLOW past MIG_FH_MAX bytes). */
int migrate_fh_of(int fd, struct mig_fh *out);

/* The two halves, on the model (for tests). */
int migrate_collect(struct vfsd_passthrough *fs, struct fuse_server *srv, struct mig_state *s);
int migrate_apply(struct vfsd_passthrough *fs, struct fuse_server *srv,
		  const struct mig_state *s);

#endif
