/*
 * notify.c - the service manager's notification protocol (sd_notify(3)),
 * without libsystemd: one datagram of "KEY=VALUE\n" lines to the Unix socket
 * named by NOTIFY_SOCKET (a path, or @NAME for the abstract namespace).
 *
 * The variable is read once and then unset, so that children (fork workers,
 * exec'ed programs) do not speak for us; the address is kept for later calls.
 * Sending is not printing: the library may do it (the engine does not; the
 * CLI decides the moments).
 */
#define _GNU_SOURCE /* SOCK_CLOEXEC */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sockit.h"
#include "activate.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len; /* 0: no NOTIFY_SOCKET */
static char notify_bad[200]; /* why NOTIFY_SOCKET cannot be used, "" if it can */
static pthread_once_t notify_once = PTHREAD_ONCE_INIT;

static void notify_read(void)
{
    const char *v = getenv("NOTIFY_SOCKET");
    if (v == NULL || *v == '\0')
        return;
    size_t len = strlen(v);
    if ((v[0] != '/' && v[0] != '@') || len >= sizeof notify_addr.sun_path) {
        snprintf(notify_bad, sizeof notify_bad,
                 "NOTIFY_SOCKET=\"%.100s\": not an absolute path or @abstract name of at most "
                 "107 bytes",
                 v);
    } else {
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, v, len);
        if (v[0] == '@')
            notify_addr.sun_path[0] = '\0';
        notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    sk__env_scrub("NOTIFY_SOCKET"); /* v was copied above */
}

int sk_notify_enabled(void)
{
    pthread_once(&notify_once, notify_read);
    return notify_len > 0 || notify_bad[0] != '\0';
}

int sk_notify(const char *state, sk_err *err)
{
    pthread_once(&notify_once, notify_read);
    if (notify_bad[0])
        return sk_err_usage(err, "%s", notify_bad);
    if (notify_len == 0)
        return 0;
    char msg[1024];
    size_t n = strlen(state);
    if (n >= sizeof msg - 64)
        return sk_errf(err, EMSGSIZE, "sd_notify: state too long (%zu bytes)", n);
    memcpy(msg, state, n + 1);
    /* RELOADING=1 needs the moment it began (Type=notify-reload). */
    if (strncmp(state, "RELOADING=1", 11) == 0 && strstr(state, "MONOTONIC_USEC=") == NULL) {
        struct timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
            n += (size_t)snprintf(msg + n, sizeof msg - n, "\nMONOTONIC_USEC=%llu",
                                  (unsigned long long)ts.tv_sec * 1000000ull +
                                      (unsigned long long)ts.tv_nsec / 1000ull);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sk_errno(err, errno, "sd_notify: socket");
    ssize_t r;
    do
        r = sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len);
    while (r < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (r < 0)
        return sk_errno(err, e, "sd_notify %s%s", notify_addr.sun_path[0] ? "" : "@",
                        notify_addr.sun_path + (notify_addr.sun_path[0] ? 0 : 1));
    return 1;
}
