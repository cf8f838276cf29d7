/*
 * The chunk store (see chunk_store.h for the on-disk format and the life of a
 * chunk): data directories, the writer that streams a chunk into a temporary
 * file and seals it, the reader that verifies block CRCs before any byte is
 * handed out, and the in-memory index of sealed chunks.
 *
 * Index invariants (checked by assert_entry_state):
 *   1. An id is in the index only from the moment its rename is about to
 *      happen (state SEALING) and is visible to readers only once the rename
 *      and the fsync that makes it durable are done (state SEALED).
 *   2. At most one entry per id, whatever the data directory: a second
 *      writer of a sealed or sealing id gets TS_EEXIST.
 *   3. chunk_bytes is the sum of the lengths of SEALED entries.
 *   4. No entry points into a data directory that is out of service: taking
 *      a dir out drops its SEALED entries, and a SEALING entry there fails
 *      its commit.
 *
 * Damage (see "Damage" in chunk_store.h): a corrupt replica leaves the index
 * and moves to DATA/quarantine/ under the lock, like a delete, so a new
 * copy of the same id arriving at the same moment is never the one moved.
 * A data dir suspected after an I/O error is probed; only a failed probe
 * takes it out of service, so one bad sector does not cost a whole disk.
 *
 *   in service ──I/O error──► probe ──fails──► out of service (for good,
 *        ▲                      │                until the next start)
 *        └────────succeeds──────┘
 */
#include "chunkserver/chunk_store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <uthash.h>

#include "common/codec.h"
#include "common/log.h"
#include "common/util.h"

#define FOOTER_MAGIC 0x46435354u   /* "TSCF" little-endian */
#define FOOTER_END_MAGIC 0x45435354u /* "TSCE" */
#define FOOTER_VERSION 1u
#define FOOTER_FIXED (4 + 4 + 8 + TS_SHA256_LEN + 4 + 4) /* body minus crc array */
#define TRAILER_LEN 8
/* Verification reads this many blocks per pread. */
#define VERIFY_BATCH_BLOCKS 16

enum entry_state { ENTRY_SEALING = 1, ENTRY_SEALED = 2 };

struct chunk_entry {
    ts_chunk_id id;             /* hash key */
    uint64_t length;
    uint16_t dir;               /* index into s->dirs */
    uint8_t state;              /* enum entry_state */
    UT_hash_handle hh;
};

/* A growable list of chunk ids (the change reports the heartbeat takes). */
struct id_list {
    ts_chunk_id *v;
    size_t n, cap;
};

struct ts_chunk_store {
    char **dirs;
    size_t ndirs;
    pthread_mutex_t mu;         /* guards everything below */
    struct chunk_entry *index;  /* uthash head */
    uint64_t sealed_count;
    uint64_t chunk_bytes;
    uint64_t checksum_errors;
    uint64_t quarantined;
    struct id_list added;       /* sealed since the last take_added */
    struct id_list removed;     /* deleted or lost with a dir since take_removed */
    struct id_list corrupt;     /* quarantined since take_corrupt */
    uint8_t *dir_failed;        /* per dir: 1 once out of service */
    uint8_t *dir_one_sync;      /* per dir: seal with one fsync (ext4, XFS; chunk_store.h) */
    int direct_io;              /* write large chunks with O_DIRECT (default 1) */
    int *dir_fault;             /* per dir: injected errno for every I/O, 0 = none */
    /* fault injection: armed when fault_errno != 0 */
    uint64_t fault_after;
    int fault_errno;
};

struct ts_chunk_writer {
    ts_chunk_store *s;
    ts_chunk_id id;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    size_t dir;
    char tmp_path[PATH_MAX];
    int fd;                     /* -1 once closed */
    uint64_t expected;
    uint64_t written;
    uint64_t flushed;           /* bytes whose write-back was started */
    ts_sha256 *sha;
    uint32_t *crcs;             /* one per block, filled as blocks complete */
    uint32_t nblocks;
    uint32_t cur_crc;           /* CRC of the partial block being filled */
    uint32_t cur_fill;          /* bytes in that block */
    uint32_t full_blocks;       /* blocks whose CRC is final */
    ts_error failed;            /* code != 0 after a write error */
    uint64_t fault_after;
    int fault_errno;
    int has_expected_sha;       /* commit refuses other content */
    uint8_t expected_sha[TS_SHA256_LEN];
    int has_given;              /* the writer's digest: commit checks given.crc32c ... */
    ts_chunk_digest given;      /* ... against the block CRCs and records given.sha256 */
    char *dbuf;                 /* O_DIRECT staging, DIRECT_BUF bytes; NULL = buffered */
    size_t dfill;               /* bytes staged in dbuf */
};

struct ts_chunk_reader {
    ts_chunk_store *s;
    ts_chunk_info info;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    int fd;                     /* -1 after take_fd */
    int fd_taken;
    uint32_t *crcs;
    char *scratch;              /* VERIFY_BATCH_BLOCKS blocks, allocated on first verify */
};

/* ---- helpers ---- */

static uint32_t blocks_for(uint64_t length)
{
    return (uint32_t)((length + TS_BLOCK_SIZE - 1) / TS_BLOCK_SIZE);
}

static uint64_t footer_total(uint32_t nblocks)
{
    return FOOTER_FIXED + 4ull * nblocks + TRAILER_LEN;
}

static void assert_entry_state(const ts_chunk_store *s, const struct chunk_entry *e)
{
    (void)s;
    assert(e->state == ENTRY_SEALING || e->state == ENTRY_SEALED);
    assert(e->dir < s->ndirs);
    assert(e->state != ENTRY_SEALED || !s->dir_failed[e->dir]);
}

/* Caller holds s->mu. */
static void id_list_push(struct id_list *l, const ts_chunk_id *id)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = ts_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = *id;
}

/* Hands the list over (caller frees *ids) and leaves it empty. */
static void id_list_take(ts_chunk_store *s, struct id_list *l, ts_chunk_id **ids, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    *ids = l->v;
    *n = l->n;
    memset(l, 0, sizeof *l);
    pthread_mutex_unlock(&s->mu);
}

/* Removes a SEALED entry from the index and the totals (caller holds s->mu
 * and frees e). */
static void index_remove_sealed(ts_chunk_store *s, struct chunk_entry *e)
{
    assert(e->state == ENTRY_SEALED);
    HASH_DEL(s->index, e);
    s->sealed_count--;
    s->chunk_bytes -= e->length;
}

/* The injected errno for data dir `dir`, 0 when none. */
static int dir_fault(ts_chunk_store *s, size_t dir)
{
    pthread_mutex_lock(&s->mu);
    int e = s->dir_fault[dir];
    pthread_mutex_unlock(&s->mu);
    return e;
}

static int is_disk_full(int errnum)
{
    return errnum == ENOSPC || errnum == EDQUOT;
}

/* 1 when the file system of path commits a rename with the fsync of the
 * renamed inode (chunk_store.h "Life of a chunk"). */
/* Bytes between two write-back starts of a chunk being written. */
#define WRITEBACK_STEP (8u << 20)
/* Direct I/O: a chunk of at least DIRECT_MIN bytes is written with O_DIRECT
 * through an aligned buffer of DIRECT_BUF bytes.  The page cache is no use
 * for a chunk being written (it is fsynced at the seal and the next read is
 * usually by another process much later), and filling it costs more CPU
 * than anything else on the write path: with three replicas on one machine
 * the page-cache copies of the replicas took a third of both cores.  The
 * unaligned tail and the footer go through the page cache at the seal. */
