/*
 * bench_report.c - the report of `sockit bench` (a table, or one JSON object
 * with --json), and for the idle mode the server's processes and their RSS,
 * found through /proc: the listening socket's inode in /proc/net/{tcp,tcp6,
 * unix}, then the processes whose descriptors name that socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static const char *const mode_names[] = {"echo", "conn", "http", "bulk", "udp", "idle"};

/* ------------------------------------------------------------ the server */

#define MAX_INODES 16

/* Inodes of listening TCP sockets on `port` in one /proc/net/tcp* file. */
static int tcp_inodes(const char *file, unsigned port, unsigned long *ino, int n)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return n;
    char line[512];
    if (fgets(line, sizeof line, f) == NULL) { /* the heading */
        fclose(f);
        return n;
    }
    while (n < MAX_INODES && fgets(line, sizeof line, f)) {
        char local[128];
        unsigned st;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %127s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) != 3)
            continue;
        char *colon = strrchr(local, ':');
        if (colon && st == 0x0A && strtoul(colon + 1, NULL, 16) == port)
            ino[n++] = inode;
    }
    fclose(f);
    return n;
}

/* Inodes of listening Unix stream sockets bound to `path` ("@name": abstract). */
static int unix_inodes(const char *path, unsigned long *ino, int n)
{
    FILE *f = fopen("/proc/net/unix", "r");
    if (f == NULL)
        return n;
    char line[512];
    if (fgets(line, sizeof line, f) == NULL) {
        fclose(f);
        return n;
    }
    while (n < MAX_INODES && fgets(line, sizeof line, f)) {
        unsigned long flags, type, state, inode;
        char name[256] = "";
        /* Num RefCount Protocol Flags Type St Inode Path */
        if (sscanf(line, "%*s %*s %*s %lx %lx %lx %lu %255[^\n]", &flags, &type, &state, &inode,
                   name) < 4)
            continue;
        if ((flags & 0x10000) && strcmp(name, path) == 0) /* __SO_ACCEPTCON */
            ino[n++] = inode;
    }
    fclose(f);
    return n;
}

