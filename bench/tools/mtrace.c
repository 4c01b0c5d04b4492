/*
 * mtrace.c - an LD_PRELOAD malloc tracer: which call sites hold the live heap.
 *
 * It wraps malloc, calloc, realloc, free and the aligned allocators (nginx's
 * pools use posix_memalign), records each live block with the call stack
 * that made it (a few frames from backtrace()), and, when asked, writes the
 * live bytes grouped by call stack, each frame as library+offset and the
 * nearest exported symbol (dladdr). Two dumps of one process (before and
 * after some load) diffed by bench/tools/mtrace_diff.py give the live bytes
 * that load left behind, per site; the same for two programs that link the
 * same libssl lines their OpenSSL sites up (library offsets are equal).
 *
 *   cc -O2 -shared -fPIC -o mtrace.so bench/tools/mtrace.c -ldl -lpthread
 *   MTRACE_OUT=/tmp/x LD_PRELOAD=./mtrace.so PROGRAM ...
 *   touch /tmp/x.go      # within ~0.2 s: /tmp/x.PID.N (N = 1, 2, ...)
 *
 * A poller thread (started again in a forked child, so nginx's worker has
 * one) writes a dump each time the trigger file's mtime changes. The tracer
 * keeps its own tables in mmap'd memory, so the traced heap is the program's
 * alone; it is a measuring tool, slow (a backtrace per allocation), never
 * linked into sockit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FRAMES 6 /* kept per site: enough to get out of CRYPTO_malloc & co */
#define NBUCKETS (1u << 22)
#define NSITES (1u << 16)
#define POOL_CHUNK (1u << 16) /* blocks per mmap of block records */

struct site {
    void *pc[FRAMES];
    size_t live, bytes, usable;
};

struct block {
    void *ptr;
    size_t size;
    uint32_t site;
    struct block *next;
};

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);

/* dlsym's own allocations, before the real functions are known */
static char boot[65536];
static size_t boot_used;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int busy; /* inside the tracer: allocations pass through untraced */
static int ready;

static struct block **buckets;
static struct block *free_blocks;
static struct site *sites;
static uint32_t nsites;
static const char *out_prefix;

static void *map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void *boot_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (boot_used + n > sizeof boot)
        return NULL;
    void *p = boot + boot_used;
    boot_used += n;
    return p;
}

static int is_boot(const void *p)
{
    return (const char *)p >= boot && (const char *)p < boot + sizeof boot;
}

static uint32_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x & (NBUCKETS - 1);
}

/* The site of this stack; NSITES when the table is full (counted nowhere). */
static uint32_t site_of(void **pc)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < FRAMES; i++)
        h = (h ^ (uint64_t)(uintptr_t)pc[i]) * 1099511628211ULL;
    for (uint32_t i = (uint32_t)h & (NSITES - 1), n = 0; n < NSITES;
         i = (i + 1) & (NSITES - 1), n++) {
        if (sites[i].pc[0] == NULL) {
            memcpy(sites[i].pc, pc, sizeof sites[i].pc);
            nsites++;
            return i;
        }
        if (memcmp(sites[i].pc, pc, sizeof sites[i].pc) == 0)
            return i;
    }
    return NSITES;
}

__attribute__((noinline)) static void record(void *p, size_t size)
{
    if (p == NULL || !ready || busy)
        return;
    busy = 1;
    void *bt[FRAMES + 2];
    int n = backtrace(bt, FRAMES + 2);
    void *pc[FRAMES] = {0};
    for (int i = 2; i < n && i - 2 < FRAMES; i++) /* skip record() and the wrapper */
        pc[i - 2] = bt[i];
    if (pc[0] == NULL)
        pc[0] = (void *)1;
    pthread_mutex_lock(&lock);
    struct block *b = free_blocks;
    if (b == NULL) {
        struct block *c = map(POOL_CHUNK * sizeof *c);
        if (c != NULL) {
            for (size_t i = 0; i < POOL_CHUNK; i++)
                c[i].next = i + 1 < POOL_CHUNK ? &c[i + 1] : NULL;
            b = c;
        }
    }
    if (b != NULL) {
        free_blocks = b->next;
        uint32_t s = site_of(pc);
        b->ptr = p;
        b->size = size;
        b->site = s;
        uint32_t h = hash_ptr(p);
        b->next = buckets[h];
        buckets[h] = b;
        if (s < NSITES) {
            sites[s].live++;
            sites[s].bytes += size;
            sites[s].usable += malloc_usable_size(p);
        }
    }
    pthread_mutex_unlock(&lock);
    busy = 0;
}