#define DIRECT_BUF (1u << 20)
#define DIRECT_MIN DIRECT_BUF
#define DIRECT_ALIGN 4096u

static int fsync_covers_rename(const char *path)
{
    struct statfs sf;

    if (statfs(path, &sf) != 0)
        return 0;
    return sf.f_type == EXT4_SUPER_MAGIC || sf.f_type == XFS_SUPER_MAGIC;
}

static int fsync_directory(const char *dir, ts_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ts_fail(err, TS_EIO, "open directory %s: %s", dir, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return ts_fail(err, TS_EIO, "fsync directory %s: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

static int path_fmt(char *out, size_t outlen, ts_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int path_fmt(char *out, size_t outlen, ts_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= outlen)
        return ts_fail(err, TS_ENAMETOOLONG, "path too long (%d bytes): %.100s…", n, out);
    return 0;
}

static void chunk_path(const ts_chunk_store *s, size_t dir, const char *hex, char *out,
                       size_t outlen)
{
    /* Lengths were checked at open (dir + fixed suffix fits PATH_MAX). */
    snprintf(out, outlen, "%s/chunks/%.2s/%s.chunk", s->dirs[dir], hex, hex);
}

static void chunk_subdir(const ts_chunk_store *s, size_t dir, const char *hex, char *out,
                         size_t outlen)
{
    snprintf(out, outlen, "%s/chunks/%.2s", s->dirs[dir], hex);
}

/* ---- footer ---- */

static void footer_encode(ts_buf *b, uint64_t length, const uint8_t sha[TS_SHA256_LEN],
                          const uint32_t *crcs, uint32_t nblocks)
{
    ts_enc_u32(b, FOOTER_MAGIC);
    ts_enc_u32(b, FOOTER_VERSION);
    ts_enc_u64(b, length);
    ts_enc_raw(b, sha, TS_SHA256_LEN);
    ts_enc_u32(b, nblocks);
    for (uint32_t i = 0; i < nblocks; i++)
        ts_enc_u32(b, crcs[i]);
    uint32_t body_len = (uint32_t)b->len;
    ts_enc_u32(b, ts_crc32c(0, b->data, b->len));
    ts_enc_u32(b, body_len + 4);
    ts_enc_u32(b, FOOTER_END_MAGIC);
}

/* Reads and validates the footer of an open chunk file.  On success fills
 * info and *crcs (malloc'd, caller frees). */
static int footer_read(int fd, const char *hex, const char *path, ts_chunk_info *info,
                       uint32_t **crcs, ts_error *err)
{
    struct stat st;
    uint8_t trailer[TRAILER_LEN];
    uint8_t *body = NULL;
    int rc;

    if (fstat(fd, &st) != 0)
        return ts_fail(err, TS_EIO, "chunk %s: stat %s: %s", hex, path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    if (size < FOOTER_FIXED + TRAILER_LEN)
        return ts_fail(err, TS_ECORRUPT, "chunk %s: footer corrupt: file %s is only %llu bytes",
                       hex, path, (unsigned long long)size);
    ssize_t got = ts_pread_full(fd, trailer, TRAILER_LEN, (off_t)(size - TRAILER_LEN));
    if (got != TRAILER_LEN)
        return ts_fail(err, TS_EIO, "chunk %s: read footer of %s: %s", hex, path,
                       got < 0 ? strerror(errno) : "short read");
    ts_dec d;
    ts_dec_init(&d, trailer, sizeof trailer);
    uint32_t body_len = ts_dec_u32(&d);
    uint32_t end_magic = ts_dec_u32(&d);
    if (!ts_dec_ok(&d) || end_magic != FOOTER_END_MAGIC)
        return ts_fail(err, TS_ECORRUPT, "chunk %s: footer corrupt: bad end magic in %s", hex, path);
    if (body_len < FOOTER_FIXED || body_len > size - TRAILER_LEN || (body_len - FOOTER_FIXED) % 4 != 0)
        return ts_fail(err, TS_ECORRUPT, "chunk %s: footer corrupt: footer length %u in %s",
                       hex, body_len, path);
    body = ts_malloc(body_len);
    got = ts_pread_full(fd, body, body_len, (off_t)(size - TRAILER_LEN - body_len));
    if (got != (ssize_t)body_len) {
        rc = ts_fail(err, TS_EIO, "chunk %s: read footer of %s: %s", hex, path,
                     got < 0 ? strerror(errno) : "short read");
        goto free_body;
    }
    ts_dec_init(&d, body, body_len);
    uint32_t magic = ts_dec_u32(&d);
    uint32_t version = ts_dec_u32(&d);
    info->length = ts_dec_u64(&d);
    ts_dec_raw(&d, info->sha256, TS_SHA256_LEN);
    info->nblocks = ts_dec_u32(&d);
    if (!ts_dec_ok(&d) || magic != FOOTER_MAGIC) {
        rc = ts_fail(err, TS_ECORRUPT, "chunk %s: footer corrupt: bad magic in %s", hex, path);
        goto free_body;
    }
    ts_dec tail;
    ts_dec_init(&tail, body + body_len - 4, 4);
    uint32_t stored_crc = ts_dec_u32(&tail);
    if (ts_crc32c(0, body, body_len - 4) != stored_crc) {
        rc = ts_fail(err, TS_ECORRUPT, "chunk %s: footer corrupt: footer checksum mismatch in %s",
                     hex, path);
        goto free_body;
    }
    if (version != FOOTER_VERSION) {
        rc = ts_fail(err, TS_ECORRUPT, "chunk %s: footer version %u not supported (%s)", hex,
                     version, path);
        goto free_body;
    }
    if (info->nblocks != blocks_for(info->length) ||
        body_len != FOOTER_FIXED + 4ull * info->nblocks ||
        size != info->length + body_len + TRAILER_LEN) {
        rc = ts_fail(err, TS_ECORRUPT,
                     "chunk %s: footer corrupt: length %llu, %u blocks, file size %llu disagree (%s)",
                     hex, (unsigned long long)info->length, info->nblocks,
                     (unsigned long long)size, path);
        goto free_body;
    }
    *crcs = ts_malloc(4ull * info->nblocks + 1);
    for (uint32_t i = 0; i < info->nblocks; i++)
        (*crcs)[i] = ts_dec_u32(&d);
    if (!ts_dec_ok(&d)) {
        free(*crcs);
        *crcs = NULL;
        rc = ts_fail(err, TS_ECORRUPT, "chunk %s: footer corrupt: truncated CRC table in %s",
                     hex, path);
        goto free_body;
    }
    rc = 0;
free_body:
    free(body);
    return rc;
}

/* ---- opening the store ---- */

/* Checks that data dir `dir` still works: a file can be created, written,
 * fsynced and removed in DATA/tmp, and DATA/chunks can be listed.  A
 * directory that fails this would only fail later, in the middle of a
 * client's upload or read. */
static int probe_dir(ts_chunk_store *s, size_t dir, ts_error *err)
{
    const char *d = s->dirs[dir];
    char probe[PATH_MAX];
    uint8_t rnd[8];
    char rhex[17];
    int injected = dir_fault(s, dir);

    if (injected != 0)
        return ts_fail(err, TS_EIO, "data dir %s: probe: %s (injected)", d, strerror(injected));
    ts_random_bytes(rnd, sizeof rnd);
    ts_hex_encode(rnd, sizeof rnd, rhex);
    snprintf(probe, sizeof probe, "%s/tmp/.probe.%s", d, rhex);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ts_fail(err, TS_EIO, "data dir %s is not writable: create %s: %s", d, probe,
                       strerror(errno));
    int rc = ts_write_full(fd, "tessera probe\n", 14);
    if (rc == 0 && fsync(fd) != 0)
        rc = TS_EIO;
    int e = errno;
    close(fd);
    if (unlink(probe) != 0 && rc == 0) {
        rc = TS_EIO;
        e = errno;
    }
    if (rc != 0)
        return ts_fail(err, TS_EIO, "data dir %s is not writable: probe %s: %s", d, probe,
                       strerror(e));
    char chunks[PATH_MAX];
    snprintf(chunks, sizeof chunks, "%s/chunks", d);
    DIR *dh = opendir(chunks);
    if (dh == NULL)
        return ts_fail(err, TS_EIO, "data dir %s: cannot list %s: %s", d, chunks, strerror(errno));
    closedir(dh);
    return 0;
}

static int prepare_dir(ts_chunk_store *s, size_t i, ts_error *err)
{
    const char *dir = s->dirs[i];
    char path[PATH_MAX];
    int rc;

    if (strlen(dir) + 64 >= PATH_MAX)
        return ts_fail(err, TS_ENAMETOOLONG, "data dir %s: path too long", dir);
    for (int k = 0; k < 256; k++) {
        snprintf(path, sizeof path, "%s/chunks/%02x", dir, k);
        rc = ts_mkdir_p(path, err);
        if (rc != 0)
            return ts_error_prefix(err, "data dir %s", dir);
    }
    snprintf(path, sizeof path, "%s/quarantine", dir);
    rc = ts_mkdir_p(path, err);
    if (rc != 0)
        return ts_error_prefix(err, "data dir %s", dir);
    snprintf(path, sizeof path, "%s/tmp", dir);
    rc = ts_mkdir_p(path, err);
    if (rc != 0)
        return ts_error_prefix(err, "data dir %s", dir);

    /* Whatever is in tmp is a chunk a previous run never sealed. */
    DIR *d = opendir(path);
    if (d == NULL)
        return ts_fail(err, TS_EIO, "data dir %s: open %s: %s", dir, path, strerror(errno));
    struct dirent *de;
    int removed = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
            int e = errno;
            closedir(d);
            return ts_fail(err, TS_EIO, "data dir %s: remove tmp/%s: %s", dir, de->d_name,
                           strerror(e));
        }
        removed++;
    }
    closedir(d);
    if (removed > 0)
        TS_INFO("data dir %s: removed %d unsealed temporary file(s)", dir, removed);

    rc = probe_dir(s, i, err);
    if (rc != 0)
        return rc;

    /* Make the directories themselves durable once, so a chunk's rename
     * (which fsyncs only chunks/XX) never lands in a directory a crash
     * could lose. */
    char chunks[PATH_MAX];
    snprintf(chunks, sizeof chunks, "%s/chunks", dir);
    rc = fsync_directory(chunks, err);
    if (rc == 0)
        rc = fsync_directory(dir, err);
    if (rc != 0)
        return ts_error_prefix(err, "data dir %s", dir);
    return 0;
}

static int parse_chunk_name(const char *name, ts_chunk_id *id)
{
    size_t n = strlen(name);
    if (n != TS_CHUNK_ID_HEX_LEN + 6 || strcmp(name + TS_CHUNK_ID_HEX_LEN, ".chunk") != 0)
        return TS_EINVAL;
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    memcpy(hex, name, TS_CHUNK_ID_HEX_LEN);
    hex[TS_CHUNK_ID_HEX_LEN] = '\0';
    return ts_chunk_id_from_hex(hex, id);
}

/* Adds the sealed chunks of data dir `dir` to the index. */
static int scan_dir(ts_chunk_store *s, size_t dir, ts_error *err)
{
    uint64_t found = 0, skipped = 0;

    for (int i = 0; i < 256; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/chunks/%02x", s->dirs[dir], i);
        DIR *d = opendir(sub);
        if (d == NULL)
            return ts_fail(err, TS_EIO, "data dir %s: open %s: %s", s->dirs[dir], sub,
                           strerror(errno));
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            ts_chunk_id id;
            if (de->d_name[0] == '.')
                continue;
            if (parse_chunk_name(de->d_name, &id) != 0) {
                TS_WARN("data dir %s: ignoring stray file %s/%s", s->dirs[dir], sub, de->d_name);
                continue;
            }
            char hex[TS_CHUNK_ID_HEX_LEN + 1];
            ts_chunk_id_to_hex(&id, hex);
            /* The two hex digits of the directory must match the id, or the
             * reader (which computes the path) would never find it. */
            char want[3];
            snprintf(want, sizeof want, "%02x", i);
            if (strncmp(hex, de->d_name, TS_CHUNK_ID_HEX_LEN) != 0 ||
                strncmp(hex, want, 2) != 0) {
                TS_WARN("data dir %s: ignoring misplaced chunk file %s/%s", s->dirs[dir], sub,
                        de->d_name);
                skipped++;
                continue;
            }
            char path[PATH_MAX];
            chunk_path(s, dir, hex, path, sizeof path);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                TS_WARN("chunk %s: cannot open %s, not served: %s", hex, path, strerror(errno));
                skipped++;
                continue;
            }
            ts_chunk_info info;
            uint32_t *crcs = NULL;
            ts_error ferr = { 0 };
            int rc = footer_read(fd, hex, path, &info, &crcs, &ferr);
            close(fd);
            free(crcs);
            if (rc != 0) {
                TS_WARN("%s; not served", ferr.msg);
                if (rc == TS_ECORRUPT)
                    s->checksum_errors++;
                skipped++;
                continue;
            }
            struct chunk_entry *e;
            HASH_FIND(hh, s->index, &id, sizeof id, e);
            if (e != NULL) {
                TS_WARN("chunk %s: found in both %s and %s; serving the first", hex,
                        s->dirs[e->dir], s->dirs[dir]);
                skipped++;
                continue;
            }
            e = ts_calloc(1, sizeof *e);
            e->id = id;
            e->length = info.length;
            e->dir = (uint16_t)dir;
            e->state = ENTRY_SEALED;
            HASH_ADD(hh, s->index, id, sizeof e->id, e);
            s->sealed_count++;
            s->chunk_bytes += info.length;
            found++;
        }
        closedir(d);
    }
    TS_INFO("data dir %s: %llu chunk(s) found%s", s->dirs[dir], (unsigned long long)found,
            skipped ? " (some files skipped, see warnings)" : "");
    return 0;
}

