/* One daemon's life: listener and pid file, sandbox, filesystem, FUSE server, transport, loop. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/unix.h"
#include "base/util.h"
#include "daemon/config.h"
#include "fs/fs.h"
#include "fuse/server.h"
#include "migrate/migrate.h"
#include "fusedev/fusedev.h"
#include "metrics/metrics.h"
#include "metrics/push.h"
#include "sec/caps.h"
#include "sec/sandbox.h"
#include "vhost/device.h"

/* The write end of a standalone daemon's pipe to its metrics pusher (metrics/push.h), or -1,
 * and the process that tells the pusher how the daemon ended: the one the runtime started (a
 * namespace sandbox's serving child closes its copy; a signal it gets is not the daemon's end). */
static int metrics_status_fd = -1;
static pid_t metrics_status_pid;

static void on_fatal_signal(int sig)
{
	(void)sig;
	if (metrics_status_fd >= 0 && getpid() == metrics_status_pid &&
	    write(metrics_status_fd, "T\n", 2) < 0) {
		/* the pusher is gone: nobody to tell */
	}
	_exit(1);
}

/*
 * Metrics: a supervisor's child counts into the region on --metrics-fd; a daemon with
 * --metrics-push makes its own region and forks its pusher now, before the sandbox, so the
 * pushing happens outside the serving process's namespaces and seccomp filter.
 */
