/* Isolation of the daemon from the rest of the host: namespace, chroot or none. */
#ifndef VFSD_SEC_SANDBOX_H
#define VFSD_SEC_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

enum vfsd_sandbox_mode {
	VFSD_SANDBOX_NAMESPACE,
	VFSD_SANDBOX_CHROOT,
	VFSD_SANDBOX_NONE,
};

struct vfsd_sandbox {
	int proc_self_fd;     /* O_PATH fd of our /proc/self/fd */
	const char *root_dir; /* the shared directory as seen from inside */
	int exit_status;      /* VFSD_SANDBOX_PARENT: the child's exit status */
	int report_pid_fd;    /* in: where the namespace sandbox writes "P<pid>\n" of the process
				 that serves (the metrics pusher reads its /proc), or -1 */
};

/* --uid-map / --gid-map entries for the user namespace of an unprivileged namespace sandbox. */
#define VFSD_NS_MAP_MAX 16

struct vfsd_ns_map {
	uint32_t inside, outside, count;
};

struct vfsd_ns_maps {
	struct vfsd_ns_map uid[VFSD_NS_MAP_MAX], gid[VFSD_NS_MAP_MAX];
	unsigned int nuid, ngid;
};

/* Parses one entry, ":inside:outside:count:" (the delimiter is the last character, not
 * alphanumeric, and the string starts with it too). Returns 0 or -EINVAL. */
int vfsd_ns_map_parse(const char *s, struct vfsd_ns_map *out);

/* Returned to the namespace-mode parent once its child, the real daemon, has ended. */
#define VFSD_SANDBOX_PARENT 1

/* Parses "namespace", "chroot" or "none" (case-insensitive). */
int vfsd_sandbox_parse(const char *s, enum vfsd_sandbox_mode *out);

/*
 * Enters the sandbox. In namespace mode the calling process forks: the parent waits for the
 * child and returns VFSD_SANDBOX_PARENT with its exit status; the child returns 0 as pid 1
 * of a new pid namespace whose root is the shared directory. On failure returns a negative errno and
 * writes a message for the person into err.
 */
int vfsd_sandbox_enter(enum vfsd_sandbox_mode mode, const char *shared_dir, int listen_fd,
		       const struct vfsd_ns_maps *maps, struct vfsd_sandbox *out, char *err,
		       size_t errlen);

#endif