static void free_index(ts_chunk_store *s)
{
    struct chunk_entry *e, *tmp;
    HASH_ITER(hh, s->index, e, tmp) {
        HASH_DEL(s->index, e);
        free(e);
    }
}

static void dir_take_out(ts_chunk_store *s, size_t dir, const char *why);

int ts_chunk_store_open(const char *const *dirs, size_t ndirs, ts_chunk_store **out,
                        ts_error *err)
{
    int rc;
    size_t usable = 0;
    ts_error first = { 0 };

    if (ndirs == 0)
        return ts_fail(err, TS_EINVAL, "no data directory given");
    if (ndirs > UINT16_MAX)
        return ts_fail(err, TS_EINVAL, "too many data directories (%zu)", ndirs);
    ts_chunk_store *s = ts_calloc(1, sizeof *s);
    s->dirs = ts_calloc(ndirs, sizeof *s->dirs);
    s->ndirs = ndirs;
    for (size_t i = 0; i < ndirs; i++) {
        /* Strip trailing slashes so messages and paths read cleanly. */
        size_t n = strlen(dirs[i]);
        while (n > 1 && dirs[i][n - 1] == '/')
            n--;
        s->dirs[i] = ts_strndup(dirs[i], n);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->dirs[i], s->dirs[j]) == 0) {
                rc = ts_fail(err, TS_EINVAL, "data dir %s given twice", s->dirs[i]);
                goto free_store;
            }
        }
    }
    s->dir_failed = ts_calloc(ndirs, sizeof *s->dir_failed);
    s->dir_fault = ts_calloc(ndirs, sizeof *s->dir_fault);
    s->dir_one_sync = ts_calloc(ndirs, sizeof *s->dir_one_sync);
    s->direct_io = 1;
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        ts_die("pthread_mutex_init failed");
    /* A dead disk must not keep the server's other disks out of service:
     * its directory starts failed (reported in heartbeats, so what it
     * held is re-replicated) and the rest serve.  Only when every
     * directory fails does the server refuse to start. */
    for (size_t i = 0; i < ndirs; i++) {
        ts_error derr = { 0 };
        rc = prepare_dir(s, i, &derr);
        if (rc == 0) {
            s->dir_one_sync[i] = (uint8_t)fsync_covers_rename(s->dirs[i]);
            rc = scan_dir(s, i, &derr);
        }
        if (rc == 0) {
            usable++;
            continue;
        }
        if (first.code == 0)
            first = derr;
        if (ndirs > 1)
            dir_take_out(s, i, derr.msg);
    }
    if (usable == 0) {
        rc = first.code ? first.code : TS_EIO;
        *err = first;
        if (ndirs > 1)
            ts_error_prefix(err, "all %zu data directories failed; the first", ndirs);
        goto free_index;
    }
    *out = s;
    return 0;