static int start_metrics(const struct vfsd_config *cfg)
{
	struct metrics_gateway gw;
	char err[512] = "", host[256] = "localhost", sandbox[64];
	const char *instance = cfg->metrics.instance, *label = cfg->metrics.sandbox;
	int fd, pipefd[2], r;
	pid_t pid;

	if (cfg->metrics.fd >= 0) {
		r = metrics_attach(cfg->metrics.fd, false, err, sizeof(err));
		if (r < 0) {
			log_error("%s", err);
			return r;
		}
		close(cfg->metrics.fd); /* the mapping is what counts */
		return 0;
	}
	if (!cfg->metrics.url)
		return 0;
	if (!instance) {
		gethostname(host, sizeof(host) - 1);
		instance = host;
	}
	if (!label)
		label = cfg->socket_path ? cfg->socket_path : cfg->fuse_mountpoint;
	if (!label) {
		snprintf(sandbox, sizeof(sandbox), "pid-%d", (int)getpid());
		label = sandbox;
	}
	r = metrics_gateway_init(&gw, cfg->metrics.url, instance, cfg->metrics.interval_ms, err,
				 sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	fd = metrics_memfd();
	if (fd < 0 || metrics_attach(fd, true, err, sizeof(err)) < 0 ||
	    pipe2(pipefd, O_CLOEXEC) < 0) {
		log_error("cannot set up metrics: %s", fd < 0 ? strerror(-fd) : err[0] ? err : strerror(errno));
		metrics_gateway_free(&gw);
		return -EIO;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		close(pipefd[1]);
		if (cfg->fd >= 0)
			close(cfg->fd);
		if (cfg->ready_fd >= 0)
			close(cfg->ready_fd);
		if (cfg->state_fd >= 0)
			close(cfg->state_fd);
		if (cfg->import_state_fd >= 0)
			close(cfg->import_state_fd);
		_exit(metrics_push_helper(&gw, fd, pipefd[0], label));
	}
	close(pipefd[0]);
	close(fd);
	metrics_gateway_free(&gw);
	metrics_status_pid = getpid();
	metrics_status_fd = pipefd[1];
	/* The namespace sandbox tells the pid of the process that serves; otherwise it is us. */
	if (cfg->sandbox != VFSD_SANDBOX_NAMESPACE)
		dprintf(metrics_status_fd, "P%d\n", (int)getpid());
	return 0;
}

/* Creates, locks and fills "<socket>.pid"; the fd stays open for the process's life. */
static int lock_pid_file(const char *socket_path)
{
	char path[PATH_MAX + 8], pid[32];
	struct stat a, b;
	int fd;

	if (snprintf(path, sizeof(path), "%s.pid", socket_path) >= (int)sizeof(path)) {
		log_error("Error creating pid file '%s.pid': name too long", socket_path);
		return -ENAMETOOLONG;
	}
	for (;;) {
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int err = errno;

			log_error("Error creating pid file '%s': %s", path, strerror(err));
			if (fd >= 0)
				close(fd);
			return -err;
		}
		/* Retry if the file was replaced between open and lock. */
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			break;
		close(fd);
	}
	snprintf(pid, sizeof(pid), "%d\n", getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
		log_warn("cannot write pid file '%s': %s", path, strerror(errno));
	return fd;
}

static int make_listener(const struct vfsd_config *cfg, int *pid_fd)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char dir[PATH_MAX];
	struct stat st;
	mode_t old_umask;
	int fd, r = 0;

	if (strlen(cfg->socket_path) >= sizeof(addr.sun_path)) {
		log_error("socket path '%s' is too long", cfg->socket_path);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", cfg->socket_path);
	const char *parent = dirname(dir);

	if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("%s does not exist or is not a directory", parent);
		return -ENOENT;
	}
	old_umask = umask(cfg->socket_group ? 0007 : 0077);
	*pid_fd = lock_pid_file(cfg->socket_path);
	if (*pid_fd < 0) {
		umask(old_umask);
		return *pid_fd;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	memcpy(addr.sun_path, cfg->socket_path, strlen(cfg->socket_path) + 1); /* length checked */
	unlink(cfg->socket_path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", cfg->socket_path, strerror(errno));
		close(fd);
		goto out;
	}
	if (cfg->socket_group) {
		struct group *g = getgrnam(cfg->socket_group);

		if (!g) {
			log_error("Couldn't resolve the group name specified for the socket path");
			r = -ENOENT;
		} else if (chown(cfg->socket_path, -1, g->gr_gid) < 0) {
			r = -errno;
			log_error("cannot change the group of %s: %s", cfg->socket_path, strerror(errno));
		}
		if (r < 0) {
			close(fd);
			goto out;
		}
	}
out:
	umask(old_umask);
	return r < 0 ? r : fd;
}

#define NOFILE_TARGET 1000000ull

/* RLIMIT_NOFILE as virtiofsd sets it: every inode the guest knows holds an fd. */
static int set_nofile_limit(const struct vfsd_config *cfg)
{
	unsigned long long nr_open = NOFILE_TARGET, target;
	struct rlimit rl;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%llu", &nr_open) != 1)
			nr_open = NOFILE_TARGET;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_error("Error increasing number of open files: %s", strerror(errno));
		return -errno;
	}
	if (cfg->rlimit_nofile_set) {
		if (cfg->rlimit_nofile == 0)
			return 0;
		if (cfg->rlimit_nofile > nr_open) {
			log_error("Error increasing number of open files: It cannot be increased above %llu",
				  nr_open);
			return -EINVAL;
		}
		rl.rlim_cur = rl.rlim_max = cfg->rlimit_nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_error("Error increasing number of open files: %s", strerror(errno));
			return -errno;
		}
		return 0;
	}
	if (rl.rlim_cur >= NOFILE_TARGET)
		return 0;
	target = nr_open < NOFILE_TARGET ? nr_open : NOFILE_TARGET;
	struct rlimit want = { .rlim_cur = target, .rlim_max = target };

	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return 0;
	log_warn("cannot raise the open-file limit to %llu (%s); using the hard limit %llu", target,
		 strerror(errno), (unsigned long long)rl.rlim_max);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_error("Error increasing number of open files: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * The fds the guest may make vfsd hold (§2.3 of virtiofsd's behaviour): the open-file limit
 * less what the daemon keeps for itself (609, and one per worker thread). Negative: too
 * small, with the message printed.
 */
static long guest_fd_budget(const struct vfsd_config *cfg)
{
	unsigned int threads = cfg->thread_pool_size > 1 ? cfg->thread_pool_size : 1;
	long reserved = 609 + (long)threads, limit;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_error("getrlimit: %s", strerror(errno));
		return -1;
	}
	limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
	if (limit <= reserved) { /* (0 left would leave the guest nothing: refused too) */
		log_error("Maximum number of file descriptors too small: Limit is %ld, must be at least %ld",
			  limit, reserved);
		return -1;
	}
	if (limit - reserved < 128)
		log_warn("File descriptor count limit is very small, leaving only %ld file descriptors for the guest",
			 limit - reserved);
	return limit - reserved;
}

