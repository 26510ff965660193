/* `vfsd ctl`: the control socket's client for people and probes (docs/control.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/unix.h"
#include "base/util.h"
#include "ctl/conn.h"
#include "ctl/ctl.h"
#include "ctl/proto.h"

static void ctl_usage(FILE *out)
{
	fputs("Usage: vfsd ctl [--control-socket PATH] [--json] COMMAND\n"
	      "\n"
	      "Commands:\n"
	      "  ping                        is the supervisor there\n"
	      "  version                     its version and the ops it understands\n"
	      "  list                        every sandbox's daemon\n"
	      "  status SANDBOX              one of them\n"
	      "  stop SANDBOX [--grace-ms N] SIGTERM, SIGKILL after the grace period\n"
	      "  watch                       one line per daemon that starts or ends\n"
	      "  metrics [SANDBOX]           the daemons' metrics, Prometheus text format\n"
	      "  spawn SANDBOX --shared-dir DIR (--socket-path PATH | --fd N)\n"
	      "        [--userns PATH] [--cgroup DIR] [--label KEY=VALUE]... [--import-state FILE]\n"
	      "        [-- DAEMON-OPTIONS...]\n"
	      "  export-state SANDBOX FILE   write the daemon's device state to FILE (- for stdout);\n"
	      "                              its rings stay paused until resume or stop\n"
	      "  resume SANDBOX              serve again after export-state\n"
	      "\n"
	      "  --control-socket PATH       [default: " VFSD_RUNTIME_DIR "/" VFSD_CONTROL_SOCKET_NAME "]\n"
	      "  --json                      print the supervisor's replies as they are\n"
	      "\n"
	      "Exit status: 0 done, 1 refused (or no supervisor), 2 usage error.\n",
	      out);
}

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "vfsd ctl: ");
	fprintf(stderr, msg, arg);
	fputs("\nFor more information, try 'vfsd ctl --help'.\n", stderr);
	return 2;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return "-";
	return json_object_get_string(v);
}

static void print_exit(FILE *out, struct json_object *o)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, "signal", &v))
		fprintf(out, "killed by signal %d", json_object_get_int(v));
	else if (json_object_object_get_ex(o, "exit_status", &v) && v)
		fprintf(out, "exit status %d", json_object_get_int(v));
	else
		fprintf(out, "exit status unknown");
}

static void print_time(char *buf, size_t len, struct json_object *o)
{
	struct json_object *v;
	struct tm tm;
	time_t t;

	if (!json_object_object_get_ex(o, "started_at", &v)) {
		snprintf(buf, len, "-");
		return;
	}
	t = (time_t)json_object_get_int64(v);
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_table(struct json_object *list)
{
	printf("%-24s %-8s %-9s %-20s %-s\n", "SANDBOX", "PID", "STATE", "STARTED", "SOCKET");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *o = json_object_array_get_idx(list, i);
		char when[32];

		print_time(when, sizeof(when), o);
		printf("%-24s %-8s %-9s %-20s %s\n", str(o, "sandbox"), str(o, "pid"),
		       str(o, "state"), when,
		       strcmp(str(o, "socket_path"), "-") ? str(o, "socket_path") : "(passed fd)");
	}
}

static void print_status(struct json_object *o)
{
	static const char *const keys[] = { "sandbox", "state", "pid", "shared_dir", "socket_path",
					    "userns", "cgroup", "caller_uid", "adopted", "error" };
	char when[32];

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		printf("%-12s %s\n", keys[i], str(o, keys[i]));
	print_time(when, sizeof(when), o);
	printf("%-12s %s\n", "started", when);
	printf("%-12s %s\n", "args",
	       json_object_to_json_string_ext(json_object_object_get(o, "args"), JSON_C_TO_STRING_PLAIN));
	printf("%-12s %s\n", "labels",
	       json_object_to_json_string_ext(json_object_object_get(o, "labels"), JSON_C_TO_STRING_PLAIN));
	if (strcmp(str(o, "state"), "exited") == 0) {
		printf("%-12s ", "exit");
		print_exit(stdout, o);
		putchar('\n');
	}
}

/* What a person reads for a successful reply to op. */
static void print_reply(const char *op, struct json_object *o)
{
	if (strcmp(op, "ping") == 0) {
		puts("ok");
	} else if (strcmp(op, "version") == 0) {
		printf("vfsd %s, control protocol %s, ops %s\n", str(o, "version"), str(o, "protocol"),
		       json_object_to_json_string_ext(json_object_object_get(o, "ops"),
						      JSON_C_TO_STRING_PLAIN));
	} else if (strcmp(op, "list") == 0) {
		print_table(json_object_object_get(o, "sandboxes"));
	} else if (strcmp(op, "status") == 0) {
		print_status(o);
	} else if (strcmp(op, "spawn") == 0) {
		printf("sandbox %s: daemon %s serving on %s\n", str(o, "sandbox"), str(o, "pid"),
		       strcmp(str(o, "socket_path"), "-") ? str(o, "socket_path") : "the passed socket");
	} else if (strcmp(op, "stop") == 0) {
		printf("sandbox %s: daemon %s stopped, ", str(o, "sandbox"), str(o, "pid"));
		print_exit(stdout, o);
		putchar('\n');
	} else if (strcmp(op, "watch") == 0) {
		fputs("watching\n", stderr);
	} else if (strcmp(op, "metrics") == 0) {
		const char *text = json_object_get_string(json_object_object_get(o, "text"));

		fputs(text ? text : "", stdout);
	} else if (strcmp(op, "export-state") == 0) {
		fprintf(stderr, "sandbox %s: state exported (%s bytes), its daemon is paused\n",
			str(o, "sandbox"), str(o, "bytes"));
	} else if (strcmp(op, "resume") == 0) {
		printf("sandbox %s: serving again\n", str(o, "sandbox"));
	}
}

