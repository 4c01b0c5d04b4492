/*
 * exec_config.c - the exec service's settings: its options (--sh, --env,
 * --pass-env, --timeout), the program after --, and the state made from them
 * once at init: the program found in PATH, its argv, the part of every
 * child's environment that does not depend on the peer, and the spawn
 * attributes. Everything a child needs is built here or before the spawn,
 * never in the child.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"

const sk_svc_option sk__exec_options[] = {
    {"sh", "'COMMAND'", "run COMMAND with /bin/sh -c instead of -- PROGRAM ARGS", SK_OPT_STRING},
    {"env", "NAME=VALUE", "set NAME in the program's environment (repeatable)", SK_OPT_STRING},
    {"pass-env", "NAME", "pass NAME from sockit's environment (repeatable)", SK_OPT_STRING},
    {"timeout", "SECS", "end a program running this long (datagrams: default 10)", SK_OPT_SECONDS},
    {NULL, NULL, NULL, 0},
};

/* A name a shell could export: letters, digits, '_', not starting with a digit. */
static int env_name_ok(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9')))
            return 0;
    }
    return 1;
}

int sk__exec_configure(void *config, const char *option, const char *value, sk_err *err)
{
    sk__exec_cfg *c = config;
    if (strcmp(option, "sh") == 0) {
        c->sh = value;
    } else if (strcmp(option, "env") == 0) {
        const char *eq = strchr(value, '=');
        if (eq == NULL || !env_name_ok(value, (size_t)(eq - value)))
            return sk_err_usage(err, "--env \"%s\": expected NAME=VALUE (NAME: letters, digits, _)",
                                value);
        if (c->nenv == SK_EXEC_ENV_MAX)
            return sk_err_usage(err, "--env: at most %d", SK_EXEC_ENV_MAX);
        c->env[c->nenv++] = value;
    } else if (strcmp(option, "pass-env") == 0) {
        if (!env_name_ok(value, strlen(value)))
            return sk_err_usage(err, "--pass-env \"%s\": expected a variable name", value);
        if (c->npass == SK_EXEC_ENV_MAX)
            return sk_err_usage(err, "--pass-env: at most %d", SK_EXEC_ENV_MAX);
        c->pass[c->npass++] = value;
    } else if (strcmp(option, "timeout") == 0) {
        double s = strtod(value, NULL); /* the kind (seconds) was checked */
        if (!(s > 0) || s > 86400 * 365)
            return sk_err_usage(err, "--timeout \"%s\": give seconds above 0", value);
        c->timeout_ms = s * 1000 < 1 ? 1 : (int)(s * 1000);
        c->timeout_set = 1;
    } else {
        return sk_err_usage(err, "--%s is not an option of the exec service", option);
    }
    return 0;
}

int sk__exec_args(void *config, int argc, char *const *argv, sk_err *err)
{
    sk__exec_cfg *c = config;
    if (argc < 1 || argv[0] == NULL || argv[0][0] == '\0')
        return sk_err_usage(err, "exec: nothing after -- (give PROGRAM [ARGS...])");
    c->argv = argv;
    c->argc = argc;
    return 0;
}

/* The program as execve needs it: a name with a slash as it is, else the
 * first executable file of that name in PATH (as execvp would, but once). */
static char *find_program(const char *name, const char *path, sk_err *err)
{
    if (strchr(name, '/')) {
        if (access(name, X_OK) < 0)
            return sk_errno(err, errno, "exec %s", name), NULL;
        return strdup(name);
    }
    size_t nlen = strlen(name);
    for (const char *p = path; p && *p;) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        char *full = malloc(dlen + nlen + 3);
        if (full == NULL)
            return sk_errno(err, ENOMEM, "exec"), NULL;
        if (dlen == 0) /* an empty entry is the current directory */
            snprintf(full, dlen + nlen + 3, "./%s", name);
        else
            snprintf(full, dlen + nlen + 3, "%.*s/%s", (int)dlen, p, name);
        if (access(full, X_OK) == 0)
            return full;
        free(full);
        p = end ? end + 1 : NULL;
    }
    sk_err_usage(err, "exec %s: not found in PATH (%s)", name, path ? path : "");
    err->code = ENOENT;
    return NULL;
}

/* Set NAME=VALUE in the base environment (a later one replaces an earlier:
 * --env PATH=... wins over sockit's own PATH). */
static int push_env(sk__exec *x, const char *name, const char *value, size_t len)
{
    size_t nlen = strlen(name);
    char *s = malloc(nlen + len + 2);
    if (s == NULL)
        return -1;
    sprintf(s, "%s=%.*s", name, (int)len, value);
    for (size_t i = 0; i < x->nbase; i++) {
        if (strncmp(x->base_env[i], s, nlen + 1) == 0) {
            free(x->base_env[i]);
            x->base_env[i] = s;
            return 0;
        }
    }
    x->base_env[x->nbase++] = s;
    return 0;
}

