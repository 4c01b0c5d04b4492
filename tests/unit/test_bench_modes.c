/*
 * test_bench_modes.c - the mode table of `sockit bench` (src/bench/modes.c
 * and the mode_*.c files): every mode is complete enough for the engine and
 * the report to use, names are found, option lists read right, and what a
 * run derives from its mode (bench_prepare) is what the writer and reader
 * need. Linked with the bench objects ($(BUILD)/libsockit-bench.a).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void test_every_mode_is_complete(void **state)
{
    (void)state;
    size_t n = 0;
    for (size_t i = 0; bench_modes[i] != NULL; i++, n++) {
        const bench_mode *m = bench_modes[i];
        assert_non_null(m->name);
        assert_non_null(m->help);
        assert_true(m->size >= BENCH_HDR && m->size <= BENCH_MSG_MAX);
        assert_true(m->timeout_ns > 0);
        /* What the engine calls. */
        assert_non_null(m->open);
        assert_non_null(m->io);
        assert_non_null(m->expire);
        if (m->flags & BENCH_F_HOLD)
            assert_non_null(m->verify);
        /* Stream modes write through fill and read through check or consume. */
        if (!(m->flags & BENCH_F_DGRAM)) {
            assert_non_null(m->fill);
            assert_true(m->check != NULL || m->consume != NULL);
        }
        /* Names are unique: lookup finds this very entry. */
        assert_ptr_equal(bench_mode_find(m->name), m);
    }
    /* The six of the manual are there (a new mode adds to them). */
    const char *const known[] = {"echo", "conn", "http", "bulk", "udp", "idle"};
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        assert_non_null(bench_mode_find(known[k]));
    assert_true(n >= 6);
    assert_null(bench_mode_find("nosuch"));
    assert_null(bench_mode_find(""));
    assert_null(bench_mode_find("Echo"));
    assert_ptr_equal(bench_modes[0], bench_mode_find("echo")); /* the default comes first */
}

static void test_mode_lists(void **state)
{
    (void)state;
    char buf[128];
    /* All modes, in the table's order (a new one comes last). */
    const char *all = "echo, conn, http, bulk, udp, idle";
    assert_int_equal(strncmp(bench_mode_list(0, 0, buf, sizeof buf), all, strlen(all)), 0);
    assert_string_equal(bench_mode_list(BENCH_F_PIPELINE, 1, buf, sizeof buf), "echo and http");
    assert_string_equal(bench_mode_list(BENCH_F_PATH, 1, buf, sizeof buf), "http");
    assert_string_equal(bench_mode_list(BENCH_F_CHECK_ECHO, 1, buf, sizeof buf), "bulk");
    assert_string_equal(bench_mode_list(BENCH_F_SERVER_PID, 1, buf, sizeof buf), "idle");
    assert_string_equal(bench_mode_list(BENCH_F_DGRAM, 1, buf, sizeof buf), "udp");
    assert_string_equal(bench_mode_list(0xffffffffu, 1, buf, sizeof buf), ""); /* none */
    /* Three or more: commas, then "and" before the last. */
    bench_mode_list(0, 1, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "echo, conn, http, ", 18), 0);
    char *last = strstr(buf, " and ");
    assert_non_null(last);
    assert_null(strchr(last, ','));
    /* A small buffer is cut, never overrun, and stays a string. */
    char small[8];
    memset(small, 'x', sizeof small);
    bench_mode_list(0, 0, small, sizeof small);
    assert_true(memchr(small, '\0', sizeof small) != NULL);
    assert_int_equal(strncmp(small, "echo, c", 7), 0);
}

static bench_cfg *cfg_for(const char *mode)
{
    bench_cfg *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->mode = bench_mode_find(mode);
    assert_non_null(c->mode);
    c->pipeline = 1;
    c->size = c->mode->size;
    c->path = "/";
    return c;
}

static void free_cfg(bench_cfg *c)
{
    free(c->request);
    free(c);
}

static void test_prepare(void **state)
{
    (void)state;
    sk_err err;
    bench_cfg *c = cfg_for("echo");
    c->pipeline = 7;
    c->size = 100;
    assert_int_equal(bench_prepare(c, &err), 0);
    assert_int_equal(c->ring, 7);
    assert_int_equal(c->window, 7);
    assert_int_equal(c->msg_len, 100);
    assert_false(c->one_way);
    free_cfg(c);

    c = cfg_for("conn");
    assert_int_equal(bench_prepare(c, &err), 0);
    assert_int_equal(c->ring, 1);
    assert_int_equal(c->window, 1);
    assert_true(c->mode->flags & BENCH_F_FROM_CONNECT);
    free_cfg(c);

    /* bulk: nothing read back without --check-echo; with it, 2 MiB in
     * flight at most, as 2 to 64 chunks. */
    c = cfg_for("bulk");
    assert_int_equal(c->size, 128 * 1024);
    assert_int_equal(bench_prepare(c, &err), 0);
    assert_true(c->one_way);
    assert_int_equal(c->window, UINT64_MAX);
    c->check_echo = 1;
    assert_int_equal(bench_prepare(c, &err), 0);
    assert_false(c->one_way);
    assert_int_equal(c->ring, 16);
    assert_int_equal(c->window, 16);
    c->size = 1;
    assert_int_equal(bench_prepare(c, &err), 0);
    assert_int_equal(c->ring, 64);
    c->size = BENCH_MSG_MAX;
    assert_int_equal(bench_prepare(c, &err), 0);
    assert_int_equal(c->ring, 2);
    free_cfg(c);

    /* http: the message is the request, built for the address. */
    c = cfg_for("http");
    c->pipeline = 3;
    c->path = "/a/b?c";
    assert_int_equal(sk_addr_parse(&c->addr, "127.0.0.1:8080", &err), 0);
    assert_int_equal(bench_prepare(c, &err), 0);
    const char *want = "GET /a/b?c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    assert_int_equal(c->request_len, strlen(want));
    assert_memory_equal(c->request, want, strlen(want));
    assert_int_equal(c->msg_len, c->request_len);
    assert_int_equal(c->ring, 3);
    free_cfg(c);
}

static void test_validate(void **state)
{
    (void)state;
    sk_err err;
    bench_cfg *c = cfg_for("udp");
    assert_non_null(c->mode->validate);
    assert_int_equal(c->mode->validate(c, &err), 0);
    c->size = BENCH_HDR - 1;
    memset(&err, 0, sizeof err);
    assert_int_equal(c->mode->validate(c, &err), -1);
    assert_true(err.usage);
    assert_non_null(strstr(err.msg, "udp datagrams"));
    c->size = BENCH_DGRAM_MAX + 1;
    assert_int_equal(c->mode->validate(c, &err), -1);
    c->size = BENCH_DGRAM_MAX;
    assert_int_equal(c->mode->validate(c, &err), 0);
    free_cfg(c);

    c = cfg_for("idle"); /* the hold is the run: no warmup */
    c->warmup_ns = 1000000000LL;
    assert_int_equal(c->mode->validate(c, &err), 0);
    assert_int_equal(c->warmup_ns, 0);
    free_cfg(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_mode_is_complete),
        cmocka_unit_test(test_mode_lists),
        cmocka_unit_test(test_prepare),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
