/*
 * recv_answer.c - the recv service's answers to the sender (queued, then
 * sent after the fsync that makes them true) and the bookkeeping of a file
 * being received (its part's names, closing it, refusing it midway).
 */
#define _GNU_SOURCE /* fstatvfs, O_NOFOLLOW */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include "recv.h"

void sk__rx_log(sk_conn *c, const char *fmt, ...)
{
    sk_server *s = sk_conn_server(c);
    if (!sk_server_options(s)->verbose)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sk_server_log(s, SK_LOG_INFO, "%s: %s", sk_conn_peer_name(c), line);
}

/* The whole connection is refused (version, malformed frame): say why, close. */
void sk__rx_fail(sk_conn *c, uint16_t code, const char *msg)
{
    rx_conn *x = sk_conn_data(c);
    uint8_t f[512];
    size_t n = sk__xf_put_refuse(f, sizeof f, SK_XF_VERSION, code, msg);
    if (n)
        sk__rx_out(c, f, n);
    sk_server_log(sk_conn_server(c), SK_LOG_ERROR, "recv %s: %s", sk_conn_peer_name(c), msg);
    x->phase = 2;
    x->closing = 1;
}

void sk__rx_out(sk_conn *c, const uint8_t *f, size_t n)
{
    rx_conn *x = sk_conn_data(c);
    if (sk_buf_append(&x->out, f, n) < 0)
        sk_conn_send(c, f, n); /* (out of memory: at least in order so far) */
}

int sk__rx_sync_dir(rx_conn *x)
{
    if (!x->pdir_dirty)
        return 0;
    x->pdir_dirty = 0;
    if (x->pdir_volatile || fsync(x->pdir_fd) == 0)
        return 0;
    x->sync_failed = 1;
    return -1;
}

/* Send what was queued, after the fsync that makes it true. */
void sk__rx_flush(sk_conn *c)
{
    rx_conn *x = sk_conn_data(c);
    if (x->pdir_name)
        sk__rx_sync_dir(x);
    if (x->sync_failed) {
        x->sync_failed = 0;
        /* The stored files' RESULTs would claim what is not durable. */
        sk_buf_consume(&x->out, x->out.len);
        sk__rx_fail(c, SK_XF_E_IO, "fsync of a directory failed");
    }
    if (x->out.len) {
        sk_conn_send(c, sk_buf_head(&x->out), x->out.len);
        sk_buf_consume(&x->out, x->out.len);
    }
    if (x->closing) {
        x->closing = 0;
        sk_conn_close(c);
    }
}

void sk__rx_send_start(sk_conn *c, uint16_t code, uint64_t k, const uint8_t *hashes,
                       const char *msg)
{
    rx_conn *x = sk_conn_data(c);
    size_t cap = SK_XF_HEAD + 10 + k * x->hl + (msg ? strlen(msg) : 0);
    uint8_t small[512], *f = cap <= sizeof small ? small : malloc(cap);
    if (f == NULL) {
        sk__rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    size_t n = sk__xf_put_start(f, cap, code, k, hashes, x->hl, msg);
    sk__rx_out(c, f, n);
    if (f != small)
        free(f);
}

void sk__rx_send_result(sk_conn *c, uint16_t code, uint64_t size, const uint8_t *hash,
                        const char *msg)
{
    rx_conn *x = sk_conn_data(c);
    uint8_t f[600];
    size_t n = sk__xf_put_result(f, sizeof f, code, size, hash, x->hl, msg);
    sk__rx_out(c, f, n);
}

void sk__rx_part_names(const rx_file *f, char *part, char *journal, size_t cap)
{
    const char *b = sk__rx_base(f->name);
    snprintf(part, cap, ".%s.part", b);
    snprintf(journal, cap, ".%s.part.journal", b);
}

void sk__rx_file_close(rx_file *f, int remove_part)
{
    if (remove_part && f->pfd >= 0 && !f->tmp) {
        char p[300], j[300];
        sk__rx_part_names(f, p, j, sizeof p);
        unlinkat(f->pfd, p, 0);
        unlinkat(f->pfd, j, 0);
    }
    if (f->part >= 0)
        close(f->part);
    if (f->jfd >= 0)
        close(f->jfd); /* also releases the lock */
    if (f->pfd >= 0 && !f->pfd_shared)
        close(f->pfd);
    free(f->name);
    free(f->offer);
    memset(f, 0, sizeof *f);
    f->pfd = f->part = f->jfd = -1;
}

/* Refuse the file being received: answer now, drop the rest of its data. */
void sk__rx_refuse_current(sk_conn *c, uint16_t code, int remove_part, const char *fmt, ...)
{
    rx_conn *x = sk_conn_data(c);
    rx_file *f = &x->q[x->qh];
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sk__rx_send_result(c, code, 0, NULL, msg);
    sk__rx_log(c, "refused %s: %s", f->name, msg);
    x->refused++;
    f->refused = 1;
    x->discard = 1;
    if (remove_part && !f->tmp) {
        char p[300], j[300];
        sk__rx_part_names(f, p, j, sizeof p);
        unlinkat(f->pfd, p, 0);
        unlinkat(f->pfd, j, 0);
    }
}
