/* The daemon's configuration, built from the virtiofsd-compatible command line. */
#ifndef VFSD_CMD_CONFIG_H
#define VFSD_CMD_CONFIG_H

#include <stdbool.h>

#include "base/log.h"
#include "fs/fs.h"
#include "sec/sandbox.h"
#include "sec/seccomp.h"

struct vfsd_config {
	const char *shared_dir;
	const char *socket_path;
	const char *socket_group;
	int fd; /* --fd: an already listening socket, or -1 */
	const char *fuse_mountpoint; /* --fuse-mountpoint: serve /dev/fuse instead of vhost-user */
	const char *tag;
	enum vfsd_cache_policy cache;
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
	bool readonly;
	enum vfsd_file_handles file_handles; /* --inode-file-handles */
	bool readdirplus;
	bool xattr;
	bool posix_acl;
	bool security_label;
	const char *xattrmap_spec;     /* --xattrmap / -o xattrmap= (the last one) */
	struct vfsd_xattrmap xattrmap; /* parsed from it */
	bool announce_submounts;
	bool writeback;
	bool allow_direct_io;
	bool allow_mmap;
	bool preserve_noatime;
	bool posix_lock;
	bool killpriv_v2;
	bool flock;
	bool print_capabilities;
	bool rlimit_nofile_set; /* --rlimit-nofile given */
	unsigned long long rlimit_nofile;
};

enum vfsd_parse_result {
	VFSD_PARSE_RUN,	 /* go on and serve */
	VFSD_PARSE_EXIT, /* done (help, version, capabilities): exit with *status */
};

/* Parses argv. On an error prints the reason and sets *status to 2 (VFSD_PARSE_EXIT). */
enum vfsd_parse_result vfsd_parse_args(int argc, char **argv, struct vfsd_config *cfg, int *status);

/* Runs the daemon with cfg; returns the process exit status. */
int vfsd_run(const struct vfsd_config *cfg);

#endif
