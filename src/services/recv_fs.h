/*
 * recv_fs.h - the receiving side's file system work for the recv service:
 * names checked and opened beneath --dir, .part files and their journals,
 * the final rename, stale part removal. Internal to src/services.
 */
#ifndef SK_RECV_FS_H
#define SK_RECV_FS_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/xfer_proto.h"

#define SK_RX_JOURNAL_HEAD 36

/* The part of a name after its last '/'. */
const char *sk__rx_base(const char *name);

/*
 * Check a relative name from the network: UTF-8 without control characters,
 * no empty, "." or ".." components, not absolute, components of at most 255
 * bytes, at most max_depth components, not one of our own .part/.journal
 * names. Returns 0, or an SK_XF_E_* code with why (a short phrase) set.
 */
int sk__rx_check_name(const uint8_t *name, size_t len, unsigned max_depth, const char **why);

/*
 * Open the directory that holds name (its last component excluded),
 * beneath root_fd, one component at a time, never following a symlink;
 * missing directories are created (mode 0755) when create is set.
 * Returns the directory's fd, or -1 with errno (ELOOP/ENOTDIR: a symlink or
 * a file on the way).
 */
int sk__rx_open_parent(int root_fd, const char *name, int create);

/* A symlink target that stays inside the receiving directory, judged by its
 * text alone (link_name's depth; no absolute target). 1 if it stays inside. */
int sk__rx_target_inside(const char *link_name, const uint8_t *target, size_t len);

/* A file's journal: what the .part holds, and from what source. */
typedef struct sk__rx_journal {
    uint8_t hash;
    uint32_t chunk;
    uint64_t size;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
} sk__rx_journal;

/* Write the journal's head at offset 0 and cut the file there. 0 or -1 (errno). */
int sk__rx_journal_start(int jfd, const sk__rx_journal *j);
/*
 * Read a journal: if its head matches want, *hashes gets a malloc'd array of
 * its chunk hashes and *n their number (0 and NULL otherwise, also for a
 * journal that is not ours or torn). Returns 0, or -1 on a read error.
 */
int sk__rx_journal_load(int jfd, const sk__rx_journal *want, uint8_t **hashes, uint64_t *n);

/* Remove .NAME.part files and their journals older than ttl_s seconds,
 * beneath root_fd (down to max_depth), skipping those a transfer holds
 * locked. Returns how many part files were removed. */
unsigned sk__rx_sweep(int root_fd, int64_t ttl_s, unsigned max_depth);
/* 1 if the directory fd is on a file system that lives in memory only
 * (tmpfs, ramfs: fsync has nothing to do there), else 0. */
int sk__rx_volatile_fs(int fd);
/* The same in a thread of its own (one at a time per process), so a large
 * tree does not stall the connections; nothing happens if one is running. */
void sk__rx_sweep_background(int root_fd, int64_t ttl_s, unsigned max_depth);

#endif
