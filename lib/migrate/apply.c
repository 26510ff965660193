/*
 * The destination's half: the session resumed as the source had it, then every inode found
 * again and put under the node id the guest knows, then every handle opened again under its
 * number. An inode that cannot be found fails the load (--migration-on-error=abort) or is
 * kept as lost, answering EIO (guest-error).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "fs/internal.h"
#include "migrate/migrate.h"

enum { PENDING, PLACED, LOST };

struct apply {
	struct vfsd_passthrough *fs;
	const struct mig_state *s;
	uint8_t *status;    /* by index in s->inodes */
	size_t *by_id;	    /* indexes of s->inodes sorted by id */
	size_t *by_path;    /* indexes of the full-path inodes sorted by path */
	size_t npaths;
	int *mount_fds;	    /* by index in s->mounts, -1 until opened */
};

static const struct mig_state *sort_state;

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = sort_state->inodes[*(const size_t *)a].id;
	uint64_t y = sort_state->inodes[*(const size_t *)b].id;

	return x < y ? -1 : x > y;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(sort_state->inodes[*(const size_t *)a].name,
		      sort_state->inodes[*(const size_t *)b].name);
}

/* The index of the full-path inode at path (its first len bytes), or -1. */
static ssize_t index_of_path(const struct apply *a, const char *path, size_t len)
{
	size_t lo = 0, hi = a->npaths;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *v = a->s->inodes[a->by_path[mid]].name;
		int c = strncmp(v, path, len);

		if (c == 0 && v[len] == '\0')
			return (ssize_t)a->by_path[mid];
		if (c == 0)
			c = 1; /* v is longer: after path, as strcmp sorts */
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static ssize_t index_of(const struct apply *a, uint64_t id)
{
	size_t lo = 0, hi = a->s->ninodes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = a->s->inodes[a->by_id[mid]].id;

		if (v == id)
			return (ssize_t)a->by_id[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool same_fh(const struct mig_fh *want, const struct mig_fh *got)
{
	/* The mount id is the source's own number: only the handle itself compares. */
	return want->type == got->type && want->len == got->len &&
	       memcmp(want->bytes, got->bytes, want->len) == 0;
}

/* The mount fd for a source mount id (its path opened from the root), or -errno. */
static int mount_fd(struct apply *a, uint64_t mnt_id)
{
	for (size_t k = 0; k < a->s->nmounts; k++) {
		const struct mig_mount *m = &a->s->mounts[k];

		if (m->id != mnt_id)
			continue;
		if (a->mount_fds[k] < 0) {
			if (strcmp(m->path, ".") == 0)
				a->mount_fds[k] = openat(a->fs->root_fd, ".",
							 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			else
				a->mount_fds[k] = fs_open_child(a->fs, a->fs->root_fd, m->path,
								O_RDONLY | O_NONBLOCK, 0);
			if (a->mount_fds[k] < 0) {
				int e = a->mount_fds[k] == -1 ? -errno : a->mount_fds[k];

				a->mount_fds[k] = -1;
				return e;
			}
		}
		return a->mount_fds[k];
	}
	return -ENOENT;
}

/* Opens where the inode is: an O_PATH fd, -EAGAIN while its parent is not placed, or
 * -errno with *why saying what failed. */
static int open_inode(struct apply *a, const struct mig_inode *mi, const char **why)
{
	struct vfsd_passthrough *fs = a->fs;
	struct file_handle *fh;
	struct khandle_buf buf;
	struct fs_inode *parent;
	ssize_t p;
	int fd, mfd, r;

	switch (mi->loc) {
	case MIG_LOC_FULL_PATH:
		*why = "its path does not open";
		return fs_open_child(fs, fs->root_fd, mi->name, O_PATH, 0);
	case MIG_LOC_PATH:
		p = index_of(a, mi->parent);
		if (p < 0 || a->status[p] == PENDING)
			return -EAGAIN;
		if (a->status[p] == LOST) {
			*why = "its parent was not found";
			return -ENOENT;
		}
		r = inode_get(fs, mi->parent, &parent);
		if (r < 0) {
			*why = "its parent cannot be opened";
			return r;
		}
		*why = "its name does not open under its parent";
		fd = fs_open_child(fs, parent->fd, mi->name, O_PATH, 0);
		inode_put(fs, parent);
		return fd;
	case MIG_LOC_FILE_HANDLE:
		mfd = mount_fd(a, mi->fh.mnt_id);
		if (mfd < 0) {
			*why = "the mount of its file handle cannot be opened";
			return mfd;
		}
		fh = (struct file_handle *)(void *)buf.raw;
		fh->handle_bytes = mi->fh.len;
		fh->handle_type = mi->fh.type;
		memcpy(fh->f_handle, mi->fh.bytes, mi->fh.len);
		*why = "its file handle does not open (CAP_DAC_READ_SEARCH, the same filesystem)";
		fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	case MIG_LOC_INVALID:
		*why = "the source had lost it";
		return -ENOENT;
	case MIG_LOC_ROOT:
	default:
		*why = "a second root";
		return -EINVAL;
	}
}

/*
 * The name record given to the placed inode (docs/fd-cache.md), so that it may give its fd back
 * like any other: its parent's id and its name there; parent 0 for none (a parent the guest
 * did not hold). -EAGAIN while that parent is not placed yet.
 */
static int record_of(const struct apply *a, const struct mig_inode *mi, uint64_t *parent,
		     const char **name)
{
	const char *slash;
	ssize_t k;

	*parent = 0;
	*name = NULL;
	if (mi->loc == MIG_LOC_PATH) {
		*parent = mi->parent;
		*name = mi->name;
		return 0;
	}
	if (mi->loc != MIG_LOC_FULL_PATH)
		return 0;
	slash = strrchr(mi->name, '/');
	if (!slash) {
		*parent = FS_ROOT_ID;
		*name = mi->name;
		return 0;
	}
	k = index_of_path(a, mi->name, (size_t)(slash - mi->name));
	if (k < 0 || a->status[k] == LOST)
		return 0;
	if (a->status[k] == PENDING)
		return -EAGAIN;
	*parent = a->s->inodes[k].id;
	*name = slash + 1;
	return 0;
}

static int place_one(struct apply *a, size_t k)
{
	const struct mig_inode *mi = &a->s->inodes[k];
	const char *why = "?", *rec_name;
	uint64_t rec_parent;
	struct statx st;
	struct mig_fh got;
	int fd, r;

	if (record_of(a, mi, &rec_parent, &rec_name) == -EAGAIN)
		return -EAGAIN; /* parents first: the record needs the parent placed */
	fd = open_inode(a, mi, &why);
	if (fd == -EAGAIN)
		return fd;
	r = fd < 0 ? fd : fs_stat(fd, &st);
	if (r == 0 && mi->has_verify &&
	    (migrate_fh_of(fd, &got) < 0 || !same_fh(&mi->verify, &got))) {
		why = "the object there is not the source's (its file handle differs)";
		r = -ESTALE;
	}
	if (r == 0) {
		r = inode_place(a->fs, mi->id, fd, &st, mi->nlookup, false, rec_parent, rec_name);
		fd = -1;
		if (r == 0) {
			a->status[k] = PLACED;
			return 0;
		}
		why = "it cannot be put in the table";
	}
	vfsd_closep(&fd);
	if (!a->fs->cfg.migration_guest_error || r == -ENOMEM || r == -EEXIST || r == -E2BIG) {
		log_error("Migration failed: inode %llu%s%s: %s (%s)", (unsigned long long)mi->id,
			  mi->name ? " " : "", mi->name ? mi->name : "", why, strerror(-r));
		return r == -EAGAIN ? -EIO : r;
	}
	log_warn("migration: inode %llu%s%s: %s (%s); the guest gets EIO on it",
		 (unsigned long long)mi->id, mi->name ? " " : "", mi->name ? mi->name : "", why,
		 strerror(-r));
	r = inode_place(a->fs, mi->id, -1, NULL, mi->nlookup, true, 0, NULL);
	if (r == 0)
		a->status[k] = LOST;
	return r;
}

static int place_inodes(struct apply *a)
{
	const struct mig_state *s = a->s;
	size_t left = 0;

	for (size_t k = 0; k < s->ninodes; k++) {
		if (s->inodes[k].loc == MIG_LOC_ROOT)
			a->status[k] = PLACED;
		else
			left++;
	}
	while (left > 0) {
		size_t before = left;

		for (size_t k = 0; k < s->ninodes; k++) {
			int r;

			if (a->status[k] != PENDING)
				continue;
			r = place_one(a, k);
			if (r == -EAGAIN)
				continue;
			if (r < 0)
				return r;
			left--;
		}
		if (left == before) {
			log_error("Migration failed: unresolved references between serialized inodes (%zu left)",
				  left);
			return -EINVAL;
		}
	}
	return 0;
}

static int root_count(struct apply *a)
{
	struct vfsd_passthrough *fs = a->fs;
	struct fs_inode *root;
	struct mig_fh got;

	for (size_t k = 0; k < a->s->ninodes; k++) {
		const struct mig_inode *mi = &a->s->inodes[k];

		if (mi->loc != MIG_LOC_ROOT)
			continue;
		if (mi->has_verify &&
		    (migrate_fh_of(fs->root_fd, &got) < 0 || !same_fh(&mi->verify, &got))) {
			log_error("Migration failed: the shared directory is not the source's (its file handle differs)");
			return -ESTALE;
		}
		pthread_mutex_lock(&fs->inodes.lock);
		root = slot_get(&fs->inodes.slots, FS_ROOT_ID);
		if (root)
			root->nlookup = mi->nlookup;
		pthread_mutex_unlock(&fs->inodes.lock);
	}
	return 0;
}

static int place_handles(struct apply *a)
{
	struct vfsd_passthrough *fs = a->fs;

	for (size_t k = 0; k < a->s->nhandles; k++) {
		const struct mig_handle *mh = &a->s->handles[k];
		struct fs_inode *inode;
		uint64_t dir_off = 0;
		int flags = fs_reopen_flags(fs, (uint32_t)mh->flags);
		int r = inode_get(fs, mh->node, &inode), fd;

		if (r < 0) {
			if (fs->cfg.migration_guest_error) {
				log_warn("migration: handle %llu: its inode %llu was not found; the guest gets EBADF on it",
					 (unsigned long long)mh->id, (unsigned long long)mh->node);
				continue;
			}
			log_error("Migration failed: handle %llu: its inode %llu: %s",
				  (unsigned long long)mh->id, (unsigned long long)mh->node, strerror(-r));
			return r;
		}
		fd = flags < 0 ? flags : fs_reopen(fs, inode, flags);
		if (fd >= 0 && mh->has_pos) {
			if (inode->type == S_IFDIR && mh->dir_off &&
			    lseek(fd, (off_t)mh->dir_off, SEEK_SET) >= 0)
				dir_off = mh->dir_off; /* else the first READDIR seeks */
			else if (inode->type != S_IFDIR)
				(void)!lseek(fd, (off_t)mh->offset, SEEK_SET);
		}
		r = fd < 0 ? fd : handle_place(fs, mh->id, inode, fd, dir_off);
		inode_put(fs, inode);
		if (r < 0) {
			if (fs->cfg.migration_guest_error && r != -ENOMEM && r != -EEXIST) {
				log_warn("migration: handle %llu on inode %llu does not open again (%s); the guest gets EBADF on it",
					 (unsigned long long)mh->id, (unsigned long long)mh->node,
					 strerror(-r));
				continue;
			}
			log_error("Migration failed: handle %llu on inode %llu does not open again: %s",
				  (unsigned long long)mh->id, (unsigned long long)mh->node,
				  strerror(-r));
			return r;
		}
	}
	return 0;
}

/* The source's session against this daemon's configuration (as virtiofsd: an option the
 * guest relies on that this daemon would not give is an error). */
static int check_session(struct vfsd_passthrough *fs, struct fuse_server *srv,
			 const struct mig_session *ses)
{
	static const struct {
		unsigned int bit;
		const char *what, *option;
	} opts[] = {
		{ FS_SESSION_WRITEBACK, "the writeback cache", "--writeback" },
		{ FS_SESSION_SUBMOUNTS, "announced submounts", "--announce-submounts" },
		{ FS_SESSION_ACL, "POSIX ACLs", "--posix-acl" },
	};
	const bool src[] = { ses->writeback, ses->announce_submounts, ses->posix_acl };
	unsigned int session = __atomic_load_n(&fs->session, __ATOMIC_ACQUIRE);

	for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
		if (src[k] && !(session & opts[k].bit)) {
			log_error("Migration failed: the source's session has %s, this daemon's configuration does not (%s)",
				  opts[k].what, opts[k].option);
			return -EINVAL;
		}
	}
	if (!ses->known) {
		/* The Rust virtiofsd's stream says only these: what else the guest agreed is taken
		 * as a Linux 6.1 guest's; what it did not agree is taken back. */
		static const struct {
			unsigned int bit;
			uint64_t flag;
		} back[] = {
			{ FS_SESSION_WRITEBACK, FUSE_WRITEBACK_CACHE },
			{ FS_SESSION_SUBMOUNTS, FUSE_SUBMOUNTS },
			{ FS_SESSION_SUPP_GROUPS, FUSE_CREATE_SUPP_GROUP },
		};
		const bool have[] = { ses->writeback, ses->announce_submounts, ses->sup_groups };
		uint64_t enabled = fuse_session_flags(srv);

		for (size_t k = 0; k < ARRAY_SIZE(back); k++) {
			if (!have[k]) {
				session &= ~back[k].bit;
				enabled &= ~back[k].flag;
			}
		}
		__atomic_store_n(&fs->session, session, __ATOMIC_RELEASE);
		__atomic_store_n(&srv->enabled, enabled, __ATOMIC_RELAXED);
	}
	return 0;
}

int migrate_apply(struct vfsd_passthrough *fs, struct fuse_server *srv,
		  const struct mig_state *s)
{
	struct apply a = { .fs = fs, .s = s };
	uint64_t agreed = 0;
	int r;

	r = fuse_server_resume(srv, s->session.known, s->session.minor, s->session.enabled,
			       &agreed);
	if (r < 0) {
		log_error("Migration failed: the source's FUSE session (7.%u) cannot be resumed: %s",
			  s->session.minor, strerror(-r));
		return r;
	}
	if (s->session.known && agreed != s->session.enabled)
		log_warn("migration: the source agreed FUSE flags 0x%llx, this daemon 0x%llx",
			 (unsigned long long)s->session.enabled, (unsigned long long)agreed);
	r = check_session(fs, srv, &s->session);
	a.status = calloc(s->ninodes + 1, 1);
	a.by_id = calloc(s->ninodes + 1, sizeof(*a.by_id));
	a.by_path = calloc(s->ninodes + 1, sizeof(*a.by_path));
	a.mount_fds = malloc((s->nmounts + 1) * sizeof(*a.mount_fds));
	for (size_t k = 0; a.mount_fds && k < s->nmounts; k++)
		a.mount_fds[k] = -1;
	if (r == 0 && (!a.status || !a.by_id || !a.by_path || !a.mount_fds))
		r = -ENOMEM;
	if (r == 0) {
		for (size_t k = 0; k < s->ninodes; k++)
			a.by_id[k] = k;
		sort_state = s; /* one load at a time: the transfer thread */
		qsort(a.by_id, s->ninodes, sizeof(*a.by_id), cmp_id);
		for (size_t k = 0; k < s->ninodes; k++)
			if (s->inodes[k].loc == MIG_LOC_FULL_PATH)
				a.by_path[a.npaths++] = k;
		qsort(a.by_path, a.npaths, sizeof(*a.by_path), cmp_path);
		r = root_count(&a);
	}
	if (r == 0)
		r = place_inodes(&a);
	if (r == 0)
		r = place_handles(&a);
	for (size_t k = 0; a.mount_fds && k < s->nmounts; k++)
		vfsd_closep(&a.mount_fds[k]);
	free(a.status);
	free(a.by_id);
	free(a.by_path);
	free(a.mount_fds);
	/* The placed slots leave the free lists (which fs_init filled) before anything frees
	 * them, on failure too. */
	fs_tables_settle(fs);
	if (r < 0) {
		/* No half state: the daemon has no session, as before any INIT. */
		srv->ops->destroy(srv->fs);
		return r;
	}
	fuse_server_resumed(srv);
	return 0;
}

int migrate_load(struct vfsd_passthrough *fs, struct fuse_server *srv, const uint8_t *buf,
		 size_t len)
{
	struct mig_state s;
	char err[256] = "";
	int r = mig_decode(buf, len, &s, err, sizeof(err));

	if (r < 0) {
		log_error("Migration failed: the device state is refused: %s",
			  err[0] ? err : strerror(-r));
		return r;
	}
	log_info("migration: loading %zu inodes, %zu handles (%s format)", s.ninodes, s.nhandles,
		 mig_native_magic(buf, len) ? "vfsd" : "virtiofsd");
	if (mig_native_magic(buf, len) && !s.session.known) {
		/* vfsd's source had no session (the guest never mounted): neither has this one,
		 * and the guest's INIT starts it. */
		log_info("migration: the source had no FUSE session; waiting for the guest's INIT");
		fuse_server_reset(srv);
		mig_state_free(&s);
		return 0;
	}
	r = migrate_apply(fs, srv, &s);
	mig_state_free(&s);
	return r;
}
