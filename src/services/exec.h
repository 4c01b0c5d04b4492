/*
 * exec.h - internal to the exec service: its settings (exec_config.c), how a
 * child is started (exec_spawn.c) and ended (exec_reap.c), shared by the
 * stream side (exec.c) and the datagram side (exec_dgram.c).
 */
#ifndef SK_EXEC_H
#define SK_EXEC_H

#include <spawn.h>
#include <sys/types.h>

#include "services.h"

#define SK_EXEC_ENV_MAX 64          /* --env and --pass-env, each */
#define SK_EXEC_DGRAM_TIMEOUT 10000 /* a datagram's program without --timeout */

/* The settings, as the options and the words after -- give them (borrowed). */
typedef struct sk__exec_cfg {
    char *const *argv; /* PROGRAM ARGS..., NULL-terminated */
    int argc;
    const char *sh; /* --sh COMMAND */
    const char *env[SK_EXEC_ENV_MAX];
    int nenv;
    const char *pass[SK_EXEC_ENV_MAX];
    int npass;
    int timeout_ms; /* --timeout; 0: none */
    int timeout_set;
} sk__exec_cfg;

/* The service's state, made once by init and read-only afterwards (shared by
 * every thread and every forked process). */
typedef struct sk__exec {
    sk_server *srv;
    char *path;      /* the file executed (PATH searched once, at init) */
    char **argv;     /* NULL-terminated */
    char **base_env; /* PATH, --env, --pass-env: "NAME=VALUE", malloc'd */
    size_t nbase;
    int timeout_ms; /* 0: none */
    int grace_ms;   /* the server's --grace: SIGTERM, then SIGKILL this much later */
    int verbose;
    int wait_here;          /* a blocking model: end a child in the connection's own flow */
    posix_spawnattr_t attr; /* own process group, default signals, empty mask */
    int attr_ok;
} sk__exec;

/* exec_config.c */
extern const sk_svc_option sk__exec_options[];
int sk__exec_configure(void *config, const char *option, const char *value, sk_err *err);
int sk__exec_args(void *config, int argc, char *const *argv, sk_err *err);
int sk__exec_init(sk_server *srv, void **state, sk_err *err);
void sk__exec_fini(void *state);

/* The environment of one child: the base, then what describes the peer
 * (PROTO, TCPREMOTEIP, ... as the README lists them), NULL-terminated in
 * env[cap], strings in text[tcap]. Returns the number of entries. */
#define SK_EXEC_PEER_VARS 12
size_t sk__exec_env(const sk__exec *x, const char *const *peer_vars, size_t npeer, char **env,
                    size_t cap);

/* exec_spawn.c: start the program with in, out and err as its descriptors 0,
 * 1 and 2 (nothing else open), in a new process group (its own pid), default
 * signal dispositions, an empty mask and exactly env. Returns its pid, or -1
 * with err ("exec /bin/nosuch: No such file or directory"). The caller's
 * descriptors stay the caller's. */
pid_t sk__exec_spawn(const sk__exec *x, char *const *env, int in, int out, int errfd, sk_err *err);
/* Start the program for one connection or datagram: its environment is the
 * base plus the npeer peer variables; its stdin a socket pair, its stdout
 * and stderr pipes. Returns its pid with our ends in fds[0] (to its stdin,
 * our read side shut down: a child writing to its stdin gets EPIPE, not a
 * stall), fds[1] (its stdout) and fds[2] (its stderr), non-blocking and
 * close-on-exec; or -1 with err, nothing left open. */
pid_t sk__exec_start(const sk__exec *x, const char *const *peer_vars, size_t npeer, int fds[3],
                     sk_err *err);
/* A descriptor that is readable when the child pid exits (pidfd_open), or
 * -1 where the system has none (the caller then asks waitpid). */
int sk__exec_pidfd(pid_t pid);
/* Reap pid if it has exited: 1 (reaped; *status set, -1 if unknown), 0 still running. */
int sk__exec_try_reap(pid_t pid, int *status);
/* "exited 3", "killed by signal 9 (Killed)". */
const char *sk__exec_status_text(int status, char *buf, size_t cap);

/* exec_reap.c: the child pid's connection or datagram is over. Its process
 * group gets SIGTERM, then SIGKILL grace_ms later if anything of it is left;
 * the child is reaped (reaped = 1: it already was, only its group is left).
 * here = 1: done in the caller's flow of control (it may wait up to grace_ms:
 * blocking models); 0: handed to this process's reaper thread. pidfd (or -1)
 * is the caller's and may be closed on return. */
void sk__exec_end(pid_t pid, int reaped, int pidfd, int grace_ms, int here);
/* Before exit: wait for the reaper's work (bounded by the grace periods it
 * holds) and stop its thread. */
void sk__exec_reap_fini(void);

/* exec_dgram.c */
int sk__exec_datagram(sk_dgram *d);

#endif
