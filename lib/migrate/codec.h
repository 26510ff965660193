/*
 * Inside lib/migrate: what vfsd's format (native.c) and the Rust virtiofsd's (postcard.c)
 * both need to write and read a stream, and state.c's checks: a growing output buffer, a
 * bounded reader that keeps its first failure with a sentence, and small helpers.
 */
#ifndef VFSD_MIGRATE_CODEC_H
#define VFSD_MIGRATE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/state.h"

/* The stream being written; rc keeps the first failure, and later writes do nothing. */
struct mig_wbuf {
	uint8_t *p;
	size_t len, cap;
	int rc; /* -ENOMEM, or -EFBIG past MIG_STREAM_MAX */
};

void mig_put(struct mig_wbuf *w, const void *src, size_t n);

/* The stream being read; rc keeps the first failure, and later reads yield zeros. */
struct mig_rd {
	const uint8_t *p;
	size_t pos, end;
	int rc;
	bool truncated; /* rc says the stream ended early */
	char *err;
	size_t errlen;
};

void mig_refuse(struct mig_rd *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mig_oom(struct mig_rd *r);
/* The next n bytes, or NULL (and the stream is truncated). */
const uint8_t *mig_take(struct mig_rd *r, size_t n, const char *what);
/* A count of records of at least min bytes each: within max, and within what is left. */
bool mig_count_ok(struct mig_rd *r, uint64_t n, uint64_t max, size_t min, const char *what);
/* n bytes at p as a NUL-terminated copy (a NUL inside refused); NULL on failure. */
char *mig_copy_str(struct mig_rd *r, const uint8_t *p, size_t n, const char *what);

/* A sentence into err; returns -EINVAL. */
int mig_bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int mig_cmp_u64(const void *a, const void *b);

#endif
