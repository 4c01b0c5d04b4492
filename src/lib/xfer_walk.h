/* xfer_walk.h - the sender's list of what to send (files, trees, stdin). Internal. */
#ifndef SK_XFER_WALK_H
#define SK_XFER_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "sockit.h"

typedef struct sk__xw_entry {
    char *path;   /* local path; "-" for stdin */
    char *name;   /* the name sent */
    char *target; /* symlink target */
    int type;     /* SK_XF_FILE, SK_XF_DIR, SK_XF_SYMLINK */
    struct stat st;
    char *refused;  /* refused by the sender: why (malloc'd); not sent */
    int stat_later; /* a regular file by its listing: st is filled by sk__xw_stat */
} sk__xw_entry;

typedef struct sk__xw_list {
    sk__xw_entry *v;
    size_t n, cap;
} sk__xw_list;

/*
 * Add the paths as the sender's options ask: a file (named by its last
 * component, or `name`), a tree with recursive (pre-order, names sorted),
 * "-" (stdin, needs name). Entries that cannot be sent are kept with
 * `refused` set. Returns 0, or -1 with err (out of memory; usage errors:
 * "-" without --name, --name with several paths).
 */
int sk__xw_build(sk__xw_list *l, const char *const *paths, size_t n, int recursive,
                 const char *name, sk_err *err);
void sk__xw_free(sk__xw_list *l);

/* Fill in e->st where the walk left it for later: a tree's regular files
 * (known by their listing's d_type) are stat'ed when their turn comes, so
 * that the stats overlap the transfer instead of all coming before its first
 * byte. A file gone, or no longer a regular file, gets `refused`. */
void sk__xw_stat(sk__xw_entry *e);

/* 1 if a symlink called link_rel (relative to its tree's root) pointing at
 * target stays inside the tree, judged by the text. */
int sk__xw_inside(const char *link_rel, const char *target);

/* sk_xfer_send over any transport (TLS included): same contract. */
struct sk_tp;
int sk__xfer_send_tp(struct sk_tp *tp, const char *const *paths, size_t n, const sk_xfer_opts *o,
                     sk_xfer_stats *st, sk_err *err);

#endif
