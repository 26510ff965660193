/* The virtiofsd-compatible command line, including the legacy "-o key=value" forms. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "daemon/config.h"

#ifndef VFSD_VERSION
#define VFSD_VERSION "0.0.0"
#endif

enum {
	OPT_SHARED_DIR = 256,
	OPT_SOCKET_PATH,
	OPT_SOCKET,
	OPT_SOCKET_GROUP,
	OPT_FD,
	OPT_TAG,
	OPT_CACHE,
	OPT_THREAD_POOL_SIZE,
	OPT_LOG_LEVEL,
	OPT_SYSLOG,
	OPT_SANDBOX,
	OPT_READONLY,
	OPT_PRINT_CAPS,
	OPT_NO_READDIRPLUS,
	OPT_SECCOMP,
	OPT_NO_ANNOUNCE_SUBMOUNTS,
	OPT_RLIMIT_NOFILE,
	OPT_QUEUE_POLL_US,
	OPT_XATTR,
	OPT_TRANSLATE_UID,
	OPT_UID_MAP,
	OPT_INODE_FILE_HANDLES,
	OPT_MIGRATION_MODE,
	OPT_MIGRATION_ON_ERROR,
	OPT_MIGRATION_VERIFY_HANDLES,
	OPT_MIGRATION_CONFIRM_PATHS,
	OPT_MIGRATION_FORMAT,
	OPT_KILLPRIV_V2,
	OPT_NO_KILLPRIV_V2,
	OPT_GID_MAP,
	OPT_POSIX_LOCK,
	OPT_NO_POSIX_LOCK,
	OPT_FLOCK,
	OPT_NO_FLOCK,
	OPT_TRANSLATE_GID,
	OPT_MODCAPS,
	OPT_ANNOUNCE_SUBMOUNTS,
	OPT_ALLOW_MMAP,
	OPT_WRITEBACK,
	OPT_ALLOW_DIRECT_IO,
	OPT_PRESERVE_NOATIME,
	OPT_FUSE_MOUNTPOINT,
	OPT_XATTRMAP,
	OPT_POSIX_ACL,
	OPT_SECURITY_LABEL,
	OPT_READY_FD,
	OPT_SUPERVISOR,
	OPT_CONTROL_SOCKET,
	OPT_RUNTIME_DIR,
	OPT_CONTROL_SOCKET_GROUP,
	OPT_CONTROL_ALLOW_UID,
	OPT_CONTROL_ALLOW_GID,
	OPT_STOP_TIMEOUT,
	OPT_MAX_PER_UID,
	OPT_METRICS_PUSH,
	OPT_METRICS_INTERVAL,
	OPT_METRICS_INSTANCE,
	OPT_METRICS_SANDBOX,
	OPT_METRICS_FD,
	OPT_STATE_FD,
	OPT_IMPORT_STATE_FD,
};

static const struct option long_options[] = {
	{ "shared-dir", required_argument, NULL, OPT_SHARED_DIR },
	{ "socket-path", required_argument, NULL, OPT_SOCKET_PATH },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "fuse-mountpoint", required_argument, NULL, OPT_FUSE_MOUNTPOINT },
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "cache", required_argument, NULL, OPT_CACHE },
	{ "thread-pool-size", required_argument, NULL, OPT_THREAD_POOL_SIZE },
	{ "queue-poll-us", required_argument, NULL, OPT_QUEUE_POLL_US },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "syslog", no_argument, NULL, OPT_SYSLOG },
	{ "sandbox", required_argument, NULL, OPT_SANDBOX },
	{ "readonly", no_argument, NULL, OPT_READONLY },
	{ "print-capabilities", no_argument, NULL, OPT_PRINT_CAPS },
	{ "no-readdirplus", no_argument, NULL, OPT_NO_READDIRPLUS },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "no-announce-submounts", no_argument, NULL, OPT_NO_ANNOUNCE_SUBMOUNTS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "xattr", no_argument, NULL, OPT_XATTR },
	{ "posix-acl", no_argument, NULL, OPT_POSIX_ACL },
	{ "xattrmap", required_argument, NULL, OPT_XATTRMAP },
	{ "announce-submounts", no_argument, NULL, OPT_ANNOUNCE_SUBMOUNTS },
	{ "inode-file-handles", required_argument, NULL, OPT_INODE_FILE_HANDLES },
	{ "allow-mmap", no_argument, NULL, OPT_ALLOW_MMAP },
	{ "writeback", no_argument, NULL, OPT_WRITEBACK },
	{ "allow-direct-io", no_argument, NULL, OPT_ALLOW_DIRECT_IO },
	{ "modcaps", required_argument, NULL, OPT_MODCAPS },
	{ "rlimit-nofile", required_argument, NULL, OPT_RLIMIT_NOFILE },
	{ "killpriv-v2", no_argument, NULL, OPT_KILLPRIV_V2 },
	{ "no-killpriv-v2", no_argument, NULL, OPT_NO_KILLPRIV_V2 },
	{ "security-label", no_argument, NULL, OPT_SECURITY_LABEL },
	{ "uid-map", required_argument, NULL, OPT_UID_MAP },
	{ "gid-map", required_argument, NULL, OPT_GID_MAP },
	{ "translate-uid", required_argument, NULL, OPT_TRANSLATE_UID },
	{ "translate-gid", required_argument, NULL, OPT_TRANSLATE_GID },
	{ "preserve-noatime", no_argument, NULL, OPT_PRESERVE_NOATIME },
	{ "posix-lock", no_argument, NULL, OPT_POSIX_LOCK },
	{ "no-posix-lock", no_argument, NULL, OPT_NO_POSIX_LOCK },
	{ "flock", no_argument, NULL, OPT_FLOCK },
	{ "no-flock", no_argument, NULL, OPT_NO_FLOCK },
	{ "ready-fd", required_argument, NULL, OPT_READY_FD },
	{ "supervisor", no_argument, NULL, OPT_SUPERVISOR },
	{ "control-socket", required_argument, NULL, OPT_CONTROL_SOCKET },
	{ "runtime-dir", required_argument, NULL, OPT_RUNTIME_DIR },
	{ "control-socket-group", required_argument, NULL, OPT_CONTROL_SOCKET_GROUP },
	{ "control-allow-uid", required_argument, NULL, OPT_CONTROL_ALLOW_UID },
	{ "control-allow-gid", required_argument, NULL, OPT_CONTROL_ALLOW_GID },
	{ "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
	{ "max-daemons-per-uid", required_argument, NULL, OPT_MAX_PER_UID },
	{ "metrics-push", required_argument, NULL, OPT_METRICS_PUSH },
	{ "metrics-interval", required_argument, NULL, OPT_METRICS_INTERVAL },
	{ "metrics-instance", required_argument, NULL, OPT_METRICS_INSTANCE },
	{ "metrics-sandbox", required_argument, NULL, OPT_METRICS_SANDBOX },
	{ "metrics-fd", required_argument, NULL, OPT_METRICS_FD },
	{ "state-fd", required_argument, NULL, OPT_STATE_FD },
	{ "import-state-fd", required_argument, NULL, OPT_IMPORT_STATE_FD },
	{ "migration-mode", required_argument, NULL, OPT_MIGRATION_MODE },
	{ "migration-on-error", required_argument, NULL, OPT_MIGRATION_ON_ERROR },
	{ "migration-verify-handles", no_argument, NULL, OPT_MIGRATION_VERIFY_HANDLES },
	{ "migration-confirm-paths", no_argument, NULL, OPT_MIGRATION_CONFIRM_PATHS },
	{ "migration-format", required_argument, NULL, OPT_MIGRATION_FORMAT },
	{ NULL, 0, NULL, 0 },
};

void vfsd_usage(FILE *out)
{
	fputs("Launch a virtio-fs vhost-user backend.\n"
	      "\n"
	      "Usage: vfsd --shared-dir <SHARED_DIR> --socket-path <SOCKET_PATH> [OPTIONS]\n"
	      "\n"
	      "Options:\n"
	      "      --shared-dir <DIR>         Shared directory path\n"
	      "      --tag <TAG>                Tag served in the device's config space (max 36 bytes)\n"
	      "      --socket-path <PATH>       vhost-user socket path\n"
	      "      --socket-group <GROUP>     Name of group for the vhost-user socket\n"
	      "      --fd <FD>                  File descriptor of an already listening socket\n"
	      "      --fuse-mountpoint <DIR>    Instead of a vhost-user socket, mount the share on\n"
	      "                                 this host directory through /dev/fuse (vfsd only)\n"
	      "      --thread-pool-size <N>     Maximum worker threads, 0 = none [default: 0]\n"
	      "      --queue-poll-us <N>        Most microseconds a queue thread keeps polling an empty\n"
	      "                                 ring before it sleeps (adaptive), 0 = never poll\n"
	      "                                 [default: 50]\n"
	      "      --sandbox <MODE>           namespace, chroot or none [default: namespace]\n"
	      "      --seccomp <ACTION>         What a syscall outside the allow-list gets: kill, log,\n"
	      "                                 trap, or none for no filter [default: kill]\n"
	      "      --modcaps <SPEC>           Capabilities to add or remove when running as root,\n"
	      "                                 e.g. +sys_admin:-mknod\n"
	      "      --translate-uid <RULE>     Guest/host uid translation (repeatable): guest, host,\n"
	      "                                 squash-guest, squash-host, forbid-guest or map rules,\n"
	      "                                 e.g. map:1000:2000:1\n"
	      "      --translate-gid <RULE>     The same for gids\n"
	      "      --uid-map <:in:out:count:> User-namespace uid map of an unprivileged namespace\n"
	      "                                 sandbox (repeatable; newuidmap for other ids than ours)\n"
	      "      --gid-map <:in:out:count:> The same for gids (newgidmap)\n"
	      "      --readonly                 Refuse every change to the shared directory\n"
	      "      --cache <POLICY>           never, metadata, auto or always [default: auto]\n"
	      "      --no-readdirplus           Do not use READDIRPLUS\n"
	      "      --xattr                    Enable extended attributes\n"
	      "      --posix-acl                POSIX ACLs: the guest's ACLs are the host's (implies\n"
	      "                                 --xattr; not with --translate-uid/gid)\n"
	      "      --security-label           Store the security label the guest sends with each\n"
	      "                                 creation (SECURITY_CTX) as an xattr\n"
	      "      --xattrmap <RULES>         Map xattr names between guest and host (implies\n"
	      "                                 --xattr), e.g. :map:security.selinux:trusted.virtiofs.:\n"
	      "      --inode-file-handles <MODE> never: inodes are held by O_PATH fds (vfsd's\n"
	      "                                 default); prefer: by file handles where the\n"
	      "                                 filesystem has them; mandatory: always by handles\n"
	      "      --migration-mode <MODE>    How a migration's source names each inode: find-paths\n"
	      "                                 (its path) or file-handles (same filesystem on both\n"
	      "                                 sides) [default: find-paths]\n"
	      "      --migration-on-error <ACTION> Destination, an inode not found: abort (the\n"
	      "                                 migration fails) or guest-error (EIO on it) [default:\n"
	      "                                 abort]\n"
	      "      --migration-verify-handles Send each inode's file handle so that the destination\n"
	      "                                 detects a replaced file (find-paths)\n"
	      "      --migration-confirm-paths  Fail the save unless every inode's path is confirmed\n"
	      "                                 (find-paths)\n"
	      "      --migration-format <FORMAT> What a save writes: vfsd, or virtiofsd (the Rust\n"
	      "                                 virtiofsd's stream) [default: vfsd]; a load reads both\n"
	      "      --no-announce-submounts    Do not announce submounts (on by default)\n"
	      "      --announce-submounts       No effect: the default (compatibility)\n"
	      "      --writeback                Ask the guest for its writeback cache\n"
	      "      --allow-direct-io          Honour the guest's O_DIRECT\n"
	      "      --allow-mmap               Let the guest mmap files opened in direct-I/O mode\n"
	      "      --preserve-noatime         Honour the guest's O_NOATIME\n"
	      "      --killpriv-v2              Ask the guest for HANDLE_KILLPRIV_V2: vfsd has the host\n"
	      "                                 drop set-id bits on writes, truncates and O_TRUNC\n"
	      "                                 opens by guest users without CAP_FSETID\n"
	      "      --no-killpriv-v2           The default\n"
	      "      --no-posix-lock            Leave POSIX locks to the guest kernel (by default they\n"
	      "                                 are host locks, seen by host processes and other guests)\n"
	      "      --no-flock                 The same for flock locks\n"
	      "      --posix-lock, --flock      The defaults (compatibility)\n"
	      "      --rlimit-nofile <N>        Open-file limit, 0 = leave as is [default: 1,000,000\n"
	      "                                 or the kernel's nr_open if lower]\n"
	      "      --log-level <LEVEL>        error, warn, info, debug, trace, off [default: info]\n"
	      "      --syslog                   Log to syslog instead of stderr\n"
	      "      --print-capabilities       Print the vhost-user.json capabilities and exit\n"
	      "      --ready-fd <FD>            Write \"R\\n\" to FD and close it once ready to serve\n"
	      "                                 (how the supervisor learns a child is ready)\n"
	      "\n"
	      "Supervisor (vfsd --supervisor | --control-socket <PATH>; docs/control.md):\n"
	      "      --control-socket <PATH>    JSON control socket [default: RUNTIME_DIR/control.sock]\n"
	      "      --runtime-dir <DIR>        State and logs of the children [default: /run/vfsd]\n"
	      "      --control-socket-group <GROUP>  Group of the control socket (mode 0660)\n"
	      "      --control-allow-uid <UID>  A uid besides root that may use it (repeatable)\n"
	      "      --control-allow-gid <GID>  A gid whose members may use it (repeatable)\n"
	      "      --stop-timeout <MS>        SIGTERM to SIGKILL on stop [default: 5000]\n"
	      "      --max-daemons-per-uid <N>  Live daemons one caller other than root may have\n"
	      "                                 [default: 256]\n"
	      "\n"
	      "Metrics (a daemon, or the supervisor for all its children; docs/metrics.md):\n"
	      "      --metrics-push <URL>       Push to the Prometheus Pushgateway at URL\n"
	      "                                 (e.g. http://127.0.0.1:9091)\n"
	      "      --metrics-interval <SECS>  Seconds between pushes [default: 10]\n"
	      "      --metrics-instance <NAME>  The instance label [default: the host name]\n"
	      "      --metrics-sandbox <ID>     A daemon's sandbox label [default: its socket path]\n"
	      "      --metrics-fd <FD>          Count into the region on FD (the supervisor's)\n"
	      "      --state-fd <FD>            Answer the supervisor's export-state and resume on the\n"
	      "                                 listening socket FD\n"
	      "      --import-state-fd <FD>     Start with the device state read from FD (a migration's\n"
	      "                                 destination without a VMM transfer)\n"
	      "\n"
	      "  vfsd ctl [--control-socket PATH] [--json] COMMAND  talks to a supervisor\n"
	      "                                 (vfsd ctl --help lists the commands)\n"
	      "\n"
	      "  -o <OPTIONS>                   Legacy options: source=DIR, cache=auto|always|none|metadata,\n"
	      "                                 loglevel=debug|info|warn|err, sandbox=namespace|chroot,\n"
	      "                                 modcaps=SPEC, xattrmap=RULES,\n"
	      "                                 [no_]readdirplus, [no_]xattr, [no_]posix_acl,\n"
	      "                                 [no_]security_label,\n"
	      "                                 [no_]writeback,\n"
	      "                                 [no_]allow_direct_io, [no_]posix_lock, [no_]flock,\n"
	      "                                 [no_]killpriv_v2,\n"
	      "                                 announce_submounts and the no_* forms of features vfsd\n"
	      "                                 has off\n"
	      "  -d                             Same as --log-level debug\n"
	      "  -f                             No effect (compatibility)\n"
	      "  -h, --help                     Print help\n"
	      "  -V, --version                  Print version\n",
	      out);
}

static int fail(struct vfsd_parse_error *err, const char *fmt, const char *arg)
{
	snprintf(err->msg, sizeof(err->msg), fmt, arg);
	err->status = 2;
	return 2;
}

static int parse_cache(const char *s, bool legacy, enum vfsd_cache_policy *out)
{
	if (strcasecmp(s, "auto") == 0)
		*out = VFSD_CACHE_AUTO;
	else if (strcasecmp(s, "always") == 0)
		*out = VFSD_CACHE_ALWAYS;
	else if (strcasecmp(s, "metadata") == 0)
		*out = VFSD_CACHE_METADATA;
	else if (!legacy && strcasecmp(s, "never") == 0)
		*out = VFSD_CACHE_NEVER;
	else if (legacy && strcmp(s, "none") == 0)
		*out = VFSD_CACHE_NEVER;
	else
		return -EINVAL;
	return 0;
}

/* Keywords of "-o" that only restate vfsd's behaviour. */
static const char *const legacy_noop_keywords[] = {
	/* on by default, and as virtiofsd it does not undo --no-announce-submounts */
	"announce_submounts",
};

