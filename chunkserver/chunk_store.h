/*
 * The chunk store: sealed, immutable chunks on one or more local data
 * directories, each chunk one file with a checksummed footer.
 *
 * On disk, per data directory DATA:
 *   DATA/chunks/XX/ID.chunk   sealed chunks (XX = first two hex digits of ID)
 *   DATA/tmp/ID.RANDOM.part   chunks being written; removed at start
 *   DATA/quarantine/ID.chunk  replicas found corrupt, kept for inspection
 *                             and never served or reported
 *
 * A chunk file is the data bytes followed by a footer, everything through
 * common/codec.h (little-endian):
 *
 *   data[length]
 *   footer body:  u32 magic "TSCF" | u32 version (1) | u64 length |
 *                 sha256[32] | u32 nblocks | u32 crc32c[nblocks] |
 *                 u32 crc32c of the footer body so far
 *   trailer:      u32 footer_len (bytes of the footer body) | u32 end magic "TSCE"
 *
 * so a reader finds the footer from the end of the file.  nblocks is
 * ceil(length / TS_BLOCK_SIZE); block i covers bytes [i*64K, min((i+1)*64K,
 * length)).  The footer's own CRC makes a flipped bit in the footer (in the
 * SHA-256, say) detectable, not only a flipped bit in the data.
 *
 * Life of a chunk:
 *
 *     begin ──► writing (DATA/tmp/…part) ──commit──► sealed (DATA/chunks/XX/…)
 *                   │                                    │
 *                   └─abort / write error / crash──► gone (tmp unlinked,
 *                                                     or removed at next start)
 *
 * A chunk becomes visible (to readers, to the index, to chunk reports) only by
 * fsync + rename + fsync of the directory, so a partial chunk is never
 * visible, even after a crash.  On ext4 and XFS the seal is rename, then one
 * fsync of the file: there the fsync of an inode also commits the journal
 * transaction of its rename (which changes the inode's ctime), so one journal
 * commit makes data, footer and name durable where the portable sequence
 * costs two -- with three replicas on one disk, six commits become three.  A
 * crash before that fsync may leave a torn file under its final name; the
 * scan at open reads every footer and does not serve it (it was never
 * acknowledged, so nothing refers to it: an orphan for GC).  The in-memory index (id -> data dir, length)
 * of sealed chunks is rebuilt by scanning the data directories at open.
 *
 * Threading: every function may be called from any thread; writers and
 * readers are independent objects, each used by one thread at a time.
 * The store must outlive its writers and readers.
 */
#ifndef TS_CHUNK_STORE_H
#define TS_CHUNK_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/ts_error.h"

typedef struct ts_chunk_store ts_chunk_store;
typedef struct ts_chunk_writer ts_chunk_writer;
typedef struct ts_chunk_reader ts_chunk_reader;

/* What the footer of a sealed chunk says about it. */
typedef struct ts_chunk_info {
    ts_chunk_id id;
    uint64_t length;
    uint8_t sha256[TS_SHA256_LEN];
    uint32_t nblocks;
} ts_chunk_info;

/* Space and content of the store.  capacity/used/available come from statvfs
 * over the data directories (a file system holding several of them counted
 * once); used = capacity - available, so it includes what other programs use
 * on those disks. */
typedef struct ts_chunk_store_stats {
    uint64_t capacity;
    uint64_t used;
    uint64_t available;
    uint64_t chunks;           /* sealed chunks in the index */
    uint64_t chunk_bytes;      /* sum of their lengths */
    uint64_t checksum_errors;  /* blocks or footers found corrupt since open */
    uint64_t quarantined;      /* chunks quarantined since open */
    uint64_t failed_dirs;      /* data dirs out of service (left out of capacity) */
} ts_chunk_stats;

/* ---- Store lifetime ---- */

/* Opens a store over ndirs data directories: creates DATA, DATA/chunks/00..ff
 * and DATA/tmp as needed, empties DATA/tmp (partial chunks of a previous run),
 * checks that each directory is writable (write + fsync + unlink of a probe
 * file) and scans the sealed chunks into the index.  A chunk whose footer is
 * unreadable is logged and left out of the index (it is never served).
 * Fails with TS_EIO naming the directory when one cannot be used, TS_EINVAL
 * when ndirs is 0.  *out is owned by the caller (ts_chunk_store_close). */
int ts_chunk_store_open(const char *const *dirs, size_t ndirs, ts_chunk_store **out,
                        ts_error *err);
/* Frees the store.  Every writer and reader must be finished first. */
void ts_chunk_store_close(ts_chunk_store *s);
/* Whether chunks of 1 MiB and more are written with O_DIRECT (on by
 * default; file systems without it fall back to the page cache by
 * themselves).  Set before the first writer begins. */
