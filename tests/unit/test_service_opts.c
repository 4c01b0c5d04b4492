/*
 * test_service_opts.c - services own their options (sk_svc_option tables,
 * sk_service_set), through the public API only: the checks by kind, the
 * messages, a service defined here (as a library user would), and the http
 * service configured by name and serving a file to a real socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockit.h"

/* ---- a service of our own, with one option of every kind */

struct my_config {
    int flag;
    char text[64];
    long number;
    char seconds[16];
    char path[64];
};

static const sk_svc_option my_options[] = {
    {"flag", NULL, "a flag", SK_OPT_FLAG},      {"text", "TEXT", "some text", SK_OPT_STRING},
    {"number", "N", "a number", SK_OPT_NUMBER}, {"seconds", "SECS", "a duration", SK_OPT_SECONDS},
    {"path", "FILE", "a file", SK_OPT_PATH},    {NULL, NULL, NULL, 0},
};

static void my_defaults(void *config)
{
    struct my_config *c = config;
    c->number = 42;
}

static int my_configure(void *config, const char *option, const char *value, sk_err *err)
{
    struct my_config *c = config;
    if (strcmp(option, "flag") == 0)
        c->flag = 1;
    else if (strcmp(option, "text") == 0)
        snprintf(c->text, sizeof c->text, "%s", value);
    else if (strcmp(option, "number") == 0)
        c->number = strtol(value, NULL, 10);
    else if (strcmp(option, "seconds") == 0)
        snprintf(c->seconds, sizeof c->seconds, "%s", value);
    else if (strcmp(option, "path") == 0)
        snprintf(c->path, sizeof c->path, "%s", value);
    else
        return sk_err_usage(err, "--%s: unknown", option);
    return 0;
}

static const sk_service my_service = {
    .name = "mine",
    .summary = "a test service",
    .flags = SK_SVC_STREAM,
    .options = my_options,
    .config_size = sizeof(struct my_config),
    .config_defaults = my_defaults,
    .configure = my_configure,
};

