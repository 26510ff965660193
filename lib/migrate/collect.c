/*
 * The source's half: what the guest relies on, collected from the tables when the VMM asks
 * for the state (SAVE, with the rings stopped). Each inode is described by how to find it
 * again: its path in the shared directory (find-paths: read from /proc/self/fd, then opened
 * again from the root and compared, so that a path is only sent once it is known to name the
 * object), or its file handle (file-handles).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "fs/internal.h"
#include "migrate/migrate.h"

struct held {
	struct fs_inode *inode;
	uint64_t id, nlookup;
};

/* Every inode of the table, each with a ref so that it stays while we look at it. */
static int hold_inodes(struct vfsd_passthrough *fs, struct held **out, size_t *n)
{
	struct inode_table *t = &fs->inodes;
	struct held *h;
	size_t k = 0;

	pthread_mutex_lock(&t->lock);
	h = calloc(t->count + 1, sizeof(*h));
	if (!h) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < t->slots.size && k <= t->count; s++) {
		struct fs_inode *i = t->slots.items[s];

		if (!i)
			continue;
		inode_ref_locked(fs, i);
		h[k++] = (struct held){ .inode = i, .id = inode_id(i), .nlookup = i->nlookup };
	}
	pthread_mutex_unlock(&t->lock);
	*out = h;
	*n = k;
	return 0;
}

/* An fd of the inode for the time of the collection: a handle-backed or evicted one may have
 * none, and is opened for the while (not kept: the fd budget is not spent on a save). */
static int inode_fd(struct vfsd_passthrough *fs, struct fs_inode *i, bool *owned)
{
	int fd = __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE);

	*owned = false;
	if (fd >= 0)
		return fd;
	fd = inode_open_again(fs, i);
	*owned = fd >= 0;
	return fd;
}

int migrate_fh_of(int fd, struct mig_fh *out)
{
	struct khandle_buf buf;
	struct file_handle *fh = (struct file_handle *)(void *)buf.raw;
	int mnt;

	fh->handle_bytes = FH_MAX_BYTES;
	if (name_to_handle_at(fd, "", fh, &mnt, AT_EMPTY_PATH) < 0)
		return -errno;
	if (fh->handle_bytes > MIG_FH_MAX)
		return -EOVERFLOW;
	out->mnt_id = (uint64_t)(uint32_t)mnt;
	out->type = fh->handle_type;
	out->len = fh->handle_bytes;
	memcpy(out->bytes, fh->f_handle, fh->handle_bytes);
	return 0;
}