void ts_chunk_store_set_direct_io(ts_chunk_store *s, int on);

/* ---- Writing a chunk ---- */

/* Starts chunk id of exactly expected_length bytes, in the data directory
 * with the most free space, as DATA/tmp/ID.RANDOM.part.  Space for the whole
 * chunk is reserved up front where the file system supports it, so a full
 * disk is usually reported here rather than halfway.
 * Errors: TS_EEXIST when id is sealed already; TS_ENOSPC ("data dir /x: disk
 * full writing chunk ab12…"); TS_EIO.  *out is owned by the caller until
 * ts_chunk_writer_commit or ts_chunk_writer_abort. */
int ts_chunk_writer_begin(ts_chunk_store *s, const ts_chunk_id *id, uint64_t expected_length,
                          ts_chunk_writer **out, ts_error *err);
/* Appends len bytes, updating the block CRCs and the SHA-256 as it goes.
 * Errors: TS_EINVAL beyond expected_length; TS_ENOSPC on a full disk or
 * quota; TS_EIO.  After an error the temporary file is already removed and
 * every later call fails the same way; the caller still aborts the writer. */
int ts_chunk_writer_append(ts_chunk_writer *w, const void *buf, size_t len, ts_error *err);
/* Bytes appended so far. */
uint64_t ts_chunk_writer_written(const ts_chunk_writer *w);
/* The writer's digest of the chunk (common/checksum.h), given before the first
 * append: the store then hashes nothing beyond its block CRCs, and commit
 * refuses (TS_ECORRUPT, nothing left on disk) unless the CRC32C they combine
 * to equals d->crc32c; the chunk's SHA-256 is recorded as d->sha256. */
void ts_chunk_writer_given_digest(ts_chunk_writer *w, const ts_chunk_digest *d);
/* Makes commit refuse (TS_ECORRUPT, nothing left on disk) unless the SHA-256
 * of the bytes appended equals sha: a copy from another server is sealed
 * only when it is the chunk the source describes. */
void ts_chunk_writer_expect_sha256(ts_chunk_writer *w, const uint8_t sha[TS_SHA256_LEN]);
/* Seals the chunk: writes the footer, fsyncs, renames into place, fsyncs the
 * directory, and adds it to the index.  Fills *info (may be NULL).
 * Consumes w (freed on success and on failure).  Errors: TS_EINVAL when fewer
 * than expected_length bytes were appended; TS_EEXIST when another writer
 * sealed the same id meanwhile; TS_ENOSPC; TS_EIO.  On failure nothing of the
 * chunk is left on disk. */
int ts_chunk_writer_commit(ts_chunk_writer *w, ts_chunk_info *info, ts_error *err);
/* Drops an unsealed chunk: unlinks the temporary file and frees w.  NULL is
 * a no-op. */
void ts_chunk_writer_abort(ts_chunk_writer *w);

/* ---- Reading a chunk ---- */

/* Opens sealed chunk id and validates its footer.  Errors: TS_ENOENT (not
 * sealed here), TS_ECORRUPT (footer damaged; counted as a checksum error),
 * TS_EIO.  *out is owned by the caller (ts_chunk_reader_close). */
int ts_chunk_reader_open(ts_chunk_store *s, const ts_chunk_id *id, ts_chunk_reader **out,
                         ts_error *err);
/* The footer's description of the chunk; valid while r is open. */
const ts_chunk_info *ts_chunk_reader_info(const ts_chunk_reader *r);
/* Checks the CRC32C of every block overlapping [offset, offset+len).
 * Errors: TS_ERANGE when the range passes the end of the chunk; TS_ECORRUPT
 * "chunk ab12…: checksum mismatch at block 17 (bytes …)"; TS_EIO. */
int ts_chunk_reader_verify(ts_chunk_reader *r, uint64_t offset, uint64_t len, ts_error *err);
/* Verifies and copies [offset, offset+len) into buf: either the right bytes or
 * an error, never wrong bytes.  Same errors as ts_chunk_reader_verify. */
int ts_chunk_reader_pread(ts_chunk_reader *r, void *buf, uint64_t offset, uint64_t len,
                          ts_error *err);
/* Hands the file descriptor to the caller (who closes it), e.g. to sendfile a
 * range just verified.  Chunk byte k is at file offset k.  The reader keeps
 * working for info only. */
int ts_chunk_reader_take_fd(ts_chunk_reader *r);
void ts_chunk_reader_close(ts_chunk_reader *r);

