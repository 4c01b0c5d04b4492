/*
 * forking_server.c - the Sockets Tutorial's forking server, on libsockit.
 *
 *   forking_server [-m MODEL] PORT
 *
 * The tutorial: "To write a real world server, you would make essentially no
 * changes to the main() function, and all of the code which provided the
 * service would be in dostuff()." Here dostuff() is a service: a handler the
 * server engine calls as bytes arrive. It never blocks and never touches the
 * socket; it queues its reply and asks for the connection to be closed. So the
 * same handler runs under every concurrency model: a process per connection
 * (fork, the default, with the tutorial's zombies reaped), one at a time
 * (iterative), or any other model the library has; -m picks one.
 *
 * Ctrl-C or SIGTERM stops the server: it stops accepting and lets connections
 * in progress finish.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockit.h"

#define MSG_MAX 65536 /* a longer line is cut here */

/* ---- the service: dostuff() ---- */

struct dostuff {
    sk_buf line; /* the message so far */
    int answered;
};

static void answer(sk_conn *c)
{
    struct dostuff *d = sk_conn_data(c);
    if (!d->answered) {
        d->answered = 1;
        size_t n = d->line.len;
        const char *msg = n ? (const char *)sk_buf_head(&d->line) : "";
        if (n > 0 && msg[n - 1] == '\r')
            n--;
        sk_server_report(sk_conn_server(c), "Here is the message: %.*s", (int)n, msg);
        if (sk_conn_send(c, "I got your message", 18) < 0)
            return; /* the connection is closing already */
    }
    sk_conn_close(c); /* once the reply has been written */
}

/* Bytes arrived: collect them up to the first newline, then answer. */
static void dostuff_data(sk_conn *c, const uint8_t *data, size_t len)
{
    struct dostuff *d = sk_conn_data(c);
    if (d->answered)
        return;
    const uint8_t *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) : len;
    if (take > MSG_MAX - d->line.len)
        take = MSG_MAX - d->line.len;
    if (sk_buf_append(&d->line, data, take) < 0) {
        sk_server_log(sk_conn_server(c), SK_LOG_ERROR, "out of memory");
        sk_conn_close(c);
        return;
    }
    if (nl != NULL || d->line.len == MSG_MAX)
        answer(c);
}

/* The client closed its side: what we have is the whole message. */
static void dostuff_eof(sk_conn *c)
{
    answer(c);
}

static void dostuff_close(sk_conn *c)
{
    struct dostuff *d = sk_conn_data(c);
    sk_buf_free(&d->line);
}

static const sk_service dostuff = {
    .name = "dostuff",
    .summary = "the tutorial's dostuff(): one message in, \"I got your message\" out",
    .flags = SK_SVC_STREAM,
    .conn_size = sizeof(struct dostuff),
    .on_data = dostuff_data,
    .on_eof = dostuff_eof,
    .on_close = dostuff_close,
};

/* ---- main(): the same for any service ---- */

static sk_server *volatile server; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    sk_server_stop(server); /* async-signal-safe */
}

/* The signal handler may run at any time, even after sk_server_run returns
 * (a second Ctrl-C): it must never see a freed server. */
static void free_server(void)
{
    sk_server *s = server;
    server = NULL;
    sk_server_free(s);
}

/* Service output, one line per call. One write() per line: under the fork
 * model every child writes to the same standard output. */
static void report(void *arg, const char *line, size_t len)
{
    (void)arg;
    char *buf = malloc(len + 1);
    if (buf == NULL) {
        fputs("forking_server: out of memory\n", stderr);
        return;
    }
    memcpy(buf, line, len);
    buf[len] = '\n';
    if (sk_write_all(STDOUT_FILENO, buf, len + 1, -1) < 0)
        fprintf(stderr, "forking_server: write standard output: %s\n", strerror(errno));
    free(buf);
}

static void log_line(void *arg, int level, const char *line)
{
    (void)arg;
    (void)level;
    fprintf(stderr, "forking_server: %s\n", line);
}

static void die(const sk_err *err)
{
    fprintf(stderr, "forking_server: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

static void usage(void)
{
    fprintf(stderr, "usage: forking_server [-m MODEL] PORT\nmodels:");
    for (const sk_model *const *m = sk_models(); *m; m++)
        fprintf(stderr, " %s", (*m)->name);
    fprintf(stderr, " (default fork)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *model_name = "fork";
    int ch;
    opterr = 0; /* our own messages */
    while ((ch = getopt(argc, argv, ":m:")) != -1) {
        if (ch == ':')
            fprintf(stderr, "forking_server: option -%c needs a value\n", optopt);
        else if (ch == '?')
            fprintf(stderr, "forking_server: unknown option -%c\n", optopt);
        if (ch != 'm')
            usage();
        model_name = optarg;
    }
    if (argc - optind != 1)
        usage();
    const sk_model *model = sk_model_find(model_name);
    if (model == NULL) {
        fprintf(stderr, "forking_server: unknown model \"%s\"\n", model_name);
        usage();
    }

    sk_err err;
    sk_addr addr;
    if (sk_addr_parse(&addr, argv[optind], &err) < 0)
        die(&err);
    sk_server_opts o = {.service = &dostuff, .model = model, .report = report, .log = log_line};
    server = sk_server_new(&o, &err);
    if (server == NULL)
        die(&err);

    if (sk_server_listen(server, argv[optind], &err) < 0) {
        free_server();
        die(&err);
    }
    const sk_listener *l;
    for (size_t i = 0; strcmp(addr.port, "0") == 0 && (l = sk_server_listener(server, i)); i++)
        fprintf(stderr, "forking_server: listening on %s\n", l->name);

    sk_ignore_sigpipe();
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
        perror("forking_server: sigaction");
        free_server();
        return 1;
    }
    int rc = sk_server_run(server, &err);
    free_server();
    if (rc < 0)
        die(&err);
    return 0;
}
