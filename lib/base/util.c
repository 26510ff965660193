#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t iov_length(const struct iovec *iov, int cnt)
{
	size_t total = 0;

	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - total)
			return SIZE_MAX;
		total += iov[i].iov_len;
	}
	return total;
}

/* Copies between iov (from byte offset off) and buf; to_iov picks the direction. */
static size_t iov_copy(const struct iovec *iov, int cnt, size_t off, void *buf, size_t len,
		       bool to_iov)
{
	size_t done = 0;

	for (int i = 0; i < cnt && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t n = MIN(iov[i].iov_len - off, len - done);
		char *p = (char *)iov[i].iov_base + off;

		if (to_iov)
			memcpy(p, (char *)buf + done, n);
		else
			memcpy((char *)buf + done, p, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, int cnt, size_t off, void *buf, size_t len)
{
	return iov_copy(iov, cnt, off, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, int cnt, size_t off, const void *buf, size_t len)
{
	return iov_copy(iov, cnt, off, (void *)buf, len, true);
}

int iov_slice(const struct iovec *src, int cnt, size_t off, size_t len, struct iovec *dst,
	      int dst_max)
{
	int n = 0;

	for (int i = 0; i < cnt && len > 0 && n < dst_max; i++) {
		if (off >= src[i].iov_len) {
			off -= src[i].iov_len;
			continue;
		}
		size_t take = MIN(src[i].iov_len - off, len);

		dst[n].iov_base = (char *)src[i].iov_base + off;
		dst[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return n;
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0')
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}
