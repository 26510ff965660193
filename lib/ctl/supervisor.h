/*
 * The supervisor's state, shared by its event loop (supervisor.c), its children
 * (child.c: spawn, exit, stop, state files and re-adoption) and its handlers. Everything runs
 * on the one supervisor thread: no field needs a lock.
 */
#ifndef VFSD_CTL_SUPERVISOR_H
#define VFSD_CTL_SUPERVISOR_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ctl/proto.h"
#include "daemon/config.h"

struct metrics_gateway;
struct metrics_pusher;
struct ctl_state_op;

#define CTL_CLIENTS_MAX 8192
#define CTL_CLIENT_FDS_MAX 4		/* fds received and not yet taken by a request */
#define CTL_SPAWN_TIMEOUT_MS 30000	/* from fork to "ready" */
#define CTL_REMOVE_TIMEOUT_MS 2000	/* for an ended daemon's socket to be removed */
#define CTL_GROUPS_MAX 64
#define CTL_CLOSE_BACKLOG 256		/* fds waiting for the closer before no more are taken */

/* What an epoll event belongs to. */
enum ctl_watch_kind {
	W_LISTEN,
	W_CLIENT,
	W_CHILD_EXIT,
	W_CHILD_READY,
	W_CHILD_REMOVED,
	W_SIGNAL,
	W_STATE, /* a daemon's answer to export-state or resume (state.c) */
};

struct ctl_watch {
	enum ctl_watch_kind kind;
	void *obj;
};

/* Who is on the other end of a connection (SO_PEERCRED, SO_PEERGROUPS). */
struct ctl_caller {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[CTL_GROUPS_MAX];
	int ngroups;
};

struct ctl_client {
	struct ctl_watch w;
	int fd;
	struct ctl_caller who;
	char *in; /* CTL_LINE_MAX + 1 bytes: a longest line and its newline */
	size_t in_len;
	int fds[CTL_CLIENT_FDS_MAX]; /* arrived with a line not yet answered */
	size_t fd_at[CTL_CLIENT_FDS_MAX]; /* where in `in` the message that brought each ended:
					     the fd goes with the line holding that byte */
	unsigned int nfds;
	char *out;
	size_t out_len, out_cap;
	bool watching; /* receives every child's started/exited event */
	bool busy;     /* a spawn or stop of its own is under way: its next line waits */
	bool closing;  /* close once out is written */
	bool dead;     /* closed; freed after this round of events (the graveyard) */
	struct ctl_client *prev, *next;
};

enum ctl_child_state { CHILD_STARTING, CHILD_RUNNING, CHILD_STOPPING, CHILD_EXITED };

struct ctl_child {
	struct ctl_watch exit_w, ready_w, remover_w;
	char sandbox[CTL_SANDBOX_MAX + 1];
	enum ctl_child_state state;
	pid_t pid;
	int pidfd;	       /* -1 once it exited */
	int ready_fd;	       /* read end of the child's --ready-fd pipe while starting, or -1 */
	int remover_fd;	       /* pidfd of what removes its socket once it ended, or -1 */
	enum ctl_child_state exit_was; /* its state when it ended, while its socket goes */
	unsigned long long start_ticks; /* /proc/PID/stat field 22: pid plus this is unique */
	time_t started_at;     /* wall clock */
	bool adopted;	       /* found alive by a restarted supervisor: not our child */
	bool own_socket;       /* the child created socket_path: removed when it ends */
	struct json_object *info; /* sandbox, shared_dir, socket_path, userns, cgroup, args, labels,
				     caller: what status reports and the state file keeps */
	uid_t owner;	 /* the uid that spawned it (info's caller_uid) */
	gid_t owner_gid; /* and its gid: with its groups in info, how its socket is removed */
	bool exit_known;
	int exit_status, exit_signal; /* when exit_known */
	char error[512];       /* why it failed to start, when it did */
	int error_errno;       /* the errno the child reported with it ("E<errno> ..."), or 0 */
	uint64_t deadline_ms;  /* starting: give up; stopping: SIGKILL; 0: none */
	struct ctl_client *waiter; /* gets the spawn's or stop's reply */
	struct json_object *waiter_id;
	enum ctl_op waiter_op;
	int metrics_fd; /* its metrics region (RUNTIME_DIR/sandboxes/ID/metrics), or -1 */
	bool pushed;	/* given to the pusher: it is told the end */
	bool dead; /* forgotten; freed after this round of events */
	struct ctl_child *prev, *next;
};

