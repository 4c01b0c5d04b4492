/*
 * modes.c - the mode table of `sockit bench`, and what a run derives from
 * its mode. --mode looks a name up here, --help lists the modes in this
 * order, and the option checks ask the table which modes take an option.
 */
#include <string.h>

#include "bench.h"

/* The table: a new mode is its file (mode_NAME.c) and its name here. */
#define BENCH_MODES(X) X(echo) X(conn) X(http) X(bulk) X(udp) X(idle)

#define BENCH_DECLARE(m) extern const bench_mode bench_mode_##m;
#define BENCH_ENTRY(m) &bench_mode_##m,
BENCH_MODES(BENCH_DECLARE)
const bench_mode *const bench_modes[] = {BENCH_MODES(BENCH_ENTRY) NULL};

const bench_mode *bench_mode_find(const char *name)
{
    for (size_t i = 0; bench_modes[i] != NULL; i++)
        if (strcmp(name, bench_modes[i]->name) == 0)
            return bench_modes[i];
    return NULL;
}

const char *bench_mode_list(unsigned flags, int and, char *buf, size_t cap)
{
    size_t n = 0, len = 0, total = 0;
    for (size_t i = 0; bench_modes[i] != NULL; i++)
        total += (bench_modes[i]->flags & flags) == flags;
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; bench_modes[i] != NULL && len < cap; i++) {
        if ((bench_modes[i]->flags & flags) != flags)
            continue;
        const char *sep = n == 0 ? "" : and&&n + 1 == total ? " and " : ", ";
        int k = snprintf(buf + len, cap - len, "%s%s", sep, bench_modes[i]->name);
        if (k < 0)
            break;
        len += (size_t)k;
        n++;
    }
    return buf;
}

int bench_prepare(bench_cfg *cfg, sk_err *err)
{
    cfg->msg_len = cfg->size;
    cfg->ring = 1;
    cfg->window = 1;
    cfg->one_way = 0;
    return cfg->mode->setup ? cfg->mode->setup(cfg, err) : 0;
}
