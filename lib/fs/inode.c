/* The inode table: node ids as slot indexes with generations, a hash by host identity. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* RENAME_EXCHANGE */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "fs/internal.h"
#include "metrics/metrics.h"

/* A guest's million inodes are a million of these (internal.h): growing it is a choice. */
_Static_assert(sizeof(struct fs_inode) <= 120, "struct fs_inode grew past one 128-byte chunk");

/* A zeroed inode with room for name (may be NULL) as its first name record. */
static struct fs_inode *inode_alloc(const char *name)
{
	size_t cap = name ? strlen(name) + 1 : 0;
	struct fs_inode *i;

	if (cap > UINT16_MAX)
		cap = 0; /* no such name (NAME_MAX); the record is allocated on its own */
	i = calloc(1, sizeof(*i) + cap);
	if (i)
		i->name_cap = (uint16_t)cap;
	return i;
}

/* Drops the name of the record (the caller sets or clears parent). */
static void name_free(struct fs_inode *i)
{
	if (i->name != i->name_buf)
		free(i->name);
	i->name = NULL;
}

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

/* ---- the fd cache: the idle list and the name records (docs/fd-cache.md) ---- */

/* Whether an inode nobody uses may give its fd back: it is held by an fd (not a file handle)
 * and can be found again by its name record. */
static bool evictable(const struct fs_inode *i)
{
	return !i->khandle && !i->lost && i->parent && i->slot != FS_ROOT_ID &&
	       __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE) >= 0;
}

static void lru_remove(struct inode_table *t, struct fs_inode *i)
{
	if (!i->idle)
		return;
	if (i->lru_prev)
		i->lru_prev->lru_next = i->lru_next;
	else
		t->lru_head = i->lru_next;
	if (i->lru_next)
		i->lru_next->lru_prev = i->lru_prev;
	else
		t->lru_tail = i->lru_prev;
	i->lru_prev = i->lru_next = NULL;
	i->idle = false;
}

static void lru_append(struct inode_table *t, struct fs_inode *i)
{
	i->lru_next = NULL;
	i->lru_prev = t->lru_tail;
	if (t->lru_tail)
		t->lru_tail->lru_next = i;
	else
		t->lru_head = i;
	t->lru_tail = i;
	i->idle = true;
}

static bool unused(const struct fs_inode *i)
{
	return i->nlookup == 0 && i->refs == 0 && i->nchildren == 0 && i->slot != FS_ROOT_ID;
}

/* Takes the inode out of the table and frees it; called with the lock held. Its fd goes to
 * *fd for the caller to close. Returns its record's parent, one child fewer, or NULL. */
static struct fs_inode *free_locked(struct vfsd_passthrough *fs, struct fs_inode *i, int *fd)
{
	struct inode_table *t = &fs->inodes;
	struct fs_inode *parent = i->parent;

	hash_remove(t, i);
	slot_release(&t->slots, i->slot);
	lru_remove(t, i);
	t->count--;
	metrics_gauge_set(MG_INODES, t->count);
	*fd = i->fd;
	if (!i->khandle && i->fd >= 0)
		fs_fd_give(fs); /* a handle-backed inode's fd was never counted, an evicted one's given */
	fs_lock_owners_free(i); /* nobody else holds the inode any more */
	if (parent)
		parent->nchildren--;
	name_free(i);
	free(i->khandle);
	free(i);
	return parent;
}

/* Removes the inode if nobody references it, then each parent its record kept that nothing
 * else keeps; called with the lock held. Returns whether it did, with the inode's fd for the
 * caller to close (once the lock is let go) in *fd, else -1. */
static bool maybe_free_locked(struct vfsd_passthrough *fs, struct fs_inode *i, int *fd)
{
	struct fs_inode *p;

	*fd = -1;
	if (!unused(i))
		return false;
	p = free_locked(fs, i, fd);
	while (p && unused(p)) {
		int pfd;

		p = free_locked(fs, p, &pfd);
		vfsd_closep(&pfd); /* a parent forgotten before its children: rare, closed here */
	}
	return true;
}

/* Records name under parent as the way to find i again; called with the lock held. Without
 * memory the old record stays (a stale one is caught when it is used). */
static void record_set_locked(struct vfsd_passthrough *fs, struct fs_inode *i,
			      struct fs_inode *parent, const char *name)
{
	struct fs_inode *old = i->parent;
	size_t len;
	char *copy;
	int fd;