/* "-o" keywords that switch a flag of the configuration. */
struct legacy_flag {
	const char *word;
	size_t offset; /* of a bool in struct vfsd_config */
	bool value;
};
#define LEGACY_FLAG(w, field, v) { w, offsetof(struct vfsd_config, field), v }
static const struct legacy_flag legacy_flags[] = {
	LEGACY_FLAG("readdirplus", fs.readdirplus, true),
	LEGACY_FLAG("no_readdirplus", fs.readdirplus, false),
	LEGACY_FLAG("xattr", fs.xattr, true),
	LEGACY_FLAG("no_xattr", fs.xattr, false),
	LEGACY_FLAG("posix_acl", fs.posix_acl, true),
	LEGACY_FLAG("no_posix_acl", fs.posix_acl, false),
	LEGACY_FLAG("security_label", fs.security_label, true),
	LEGACY_FLAG("no_security_label", fs.security_label, false),
	LEGACY_FLAG("writeback", fs.writeback, true),
	LEGACY_FLAG("no_writeback", fs.writeback, false),
	LEGACY_FLAG("allow_direct_io", fs.allow_direct_io, true),
	LEGACY_FLAG("no_allow_direct_io", fs.allow_direct_io, false),
	LEGACY_FLAG("killpriv_v2", fs.killpriv_v2, true),
	LEGACY_FLAG("no_killpriv_v2", fs.killpriv_v2, false),
	LEGACY_FLAG("posix_lock", fs.posix_lock, true),
	LEGACY_FLAG("no_posix_lock", fs.posix_lock, false),
	LEGACY_FLAG("flock", fs.flock, true),
	LEGACY_FLAG("no_flock", fs.flock, false),
};


