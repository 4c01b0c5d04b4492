/* test_timer.c - unit tests for src/lib/timer.c: the deadline heap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "timer.h"

static void test_empty(void **state)
{
    (void)state;
    sk__timers q = {0};
    assert_null(sk__timers_peek(&q));
    assert_null(sk__timers_pop_expired(&q, 1000));
    assert_int_equal(sk__timers_timeout(&q, 0), -1);
    sk__timers_free(&q);
}

static void test_order_and_timeout(void **state)
{
    (void)state;
    sk__timers q = {0};
    sk__timer a = {0}, b = {0}, c = {0};
    assert_int_equal(sk__timer_set(&q, &a, 300), 0);
    assert_int_equal(sk__timer_set(&q, &b, 100), 0);
    assert_int_equal(sk__timer_set(&q, &c, 200), 0);
    assert_true(sk__timer_armed(&a) && sk__timer_armed(&b) && sk__timer_armed(&c));
    assert_ptr_equal(sk__timers_peek(&q), &b);
    assert_int_equal(sk__timers_timeout(&q, 40), 60);
    assert_int_equal(sk__timers_timeout(&q, 100), 0);
    assert_int_equal(sk__timers_timeout(&q, 500), 0);
    assert_null(sk__timers_pop_expired(&q, 99));
    assert_ptr_equal(sk__timers_pop_expired(&q, 250), &b);
    assert_false(sk__timer_armed(&b));
    assert_ptr_equal(sk__timers_pop_expired(&q, 250), &c);
    assert_null(sk__timers_pop_expired(&q, 250));
    assert_ptr_equal(sk__timers_pop_expired(&q, 300), &a);
    assert_int_equal(q.n, 0);
    sk__timers_free(&q);
}

static void test_rearm_and_cancel(void **state)
{
    (void)state;
    sk__timers q = {0};
    sk__timer a = {0}, b = {0};
    sk__timer_set(&q, &a, 100);
    sk__timer_set(&q, &b, 200);
    sk__timer_set(&q, &a, 300); /* moves later: b is first now */
    assert_int_equal(q.n, 2);
    assert_ptr_equal(sk__timers_peek(&q), &b);
    sk__timer_set(&q, &a, 50); /* and earlier again */
    assert_ptr_equal(sk__timers_peek(&q), &a);
    sk__timer_cancel(&q, &a);
    sk__timer_cancel(&q, &a); /* twice: no effect */
    assert_false(sk__timer_armed(&a));
    assert_ptr_equal(sk__timers_peek(&q), &b);
    sk__timer_cancel(&q, &b);
    assert_int_equal(q.n, 0);
    sk__timers_free(&q);
}

/* Random sets, re-arms and cancels against a plain array: what pops, and in
 * which order, must match a sorted scan of the reference. */
#define N 500
static void test_random_model(void **state)
{
    (void)state;
    srand(12345);
    sk__timers q = {0};
    static sk__timer t[N];
    static int64_t ref[N]; /* -1 = disarmed */
    for (int i = 0; i < N; i++)
        ref[i] = -1;
    for (int step = 0; step < 20000; step++) {
        int i = rand() % N;
        int op = rand() % 4;
        if (op < 3) {
            int64_t at = rand() % 10000;
            assert_int_equal(sk__timer_set(&q, &t[i], at), 0);
            ref[i] = at;
        } else {
            sk__timer_cancel(&q, &t[i]);
            ref[i] = -1;
        }
        if (step % 1000 == 999) {
            int64_t now = rand() % 10000;
            sk__timer *x;
            int64_t last = -1;
            while ((x = sk__timers_pop_expired(&q, now)) != NULL) {
                int k = (int)(x - t);
                assert_true(ref[k] >= 0 && ref[k] <= now);
                assert_true(ref[k] >= last); /* in deadline order */
                last = ref[k];
                ref[k] = -1;
            }
            for (int k = 0; k < N; k++) {
                assert_true(ref[k] < 0 || ref[k] > now);
                assert_int_equal(sk__timer_armed(&t[k]), ref[k] >= 0);
            }
        }
    }
    sk__timers_free(&q);
    for (int k = 0; k < N; k++)
        assert_false(sk__timer_armed(&t[k]));
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_order_and_timeout),
        cmocka_unit_test(test_rearm_and_cancel),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
