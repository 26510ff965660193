/*
 * A guest that moves between daemons by the control socket, for tests/migrate/ctl.sh: it
 * plays the VMM and the guest with the test frontend and obeys lines on stdin, answering one
 * line each on stdout ("ok ..." or "FAIL why").
 *
 * Usage: move-drive SOCKET   (the share holds d/f000..d/f099, made by the test)
 *   start         connect, INIT, look every d/f* up, open d/f000 for reading, create "w" and
 *                 write "before\n" to it, open d and read the first part of it
 *   pending       send a GETATTR and check that nobody answers it within 300 ms
 *   answered      the pending GETATTR gets its answer (the daemon resumed)
 *   getattr       a GETATTR is answered (the daemon serves)
 *   move SOCKET   the daemon went away: connect to SOCKET as a VMM reconnects, with the
 *                 rings where the old daemon left them; then the pending GETATTR, every node
 *                 id, both handles and the half-read directory must work as before
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "fuse_client.h"

#define NFILES 100

static struct fe_dev *dev;
static struct fc c;
static uint64_t node[NFILES], ino[NFILES], dir_node, dir_fh, dir_off, rd_fh, w_node, w_fh;
static char seen[NFILES];
static struct fc_req pending;
static bool have_pending;

static int fail(const char *fmt, const char *arg, int r)
{
	printf("FAIL ");
	printf(fmt, arg);
	printf(": %s\n", r ? fc_strerror(&c, r) : "wrong answer");
	fflush(stdout);
	return 1;
}

/* Reads directory entries from dir_off on; marks the names seen, refuses one seen twice. */
static int read_dir(size_t size, bool once)
{
	static uint8_t buf[65536];

	for (;;) {
		size_t len = 0, pos = 0;
		int r = fc_readdir(&c, dir_node, dir_fh, dir_off, buf, size, &len);

		if (r)
			return fail("READDIR at %s", "offset", r);
		if (len == 0)
			return 0;
		while (pos + sizeof(struct fuse_dirent) <= len) {
			const struct fuse_dirent *de = (const void *)(buf + pos);
			int k;

			if (de->namelen == 4 && de->name[0] == 'f' && sscanf(de->name, "f%3d", &k) == 1 &&
			    k >= 0 && k < NFILES) {
				if (seen[k]++)
					return fail("READDIR sent %s twice", "a name", 0);
			}
			dir_off = de->off;
			pos += FUSE_DIRENT_ALIGN(sizeof(*de) + de->namelen);
		}
		if (once)
			return 0;
	}
}

static int start(const char *sock)
{
	struct fe_opts opts = { .mem_size = 64ull << 20, .nregions = 1 };
	struct fuse_entry_out e;
	struct fuse_open_out o;
	size_t done;
	char name[16];
	int r = fe_connect(sock, 10000);

	if (r < 0 || fe_new(r, &opts, &dev) < 0 || fe_start(dev) < 0)
		return fail("cannot set up the device on %s", sock, 0);
	fc_setup(&c, dev);
	c.timeout_ms = 10000;
	if ((r = fc_init(&c)))
		return fail("%s", "INIT", r);
	if ((r = fc_lookup(&c, FC_ROOT, "d", &e)))
		return fail("LOOKUP %s", "d", r);
	dir_node = e.nodeid;
	for (int k = 0; k < NFILES; k++) {
		snprintf(name, sizeof(name), "f%03d", k);
		if ((r = fc_lookup(&c, dir_node, name, &e)))
			return fail("LOOKUP %s", name, r);
		node[k] = e.nodeid;
		ino[k] = e.attr.ino;
	}
	if ((r = fc_open(&c, node[0], O_RDONLY, &o)))
		return fail("OPEN %s", "d/f000", r);
	rd_fh = o.fh;
	if ((r = fc_create(&c, FC_ROOT, "w", O_RDWR | O_TRUNC, 0644, &e, &o)) ||
	    (r = fc_write(&c, e.nodeid, o.fh, 0, "before\n", 7, &done)))
		return fail("CREATE and WRITE of %s", "w", r);
	w_node = e.nodeid;
	w_fh = o.fh;
	if ((r = fc_opendir(&c, dir_node, &o)))
		return fail("OPENDIR %s", "d", r);
	dir_fh = o.fh;
	if (read_dir(512, true))
		return 1;
	printf("ok started\n");
	return 0;
}

static int send_pending(void)
{
	struct fuse_getattr_in in = { 0 };
	struct fc_arg arg = { &in, sizeof(in) };
	int r = fc_start(&c, &pending, FUSE_GETATTR, node[10], &arg, 1, sizeof(struct fuse_attr_out));

	if (r)
		return fail("%s", "GETATTR", r);
	have_pending = true;
	usleep(300 * 1000);
	if (fe_poll_used(dev, c.queue) > 0)
		return fail("%s", "a paused daemon answered", 0);
	printf("ok pending\n");
	return 0;
}

static int finish_pending(void)
{
	struct fuse_attr_out a;
	size_t len;
	int r;

	if (!have_pending)
		return fail("%s", "no request is pending", 0);
	have_pending = false;
	r = fc_finish(&c, &pending, &a, sizeof(a), &len);
	if (r || a.attr.ino != ino[10])
		return fail("%s", "the pending GETATTR", r);
	return 0;
}

static int getattr_once(void)
{
	struct fuse_attr_out a;
	int r = fc_getattr(&c, node[20], &a);

	if (r || a.attr.ino != ino[20])
		return fail("%s", "GETATTR", r);
	printf("ok getattr\n");
	return 0;
}

static int move(const char *sock)
{
	struct fuse_attr_out a;
	char buf[64];
	size_t done;
	int r = fe_connect(sock, 10000);

	if (r < 0)
		return fail("cannot connect to %s", sock, 0);
	fe_backend_lost(dev);
	if (fe_reconnect(dev, r, NULL) < 0)
		return fail("reconnect: %s", fe_error(dev), 0);
	if (have_pending && finish_pending())
		return 1;
	for (int k = 0; k < NFILES; k++) {
		if ((r = fc_getattr(&c, node[k], &a)) || a.attr.ino != ino[k])
			return fail("GETATTR of an old node id (%s)", "d/f*", r);
	}
	if ((r = fc_read(&c, node[0], rd_fh, 0, buf, sizeof(buf), &done)) || done != 5 ||
	    memcmp(buf, "f000\n", 5) != 0)
		return fail("READ through the old %s", "handle", r);
	if ((r = fc_write(&c, w_node, w_fh, 7, "after\n", 6, &done)) || done != 6)
		return fail("WRITE through the old %s", "handle", r);
	if (read_dir(512, false))
		return 1;
	for (int k = 0; k < NFILES; k++)
		if (seen[k] != 1)
			return fail("the half-read directory lost %s", "a name", 0);
	printf("ok moved\n");
	return 0;
}

int main(int argc, char **argv)
{
	char line[4200];

	if (argc != 2) {
		fprintf(stderr, "usage: move-drive SOCKET\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		int bad;

		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "start") == 0)
			bad = start(argv[1]);
		else if (strcmp(line, "pending") == 0)
			bad = send_pending();
		else if (strcmp(line, "answered") == 0)
			bad = finish_pending() || (printf("ok answered\n"), 0);
		else if (strcmp(line, "getattr") == 0)
			bad = getattr_once();
		else if (strncmp(line, "move ", 5) == 0)
			bad = move(line + 5);
		else
			bad = fail("unknown command '%s'", line, 0);
		fflush(stdout);
		if (bad)
			return 1;
	}
	return 0;
}