static void forget(void *p)
{
    if (p == NULL || !ready)
        return;
    pthread_mutex_lock(&lock);
    for (struct block **pp = &buckets[hash_ptr(p)]; *pp; pp = &(*pp)->next) {
        struct block *b = *pp;
        if (b->ptr == p) {
            *pp = b->next;
            if (b->site < NSITES) {
                sites[b->site].live--;
                sites[b->site].bytes -= b->size;
                sites[b->site].usable -= malloc_usable_size(p);
            }
            b->next = free_blocks;
            free_blocks = b;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* One line per site with live blocks: count, bytes, usable bytes, frames. */
static void dump(int seq)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%d.%d", out_prefix, (int)getpid(), seq);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    pthread_mutex_lock(&lock);
    struct mallinfo2 mi = mallinfo2();
    fprintf(f, "# pid %d arena %zu inuse %zu free %zu mmap %zu\n", (int)getpid(), mi.arena,
            mi.uordblks, mi.fordblks, mi.hblkhd);
    for (uint32_t i = 0; i < NSITES; i++) {
        struct site *s = &sites[i];
        if (s->pc[0] == NULL || s->live == 0)
            continue;
        fprintf(f, "%zu\t%zu\t%zu", s->live, s->bytes, s->usable);
        for (int k = 0; k < FRAMES && s->pc[k]; k++) {
            Dl_info di;
            if (dladdr(s->pc[k], &di) && di.dli_fname) {
                const char *lib = strrchr(di.dli_fname, '/');
                lib = lib ? lib + 1 : di.dli_fname;
                fprintf(f, "\t%s+%#lx %s+%#lx", lib,
                        (unsigned long)((char *)s->pc[k] - (char *)di.dli_fbase),
                        di.dli_sname ? di.dli_sname : "?",
                        di.dli_saddr ? (unsigned long)((char *)s->pc[k] - (char *)di.dli_saddr)
                                     : 0UL);
            } else {
                fprintf(f, "\t%p ?", s->pc[k]);
            }
        }
        fputc('\n', f);
    }
    pthread_mutex_unlock(&lock);
    fclose(f);
}

static void *poller(void *arg)
{
    (void)arg;
    busy = 1; /* its own fopen and dladdr are not the program's */
    char go[4096];
    snprintf(go, sizeof go, "%s.go", out_prefix);
    struct timespec last = {0, 0};
    struct stat st;
    if (stat(go, &st) == 0)
        last = st.st_mtim;
    int seq = 0;
    for (;;) {
        struct timespec d = {0, 200 * 1000 * 1000};
        nanosleep(&d, NULL);
        if (stat(go, &st) == 0 &&
            (st.st_mtim.tv_sec != last.tv_sec || st.st_mtim.tv_nsec != last.tv_nsec)) {
            last = st.st_mtim;
            dump(++seq);
        }
    }
    return NULL;
}

static void start_poller(void)
{
    if (out_prefix == NULL)
        return;
    pthread_t t;
    int b = busy;
    busy = 1;
    if (pthread_create(&t, NULL, poller, NULL) == 0)
        pthread_detach(t);
    busy = b;
}

static void before_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void after_fork_child(void)
{
    pthread_mutex_unlock(&lock);
    start_poller();
}

static int resolving;

/* The real functions; dlsym's own allocations meanwhile come from boot[]. */
static void resolve(void)
{
    resolving = 1;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    resolving = 0;
}

__attribute__((constructor)) static void init(void)
{
    busy = 1;
    if (real_free == NULL)
        resolve();
    buckets = map(NBUCKETS * sizeof *buckets);
    sites = map(NSITES * sizeof *sites);
    void *warm[4];
    backtrace(warm, 4); /* loads the unwinder now, not inside a traced call */
    out_prefix = getenv("MTRACE_OUT");
    if (out_prefix)
        out_prefix = strdup(out_prefix);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    ready = buckets != NULL && sites != NULL && real_malloc && real_free;
    busy = 0;
    start_poller();
}

void *malloc(size_t n)
{
    if (real_malloc == NULL && !resolving)
        resolve();
    if (real_malloc == NULL)
        return boot_alloc(n);
    void *p = real_malloc(n);
    record(p, n);
    return p;
}

void *calloc(size_t a, size_t b)
{
    if (real_calloc == NULL && !resolving)
        resolve();
    if (real_calloc == NULL)
        return boot_alloc(a * b); /* static: already zero */
    void *p = real_calloc(a, b);
    record(p, a * b);
    return p;
}

void *realloc(void *old, size_t n)
{
    if (real_realloc == NULL && !resolving)
        resolve();
    if (real_realloc == NULL || is_boot(old)) {
        void *p = real_realloc ? malloc(n) : boot_alloc(n);
        if (p && old)
            memcpy(p, old, n); /* a boot block is never shorter than what follows it */
        return p;
    }
    forget(old);
    void *p = real_realloc(old, n);
    if (p == NULL && n != 0) {
        record(old, malloc_usable_size(old)); /* still live, now under this site */
        return NULL;
    }
    record(p, n);
    return p;
}

void free(void *p)
{
    if (p == NULL || is_boot(p))
        return;
    forget(p);
    real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (real_free == NULL)
        resolve();
    int r = real_posix_memalign(out, align, n);
    if (r == 0)
        record(*out, n);
    return r;
}

void *memalign(size_t align, size_t n)
{
    if (real_free == NULL)
        resolve();
    void *p = real_memalign(align, n);
    record(p, n);
    return p;
}

void *aligned_alloc(size_t align, size_t n)
{
    if (real_free == NULL)
        resolve();
    void *p = real_aligned_alloc(align, n);
    record(p, n);
    return p;
}