struct daemon {
	int ready_fd; /* --ready-fd, until told */
	int state_fd; /* --state-fd: the supervisor's export-state socket, or -1 */
	struct vfsd_passthrough *fs;
	struct fuse_server server;
	struct vhost_dev *dev;
};

static uint32_t handle_request(void *opaque, struct virtq_elem *elem)
{
	struct daemon *d = opaque;
	return fuse_server_handle_async(&d->server, virtq_elem_rd(elem), elem->nrd,
					virtq_elem_wr(elem), elem->nwr, elem);
}

/* A waiting lock request: the FUSE server answers it later through the device. */
static void *defer_request(void *opaque, void *treq)
{
	struct daemon *d = opaque;

	return vhost_dev_defer(d->dev, treq);
}

static void complete_request(void *token, const void *reply, uint32_t len)
{
	vhost_dev_complete(token, reply, len);
}

static void cancel_deferred(void *opaque)
{
	struct daemon *d = opaque;

	fuse_server_cancel_waiters(&d->server);
}

static void handle_reset(void *opaque)
{
	struct daemon *d = opaque;

	fuse_server_reset(&d->server);
}

/* Migration: the device state out of and into the tables (lib/migrate). */
static int save_state(void *opaque, uint8_t **buf, size_t *len)
{
	struct daemon *d = opaque;

	return migrate_save(d->fs, &d->server, buf, len);
}

static int load_state(void *opaque, const uint8_t *buf, size_t len)
{
	struct daemon *d = opaque;

	return migrate_load(d->fs, &d->server, buf, len);
}

/*
 * The supervisor's export-state and resume (docs/control.md), one request per connection on
 * the --state-fd socket: "export\n" with the destination fd, or "resume\n"; the answer is
 * "ok [BYTES]\n" or "error ERRNO MESSAGE\n". An export pauses the rings first (requests in
 * flight end) and, once the state is written, leaves them paused: whatever the guest did after
 * the snapshot would be lost on the destination; a failed export resumes them. Runs on the
 * loop thread, which also handles the VMM's messages: they wait at most the write's 30 s.
 */
#define STATE_REQUEST_TIMEOUT_MS 1000
#define STATE_WRITE_TIMEOUT_MS 30000