free_index:
    free_index(s);
    pthread_mutex_destroy(&s->mu);
free_store:
    for (size_t i = 0; i < ndirs; i++)
        free(s->dirs[i]);
    free(s->dirs);
    free(s->dir_failed);
    free(s->dir_fault);
    free(s->dir_one_sync);
    free(s);
    return rc;
}

void ts_chunk_store_set_direct_io(ts_chunk_store *s, int on)
{
    s->direct_io = on;
}

void ts_chunk_store_close(ts_chunk_store *s)
{
    if (s == NULL)
        return;
    free_index(s);
    pthread_mutex_destroy(&s->mu);
    for (size_t i = 0; i < s->ndirs; i++)
        free(s->dirs[i]);
    free(s->dirs);
    free(s->dir_failed);
    free(s->dir_fault);
    free(s->dir_one_sync);
    free(s->added.v);
    free(s->removed.v);
    free(s->corrupt.v);
    free(s);
}

size_t ts_chunk_store_ndirs(const ts_chunk_store *s)
{
    return s->ndirs;
}

const char *ts_chunk_store_dir(const ts_chunk_store *s, size_t i)
{
    return i < s->ndirs ? s->dirs[i] : NULL;
}

/* ---- damage: failed data dirs ---- */

/* Takes data dir `dir` out of service: new chunks avoid it and its sealed
 * chunks leave the index (reported as removed, so the metadata service
 * re-replicates them).  Idempotent. */
static void dir_take_out(ts_chunk_store *s, size_t dir, const char *why)
{
    struct chunk_entry *e, *tmp;
    uint64_t dropped = 0, bytes = 0;

    pthread_mutex_lock(&s->mu);
    if (s->dir_failed[dir]) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->dir_failed[dir] = 1;
    HASH_ITER(hh, s->index, e, tmp) {
        if (e->dir != dir || e->state != ENTRY_SEALED)
            continue;   /* a SEALING entry there fails its own commit */
        index_remove_sealed(s, e);
        id_list_push(&s->removed, &e->id);
        dropped++;
        bytes += e->length;
        free(e);
    }
    pthread_mutex_unlock(&s->mu);
    char size[32];
    TS_ERROR("data dir %s taken out of service: %s; %llu chunk(s) (%s) dropped from this "
             "server, to be re-replicated", s->dirs[dir], why, (unsigned long long)dropped,
             ts_format_size(bytes, size, sizeof size));
}

/* After an I/O error in data dir `dir`: probes it and takes it out of
 * service when the probe fails too.  Returns 1 when it was taken out. */
static int dir_suspect(ts_chunk_store *s, size_t dir, const char *why)
{
    ts_error perr = { 0 };

    pthread_mutex_lock(&s->mu);
    int failed = s->dir_failed[dir];
    pthread_mutex_unlock(&s->mu);
    if (failed)
        return 0;
    if (probe_dir(s, dir, &perr) == 0) {
        TS_WARN("data dir %s: %s; the directory itself still works, kept in service",
                s->dirs[dir], why);
        return 0;
    }
    char *reason = ts_sprintf("%s (then %s)", why, perr.msg);
    dir_take_out(s, dir, reason);
    free(reason);
    return 1;
}

/* ---- writing ---- */

/* The data dir with the most free space; ties go to the first. */
static int choose_dir(ts_chunk_store *s, size_t *out, ts_error *err)
{
    uint64_t best = 0;
    int have = 0;
    for (size_t i = 0; i < s->ndirs; i++) {
        struct statvfs vfs;
        pthread_mutex_lock(&s->mu);
        int failed = s->dir_failed[i];
        pthread_mutex_unlock(&s->mu);
        if (failed)
            continue;
        if (statvfs(s->dirs[i], &vfs) != 0) {
            TS_WARN("data dir %s: statvfs: %s; skipped for new chunks", s->dirs[i],
                    strerror(errno));
            continue;
        }
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (!have || avail > best) {
            best = avail;
            *out = i;
            have = 1;
        }
    }
    if (!have)
        return ts_fail(err, TS_EIO, "no usable data directory (out of service, or statvfs "
                       "failed, on all %zu)", s->ndirs);
    return 0;
}

static void writer_fail_io(ts_chunk_writer *w, int errnum, const char *what)
{
    if (is_disk_full(errnum))
        ts_fail(&w->failed, TS_ENOSPC, "data dir %s: disk full writing chunk %s (%s)",
                w->s->dirs[w->dir], w->hex, strerror(errnum));
    else
        ts_fail(&w->failed, TS_EIO, "data dir %s: %s chunk %s (%s): %s", w->s->dirs[w->dir],
                what, w->hex, w->tmp_path, strerror(errnum));
    /* Nothing partial may stay behind, not even in tmp. */
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (unlink(w->tmp_path) != 0 && errno != ENOENT)
        TS_WARN("chunk %s: remove %s: %s", w->hex, w->tmp_path, strerror(errno));
    if (!is_disk_full(errnum))
        dir_suspect(w->s, w->dir, w->failed.msg);
}

static int writer_report(ts_chunk_writer *w, ts_error *err)
{
    if (err != NULL)
        *err = w->failed;
    return w->failed.code;
}