static int parse_legacy_item(char *item, struct vfsd_config *cfg, struct vfsd_parse_error *err)
{
	char *eq = strchr(item, '=');

	if (!eq) {
		for (size_t i = 0; i < ARRAY_SIZE(legacy_flags); i++) {
			if (strcmp(item, legacy_flags[i].word) == 0) {
				*(bool *)((char *)cfg + legacy_flags[i].offset) = legacy_flags[i].value;
				return 0;
			}
		}
		for (size_t i = 0; i < ARRAY_SIZE(legacy_noop_keywords); i++) {
			if (strcmp(item, legacy_noop_keywords[i]) == 0)
				return 0;
		}
		return fail(err, "Invalid compat argument '-o %s'", item);
	}
	*eq = '\0';
	const char *key = item, *val = eq + 1;

	if (strchr(val, '='))
		return fail(err, "Invalid compat argument '-o %s'", key);
	if (strcmp(key, "source") == 0) {
		cfg->shared_dir = val;
	} else if (strcmp(key, "cache") == 0) {
		if (parse_cache(val, true, &cfg->fs.cache) < 0)
			return fail(err, "Invalid compat value for '-o cache': %s", val);
	} else if (strcmp(key, "loglevel") == 0) {
		enum vfsd_log_level l;

		if (strcmp(val, "err") == 0)
			l = VFSD_LOG_ERROR;
		else if (strcmp(val, "debug") && strcmp(val, "info") && strcmp(val, "warn"))
			return fail(err, "Invalid compat value for '-o loglevel': %s", val);
		else
			vfsd_log_level_parse(val, &l);
		cfg->log_level = l;
	} else if (strcmp(key, "modcaps") == 0) {
		cfg->modcaps = val;
	} else if (strcmp(key, "xattrmap") == 0) {
		cfg->xattrmap_spec = val;
	} else if (strcmp(key, "sandbox") == 0) {
		if (strcmp(val, "namespace") == 0)
			cfg->sandbox = VFSD_SANDBOX_NAMESPACE;
		else if (strcmp(val, "chroot") == 0)
			cfg->sandbox = VFSD_SANDBOX_CHROOT;
		else
			return fail(err, "Invalid compat value for '-o sandbox': %s", val);
	} else {
		return fail(err, "Invalid compat argument '-o %s'", key);
	}
	return 0;
}

