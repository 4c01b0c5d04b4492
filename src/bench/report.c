/*
 * report.c - the report of `sockit bench`: a table, or one JSON object with
 * --json. The fields every mode has are here; a mode adds its own through
 * its describe and report entries (http: status classes; idle: server RSS).
 */
#include <stdio.h>

#include "bench.h"

void bench_json_string(FILE *f, const char *s)
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

static void report_json(FILE *f, const bench_cfg *c, const bench_stats *st, double secs,
                        const bench_server *srv)
{
    const bench_hist *h = &st->hist;
    fprintf(f, "{\"mode\":\"%s\",\"target\":", c->mode->name);
    bench_json_string(f, c->target);
    fprintf(f, ",\"connections\":%d,\"workers\":%d,", c->connections, c->workers);
    if (c->mode->flags & BENCH_F_PATH) {
        fprintf(f, "\"path\":");
        bench_json_string(f, c->path);
    } else {
        fprintf(f, "\"size\":%zu", c->size);
    }
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
    if (c->tls)
        fprintf(f, ",\"tls_handshakes\":%llu,\"tls_resumed\":%llu,\"tls_handshakes_s\":%.1f",
                (unsigned long long)(st->tls_full + st->tls_resumed),
                (unsigned long long)st->tls_resumed,
                secs > 0 ? (double)(st->tls_full + st->tls_resumed) / secs : 0.0);
    if (c->mode->report)
        c->mode->report(c, st, srv, f, 1);
    fprintf(f, "}\n");
}

static void report_table(FILE *f, const bench_cfg *c, const bench_stats *st, double secs,
                         const bench_server *srv)
{
    const bench_hist *h = &st->hist;
    char a[32], b[32], d[32], e[32], m[32];
    fprintf(f, "%-12s %s", "mode", c->mode->name);
    if (c->mode->describe)
        c->mode->describe(c, f);
    else
        fprintf(f, " (%zu-byte messages)\n", c->size);
    fprintf(f, "%-12s %s\n", "target", c->target);
    fprintf(f, "%-12s %d (%d worker%s), %llu connects\n", "connections", c->connections, c->workers,
            c->workers == 1 ? "" : "s", (unsigned long long)st->connects);
    if (c->mode->flags & BENCH_F_HOLD)
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
    if (c->tls)
        fprintf(f, "%-12s %llu handshakes (%llu full, %llu resumed), %.1f handshakes/s\n", "tls",
                (unsigned long long)(st->tls_full + st->tls_resumed),
                (unsigned long long)st->tls_full, (unsigned long long)st->tls_resumed,
                secs > 0 ? (double)(st->tls_full + st->tls_resumed) / secs : 0.0);
    if (c->mode->report)
        c->mode->report(c, st, srv, f, 0);
}

void bench_report(FILE *f, const bench_cfg *c, const bench_stats *st, double secs,
                  const bench_server *srv)
{
    if (c->json)
        report_json(f, c, st, secs, srv);
    else
        report_table(f, c, st, secs, srv);
    fflush(f);
}