/* The fork and prefork models serve a connection in a process that may exit
 * (_exit) once it is over, taking a reaper thread with it: a child is ended
 * there, in the connection's own flow of control. The others must not wait
 * (an event loop serves everyone; iterative serves the next client): their
 * children go to the reaper thread, which lives as long as the server. */
static int model_blocks(const sk_server *srv)
{
    const sk_model *m = sk_server_options(srv)->model;
    static const char *const blocking[] = {"fork", "prefork"};
    for (size_t i = 0; m && i < sizeof blocking / sizeof blocking[0]; i++)
        if (strcmp(m->name, blocking[i]) == 0)
            return 1;
    return 0;
}

int sk__exec_init(sk_server *srv, void **state, sk_err *err)
{
    const sk_server_opts *o = sk_server_options(srv);
    static const sk__exec_cfg none;
    const sk__exec_cfg *c = o->service_config ? o->service_config : &none;
    if (c->argv && c->sh)
        return sk_err_usage(err, "exec: give either -- PROGRAM [ARGS...] or --sh 'COMMAND', "
                                 "not both");
    if (c->argv == NULL && c->sh == NULL)
        return sk_err_usage(err, "exec: no program: sockit serve exec ADDRESS... -- PROGRAM "
                                 "[ARGS...] (or --sh 'COMMAND')");
    sk__exec *x = calloc(1, sizeof *x);
    if (x == NULL)
        return sk_errno(err, ENOMEM, "exec");
    x->srv = srv;
    x->timeout_ms = c->timeout_ms;
    x->grace_ms = o->grace_ms;
    x->verbose = o->verbose;
    x->wait_here = model_blocks(srv);
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    int argc = c->sh ? 3 : c->argc;
    x->argv = calloc((size_t)argc + 1, sizeof *x->argv);
    x->base_env = calloc((size_t)(1 + c->nenv + c->npass) + 1, sizeof *x->base_env);
    if (x->argv == NULL || x->base_env == NULL)
        goto nomem;
    if (c->sh) {
        x->path = strdup("/bin/sh");
        x->argv[0] = "sh";
        x->argv[1] = "-c";
        x->argv[2] = (char *)c->sh;
    } else {
        x->path = find_program(c->argv[0], path, err);
        if (x->path == NULL) {
            sk__exec_fini(x);
            return -1;
        }
        for (int i = 0; i < argc; i++)
            x->argv[i] = c->argv[i];
    }
    if (x->path == NULL || push_env(x, "PATH", path, strlen(path)) < 0)
        goto nomem;
    for (int i = 0; i < c->nenv; i++) {
        const char *eq = strchr(c->env[i], '=');
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - c->env[i]), c->env[i]);
        if (push_env(x, name, eq + 1, strlen(eq + 1)) < 0)
            goto nomem;
    }
    for (int i = 0; i < c->npass; i++) {
        const char *v = getenv(c->pass[i]);
        if (v != NULL && push_env(x, c->pass[i], v, strlen(v)) < 0)
            goto nomem;
    }
    /* Posix_spawn (a vfork underneath in glibc: no copy of a large server's
     * page tables) does in the child exactly what the issue asks for. */
    sigset_t all, none_set;
    sigfillset(&all);
    sigemptyset(&none_set);
    if (posix_spawnattr_init(&x->attr) != 0)
        goto nomem;
    posix_spawnattr_setflags(&x->attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                           POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&x->attr, 0);
    posix_spawnattr_setsigdefault(&x->attr, &all);
    posix_spawnattr_setsigmask(&x->attr, &none_set);
    x->attr_ok = 1;
    *state = x;
    return 0;
nomem:
    sk__exec_fini(x);
    return sk_errno(err, ENOMEM, "exec");
}

void sk__exec_fini(void *state)
{
    sk__exec *x = state;
    if (x == NULL)
        return;
    sk__exec_reap_fini();
    if (x->attr_ok)
        posix_spawnattr_destroy(&x->attr);
    for (size_t i = 0; i < x->nbase; i++)
        free(x->base_env[i]);
    free(x->base_env);
    free(x->argv);
    free(x->path);
    free(x);
}

size_t sk__exec_env(const sk__exec *x, const char *const *peer_vars, size_t npeer, char **env,
                    size_t cap)
{
    /* The peer's facts first: getenv finds the first of a name, so --env
     * cannot make a child believe in another peer. */
    size_t n = 0;
    for (size_t i = 0; i < npeer && n + 1 < cap; i++)
        env[n++] = (char *)peer_vars[i];
    for (size_t i = 0; i < x->nbase && n + 1 < cap; i++)
        env[n++] = x->base_env[i];
    env[n] = NULL;
    return n;
}
