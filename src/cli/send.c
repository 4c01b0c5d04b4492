/*
 * send.c - `sockit send [OPTIONS] PATH... ADDRESS`: files and trees to a
 * `serve recv` service (the protocol is the library's: sk_xfer_send). This
 * file only parses the command line, shows progress and prints the outcome.
 */
#define _GNU_SOURCE /* getopt_long */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define USAGE "usage: sockit send [OPTIONS] PATH... ADDRESS (or HOST PORT)"

enum { PROGRESS_NONE, PROGRESS_BAR, PROGRESS_JSON };

typedef struct send_ui {
    int progress;
    int64_t t0, last_draw;
    uint64_t total;      /* bytes of the files to send, where known */
    uint64_t done_prev;  /* bytes of files already finished */
    uint64_t fresh;      /* bytes sent in this run */
    uint64_t fresh_prev; /* bytes sent of files already finished */
    uint64_t file_fresh; /* bytes of the current file sent in this run */
    const char *cur;
    char **refused;
    size_t nrefused;
    int drawn;
    uint64_t files, others; /* stored: files; directories and symlinks */
} send_ui;

static void help(void)
{
    printf("%s\n\n"
           "Sends files (and with -r directory trees) to `sockit serve recv --dir DIR`: each\n"
           "chunk verified on arrival, stored atomically, resumed after a cut.\n\n"
           "  -r, --recursive        send directories as trees (they land as DIR/...)\n"
           "      --overwrite        replace files that exist on the receiver\n"
           "      --no-resume        ignore partial files on the receiver; start over\n"
           "      --compress         compress chunks with zstd\n"
           "      --hash xxh3|sha256 hash of chunks and files (default xxh3)\n"
           "      --progress=bar|json|none  progress on a terminal (default), JSON lines\n"
           "                         on stdout, or none\n"
           "      --name NAME        the name the only PATH is stored under (needed for -)\n"
           "  -w, --timeout SECONDS  connect timeout and longest wait for an answer\n"
           "  -q, --quiet            no summary\n"
           "\nTLS (any of these implies --tls; the receiver runs `serve recv --tls`):\n",
           USAGE);
    cli_tls_client_help(stdout);
}