int ts_chunk_writer_begin(ts_chunk_store *s, const ts_chunk_id *id, uint64_t expected_length,
                          ts_chunk_writer **out, ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    struct chunk_entry *e;
    size_t dir = 0;
    int rc;

    ts_chunk_id_to_hex(id, hex);
    if (blocks_for(expected_length) > (UINT32_MAX - FOOTER_FIXED) / 4)
        return ts_fail(err, TS_EFBIG, "chunk %s: length %llu too large", hex,
                       (unsigned long long)expected_length);
    pthread_mutex_lock(&s->mu);
    HASH_FIND(hh, s->index, id, sizeof *id, e);
    uint64_t fault_after = s->fault_after;
    int fault_errno = s->fault_errno;
    if (e == NULL)
        s->fault_errno = 0;     /* one shot, consumed by this writer */
    pthread_mutex_unlock(&s->mu);
    if (e != NULL)
        return ts_fail(err, TS_EEXIST, "chunk %s: already sealed on this server", hex);

    rc = choose_dir(s, &dir, err);
    if (rc != 0)
        return rc;

    ts_chunk_writer *w = ts_calloc(1, sizeof *w);
    w->s = s;
    w->id = *id;
    memcpy(w->hex, hex, sizeof hex);
    w->dir = dir;
    w->expected = expected_length;
    w->nblocks = blocks_for(expected_length);
    w->fault_after = fault_after;
    w->fault_errno = fault_errno;
    uint8_t rnd[8];
    char rhex[17];
    ts_random_bytes(rnd, sizeof rnd);
    ts_hex_encode(rnd, sizeof rnd, rhex);
    rc = path_fmt(w->tmp_path, sizeof w->tmp_path, err, "%s/tmp/%s.%s.part", s->dirs[dir], hex,
                  rhex);
    if (rc != 0)
        goto free_writer;
    int injected = dir_fault(s, dir);
    int direct = s->direct_io && expected_length >= DIRECT_MIN;
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
    w->fd = injected ? -1 : open(w->tmp_path, flags | (direct ? O_DIRECT : 0), 0644);
    if (w->fd < 0 && direct && errno == EINVAL) {
        /* A file system without O_DIRECT (tmpfs before Linux 6.6) may
         * have created the file before refusing the flag. */
        (void)unlink(w->tmp_path);
        direct = 0;
        w->fd = open(w->tmp_path, flags, 0644);
    }
    if (w->fd < 0) {
        int en = injected ? injected : errno;
        if (is_disk_full(en))
            rc = ts_fail(err, TS_ENOSPC, "data dir %s: disk full writing chunk %s (%s)",
                         s->dirs[dir], hex, strerror(en));
        else
            rc = ts_fail(err, TS_EIO, "data dir %s: create %s for chunk %s: %s", s->dirs[dir],
                         w->tmp_path, hex, strerror(en));
        if (!is_disk_full(en))
            dir_suspect(s, dir, err != NULL ? err->msg : "cannot create a chunk file");
        goto free_writer;
    }
    /* Reserve the space now so a full disk is reported before the client
     * has streamed anything.  File systems without fallocate just skip it. */
    uint64_t total = expected_length + footer_total(w->nblocks);
    if (fallocate(w->fd, 0, 0, (off_t)total) != 0) {
        int en = errno;
        if (is_disk_full(en)) {
            rc = ts_fail(err, TS_ENOSPC,
                         "data dir %s: disk full writing chunk %s (%llu bytes needed)",
                         s->dirs[dir], hex, (unsigned long long)total);
            goto unlink_tmp;
        }
        if (en != EOPNOTSUPP && en != ENOSYS && en != EINVAL) {
            rc = ts_fail(err, TS_EIO, "data dir %s: reserve space for chunk %s: %s",
                         s->dirs[dir], hex, strerror(en));
            goto unlink_tmp;
        }
    }
    if (direct) {
        void *p = NULL;
        if (posix_memalign(&p, DIRECT_ALIGN, DIRECT_BUF) != 0)
            ts_die("out of memory allocating the %u-byte direct I/O buffer of chunk %s",
                   DIRECT_BUF, hex);
        w->dbuf = p;
    }
    w->sha = ts_sha256_new();
    w->crcs = ts_calloc(w->nblocks + 1, sizeof *w->crcs);
    *out = w;
    return 0;

unlink_tmp:
    close(w->fd);
    if (unlink(w->tmp_path) != 0)
        TS_WARN("chunk %s: remove %s: %s", hex, w->tmp_path, strerror(errno));
free_writer:
    free(w);
    return rc;
}

/* Copies into the direct I/O buffer, writing it out each time it fills.
 * Nonzero (w->failed set, file removed) on a write error. */
static int direct_stage(ts_chunk_writer *w, const char *p, size_t len)
{
    while (len > 0) {
        size_t take = TS_MIN(len, DIRECT_BUF - w->dfill);
        memcpy(w->dbuf + w->dfill, p, take);
        w->dfill += take;
        p += take;
        len -= take;
        if (w->dfill == DIRECT_BUF) {
            if (ts_write_full(w->fd, w->dbuf, DIRECT_BUF) != 0) {
                writer_fail_io(w, errno, "write");
                return -1;
            }
            w->dfill = 0;
        }
    }
    return 0;
}

/* Writes what is left in the direct I/O buffer through the page cache (its
 * length need not be aligned), after which the footer follows the same way.
 * Nonzero (w->failed set) on an error. */
static int direct_finish(ts_chunk_writer *w)
{
    int fl = fcntl(w->fd, F_GETFL);
    if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) != 0) {
        writer_fail_io(w, errno, "leave direct I/O for the tail of");
        return -1;
    }
    if (w->dfill > 0 && ts_write_full(w->fd, w->dbuf, w->dfill) != 0) {
        writer_fail_io(w, errno, "write");
        return -1;
    }
    w->dfill = 0;
    return 0;
}

int ts_chunk_writer_append(ts_chunk_writer *w, const void *buf, size_t len, ts_error *err)
{
    if (w->failed.code != 0)
        return writer_report(w, err);
    if (len > w->expected - w->written)
        return ts_fail(err, TS_EINVAL, "chunk %s: more data than the announced %llu bytes",
                       w->hex, (unsigned long long)w->expected);
    if (len == 0)
        return 0;
    if (w->fault_errno != 0 && w->written + len > w->fault_after) {
        writer_fail_io(w, w->fault_errno, "write");
        return writer_report(w, err);
    }
    int injected = dir_fault(w->s, w->dir);
    if (injected != 0) {
        writer_fail_io(w, injected, "write");
        return writer_report(w, err);
    }
    if (w->dbuf != NULL) {
        if (direct_stage(w, buf, len) != 0)
            return writer_report(w, err);
    } else if (ts_write_full(w->fd, buf, len) != 0) {
        writer_fail_io(w, errno, "write");
        return writer_report(w, err);
    }
    if (!w->has_given)
        ts_sha256_update(w->sha, buf, len);
    /* Block CRCs: fill the current block, closing it at each 64 KiB edge. */
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        size_t take = TS_MIN(left, (size_t)(TS_BLOCK_SIZE - w->cur_fill));
        w->cur_crc = ts_crc32c(w->cur_crc, p, take);
        w->cur_fill += (uint32_t)take;
        p += take;
        left -= take;
        if (w->cur_fill == TS_BLOCK_SIZE) {
            w->crcs[w->full_blocks++] = w->cur_crc;
            w->cur_crc = 0;
            w->cur_fill = 0;
        }
    }
    w->written += len;
    if (w->dbuf == NULL && w->written - w->flushed >= WRITEBACK_STEP) {
        /* Start writing back what came so far without waiting for it, so
         * the disk works while the chunk streams in and the fsync at the
         * seal finds little left to do (rather than a whole chunk at once,
         * three times over with three replicas on a disk).  A failure here
         * shows again at that fsync. */
        (void)sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->written - w->flushed),
                              SYNC_FILE_RANGE_WRITE);
        w->flushed = w->written;
    }
    return 0;
}

uint64_t ts_chunk_writer_written(const ts_chunk_writer *w)
{
    return w->written;
}

