/*
 * xfer_walk.c - what `send` sends, in order: each PATH, and with -r each
 * tree in pre-order (a directory before what it holds, so the receiver can
 * create it first), names sorted so that two runs send the same order (a
 * resumed transfer finds its files where it left them).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xfer_proto.h"
#include "xfer_walk.h"

static sk__xw_entry *add(sk__xw_list *l, const char *path, const char *name)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 64;
        sk__xw_entry *v = realloc(l->v, c * sizeof *v);
        if (v == NULL)
            return NULL;
        l->v = v;
        l->cap = c;
    }
    sk__xw_entry *e = &l->v[l->n];
    memset(e, 0, sizeof *e);
    e->path = strdup(path);
    e->name = strdup(name);
    if (e->path == NULL || e->name == NULL) {
        free(e->path);
        free(e->name);
        return NULL;
    }
    l->n++;
    return e;
}

static void refuse(sk__xw_entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(sk__xw_entry *e, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(e->refused);
    e->refused = strdup(buf);
    if (e->refused == NULL)
        e->refused = strdup("out of memory");
}

int sk__xw_inside(const char *link_rel, const char *target)
{
    if (target[0] == '/' || target[0] == '\0')
        return 0;
    int depth = 0;
    for (const char *s = link_rel; *s; s++)
        depth += *s == '/';
    const char *p = target;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n + (e != NULL);
    }
    return 1;
}

static int classify(sk__xw_entry *e, const char *rel)
{
    if (S_ISREG(e->st.st_mode)) {
        e->type = SK_XF_FILE;
    } else if (S_ISDIR(e->st.st_mode)) {
        e->type = SK_XF_DIR;
    } else if (S_ISLNK(e->st.st_mode)) {
        e->type = SK_XF_SYMLINK;
        char t[PATH_MAX];
        ssize_t n = readlink(e->path, t, sizeof t - 1);
        if (n < 0) {
            refuse(e, "readlink: %s", strerror(errno));
            return 0;
        }
        t[n] = '\0';
        if (!sk__xw_inside(rel, t)) {
            refuse(e, "symlink to \"%s\" points outside the tree: not sent", t);
            return 0;
        }
        if ((e->target = strdup(t)) == NULL)
            return -1;
    } else {
        refuse(e, "not a regular file, directory or symlink: not sent");
    }
    return 0;
}

static int walk(sk__xw_list *l, const char *path, const char *name, const char *rel, int depth)
{
    struct dirent **ents = NULL;
    int n = scandir(path, &ents, NULL, alphasort);
    if (n < 0) {
        refuse(&l->v[l->n - 1], "cannot list: %s", strerror(errno));
        return 0;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *d = ents[i]->d_name;
        if (rc < 0 || strcmp(d, ".") == 0 || strcmp(d, "..") == 0)
            continue;
        char *p = NULL, *nm = NULL, *r = NULL;
        if (asprintf(&p, "%s/%s", path, d) < 0 || asprintf(&nm, "%s/%s", name, d) < 0 ||
            asprintf(&r, "%s%s%s", rel, rel[0] ? "/" : "", d) < 0) {
            free(p);
            free(nm);
            rc = -1;
            continue;
        }
        sk__xw_entry *e = add(l, p, nm);
        if (e == NULL) {
            rc = -1;
        } else if (ents[i]->d_type == DT_REG) {
            e->type = SK_XF_FILE; /* stat'ed when its turn comes (sk__xw_stat) */
            e->stat_later = 1;
        } else if (lstat(p, &e->st) < 0) {
            refuse(e, "%s", strerror(errno));
        } else if (classify(e, r) < 0) {
            rc = -1;
        } else if (e->type == SK_XF_DIR && !e->refused) {
            if (depth > 4000)
                refuse(e, "too deep");
            else
                rc = walk(l, p, nm, r, depth + 1);
        }
        free(p);
        free(nm);
        free(r);
    }
    for (int i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
    return rc;
}

/* The name a PATH lands under: its last component ("a/b/" -> "b"; "." -> the
 * directory's own name). */
static char *last_name(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *s = path;
    if ((n == 1 && path[0] == '.') || (n == 2 && path[0] == '.' && path[1] == '.') ||
        (n >= 3 && strcmp(path + n - 3, "/..") == 0) ||
        (n >= 2 && strcmp(path + n - 2, "/.") == 0)) {
        if (realpath(path, buf) == NULL)
            return strdup(".");
        s = buf;
        n = strlen(buf);
    }
    size_t b = n;
    while (b > 0 && s[b - 1] != '/')
        b--;
    return strndup(s + b, n - b);
}

int sk__xw_build(sk__xw_list *l, const char *const *paths, size_t n, int recursive,
                 const char *name, sk_err *err)
{
    if (name && n != 1)
        return sk_err_usage(err, "--name names one PATH, not %zu", n);
    for (size_t i = 0; i < n; i++) {
        const char *path = paths[i];
        if (strcmp(path, "-") == 0) {
            if (name == NULL)
                return sk_err_usage(err, "sending standard input (-) needs --name NAME");
            sk__xw_entry *e = add(l, "-", name);
            if (e == NULL)
                return sk_errno(err, ENOMEM, "send");
            e->type = SK_XF_FILE;
            e->st.st_mode = S_IFIFO | 0644;
            e->st.st_mtime = time(NULL);
            continue;
        }
        char *nm = name ? strdup(name) : last_name(path);
        if (nm == NULL)
            return sk_errno(err, ENOMEM, "send");
        sk__xw_entry *e = add(l, path, nm);
        free(nm);
        if (e == NULL)
            return sk_errno(err, ENOMEM, "send");
        if (e->name[0] == '\0') {
            refuse(e, "has no name of its own to send it under (use --name)");
            continue;
        }
        /* A PATH named on the command line is followed if it is a symlink. */
        if (stat(path, &e->st) < 0) {
            refuse(e, "%s", strerror(errno));
            continue;
        }
        if (classify(e, "") < 0)
            return sk_errno(err, ENOMEM, "send");
        if (e->type == SK_XF_DIR && !recursive)
            refuse(e, "is a directory (send -r sends trees)");
        else if (e->type == SK_XF_DIR && walk(l, path, e->name, "", 0) < 0)
            return sk_errno(err, ENOMEM, "send");
    }
    return 0;
}

void sk__xw_stat(sk__xw_entry *e)
{
    if (!e->stat_later)
        return;
    e->stat_later = 0;
    if (lstat(e->path, &e->st) < 0)
        refuse(e, "%s", strerror(errno));
    else if (!S_ISREG(e->st.st_mode))
        refuse(e, "changed while being sent: no longer a regular file");
}

void sk__xw_free(sk__xw_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].name);
        free(l->v[i].target);
        free(l->v[i].refused);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}
