/* The inode table: node ids as slot indexes with generations, a hash by host identity. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "fs/internal.h"
#include "metrics/metrics.h"

/* Makes the table size slots long (new slots empty, not yet on the free list). */
static int slot_grow(struct slot_table *t, uint32_t size)
{
	void **items;
	uint32_t *gens, *fr;

	items = realloc(t->items, size * sizeof(*items));
	if (!items)
		return -ENOMEM;
	t->items = items;
	gens = realloc(t->gens, size * sizeof(*gens));
	if (!gens)
		return -ENOMEM;
	t->gens = gens;
	fr = realloc(t->free, size * sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	t->free = fr;
	memset(items + t->size, 0, (size - t->size) * sizeof(*items));
	memset(gens + t->size, 0, (size - t->size) * sizeof(*gens));
	t->size = size;
	return 0;
}

int slot_alloc(struct slot_table *t, void *item, uint32_t *slot, uint32_t *gen)
{
	uint32_t s;

	if (t->nfree == 0) {
		uint32_t old = t->size;
		int r;

		if (old >= UINT32_MAX / 2)
			return -ENFILE;
		r = slot_grow(t, old ? old * 2 : 64);
		if (r < 0)
			return r;
		/* Slot 0 is never used (node id 0 is invalid); low slots are handed out first. */
		for (uint32_t i = t->size; i-- > (old ? old : 1);)
			t->free[t->nfree++] = i;
	}
	s = t->free[--t->nfree];
	t->items[s] = item;
	*slot = s;
	*gen = t->gens[s];
	return 0;
}

/* Slot 0 holds an item only when one was placed there (a Rust virtiofsd handle 0). */
void *slot_get(const struct slot_table *t, uint64_t id)
{
	uint32_t s = (uint32_t)id, gen = (uint32_t)(id >> 32);

	if (s >= t->size || !t->items[s] || t->gens[s] != gen)
		return NULL;
	return t->items[s];
}

void slot_release(struct slot_table *t, uint32_t slot)
{
	t->items[slot] = NULL;
	t->gens[slot]++;
	t->free[t->nfree++] = slot;
}

int slot_place(struct slot_table *t, uint64_t id, void *item)
{
	uint32_t s = (uint32_t)id;

	if (s >= FS_SLOTS_PLACE_MAX)
		return -E2BIG;
	if (s >= t->size) {
		uint32_t size = t->size ? t->size : 64;
		int r;

		while (size <= s)
			size *= 2;
		r = slot_grow(t, size);
		if (r < 0)
			return r;
	}
	if (t->items[s])
		return -EEXIST;
	t->items[s] = item;
	t->gens[s] = (uint32_t)(id >> 32);
	return 0;
}

void slot_settle(struct slot_table *t)
{
	t->nfree = 0;
	/* Low slots first, as slot_alloc hands them out; slot 0 never. */
	for (uint32_t i = t->size; i-- > 1;)
		if (!t->items[i])
			t->free[t->nfree++] = i;
}

void slot_table_free(struct slot_table *t)
{
	free(t->items);
	free(t->gens);
	free(t->free);
	memset(t, 0, sizeof(*t));
}

static uint32_t key_hash(uint64_t dev, uint64_t ino, uint64_t mnt_id)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull;

	h ^= (dev + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
	h ^= mnt_id * 0x94d049bb133111ebull;
	return (uint32_t)(h ^ (h >> 32));
}

int inode_table_init(struct inode_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->hash_size = 1024;
	t->hash = calloc(t->hash_size, sizeof(*t->hash));
	return t->hash ? 0 : -ENOMEM;
}

static void hash_insert(struct inode_table *t, struct fs_inode *i)
{
	uint32_t b = key_hash(i->dev, i->ino, i->mnt_id) & (t->hash_size - 1);

	i->hnext = t->hash[b];
	t->hash[b] = i;
}

static void hash_remove(struct inode_table *t, struct fs_inode *i)
{
	uint32_t b = key_hash(i->dev, i->ino, i->mnt_id) & (t->hash_size - 1);

	for (struct fs_inode **p = &t->hash[b]; *p; p = &(*p)->hnext) {
		if (*p == i) {
			*p = i->hnext;
			return;
		}
	}
}

static void hash_grow(struct inode_table *t)
{
	uint32_t old = t->hash_size;
	struct fs_inode **oldh = t->hash, **newh = calloc(old * 2, sizeof(*newh));

	if (!newh)
		return; /* longer chains, still correct */
	t->hash = newh;
	t->hash_size = old * 2;
	for (uint32_t b = 0; b < old; b++) {
		for (struct fs_inode *i = oldh[b], *next; i; i = next) {
			next = i->hnext;
			hash_insert(t, i);
		}
	}
	free(oldh);
}

/* Removes the inode if nobody references it; called with the lock held. Returns whether it
 * did, with the fd the caller closes (once the lock is let go) in *fd, else -1. */
static bool maybe_free_locked(struct vfsd_passthrough *fs, struct fs_inode *i, int *fd)
{
	struct inode_table *t = &fs->inodes;

	*fd = -1;
	if (i->nlookup > 0 || i->refs > 0 || i->slot == FS_ROOT_ID)
		return false;
	hash_remove(t, i);
	slot_release(&t->slots, i->slot);
	t->count--;
	metrics_gauge_set(MG_INODES, t->count);
	*fd = i->fd;
	if (!i->khandle && !i->lost)
		fs_fd_give(fs); /* a handle-backed inode's fd was never counted */
	fs_lock_owners_free(i); /* nobody else holds the inode any more */
	free(i->khandle);
	free(i);
	return true;
}

int inode_get(struct vfsd_passthrough *fs, uint64_t nodeid, struct fs_inode **out)
{
	struct inode_table *t = &fs->inodes;
	struct fs_inode *i;
	bool lost;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	i = slot_get(&t->slots, nodeid);
	lost = i && i->lost;
	if (i && !lost)
		i->refs++;
	pthread_mutex_unlock(&t->lock);
	if (lost)
		return -EIO; /* docs/migration.md: the destination did not find it */
	if (!i)
		return -EBADF;
	/* A handle-backed inode not in use has no fd: open it by its handle. Racing users each
	 * open one; the first to store it wins. The last inode_put closes it. */
	if (i && i->khandle && __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE) < 0) {
		int fd = khandle_open(i), none = -1;

		if (fd < 0) {
			log_debug("inode %llu: cannot open its handle: %s",
				  (unsigned long long)nodeid, strerror(-fd));
			inode_put(fs, i);
			return fd == -ESTALE ? -ESTALE : -EBADF;
		}
		if (!__atomic_compare_exchange_n(&i->fd, &none, fd, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			close(fd);
	}
	*out = i;
	return 0;
}

void inode_ref(struct vfsd_passthrough *fs, struct fs_inode *inode)
{
	pthread_mutex_lock(&fs->inodes.lock);
	inode->refs++;
	pthread_mutex_unlock(&fs->inodes.lock);
}

void inode_put(struct vfsd_passthrough *fs, struct fs_inode *inode)
{
	int fd;

	if (!inode)
		return;
	pthread_mutex_lock(&fs->inodes.lock);
	inode->refs--;
	if (!maybe_free_locked(fs, inode, &fd)) { /* else inode is gone */
		if (inode->refs == 0 && inode->khandle && inode->slot != FS_ROOT_ID) {
			/* the guest still knows it: its fd goes, the handle is enough */
			fd = __atomic_exchange_n(&inode->fd, -1, __ATOMIC_ACQ_REL);
		}
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	vfsd_closep(&fd);
}

void inode_forget(struct vfsd_passthrough *fs, uint64_t nodeid, uint64_t n)
{
	struct inode_table *t = &fs->inodes;
	struct fs_inode *i;
	int fd = -1;

	pthread_mutex_lock(&t->lock);
	i = slot_get(&t->slots, nodeid);
	if (i) {
		i->nlookup = n >= i->nlookup ? 0 : i->nlookup - n;
		maybe_free_locked(fs, i, &fd);
	}
	pthread_mutex_unlock(&t->lock);
	vfsd_closep(&fd);
}

/* The inode already known for what st describes, or NULL. Called with the table lock held. */
static struct fs_inode *find_locked(struct inode_table *t, const struct statx *st)
{
	uint64_t dev = makedev(st->stx_dev_major, st->stx_dev_minor);
	uint32_t b = key_hash(dev, st->stx_ino, st->stx_mnt_id) & (t->hash_size - 1);
	struct fs_inode *i;

	for (i = t->hash[b]; i; i = i->hnext) {
		if (i->ino == st->stx_ino && i->dev == dev && i->mnt_id == st->stx_mnt_id)
			break;
	}
	return i;
}

static void fill_entry(struct vfsd_passthrough *fs, const struct fs_inode *i,
		       const struct statx *st, struct fuse_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = inode_id(i);
	fs_fill_timeouts(fs, &e->entry_valid, &e->entry_valid_nsec);
	fs_fill_timeouts(fs, &e->attr_valid, &e->attr_valid_nsec);
	fs_fill_attr(fs, st, &e->attr);
}

int inode_lookup_known(struct vfsd_passthrough *fs, const struct statx *st,
		       struct fuse_entry_out *e)
{
	struct inode_table *t = &fs->inodes;
	struct fs_inode *i;

	pthread_mutex_lock(&t->lock);
	i = find_locked(t, st);
	if (i)
		i->nlookup++;
	pthread_mutex_unlock(&t->lock);
	if (!i)
		return -ENOENT;
	fill_entry(fs, i, st, e);
	return 0;
}

int inode_register(struct vfsd_passthrough *fs, int fd, const struct statx *st,
		   struct fuse_entry_out *e)
{
	struct inode_table *t = &fs->inodes;
	uint64_t dev = makedev(st->stx_dev_major, st->stx_dev_minor);
	struct khandle_buf khandle_buf;
	struct file_handle *fh;
	struct fs_inode *i;
	int mount_fd, r;

	r = khandle_of(fs, fd, st, &khandle_buf, &fh, &mount_fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	pthread_mutex_lock(&t->lock);
	i = find_locked(t, st);
	if (i && i->khandle && fh && !khandle_equal(i->khandle, fh)) {
		/* Same numbers, another object: the one the table knew was deleted and its inode
		 * number reused (only a handle lets that happen). The old entry leaves the hash;
		 * the guest's references to it get ESTALE. */
		hash_remove(t, i);
		i = NULL;
	}
	if (i) {
		i->nlookup++;
		pthread_mutex_unlock(&t->lock);
		close(fd);
	} else {
		i = calloc(1, sizeof(*i));
		if (i && fh) {
			i->khandle = khandle_dup(fh); /* the table's own copy; fh is on our stack */
			if (!i->khandle) {
				free(i);
				i = NULL;
			}
		}
		if (!i) {
			pthread_mutex_unlock(&t->lock);
			close(fd);
			return -ENOMEM;
		}
		/* an inode held by its fd spends one of the guest's fds */
		r = fh ? 0 : fs_fd_take(fs);
		if (r == 0) {
			r = slot_alloc(&t->slots, i, &i->slot, &i->gen);
			if (r < 0 && !fh)
				fs_fd_give(fs);
		}
		if (r < 0) {
			pthread_mutex_unlock(&t->lock);
			free(i->khandle);
			free(i);
			close(fd);
			return r;
		}
		i->mount_fd = mount_fd;
		i->fd = fd;
		if (fh) {
			/* not in use yet: the handle holds it */
			i->fd = -1;
			close(fd);
		}
		i->dev = dev;
		i->ino = st->stx_ino;
		i->mnt_id = st->stx_mnt_id;
		i->type = st->stx_mode & S_IFMT;
		i->nlookup = 1;
		hash_insert(t, i);
		if (++t->count > t->hash_size)
			hash_grow(t);
		metrics_gauge_set(MG_INODES, t->count);
		pthread_mutex_unlock(&t->lock);
	}
	fill_entry(fs, i, st, e);
	return 0;
}

int inode_place(struct vfsd_passthrough *fs, uint64_t id, int fd, const struct statx *st,
		uint64_t nlookup, bool lost)
{
	struct inode_table *t = &fs->inodes;
	struct khandle_buf khandle_buf;
	struct file_handle *fh = NULL;
	struct fs_inode *i = calloc(1, sizeof(*i));
	int mount_fd = -1, r = 0;

	if (!i) {
		vfsd_closep(&fd);
		return -ENOMEM;
	}
	i->fd = -1;
	i->mount_fd = -1;
	if (!lost) {
		r = khandle_of(fs, fd, st, &khandle_buf, &fh, &mount_fd);
		if (r == 0 && fh) {
			i->khandle = khandle_dup(fh);
			r = i->khandle ? 0 : -ENOMEM;
		}
		if (r == 0 && !fh)
			r = fs_fd_take(fs);
		if (r < 0) {
			free(i->khandle);
			free(i);
			close(fd);
			return r;
		}
		i->mount_fd = mount_fd;
		if (fh)
			close(fd); /* the handle holds it until it is used */
		else
			i->fd = fd;
		i->dev = makedev(st->stx_dev_major, st->stx_dev_minor);
		i->ino = st->stx_ino;
		i->mnt_id = st->stx_mnt_id;
		i->type = st->stx_mode & S_IFMT;
	}
	i->lost = lost;
	i->slot = (uint32_t)id;
	i->gen = (uint32_t)(id >> 32);
	i->nlookup = nlookup;
	pthread_mutex_lock(&t->lock);
	r = slot_place(&t->slots, id, i);
	if (r == 0) {
		/* Two node ids for one object (hard links the source met apart, or a path that
		 * now names another inode's object): the first keeps the hash, so lookups find
		 * it; the other still serves its id. */
		if (!lost && !find_locked(t, &(struct statx){ .stx_ino = i->ino,
							     .stx_dev_major = major(i->dev),
							     .stx_dev_minor = minor(i->dev),
							     .stx_mnt_id = i->mnt_id }))
			hash_insert(t, i);
		if (++t->count > t->hash_size)
			hash_grow(t);
		metrics_gauge_set(MG_INODES, t->count);
	}
	pthread_mutex_unlock(&t->lock);
	if (r < 0) {
		if (!lost && !i->khandle)
			fs_fd_give(fs);
		vfsd_closep(&i->fd);
		free(i->khandle);
		free(i);
	}
	return r;
}

void inode_table_clear(struct vfsd_passthrough *fs)
{
	struct inode_table *t = &fs->inodes;

	pthread_mutex_lock(&t->lock);
	for (uint32_t s = 1; s < t->slots.size; s++) {
		struct fs_inode *i = t->slots.items[s];

		if (!i)
			continue;
		/* In-flight users keep theirs alive; the table forgets it either way. */
		i->nlookup = 0;
		if (i->slot == FS_ROOT_ID) {
			pthread_mutex_lock(&fs->locks_lock);
			fs_lock_owners_free(i); /* the session's locks end with it */
			pthread_mutex_unlock(&fs->locks_lock);
			continue;
		}
		if (i->refs == 0) {
			int fd;

			maybe_free_locked(fs, i, &fd);
			vfsd_closep(&fd);
		}
	}
	pthread_mutex_unlock(&t->lock);
}
