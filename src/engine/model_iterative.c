/*
 * model_iterative.c - one connection at a time, in one process: the
 * tutorial's first server. Accept, serve to the end, accept the next. Simple
 * and cheap, and a single slow client makes everyone else wait.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

static int iterative_run(sk_server *s, sk_err *err)
{
    sk_dgram_batch *dbuf = sk__dgram_batch_new();
    if (dbuf == NULL)
        return sk_errno(err, ENOMEM, "buffer");
    s->own_listeners = 1;
    while (!sk__stopping(s)) {
        sk_accepted a;
        int i = sk__accept_next(s, -1, dbuf, 1, &a);
        if (i == SK_WAIT_STOP)
            break;
        if (i < 0)
            continue;
        sk__serve_stream_blocking(s, a.fd, (struct sockaddr *)&a.peer, a.plen, a.transport);
        if (sk__count_served(s))
            break;
    }
    sk__stop_listening(s);
    sk__dgram_batch_free(dbuf);
    return 0;
}

const sk_model sk__model_iterative = {
    .name = "iterative",
    .summary = "one connection at a time in one process (the tutorial's first server)",
    .caps = SK_MODEL_SHARED,
    .run = iterative_run,
};
