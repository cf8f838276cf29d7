/*
 * ptab: hash-ordered linear-probing pointer table.  See ptab.h for the two
 * invariants (P1 sorted, P2 home <= position) every function here keeps.
 */
#include "metadata/ptab.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

#define PTAB_MIN_BITS 2

/* Slack past the last home bucket: runs may spill over the end since there
 * is no wrap-around.  Hitting the end grows the table (rare at our load). */
static size_t slack(uint8_t bits)
{
    return 4 + ((size_t)1 << bits) / 8;
}

size_t ptab_nslots(const ptab *t)
{
    return t->bits ? ((size_t)1 << t->bits) + slack(t->bits) : 0;
}

size_t ptab_mem(const ptab *t)
{
    return ptab_nslots(t) * sizeof(void *);
}

static size_t home(uint8_t bits, uint32_t h)
{
    return (size_t)(h >> (32 - bits));
}

/* Order of elem against (hash, key). */
static int order(const ptab_ops *ops, const void *elem, uint32_t hash, const void *key)
{
    uint32_t eh = ops->hash(elem);
    if (eh != hash)
        return eh < hash ? -1 : 1;
    return ops->cmp(elem, key);
}

/* Rebuilds into 1 << bits buckets.  Old slot order is already sorted (P1),
 * so each element goes to max(its home, previous position + 1). */
static int rebuild(ptab *t, const ptab_ops *ops, uint8_t bits)
{
    size_t n = ((size_t)1 << bits) + slack(bits);
    void **ns = ts_calloc(n, sizeof(void *));
    size_t next = 0;
    size_t old_n = ptab_nslots(t);
    for (size_t i = 0; i < old_n; i++) {
        void *e = t->slot[i];
        if (!e)
            continue;
        size_t pos = TS_MAX(home(bits, ops->hash(e)), next);
        if (pos >= n) {         /* spilled past the slack: caller grows more */
            free(ns);
            return -1;
        }
        ns[pos] = e;
        next = pos + 1;
    }
    free(t->slot);
    t->slot = ns;
    t->bits = bits;
    return 0;
}

static void grow(ptab *t, const ptab_ops *ops)
{
    uint8_t bits = t->bits ? t->bits + 1 : PTAB_MIN_BITS;
    while (rebuild(t, ops, bits) != 0)
        bits++;
}

/* The load factor: a table with 1 << bits home buckets holds at most
 * 0.8 of that. */
static int fits(size_t count, uint8_t bits)
{
    return (uint64_t)count * 5 <= ((uint64_t)1 << bits) * 4;
}

void ptab_reserve(ptab *t, const ptab_ops *ops, size_t count)
{
    uint8_t bits = t->bits ? t->bits : PTAB_MIN_BITS;
    while (!fits(count, bits))
        bits++;
    if (bits == t->bits)
        return;
    while (rebuild(t, ops, bits) != 0)
        bits++;
}

void *ptab_find(const ptab *t, const ptab_ops *ops, uint32_t hash, const void *key)
{
    size_t n = ptab_nslots(t);
    if (n == 0)
        return NULL;
    for (size_t pos = home(t->bits, hash); pos < n && t->slot[pos]; pos++) {
        int c = order(ops, t->slot[pos], hash, key);
        if (c == 0)
            return t->slot[pos];
        if (c > 0)
            break;      /* sorted run: the key would have been here */
    }
    return NULL;
}

int ptab_insert(ptab *t, const ptab_ops *ops, void *elem, uint32_t hash, const void *key)
{
    /* Grow at load 0.8 of the home buckets. */
    if (t->bits == 0 || !fits((size_t)t->count + 1, t->bits))
        grow(t, ops);
    for (;;) {
        size_t n = ptab_nslots(t);
        size_t pos = home(t->bits, hash);
        while (pos < n && t->slot[pos]) {
            int c = order(ops, t->slot[pos], hash, key);
            if (c == 0)
                return TS_EEXIST;
            if (c > 0)
                break;
            pos++;
        }
        size_t empty = pos;
        while (empty < n && t->slot[empty])
            empty++;
        if (empty >= n) {       /* the run reaches the end: make room */
            grow(t, ops);
            continue;
        }
        memmove(&t->slot[pos + 1], &t->slot[pos], (empty - pos) * sizeof(void *));
        t->slot[pos] = elem;
        t->count++;
        return 0;
    }
}