/* Applies every "-o" list after the long options, as virtiofsd does. */
static int parse_legacy(char **lists, int n, struct vfsd_config *cfg,
			struct vfsd_parse_error *err)
{
	cfg->owned = calloc(n, sizeof(*cfg->owned));
	if (!cfg->owned)
		return fail(err, "%s", strerror(ENOMEM));
	for (int i = 0; i < n; i++) {
		char *save = NULL;

		/* Cut up a copy: argv stays as the caller passed it, so ps shows it unchanged. */
		cfg->owned[i] = strdup(lists[i]);
		if (!cfg->owned[i])
			return fail(err, "%s", strerror(ENOMEM));
		cfg->nowned = i + 1;
		for (char *item = strtok_r(cfg->owned[i], ",", &save); item;
		     item = strtok_r(NULL, ",", &save)) {
			int r = parse_legacy_item(item, cfg, err);

			if (r)
				return r;
		}
	}
	return 0;
}

void vfsd_print_capabilities(FILE *out)
{
	fputs("{\n  \"type\": \"fs\",\n  \"features\": [\n    \"migrate-precopy\",\n"
	      "    \"separate-options\"\n  ]\n}\n",
	      out);
}

void vfsd_config_free(struct vfsd_config *cfg)
{
	vfsd_idmap_free(&cfg->uid_map);
	vfsd_idmap_free(&cfg->gid_map);
	vfsd_xattrmap_free(&cfg->xattrmap);
	for (int i = 0; i < cfg->nowned; i++)
		free(cfg->owned[i]);
	free(cfg->owned);
	cfg->owned = NULL;
	cfg->nowned = 0;
}