struct ctl_supervisor {
	const struct vfsd_config *cfg;
	const char *runtime_dir;
	char sandboxes_dir[4096];
	char exe[4096]; /* the vfsd binary children exec */
	int epfd, listen_fd, signal_fd, lock_fd;
	/* fds a client passed that are not kept: written here as numbers and closed by the
	 * closer thread, since a close(2) can block (a file on the client's hung FUSE mount).
	 * closing counts them (atomic: the closer decrements it). */
	int closer_fd;
	unsigned int closing;
	struct ctl_watch listen_w, signal_w;
	struct ctl_client *clients;
	unsigned int nclients;
	struct ctl_child *children;
	/* Closed clients and forgotten children, freed once the round of events that may
	 * still name them is over. */
	struct ctl_client *dead_clients;
	struct ctl_child *dead_children;
	/* --metrics-push: the gateway and the thread that pushes every child's region */
	struct metrics_gateway *gateway;
	struct metrics_pusher *pusher;
	struct ctl_state_op *state_ops; /* export-state and resume waiting for a daemon */
	bool quit;
};

uint64_t ctl_now_ms(void);

/* Queues one reply or event line for a client (and takes obj); a client whose backlog passes
 * CTL_OUT_MAX is dropped. */
void ctl_client_send(struct ctl_supervisor *s, struct ctl_client *c, struct json_object *obj);
/* Sends an event about ch to every watching client that may see ch (takes obj). */
void ctl_broadcast(struct ctl_supervisor *s, const struct ctl_child *ch, struct json_object *obj);
/* Root sees every daemon; another caller only those it spawned. */
bool ctl_may_see(const struct ctl_client *c, const struct ctl_child *ch);
/* The client's request is answered: it may read its next line. */
void ctl_client_done(struct ctl_supervisor *s, struct ctl_client *c);

/* Gets rid of an fd a client passed, without ever blocking the loop on its close. */
void ctl_fd_discard(struct ctl_supervisor *s, int fd);

/* Closes a client; its memory goes once this round of events is over. */
void ctl_client_close(struct ctl_supervisor *s, struct ctl_client *c);

/* child.c */
extern const char *const ctl_state_names[];
struct ctl_child *ctl_child_find(struct ctl_supervisor *s, const char *sandbox);
/* A new record in the list (starting, nothing open), or NULL without memory. */
struct ctl_child *ctl_child_new(struct ctl_supervisor *s, const char *sandbox);
/* Takes ch out of the list (its fds closed, its waiter dropped); freed after the round. */
void ctl_child_unlink(struct ctl_supervisor *s, struct ctl_child *ch);
/* RUNTIME_DIR/sandboxes/SANDBOX[/file] into out; -ENAMETOOLONG if it does not fit. */
int ctl_child_dir(const struct ctl_supervisor *s, const char *sandbox, const char *file, char *out,
		  size_t len);
/* /proc/PID/stat's start time: with the pid, it names one process for good. */
int ctl_proc_start_ticks(pid_t pid, unsigned long long *out);
/* Rewrites ch's state.json (a temporary file renamed over it). */
void ctl_state_save(struct ctl_supervisor *s, const struct ctl_child *ch);
/* c waits for ch (its spawn's or stop's reply), with req's id. */
void ctl_set_waiter(struct ctl_child *ch, struct ctl_client *c, const struct ctl_request *req);
/* spawn.c: starts a spawn; the reply goes to c once the child is ready or has failed. Takes
 * listen_fd (the socket passed with the request, or -1) and state_fd (import_state's, or -1).
 * Returns 0, or a negative errno after replying. */