	if (!parent || !name || i->khandle || i->slot == FS_ROOT_ID || i == parent)
		return;
	if (old == parent && strcmp(i->name, name) == 0)
		return;
	len = strlen(name) + 1;
	if (len <= i->name_cap) {
		copy = i->name_buf; /* set after name_free: i->name may be name_buf already */
	} else {
		copy = strdup(name);
		if (!copy)
			return;
	}
	parent->nchildren++;
	name_free(i);
	if (copy == i->name_buf)
		memcpy(i->name_buf, name, len);
	i->name = copy;
	i->parent = parent;
	if (old) {
		old->nchildren--;
		if (maybe_free_locked(fs, old, &fd))
			vfsd_closep(&fd);
	}
	/* An inode that was not evictable for want of a record may be now. */
	if (i->refs == 0 && !i->idle && evictable(i))
		lru_append(&fs->inodes, i);
}

bool inode_evict_one(struct vfsd_passthrough *fs)
{
	struct inode_table *t = &fs->inodes;
	int fd = -1;

	pthread_mutex_lock(&t->lock);
	while (t->lru_head) {
		struct fs_inode *i = t->lru_head;
		struct statx st;

		lru_remove(t, i);
		/* An object with no name left (unlinked on the host or by the guest) could not
		 * be found again: it keeps its fd until the guest forgets it. */
		if (statx(i->fd, "", AT_EMPTY_PATH, STATX_NLINK, &st) == 0 && st.stx_nlink == 0)
			continue;
		fd = __atomic_exchange_n(&i->fd, -1, __ATOMIC_ACQ_REL);
		break;
	}
	pthread_mutex_unlock(&t->lock);
	if (fd < 0)
		return false;
	close(fd);
	fs_fd_give(fs);
	metrics_gauge_add(MG_FD_EVICTIONS, 1);
	return true;
}

static bool same_object(const struct fs_inode *i, const struct statx *st)
{
	return st->stx_ino == i->ino && makedev(st->stx_dev_major, st->stx_dev_minor) == i->dev &&
	       st->stx_mnt_id == i->mnt_id && (st->stx_mode & S_IFMT) == i->type;
}

/*
 * Gives a held inode without an fd the fd just opened for it; false if another user stored
 * one first (the caller then closes its own). Under the table lock, not a compare-and-swap:
 * the users that hold the inode read its fd without atomics once they have it, and a failed
 * swap by a second restorer would count as a write racing with those reads.
 */
static bool install_fd(struct vfsd_passthrough *fs, struct fs_inode *i, int fd)
{
	bool none;

	pthread_mutex_lock(&fs->inodes.lock);
	none = __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE) < 0;
	if (none)
		__atomic_store_n(&i->fd, fd, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fs->inodes.lock);
	return none;
}

/* One step of a walk down a name record chain: an inode held for the walk and its name. */
struct walk_step {
	struct fs_inode *inode;
	char *name;
};

/* Opens name under dirfd and checks that it is want's object: a new O_PATH fd or -errno
 * (-ESTALE when the name leads elsewhere or nowhere). */