/* The options that also make sense for the supervisor: its own, and logging. */
static bool supervisor_option(int c)
{
	switch (c) {
	case OPT_SUPERVISOR:
	case OPT_CONTROL_SOCKET:
	case OPT_RUNTIME_DIR:
	case OPT_CONTROL_SOCKET_GROUP:
	case OPT_CONTROL_ALLOW_UID:
	case OPT_CONTROL_ALLOW_GID:
	case OPT_STOP_TIMEOUT:
	case OPT_MAX_PER_UID:
	case OPT_METRICS_PUSH:
	case OPT_METRICS_INTERVAL:
	case OPT_METRICS_INSTANCE:
	case OPT_LOG_LEVEL:
	case OPT_SYSLOG:
	case 'd':
	case 'h':
	case 'V':
		return true;
	default:
		return false;
	}
}

/* Adds a --control-allow-uid/-gid number to list (of at most VFSD_CTL_ALLOW_MAX). */
static int add_allowed(const char *arg, const char *name, uint32_t *list, unsigned int *n,
		       struct vfsd_parse_error *err)
{
	uint64_t v;
	char msg[200];

	if (*n == VFSD_CTL_ALLOW_MAX || parse_u64(arg, UINT32_MAX - 1, &v) < 0) {
		snprintf(msg, sizeof(msg), "invalid value '%s' for '--%s' (a number, at most %d)",
			 arg, name, VFSD_CTL_ALLOW_MAX);
		return fail(err, "%s", msg);
	}
	list[(*n)++] = (uint32_t)v;
	return 0;
}

enum vfsd_parse_result vfsd_parse_args(int argc, char **argv, unsigned int flags,
				       struct vfsd_config *cfg, struct vfsd_parse_error *err)
{
	char **legacy = calloc(argc + 1, sizeof(*legacy));
	int nlegacy = 0, c, idx;
	bool socket_alias = false, any_legacy = false, quiet = flags & VFSD_PARSE_QUIET;
	char daemon_option[64] = ""; /* the first option that only a daemon takes */
	uint64_t v;

