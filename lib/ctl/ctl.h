/* The runtime sidecar: the supervisor of per-sandbox daemons and its client, `vfsd ctl`. */
#ifndef VFSD_CTL_CTL_H
#define VFSD_CTL_CTL_H

#include "daemon/config.h"

#define VFSD_RUNTIME_DIR "/run/vfsd"
#define VFSD_CONTROL_SOCKET_NAME "control.sock"

/* Runs the supervisor (cfg->action VFSD_ACTION_SUPERVISE) until SIGTERM or SIGINT; its
 * children go on serving. Returns the process exit status. */
int vfsd_supervise(const struct vfsd_config *cfg);

/* `vfsd ctl ...` (argv[0] is "ctl"): exit status 0 done, 1 refused, 2 usage. */
int vfsd_ctl_main(int argc, char **argv);

#endif