void ts_chunk_writer_given_digest(ts_chunk_writer *w, const ts_chunk_digest *d)
{
    assert(w->written == 0);
    w->given = *d;
    w->has_given = 1;
    ts_sha256_free(w->sha);     /* nothing to hash: the writer did */
    w->sha = NULL;
}

void ts_chunk_writer_expect_sha256(ts_chunk_writer *w, const uint8_t sha[TS_SHA256_LEN])
{
    memcpy(w->expected_sha, sha, TS_SHA256_LEN);
    w->has_expected_sha = 1;
}

static void writer_free(ts_chunk_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->sha != NULL)
        ts_sha256_free(w->sha);
    free(w->crcs);
    free(w->dbuf);
    free(w);
}

void ts_chunk_writer_abort(ts_chunk_writer *w)
{
    if (w == NULL)
        return;
    if (w->failed.code == 0) {
        if (w->fd >= 0) {
            close(w->fd);
            w->fd = -1;
        }
        if (unlink(w->tmp_path) != 0)
            TS_WARN("chunk %s: remove %s: %s", w->hex, w->tmp_path, strerror(errno));
    }
    writer_free(w);
}

int ts_chunk_writer_commit(ts_chunk_writer *w, ts_chunk_info *info, ts_error *err)
{
    ts_chunk_store *s = w->s;
    int one_sync;
    ts_buf footer = { 0 };
    uint8_t sha[TS_SHA256_LEN];
    char final_path[PATH_MAX], subdir[PATH_MAX];
    struct chunk_entry *e;
    int rc;

    if (w->failed.code != 0) {
        rc = writer_report(w, err);
        writer_free(w);
        return rc;
    }
    if (w->written != w->expected) {
        rc = ts_fail(err, TS_EINVAL, "chunk %s: received %llu of %llu bytes", w->hex,
                     (unsigned long long)w->written, (unsigned long long)w->expected);
        ts_chunk_writer_abort(w);
        return rc;
    }
    if (w->cur_fill > 0)
        w->crcs[w->full_blocks++] = w->cur_crc;
    assert(w->full_blocks == w->nblocks);
    if (w->has_given) {
        uint32_t all = 0;      /* the CRC32C of no bytes */
        for (uint32_t i = 0; i < w->nblocks; i++) {
            uint64_t blen = TS_MIN((uint64_t)TS_BLOCK_SIZE, w->written - (uint64_t)i * TS_BLOCK_SIZE);
            all = ts_crc32c_combine(all, w->crcs[i], blen);
        }
        if (all != w->given.crc32c) {
            rc = ts_fail(err, TS_ECORRUPT, "chunk %s: CRC32C of the bytes received is %08" PRIx32
                         ", the writer sent %08" PRIx32 "; not sealed", w->hex, all,
                         w->given.crc32c);
            goto unlink_tmp;
        }
        memcpy(sha, w->given.sha256, TS_SHA256_LEN);
    } else {
        ts_sha256_final(w->sha, sha);
        w->sha = NULL;
    }
    if (w->has_expected_sha && memcmp(sha, w->expected_sha, TS_SHA256_LEN) != 0) {
        char got[2 * TS_SHA256_LEN + 1], want[2 * TS_SHA256_LEN + 1];
        ts_hex_encode(sha, TS_SHA256_LEN, got);
        ts_hex_encode(w->expected_sha, TS_SHA256_LEN, want);
        rc = ts_fail(err, TS_ECORRUPT, "chunk %s: SHA-256 of the bytes received is %s, "
                     "expected %s; not sealed", w->hex, got, want);
        goto unlink_tmp;
    }
    if (w->dbuf != NULL && direct_finish(w) != 0)
        goto free_failed_writer;
    footer_encode(&footer, w->written, sha, w->crcs, w->nblocks);
    if (w->fault_errno != 0 && w->written + footer.len > w->fault_after) {
        writer_fail_io(w, w->fault_errno, "write footer of");
        goto free_failed_writer;
    }
    if (ts_write_full(w->fd, footer.data, footer.len) != 0) {
        writer_fail_io(w, errno, "write footer of");
        goto free_failed_writer;
    }
    one_sync = s->dir_one_sync[w->dir];
    if (!one_sync && fsync(w->fd) != 0) {
        writer_fail_io(w, errno, "fsync");
        goto free_failed_writer;
    }

    /* Claim the id before the rename so two writers of one id cannot both
     * rename (the second would silently replace the first). */
    pthread_mutex_lock(&s->mu);
    HASH_FIND(hh, s->index, &w->id, sizeof w->id, e);
    if (e != NULL) {
        pthread_mutex_unlock(&s->mu);
        rc = ts_fail(err, TS_EEXIST, "chunk %s: already sealed on this server", w->hex);
        goto unlink_tmp;
    }
    e = ts_calloc(1, sizeof *e);
    e->id = w->id;
    e->length = w->written;
    e->dir = (uint16_t)w->dir;
    e->state = ENTRY_SEALING;
    HASH_ADD(hh, s->index, id, sizeof e->id, e);
    pthread_mutex_unlock(&s->mu);

    chunk_path(s, w->dir, w->hex, final_path, sizeof final_path);
    chunk_subdir(s, w->dir, w->hex, subdir, sizeof subdir);
    if (rename(w->tmp_path, final_path) != 0) {
        rc = ts_fail(err, TS_EIO, "data dir %s: rename chunk %s into place: %s",
                     s->dirs[w->dir], w->hex, strerror(errno));
        dir_suspect(s, w->dir, err != NULL ? err->msg : "rename failed");
        goto unclaim;
    }
    if (one_sync) {
        rc = fsync(w->fd) == 0 ? 0 : ts_fail(err, TS_EIO, "data dir %s: fsync: %s",
                                             s->dirs[w->dir], strerror(errno));
        if (rc != 0)
            dir_suspect(s, w->dir, err != NULL ? err->msg : "fsync failed");
    } else {
        rc = fsync_directory(subdir, err);
    }
    if (close(w->fd) != 0 && rc == 0)
        rc = ts_fail(err, TS_EIO, "data dir %s: close: %s", s->dirs[w->dir], strerror(errno));
    w->fd = -1;
    if (rc != 0) {
        ts_error_prefix(err, "chunk %s", w->hex);
        /* Not durable: take it back so nobody is told it is. */
        if (unlink(final_path) != 0)
            TS_WARN("chunk %s: remove %s: %s", w->hex, final_path, strerror(errno));
        goto unclaim;
    }

    pthread_mutex_lock(&s->mu);
    if (s->dir_failed[w->dir]) {
        /* The dir went out of service while we sealed: invariant 4. */
        HASH_DEL(s->index, e);
        pthread_mutex_unlock(&s->mu);
        free(e);
        rc = ts_fail(err, TS_EIO, "data dir %s went out of service while chunk %s was sealed",
                     s->dirs[w->dir], w->hex);
        goto free_footer;
    }
    e->state = ENTRY_SEALED;
    assert_entry_state(s, e);
    s->sealed_count++;
    s->chunk_bytes += e->length;
    id_list_push(&s->added, &w->id);
    pthread_mutex_unlock(&s->mu);

    if (info != NULL) {
        info->id = w->id;
        info->length = w->written;
        memcpy(info->sha256, sha, sizeof sha);
        info->nblocks = w->nblocks;
    }
    ts_buf_free(&footer);
    writer_free(w);
    return 0;

unclaim:
    pthread_mutex_lock(&s->mu);
    HASH_DEL(s->index, e);
    pthread_mutex_unlock(&s->mu);
    free(e);
unlink_tmp:
    if (unlink(w->tmp_path) != 0 && errno != ENOENT)
        TS_WARN("chunk %s: remove %s: %s", w->hex, w->tmp_path, strerror(errno));
free_footer:
    ts_buf_free(&footer);
    writer_free(w);
    return rc;

free_failed_writer:
    rc = writer_report(w, err);
    ts_buf_free(&footer);
    writer_free(w);
    return rc;
}

