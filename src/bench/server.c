/*
 * server.c - the server under test of `sockit bench --mode idle`, found
 * through /proc: the listening socket's inode in /proc/net/{tcp,tcp6,unix},
 * then the processes whose descriptors name that socket; and their RSS.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MAX_INODES 16

/* Inodes of listening TCP sockets on `port` in one /proc/net/tcp* file. */
static int tcp_inodes(const char *file, unsigned port, unsigned long *ino, int n)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return n;
    char line[512];
    if (fgets(line, sizeof line, f) == NULL) { /* the heading */
        fclose(f);
        return n;
    }
    while (n < MAX_INODES && fgets(line, sizeof line, f)) {
        char local[128];
        unsigned st;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %127s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) != 3)
            continue;
        char *colon = strrchr(local, ':');
        if (colon && st == 0x0A && strtoul(colon + 1, NULL, 16) == port)
            ino[n++] = inode;
    }
    fclose(f);
    return n;
}

/* Inodes of listening Unix stream sockets bound to `path` ("@name": abstract). */
static int unix_inodes(const char *path, unsigned long *ino, int n)
{
    FILE *f = fopen("/proc/net/unix", "r");
    if (f == NULL)
        return n;
    char line[512];
    if (fgets(line, sizeof line, f) == NULL) {
        fclose(f);
        return n;
    }
    while (n < MAX_INODES && fgets(line, sizeof line, f)) {
        unsigned long flags, type, state, inode;
        char name[256] = "";
        /* Num RefCount Protocol Flags Type St Inode Path */
        if (sscanf(line, "%*s %*s %*s %lx %lx %lx %lu %255[^\n]", &flags, &type, &state, &inode,
                   name) < 4)
            continue;
        if ((flags & 0x10000) && strcmp(name, path) == 0) /* __SO_ACCEPTCON */
            ino[n++] = inode;
    }
    fclose(f);
    return n;
}

int bench_find_server(const bench_cfg *c, long *pids, int cap)
{
    unsigned long ino[MAX_INODES];
    int ni = 0;
    if (c->ep.family == AF_UNIX) {
        char path[SK_UNIX_PATH_MAX + 2];
        snprintf(path, sizeof path, "%s%s", c->addr.abstract ? "@" : "", c->addr.path);
        ni = unix_inodes(path, ino, 0);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->ep.sa;
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->ep.sa;
        unsigned port = ntohs(c->ep.family == AF_INET ? s4->sin_port : s6->sin6_port);
        ni = tcp_inodes("/proc/net/tcp", port, ino, 0);
        ni = tcp_inodes("/proc/net/tcp6", port, ino, ni);
    }
    if (ni == 0)
        return 0;
    int np = 0;
    long self = (long)getpid();
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    struct dirent *de;
    while (np < cap && (de = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        long pid = strtol(de->d_name, NULL, 10);
        if (pid == self)
            continue;
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
        DIR *fds = opendir(dir);
        if (fds == NULL)
            continue; /* gone, or not ours to look at */
        struct dirent *fe;
        int found = 0;
        while (!found && (fe = readdir(fds)) != NULL) {
            char target[64];
            ssize_t k = readlinkat(dirfd(fds), fe->d_name, target, sizeof target - 1);
            if (k <= 0)
                continue;
            target[k] = '\0';
            unsigned long inode;
            if (sscanf(target, "socket:[%lu]", &inode) != 1)
                continue;
            for (int i = 0; i < ni; i++)
                found |= inode == ino[i];
        }
        closedir(fds);
        if (found)
            pids[np++] = pid;
    }
    closedir(proc);
    return np;
}

/* The summed VmRSS of the processes in kB, or -1 if one cannot be read. */
long bench_rss_kb(const long *pids, int n)
{
    long total = 0;
    for (int i = 0; i < n; i++) {
        char file[64], line[256];
        snprintf(file, sizeof file, "/proc/%ld/status", pids[i]);
        FILE *f = fopen(file, "r");
        if (f == NULL)
            return -1;
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                break;
        fclose(f);
        if (kb < 0)
            return -1;
        total += kb;
    }
    return total;
}
