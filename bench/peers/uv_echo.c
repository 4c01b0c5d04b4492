/*
 * uv_echo.c - an echo server on libuv, written as libuv's documentation
 * teaches (uv_read_start, uv_write), with one reusable read buffer per
 * connection rather than a malloc per read, to be fair to it.
 *   uv_echo PORT      (127.0.0.1; 0 = any free port, printed on stdout)
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
    uv_tcp_t tcp;
    char buf[65536];
    int writing; /* a write of buf is in flight: do not read into it */
} conn_t;

typedef struct {
    uv_write_t req;
    conn_t *c;
} wreq_t;

static uv_loop_t *loop;

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    conn_t *c = h->data;
    *b = uv_buf_init(c->buf, sizeof c->buf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void write_cb(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->c;
    free(w);
    c->writing = 0;
    if (status < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (n == 0)
        return;
    /* Stop reading until the echo is written, so buf is not overwritten. */
    uv_read_stop(s);
    wreq_t *w = malloc(sizeof *w);
    w->c = c;
    c->writing = 1;
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    uv_write(&w->req, s, &out, 1, write_cb);
}

static void on_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    conn_t *c = malloc(sizeof *c);
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->writing = 0;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
        uv_tcp_nodelay(&c->tcp, 1);
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    } else {
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: uv_echo PORT\n");
        return 2;
    }
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &a);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 4096, on_conn) != 0) {
        fprintf(stderr, "uv_echo: bind failed\n");
        return 1;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(&server, (struct sockaddr *)&got, &len);
    printf("%d\n", ntohs(((struct sockaddr_in *)&got)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
