/*
 * activate.c - listening sockets handed to us: systemd socket activation
 * (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES; sd_listen_fds(3) without
 * libsystemd) and a plain inherited descriptor (fd:N, inetd's `wait` mode).
 *
 * The environment is read once, on the first use, and the three variables are
 * unset at that moment so that no child (fork, prefork, exec) takes the
 * sockets for its own. A socket we adopt is never unlinked: its file, if any,
 * belongs to whoever created it (sk_listener.unlink_path stays "").
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"
#include "activate.h"

#define SD_LISTEN_FDS_START 3

static struct {
    int n;                              /* sockets passed to this process */
    char names[SK_SD_MAX][SK_HOST_MAX]; /* their LISTEN_FDNAMES ("unknown" when not named) */
    char why[160];                      /* why none were passed, for messages */
} sd;
static pthread_once_t sd_once = PTHREAD_ONCE_INIT;

static void sd_read(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    char *end;
    sd.n = 0;
    if (fds == NULL) {
        snprintf(sd.why, sizeof sd.why, "no sockets were passed (LISTEN_FDS is not set)");
    } else if (pid == NULL || (errno = 0, strtol(pid, &end, 10) != (long)getpid()) || errno ||
               *end != '\0') {
        /* Meant for another process (our parent, before it exec'ed us). */
        snprintf(sd.why, sizeof sd.why,
                 "no sockets were passed to this process (LISTEN_PID is %.20s, not %ld)",
                 pid ? pid : "not set", (long)getpid());
    } else {
        errno = 0;
        long n = strtol(fds, &end, 10);
        if (errno || *end != '\0' || n < 0 || n > SK_SD_MAX)
            snprintf(sd.why, sizeof sd.why, "LISTEN_FDS=\"%.20s\" is not a number (0-%d)", fds,
                     SK_SD_MAX);
        else
            sd.n = (int)n;
        if (sd.n == 0 && sd.why[0] == '\0')
            snprintf(sd.why, sizeof sd.why, "no sockets were passed (LISTEN_FDS=0)");
    }
    for (int i = 0; i < sd.n; i++) {
        const char *p = names;
        for (int k = 0; p && k < i; k++) {
            p = strchr(p, ':');
            if (p)
                p++;
        }
        size_t len = p ? strcspn(p, ":") : 0;
        if (len == 0 || len >= SK_HOST_MAX)
            snprintf(sd.names[i], sizeof sd.names[i], "unknown");
        else
            snprintf(sd.names[i], sizeof sd.names[i], "%.*s", (int)len, p);
        /* Not to be inherited by whatever we exec (sd_listen_fds does the same). */
        sk_set_cloexec(SD_LISTEN_FDS_START + i);
    }
    sk__env_scrub("LISTEN_PID");
    sk__env_scrub("LISTEN_FDS");
    sk__env_scrub("LISTEN_FDNAMES");
}

void sk__env_scrub(const char *name)
{
    /* unsetenv only drops the pointer: the text stays in the block the kernel
     * shows as /proc/PID/environ (ours and every forked worker's), where a
     * program looking for LISTEN_FDS would still find it. Blank it there too. */
    char *v = getenv(name);
    unsetenv(name);
    if (v == NULL)
        return;
    char *start = v - strlen(name) - 1;
    memset(start, 0, strlen(name) + 1 + strlen(v));
}

int sk__sd_fds(const char *name, int *fds, int cap, sk_err *err)
{
    pthread_once(&sd_once, sd_read);
    if (sd.n == 0)
        return sk_err_usage(err, "bad address \"sd:%s\": %s", name, sd.why);
    int n = 0;
    for (int i = 0; i < sd.n && n < cap; i++)
        if (*name == '\0' || strcmp(sd.names[i], name) == 0)
            fds[n++] = SD_LISTEN_FDS_START + i;
    if (n == 0) {
        char all[512] = "";
        for (int i = 0; i < sd.n; i++)
            snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "",
                     sd.names[i]);
        return sk_err_usage(err, "bad address \"sd:%s\": no socket of that name was passed (%s)",
                            name, all);
    }
    return n;
}

int sk__inherited_type(int fd, const char *word, sk_transport *t, sk_err *err)
{
    int type = 0, family = 0, listening = 0;
    socklen_t len = sizeof type;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        if (errno == ENOTSOCK || errno == EBADF)
            return sk_err_usage(err, "%s: descriptor %d is %s", word, fd,
                                errno == EBADF ? "not open" : "not a socket");
        return sk_errno(err, errno, "%s: getsockopt SO_TYPE", word);
    }
#ifdef SO_DOMAIN
    len = sizeof family;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0)
        return sk_errno(err, errno, "%s: getsockopt SO_DOMAIN", word);
#else
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return sk_errno(err, errno, "%s: getsockname", word);
    family = ss.ss_family;
#endif
    (void)ss;
    (void)sl;
    if (family != AF_INET && family != AF_INET6 && family != AF_UNIX)
        return sk_err_usage(err, "%s: descriptor %d is not an IPv4, IPv6 or Unix socket", word, fd);
    if (type == SOCK_STREAM) {
        len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
            return sk_errno(err, errno, "%s: getsockopt SO_ACCEPTCONN", word);
        if (!listening)
            return sk_err_usage(err,
                                "%s: descriptor %d is a stream socket that is not listening "
                                "(a connection: that is --inetd)",
                                word, fd);
        *t = family == AF_UNIX ? SK_UNIX : SK_TCP;
    } else if (type == SOCK_DGRAM) {
        *t = family == AF_UNIX ? SK_UNIXGRAM : SK_UDP;
    } else {
        return sk_err_usage(err, "%s: descriptor %d is neither a stream nor a datagram socket",
                            word, fd);
    }
    return 0;
}

int sk__listen_inherited(const sk_addr *a, sk_listener *out, size_t cap, size_t *n, sk_err *err)
{
    int fds[SK_SD_MAX];
    int nfd = 1;
    char word[SK_HOST_MAX + 8];
    *n = 0;
    if (a->inherit == SK_INHERIT_FD) {
        fds[0] = a->fd;
        snprintf(word, sizeof word, "fd:%d", a->fd);
    } else {
        nfd = sk__sd_fds(a->host, fds, SK_SD_MAX, err);
        if (nfd < 0)
            return -1;
        snprintf(word, sizeof word, "sd:%s", a->host);
    }
    if ((size_t)nfd > cap)
        return sk_err_usage(err, "%s: %d sockets, more than %zu", word, nfd, cap);
    for (int i = 0; i < nfd; i++) {
        sk_listener *l = &out[i];
        memset(l, 0, sizeof *l);
        l->fd = fds[i];
        if (sk__inherited_type(fds[i], word, &l->transport, err) < 0)
            return -1;
        if (sk_set_cloexec(fds[i]) < 0)
            return sk_errno(err, errno, "%s: fcntl", word);
        l->local.len = sizeof l->local.sa;
        if (getsockname(fds[i], (struct sockaddr *)&l->local.sa, &l->local.len) < 0)
            return sk_errno(err, errno, "%s: getsockname", word);
        l->local.family = l->local.sa.ss_family;
        l->local.socktype = sk_transport_is_stream(l->transport) ? SOCK_STREAM : SOCK_DGRAM;
        sk_sockaddr_format((struct sockaddr *)&l->local.sa, l->local.len, l->transport, l->name,
                           sizeof l->name);
        l->unlink_path[0] = '\0'; /* never ours to remove */
    }
    *n = (size_t)nfd;
    return 0;
}
