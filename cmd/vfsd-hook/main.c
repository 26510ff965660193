/*
 * vfsd-hook STAGE [--control-socket PATH] [--timeout MS] [--hook-dir DIR]
 *
 * The OCI hook that gives a sandbox its vfsd daemon (docs/hook.md). An engine runs it with
 * the container's state JSON on stdin. Exit status 0, or 1 with one line on stderr; in
 * poststop a failure is reported and the exit status is still 0 (nothing to undo there).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "ctl/conn.h"
#include "hook/hook.h"

static void usage(FILE *out)
{
	fputs("Usage: vfsd-hook [STAGE] [OPTIONS] < STATE\n"
	      "\n"
	      "The OCI hook that has the vfsd supervisor start a sandbox's virtio-fs daemon\n"
	      "(createRuntime, prestart, poststart) and stop it (poststop). It acts only for a\n"
	      "container annotated io.vfsd.enable=true; docs/hook.md lists the annotations.\n"
	      "Without a STAGE, the state's status says: \"stopped\" is poststop, any other\n"
	      "createRuntime (so one hooks.d file can name both stages).\n"
	      "\n"
	      "  --control-socket PATH  the supervisor [default: the io.vfsd.control-socket\n"
	      "                         annotation, else " HOOK_CONTROL_SOCKET "]\n"
	      "  --timeout MS           the hook's own deadline, below the engine's [default 5000]\n"
	      "  --hook-dir DIR         where sockets and bookkeeping go [default: $VFSD_HOOK_DIR,\n"
	      "                         else /run/vfsd-hook for root, /run/user/UID/vfsd]\n"
	      "  --trust-annotations    as root, take every io.vfsd.* annotation (share, socket,\n"
	      "                         cgroup, control socket, any option): only where those who\n"
	      "                         write the containers' annotations may do what root does\n"
	      "  --help, --version\n",
	      out);
}

/* Reads all of fd (at most max bytes, until deadline) into a malloc'ed buffer. */
static char *read_all(int fd, size_t max, uint64_t deadline, size_t *len, int *err)
{
	size_t cap = 65536;
	char *buf = malloc(cap + 1);

	*len = 0;
	*err = buf ? 0 : ENOMEM;
	while (buf) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = ctl_clock_ms();
		ssize_t n;

		if (now >= deadline) {
			*err = ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)MIN(deadline - now, (uint64_t)INT32_MAX)) == 0)
			continue;
		if (*len == cap) {
			char *b = cap < max + 1 ? realloc(buf, cap * 2 + 1) : NULL;

			if (!b) {
				*err = cap < max + 1 ? ENOMEM : E2BIG;
				break;
			}
			buf = b;
			cap *= 2;
		}
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			*err = errno;
			break;
		}
		if (n == 0) {
			if (*len > max)
				*err = E2BIG;
			else
				return buf;
			break;
		}
		*len += (size_t)n;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control-socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "hook-dir", required_argument, NULL, 'd' },
		{ "trust-annotations", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct hook_opts o = { .hook_dir = getenv("VFSD_HOOK_DIR") };
	struct hook_input in;
	struct hook_plan plan = { 0 };
	uint64_t timeout = HOOK_TIMEOUT_MS, v;
	char err[2048], path[4200];
	const char *why, *stage_name;
	size_t len;
	char *buf;
	int c, stage, e, r;

	if (o.hook_dir && !*o.hook_dir)
		o.hook_dir = NULL; /* VFSD_HOOK_DIR= is unset */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.control_socket = optarg;
			break;
		case 't':
			if (parse_u64(optarg, 600000, &v) < 0 || v == 0) {
				fprintf(stderr, "vfsd-hook: --timeout takes 1 to 600000 milliseconds, not '%s'\n", optarg);
				return 2;
			}
			timeout = v;
			break;
		case 'd':
			o.hook_dir = optarg;
			break;
		case 'T':
			o.trust_annotations = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vfsd-hook %s\n", VFSD_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "vfsd-hook: option '%s' needs a value\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "vfsd-hook: unknown option '%s' (try --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind + 1 < argc) {
		fprintf(stderr, "vfsd-hook: one stage only, not '%s' after it\n", argv[optind + 1]);
		return 2;
	}
	/* no stage: the state's status says (one hooks.d file serves both stages) */
	stage_name = optind < argc ? argv[optind] : NULL;
	stage = stage_name ? hook_stage_parse(stage_name, &why) : HOOK_POSTSTOP;
	if (stage < 0) {
		fprintf(stderr, "vfsd-hook: %s: %s\n", stage_name,
			why ? why : "not a stage (createRuntime, prestart, poststart or poststop)");
		return 2;
	}
	o.stage = (enum hook_stage)stage;
	o.deadline_ms = ctl_clock_ms() + timeout;
	/* in poststop a failure is told and is not the engine's: exit 0 */
	int fail_status = o.stage == HOOK_POSTSTOP && stage_name ? 0 : 1;

	buf = read_all(STDIN_FILENO, HOOK_STATE_MAX, o.deadline_ms, &len, &e);
	if (!buf) {
		fprintf(stderr, "vfsd-hook: %s: cannot read the state on stdin: %s\n",
			stage_name ? stage_name : "(stage from the state)",
			e == ETIMEDOUT ? "timed out (the hook's deadline)"
			: e == E2BIG   ? "longer than 1 MiB"
				       : strerror(e));
		return fail_status;
	}
	r = hook_state_parse(&in, buf, len, o.stage == HOOK_POSTSTOP, err, sizeof(err));
	free(buf);
	if (!stage_name && r == 0 && !in.status) {
		/* (Kata's states have none: its poststop would read as createRuntime) */
		snprintf(err, sizeof(err), "the state has no \"status\" to tell the stage by: name the stage (vfsd-hook createRuntime|poststop)");
		r = -EINVAL;
	}
	if (!stage_name) {
		bool stopped = in.status && strcmp(in.status, "stopped") == 0;

		o.stage = stopped ? HOOK_POSTSTOP : HOOK_CREATE_RUNTIME;
		stage_name = stopped ? "poststop" : "createRuntime";
		fail_status = stopped ? 0 : 1;
		if (r == 0 && !stopped && in.pid == 0) {
			snprintf(err, sizeof(err), "the state on stdin has no \"pid\" (the container's process)");
			r = -EINVAL;
		}
	}
	if (r < 0) {
		fprintf(stderr, "vfsd-hook: %s: %s\n", stage_name, err);
		hook_input_free(&in);
		return fail_status;
	}
	/* config.json: its annotations when the state has none, root.path, the namespaces */
	snprintf(path, sizeof(path), "%s/config.json", in.bundle);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	buf = fd < 0 ? NULL : read_all(fd, HOOK_CONFIG_MAX, o.deadline_ms, &len, &e);
	if (fd < 0)
		e = errno;
	else
		close(fd);
	if (!buf && !(o.stage == HOOK_POSTSTOP && e == ENOENT && in.annotations)) {
		fprintf(stderr, "vfsd-hook: %s: container %s: cannot read %s: %s\n", stage_name, in.id,
			path, e == E2BIG ? "longer than 8 MiB" : strerror(e));
		hook_input_free(&in);
		return fail_status;
	}
	r = buf ? hook_config_parse(&in, buf, len, err, sizeof(err)) : 0;
	free(buf);
	if (r == 0)
		r = hook_plan_make(&in, &plan, err, sizeof(err));
	if (r == 0 && plan.enabled)
		r = hook_run(&o, &in, &plan, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "vfsd-hook: %s: container %s: %s\n", stage_name, in.id, err);
	hook_plan_free(&plan);
	hook_input_free(&in);
	return r < 0 ? fail_status : 0;
}
