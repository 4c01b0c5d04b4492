/*
 * recv.h - internal to the recv service (recv.c: frames and data;
 * recv_answer.c: answers and a file's bookkeeping; recv_config.c: options and start-up;
 * recv_entry.c: what each announced entry becomes; recv_fs.c: the file system).
 */
#ifndef SK_RECV_H
#define SK_RECV_H

#include <stdatomic.h>
#include <stdint.h>
#include <zstd.h>

#include "recv_fs.h"
#include "services.h"

#define RX_QUEUE 256 /* files announced and not yet ended, per connection */
#define SWEEP_EVERY_MS 60000
/* A chunk at least this big starts the splice path (recv_splice.c); smaller
 * data is copied, many small files in one read. */
#define SK_RX_SPLICE_MIN (64 * 1024)

typedef struct recv_cfg {
    const char *dir;
    uint64_t max_size;  /* 0: no limit */
    uint64_t max_files; /* per transfer */
    unsigned max_depth;
    int64_t part_ttl_s;
} recv_cfg;

typedef struct recv_state {
    recv_cfg cfg;
    int root_fd;
    int tmpfile_ok; /* O_TMPFILE files can be linked through /proc/self/fd */
    unsigned umask; /* the process's, read once at init */
    _Atomic int64_t last_sweep_ms;
} recv_state;

typedef struct rx_file {
    char *name;
    int pfd, part, jfd; /* parent directory, .part, journal (locked; -1 if none) */
    int pfd_shared;     /* pfd is the connection's kept directory (pdir_fd): not ours to close */
    int tmp;            /* part is an unnamed O_TMPFILE (a file of one chunk) */
    int mode_set;       /* it was created with its final mode: no fchmod */
    int volatile_fs;    /* its directory is on tmpfs/ramfs: nothing to fsync */
    uint64_t size;      /* SK_XF_SIZE_UNKNOWN for a stream */
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint16_t mode;
    uint64_t have;  /* chunks offered for resume */
    uint8_t *offer; /* their hashes */
    int started, refused, short_seen;
    uint64_t next;  /* next chunk index */
    uint64_t bytes; /* bytes of the file in the part (verified) */
    uint64_t fresh; /* bytes received now (not resumed) */
} rx_file;

typedef struct rx_dir {
    char *name;
    uint16_t mode;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
} rx_dir;

typedef struct rx_conn {
    int phase; /* 0: HELLO expected, 1: transfer, 2: done */
    uint8_t hash, flags;
    size_t hl;
    uint32_t chunk;
    sk_buf in;
    rx_file *q;
    unsigned qh, qn;
    /* the chunk being received */
    uint64_t data_left, cur_off, cur_index;
    uint32_t cur_raw;
    int discard;
    uint8_t cur_hash[SK_XF_HASH_MAX];
    sk__xf_hash ch, whole;
    uint8_t *scratch;
    ZSTD_DCtx *dctx;
    rx_dir *dirs;
    size_t ndirs, capdirs;
    uint64_t entries, stored, stored_bytes, fresh_bytes, refused;
    int64_t t0;
    /* Answers wait in out until the input at hand has been handled: then
     * the directory of the files stored meanwhile is fsynced once, and only
     * then do their RESULTs leave (many small files: one fsync, one send). */
    sk_buf out;
    int closing;
    char *pdir_name;     /* the directory of the last file (its name up to '/') */
    int pdir_fd;         /* open beneath --dir; valid when pdir_name is set */
    int pdir_dirty;      /* a file was stored in it since its last fsync */
    int pdir_volatile;   /* it is on tmpfs or ramfs: an fsync has nothing to do */
    int sync_failed;     /* an fsync of it failed: the queued answers are not true */
    uint64_t free_bytes; /* free space at free_at_ms, less what was accepted since */
    int64_t free_at_ms;
    /* recv_splice.c: chunk data spliced socket -> pipe -> part */
    int splice;      /* 0: not tried yet, 1: the read hook is set, -1: not available */
    int pipe[2];     /* valid when splice is 1 */
    int copy[2];     /* a second pipe the data is tee'd into for the hash, or -1 */
    size_t pipe_cap; /* its capacity */
    uint8_t *rbuf;   /* the hook's reads that are not spliced; the hash's read-back */
    int read_err;    /* an error seen after bytes were taken: the next call's */
    int read_eof;    /* the same for the end of stream */
} rx_conn;

extern const sk_svc_option sk__recv_options[];
void sk__recv_defaults(void *config);
int sk__recv_configure(void *config, const char *option, const char *value, sk_err *err);
int sk__recv_init(sk_server *srv, void **state, sk_err *err);
void sk__recv_fini(void *state);
size_t sk__recv_describe(const void *config, const sk_listener *l, char *buf, size_t cap);

/* A line for the operator at -v, headed by the peer. */
void sk__rx_log(sk_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The whole connection is refused (version, malformed frame): REFUSE, log, close. */
void sk__rx_fail(sk_conn *c, uint16_t code, const char *msg);
void sk__rx_send_start(sk_conn *c, uint16_t code, uint64_t k, const uint8_t *hashes,
                       const char *msg);
void sk__rx_send_result(sk_conn *c, uint16_t code, uint64_t size, const uint8_t *hash,
                        const char *msg);
/* ".BASE.part" and ".BASE.part.journal" of f's name. */
void sk__rx_part_names(const rx_file *f, char *part, char *journal, size_t cap);
/* Close f's descriptors (releasing its lock), removing its part when asked. */
void sk__rx_file_close(rx_file *f, int remove_part);
/* Refuse the file being received: answer now, drop the rest of its data. */
void sk__rx_refuse_current(sk_conn *c, uint16_t code, int remove_part, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Send the queued answers, after an fsync of the kept directory if a file
 * was stored in it; close the connection if it was to end. */
void sk__rx_flush(sk_conn *c);
/* Queue a frame for the peer (sent when the input at hand is handled). */
void sk__rx_out(sk_conn *c, const uint8_t *f, size_t n);
/* The directory that will hold name: the connection's kept descriptor
 * (x->pdir_fd; the files of a tree arrive directory by directory), not the
 * caller's to close (an rx_file holding it sets pfd_shared). When another
 * directory is kept, the newest queued file still in the old one is given
 * its descriptor to close: files end in order, so the others are done with
 * it by then. -1 with errno. */
int sk__rx_parent(sk_conn *c, const char *name);
/* fsync the kept directory if a file was stored in it. 0 or -1 (errno). */
int sk__rx_sync_dir(rx_conn *x);
/* ENOSPC, EFBIG, EDQUOT */
int sk__rx_disk_full(int e);
/* An ENTRY frame's payload: check, create or prepare, answer START. */
void sk__rx_entry(sk_conn *c, const uint8_t *p, size_t len);
/* Bytes from the peer (on_data, and the read hook's reads that are not spliced). */
void sk__rx_data(sk_conn *c, const uint8_t *data, size_t len);
/* Writing the current chunk into its part failed with errno e: refuse the file. */
void sk__rx_write_failed(sk_conn *c, int e);
/* The current chunk's data is all in: check its hash, journal it. */
void sk__rx_chunk_done(sk_conn *c);
/* From now on, splice the data of raw chunks into their parts where the
 * connection and the system allow (Linux, not TLS, a model that calls read
 * hooks); else nothing changes. Once per connection. */
void sk__rx_splice_start(sk_conn *c, rx_conn *x);
/* Release what sk__rx_splice_start made (on_close). */
void sk__rx_splice_end(rx_conn *x);

#endif
