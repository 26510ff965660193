/* vfsd: a virtio-fs vhost-user device daemon, command-line compatible with virtiofsd. */
#include "config.h"

int main(int argc, char **argv)
{
	struct vfsd_config cfg;
	int status;

	if (vfsd_parse_args(argc, argv, &cfg, &status) == VFSD_PARSE_EXIT)
		return status;
	return vfsd_run(&cfg);
}
