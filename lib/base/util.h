/* Small helpers shared by every layer: iovec copies, parsing of numbers. */
#ifndef VFSD_BASE_UTIL_H
#define VFSD_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A reply length that means "answered later" (a SETLKW that waits), from the FUSE server
 * through the daemon to a transport: one sentinel for every layer. */
#define VFSD_DEFERRED UINT32_MAX
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Total length of an iovec array; saturates at SIZE_MAX. */
size_t iov_length(const struct iovec *iov, int cnt);

/* Copies up to len bytes starting at byte offset off of iov into buf; returns bytes copied. */
size_t iov_to_buf(const struct iovec *iov, int cnt, size_t off, void *buf, size_t len);

/* Copies len bytes of buf into iov starting at byte offset off; returns bytes copied. */
size_t iov_from_buf(const struct iovec *iov, int cnt, size_t off, const void *buf, size_t len);

/*
 * Fills dst (capacity dst_max) with the part of src that starts at byte offset off and is at
 * most len bytes long. Returns the number of entries used.
 */
int iov_slice(const struct iovec *src, int cnt, size_t off, size_t len, struct iovec *dst,
	      int dst_max);

/* Parses a whole string as an unsigned decimal number no larger than max. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/*
 * Whole-stream I/O on an fd that may be non-blocking (a pipe or socket a peer passed): EINTR
 * and EAGAIN wait (poll) up to timeout_ms in all, -1 forever. fd_write_all returns 0 or
 * -errno (-ETIMEDOUT); fd_read_all reads to EOF into a malloc'd *out (-EFBIG past max bytes).
 * Both poll before each step, so the deadline holds on blocking fds too. A pipe whose reader
 * went away raises SIGPIPE (the daemon ignores it); a socket's gives -EPIPE.
 */
int fd_write_all(int fd, const void *buf, size_t len, int timeout_ms);
int fd_read_all(int fd, size_t max, int timeout_ms, uint8_t **out, size_t *outlen);

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF):
 * the length of the character at s (left bytes remain), or 0 if none starts there; and
 * whether all len bytes are such characters. */
size_t utf8_char_len(const unsigned char *s, size_t left);
bool utf8_valid(const void *s, size_t len);

#endif