static void human(char *buf, size_t cap, double v)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void rate_text(char *buf, size_t cap, double bps)
{
    const char *units[] = {"B/s", "kB/s", "MB/s", "GB/s"};
    int u = 0;
    while (bps >= 1000 && u < 3)
        bps /= 1000, u++;
    snprintf(buf, cap, "%.1f %s", bps, units[u]);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void draw(send_ui *u, const sk_xfer_file *f, int final)
{
    int64_t now = sk_now_ms();
    double secs = (double)(now - u->t0) / 1000.0;
    double rate = secs > 0 ? (double)u->fresh / secs : 0; /* new bytes only: right after a resume */
    char done[32], size[32], r[32], left[32] = "";
    human(done, sizeof done, (double)f->done);
    if (f->size == UINT64_MAX)
        snprintf(size, sizeof size, "?");
    else
        human(size, sizeof size, (double)f->size);
    rate_text(r, sizeof r, rate);
    int pct =
        f->size && f->size != UINT64_MAX ? (int)(100.0 * (double)f->done / (double)f->size) : 100;
    uint64_t all = u->done_prev + f->done;
    int tpct = u->total ? (int)(100.0 * (double)all / (double)u->total) : 100;
    if (rate > 0 && u->total > all) {
        long s = (long)((double)(u->total - all) / rate);
        snprintf(left, sizeof left, ", %ld:%02ld left", s / 60, s % 60);
    }
    fprintf(stderr, "\r\033[K%s  %s / %s  %d%%  %s%s  [total %d%%]%s", f->name, done, size, pct, r,
            left, tpct, final ? "\n" : "");
    fflush(stderr);
    u->drawn = !final;
}

static void on_file(void *arg, const sk_xfer_file *f)
{
    send_ui *u = arg;
    int64_t now = sk_now_ms();
    if (f->status == SK_XFER_SENDING) {
        if (u->cur != f->name) { /* a new file */
            u->cur = f->name;
            u->file_fresh = 0;
        }
        u->fresh = u->fresh_prev + (f->done - f->resumed);
        int last = f->size != UINT64_MAX && f->done >= f->size;
        if (u->progress == PROGRESS_BAR && (last || now - u->last_draw >= 100)) {
            u->last_draw = now;
            draw(u, f, 0);
        }
        if (u->progress == PROGRESS_JSON && (last || now - u->last_draw >= 100)) {
            u->last_draw = now;
            double secs = (double)(now - u->t0) / 1000.0;
            printf("{\"file\":");
            json_str(stdout, f->name);
            printf(",\"bytes\":%llu,\"size\":", (unsigned long long)f->done);
            if (f->size == UINT64_MAX)
                printf("null");
            else
                printf("%llu", (unsigned long long)f->size);
            printf(",\"rate\":%.0f,\"status\":\"sending\"}\n",
                   secs > 0 ? (double)u->fresh / secs : 0.0);
            fflush(stdout);
        }
        return;
    }
    if (f->status == SK_XFER_STORED)
        *(f->type == 1 ? &u->files : &u->others) += 1;
    if (f->type == 1) {
        u->done_prev += f->status == SK_XFER_STORED ? f->done : 0;
        u->fresh_prev = u->fresh;
    }
    if (u->progress == PROGRESS_BAR && f->type == 1 && f->status == SK_XFER_STORED)
        draw(u, f, 1);
    else if (u->drawn) {
        fprintf(stderr, "\r\033[K");
        u->drawn = 0;
    }
    if (u->progress == PROGRESS_JSON) {
        printf("{\"file\":");
        json_str(stdout, f->name);
        printf(",\"bytes\":%llu,\"size\":", (unsigned long long)f->done);
        if (f->size == UINT64_MAX)
            printf("null");
        else
            printf("%llu", (unsigned long long)f->size);
        printf(",\"status\":\"%s\"", f->status == SK_XFER_STORED ? "stored" : "refused");
        if (f->reason) {
            printf(",\"reason\":");
            json_str(stdout, f->reason);
        }
        printf("}\n");
        fflush(stdout);
    }
    if (f->status == SK_XFER_REFUSED) {
        const char *who = f->name[0] ? f->name : f->path;
        cli_warn("refused %s: %s", who, f->reason ? f->reason : "refused");
        char **v = realloc(u->refused, (u->nrefused + 1) * sizeof *v);
        if (v) {
            u->refused = v;
            u->refused[u->nrefused] = strdup(who);
            if (u->refused[u->nrefused])
                u->nrefused++;
        }
    }
}

/* Bytes of the regular files among the paths (for the total), best effort. */
static uint64_t total_size(char **paths, int n)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISREG(st.st_mode))
            t += (uint64_t)st.st_size;
    }
    return t;
}