void *ptab_remove(ptab *t, const ptab_ops *ops, uint32_t hash, const void *key)
{
    size_t n = ptab_nslots(t);
    if (n == 0)
        return NULL;
    size_t pos = home(t->bits, hash);
    for (; pos < n && t->slot[pos]; pos++) {
        int c = order(ops, t->slot[pos], hash, key);
        if (c == 0)
            break;
        if (c > 0)
            return NULL;
    }
    if (pos >= n || !t->slot[pos])
        return NULL;
    void *found = t->slot[pos];
    /* Backward shift: pull following elements one slot toward their homes.
     * Homes are non-decreasing along a run (P1), so the first element
     * already at its home ends the shift. */
    size_t j = pos + 1;
    while (j < n && t->slot[j] && home(t->bits, ops->hash(t->slot[j])) < j) {
        t->slot[j - 1] = t->slot[j];
        j++;
    }
    t->slot[j - 1] = NULL;
    t->count--;
    if (t->count == 0)
        ptab_free(t);   /* empty directories hold no slot array */
    return found;
}

size_t ptab_seek(const ptab *t, const ptab_ops *ops, uint32_t hash, const void *key)
{
    size_t n = ptab_nslots(t);
    if (n == 0)
        return 0;
    /* Everything before home(hash) sorts before the key (homes are monotonic
     * in the hash); after the first empty slot everything sorts after it. */
    size_t pos = home(t->bits, hash);
    while (pos < n && t->slot[pos] && order(ops, t->slot[pos], hash, key) <= 0)
        pos++;
    return pos;
}

void ptab_free(ptab *t)
{
    free(t->slot);
    t->slot = NULL;
    t->count = 0;
    t->bits = 0;
}

int ptab_check(const ptab *t, const ptab_ops *ops, ts_error *err)
{
    size_t n = ptab_nslots(t);
    size_t count = 0;
    const void *prev = NULL;
    uint32_t prev_hash = 0;
    size_t prev_pos = 0;
    for (size_t i = 0; i < n; i++) {
        const void *e = t->slot[i];
        if (!e)
            continue;
        uint32_t h = ops->hash(e);
        size_t hm = home(t->bits, h);
        if (hm > i)
            return ts_fail(err, TS_ECORRUPT, "ptab: slot %zu holds an element whose home is %zu", i, hm);
        for (size_t k = hm; k < i; k++)
            if (!t->slot[k])
                return ts_fail(err, TS_ECORRUPT, "ptab: gap at slot %zu before element at %zu (home %zu)", k, i, hm);
        if (prev && (prev_hash > h || (prev_hash == h && ops->cmp_elem(prev, e) >= 0)))
            return ts_fail(err, TS_ECORRUPT, "ptab: slots %zu and %zu out of order", prev_pos, i);
        prev = e;
        prev_hash = h;
        prev_pos = i;
        count++;
    }
    if (count != t->count)
        return ts_fail(err, TS_ECORRUPT, "ptab: count %u but %zu elements", t->count, count);
    return 0;
}

uint32_t ptab_hash_u64(uint64_t v)
{
    v += 0x9e3779b97f4a7c15ULL;
    v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;
    v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
    v ^= v >> 31;
    return (uint32_t)(v >> 32);
}

uint32_t ptab_hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return ptab_hash_u64(h);
}

uint32_t ptab_hash_chunk_id(const ts_chunk_id *id)
{
    return ptab_hash_bytes(id->b, TS_CHUNK_ID_LEN);
}

static uint32_t chunk_id_hash(const void *e)
{
    return ptab_hash_chunk_id((const ts_chunk_id *)e);
}

static int chunk_id_cmp(const void *e, const void *key)
{
    return memcmp(((const ts_chunk_id *)e)->b, ((const ts_chunk_id *)key)->b, TS_CHUNK_ID_LEN);
}

static int chunk_id_cmp_elem(const void *a, const void *b)
{
    return chunk_id_cmp(a, b);
}

const ptab_ops ptab_chunk_id_ops = { chunk_id_hash, chunk_id_cmp, chunk_id_cmp_elem };