/* ---- reading ---- */

int ts_chunk_reader_open(ts_chunk_store *s, const ts_chunk_id *id, ts_chunk_reader **out,
                         ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    char path[PATH_MAX];
    struct chunk_entry *e;
    size_t dir = 0;
    int rc;

    ts_chunk_id_to_hex(id, hex);
    pthread_mutex_lock(&s->mu);
    HASH_FIND(hh, s->index, id, sizeof *id, e);
    int sealed = e != NULL && e->state == ENTRY_SEALED;
    if (sealed)
        dir = e->dir;
    pthread_mutex_unlock(&s->mu);
    if (!sealed)
        return ts_fail(err, TS_ENOENT, "chunk %s: not on this server", hex);

    chunk_path(s, dir, hex, path, sizeof path);
    ts_chunk_reader *r = ts_calloc(1, sizeof *r);
    r->s = s;
    memcpy(r->hex, hex, sizeof hex);
    r->info.id = *id;
    int injected = dir_fault(s, dir);
    r->fd = injected ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int en = injected ? injected : errno;
        if (en == ENOENT)   /* deleted between the lookup and the open */
            rc = ts_fail(err, TS_ENOENT, "chunk %s: not on this server", hex);
        else
            rc = ts_fail(err, TS_EIO, "chunk %s: open %s: %s", hex, path, strerror(en));
        goto free_reader;
    }
    rc = footer_read(r->fd, hex, path, &r->info, &r->crcs, err);
    if (rc != 0) {
        if (rc == TS_ECORRUPT) {
            pthread_mutex_lock(&s->mu);
            s->checksum_errors++;
            pthread_mutex_unlock(&s->mu);
            TS_ERROR("%s", err != NULL ? err->msg : "chunk footer corrupt");
        }
        goto close_fd;
    }
    *out = r;
    return 0;

close_fd:
    close(r->fd);
free_reader:
    free(r);
    return rc;
}

const ts_chunk_info *ts_chunk_reader_info(const ts_chunk_reader *r)
{
    return &r->info;
}

/* Verifies every block overlapping [offset, offset+len); when buf is not NULL
 * also copies the range out of the verified blocks. */
static int reader_check(ts_chunk_reader *r, void *buf, uint64_t offset, uint64_t len,
                        ts_error *err)
{
    if (offset > r->info.length || len > r->info.length - offset)
        return ts_fail(err, TS_ERANGE, "chunk %s: range %llu+%llu beyond its %llu bytes", r->hex,
                       (unsigned long long)offset, (unsigned long long)len,
                       (unsigned long long)r->info.length);
    if (len == 0)
        return 0;
    if (r->fd < 0)
        return ts_fail(err, TS_EINVAL, "chunk %s: reader's descriptor was handed off", r->hex);
    if (r->scratch == NULL)
        r->scratch = ts_malloc((size_t)VERIFY_BATCH_BLOCKS * TS_BLOCK_SIZE);

    uint64_t first = offset / TS_BLOCK_SIZE;
    uint64_t last = (offset + len - 1) / TS_BLOCK_SIZE;
    for (uint64_t b = first; b <= last; b += VERIFY_BATCH_BLOCKS) {
        uint64_t nb = TS_MIN((uint64_t)VERIFY_BATCH_BLOCKS, last - b + 1);
        uint64_t start = b * TS_BLOCK_SIZE;
        uint64_t want = TS_MIN(nb * TS_BLOCK_SIZE, r->info.length - start);
        ssize_t got = ts_pread_full(r->fd, r->scratch, want, (off_t)start);
        if (got != (ssize_t)want)
            return ts_fail(err, TS_EIO, "chunk %s: read block %llu: %s", r->hex,
                           (unsigned long long)b, got < 0 ? strerror(errno) : "short read");
        for (uint64_t i = 0; i < nb; i++) {
            uint64_t boff = i * TS_BLOCK_SIZE;
            size_t blen = (size_t)TS_MIN((uint64_t)TS_BLOCK_SIZE, want - boff);
            uint32_t crc = ts_crc32c(0, r->scratch + boff, blen);
            if (crc != r->crcs[b + i]) {
                pthread_mutex_lock(&r->s->mu);
                r->s->checksum_errors++;
                pthread_mutex_unlock(&r->s->mu);
                int rc = ts_fail(err, TS_ECORRUPT,
                                 "chunk %s: checksum mismatch at block %llu (bytes %llu-%llu)",
                                 r->hex, (unsigned long long)(b + i),
                                 (unsigned long long)(start + boff),
                                 (unsigned long long)(start + boff + blen - 1));
                TS_ERROR("chunk %s: checksum mismatch at block %llu", r->hex,
                         (unsigned long long)(b + i));
                return rc;
            }
        }
        if (buf != NULL) {
            /* Copy the part of this batch that lies inside the range. */
            uint64_t lo = TS_MAX(offset, start), hi = TS_MIN(offset + len, start + want);
            memcpy((char *)buf + (lo - offset), r->scratch + (lo - start), (size_t)(hi - lo));
        }
    }
    return 0;
}

int ts_chunk_reader_verify(ts_chunk_reader *r, uint64_t offset, uint64_t len, ts_error *err)
{
    return reader_check(r, NULL, offset, len, err);
}

int ts_chunk_reader_pread(ts_chunk_reader *r, void *buf, uint64_t offset, uint64_t len,
                          ts_error *err)
{
    return reader_check(r, buf, offset, len, err);
}

int ts_chunk_reader_take_fd(ts_chunk_reader *r)
{
    int fd = r->fd;
    r->fd = -1;
    return fd;
}

void ts_chunk_reader_close(ts_chunk_reader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->crcs);
    free(r->scratch);
    free(r);
}

int ts_chunk_store_read(ts_chunk_store *s, const ts_chunk_id *id, uint64_t offset,
                        uint64_t len, void *buf, ts_error *err)
{
    ts_chunk_reader *r;
    int rc = ts_chunk_reader_open(s, id, &r, err);
    if (rc != 0)
        return rc;
    rc = ts_chunk_reader_pread(r, buf, offset, len, err);
    ts_chunk_reader_close(r);
    return rc;
}

int ts_chunk_store_info(ts_chunk_store *s, const ts_chunk_id *id, ts_chunk_info *out,
                        ts_error *err)
{
    ts_chunk_reader *r;
    int rc = ts_chunk_reader_open(s, id, &r, err);
    if (rc != 0)
        return rc;
    *out = r->info;
    ts_chunk_reader_close(r);
    return 0;
}

int ts_chunk_store_contains(ts_chunk_store *s, const ts_chunk_id *id, uint64_t *length)
{
    struct chunk_entry *e;
    pthread_mutex_lock(&s->mu);
    HASH_FIND(hh, s->index, id, sizeof *id, e);
    int sealed = e != NULL && e->state == ENTRY_SEALED;
    if (sealed && length != NULL)
        *length = e->length;
    pthread_mutex_unlock(&s->mu);
    return sealed;
}

