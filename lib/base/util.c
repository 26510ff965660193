#include "base/util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for events until deadline (-1: none): 0 or -errno. */
static int wait_ready(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int left = -1, r;

	if (deadline >= 0) {
		long long now = mono_ms();

		if (now >= deadline)
			return -ETIMEDOUT;
		left = (int)MIN(deadline - now, (long long)INT32_MAX);
	}
	r = poll(&p, 1, left);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* The most written at once: a pipe that poll calls writable takes this much without
 * blocking (PIPE_BUF), so a blocking fd cannot hold the caller past its deadline. */
#define WRITE_CHUNK 4096

int fd_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	const uint8_t *p = buf;

	while (len > 0) {
		size_t chunk = MIN(len, (size_t)WRITE_CHUNK);
		ssize_t n;
		int r = wait_ready(fd, POLLOUT, deadline);

		if (r < 0)
			return r;
		/* A socket (the peer's fd may block) is asked not to wait at all; sendmsg, which
		 * the daemon's seccomp filter allows (send is sendto). */
		struct iovec iov = { (void *)p, chunk };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, chunk);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fd_read_all(int fd, size_t max, int timeout_ms, uint8_t **out, size_t *outlen)
{
	long long deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	size_t cap = MIN((size_t)65536, max), len = 0;
	uint8_t *buf = malloc(cap + 1);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap && cap < max) {
			size_t ncap = cap > max / 2 ? max : cap * 2;
			uint8_t *nb = realloc(buf, ncap + 1);

			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		/* Readable first: a read then returns what is there (or EOF) without blocking. */
		r = wait_ready(fd, POLLIN, deadline);
		if (r < 0)
			break;
		/* One byte past max (the +1) tells a stream of exactly max from a longer one. */
		n = read(fd, buf + len, (cap < max ? cap : cap + 1) - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			break;
		}
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/*
 * Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
 * The protocol is UTF-8 both ways and json-c does not check it (its own check lets overlong
 * forms and surrogates through): a request's bytes would reach the replies, and a strict
 * client (Python's json.loads, serde_json) could not read them. Returns the length of the
 * character at s (left bytes remain), or 0 if none starts there.
 */
size_t utf8_char_len(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t more;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		more = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		more = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		more = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left <= more)
		return 0;
	for (size_t k = 1; k <= more; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return more + 1;
}

bool utf8_valid(const void *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_char_len((const unsigned char *)s + i, len - i);
		if (!n)
			return false;
	}
	return true;
}