static void print_event(struct json_object *o)
{
	printf("%s %s pid %s", str(o, "event"), str(o, "sandbox"), str(o, "pid"));
	if (strcmp(str(o, "event"), "exited") == 0) {
		fputs(", ", stdout);
		print_exit(stdout, o);
	}
	putchar('\n');
	fflush(stdout);
}

/* Builds a spawn request from `spawn SANDBOX OPTIONS... [-- DAEMON-OPTIONS...]`. */
static int parse_spawn(int argc, char **argv, struct json_object *req, int *pass_fd,
		       int *state_fd)
{
	static const struct option opts[] = {
		{ "shared-dir", required_argument, NULL, 's' },
		{ "socket-path", required_argument, NULL, 'p' },
		{ "fd", required_argument, NULL, 'f' },
		{ "userns", required_argument, NULL, 'u' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "label", required_argument, NULL, 'l' },
		{ "import-state", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct json_object *labels = json_object_new_object(), *args = json_object_new_array();
	uint64_t v;
	int c;

	/* req owns them from here on: the caller frees it on every return */
	json_object_object_add(req, "labels", labels);
	json_object_object_add(req, "args", args);
	if (argc < 2 || argv[1][0] == '-')
		return usage_error("spawn needs a SANDBOX id%s", "");
	json_object_object_add(req, "sandbox", json_object_new_string(argv[1]));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "+:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			json_object_object_add(req, "shared_dir", json_object_new_string(optarg));
			break;
		case 'p':
			json_object_object_add(req, "socket_path", json_object_new_string(optarg));
			break;
		case 'u':
			json_object_object_add(req, "userns", json_object_new_string(optarg));
			break;
		case 'c':
			json_object_object_add(req, "cgroup", json_object_new_string(optarg));
			break;
		case 'f':
			if (parse_u64(optarg, INT32_MAX, &v) < 0)
				return usage_error("invalid value '%s' for '--fd'", optarg);
			/* else sendmsg's EBADF would read as the supervisor's failure */
			if (fcntl((int)v, F_GETFD) < 0)
				return usage_error("--fd %s is not an open file descriptor", optarg);
			*pass_fd = (int)v;
			break;
		case 'i':
			/* Opened here, as the caller: the supervisor reads what it is given. */
			if (*state_fd >= 0)
				close(*state_fd);
			*state_fd = open(optarg, O_RDONLY | O_CLOEXEC);
			if (*state_fd < 0) {
				fprintf(stderr, "vfsd ctl: %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			json_object_object_add(req, "import_state", json_object_new_boolean(true));
			break;
		case 'l': {
			char *eq = strchr(optarg, '=');

			if (!eq)
				return usage_error("--label takes KEY=VALUE, not '%s'", optarg);
			*eq = '\0';
			json_object_object_add(labels, optarg, json_object_new_string(eq + 1));
			*eq = '=';
			break;
		}
		case ':':
			return usage_error("option '%s' needs a value", argv[optind]);
		default:
			return usage_error("unexpected argument '%s' (daemon options go after --)",
					   argv[optind]);
		}
	}
	for (int i = optind + 1; i < argc; i++)
		json_object_array_add(args, json_object_new_string(argv[i]));
	if (optind + 1 < argc && strcmp(argv[optind], "--") != 0)
		return usage_error("unexpected argument '%s' (daemon options go after --)",
				   argv[optind + 1]);
	if (!json_object_object_get(req, "shared_dir"))
		return usage_error("spawn needs --shared-dir%s", "");
	return 0;
}

int vfsd_ctl_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control-socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = VFSD_RUNTIME_DIR "/" VFSD_CONTROL_SOCKET_NAME, *op;
	struct json_object *req, *reply;
	bool json = false;
	int c, pass_fd = -1, state_fd = -1, status = 0, r;
	int fds[2];
	unsigned int nfds = 0;
	uint64_t v;
	struct ctl_conn conn;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unexpected argument '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		ctl_usage(stderr);
		return 2;
	}
	op = argv[optind];
	argc -= optind;
	argv += optind;
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string(op));
	if (strcmp(op, "spawn") == 0) {
		r = parse_spawn(argc, argv, req, &pass_fd, &state_fd);
		if (r) {
			if (state_fd >= 0)
				close(state_fd);
			json_object_put(req);
			return r;
		}
	} else if (strcmp(op, "export-state") == 0 || strcmp(op, "resume") == 0) {
		bool export = op[0] == 'e';

		if (argc != (export ? 3 : 2)) {
			json_object_put(req);
			return usage_error(export ? "export-state needs SANDBOX FILE%s"
						  : "resume needs a SANDBOX id%s", "");
		}
		json_object_object_add(req, "sandbox", json_object_new_string(argv[1]));
		if (export) {
			/* Created here, as the caller, and passed: the supervisor writes nowhere of
			 * its own choosing. */
			state_fd = strcmp(argv[2], "-") == 0 ?
					   fcntl(1, F_DUPFD_CLOEXEC, 3) :
					   open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			if (state_fd < 0) {
				fprintf(stderr, "vfsd ctl: %s: %s\n", argv[2], strerror(errno));
				json_object_put(req);
				return 1;
			}
		}
	} else if (strcmp(op, "status") == 0 || strcmp(op, "stop") == 0) {
		if (argc < 2) {
			json_object_put(req);
			return usage_error("%s needs a SANDBOX id", op);
		}
		json_object_object_add(req, "sandbox", json_object_new_string(argv[1]));
		if (strcmp(op, "stop") == 0 && argc == 4 && strcmp(argv[2], "--grace-ms") == 0 &&
		    parse_u64(argv[3], CTL_GRACE_MAX_MS, &v) == 0)
			json_object_object_add(req, "grace_ms", json_object_new_int64((int64_t)v));
		else if (argc != 2) {
			json_object_put(req);
			return usage_error("unexpected argument '%s'", argv[2]);
		}
	} else if (strcmp(op, "metrics") == 0 && argc <= 2) {
		if (argc == 2)
			json_object_object_add(req, "sandbox", json_object_new_string(argv[1]));
	} else if (strcmp(op, "ping") && strcmp(op, "version") && strcmp(op, "list") &&
		   strcmp(op, "watch")) {
		json_object_put(req);
		return usage_error("unknown command '%s'", op);
	} else if (argc != 1) {
		json_object_put(req);
		return usage_error("unexpected argument '%s'", argv[1]);
	}

	r = ctl_conn_open(&conn, sock, 0);
	if (r < 0) {
		fprintf(stderr, "vfsd ctl: cannot connect to %s: %s\n", sock, strerror(-r));
		json_object_put(req);
		return 1;
	}
	if (pass_fd >= 0)
		fds[nfds++] = pass_fd;
	if (state_fd >= 0)
		fds[nfds++] = state_fd;
	r = ctl_conn_send_fds(&conn, req, fds, nfds);
	if (state_fd >= 0)
		close(state_fd); /* the supervisor has it: EOF comes when the daemon closes its own */
	reply = r < 0 ? NULL : ctl_conn_recv(&conn, NULL);
	if (!reply) {
		fprintf(stderr, "vfsd ctl: no reply from %s%s%s\n", sock, r < 0 ? ": " : "",
			r < 0 ? strerror(-r) : "");
		status = 1;
	} else if (json) {
		puts(conn.raw);
		status = ctl_reply_ok(reply) ? 0 : 1;
	} else if (!ctl_reply_ok(reply)) {
		fprintf(stderr, "vfsd ctl: %s: %s (errno %s)\n", op, str(reply, "error"),
			str(reply, "errno"));
		status = 1;
	} else {
		print_reply(op, reply);
	}
	fflush(stdout);
	if (reply && status == 0 && strcmp(op, "watch") == 0) {
		struct json_object *ev;

		json_object_put(reply);
		while ((ev = ctl_conn_recv(&conn, NULL))) {
			if (json) {
				puts(conn.raw);
				fflush(stdout);
			} else {
				print_event(ev);
			}
			json_object_put(ev);
		}
		reply = NULL;
	}
	json_object_put(reply);
	json_object_put(req);
	ctl_conn_close(&conn);
	return status;
}
