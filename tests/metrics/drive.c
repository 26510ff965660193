/*
 * A known amount of work through one vfsd, for tests/metrics/run.sh: plays the VMM and the
 * guest with the test frontend, then waits for the test before it hangs up.
 *
 * Usage: drive SOCKET GETATTRS
 * Once connected and INIT done: LOOKUP of "no-such-name" (ENOENT), CREATE of "drive-file",
 * a 64 KiB WRITE and a 64 KiB READ of it, RELEASE, then GETATTRS GETATTRs of the root.
 * Prints "kicks N" (the kicks it sent) and "done", and reads a line from stdin: "more" does the GETATTRs again (and prints
 * "done"), "open" keeps one more file open (prints "done"); anything else or EOF hangs up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "fuse_client.h"

#define PAYLOAD 65536

static int getattrs(struct fc *c, long n)
{
	struct fuse_attr_out a;

	for (long i = 0; i < n; i++) {
		int r = fc_getattr(c, FC_ROOT, &a);

		if (r)
			return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[PAYLOAD];
	struct fe_opts opts = { .mem_size = 64ull << 20, .nregions = 1 };
	struct fuse_entry_out e;
	struct fuse_open_out o;
	struct fe_dev *dev;
	struct fc c;
	char line[64], name[64];
	size_t done;
	long n;
	int r, extra = 0;

	if (argc != 3 || (n = strtol(argv[2], NULL, 10)) < 0) {
		fprintf(stderr, "usage: drive SOCKET GETATTRS\n");
		return 2;
	}
	r = fe_connect(argv[1], 10000);
	if (r < 0 || fe_new(r, &opts, &dev) < 0 || fe_start(dev) < 0) {
		fprintf(stderr, "drive: cannot set up the device on %s\n", argv[1]);
		return 1;
	}
	fc_setup(&c, dev);
	c.timeout_ms = 10000;
	if ((r = fc_init(&c))) {
		fprintf(stderr, "drive: INIT: %s\n", strerror(-r));
		return 1;
	}
	r = fc_lookup(&c, FC_ROOT, "no-such-name", &e);
	if (r != -ENOENT) {
		fprintf(stderr, "drive: LOOKUP of a missing name gave %d\n", r);
		return 1;
	}
	memset(buf, 'v', sizeof(buf));
	if ((r = fc_create(&c, FC_ROOT, "drive-file", O_RDWR | O_TRUNC, 0644, &e, &o)) ||
	    (r = fc_write(&c, e.nodeid, o.fh, 0, buf, sizeof(buf), &done)) || done != PAYLOAD ||
	    (r = fc_read(&c, e.nodeid, o.fh, 0, buf, sizeof(buf), &done)) || done != PAYLOAD ||
	    (r = fc_release(&c, e.nodeid, o.fh))) {
		fprintf(stderr, "drive: create/write/read/release: %s\n", strerror(-r));
		return 1;
	}
	if ((r = getattrs(&c, n))) {
		fprintf(stderr, "drive: GETATTR: %s\n", strerror(-r));
		return 1;
	}
	for (;;) {
		/* the guest's kicks so far (the daemon counts them per ring: all on ring 1 here) */
		printf("kicks %u\ndone\n", dev->kicks);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			break;
		if (strcmp(line, "more\n") == 0) {
			r = getattrs(&c, n);
		} else if (strcmp(line, "open\n") == 0) {
			snprintf(name, sizeof(name), "open-%d", extra++);
			r = fc_create(&c, FC_ROOT, name, O_RDWR, 0644, &e, &o);
		} else {
			break;
		}
		if (r) {
			fprintf(stderr, "drive: %s\n", strerror(-r));
			return 1;
		}
	}
	fe_free(dev);
	return 0;
}
