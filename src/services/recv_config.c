/*
 * recv_config.c - the recv service's options (--dir, --max-size, --max-files,
 * --max-depth, --part-ttl), its start (the directory opened once, stale
 * partial files removed) and the line that says what a listener receives.
 */
#define _GNU_SOURCE /* fstatvfs, O_NOFOLLOW */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "recv.h"

const sk_svc_option sk__recv_options[] = {
    {"dir", "DIR", "directory that receives the files (required)", SK_OPT_PATH},
    {"max-size", "SIZE", "largest file accepted (suffix K, M, G: binary; default none)",
     SK_OPT_STRING},
    {"max-files", "N", "entries per transfer (default 100000)", SK_OPT_NUMBER},
    {"max-depth", "N", "path components of a name (default 64)", SK_OPT_NUMBER},
    {"part-ttl", "SECONDS", "remove partial files older than this (default 86400)", SK_OPT_SECONDS},
    {NULL, NULL, NULL, 0},
};

void sk__recv_defaults(void *config)
{
    recv_cfg *c = config;
    c->max_files = 100000;
    c->max_depth = 64;
    c->part_ttl_s = 86400;
}

/* "10", "10K", "1.5G"? No: whole numbers with an optional binary suffix. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    else if (*end == 'T' || *end == 't')
        shift = 40, end++;
    if (*end == 'i' && shift)
        end++;
    if (*end == 'B' && shift)
        end++;
    if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int sk__recv_configure(void *config, const char *option, const char *value, sk_err *err)
{
    recv_cfg *c = config;
    if (strcmp(option, "dir") == 0) {
        c->dir = value;
    } else if (strcmp(option, "max-size") == 0) {
        if (parse_size(value, &c->max_size) < 0)
            return sk_err_usage(err, "--max-size \"%s\": expected a size such as 512K, 10M, 2G",
                                value);
    } else if (strcmp(option, "max-files") == 0) {
        c->max_files = strtoull(value, NULL, 10);
    } else if (strcmp(option, "max-depth") == 0) {
        unsigned long v = strtoul(value, NULL, 10);
        if (v == 0 || v > 4096)
            return sk_err_usage(err, "--max-depth \"%s\": expected 1 to 4096", value);
        c->max_depth = (unsigned)v;
    } else if (strcmp(option, "part-ttl") == 0) {
        c->part_ttl_s = (int64_t)strtod(value, NULL);
    } else {
        return sk_err_usage(err, "--%s is not an option of the recv service", option);
    }
    return 0;
}

int sk__recv_init(sk_server *srv, void **state, sk_err *err)
{
    const recv_cfg *c = sk_server_options(srv)->service_config;
    if (c == NULL || c->dir == NULL)
        return sk_err_usage(err, "recv needs --dir DIR (the directory that receives the files)");
    recv_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return sk_errno(err, ENOMEM, "recv");
    st->cfg = *c;
    st->root_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    st->tmpfile_ok = access("/proc/self/fd", X_OK) == 0;
    mode_t m = umask(022); /* read it (before any thread of ours can race) */
    umask(m);
    st->umask = (unsigned)m;
    if (st->root_fd < 0) {
        int e = errno;
        free(st);
        return sk_errno(err, e, "--dir %s", c->dir);
    }
    sk__rx_sweep(st->root_fd, st->cfg.part_ttl_s, st->cfg.max_depth);
    atomic_store(&st->last_sweep_ms, sk_now_ms());
    *state = st;
    return 0;
}

void sk__recv_fini(void *state)
{
    recv_state *st = state;
    if (st) {
        close(st->root_fd);
        free(st);
    }
}

size_t sk__recv_describe(const void *config, const sk_listener *l, char *buf, size_t cap)
{
    const recv_cfg *c = config;
    int n =
        snprintf(buf, cap, "receiving files into %s at %s", c && c->dir ? c->dir : "?", l->name);
    if (n < 0 || cap == 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
