/* vfsd: a virtio-fs vhost-user device daemon, command-line compatible with virtiofsd; with
 * --control-socket the supervisor of per-sandbox daemons, and `vfsd ctl` its client. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "daemon/config.h"

int main(int argc, char **argv)
{
	struct vfsd_config cfg;
	struct vfsd_parse_error err;
	int status = 0;

	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return vfsd_ctl_main(argc - 1, argv + 1);
	if (argc <= 1) {
		vfsd_usage(stderr);
		return 2;
	}
	if (vfsd_parse_args(argc, argv, 0, &cfg, &err) == VFSD_PARSE_EXIT) {
		fprintf(stderr, "vfsd: error: %s\n", err.msg);
		if (err.status == 2)
			fputs("For more information, try '--help'.\n", stderr);
		status = err.status;
	} else if (cfg.action == VFSD_ACTION_HELP) {
		vfsd_usage(stdout);
	} else if (cfg.action == VFSD_ACTION_VERSION) {
		printf("vfsd %s\n", VFSD_VERSION);
	} else if (cfg.action == VFSD_ACTION_PRINT_CAPS) {
		vfsd_print_capabilities(stdout);
	} else if (cfg.action == VFSD_ACTION_SUPERVISE) {
		status = vfsd_supervise(&cfg);
	} else {
		status = vfsd_run(&cfg);
	}
	vfsd_config_free(&cfg);
	return status;
}
