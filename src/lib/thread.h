/*
 * thread.h - the library's helper threads (the output writer, the resolver
 * cache's lookups, exec's reaper).
 */
#ifndef SOCKIT_THREAD_H
#define SOCKIT_THREAD_H

#include <pthread.h>
#include <stddef.h>

/* Start fn(arg) in a new thread that takes no signals: they belong to the
 * program's own flow of control (SIGTERM stops the server), never to a
 * helper blocked in write() or getaddrinfo(). detached: nobody joins it (t
 * may then be NULL). stack: its size in bytes, 0 for the default. Returns 0,
 * or an errno value when the thread could not start. */
int sk__thread_start(pthread_t *t, void *(*fn)(void *), void *arg, int detached, size_t stack);

#endif
