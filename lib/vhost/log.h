/*
 * Dirty logging for live migration: while the VMM copies guest memory to the destination,
 * every byte vfsd writes into guest memory (replies, READ payloads, used-ring updates) marks
 * its page in a bitmap the VMM shares with us (SET_LOG_BASE), so that the VMM copies that
 * page again. One bit per 4 KiB guest-physical page, set atomically.
 */
#ifndef VFSD_VHOST_LOG_H
#define VFSD_VHOST_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost/guest_mem.h"

#define VHOST_LOG_PAGE 4096

struct vhost_log {
	uint8_t *bits;	/* the shared bitmap, NULL when none was given */
	size_t size;	/* bytes of it */
	void *map_base; /* what mmap returned */
	size_t map_len;
	int call_fd;	/* SET_LOG_FD: written after marks, -1 if none */
	bool overflow_warned;
};

/* Maps the bitmap (size bytes of fd at offset); the old one, if any, is unmapped. */
int vhost_log_set(struct vhost_log *log, int fd, uint64_t size, uint64_t offset);
void vhost_log_clear(struct vhost_log *log);
/* Marks the pages of [gpa, gpa+len). */
void vhost_log_gpa(struct vhost_log *log, uint64_t gpa, uint64_t len);
/* Marks the pages under the first len bytes of the iovecs (host pointers into mem). */
void vhost_log_iov(struct vhost_log *log, const struct guest_mem *mem, const struct iovec *iov,
		   int cnt, size_t len);
/* Tells the VMM the log changed (SET_LOG_FD), if it asked to be told. */
void vhost_log_kick(struct vhost_log *log);

#endif