static void state_request(struct daemon *d)
{
	char line[64], reply[300];
	struct iovec iov = { line, sizeof(line) - 1 };
	struct pollfd p = { .events = POLLIN };
	int fds[1] = { -1 }, conn, r;
	unsigned int nfds = 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	ssize_t n;

	conn = accept4(d->state_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (conn < 0)
		return;
	p.fd = conn;
	n = poll(&p, 1, STATE_REQUEST_TIMEOUT_MS) == 1 ?
		    unix_recv_fds(conn, &iov, 1, 0, fds, 1, &nfds) :
		    -ETIMEDOUT;
	if (n > 0)
		line[n] = '\0';
	if (n > 0 && strcmp(line, "export\n") == 0 && nfds == 1) {
		vhost_dev_wait_transfer(d->dev); /* not while a VMM's LOAD fills the tables */
		vhost_dev_pause(d->dev);
		r = migrate_save(d->fs, &d->server, &buf, &len);
		if (r == 0)
			r = fd_write_all(fds[0], buf, len, STATE_WRITE_TIMEOUT_MS);
		if (r == 0) {
			log_info("migration: state exported (%zu bytes); the rings stay paused", len);
			snprintf(reply, sizeof(reply), "ok %zu\n", len);
		} else {
			/* Nothing went anywhere: the guest is served here again. */
			vhost_dev_resume(d->dev);
			log_error("migration: export failed: %s; serving again", strerror(-r));
			snprintf(reply, sizeof(reply),
				 "error %d the export failed (%s%s); the daemon serves again\n", -r,
				 strerror(-r),
				 r == -ETIMEDOUT ? ": the destination did not take the state" : "");
		}
		free(buf);
	} else if (n > 0 && strcmp(line, "resume\n") == 0 && nfds == 0) {
		r = vhost_dev_resume(d->dev);
		log_info("migration: rings resumed by the supervisor");
		if (r == 0)
			snprintf(reply, sizeof(reply), "ok\n");
		else
			snprintf(reply, sizeof(reply), "error %d a ring did not restart\n", -r);
	} else {
		snprintf(reply, sizeof(reply), "error %d bad request on the state socket\n", EINVAL);
	}
	if (fds[0] >= 0)
		close(fds[0]);
	if (fd_write_all(conn, reply, strlen(reply), STATE_REQUEST_TIMEOUT_MS) < 0)
		log_warn("migration: the supervisor did not take the answer");
	close(conn);
}

/* --import-state-fd: the state a runtime moved here, applied before anything is served. */
static int import_state(struct daemon *d, int fd)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = fd_read_all(fd, VHOST_DEV_STATE_MAX, 60000, &buf, &len);

	close(fd);
	if (r < 0) {
		log_error("cannot read the state to import: %s", strerror(-r));
		return r;
	}
	r = migrate_load(d->fs, &d->server, buf, len);
	free(buf);
	if (r == 0)
		log_info("migration: imported a state of %zu bytes; the guest's session goes on", len);
	return r;
}

/* Tells whoever waits on --ready-fd (the supervisor) that the daemon now serves. */
static void signal_ready(struct daemon *d)
{
	if (d->ready_fd < 0)
		return;
	if (write(d->ready_fd, "R\n", 2) != 2)
		log_warn("cannot write to --ready-fd %d: %s", d->ready_fd, strerror(errno));
	close(d->ready_fd);
	d->ready_fd = -1;
}

/* Waits for one of the fds (the VMM's socket, the supervisor's state socket) to be readable:
 * 1 for the first, 2 for the second, or -1. */
static int wait_input(int fd, int state_fd)
{
	struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN }, { .fd = state_fd, .events = POLLIN } };

	for (;;) {
		if (poll(pfd, state_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			return -1;
		}
		if (pfd[0].revents)
			return 1;
		if (pfd[1].revents)
			return 2;
	}
}

/* Serves one connection until the VMM hangs up; returns the exit status. */
static int serve(struct daemon *d, int listen_fd)
{
	int conn, status = 0, w;

	log_info("Waiting for vhost-user socket connection...");
	signal_ready(d);
	for (;;) {
		w = wait_input(listen_fd, d->state_fd);
		if (w < 0)
			return 1;
		if (w == 2) {
			state_request(d);
			continue;
		}
		conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn >= 0)
			break;
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
			log_error("accept: %s", strerror(errno));
			return 1;
		}
	}
	close(listen_fd);
	log_info("Client connected, servicing requests");
	for (;;) {
		int r;

		w = wait_input(conn, d->state_fd);
		if (w < 0) {
			status = 1;
			break;
		}
		if (w == 2) {
			state_request(d);
			continue;
		}
		r = vhost_dev_handle_msg(d->dev, conn);
		if (r == -ECONNRESET) {
			log_info("Client disconnected, shutting down");
			break;
		}
		if (r < 0) {
			log_error("vhost-user connection failed: %s", strerror(-r));
			status = 1;
			break;
		}
	}
	close(conn);
	return status;
}

static int run(const struct vfsd_config *cfg);

int vfsd_run(const struct vfsd_config *cfg)
{
	int status = run(cfg);

	if (metrics_status_fd >= 0 && getpid() == metrics_status_pid)
		dprintf(metrics_status_fd, "X%d\n", status);
	return status;
}

