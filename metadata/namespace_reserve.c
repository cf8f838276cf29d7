/*
 * Inode numbers reserved by clients (namespace.h "Reserved inode numbers").
 *
 * A reservation is a range of NS_RESERVE_BATCH numbers taken from the
 * counter, so nobody else is ever given them, and a bitmap of the ones not
 * used yet.  Ranges are created in counter order and kept sorted by their
 * first number; a range leaves the table when its last number is used.
 * A client that dies with numbers unused leaves its range behind (16 bytes);
 * those numbers are simply never used.
 */
#include "metadata/namespace_int.h"

#include <stdlib.h>
#include <string.h>
#include "common/codec.h"
#include "common/util.h"

void ns_reserve_inodes(ns_state *ns, uint64_t *first)
{
    if (ns->n_reserved == ns->cap_reserved) {
        ns->cap_reserved = ns->cap_reserved ? 2 * ns->cap_reserved : 8;
        ns->reserved = ts_realloc(ns->reserved, ns->cap_reserved * sizeof(*ns->reserved));
    }
    struct ns_reserved *r = &ns->reserved[ns->n_reserved++];
    r->first = ns->next_ino;
    r->unused = ~0ull;          /* NS_RESERVE_BATCH == 64 bits */
    ns->next_ino += NS_RESERVE_BATCH;
    *first = r->first;
}

/* The range holding ino, or NULL. */
static struct ns_reserved *range_of(const ns_state *ns, uint64_t ino)
{
    size_t lo = 0, hi = ns->n_reserved;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct ns_reserved *r = &ns->reserved[mid];
        if (ino < r->first)
            hi = mid;
        else if (ino >= r->first + NS_RESERVE_BATCH)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

int ns_reserved_has(const ns_state *ns, uint64_t ino)
{
    const struct ns_reserved *r = range_of(ns, ino);
    return r && (r->unused >> (ino - r->first) & 1);
}

void ns_reserved_take(ns_state *ns, uint64_t ino)
{
    struct ns_reserved *r = range_of(ns, ino);
    if (!r || !(r->unused >> (ino - r->first) & 1))
        ts_die("namespace: inode %llu taken but not reserved", (unsigned long long)ino);
    r->unused &= ~(1ull << (ino - r->first));
    if (r->unused == 0) {
        size_t i = (size_t)(r - ns->reserved);
        memmove(r, r + 1, (ns->n_reserved - i - 1) * sizeof(*r));
        ns->n_reserved--;
    }
}

uint64_t ns_reserved_count(const ns_state *ns)
{
    uint64_t n = 0;
    for (size_t i = 0; i < ns->n_reserved; i++)
        n += (uint64_t)__builtin_popcountll(ns->reserved[i].unused);
    return n;
}

void ns_reserved_free(ns_state *ns)
{
    free(ns->reserved);
    ns->reserved = NULL;
    ns->n_reserved = ns->cap_reserved = 0;
}

void ns_reserved_encode(const ns_state *ns, ts_buf *b)
{
    ts_enc_u32(b, (uint32_t)ns->n_reserved);
    for (size_t i = 0; i < ns->n_reserved; i++) {
        ts_enc_u64(b, ns->reserved[i].first);
        ts_enc_u64(b, ns->reserved[i].unused);
    }
}

int ns_reserved_decode(ts_dec *d, ns_state *ns, ts_error *err)
{
    uint32_t n = ts_dec_u32(d);
    if (!ts_dec_ok(d) || n > (d->len - d->pos) / 16)
        return ts_fail(err, TS_ECORRUPT, "bad count of reserved inode ranges");
    ns->reserved = ts_calloc(n + 1, sizeof(*ns->reserved));
    ns->cap_reserved = n + 1;
    for (uint32_t i = 0; i < n; i++) {
        ns->reserved[i].first = ts_dec_u64(d);
        ns->reserved[i].unused = ts_dec_u64(d);
    }
    ns->n_reserved = n;
    if (!ts_dec_ok(d))
        return ts_fail(err, TS_ECORRUPT, "reserved inode ranges truncated");
    return 0;
}

int ns_reserved_check(const ns_state *ns, ts_error *err)
{
    for (size_t i = 0; i < ns->n_reserved; i++) {
        const struct ns_reserved *r = &ns->reserved[i];
        unsigned long long first = (unsigned long long)r->first;
        if (r->unused == 0 || r->first <= TS_ROOT_INO || r->first + NS_RESERVE_BATCH > ns->next_ino)
            return ts_fail(err, TS_ECORRUPT, "N11: reserved range at %llu is empty or past the "
                           "inode counter", first);
        if (i > 0 && ns->reserved[i - 1].first + NS_RESERVE_BATCH > r->first)
            return ts_fail(err, TS_ECORRUPT, "N11: reserved ranges at %llu overlap or are "
                           "unsorted", first);
        for (unsigned k = 0; k < NS_RESERVE_BATCH; k++)
            if ((r->unused >> k & 1) && ns_inode_get(ns, r->first + k))
                return ts_fail(err, TS_ECORRUPT, "N11: inode %llu is live but still reserved",
                               first + k);
    }
    return 0;
}
