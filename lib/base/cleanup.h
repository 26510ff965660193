/* Cleanup by attribute, with explicit ownership hand-off (take_fd / take_ptr). */
#ifndef VFSD_BASE_CLEANUP_H
#define VFSD_BASE_CLEANUP_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static inline void vfsd_freep(void *p)
{
	free(*(void **)p);
}

/* Closes *fd if it is a valid descriptor, keeps errno, and disarms the variable. */
static inline void vfsd_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
		*fd = -1;
	}
}

#define cleanup_free __attribute__((cleanup(vfsd_freep)))
#define cleanup_close __attribute__((cleanup(vfsd_closep)))

/* Hands ownership out of a cleanup variable. */
static inline int take_fd_impl(int *fd)
{
	int v = *fd;

	*fd = -1;
	return v;
}
#define take_fd(fd) take_fd_impl(&(fd))
#define take_ptr(p)                          \
	({                                   \
		__typeof__(p) taken_ = (p); \
		(p) = NULL;                  \
		taken_;                      \
	})

#endif
