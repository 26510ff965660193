/* The handle table: file handles as slot indexes with generations, each bound to its inode. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "fs/internal.h"
#include "metrics/metrics.h"

int handle_table_init(struct handle_table *t)
{
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

static void handle_free(struct vfsd_passthrough *fs, struct fs_handle *h)
{
	vfsd_closep(&h->fd);
	fs_fd_give(fs);
	free(h->dents);
	inode_put(fs, h->inode);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* A handle on inode for fd (consumed): a new number (place_id NULL) or exactly *place_id. */
static int handle_add(struct vfsd_passthrough *fs, struct fs_inode *inode, int fd,
		      const uint64_t *place_id, uint64_t dir_off, uint64_t *fh)
{
	struct fs_handle *h;
	int r = fs_fd_take(fs);

	if (r < 0) {
		close(fd);
		return r;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		fs_fd_give(fs);
		return -ENOMEM;
	}
	h->fd = fd;
	h->inode = inode;
	h->dir_off = dir_off; /* a placed handle's fd stands there already (apply.c) */
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_lock(&fs->handles.lock);
	if (place_id) {
		h->slot = (uint32_t)*place_id;
		h->gen = (uint32_t)(*place_id >> 32);
		r = slot_place(&fs->handles.slots, *place_id, h);
	} else {
		r = slot_alloc(&fs->handles.slots, h, &h->slot, &h->gen);
	}
	pthread_mutex_unlock(&fs->handles.lock);
	if (r < 0) {
		close(fd);
		fs_fd_give(fs);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return r;
	}
	inode_ref(fs, inode);
	metrics_gauge_add(MG_HANDLES, 1);
	if (fh)
		*fh = slot_id(h->slot, h->gen);
	return 0;
}

int handle_new(struct vfsd_passthrough *fs, struct fs_inode *inode, int fd, uint64_t *fh)
{
	return handle_add(fs, inode, fd, NULL, 0, fh);
}

struct fs_handle *handle_get(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t fh)
{
	struct fs_handle *h;

	pthread_mutex_lock(&fs->handles.lock);
	h = slot_get(&fs->handles.slots, fh);
	if (h && inode_id(h->inode) != nodeid)
		h = NULL;
	if (h)
		h->refs++;
	pthread_mutex_unlock(&fs->handles.lock);
	return h;
}

void handle_put(struct vfsd_passthrough *fs, struct fs_handle *h)
{
	bool last;

	pthread_mutex_lock(&fs->handles.lock);
	last = --h->refs == 0 && h->released;
	pthread_mutex_unlock(&fs->handles.lock);
	if (last)
		handle_free(fs, h);
}

/* Removes the handle from the table; it is freed when its last user is done. */
static void unlink_locked(struct handle_table *t, struct fs_handle *h, bool *free_now)
{
	slot_release(&t->slots, h->slot);
	metrics_gauge_add(MG_HANDLES, -1);
	h->released = true;
	*free_now = h->refs == 0;
}

int handle_release(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t fh)
{
	struct fs_handle *h;
	bool free_now = false;

	pthread_mutex_lock(&fs->handles.lock);
	h = slot_get(&fs->handles.slots, fh);
	if (h && inode_id(h->inode) == nodeid)
		unlink_locked(&fs->handles, h, &free_now);
	else
		h = NULL;
	pthread_mutex_unlock(&fs->handles.lock);
	if (!h)
		return -EBADF;
	if (free_now)
		handle_free(fs, h);
	return 0;
}

int handle_place(struct vfsd_passthrough *fs, uint64_t id, struct fs_inode *inode, int fd,
		 uint64_t dir_off)
{
	return handle_add(fs, inode, fd, &id, dir_off, NULL);
}

void fs_tables_settle(struct vfsd_passthrough *fs)
{
	pthread_mutex_lock(&fs->inodes.lock);
	slot_settle(&fs->inodes.slots);
	pthread_mutex_unlock(&fs->inodes.lock);
	pthread_mutex_lock(&fs->handles.lock);
	slot_settle(&fs->handles.slots);
	pthread_mutex_unlock(&fs->handles.lock);
}

void handle_table_clear(struct vfsd_passthrough *fs)
{
	struct handle_table *t = &fs->handles;

	for (uint32_t s = 0;; s++) { /* slot 0 too: a Rust virtiofsd handle 0 (slot_place) */
		struct fs_handle *h = NULL;
		bool free_now = false;

		pthread_mutex_lock(&t->lock);
		if (s >= t->slots.size) {
			pthread_mutex_unlock(&t->lock);
			return;
		}
		h = t->slots.items[s];
		if (h)
			unlink_locked(t, h, &free_now);
		pthread_mutex_unlock(&t->lock);
		if (h && free_now)
			handle_free(fs, h);
	}
}