int bench_find_server(const bench_cfg *c, long *pids, int cap)
{
    unsigned long ino[MAX_INODES];
    int ni = 0;
    if (c->ep.family == AF_UNIX) {
        char path[SK_UNIX_PATH_MAX + 2];
        snprintf(path, sizeof path, "%s%s", c->addr.abstract ? "@" : "", c->addr.path);
        ni = unix_inodes(path, ino, 0);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->ep.sa;
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->ep.sa;
        unsigned port = ntohs(c->ep.family == AF_INET ? s4->sin_port : s6->sin6_port);
        ni = tcp_inodes("/proc/net/tcp", port, ino, 0);
        ni = tcp_inodes("/proc/net/tcp6", port, ino, ni);
    }
    if (ni == 0)
        return 0;
    int np = 0;
    long self = (long)getpid();
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    struct dirent *de;
    while (np < cap && (de = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        long pid = strtol(de->d_name, NULL, 10);
        if (pid == self)
            continue;
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
        DIR *fds = opendir(dir);
        if (fds == NULL)
            continue; /* gone, or not ours to look at */
        struct dirent *fe;
        int found = 0;
        while (!found && (fe = readdir(fds)) != NULL) {
            char target[64];
            ssize_t k = readlinkat(dirfd(fds), fe->d_name, target, sizeof target - 1);
            if (k <= 0)
                continue;
            target[k] = '\0';
            unsigned long inode;
            if (sscanf(target, "socket:[%lu]", &inode) != 1)
                continue;
            for (int i = 0; i < ni; i++)
                found |= inode == ino[i];
        }
        closedir(fds);
        if (found)
            pids[np++] = pid;
    }
    closedir(proc);
    return np;
}

/* The summed VmRSS of the processes in kB, or -1 if one cannot be read. */
long bench_rss_kb(const long *pids, int n)
{
    long total = 0;
    for (int i = 0; i < n; i++) {
        char file[64], line[256];
        snprintf(file, sizeof file, "/proc/%ld/status", pids[i]);
        FILE *f = fopen(file, "r");
        if (f == NULL)
            return -1;
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                break;
        fclose(f);
        if (kb < 0)
            return -1;
        total += kb;
    }
    return total;
}

/* ------------------------------------------------------------------ output */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static const char *fmt_lat(uint64_t ns, char *buf, size_t cap)
{
    if (ns < 1000000)
        snprintf(buf, cap, "%.1f us", us(ns));
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.2f ms", (double)ns / 1e6);
    else
        snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
    return buf;
}

/* Server memory per connection held, if it is known. */
static int per_conn_bytes(const bench_server *srv, long *out)
{
    if (srv->rss_before_kb < 0 || srv->rss_after_kb < 0 || srv->held <= 0)
        return 0;
    *out = (srv->rss_after_kb - srv->rss_before_kb) * 1024 / srv->held;
    return 1;
}

static void report_json(const bench_cfg *c, const bench_stats *st, double secs,
                        const bench_server *srv)
{
    const bench_hist *h = &st->hist;
    FILE *f = stdout;
    fprintf(f, "{\"mode\":\"%s\",\"target\":", mode_names[c->mode]);
    json_string(f, c->target);
    fprintf(f, ",\"connections\":%d,\"workers\":%d,", c->connections, c->workers);
    if (c->mode == BM_HTTP)
        fprintf(f, "\"path\":");
    if (c->mode == BM_HTTP)
        json_string(f, c->path);
    else
        fprintf(f, "\"size\":%zu", c->size);
    fprintf(f, ",\"pipeline\":%d,\"duration_s\":%.3f,\"warmup_s\":%.3f,", c->pipeline, secs,
            (double)c->warmup_ns / 1e9);
    fprintf(f, "\"ops\":%llu,\"rate\":%.1f,\"throughput_bytes_s\":%.1f,\"connects\":%llu,",
            (unsigned long long)st->ops, secs > 0 ? (double)st->ops / secs : 0.0,
            secs > 0 ? (double)st->bytes / secs : 0.0, (unsigned long long)st->connects);
    fprintf(f,
            "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
            "\"max\":%.1f,\"mean\":%.1f},",
            us(bench_hist_percentile(h, 50)), us(bench_hist_percentile(h, 90)),
            us(bench_hist_percentile(h, 99)), us(bench_hist_percentile(h, 99.9)), us(h->max),
            bench_hist_mean(h) / 1000.0);
    fprintf(f, "\"errors\":{");
    for (int k = 0; k < BE_NKINDS; k++)
        fprintf(f, "%s\"%s\":%llu", k ? "," : "", bench_err_names[k],
                (unsigned long long)st->errors[k]);
    fputc('}', f);
    if (c->mode == BM_HTTP)
        fprintf(f,
                ",\"status\":{\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,"
                "\"5xx\":%llu,\"other\":%llu}",
                (unsigned long long)st->status[1], (unsigned long long)st->status[2],
                (unsigned long long)st->status[3], (unsigned long long)st->status[4],
                (unsigned long long)st->status[5], (unsigned long long)st->status[0]);
    if (c->mode == BM_IDLE) {
        fprintf(f, ",\"held\":%d,\"server_pids\":[", srv->held);
        for (int i = 0; i < srv->npids; i++)
            fprintf(f, "%s%ld", i ? "," : "", srv->pids[i]);
        fputc(']', f);
        if (srv->rss_before_kb >= 0 && srv->rss_after_kb >= 0)
            fprintf(f, ",\"rss_before_kb\":%ld,\"rss_after_kb\":%ld", srv->rss_before_kb,
                    srv->rss_after_kb);
        else
            fprintf(f, ",\"rss_before_kb\":null,\"rss_after_kb\":null");
        long b;
        if (per_conn_bytes(srv, &b))
            fprintf(f, ",\"rss_per_conn_bytes\":%ld", b);
        else
            fprintf(f, ",\"rss_per_conn_bytes\":null");
    }
    fprintf(f, "}\n");
}

static void report_table(const bench_cfg *c, const bench_stats *st, double secs,
                         const bench_server *srv)
{
    const bench_hist *h = &st->hist;
    FILE *f = stdout;
    char a[32], b[32], d[32], e[32], m[32];
    fprintf(f, "%-12s %s", "mode", mode_names[c->mode]);
    if (c->mode == BM_HTTP)
        fprintf(f, " (GET %s, pipeline %d)\n", c->path, c->pipeline);
    else if (c->mode == BM_ECHO)
        fprintf(f, " (%zu-byte messages, pipeline %d)\n", c->size, c->pipeline);
    else if (c->mode == BM_BULK)
        fprintf(f, " (%zu-byte chunks%s)\n", c->size, c->check_echo ? ", echo checked" : "");
    else
        fprintf(f, " (%zu-byte messages)\n", c->size);
    fprintf(f, "%-12s %s\n", "target", c->target);
    fprintf(f, "%-12s %d (%d worker%s), %llu connects\n", "connections", c->connections, c->workers,
            c->workers == 1 ? "" : "s", (unsigned long long)st->connects);
    if (c->mode == BM_IDLE)
        fprintf(f, "%-12s %.2f s held\n", "duration", secs);
    else
        fprintf(f, "%-12s %.2f s (after %.2f s warmup)\n", "duration", secs,
                (double)c->warmup_ns / 1e9);
    fprintf(f, "%-12s %llu\n", "ops", (unsigned long long)st->ops);
    fprintf(f, "%-12s %.1f ops/s\n", "rate", secs > 0 ? (double)st->ops / secs : 0.0);
    fprintf(f, "%-12s %.2f MB/s\n", "throughput", secs > 0 ? (double)st->bytes / secs / 1e6 : 0.0);
    if (h->count)
        fprintf(f, "%-12s p50 %s, p90 %s, p99 %s, p99.9 %s, max %s\n", "latency",
                fmt_lat(bench_hist_percentile(h, 50), a, sizeof a),
                fmt_lat(bench_hist_percentile(h, 90), b, sizeof b),
                fmt_lat(bench_hist_percentile(h, 99), d, sizeof d),
                fmt_lat(bench_hist_percentile(h, 99.9), e, sizeof e), fmt_lat(h->max, m, sizeof m));
    else
        fprintf(f, "%-12s -\n", "latency");
    fprintf(f, "%-12s", "errors");
    int any = 0;
    for (int k = 0; k < BE_NKINDS; k++)
        if (st->errors[k]) {
            fprintf(f, "%s %s %llu", any ? "," : "", bench_err_names[k],
                    (unsigned long long)st->errors[k]);
            any = 1;
        }
    fprintf(f, "%s\n", any ? "" : " none");
    if (c->mode == BM_HTTP) {
        fprintf(f, "%-12s", "status");
        static const char *const cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
        for (int k = 1, first = 1; k <= 6; k++)
            if (st->status[k % 6]) {
                fprintf(f, "%s %s %llu", first ? "" : ",", cls[k % 6],
                        (unsigned long long)st->status[k % 6]);
                first = 0;
            }
        fputc('\n', f);
    }
    if (c->mode == BM_IDLE) {
        long per;
        if (srv->rss_before_kb >= 0 && srv->rss_after_kb >= 0)
            fprintf(f, "%-12s %ld kB before, %ld kB with %d connections held (pid %ld%s)\n",
                    "server RSS", srv->rss_before_kb, srv->rss_after_kb, srv->held, srv->pids[0],
                    srv->npids > 1 ? " and others" : "");
        if (per_conn_bytes(srv, &per))
            fprintf(f, "%-12s %ld bytes per idle connection\n", "per conn", per);
    }
}

void bench_report(const bench_cfg *c, const bench_stats *st, double secs, const bench_server *srv)
{
    if (c->json)
        report_json(c, st, secs, srv);
    else
        report_table(c, st, secs, srv);
    fflush(stdout);
}