	*cfg = (struct vfsd_config){
		.fd = -1,
		.ready_fd = -1,
		.state_fd = -1,
		.import_state_fd = -1,
		.log_level = VFSD_LOG_INFO,
		.sandbox = VFSD_SANDBOX_NAMESPACE,
		.queue_poll_us = 50,
		.fs = {
			.cache = VFSD_CACHE_AUTO,
			.readdirplus = true,
			.announce_submounts = true,
			.posix_lock = true,
			.flock = true,
		},
		.sup = { .stop_timeout_ms = 5000, .max_per_uid = 256 },
		.metrics = { .interval_ms = 10000, .fd = -1 },
	};
	*err = (struct vfsd_parse_error){ .status = 2 };
	if (!legacy) {
		fail(err, "%s", strerror(ENOMEM));
		return VFSD_PARSE_EXIT;
	}
	opterr = 0;
	optind = 0; /* a fresh scan: the supervisor parses many option lists */
	while ((c = getopt_long(argc, argv, ":hVdfo:", long_options, &idx)) != -1) {
		if (!daemon_option[0] && !supervisor_option(c) && c != ':' && c != '?')
			snprintf(daemon_option, sizeof(daemon_option), "%s%s",
				 c == 'o' || c == 'f' ? "-" : "--",
				 c == 'o' ? "o" : c == 'f' ? "f" : long_options[idx].name);
		switch (c) {
		case OPT_SUPERVISOR:
			cfg->action = VFSD_ACTION_SUPERVISE;
			break;
		case OPT_CONTROL_SOCKET:
			cfg->sup.control_socket = optarg;
			cfg->action = VFSD_ACTION_SUPERVISE;
			break;
		case OPT_RUNTIME_DIR:
			cfg->sup.runtime_dir = optarg;
			cfg->action = VFSD_ACTION_SUPERVISE;
			break;
		case OPT_CONTROL_SOCKET_GROUP:
			cfg->sup.control_socket_group = optarg;
			break;
		case OPT_CONTROL_ALLOW_UID:
			if (add_allowed(optarg, "control-allow-uid", cfg->sup.allow_uid,
					&cfg->sup.nallow_uid, err))
				goto out;
			break;
		case OPT_CONTROL_ALLOW_GID:
			if (add_allowed(optarg, "control-allow-gid", cfg->sup.allow_gid,
					&cfg->sup.nallow_gid, err))
				goto out;
			break;
		case OPT_STOP_TIMEOUT:
			if (parse_u64(optarg, 3600000, &v) < 0) {
				fail(err, "invalid value '%s' for '--stop-timeout <MS>' (0 to 3600000)",
				     optarg);
				goto out;
			}
			cfg->sup.stop_timeout_ms = (unsigned int)v;
			break;
		case OPT_MAX_PER_UID:
			if (parse_u64(optarg, 1000000, &v) < 0 || v == 0) {
				fail(err, "invalid value '%s' for '--max-daemons-per-uid <N>' (1 to 1000000)",
				     optarg);
				goto out;
			}
			cfg->sup.max_per_uid = (unsigned int)v;
			break;
		case OPT_METRICS_PUSH:
			cfg->metrics.url = optarg;
			break;
		case OPT_METRICS_INTERVAL:
			if (parse_u64(optarg, 86400, &v) < 0 || v == 0) {
				fail(err, "invalid value '%s' for '--metrics-interval <SECS>' (1 to 86400)",
				     optarg);
				goto out;
			}
			cfg->metrics.interval_ms = (uint32_t)v * 1000u;
			cfg->metrics.interval_set = true;
			break;
		case OPT_METRICS_INSTANCE:
			if (!optarg[0]) {
				fail(err, "invalid value '%s' for '--metrics-instance <NAME>' (not empty)",
				     optarg);
				goto out;
			}
			cfg->metrics.instance = optarg;
			break;
		case OPT_METRICS_SANDBOX:
			if (!optarg[0]) {
				fail(err, "invalid value '%s' for '--metrics-sandbox <ID>' (not empty)",
				     optarg);
				goto out;
			}
			cfg->metrics.sandbox = optarg;
			break;
		case OPT_METRICS_FD:
			if (parse_u64(optarg, INT32_MAX, &v) < 0) {
				fail(err, "invalid value '%s' for '--metrics-fd <FD>'", optarg);
				goto out;
			}
			cfg->metrics.fd = (int)v;
			break;
		case OPT_STATE_FD:
		case OPT_IMPORT_STATE_FD:
			if (parse_u64(optarg, INT32_MAX, &v) < 0) {
				fail(err, c == OPT_STATE_FD ? "invalid value '%s' for '--state-fd <FD>'"
							    : "invalid value '%s' for '--import-state-fd <FD>'",
				     optarg);
				goto out;
			}
			if (c == OPT_STATE_FD)
				cfg->state_fd = (int)v;
			else
				cfg->import_state_fd = (int)v;
			break;
		case OPT_READY_FD:
			if (parse_u64(optarg, INT32_MAX, &v) < 0) {
				fail(err, "invalid value '%s' for '--ready-fd <FD>'", optarg);
				goto out;
			}
			cfg->ready_fd = (int)v;
			break;
		case OPT_SHARED_DIR:
			cfg->shared_dir = optarg;
			break;
		case OPT_SOCKET_PATH:
			cfg->socket_path = optarg;
			break;
		case OPT_SOCKET:
			if (!quiet)
				fputs("vfsd: use of deprecated parameter '--socket': Please use the '--socket-path' option instead\n",
				      stderr);
			if (!cfg->socket_path || socket_alias)
				cfg->socket_path = optarg;
			socket_alias = true;
			break;
		case OPT_SOCKET_GROUP:
			cfg->socket_group = optarg;
			break;
		case OPT_POSIX_ACL:
			cfg->fs.posix_acl = true;
			break;
		case OPT_SECURITY_LABEL:
			cfg->fs.security_label = true;
			break;
		case OPT_XATTRMAP:
			cfg->xattrmap_spec = optarg;
			break;
		case OPT_FUSE_MOUNTPOINT:
			cfg->fuse_mountpoint = optarg;
			break;
		case OPT_FD:
			if (parse_u64(optarg, INT32_MAX, &v) < 0) {
				fail(err, "invalid value '%s' for '--fd <FD>'", optarg);
				goto out;
			}
			cfg->fd = (int)v;
			break;
		case OPT_TAG:
			if (optarg[0] == '\0' || strlen(optarg) > 36) {
				fail(err, "invalid value '%s' for '--tag <TAG>': The tag may not be empty or longer than 36 bytes (encoded as UTF-8).",
					       optarg);
				goto out;
			}
			cfg->tag = optarg;
			break;
		case OPT_CACHE:
			if (parse_cache(optarg, false, &cfg->fs.cache) < 0) {
				fail(err, "invalid value '%s' for '--cache <CACHE>' (auto, always, never, metadata)",
					       optarg);
				goto out;
			}
			break;
		case OPT_THREAD_POOL_SIZE:
			if (parse_u64(optarg, 1024, &v) < 0) {
				fail(err, "invalid value '%s' for '--thread-pool-size <N>' (0 to 1024)",
					       optarg);
				goto out;
			}
			cfg->thread_pool_size = (unsigned int)v;
			break;
		case OPT_QUEUE_POLL_US:
			if (parse_u64(optarg, 1000000, &v) < 0) {
				fail(err, "invalid value '%s' for '--queue-poll-us <N>' (0 to 1000000)",
					       optarg);
				goto out;
			}
			cfg->queue_poll_us = (unsigned int)v;
			break;
		case OPT_LOG_LEVEL:
			if (vfsd_log_level_parse(optarg, &cfg->log_level) < 0) {
				fail(err, "invalid value '%s' for '--log-level <LEVEL>'", optarg);
				goto out;
			}
			break;
		case OPT_SYSLOG:
			cfg->syslog = true;
			break;
		case OPT_SANDBOX:
			if (vfsd_sandbox_parse(optarg, &cfg->sandbox) < 0) {
				fail(err, "invalid value '%s' for '--sandbox <SANDBOX>' (namespace, chroot, none)",
					       optarg);
				goto out;
			}
			break;
		case OPT_READONLY:
			cfg->fs.readonly = true;
			break;
		case OPT_PRINT_CAPS:
			cfg->action = VFSD_ACTION_PRINT_CAPS;
			break;
		case OPT_NO_READDIRPLUS:
			cfg->fs.readdirplus = false;
			break;
		case OPT_SECCOMP:
			if (vfsd_seccomp_parse(optarg, &cfg->seccomp) < 0) {
				fail(err, "invalid value '%s' for '--seccomp <SECCOMP>' (none, kill, log, trap)",
					       optarg);
				goto out;
			}
			break;
		case OPT_MODCAPS:
			cfg->modcaps = optarg;
			break;
		case OPT_UID_MAP:
		case OPT_GID_MAP: {
			bool is_uid = c == OPT_UID_MAP;
			unsigned int *n = is_uid ? &cfg->ns_maps.nuid : &cfg->ns_maps.ngid;
			struct vfsd_ns_map *m = is_uid ? cfg->ns_maps.uid : cfg->ns_maps.gid;

			if (*n == VFSD_NS_MAP_MAX || vfsd_ns_map_parse(optarg, &m[*n]) < 0) {
				char msg[300];

				snprintf(msg, sizeof(msg),
					 "invalid value '%s' for '--%s <%s>' (':inside:outside:count:', at most %d)",
					 optarg, is_uid ? "uid-map" : "gid-map",
					 is_uid ? "UID_MAP" : "GID_MAP", VFSD_NS_MAP_MAX);
				fail(err, "%s", msg);
				goto out;
			}
			(*n)++;
			break;
		}
		case OPT_TRANSLATE_UID:
		case OPT_TRANSLATE_GID: {
			char msg_err[256];
			int r = vfsd_idmap_add(c == OPT_TRANSLATE_UID ? &cfg->uid_map : &cfg->gid_map,
					       optarg, msg_err, sizeof(msg_err));

			if (r == -EINVAL) {
				char msg[400];

				snprintf(msg, sizeof(msg), "invalid value '%s' for '--%s': %s", optarg,
					 c == OPT_TRANSLATE_UID ? "translate-uid" : "translate-gid", msg_err);
				fail(err, "%s", msg);
				goto out;
			}
			if (r < 0) { /* a valid rule that cannot be used: a start-up error */
				snprintf(err->msg, sizeof(err->msg), "%s", msg_err);
				err->status = 1;
				goto out;
			}
			break;
		}
		case OPT_RLIMIT_NOFILE:
			if (parse_u64(optarg, UINT64_MAX, &v) < 0) {
				fail(err, "invalid value '%s' for '--rlimit-nofile <N>'", optarg);
				goto out;
			}
			cfg->rlimit_nofile_set = true;
			cfg->rlimit_nofile = v;
			break;
		case OPT_NO_ANNOUNCE_SUBMOUNTS:
			cfg->fs.announce_submounts = false;
			break;
		case OPT_ANNOUNCE_SUBMOUNTS:
			break; /* the default; it does not undo --no-announce-submounts (as virtiofsd) */
		case OPT_XATTR:
			cfg->fs.xattr = true;
			break;
		case OPT_ALLOW_MMAP:
			cfg->fs.allow_mmap = true;
			break;
		case OPT_WRITEBACK:
			cfg->fs.writeback = true;
			break;
		case OPT_ALLOW_DIRECT_IO:
			cfg->fs.allow_direct_io = true;
			break;
		case OPT_PRESERVE_NOATIME:
			cfg->fs.preserve_noatime = true;
			break;
		case OPT_MIGRATION_MODE:
			if (strcmp(optarg, "find-paths") == 0) {
				cfg->fs.migration_mode = VFSD_MIGRATION_FIND_PATHS;
			} else if (strcmp(optarg, "file-handles") == 0) {
				cfg->fs.migration_mode = VFSD_MIGRATION_FILE_HANDLES;
			} else {
				fail(err, "invalid value '%s' for '--migration-mode <MODE>' (find-paths, file-handles)",
				     optarg);
				goto out;
			}
			break;
		case OPT_MIGRATION_ON_ERROR:
			if (strcmp(optarg, "abort") == 0) {
				cfg->fs.migration_guest_error = false;
			} else if (strcmp(optarg, "guest-error") == 0) {
				cfg->fs.migration_guest_error = true;
			} else {
				fail(err, "invalid value '%s' for '--migration-on-error <ACTION>' (abort, guest-error)",
				     optarg);
				goto out;
			}
			break;
		case OPT_MIGRATION_VERIFY_HANDLES:
			cfg->fs.migration_verify_handles = true;
			break;
		case OPT_MIGRATION_CONFIRM_PATHS:
			cfg->fs.migration_confirm_paths = true;
			break;
		case OPT_MIGRATION_FORMAT:
			if (strcmp(optarg, "vfsd") == 0) {
				cfg->fs.migration_format = 0;
			} else if (strcmp(optarg, "virtiofsd") == 0) {
				cfg->fs.migration_format = 1;
			} else {
				fail(err, "invalid value '%s' for '--migration-format <FORMAT>' (vfsd, virtiofsd)",
				     optarg);
				goto out;
			}
			break;
		case OPT_INODE_FILE_HANDLES:
			if (strcmp(optarg, "never") == 0) {
				cfg->fs.file_handles = VFSD_FILE_HANDLES_NEVER;
				break;
			}
			if (strcmp(optarg, "prefer") == 0 || strcmp(optarg, "fallback") == 0) {
				if (optarg[0] == 'f' && !quiet)
					fputs("vfsd: warning: --inode-file-handles=fallback is deprecated, use prefer\n",
					      stderr);
				cfg->fs.file_handles = VFSD_FILE_HANDLES_PREFER;
				break;
			}
			if (strcmp(optarg, "mandatory") == 0) {
				cfg->fs.file_handles = VFSD_FILE_HANDLES_MANDATORY;
				break;
			}
			fail(err, "invalid value '%s' for '--inode-file-handles <MODE>' (never, prefer, mandatory)",
				       optarg);
			goto out;
		case OPT_KILLPRIV_V2:
		case OPT_NO_KILLPRIV_V2:
			cfg->fs.killpriv_v2 = c == OPT_KILLPRIV_V2;
			break;
		case OPT_POSIX_LOCK:
		case OPT_NO_POSIX_LOCK:
			cfg->fs.posix_lock = c == OPT_POSIX_LOCK;
			break;
		case OPT_FLOCK:
		case OPT_NO_FLOCK:
			cfg->fs.flock = c == OPT_FLOCK;
			break;
		case 'o':
			legacy[nlegacy++] = optarg;
			any_legacy = true;
			break;
		case 'd':
			cfg->log_level_debug_forced = true;
			break;
		case 'f':
			if (!quiet)
				fputs("vfsd: Use of deprecated flag '-f': This flag has no effect, please remove it\n",
				      stderr);
			break;
		case 'h':
			cfg->action = VFSD_ACTION_HELP;
			goto done;
		case 'V':
			cfg->action = VFSD_ACTION_VERSION;
			goto done;
		case ':':
			fail(err, "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			fail(err, "unexpected argument '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		fail(err, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (nlegacy) {
		if (parse_legacy(legacy, nlegacy, cfg, err))
			goto out;
	}
	if (cfg->fs.migration_mode == VFSD_MIGRATION_FILE_HANDLES &&
	    (cfg->fs.migration_confirm_paths || cfg->fs.migration_verify_handles)) {
		/* As virtiofsd: with handles there are no paths to confirm, and the handle is
		 * already what is sent. */
		fail(err, "Cannot use %s with --migration-mode=file-handles (because it is unnecessary)",
		     cfg->fs.migration_confirm_paths ? "--migration-confirm-paths"
						     : "--migration-verify-handles");
		err->status = 1;
		goto out;
	}
	if (cfg->fs.posix_acl && (cfg->uid_map.to_host.n || cfg->uid_map.to_guest.n ||
			       cfg->gid_map.to_host.n || cfg->gid_map.to_guest.n)) {
		/* ACL entries carry the host's raw ids: a translated guest would misread them. */
		fail(err, "the argument '--posix-acl' cannot be used with %s",
			       cfg->uid_map.to_host.n || cfg->uid_map.to_guest.n ? "'--translate-uid'"
										 : "'--translate-gid'");
		goto out;
	}
	if (cfg->fs.posix_acl || cfg->fs.security_label)
		cfg->fs.xattr = true; /* as virtiofsd: ACLs and labels are xattrs */
	if (cfg->xattrmap_spec) {
		char why[300], msg[400];

		if (vfsd_xattrmap_parse(cfg->xattrmap_spec, &cfg->xattrmap, why, sizeof(why)) < 0) {
			snprintf(msg, sizeof(msg), "invalid value for '--xattrmap': %s", why);
			fail(err, "%s", msg);
			goto out;
		}
		if (!cfg->xattrmap.terminated && !quiet)
			fputs("vfsd: warning: no --xattrmap rule matches every name; a name no rule matches is refused (EPERM) or hidden from lists\n",
			      stderr);
		cfg->fs.xattr = true; /* as virtiofsd: a map implies --xattr */
	}
	if (!cfg->metrics.url && (cfg->metrics.interval_set || cfg->metrics.instance ||
				  cfg->metrics.sandbox)) {
		fail(err, "the argument '%s' requires '--metrics-push <URL>'",
		     cfg->metrics.interval_set ? "--metrics-interval"
		     : cfg->metrics.instance ? "--metrics-instance" : "--metrics-sandbox");
		goto out;
	}
	if (cfg->metrics.url && cfg->metrics.fd >= 0) {
		fail(err, "the argument '--metrics-fd <FD>' cannot be used with %s",
		     "'--metrics-push' (the supervisor pushes a region it shares)");
		goto out;
	}
	if (cfg->action == VFSD_ACTION_SUPERVISE) {
		if (daemon_option[0]) {
			fail(err, "the argument '%s' cannot be used with '--control-socket' (a daemon's options go in a spawn request)",
			     daemon_option);
			goto out;
		}
		goto done;
	}
	if (cfg->action == VFSD_ACTION_PRINT_CAPS)
		goto done;
	if (!cfg->shared_dir && !any_legacy) {
		fail(err, "the following required arguments were not provided: %s",
			       "--shared-dir <SHARED_DIR>");
		goto out;
	}
	if (cfg->fuse_mountpoint && (cfg->socket_path || cfg->fd >= 0)) {
		fail(err, "the argument '--fuse-mountpoint <DIR>' cannot be used with %s",
			       cfg->fd >= 0 ? "'--fd'" : "'--socket-path'");
		goto out;
	}
	if (cfg->fuse_mountpoint && cfg->socket_group) {
		fail(err, "the argument '--socket-group' cannot be used with %s",
			       "'--fuse-mountpoint'");
		goto out;
	}
	if (!cfg->socket_path && cfg->fd < 0 && !cfg->fuse_mountpoint) {
		fail(err, "the following required arguments were not provided: %s",
			       "--socket-path <SOCKET_PATH>");
		goto out;
	}
	if (cfg->socket_path && cfg->fd >= 0) {
		fail(err, "the argument '--fd <FD>' cannot be used with %s", "'--socket-path'");
		goto out;
	}
	if (cfg->socket_group && cfg->fd >= 0) {
		fail(err, "the argument '--socket-group' cannot be used with %s", "'--fd'");
		goto out;
	}
	if (cfg->fs.cache == VFSD_CACHE_NEVER)
		cfg->fs.readdirplus = false;
done:
	free(legacy);
	return VFSD_PARSE_RUN;
out:
	free(legacy);
	return VFSD_PARSE_EXIT;
}