static int run(const struct vfsd_config *cfg)
{
	struct sigaction sa = { .sa_handler = on_fatal_signal };
	struct daemon d = { .ready_fd = cfg->ready_fd, .state_fd = cfg->state_fd };
	struct vfsd_sandbox sb = { .report_pid_fd = -1 };
	struct vfsd_caps_mods mods = { 0 };
	struct vfsd_seccomp_opts seccomp_opts = { .syslog = cfg->syslog };
	struct stat st;
	char err[512] = "";
	int loadavg_fd = -1; /* adaptive polling's view of the run queue (vhost/queue.c) */
	int cleanup_close pid_fd = -1;
	int listen_fd, r, status;

	vfsd_log_init(cfg->log_level_debug_forced ? VFSD_LOG_DEBUG : cfg->log_level, cfg->syslog,
		      "vfsd");
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Not for newuidmap: the ready fd is the supervisor's business only. */
	if (cfg->ready_fd >= 0 && fcntl(cfg->ready_fd, F_SETFD, FD_CLOEXEC) < 0) {
		log_error("--ready-fd %d: %s", cfg->ready_fd, strerror(errno));
		return 1;
	}
	if (cfg->state_fd >= 0 && fcntl(cfg->state_fd, F_SETFD, FD_CLOEXEC) < 0) {
		log_error("--state-fd %d: %s", cfg->state_fd, strerror(errno));
		return 1;
	}
	if (cfg->import_state_fd >= 0 && fcntl(cfg->import_state_fd, F_SETFD, FD_CLOEXEC) < 0) {
		log_error("--import-state-fd %d: %s", cfg->import_state_fd, strerror(errno));
		return 1;
	}
	if (!cfg->shared_dir) {
		log_error("missing \"--shared-dir\" or \"-o source\" option");
		return 1;
	}
	if (stat(cfg->shared_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("%s does not exist or is not a directory", cfg->shared_dir);
		return 1;
	}
	if (start_metrics(cfg) < 0)
		return 1;
	if (cfg->fuse_mountpoint) {
		listen_fd = -1; /* the /dev/fuse connection, opened once the checks below pass */
	} else if (cfg->fd >= 0) {
		listen_fd = cfg->fd;
	} else {
		listen_fd = make_listener(cfg, &pid_fd);
		if (listen_fd < 0)
			return 1;
	}

	if (set_nofile_limit(cfg) < 0)
		return 1;
	long guest_fd_limit = guest_fd_budget(cfg);

	if (guest_fd_limit < 0)
		return 1;

	if (cfg->modcaps && vfsd_caps_parse(cfg->modcaps, &mods, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}

	/* open_by_handle_at needs CAP_DAC_READ_SEARCH, so file handles keep it (as virtiofsd). */
	if (cfg->fs.file_handles != VFSD_FILE_HANDLES_NEVER) {
		if (mods.remove & (1ull << CAP_DAC_READ_SEARCH)) {
			log_error("can't disable DAC_READ_SEARCH when using --inode-file-handles=%s",
				  cfg->fs.file_handles == VFSD_FILE_HANDLES_PREFER ? "prefer" : "mandatory");
			return 1;
		}
		mods.add |= 1ull << CAP_DAC_READ_SEARCH;
	} else if (cfg->fs.migration_mode == VFSD_MIGRATION_FILE_HANDLES &&
		   !(mods.remove & (1ull << CAP_DAC_READ_SEARCH))) {
		/* A destination of --migration-mode=file-handles opens the source's handles. */
		mods.add |= 1ull << CAP_DAC_READ_SEARCH;
	}
	if ((cfg->ns_maps.nuid || cfg->ns_maps.ngid) &&
	    (geteuid() == 0 || cfg->sandbox != VFSD_SANDBOX_NAMESPACE)) {
		log_error("%s can only be used by unprivileged user where sandbox mod is namespace",
			  cfg->ns_maps.nuid ? "uid_map" : "gid_map");
		return 1;
	}
	/* Mounted before the sandbox: a namespace sandbox could not reach the host's mount point.
	 * If vfsd fails after this, the mount stays behind with no daemon, as for any FUSE
	 * file system whose daemon died: umount it. */
	if (cfg->fuse_mountpoint &&
	    fusedev_mount(cfg->fuse_mountpoint, cfg->shared_dir, &listen_fd, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	/* Adaptive polling reads the run queue's length (vhost/queue.c); the sandbox hides /proc. */
	loadavg_fd = cfg->queue_poll_us ? open("/proc/loadavg", O_RDONLY | O_CLOEXEC) : -1;
	sb.report_pid_fd = metrics_status_fd;
	r = vfsd_sandbox_enter(cfg->sandbox, cfg->shared_dir, listen_fd, &cfg->ns_maps, &sb, err,
			       sizeof(err));
	if (r == VFSD_SANDBOX_PARENT)
		return sb.exit_status;
	if (getpid() != metrics_status_pid)
		metrics_status_fd = -1; /* the namespace sandbox's child: closed there */
	if (r < 0) {
		log_error("%s", err);
		return 1;
	}
	/* As virtiofsd: the filter first, then the capabilities, before any thread exists. */
	if (vfsd_seccomp_install(cfg->seccomp, &seccomp_opts, err, sizeof(err)) < 0 ||
	    vfsd_caps_drop(&mods, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	/* libseccomp's scratch memory is free now: give it back (a fifth of an idle child's
	 * private memory, which a node with hundreds of daemons pays for each; benchmarks.md). */
	malloc_trim(0);

	struct vfsd_fs_config fcfg = cfg->fs;

	fcfg.root_dir = sb.root_dir;
	fcfg.proc_self_fd = sb.proc_self_fd;
	fcfg.guest_fd_limit = guest_fd_limit;
	fcfg.xattrmap = cfg->xattrmap_spec ? &cfg->xattrmap : NULL;
	fcfg.uid_map = &cfg->uid_map;
	fcfg.gid_map = &cfg->gid_map;

	r = vfsd_passthrough_new(&fcfg, &d.fs);
	if (r < 0) {
		log_error("Failed to create internal filesystem representation: %s", strerror(-r));
		return 1;
	}
	fuse_server_init(&d.server, &vfsd_passthrough_ops, d.fs);
	if (cfg->fuse_mountpoint) {
		log_info("Serving %s on %s through /dev/fuse", cfg->shared_dir, cfg->fuse_mountpoint);
		signal_ready(&d);
		r = fusedev_serve(listen_fd, &d.server, cfg->thread_pool_size,
				  vfsd_passthrough_thread_init);
		if (r < 0)
			log_error("/dev/fuse connection failed: %s", strerror(-r));
		else
			log_info("Unmounted, shutting down");
		close(listen_fd);
		fuse_server_cleanup(&d.server);
		vfsd_passthrough_free(d.fs);
		return r < 0 ? 1 : 0;
	}

	struct vhost_dev_config vcfg = {
		.tag = cfg->tag,
		.thread_pool_size = cfg->thread_pool_size,
		.queue_poll_ns = (uint64_t)cfg->queue_poll_us * 1000u,
		.loadavg_fd = loadavg_fd,
		.thread_init = vfsd_passthrough_thread_init,
	};
	struct vhost_backend backend = { .handle = handle_request,
					 .reset = handle_reset,
					 .cancel_deferred = cancel_deferred,
					 .save_state = save_state,
					 .load_state = load_state,
					 .opaque = &d };
	struct fuse_transport transport = { .defer = defer_request,
					    .complete = complete_request,
					    .opaque = &d };

	fuse_server_set_transport(&d.server, &transport);

	r = vhost_dev_new(&vcfg, &backend, &d.dev);
	if (r < 0) {
		log_error("Failed to start daemon: %s", strerror(-r));
		status = 1;
	} else if (cfg->import_state_fd >= 0 && import_state(&d, cfg->import_state_fd) < 0) {
		log_error("cannot import the device state: the daemon does not start");
		status = 1;
	} else {
		status = serve(&d, listen_fd);
	}
	vhost_dev_free(d.dev);
	fuse_server_cleanup(&d.server);
	vfsd_passthrough_free(d.fs);
	return status;
}