static int fd_target(struct vfsd_passthrough *fs, int fd, char *buf, size_t size)
{
	char name[16];
	ssize_t n;

	snprintf(name, sizeof(name), "%d", fd);
	n = readlinkat(fs->proc_self_fd, name, buf, size - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= size - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

/*
 * The path of the inode open on fd, relative to the root, confirmed: opened again from the
 * root (never following a symlink out of it) it is the same object. *why says what failed.
 */
static int confirmed_path(struct vfsd_passthrough *fs, const struct fs_inode *i, int fd,
			  const char *root, char **out, const char **why)
{
	char target[PATH_MAX + 16];
	size_t rlen = strlen(root);
	const char *rel;
	struct statx st;
	int r, pfd;

	*out = NULL;
	r = fd_target(fs, fd, target, sizeof(target));
	if (r < 0) {
		*why = "its path cannot be read";
		return r;
	}
	if (strcmp(root, "/") == 0)
		rel = target[0] == '/' ? target + 1 : NULL;
	else
		rel = strncmp(target, root, rlen) == 0 && target[rlen] == '/' ? target + rlen + 1
									      : NULL;
	if (!rel || !*rel) {
		*why = "it is not below the shared directory";
		return -ENOENT;
	}
	pfd = fs_open_child(fs, fs->root_fd, rel, O_PATH, 0);
	if (pfd < 0) {
		size_t len = strlen(target);

		*why = len > 10 && strcmp(target + len - 10, " (deleted)") == 0 ?
			       "it was deleted" :
			       "its path no longer opens";
		return pfd;
	}
	r = fs_stat(pfd, &st);
	close(pfd);
	if (r < 0) {
		*why = "its path cannot be examined";
		return r;
	}
	if (st.stx_ino != i->ino || makedev(st.stx_dev_major, st.stx_dev_minor) != i->dev ||
	    st.stx_mnt_id != i->mnt_id) {
		*why = "its path names another object";
		return -ESTALE;
	}
	*out = strdup(rel);
	return *out ? 0 : -ENOMEM;
}

static int add_mount(struct mig_state *s, uint64_t id)
{
	struct mig_mount *m;

	for (size_t k = 0; k < s->nmounts; k++)
		if (s->mounts[k].id == id)
			return 0;
	if (s->nmounts >= MIG_MAX_MOUNTS)
		return -E2BIG;
	m = realloc(s->mounts, (s->nmounts + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	s->mounts = m;
	m[s->nmounts++] = (struct mig_mount){ .id = id };
	return 0;
}

/* One inode's location; returns 0, or -errno when the save must fail. */
static int locate(struct vfsd_passthrough *fs, struct mig_state *s, struct mig_inode *mi,
		  struct fs_inode *i, const char *root, unsigned int *invalid)
{
	bool owned;
	const char *why = NULL;
	int fd, r;

	if (i->slot == FS_ROOT_ID) {
		mi->loc = MIG_LOC_ROOT;
		return 0;
	}
	mi->loc = MIG_LOC_INVALID;
	if (i->lost) {
		why = "it was lost by an earlier migration";
		r = -ENOENT;
		goto invalid;
	}
	fd = inode_fd(fs, i, &owned);
	if (fd < 0) {
		why = "it cannot be opened";
		r = fd;
		goto invalid;
	}
	if (fs->cfg.migration_mode == VFSD_MIGRATION_FILE_HANDLES) {
		r = migrate_fh_of(fd, &mi->fh);
		if (r == 0)
			r = add_mount(s, mi->fh.mnt_id);
		if (r == 0) {
			mi->loc = MIG_LOC_FILE_HANDLE;
			goto out;
		}
		log_warn("migration: inode %llu has no file handle (%s); sending its path",
			 (unsigned long long)mi->id, strerror(-r));
	}
	r = confirmed_path(fs, i, fd, root, &mi->name, &why);
	if (r == 0) {
		mi->loc = MIG_LOC_FULL_PATH;
		if (fs->cfg.migration_verify_handles && migrate_fh_of(fd, &mi->verify) == 0)
			mi->has_verify = true;
	}
out:
	if (owned)
		close(fd);
	if (r == 0)
		return 0;
invalid:
	(*invalid)++;
	if (fs->cfg.migration_confirm_paths) {
		log_error("migration: cannot confirm the path of inode %llu: %s (%s)",
			  (unsigned long long)mi->id, why ? why : "?", strerror(-r));
		return r;
	}
	log_warn("migration: inode %llu cannot be found again: %s (%s); the destination will not have it",
		 (unsigned long long)mi->id, why ? why : "?", strerror(-r));
	return 0;
}

/* Each mount a handle names, by a path on it relative to the root (the destination opens it
 * to call open_by_handle_at): the shortest confirmed path of a directory or file there. */
static void mount_paths(struct vfsd_passthrough *fs, struct mig_state *s, struct held *h,
			size_t n, const char *root)
{
	for (size_t m = 0; m < s->nmounts; m++) {
		struct mig_mount *mm = &s->mounts[m];

		for (size_t k = 0; k < n && !mm->path; k++) {
			struct fs_inode *i = h[k].inode;
			const char *why;
			char *path = NULL;
			bool owned;
			int fd;

			if (i->lost || i->mnt_id != mm->id || (i->type != S_IFDIR && i->type != S_IFREG))
				continue;
			if (i->slot == FS_ROOT_ID) {
				mm->path = strdup(".");
				break;
			}
			fd = inode_fd(fs, i, &owned);
			if (fd < 0)
				continue;
			if (confirmed_path(fs, i, fd, root, &path, &why) == 0)
				mm->path = path;
			if (owned)
				close(fd);
		}
		if (!mm->path) {
			log_warn("migration: no path reaches mount %llu; the destination uses the shared directory's",
				 (unsigned long long)mm->id);
			mm->path = strdup(".");
		}
	}
}

static int collect_handles(struct vfsd_passthrough *fs, struct mig_state *s)
{
	struct handle_table *t = &fs->handles;
	struct fs_handle **held;
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	held = calloc(t->slots.size + 1, sizeof(*held));
	if (!held) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	for (uint32_t k = 0; k < t->slots.size; k++) {
		struct fs_handle *h = t->slots.items[k];

		if (h) {
			h->refs++;
			held[n++] = h;
		}
	}
	pthread_mutex_unlock(&t->lock);
	s->handles = calloc(n + 1, sizeof(*s->handles));
	for (size_t k = 0; k < n; k++) {
		struct fs_handle *h = held[k];
		struct mig_handle *mh = s->handles ? &s->handles[s->nhandles] : NULL;
		int fl = fcntl(h->fd, F_GETFL);

		if (mh && fl >= 0) {
			*mh = (struct mig_handle){ .id = slot_id(h->slot, h->gen),
						   .node = inode_id(h->inode),
						   .flags = fl & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY),
						   .has_pos = true };
			pthread_mutex_lock(&h->lock);
			if (h->inode->type == S_IFDIR) {
				mh->dir_off = h->dir_off;
			} else {
				off_t off = lseek(h->fd, 0, SEEK_CUR);

				mh->offset = off < 0 ? 0 : (uint64_t)off;
			}
			pthread_mutex_unlock(&h->lock);
			s->nhandles++;
		} else if (mh) {
			log_warn("migration: handle %llu: %s; the destination will not have it",
				 (unsigned long long)slot_id(h->slot, h->gen), strerror(errno));
		}
		handle_put(fs, h);
	}
	free(held);
	return s->handles ? 0 : -ENOMEM;
}

int migrate_collect(struct vfsd_passthrough *fs, struct fuse_server *srv, struct mig_state *s)
{
	char root[PATH_MAX];
	struct held *h = NULL;
	unsigned int invalid = 0;
	size_t n = 0;
	uint32_t minor;
	uint64_t enabled;
	int r;

	memset(s, 0, sizeof(*s));
	s->session.known = fuse_server_session(srv, &minor, &enabled);
	if (s->session.known) {
		s->session.minor = minor;
		s->session.enabled = enabled;
	} else {
		log_info("migration: the guest has no FUSE session; saving an empty state");
	}
	s->session.writeback = fs_session(fs, FS_SESSION_WRITEBACK);
	s->session.announce_submounts = fs_session(fs, FS_SESSION_SUBMOUNTS);
	s->session.posix_acl = fs_session(fs, FS_SESSION_ACL);
	s->session.sup_groups = fs_session(fs, FS_SESSION_SUPP_GROUPS);
	s->session.killpriv_v2 = fs_session(fs, FS_SESSION_KILLPRIV_V2);

	r = fd_target(fs, fs->root_fd, root, sizeof(root));
	if (r < 0) {
		log_error("migration: cannot read the shared directory's path: %s", strerror(-r));
		return r;
	}
	r = hold_inodes(fs, &h, &n);
	if (r < 0)
		return r;
	s->inodes = calloc(n + 1, sizeof(*s->inodes));
	if (!s->inodes)
		r = -ENOMEM;
	for (size_t k = 0; k < n && r == 0; k++) {
		struct mig_inode *mi = &s->inodes[s->ninodes++];

		mi->id = h[k].id;
		mi->nlookup = h[k].nlookup;
		r = locate(fs, s, mi, h[k].inode, root, &invalid);
	}
	if (r == 0)
		mount_paths(fs, s, h, n, root);
	for (size_t k = 0; k < n; k++)
		inode_put(fs, h[k].inode);
	free(h);
	if (r == 0)
		r = collect_handles(fs, s);
	if (r < 0) {
		mig_state_free(s);
		return r;
	}
	for (size_t k = 0; k < s->ninodes; k++)
		if (s->inodes[k].id >= s->next_inode)
			s->next_inode = s->inodes[k].id + 1;
	for (size_t k = 0; k < s->nhandles; k++)
		if (s->handles[k].id >= s->next_handle)
			s->next_handle = s->handles[k].id + 1;
	log_info("migration: collected %zu inodes (%u not found again), %zu handles, %zu mounts",
		 s->ninodes, invalid, s->nhandles, s->nmounts);
	return 0;
}

int migrate_save(struct vfsd_passthrough *fs, struct fuse_server *srv, uint8_t **buf,
		 size_t *len)
{
	struct mig_state s;
	char err[256] = "";
	int r = migrate_collect(fs, srv, &s);

	if (r < 0) {
		log_error("Migration failed: cannot collect the state: %s", strerror(-r));
		return r;
	}
	r = mig_encode(&s, (enum mig_format)fs->cfg.migration_format, buf, len, err, sizeof(err));
	if (r < 0)
		log_error("Migration failed: cannot encode the state: %s", err[0] ? err : strerror(-r));
	mig_state_free(&s);
	return r;
}
