#include "migrate/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mig_put(struct mig_wbuf *w, const void *src, size_t n)
{
	if (w->rc || n == 0)
		return;
	if (n > MIG_STREAM_MAX - w->len) {
		w->rc = -EFBIG;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *q;

		while (cap < w->len + n)
			cap *= 2;
		q = realloc(w->p, cap);
		if (!q) {
			w->rc = -ENOMEM;
			return;
		}
		w->p = q;
		w->cap = cap;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

void mig_refuse(struct mig_rd *r, int rc, const char *fmt, ...)
{
	va_list ap;

	if (r->rc)
		return;
	r->rc = rc;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
}

void mig_oom(struct mig_rd *r)
{
	mig_refuse(r, -ENOMEM, "out of memory decoding the device state");
}

const uint8_t *mig_take(struct mig_rd *r, size_t n, const char *what)
{
	const uint8_t *p = r->p + r->pos;

	if (r->rc)
		return NULL;
	if (r->end - r->pos < n) {
		mig_refuse(r, -EINVAL, "state stream is truncated (%s at byte %zu)", what, r->pos);
		r->truncated = true;
		return NULL;
	}
	r->pos += n;
	return p;
}

bool mig_count_ok(struct mig_rd *r, uint64_t n, uint64_t max, size_t min, const char *what)
{
	if (r->rc)
		return false;
	if (n > max) {
		mig_refuse(r, -EINVAL,
			   "state stream has %" PRIu64 " %s, more than the %" PRIu64 " accepted", n,
			   what, max);
		return false;
	}
	if (n > (r->end - r->pos) / min) {
		mig_refuse(r, -EINVAL,
			   "state stream is truncated (%" PRIu64
			   " %s cannot fit in the %zu bytes left at byte %zu)",
			   n, what, r->end - r->pos, r->pos);
		r->truncated = true;
		return false;
	}
	return true;
}

char *mig_copy_str(struct mig_rd *r, const uint8_t *p, size_t n, const char *what)
{
	char *s;

	if (!p)
		return NULL;
	if (memchr(p, '\0', n)) {
		mig_refuse(r, -EINVAL, "state stream has %s with a NUL byte at byte %zu", what,
			   r->pos - n);
		return NULL;
	}
	s = malloc(n + 1);
	if (!s) {
		mig_oom(r);
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int mig_bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int mig_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}
