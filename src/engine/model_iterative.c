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
        int i = sk__wait_work(s, -1, dbuf);
        if (i == SK_WAIT_STOP)
            break;
        if (i < 0)
            continue;
        const sk_listener *l = &s->ls[i];
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = sk__accept(s, l, (struct sockaddr *)&peer, &plen, 1);
        if (fd < 0)
            continue;
        sk__serve_stream_blocking(s, fd, (struct sockaddr *)&peer, plen, l->transport);
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