int ctl_child_spawn(struct ctl_supervisor *s, struct ctl_client *c, const struct ctl_request *req,
		    int listen_fd, int state_fd);
/* Stops a child (SIGTERM, SIGKILL after the grace period) and replies once it ended. */
void ctl_child_stop(struct ctl_supervisor *s, struct ctl_client *c, struct ctl_child *ch,
		    const struct ctl_request *req);
/* A status object of ch (the caller owns it), and a reply {"ok": true, id, status...}. */
struct json_object *ctl_child_status(const struct ctl_child *ch);
struct json_object *ctl_child_reply(const struct ctl_child *ch, struct json_object *id);
void ctl_child_on_exit(struct ctl_supervisor *s, struct ctl_child *ch);
/* Its socket is removed: the end is told (events, the spawn's or stop's reply). */
void ctl_child_on_removed(struct ctl_supervisor *s, struct ctl_child *ch);
void ctl_child_on_ready(struct ctl_supervisor *s, struct ctl_child *ch);
/* Deadlines: kills what is overdue; returns the epoll timeout until the next one (-1: none). */
int ctl_children_tick(struct ctl_supervisor *s);
/* A client goes away: its pending replies are dropped, the children stay. */
void ctl_children_forget_client(struct ctl_supervisor *s, struct ctl_client *c);
/* Re-adopts the children a previous supervisor left (state files under sandboxes_dir). */
void ctl_children_adopt(struct ctl_supervisor *s);
/* Forgets an exited child: its record, state directory and log go. */
void ctl_child_forget(struct ctl_supervisor *s, struct ctl_child *ch);
void ctl_children_free(struct ctl_supervisor *s);

/* metrics.c: the children's metrics (docs/metrics.md) */
/* Starts pushing when --metrics-push asks; -errno after logging why. */
int ctl_metrics_setup(struct ctl_supervisor *s);
void ctl_metrics_shutdown(struct ctl_supervisor *s);
/* A new region for sandbox's daemon: the fd it counts into (passed as --metrics-fd), or -errno. */
int ctl_metrics_region_new(struct ctl_supervisor *s, const char *sandbox);
/* Opens the region of a re-adopted daemon into ch->metrics_fd (none when it has none). */
void ctl_metrics_region_open(struct ctl_supervisor *s, struct ctl_child *ch);
/* ch serves: its region is pushed from now on. */
void ctl_metrics_begin(struct ctl_supervisor *s, struct ctl_child *ch);
/* ch ended (clean: stopped, or exited with status 0): a last push, its group deleted if clean. */
void ctl_metrics_end(struct ctl_supervisor *s, struct ctl_child *ch, bool clean);
/* The "metrics" op: the text of one sandbox's daemon or of every one the caller may see. */
void ctl_metrics_reply(struct ctl_supervisor *s, struct ctl_client *c,
		       const struct ctl_request *req);
/* state.c: export-state, resume, and each child's state socket */
/* The listening socket RUNTIME_DIR/sandboxes/ID/state.sock a child answers on (--state-fd). */
int ctl_state_socket_new(struct ctl_supervisor *s, const char *sandbox);
/* export-state (takes fd, the caller's destination) or resume: asks ch's daemon and replies
 * once it answered. */
void ctl_state_request(struct ctl_supervisor *s, struct ctl_client *c, struct ctl_child *ch,
		       const struct ctl_request *req, int fd);
void ctl_state_on_input(struct ctl_supervisor *s, struct ctl_state_op *op);
void ctl_state_forget_client(struct ctl_supervisor *s, struct ctl_client *c);
void ctl_state_free(struct ctl_supervisor *s);
/* Frees the children forgotten during the last round of events. */
void ctl_children_reap_dead(struct ctl_supervisor *s);

#endif
