/*
 * One daemon's configuration, built from the virtiofsd-compatible command line by
 * vfsd_parse_args(), and the entry point that runs it. The single daemon (cmd/vfsd), the
 * supervisor's children (the same binary, exec'd) and the supervisor's validation of a
 * spawn's option list all go through this one parser.
 */
#ifndef VFSD_DAEMON_CONFIG_H
#define VFSD_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/log.h"
#include "fs/fs.h"
#include "sec/sandbox.h"
#include "sec/seccomp.h"

/* What the command line asks for besides serving. */
enum vfsd_action {
	VFSD_ACTION_SERVE,	/* a single daemon: serve one VMM connection (or /dev/fuse) */
	VFSD_ACTION_SUPERVISE,	/* --control-socket: the supervisor (lib/ctl) */
	VFSD_ACTION_HELP,	/* --help */
	VFSD_ACTION_VERSION,	/* --version */
	VFSD_ACTION_PRINT_CAPS, /* --print-capabilities */
};

#define VFSD_CTL_ALLOW_MAX 32

/* The supervisor's options (--control-socket and friends). */
struct vfsd_supervisor_config {
	const char *control_socket; /* default RUNTIME_DIR/control.sock */
	const char *runtime_dir;    /* default /run/vfsd */
	const char *control_socket_group;
	uid_t allow_uid[VFSD_CTL_ALLOW_MAX]; /* --control-allow-uid (root always may) */
	gid_t allow_gid[VFSD_CTL_ALLOW_MAX]; /* --control-allow-gid */
	unsigned int nallow_uid, nallow_gid;
	unsigned int stop_timeout_ms; /* --stop-timeout: SIGTERM to SIGKILL */
	unsigned int max_per_uid;     /* --max-daemons-per-uid: live daemons of one non-root caller */
};

/* Metrics (docs/metrics.md): pushed by a daemon's own pusher process, or counted into the
 * supervisor's region. */
struct vfsd_metrics_config {
	const char *url;      /* --metrics-push */
	const char *instance; /* --metrics-instance, default the host name */
	const char *sandbox;  /* --metrics-sandbox, default the socket path */
	uint32_t interval_ms; /* --metrics-interval */
	bool interval_set;
	int fd; /* --metrics-fd: the supervisor's region, or -1 */
};

struct vfsd_config {
	enum vfsd_action action;
	const char *shared_dir;
	const char *socket_path;
	const char *socket_group;
	int fd; /* --fd: an already listening socket, or -1 */
	int ready_fd; /* --ready-fd: written "R\n" and closed once serving, or -1 */
	int state_fd; /* --state-fd: the supervisor's export-state socket (listening), or -1 */
	int import_state_fd; /* --import-state-fd: a device state to start with, or -1 */
	const char *fuse_mountpoint; /* --fuse-mountpoint: serve /dev/fuse instead of vhost-user */
	const char *tag;
	unsigned int thread_pool_size;
	unsigned int queue_poll_us; /* how long an idle queue thread polls before it sleeps */
	enum vfsd_log_level log_level;
	bool log_level_debug_forced; /* -d */
	bool syslog;
	enum vfsd_sandbox_mode sandbox;
	enum vfsd_seccomp_action seccomp;
	const char *modcaps; /* --modcaps / -o modcaps spec, checked when the daemon starts */
	struct vfsd_idmap uid_map, gid_map; /* --translate-uid, --translate-gid */
	struct vfsd_ns_maps ns_maps;	    /* --uid-map, --gid-map */
	/* The filesystem's options as the parser sets them; vfsd_run() adds the rest
	 * (root, /proc/self/fd, the fd budget, the maps below). */
	struct vfsd_fs_config fs;
	const char *xattrmap_spec;     /* --xattrmap / -o xattrmap= (the last one) */
	struct vfsd_xattrmap xattrmap; /* parsed from it */
	bool rlimit_nofile_set; /* --rlimit-nofile given */
	unsigned long long rlimit_nofile;
	struct vfsd_supervisor_config sup;
	struct vfsd_metrics_config metrics;
	char **owned; /* copies of the -o lists the parser cut up (argv stays as it was) */
	int nowned;
};

enum vfsd_parse_result {
	VFSD_PARSE_RUN,	 /* go on: cfg->action says what to do */
	VFSD_PARSE_EXIT, /* a usage error: exit with status (2, or 1 for a start-up error) */
};

#define VFSD_PARSE_QUIET 1u /* no warnings on stderr (the supervisor checking a spawn) */

/* The outcome of a parse that failed: the exit status and a sentence for the person. */
struct vfsd_parse_error {
	int status;
	char msg[512];
};

/*
 * Parses argv (argv[0] is skipped; argv is not changed). On VFSD_PARSE_EXIT err says why.
 * Always release cfg with vfsd_config_free(), whatever the result.
 */
enum vfsd_parse_result vfsd_parse_args(int argc, char **argv, unsigned int flags,
				       struct vfsd_config *cfg, struct vfsd_parse_error *err);
void vfsd_config_free(struct vfsd_config *cfg);

/* --help's text and --print-capabilities' JSON. */
void vfsd_usage(FILE *out);
void vfsd_print_capabilities(FILE *out);

/* Runs one daemon with cfg (VFSD_ACTION_SERVE); returns the process exit status. */
int vfsd_run(const struct vfsd_config *cfg);

#endif
