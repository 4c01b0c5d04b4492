/*
 * thread.c - the library's helper threads, started with every signal blocked
 * (thread.h).
 */
#include <signal.h>

#include "thread.h"

int sk__thread_start(pthread_t *t, void *(*fn)(void *), void *arg, int detached, size_t stack)
{
    pthread_t unused;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits this mask */
    pthread_attr_t a;
    int rc = pthread_attr_init(&a);
    if (rc == 0) {
        if (detached)
            pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (stack > 0)
            rc = pthread_attr_setstacksize(&a, stack);
        if (rc == 0)
            rc = pthread_create(t ? t : &unused, &a, fn, arg);
        pthread_attr_destroy(&a);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
