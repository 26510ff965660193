/* vfsd: a virtio-fs vhost-user device daemon, command-line compatible with virtiofsd. */
#include "config.h"

int main(int argc, char **argv)
{
	struct vfsd_config cfg;
	int status;

	if (vfsd_parse_args(argc, argv, &cfg, &status) == VFSD_PARSE_RUN)
		status = vfsd_run(&cfg);
	vfsd_idmap_free(&cfg.uid_map);
	vfsd_idmap_free(&cfg.gid_map);
	vfsd_xattrmap_free(&cfg.xattrmap);
	return status;
}
