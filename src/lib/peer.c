/*
 * peer.c - who is at the other end of a Unix stream socket: the kernel's
 * credentials for it, and the one wording sockit uses for such a peer.
 */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "sockit.h"

char *sk_unix_peer_format(int pid, unsigned uid, char *buf, size_t cap)
{
    if (pid > 0)
        snprintf(buf, cap, "unix peer pid %d uid %u", pid, uid);
    else
        snprintf(buf, cap, "unix peer uid %u", uid);
    return buf;
}

int sk_unix_peer_cred(int fd, int *pid, unsigned *uid)
{
#if defined(SO_PEERCRED) && defined(__linux__)
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return -1;
    if (len != sizeof cr) {
        errno = EINVAL;
        return -1;
    }
    *pid = (int)cr.pid;
    *uid = (unsigned)cr.uid;
    return 0;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    uid_t u;
    gid_t g;
    if (getpeereid(fd, &u, &g) < 0)
        return -1;
    *pid = 0; /* no pid there */
    *uid = (unsigned)u;
    return 0;
#else
    (void)fd;
    (void)pid;
    (void)uid;
    errno = ENOSYS;
    return -1;
#endif
}
