/* deploy.h - serve under inetd and systemd (deploy.c). */
#ifndef SK_CLI_DEPLOY_H
#define SK_CLI_DEPLOY_H

#include "sockit.h"

struct cli_deploy {
    int conn_fd;  /* --inetd/--inetd-wait: the socket from descriptor 0, moved; else -1 */
    int log_seen; /* --log was there (and was acted on) */
};

/* Before option parsing: with --inetd/--inetd-wait move the socket off 0/1/2
 * (0 and 1 become /dev/null, 2 the --log file or /dev/null); with --log FILE
 * point stderr at FILE; with --log syslog send messages to syslog. */
void cli_deploy_early(int argc, char **argv, struct cli_deploy *d);
/* Handle SIGHUP (reload(arg), between RELOADING=1 and READY=1; NULL: SIGHUP
 * keeps its default action), SIGUSR2 and the stop notice in s's event loop
 * (sk_server_on_readable), or in a thread of ours under a blocking model.
 * Before sk_server_run. */
void cli_deploy_signals(sk_server *s, void (*reload)(void *), void *arg);
/* No reload runs after this returns (one in progress is waited for): what
 * the reload uses may then be freed. */
void cli_deploy_end_reloads(void);
/* From a SIGINT/SIGTERM handler (async-signal-safe): STOPPING=1. */
void cli_deploy_stopping(void);
void cli_deploy_ready(void);   /* READY=1, once every listener is open */
void cli_deploy_stopped(void); /* STOPPING=1 if not said yet */
/* SIGUSR2: start main_argv again and hand it s's listeners (binary upgrade). */
void cli_deploy_upgrade_init(char **main_argv, sk_server *s);
/* In the new process: the listeners from the old one, as fd:N words in
 * *addrs. Returns 1 if there was a handover, 0 if not. */
int cli_deploy_handover(char ***addrs, int *naddrs);
/* --idle-exit: stop s after ms with no connection open and none served (the
 * looks on a timer in s's event loop, or in a thread of ours). Before
 * sk_server_run. */
void cli_deploy_idle_exit(sk_server *s, int ms, int verbose);
/* --reuseport -v: say when net.ipv4.tcp_migrate_req is 0. */
void cli_deploy_migrate_note(void);

#endif
