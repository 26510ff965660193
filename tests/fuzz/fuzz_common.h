/* Helpers shared by the libFuzzer targets: invariant checks, fd accounting, input cursor. */
#ifndef VFSD_FUZZ_COMMON_H
#define VFSD_FUZZ_COMMON_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* An invariant of the code under test broke: report it the way libFuzzer reports a crash. */
#define FUZZ_CHECK(cond, ...)                                                        \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__, \
				__LINE__, #cond);                                    \
			fprintf(stderr, __VA_ARGS__);                                \
			fputc('\n', stderr);                                         \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* A string the code under test produced: NUL-terminated within max bytes; its length. */
static inline size_t fuzz_check_str(const char *s, size_t max, const char *what)
{
	size_t n;

	FUZZ_CHECK(s, "%s is NULL", what);
	n = strnlen(s, max + 1);
	FUZZ_CHECK(n <= max, "%s is longer than %zu bytes", what, max);
	return n;
}

/* VFSD_FUZZ_TRACE=1: the targets say what each step of an input did (for replaying one). */
static int fuzz_trace;

/* The library logs nothing unless VFSD_FUZZ_LOG names a level (error, warn, ..., trace). */
static inline void fuzz_log_init(void)
{
	enum vfsd_log_level level = VFSD_LOG_OFF;
	const char *env = getenv("VFSD_FUZZ_LOG");

	if (env && vfsd_log_level_parse(env, &level) < 0)
		level = VFSD_LOG_DEBUG;
	vfsd_log_init(level, false, "vfsd-fuzz");
	fuzz_trace = getenv("VFSD_FUZZ_TRACE") != NULL;
}

/* Open descriptors of this process (the directory stream's own fd excluded). */
static inline int fuzz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the stream's fd */
}

/* A cursor over the fuzz input; reads past the end yield zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint64_t fuzz_take(struct fuzz_in *in, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes && in->left; i++, in->p++, in->left--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

/* Next n bytes (fewer at the end of the input); *got says how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t n, size_t *got)
{
	const uint8_t *p = in->p;

	*got = n < in->left ? n : in->left;
	in->p += *got;
	in->left -= *got;
	return p;
}

#endif