static int open_step(struct vfsd_passthrough *fs, int dirfd, const char *name,
		     const struct fs_inode *want)
{
	struct statx st;
	int fd = fs_open_child(fs, dirfd, name, O_PATH, 0), r;

	if (fd < 0)
		return fd == -ENOENT || fd == -ENOTDIR || fd == -EXDEV || fd == -ELOOP ? -ESTALE : fd;
	r = fs_stat(fd, &st);
	if (r == 0 && !same_object(want, &st))
		r = -ESTALE; /* renamed or deleted on the host, or another object there */
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/*
 * The object of i (held by the caller) opened again by its name record: from the nearest
 * ancestor that has an fd, one name at a time down the records, each checked to be its
 * inode's object. Ancestors without an fd on the way get theirs back while the budget allows
 * (a walk never needs more than two fds of its own, however deep). A new O_PATH fd, or
 * -ESTALE when a name no longer leads to its object.
 */
static int open_by_record(struct vfsd_passthrough *fs, struct fs_inode *i)
{
	struct walk_step *steps = NULL;
	struct fs_inode *top = NULL;
	size_t n = 0, cap = 0;
	int r = 0, fd = -1, top_fd;
	bool top_owned = false;

	pthread_mutex_lock(&fs->inodes.lock);
	for (struct fs_inode *at = i;;) {
		struct fs_inode *p = at->parent;

		if (at != i && (__atomic_load_n(&at->fd, __ATOMIC_ACQUIRE) >= 0 || at->khandle)) {
			top = at;
			break;
		}
		if (!p) {
			r = -ESTALE; /* no record, and no fd: cannot be found */
			break;
		}
		if (n == cap) {
			struct walk_step *more = realloc(steps, (cap ? cap * 2 : 8) * sizeof(*steps));

			if (!more) {
				r = -ENOMEM;
				break;
			}
			steps = more;
			cap = cap ? cap * 2 : 8;
		}
		steps[n].name = strdup(at->name);
		if (!steps[n].name) {
			r = -ENOMEM;
			break;
		}
		steps[n].inode = at;
		if (at != i)
			inode_ref_locked(fs, at);
		n++;
		at = p;
	}
	if (top)
		inode_ref_locked(fs, top);
	pthread_mutex_unlock(&fs->inodes.lock);
	if (r < 0)
		goto out;
	top_fd = __atomic_load_n(&top->fd, __ATOMIC_ACQUIRE);
	if (top_fd < 0) { /* a handle-backed ancestor not in use */
		top_fd = khandle_open(top);
		if (top_fd < 0) {
			r = top_fd;
			goto out;
		}
		top_owned = true;
	}
	/* steps[n - 1] is the child of top, steps[0] is i */
	for (size_t k = n; k-- > 0;) {
		struct fs_inode *at = steps[k].inode;

		fd = open_step(fs, top_fd, steps[k].name, at);
		if (top_owned)
			close(top_fd);
		top_owned = false;
		if (fd < 0) {
			r = fd;
			goto out;
		}
		if (k == 0)
			break;
		/* An ancestor keeps the fd when it may have one; else it is only a step. */
		top_fd = fd;
		top_owned = true;
		if (__atomic_load_n(&at->fd, __ATOMIC_ACQUIRE) < 0 && fs_fd_try(fs)) {
			if (install_fd(fs, at, fd)) {
				top_owned = false;
				metrics_gauge_add(MG_FD_REOPENS, 1);
			} else {
				fs_fd_give(fs);
			}
		}
	}
	r = fd;
out:
	for (size_t k = 0; k < n; k++) {
		if (steps[k].inode != i)
			inode_put(fs, steps[k].inode);
		free(steps[k].name);
	}
	free(steps);
	inode_put(fs, top);
	return r;
}

int inode_open_again(struct vfsd_passthrough *fs, struct fs_inode *inode)
{
	return inode->khandle ? khandle_open(inode) : open_by_record(fs, inode);
}

/*
 * Gives the inode (held by the caller) its fd again: by its handle, or by its name record
 * (an evicted inode), spending one of the guest's fds. Racing users each open one; the first
 * to store it wins. A handle-backed inode's fd is closed by the last inode_put, an evicted
 * one's by the next eviction.
 */
static int restore_fd(struct vfsd_passthrough *fs, struct fs_inode *i)
{
	int fd, r;

	if (i->khandle) {
		fd = khandle_open(i);
		if (fd < 0)
			return fd == -ESTALE ? -ESTALE : -EBADF;
		if (!install_fd(fs, i, fd))
			close(fd); /* a handle-backed inode's fd is not counted */
		return 0;
	}
	r = fs_fd_take(fs);
	if (r < 0)
		return r;
	fd = open_by_record(fs, i);
	if (fd < 0) {
		fs_fd_give(fs);
		return fd;
	}
	metrics_gauge_add(MG_FD_REOPENS, 1);
	if (!install_fd(fs, i, fd)) {
		close(fd);
		fs_fd_give(fs);
	}
	return 0;
}

int inode_get(struct vfsd_passthrough *fs, uint64_t nodeid, struct fs_inode **out)
{
	struct inode_table *t = &fs->inodes;
	struct fs_inode *i;
	bool lost;
	int r;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	i = slot_get(&t->slots, nodeid);
	lost = i && i->lost;
	if (i && !lost)
		inode_ref_locked(fs, i);
	pthread_mutex_unlock(&t->lock);
	if (lost)
		return -EIO; /* docs/migration.md: the destination did not find it */
	if (!i)
		return -EBADF;
	if (__atomic_load_n(&i->fd, __ATOMIC_ACQUIRE) < 0) {
		r = restore_fd(fs, i);
		if (r < 0) {
			log_debug("inode %llu: cannot open it again: %s", (unsigned long long)nodeid,
				  strerror(-r));
			inode_put(fs, i);
			return r;
		}
	}
	*out = i;
	return 0;
}

void inode_ref_locked(struct vfsd_passthrough *fs, struct fs_inode *inode)
{
	inode->refs++;
	lru_remove(&fs->inodes, inode);
}

void inode_ref(struct vfsd_passthrough *fs, struct fs_inode *inode)
{
	pthread_mutex_lock(&fs->inodes.lock);
	inode_ref_locked(fs, inode);
	pthread_mutex_unlock(&fs->inodes.lock);
}

void inode_put(struct vfsd_passthrough *fs, struct fs_inode *inode)
{
	int fd;

	if (!inode)
		return;
	pthread_mutex_lock(&fs->inodes.lock);
	inode->refs--;
	if (!maybe_free_locked(fs, inode, &fd) && inode->refs == 0) { /* else inode is gone */
		if (inode->khandle && inode->slot != FS_ROOT_ID) {
			/* the guest still knows it: its fd goes, the handle is enough */
			fd = __atomic_exchange_n(&inode->fd, -1, __ATOMIC_ACQ_REL);
		} else if (evictable(inode)) {
			lru_append(&fs->inodes, inode); /* most recently used last */
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

/* The known inode for st, or NULL; with the lock held. One that has no fd and another type
 * is not it: the number was reused after its object was deleted, and it leaves the hash. */
static struct fs_inode *find_same_locked(struct inode_table *t, const struct statx *st)
{
	struct fs_inode *i = find_locked(t, st);

	if (i && __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE) < 0 && !i->khandle &&
	    (st->stx_mode & S_IFMT) != i->type) {
		hash_remove(t, i);
		i = NULL;
	}
	return i;
}

/* With the lock held: the record of the object now at name under dir moves from (was_dir,
 * was_name) to (dir, name), if that is where it was. */
static void record_move_locked(struct vfsd_passthrough *fs, const struct statx *st,
			       struct fs_inode *was_dir, const char *was_name, struct fs_inode *dir,
			       const char *name)
{
	struct fs_inode *i = find_locked(&fs->inodes, st);

	if (i && i->parent == was_dir && strcmp(i->name, was_name) == 0)
		record_set_locked(fs, i, dir, name);
}

void inode_renamed(struct vfsd_passthrough *fs, struct fs_inode *olddir, const char *oldname,
		   struct fs_inode *newdir, const char *newname, unsigned int flags)
{
	struct statx moved, other;
	bool have_moved = fs_stat_name(newdir->fd, newname, &moved) == 0;
	bool have_other = (flags & RENAME_EXCHANGE) &&
			  fs_stat_name(olddir->fd, oldname, &other) == 0;

	/* An object the rename replaced keeps its stale record: it has no name left, so it is
	 * not evicted while it has its fd (inode_evict_one), and one already evicted is gone. */
	pthread_mutex_lock(&fs->inodes.lock);
	if (have_moved)
		record_move_locked(fs, &moved, olddir, oldname, newdir, newname);
	if (have_other)
		record_move_locked(fs, &other, newdir, newname, olddir, oldname);
	pthread_mutex_unlock(&fs->inodes.lock);
}

void inode_guest_removed(struct vfsd_passthrough *fs, const struct statx *st)
{
	struct fs_inode *i;

	pthread_mutex_lock(&fs->inodes.lock);
	i = find_locked(&fs->inodes, st);
	if (i)
		__atomic_store_n(&i->guest_removed, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&fs->inodes.lock);
}

bool inode_known_ino(struct vfsd_passthrough *fs, uint64_t dev, uint64_t ino, uint64_t mnt_id)
{
	struct statx st = { .stx_ino = ino, .stx_dev_major = major(dev), .stx_dev_minor = minor(dev),
			    .stx_mnt_id = mnt_id };
	bool known;

	pthread_mutex_lock(&fs->inodes.lock);
	known = find_locked(&fs->inodes, &st) != NULL;
	pthread_mutex_unlock(&fs->inodes.lock);
	return known;
}

int inode_lookup_known(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name,
		       const struct statx *st, struct fuse_entry_out *e)
{
	struct inode_table *t = &fs->inodes;
	struct fs_inode *i;

	pthread_mutex_lock(&t->lock);
	i = find_same_locked(t, st);
	if (i) {
		i->nlookup++;
		record_set_locked(fs, i, parent, name);
	}
	pthread_mutex_unlock(&t->lock);
	if (!i)
		return -ENOENT;
	fill_entry(fs, i, st, e);
	return 0;
}

/* The known inode for st and fh (fh NULL: held by its fd), with one more guest reference and
 * the record of name; NULL if none. With the lock held. */
static struct fs_inode *register_known_locked(struct vfsd_passthrough *fs, struct fs_inode *parent,
					      const char *name, const struct statx *st,
					      const struct file_handle *fh)
{
	struct inode_table *t = &fs->inodes;
	struct fs_inode *i = find_same_locked(t, st);

	if (i && i->khandle && fh && !khandle_equal(i->khandle, fh)) {
		/* Same numbers, another object: the one the table knew was deleted and its inode
		 * number reused (only a handle lets that happen). The old entry leaves the hash;
		 * the guest's references to it get ESTALE. */
		hash_remove(t, i);
		i = NULL;
	}
	if (i) {
		i->nlookup++;
		record_set_locked(fs, i, parent, name);
	}
	return i;
}

int inode_register(struct vfsd_passthrough *fs, struct fs_inode *parent, const char *name, int fd,
		   const struct statx *st, struct fuse_entry_out *e)
{
	struct inode_table *t = &fs->inodes;
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
	i = register_known_locked(fs, parent, name, st, fh);
	pthread_mutex_unlock(&t->lock);
	if (i) {
		close(fd);
		fill_entry(fs, i, st, e);
		return 0;
	}
	i = inode_alloc(fh ? NULL : name); /* a handle-backed inode keeps no record */
	if (i && fh) {
		i->khandle = khandle_dup(fh); /* the table's own copy; fh is on our stack */
		if (!i->khandle) {
			free(i);
			i = NULL;
		}
	}
	if (!i) {
		close(fd);
		return -ENOMEM;
	}
	/* An inode held by its fd spends one of the guest's fds; taking it may evict another
	 * inode's, which needs the table's lock. */
	r = fh ? 0 : fs_fd_take(fs);
	if (r < 0) {
		free(i->khandle);
		free(i);
		close(fd);
		return r;
	}
	pthread_mutex_lock(&t->lock);
	{
		/* Another lookup of the same object may have come first meanwhile. */
		struct fs_inode *known = register_known_locked(fs, parent, name, st, fh);

		if (known) {
			pthread_mutex_unlock(&t->lock);
			if (!fh)
				fs_fd_give(fs);
			free(i->khandle);
			free(i);
			close(fd);
			fill_entry(fs, known, st, e);
			return 0;
		}
	}
	r = slot_alloc(&t->slots, i, &i->slot, &i->gen);
	if (r < 0) {
		pthread_mutex_unlock(&t->lock);
		if (!fh)
			fs_fd_give(fs);
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
	i->dev = makedev(st->stx_dev_major, st->stx_dev_minor);
	i->ino = st->stx_ino;
	i->mnt_id = st->stx_mnt_id;
	i->type = st->stx_mode & S_IFMT;
	i->nlookup = 1;
	hash_insert(t, i);
	if (++t->count > t->hash_size)
		hash_grow(t);
	metrics_gauge_set(MG_INODES, t->count);
	record_set_locked(fs, i, parent, name); /* refs 0: idle from now on */
	pthread_mutex_unlock(&t->lock);
	fill_entry(fs, i, st, e);
	return 0;
}

int inode_place(struct vfsd_passthrough *fs, uint64_t id, int fd, const struct statx *st,
		uint64_t nlookup, bool lost, uint64_t parent, const char *name)
{
	struct inode_table *t = &fs->inodes;
	struct khandle_buf khandle_buf;
	struct file_handle *fh = NULL;
	struct fs_inode *i = inode_alloc(lost ? NULL : name);
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
		if (!lost && parent)
			record_set_locked(fs, i, slot_get(&t->slots, parent), name);
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
	/* The records go first: a parent is no longer kept by its children. */
	for (uint32_t s = 1; s < t->slots.size; s++) {
		struct fs_inode *i = t->slots.items[s];

		if (!i)
			continue;
		name_free(i);
		i->parent = NULL;
		i->nchildren = 0;
		lru_remove(t, i);
	}
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
