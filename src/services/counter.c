/*
 * counter.c - "Connection N!" with a running count, then close (the HSE
 * lecture's tcp_qq_srver). The count lives in shared memory, so it keeps
 * counting when each connection runs in its own forked process.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>

#include "services.h"

static int counter_init(sk_server *s, void **state, sk_err *err)
{
    (void)s;
    void *p =
        mmap(NULL, sizeof(atomic_ulong), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return sk_errno(err, errno, "counter: mmap");
    atomic_init((atomic_ulong *)p, 0);
    *state = p;
    return 0;
}

static void counter_fini(void *state)
{
    if (state)
        munmap(state, sizeof(atomic_ulong));
}

static size_t next_line(void *state, char *buf, size_t cap)
{
    unsigned long n = atomic_fetch_add((atomic_ulong *)state, 1) + 1;
    int len = snprintf(buf, cap, "Connection %lu!\n", n);
    return len < 0 ? 0 : (size_t)len;
}

static void counter_open(sk_conn *c)
{
    char line[48];
    size_t n = next_line(sk_conn_state(c), line, sizeof line);
    sk_conn_send(c, line, n);
    sk_conn_close(c);
}

static int counter_datagram(sk_dgram *d)
{
    d->reply_len = next_line(d->state, (char *)d->reply, d->cap);
    return 1;
}

const sk_service sk__svc_counter = {
    .name = "counter",
    .summary = "replies \"Connection N!\" with a running count, then closes",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .init = counter_init,
    .fini = counter_fini,
    .on_open = counter_open,
    .on_datagram = counter_datagram,
};