int cli_send(int argc, char **argv)
{
    static const struct option longs[] = {
        {"recursive", no_argument, NULL, 'r'},
        {"overwrite", no_argument, NULL, 'O'},
        {"no-resume", no_argument, NULL, 'N'},
        {"compress", no_argument, NULL, 'Z'},
        {"hash", required_argument, NULL, 'H'},
        {"progress", required_argument, NULL, 'P'},
        {"name", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'w'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_TLS_CLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct cli_tls_client tc = {0};
    sk_xfer_opts o = {0};
    send_ui u = {0};
    int quiet = 0, timeout_ms = 0;
    u.progress = isatty(STDERR_FILENO) ? PROGRESS_BAR : PROGRESS_NONE;
    int ch;
    while ((ch = getopt_long(argc, argv, ":rw:qh", longs, NULL)) != -1) {
        switch (ch) {
        case 'r': o.recursive = 1; break;
        case 'O': o.overwrite = 1; break;
        case 'N': o.no_resume = 1; break;
        case 'Z': o.compress = 1; break;
        case 'H':
            if (strcmp(optarg, "xxh3") == 0)
                o.hash = SK_XFER_XXH3;
            else if (strcmp(optarg, "sha256") == 0)
                o.hash = SK_XFER_SHA256;
            else
                cli_usage("--hash \"%s\": expected xxh3 or sha256", optarg);
            break;
        case 'P':
            if (strcmp(optarg, "bar") == 0)
                u.progress = isatty(STDERR_FILENO) ? PROGRESS_BAR : PROGRESS_NONE;
            else if (strcmp(optarg, "json") == 0)
                u.progress = PROGRESS_JSON;
            else if (strcmp(optarg, "none") == 0)
                u.progress = PROGRESS_NONE;
            else
                cli_usage("--progress \"%s\": expected bar, json or none", optarg);
            break;
        case 'n':
            if (optarg[0] == '\0')
                cli_usage("--name needs a non-empty NAME");
            o.name = optarg;
            break;
        case 'w': timeout_ms = cli_seconds_ms("-w", optarg); break;
        case 'q': quiet = 1; break;
        case 'h': help(); return 0;
        default:
            if (!cli_tls_client_option(&tc, ch, optarg))
                cli_bad_option("send", ch, argv);
        }
    }
    int words = argc - optind;
    char **w = argv + optind;
    if (words < 2)
        cli_usage("%s", USAGE);
    /* HOST PORT when the last word is a number and the one before names no file. */
    int addr_words = 1;
    if (words >= 3 && strspn(w[words - 1], "0123456789") == strlen(w[words - 1]) &&
        access(w[words - 2], F_OK) != 0 && strcmp(w[words - 2], "-") != 0)
        addr_words = 2;
    sk_addr a;
    cli_client_address(addr_words, w + words - addr_words, &a, USAGE);
    cli_tls_client_finish(&tc, &a);
    int npaths = words - addr_words;
    for (int i = 0; i < npaths; i++)
        if (strcmp(w[i], "-") == 0 && o.name == NULL)
            cli_usage("sending standard input (-) needs --name NAME");
    if (o.name && npaths != 1)
        cli_usage("--name names one PATH, not %d", npaths);
    sk_err err;
    sk_ignore_sigpipe();
    sk_tls *tls = NULL; /* made first: a bad file is reported before connecting */
    if (tc.tls) {
        if (tc.to.insecure)
            cli_warn("warning: --insecure: the receiver's identity is not checked");
        if ((tls = sk_tls_client_new(&tc.to, &err)) == NULL)
            cli_die(&err);
    }
    sk_endpoint peer;
    int fd = sk_connect(&a, timeout_ms, &peer, &err);
    if (fd < 0)
        cli_die(&err);
    sk_tls_conn *tconn = NULL;
    if (tls) {
        char name[SK_NAME_MAX];
        sk_sockaddr_format((struct sockaddr *)&peer.sa, peer.len, a.transport, name, sizeof name);
        if ((tconn = sk_tls_conn_new(tls, fd, 0, name, timeout_ms, &err)) == NULL)
            cli_die(&err);
    }
    o.timeout_ms = timeout_ms;
    o.on_file = on_file;
    o.arg = &u;
    u.total = total_size(w, npaths);
    u.t0 = sk_now_ms();
    sk_xfer_stats st;
    int rc = tconn ? sk_xfer_send_tls(tconn, (const char *const *)w, (size_t)npaths, &o, &st, &err)
                   : sk_xfer_send(fd, (const char *const *)w, (size_t)npaths, &o, &st, &err);
    if (tconn) {
        sk_tls_conn_close(tconn); /* closes fd */
        sk_tls_free(tls);
    } else {
        close(fd);
    }
    if (u.drawn)
        fprintf(stderr, "\n");
    if (rc < 0)
        cli_die(&err);
    double secs = (double)(sk_now_ms() - u.t0) / 1000.0;
    if (!quiet) {
        char b[32], r[32], extra[64] = "";
        human(b, sizeof b, (double)st.bytes);
        rate_text(r, sizeof r, secs > 0 ? (double)st.sent / secs : 0);
        if (st.bytes > st.sent) {
            char s[32];
            human(s, sizeof s, (double)st.sent);
            snprintf(extra, sizeof extra, ", %s of it sent now", s);
        }
        char others[64] = "";
        if (u.others)
            snprintf(others, sizeof others, " and %llu %s", (unsigned long long)u.others,
                     u.others == 1 ? "directory or symlink" : "directories and symlinks");
        fprintf(stderr, "sent %llu %s%s, %s in %.1f s (%s%s)%s\n", (unsigned long long)u.files,
                u.files == 1 ? "file" : "files", others, b, secs, r, extra,
                st.refused ? "" : ", all verified by the receiver");
    }
    if (u.nrefused) {
        size_t len = 0;
        char list[900];
        list[0] = '\0';
        for (size_t i = 0; i < u.nrefused; i++) {
            int n = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", u.refused[i]);
            if (n < 0 || (size_t)n >= sizeof list - len) {
                snprintf(list + len, sizeof list - len, "...");
                break;
            }
            len += (size_t)n;
        }
        cli_warn("%zu %s refused: %s", u.nrefused, u.nrefused == 1 ? "entry" : "entries", list);
    }
    for (size_t i = 0; i < u.nrefused; i++)
        free(u.refused[i]);
    free(u.refused);
    return rc == 0 ? 0 : 1;
}
