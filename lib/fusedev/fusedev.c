#include "fusedev/fusedev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "base/log.h"

#define FAIL(...)                                         \
	do {                                              \
		int saved_ = errno ? errno : EINVAL;      \
		snprintf(err, errlen, __VA_ARGS__);       \
		return -saved_;                           \
	} while (0)

/* True if path is dir or below it (both canonical). */
static bool is_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int fusedev_mount(const char *mountpoint, const char *shared_dir, int *fd_out, char *err,
		  size_t errlen)
{
	char real_mp[PATH_MAX], real_share[PATH_MAX], opts[128];
	int fd;

	errno = 0;
	if (!realpath(mountpoint, real_mp))
		FAIL("fuse mount point %s: %s", mountpoint, strerror(errno));
	if (!realpath(shared_dir, real_share))
		FAIL("%s: %s", shared_dir, strerror(errno));
	if (is_within(real_mp, real_share) || is_within(real_share, real_mp)) {
		errno = EINVAL;
		FAIL("fuse mount point %s must be outside the shared directory %s (and not contain it)",
		     real_mp, real_share);
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		FAIL("cannot open /dev/fuse: %s", strerror(errno));
	/* As a virtio-fs guest mounts it: the kernel checks permissions, every user may enter. */
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=%u,group_id=%u,default_permissions,allow_other", fd,
		 (unsigned int)getuid(), (unsigned int)getgid());
	if (mount("vfsd", real_mp, "fuse.vfsd", MS_NOSUID, opts) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		FAIL("cannot mount /dev/fuse on %s: %s%s", real_mp, strerror(saved),
		     saved == EPERM ? " (needs CAP_SYS_ADMIN in the mount's user namespace)" : "");
	}
	*fd_out = fd;
	return 0;
}

struct fusedev {
	int fd;
	struct fuse_server *srv;
	void (*thread_init)(void);
	pthread_mutex_t lock;
	int error; /* guarded by lock: the first reader's fatal error, or 0 */
};

/* A reply, now or later: the kernel matches it by its unique. */
static void send_reply(struct fusedev *dev, const void *reply, uint32_t len)
{
	if (write(dev->fd, reply, len) >= 0)
		return;
	/* ENOENT: the request was interrupted and is gone; ENODEV: unmounted meanwhile. */
	if (errno != ENOENT && errno != ENODEV)
		log_warn("fuse: cannot write a reply: %s", strerror(errno));
}

static void *defer_request(void *opaque, void *treq)
{
	(void)treq;
	return opaque;
}

static void complete_request(void *token, const void *reply, uint32_t len)
{
	send_reply(token, reply, len);
}

static void *reader(void *arg)
{
	struct fusedev *dev = arg;
	size_t in_size = FUSE_SERVER_MAX_REQUEST, out_size = FUSE_SERVER_MAX_BUFFER + 4096;
	char *in = malloc(in_size), *out = malloc(out_size);
	int error = 0;

	if (dev->thread_init)
		dev->thread_init();
	if (!in || !out) {
		error = -ENOMEM;
		goto done;
	}
	for (;;) {
		ssize_t n = read(dev->fd, in, in_size);
		struct iovec rd, wr = { .iov_base = out, .iov_len = out_size };
		uint32_t len;

		if (n < 0) {
			/* ENOENT: a request was interrupted before it reached us. */
			if (errno == EINTR || errno == EAGAIN || errno == ENOENT)
				continue;
			if (errno != ENODEV) /* ENODEV: unmounted, the normal end */
				error = -errno;
			break;
		}
		rd.iov_base = in;
		rd.iov_len = (size_t)n;
		len = fuse_server_handle_async(dev->srv, &rd, 1, &wr, 1, dev);
		if (len != VFSD_DEFERRED && len > 0)
			send_reply(dev, out, len);
	}
done:
	free(in);
	free(out);
	if (error) {
		pthread_mutex_lock(&dev->lock);
		if (!dev->error)
			dev->error = error;
		pthread_mutex_unlock(&dev->lock);
	}
	return NULL;
}

int fusedev_serve(int fd, struct fuse_server *srv, unsigned int nthreads,
		  void (*thread_init)(void))
{
	struct fusedev dev = { .fd = fd, .srv = srv, .thread_init = thread_init };
	struct fuse_transport transport = { .defer = defer_request,
					    .complete = complete_request,
					    .opaque = &dev };
	pthread_t *threads;
	unsigned int started = 0;

	if (nthreads == 0)
		nthreads = 1;
	threads = calloc(nthreads, sizeof(*threads));
	if (!threads)
		return -ENOMEM;
	pthread_mutex_init(&dev.lock, NULL);
	fuse_server_set_transport(srv, &transport);
	for (; started < nthreads; started++) {
		int r = pthread_create(&threads[started], NULL, reader, &dev);

		if (r != 0) {
			log_warn("cannot start a fuse reader thread: %s", strerror(r));
			if (started == 0)
				dev.error = -r;
			break;
		}
	}
	if (started == 0)
		goto out;
	for (unsigned int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	/* Requests still waiting end now, while dev (their transport) exists. */
	fuse_server_cancel_waiters(srv);
out:
	fuse_server_set_transport(srv, &(struct fuse_transport){ 0 });
	free(threads);
	pthread_mutex_destroy(&dev.lock);
	return dev.error;
}