int ts_chunk_store_delete(ts_chunk_store *s, const ts_chunk_id *id, ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    char path[PATH_MAX], subdir[PATH_MAX];
    struct chunk_entry *e;

    ts_chunk_id_to_hex(id, hex);
    pthread_mutex_lock(&s->mu);
    HASH_FIND(hh, s->index, id, sizeof *id, e);
    if (e == NULL || e->state != ENTRY_SEALED) {
        pthread_mutex_unlock(&s->mu);
        return ts_fail(err, TS_ENOENT, "chunk %s: not on this server", hex);
    }
    size_t dir = e->dir;
    index_remove_sealed(s, e);
    id_list_push(&s->removed, id);
    free(e);
    /* Unlink under the lock so a writer of the same id cannot rename its
     * new copy into place before the old file is gone. */
    chunk_path(s, dir, hex, path, sizeof path);
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = ts_fail(err, TS_EIO, "chunk %s: remove %s: %s", hex, path, strerror(errno));
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        return rc;
    chunk_subdir(s, dir, hex, subdir, sizeof subdir);
    return fsync_directory(subdir, err);
}

/* ---- reports and statistics ---- */

void ts_chunk_store_list(ts_chunk_store *s, ts_chunk_id **ids, size_t *n)
{
    struct chunk_entry *e, *tmp;
    size_t k = 0;

    pthread_mutex_lock(&s->mu);
    *ids = s->sealed_count ? ts_malloc(s->sealed_count * sizeof **ids) : NULL;
    HASH_ITER(hh, s->index, e, tmp) {
        if (e->state == ENTRY_SEALED)
            (*ids)[k++] = e->id;
    }
    assert(k == s->sealed_count);
    pthread_mutex_unlock(&s->mu);
    *n = k;
}

void ts_chunk_store_take_added(ts_chunk_store *s, ts_chunk_id **ids, size_t *n)
{
    id_list_take(s, &s->added, ids, n);
}

void ts_chunk_store_take_removed(ts_chunk_store *s, ts_chunk_id **ids, size_t *n)
{
    id_list_take(s, &s->removed, ids, n);
}

void ts_chunk_store_take_corrupt(ts_chunk_store *s, ts_chunk_id **ids, size_t *n)
{
    id_list_take(s, &s->corrupt, ids, n);
}

int ts_chunk_store_stats(ts_chunk_store *s, ts_chunk_stats *out, ts_error *err)
{
    dev_t seen[64];
    size_t nseen = 0;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < s->ndirs; i++) {
        struct stat st;
        struct statvfs vfs;
        pthread_mutex_lock(&s->mu);
        int failed = s->dir_failed[i];
        pthread_mutex_unlock(&s->mu);
        if (failed) {
            out->failed_dirs++;
            continue;   /* its space is not ours to offer any more */
        }
        if (stat(s->dirs[i], &st) != 0)
            return ts_fail(err, TS_EIO, "data dir %s: stat: %s", s->dirs[i], strerror(errno));
        int dup = 0;
        for (size_t j = 0; j < nseen; j++)
            dup |= seen[j] == st.st_dev;
        if (dup)
            continue;
        if (nseen < TS_ARRAY_LEN(seen))
            seen[nseen++] = st.st_dev;
        if (statvfs(s->dirs[i], &vfs) != 0)
            return ts_fail(err, TS_EIO, "data dir %s: statvfs: %s", s->dirs[i], strerror(errno));
        out->capacity += (uint64_t)vfs.f_blocks * vfs.f_frsize;
        out->available += (uint64_t)vfs.f_bavail * vfs.f_frsize;
    }
    out->used = out->capacity > out->available ? out->capacity - out->available : 0;
    pthread_mutex_lock(&s->mu);
    out->chunks = s->sealed_count;
    out->chunk_bytes = s->chunk_bytes;
    out->checksum_errors = s->checksum_errors;
    out->quarantined = s->quarantined;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void ts_chunk_store_inject_write_error(ts_chunk_store *s, uint64_t after_bytes, int errnum)
{
    pthread_mutex_lock(&s->mu);
    s->fault_after = after_bytes;
    s->fault_errno = errnum;
    pthread_mutex_unlock(&s->mu);
}

void ts_chunk_store_inject_dir_error(ts_chunk_store *s, size_t dir, int errnum)
{
    assert(dir < s->ndirs);
    pthread_mutex_lock(&s->mu);
    s->dir_fault[dir] = errnum;
    pthread_mutex_unlock(&s->mu);
}

/* ---- damage: quarantine, read failures, dir checks ---- */

int ts_chunk_store_quarantine(ts_chunk_store *s, const ts_chunk_id *id, const char *why,
                              ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    char from[PATH_MAX], subdir[PATH_MAX], qdir[PATH_MAX];
    char to[PATH_MAX + TS_CHUNK_ID_HEX_LEN + 16];
    struct chunk_entry *e;
    int rc = 0;

    ts_chunk_id_to_hex(id, hex);
    pthread_mutex_lock(&s->mu);
    HASH_FIND(hh, s->index, id, sizeof *id, e);
    if (e == NULL || e->state != ENTRY_SEALED) {
        pthread_mutex_unlock(&s->mu);
        return ts_fail(err, TS_ENOENT, "chunk %s: not on this server", hex);
    }
    size_t dir = e->dir;
    index_remove_sealed(s, e);
    free(e);
    id_list_push(&s->corrupt, id);
    s->quarantined++;
    /* Moved under the lock (see the top of this file). */
    chunk_path(s, dir, hex, from, sizeof from);
    snprintf(qdir, sizeof qdir, "%s/quarantine", s->dirs[dir]);
    snprintf(to, sizeof to, "%s/%s.chunk", qdir, hex);
    if (rename(from, to) != 0)
        rc = ts_fail(err, TS_EIO, "chunk %s: move %s to %s: %s (no longer served anyway)", hex,
                     from, to, strerror(errno));
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        TS_ERROR("%s", err != NULL ? err->msg : "quarantine failed");
        return rc;
    }
    TS_ERROR("chunk %s quarantined in %s: %s", hex, qdir, why);
    chunk_subdir(s, dir, hex, subdir, sizeof subdir);
    rc = fsync_directory(subdir, err);
    if (rc == 0)
        rc = fsync_directory(qdir, err);
    return rc;
}

int ts_chunk_store_read_failed(ts_chunk_store *s, const ts_chunk_id *id, const ts_error *what)
{
    struct chunk_entry *e;

    if (what->code == TS_ECORRUPT) {
        ts_error qerr = { 0 };
        int rc = ts_chunk_store_quarantine(s, id, what->msg, &qerr);
        /* ENOENT: someone else (the scrubber, another reader) was first. */
        return rc == 0 || rc == TS_EIO;
    }
    if (what->code != TS_EIO)
        return 0;
    pthread_mutex_lock(&s->mu);
    HASH_FIND(hh, s->index, id, sizeof *id, e);
    size_t dir = e != NULL ? e->dir : 0;
    pthread_mutex_unlock(&s->mu);
    if (e == NULL)
        return 0;
    return dir_suspect(s, dir, what->msg);
}

size_t ts_chunk_store_check_dirs(ts_chunk_store *s)
{
    size_t out = 0;

    for (size_t i = 0; i < s->ndirs; i++) {
        ts_error perr = { 0 };
        if (!ts_chunk_store_dir_in_service(s, i) || probe_dir(s, i, &perr) == 0)
            continue;
        dir_take_out(s, i, perr.msg);
        out++;
    }
    return out;
}

int ts_chunk_store_dir_in_service(ts_chunk_store *s, size_t i)
{
    pthread_mutex_lock(&s->mu);
    int ok = i < s->ndirs && !s->dir_failed[i];
    pthread_mutex_unlock(&s->mu);
    return ok;
}
