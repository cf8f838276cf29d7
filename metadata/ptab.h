/*
 * ptab: a compact hash table of pointers, ordered by hash.
 *
 * Why not uthash: uthash puts a 56-byte UT_hash_handle into every element.
 * The namespace keeps one table of all inodes and one table of children per
 * directory, so with uthash an empty file would pay 112 bytes of handles
 * alone; the memory target is <= 256 bytes per empty file.  A ptab costs one
 * pointer slot per element (at a load factor of 0.4..0.8), nothing inside the
 * element.
 *
 * Layout: open addressing with linear probing and NO wrap-around (the slot
 * array has some slack past the last home bucket; running into its end grows
 * the table).  The home slot of hash h is its top `bits` bits, so homes are
 * monotonic in h, and insertion keeps every run sorted by (hash, key).  Hence:
 *
 *   invariant P1: reading the slots in order, skipping empty ones, yields the
 *                 elements sorted by (hash, key) -- independent of capacity
 *                 and of insertion history;
 *   invariant P2: every element sits at or after its home slot, and every
 *                 slot between its home and itself is occupied.
 *
 * P1 gives the namespace a readdir order that is stable, deterministic across
 * replicas and restarts, and resumable from a name that has since been
 * deleted (ptab_seek), like ext4's hash-ordered readdir.  It also makes
 * iteration order canonical, so snapshots of equal states are byte-equal.
 * Lookups stop early at the first larger key.  Deletion is backward shift
 * (no tombstones).  Not thread-safe; the caller locks.
 *
 * The table holds no hash function: callers pass the 32-bit hash of the key
 * and an ops struct that can hash an element and compare an element with a
 * key.  Elements are owned by the caller.
 */
#ifndef TS_META_PTAB_H
#define TS_META_PTAB_H

#include <stddef.h>
#include <stdint.h>
#include "common/chunk_id.h"
#include "common/ts_error.h"

typedef struct ptab_ops {
    /* The 32-bit hash of an element (must equal the hash its key was
     * inserted with). */
    uint32_t (*hash)(const void *elem);
    /* <0, 0, >0 as elem's key is less than, equal to, greater than key;
     * only consulted between elements of equal hash. */
    int (*cmp)(const void *elem, const void *key);
    /* The same order between two elements of equal hash (ptab_check). */
    int (*cmp_elem)(const void *a, const void *b);
} ptab_ops;

/* Zero-initialize ({0}) for an empty table; nothing is allocated until the
 * first insert.  16 bytes. */
typedef struct ptab {
    void **slot;
    uint32_t count;
    uint8_t bits;      /* 0 = no slot array yet; else 1 << bits home buckets */
} ptab;

/* Number of slots to iterate over (0 for an empty table). */
size_t ptab_nslots(const ptab *t);

/* The element with this key, or NULL. */
void *ptab_find(const ptab *t, const ptab_ops *ops, uint32_t hash, const void *key);
/* Inserts elem (whose key is key/hash).  0, or TS_EEXIST (nothing changed)
 * when an element with that key is present.  Aborts on OOM. */
int ptab_insert(ptab *t, const ptab_ops *ops, void *elem, uint32_t hash, const void *key);
/* Makes room for count elements in all without growing again.  Inserting
 * many elements in hash order (as a decoder does: they were encoded in
 * slot order) needs it: without it they all land in the first part of the
 * too small table, one long run that every insert scans, O(n^2). */
void ptab_reserve(ptab *t, const ptab_ops *ops, size_t count);
/* Removes and returns the element with this key, NULL when absent. */
void *ptab_remove(ptab *t, const ptab_ops *ops, uint32_t hash, const void *key);
/* The first slot index whose element sorts strictly after (hash, key); scan
 * on from there, skipping NULL slots, to list elements in order.  Works when
 * no element has that key. */
size_t ptab_seek(const ptab *t, const ptab_ops *ops, uint32_t hash, const void *key);
/* Frees the slot array (not the elements); the table is empty afterwards. */
void ptab_free(ptab *t);
/* Checks P1, P2 and the count.  0 or TS_ECORRUPT with a message. */
int ptab_check(const ptab *t, const ptab_ops *ops, ts_error *err);
/* Bytes held by the slot array (for memory accounting). */
size_t ptab_mem(const ptab *t);

/* Hash helpers shared by the namespace: a 64-bit finalizer (splitmix64) and
 * FNV-1a over bytes, both folded to 32 bits.  Fixed functions, not seeded:
 * the order must be the same on every replica. */
uint32_t ptab_hash_u64(uint64_t v);
uint32_t ptab_hash_bytes(const void *p, size_t n);

/* Tables keyed by a chunk id (the leader's soft state: replica locations,
 * orphans): ptab_chunk_id_ops serves any element whose FIRST member is a
 * ts_chunk_id, looked up with a `const ts_chunk_id *` key and the hash
 * ptab_hash_chunk_id gives. */
uint32_t ptab_hash_chunk_id(const ts_chunk_id *id);
extern const ptab_ops ptab_chunk_id_ops;

#endif