/* Convenience: open + pread + close. */
int ts_chunk_store_read(ts_chunk_store *s, const ts_chunk_id *id, uint64_t offset,
                        uint64_t len, void *buf, ts_error *err);
/* Convenience: open + info + close. */
int ts_chunk_store_info(ts_chunk_store *s, const ts_chunk_id *id, ts_chunk_info *out,
                        ts_error *err);
/* 1 when id is sealed here (sets *length if non-NULL), else 0.  Index only. */
int ts_chunk_store_contains(ts_chunk_store *s, const ts_chunk_id *id, uint64_t *length);

/* ---- Removing a chunk ---- */

/* Removes sealed chunk id from the index and from disk (unlink + fsync of the
 * directory) and queues it for the next "removed" report.  Readers that have
 * it open keep reading it.  TS_ENOENT, TS_EIO. */
int ts_chunk_store_delete(ts_chunk_store *s, const ts_chunk_id *id, ts_error *err);

/* ---- Damage: corrupt replicas and failed data directories ----
 *
 * A corrupt replica is quarantined: it leaves the index (never served or
 * listed again), its file moves to DATA/quarantine/, and its id is queued
 * for the next "corrupt" report so the metadata service copies a good
 * replica back.  A data directory that gives an I/O error is probed (a
 * file created, written, fsynced and removed; the chunk tree listed); if
 * the probe fails the directory is out of service until the next start:
 * new chunks avoid it, its chunks leave the index (queued as "removed", to
 * be re-replicated) and its space leaves the statistics.  The server keeps
 * serving from the other directories. */

/* Quarantines sealed chunk id; `why` goes to the log.  TS_ENOENT when it is
 * not sealed here; TS_EIO when the file could not be moved (the chunk has
 * left the index all the same). */
int ts_chunk_store_quarantine(ts_chunk_store *s, const ts_chunk_id *id, const char *why,
                              ts_error *err);
/* What a failed read of chunk id (open, verify, pread) means for the store,
 * acted upon at once: TS_ECORRUPT quarantines the chunk, TS_EIO has its data
 * dir probed (and taken out of service when the probe fails); other codes
 * change nothing.  Returns 1 when the chunk left the index, else 0. */
int ts_chunk_store_read_failed(ts_chunk_store *s, const ts_chunk_id *id, const ts_error *what);
/* Probes every data dir in service, taking out those that fail.  Returns
 * how many this call took out (the scrubber calls it periodically, so a dead
 * disk is noticed even when nobody reads from it). */
size_t ts_chunk_store_check_dirs(ts_chunk_store *s);
/* 1 when data dir i is in service. */
int ts_chunk_store_dir_in_service(ts_chunk_store *s, size_t i);

/* ---- Reports and statistics ---- */

/* Every sealed chunk id, in no particular order: *ids is malloc'd (caller
 * frees; NULL when *n is 0). */
void ts_chunk_store_list(ts_chunk_store *s, ts_chunk_id **ids, size_t *n);
/* The ids sealed since the previous call (a single consumer: the heartbeat),
 * oldest first; *ids is malloc'd (caller frees; NULL when *n is 0).  Ids
 * deleted meanwhile may still appear. */
void ts_chunk_store_take_added(ts_chunk_store *s, ts_chunk_id **ids, size_t *n);
/* The same for ids that left the store since the previous call: deleted, or
 * dropped with a data dir taken out of service.  Ids sealed again meanwhile
 * may still appear (the consumer checks ts_chunk_store_contains). */
void ts_chunk_store_take_removed(ts_chunk_store *s, ts_chunk_id **ids, size_t *n);
/* The same for ids quarantined since the previous call. */
void ts_chunk_store_take_corrupt(ts_chunk_store *s, ts_chunk_id **ids, size_t *n);
/* Fills *out.  TS_EIO when statvfs fails on a data directory. */
int ts_chunk_store_stats(ts_chunk_store *s, ts_chunk_stats *out, ts_error *err);
size_t ts_chunk_store_ndirs(const ts_chunk_store *s);
const char *ts_chunk_store_dir(const ts_chunk_store *s, size_t i);

/* ---- Fault injection (tests) ---- */

/* The next writer to begin fails its first write that would go past
 * after_bytes with errno errnum (e.g. ENOSPC), exactly as if the disk had
 * answered that.  One shot. */
void ts_chunk_store_inject_write_error(ts_chunk_store *s, uint64_t after_bytes, int errnum);
/* From now on every open, write and probe in data dir `dir` (an index below
 * ts_chunk_store_ndirs) fails with errnum, as a dead disk would; 0 heals it
 * (a dir already out of service stays out). */
void ts_chunk_store_inject_dir_error(ts_chunk_store *s, size_t dir, int errnum);

#endif
