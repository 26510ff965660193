/*
 * --inode-file-handles: inodes held by file handles instead of O_PATH fds, so an inode the
 * guest knows but does not use costs no fd. A handle is opened again (open_by_handle_at,
 * CAP_DAC_READ_SEARCH) while the inode is in use. open_by_handle_at needs an fd on the
 * handle's mount that is not O_PATH: the mount table keeps one per mount, the first
 * directory or regular file vfsd meets there, opened read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "fs/internal.h"

/* The mount's fd, found or made from fd (an O_PATH fd of an object on it); -1 if none. */
static int mount_fd_for(struct vfsd_passthrough *fs, uint64_t mnt_id, int fd, mode_t type)
{
	struct fs_mount *m;
	char name[16];
	int mfd = -1;

	pthread_mutex_lock(&fs->mounts_lock);
	for (size_t i = 0; i < fs->nmounts; i++) {
		if (fs->mounts[i].id == mnt_id) {
			mfd = fs->mounts[i].fd;
			break;
		}
	}
	if (mfd < 0 && (type == S_IFDIR || type == S_IFREG)) {
		snprintf(name, sizeof(name), "%d", fd);
		mfd = openat(fs->proc_self_fd, name,
			     O_RDONLY | O_NONBLOCK | O_CLOEXEC | (type == S_IFDIR ? O_DIRECTORY : 0));
		m = mfd < 0 ? NULL : realloc(fs->mounts, (fs->nmounts + 1) * sizeof(*m));
		if (m) {
			fs->mounts = m;
			m[fs->nmounts].id = mnt_id;
			m[fs->nmounts].fd = mfd;
			fs->nmounts++;
		} else if (mfd >= 0) {
			close(mfd);
			mfd = -1;
		}
	}
	pthread_mutex_unlock(&fs->mounts_lock);
	return mfd;
}

static void warn_fallback(struct vfsd_passthrough *fs, uint64_t mnt_id, const char *why)
{
	bool first;

	pthread_mutex_lock(&fs->mounts_lock);
	first = !fs->handles_warned;
	fs->handles_warned = true;
	pthread_mutex_unlock(&fs->mounts_lock);
	if (first)
		log_warn("file handles: mount %llu: %s; its inodes are held by O_PATH fds (logged once)",
			 (unsigned long long)mnt_id, why);
}

/* As virtiofsd: a handle larger than FH_MAX_BYTES is "unsupported" (EOVERFLOW). Every
 * lookup makes one, on the caller's stack: only a new inode keeps a copy (khandle_dup). */
int khandle_of(struct vfsd_passthrough *fs, int fd, const struct statx *st, struct khandle_buf *buf,
	  struct file_handle **out, int *mount_fd)
{
	struct file_handle *fh = (struct file_handle *)(void *)buf->raw;
	int mnt, mfd, err;

	*out = NULL;
	*mount_fd = -1;
	if (!fs->use_khandles)
		return 0;
	fh->handle_bytes = FH_MAX_BYTES;
	if (name_to_handle_at(fd, "", fh, &mnt, AT_EMPTY_PATH) < 0) {
		err = errno;
		if (err != EOPNOTSUPP && err != EOVERFLOW)
			return -err;
		if (fs->cfg.file_handles == VFSD_FILE_HANDLES_MANDATORY) {
			log_warn("file handles: mount %llu has none: %s",
				 (unsigned long long)st->stx_mnt_id, strerror(err));
			return -EOPNOTSUPP;
		}
		warn_fallback(fs, st->stx_mnt_id, strerror(err));
		return 0;
	}
	/* The mount id name_to_handle_at reports: the one open_by_handle_at will need, also
	 * where statx has no STATX_MNT_ID. */
	mfd = mount_fd_for(fs, (uint64_t)mnt, fd, st->stx_mode & S_IFMT);
	if (mfd < 0) {
		if (fs->cfg.file_handles == VFSD_FILE_HANDLES_MANDATORY)
			return -EOPNOTSUPP;
		warn_fallback(fs, st->stx_mnt_id, "no directory or file of it can be opened");
		return 0;
	}
	*out = fh;
	*mount_fd = mfd;
	return 0;
}

int khandle_open(const struct fs_inode *inode)
{
	int fd = open_by_handle_at(inode->mount_fd, inode->khandle, O_PATH | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

struct file_handle *khandle_dup(const struct file_handle *fh)
{
	size_t size = sizeof(*fh) + fh->handle_bytes;
	struct file_handle *copy = malloc(size);

	if (copy)
		memcpy(copy, fh, size);
	return copy;
}

bool khandle_equal(const struct file_handle *a, const struct file_handle *b)
{
	return a->handle_type == b->handle_type && a->handle_bytes == b->handle_bytes &&
	       memcmp(a->f_handle, b->f_handle, a->handle_bytes) == 0;
}

int khandle_start(struct vfsd_passthrough *fs)
{
	struct statx st;
	struct khandle_buf buf;
	struct file_handle *fh;
	int mfd, fd, r;

	if (fs->cfg.file_handles == VFSD_FILE_HANDLES_NEVER)
		return 0;
	/* The root's handle, opened again: this proves the filesystem and the capability. */
	fs->use_khandles = true;
	r = fs_stat(fs->root_fd, &st);
	if (r == 0)
		r = khandle_of(fs, fs->root_fd, &st, &buf, &fh, &mfd);
	if (r == 0 && !fh)
		r = -EOPNOTSUPP;
	if (r == 0) {
		struct fs_inode probe = { .khandle = fh, .mount_fd = mfd };

		fd = khandle_open(&probe);
		if (fd < 0)
			r = fd;
		else
			close(fd);
	}
	if (r == 0)
		return 0;
	fs->use_khandles = false;
	if (fs->cfg.file_handles == VFSD_FILE_HANDLES_MANDATORY) {
		log_error("--inode-file-handles=mandatory: the shared directory's file handles cannot be used: %s",
			  strerror(-r));
		return r;
	}
	log_warn("--inode-file-handles=prefer: file handles cannot be used (%s); inodes are held by O_PATH fds",
		 strerror(-r));
	return 0;
}

void khandle_stop(struct vfsd_passthrough *fs)
{
	for (size_t i = 0; i < fs->nmounts; i++)
		close(fs->mounts[i].fd);
	free(fs->mounts);
	fs->mounts = NULL;
	fs->nmounts = 0;
}
