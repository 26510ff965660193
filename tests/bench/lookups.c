/*
 * The fd cache's bench driver (tests/bench/fdcache.sh): plays the VMM and a guest that looks
 * up every file of a tree and keeps them all (no FORGET), as a guest's dcache does after a
 * `find`, then reports how many lookups failed and what the daemon's memory grew by.
 *
 * Usage: lookups SOCKET DAEMON_PID DIRS PER
 * The tree is tree/D/F under the shared directory, D < DIRS, F < PER. Prints one line:
 *   lookups=N ok=N enfile=N emfile=N other=N seconds=S rss_before_kib=K rss_after_kib=K fds=N
 * A directory that fails its LOOKUP counts each of its files as failing the same way.
 * Exit status 0 when the walk ran (whatever it found), 1 when the device could not be used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frontend.h"
#include "fuse_client.h"
#include "harness.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct fe_opts opts = { .mem_size = 64ull << 20, .nregions = 1 };
	long ok = 0, enfile = 0, emfile = 0, other = 0, pid, dirs, per, before;
	struct fuse_entry_out e;
	struct fe_dev *dev;
	uint64_t tree;
	struct fc c;
	char name[32];
	double t0;
	int r;

	if (argc != 5 || (pid = atol(argv[2])) <= 0 || (dirs = atol(argv[3])) <= 0 ||
	    (per = atol(argv[4])) <= 0) {
		fprintf(stderr, "usage: lookups SOCKET DAEMON_PID DIRS PER\n");
		return 2;
	}
	r = fe_connect(argv[1], 10000);
	if (r < 0 || fe_new(r, &opts, &dev) < 0 || fe_start(dev) < 0) {
		fprintf(stderr, "lookups: cannot set up the device on %s\n", argv[1]);
		return 1;
	}
	fc_setup(&c, dev);
	c.timeout_ms = 30000;
	if ((r = fc_init(&c)) || (r = fc_lookup(&c, FC_ROOT, "tree", &e))) {
		fprintf(stderr, "lookups: INIT or LOOKUP tree: %s\n", fc_strerror(&c, r));
		return 1;
	}
	tree = e.nodeid;
	before = t_proc_status_kb((pid_t)pid, "VmRSS");
	t0 = now();
	for (long d = 0; d < dirs; d++) {
		uint64_t dir = 0;

		snprintf(name, sizeof(name), "%ld", d);
		r = fc_lookup(&c, tree, name, &e);
		if (r == 0)
			dir = e.nodeid;
		for (long f = 0; f < per; f++) {
			if (dir) { /* else each file fails as its directory did */
				snprintf(name, sizeof(name), "%ld", f);
				r = fc_lookup(&c, dir, name, &e);
			}
			if (r >= FC_ETIMEDOUT && r <= FC_ETRANSPORT) {
				fprintf(stderr, "lookups: transport: %s\n", fc_strerror(&c, r));
				return 1;
			}
			if (r == 0)
				ok++;
			else if (r == -ENFILE)
				enfile++;
			else if (r == -EMFILE)
				emfile++;
			else
				other++;
		}
	}
	printf("lookups=%ld ok=%ld enfile=%ld emfile=%ld other=%ld seconds=%.2f rss_before_kib=%ld rss_after_kib=%ld fds=%ld\n",
	       dirs * per, ok, enfile, emfile, other, now() - t0, before, t_proc_status_kb((pid_t)pid, "VmRSS"), (long)t_proc_fds((pid_t)pid));
	return 0;
}