static void test_own_service_kinds(void **state)
{
    (void)state;
    sk_err err;
    struct my_config *c = sk_service_config_new(&my_service, &err);
    assert_non_null(c);
    assert_int_equal(c->number, 42); /* the defaults */
    assert_int_equal(c->flag, 0);
    assert_int_equal(sk_service_set(&my_service, c, "flag", NULL, &err), 0);
    assert_int_equal(c->flag, 1);
    assert_int_equal(sk_service_set(&my_service, c, "text", "hello world", &err), 0);
    assert_string_equal(c->text, "hello world");
    assert_int_equal(sk_service_set(&my_service, c, "number", "1000", &err), 0);
    assert_int_equal(c->number, 1000);
    assert_int_equal(sk_service_set(&my_service, c, "seconds", "0.25", &err), 0);
    assert_string_equal(c->seconds, "0.25");
    assert_int_equal(sk_service_set(&my_service, c, "path", "-", &err), 0);
    assert_string_equal(c->path, "-");

    /* Wrong values never reach configure, and the message names the option. */
    static const struct {
        const char *name, *value, *want;
    } bad[] = {
        {"flag", "yes", "--flag takes no value"},
        {"text", NULL, "--text needs a value (TEXT)"},
        {"text", "", "--text needs a value (TEXT)"},
        {"number", "12x", "--number \"12x\": expected a number"},
        {"number", "-1", "--number \"-1\": expected a number"},
        {"number", "1.5", "--number \"1.5\": expected a number"},
        {"seconds", "1.2.3", "--seconds \"1.2.3\": expected seconds (e.g. 10 or 0.5)"},
        {"seconds", ".", "--seconds \".\": expected seconds (e.g. 10 or 0.5)"},
        {"path", NULL, "--path needs a value (FILE)"},
        {"nosuch", "x", "--nosuch is not an option of the mine service"},
        {"root", "/tmp", "--root is an option of the http service, not of mine"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(sk_service_set(&my_service, c, bad[i].name, bad[i].value, &err), -1);
        assert_string_equal(err.msg, bad[i].want);
        assert_int_equal(err.usage, 1);
    }
    assert_int_equal(c->number, 1000); /* untouched by the refusals */
    assert_non_null(sk_service_option(&my_service, "seconds"));
    assert_null(sk_service_option(&my_service, "second"));
    sk_service_config_free(&my_service, c);
}

/* ---- the built-in services */

static void test_builtin_tables(void **state)
{
    (void)state;
    const sk_service *http = sk_service_find("http");
    assert_non_null(http);
    static const char *const want[] = {"root", "index", "listing", "auth", "access-log"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const sk_svc_option *o = sk_service_option(http, want[i]);
        assert_non_null(o);
        assert_non_null(o->help);
        assert_int_equal(o->arg == NULL, o->kind == SK_OPT_FLAG);
    }
    /* Every table is well formed: names unique within a service, a setting
     * struct and a configure for any service with options. */
    for (const sk_service *const *s = sk_services(); *s; s++) {
        for (const sk_svc_option *o = (*s)->options; o && o->name; o++) {
            assert_true((*s)->config_size > 0 && (*s)->configure != NULL);
            assert_ptr_equal(sk_service_option(*s, o->name), o);
        }
    }
    sk_err err;
    const sk_service *echo = sk_service_find("echo");
    void *cfg = sk_service_config_new(echo, &err); /* no settings: still an object */
    assert_non_null(cfg);
    assert_int_equal(sk_service_set(echo, cfg, "listing", NULL, &err), -1);
    assert_string_equal(err.msg, "--listing is an option of the http service, not of echo");
    sk_service_config_free(echo, cfg);
}

/* ---- a program configuring the http service by name and serving a file */

static void *run_server(void *arg)
{
    sk_err err;
    return (void *)(intptr_t)sk_server_run(arg, &err);
}

static void test_http_through_api(void **state)
{
    (void)state;
    char root[] = "/tmp/sockit-svcopt-XXXXXX";
    assert_non_null(mkdtemp(root));
    char file[sizeof root + 16];
    snprintf(file, sizeof file, "%s/hello.txt", root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("hello from the api\n", f);
    fclose(f);

    sk_err err;
    const sk_service *http = sk_service_find("http");
    void *cfg = sk_service_config_new(http, &err);
    assert_non_null(cfg);
    assert_int_equal(sk_service_set(http, cfg, "root", root, &err), 0);
    assert_int_equal(sk_service_set(http, cfg, "listing", NULL, &err), 0);
    sk_server_opts o = {.service = http, .model = sk_model_find("epoll"), .service_config = cfg};
    if (o.model == NULL)
        o.model = sk_model_find("poll");
    sk_server *s = sk_server_new(&o, &err);
    assert_non_null(s);
    sk_addr a;
    assert_int_equal(sk_addr_parse(&a, "tcp://127.0.0.1:0", &err), 0);
    sk_listener l;
    size_t n = 0;
    assert_int_equal(sk_listen(&a, NULL, &l, 1, &n, &err), 0);
    assert_int_equal(n, 1);
    char line[512];
    assert_true(http->describe(cfg, &l, line, sizeof line) > 0);
    assert_non_null(strstr(line, "serving "));
    assert_non_null(strstr(line, " at http://127.0.0.1:"));
    assert_int_equal(sk_server_add_listener(s, &l, &err), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_server, s), 0);

    char word[SK_NAME_MAX];
    sk_sockaddr_format((const struct sockaddr *)&l.local.sa, l.local.len, SK_TCP, word,
                       sizeof word);
    sk_addr peer;
    assert_int_equal(sk_addr_parse(&peer, word, &err), 0);
    int fd = sk_connect(&peer, 5000, NULL, &err);
    assert_true(fd >= 0);
    static const char req[] = "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(sk_write_all(fd, req, sizeof req - 1, sk_now_ms() + 5000),
                     (ssize_t)(sizeof req - 1));
    char resp[4096];
    size_t got = 0;
    int64_t deadline = sk_now_ms() + 5000;
    for (;;) {
        ssize_t r = sk_read_deadline(fd, resp + got, sizeof resp - 1 - got, deadline);
        assert_true(r >= 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    close(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(resp, "\r\n\r\nhello from the api\n"));

    sk_server_stop(s);
    void *rc;
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_int_equal((int)(intptr_t)rc, 0);
    sk_server_free(s);
    sk_service_config_free(http, cfg);
    unlink(file);
    rmdir(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_service_kinds),
        cmocka_unit_test(test_builtin_tables),
        cmocka_unit_test(test_http_through_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
