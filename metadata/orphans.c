/*
 * Orphan replicas of the leader's soft state (see orphans.h): a ptab of
 * chunk id -> holders and the time the chunk was first seen orphaned.
 */
#include "metadata/orphans.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include "common/log.h"
#include "common/util.h"
#include "metadata/ptab.h"

struct orphan {
    ts_chunk_id id;
    int64_t since_ms;
    uint16_t n, cap;
    uint16_t *srv;
};

struct orphans {
    ptab t;              /* of struct orphan */
    uint64_t replicas;
};

/* struct orphan starts with its chunk id, as ptab_chunk_id_ops requires. */
_Static_assert(offsetof(struct orphan, id) == 0, "ptab_chunk_id_ops needs the id first");

orphans *orphans_new(void)
{
    return ts_calloc(1, sizeof(orphans));
}

void orphans_clear(orphans *o)
{
    size_t n = ptab_nslots(&o->t);
    for (size_t i = 0; i < n; i++) {
        struct orphan *e = o->t.slot[i];
        if (!e)
            continue;
        free(e->srv);
        free(e);
    }
    ptab_free(&o->t);
    o->replicas = 0;
}

void orphans_free(orphans *o)
{
    if (!o)
        return;
    orphans_clear(o);
    free(o);
}

void orphans_note(orphans *o, const ts_chunk_id *id, uint16_t srv, int64_t now_ms)
{
    struct orphan *e = ptab_find(&o->t, &ptab_chunk_id_ops, ptab_hash_chunk_id(id), id);
    if (!e) {
        e = ts_calloc(1, sizeof(*e));
        e->id = *id;
        e->since_ms = now_ms;
        if (ptab_insert(&o->t, &ptab_chunk_id_ops, e, ptab_hash_chunk_id(id), id) != 0)
            ts_die("orphans: table inconsistent");
    }
    for (uint16_t k = 0; k < e->n; k++)
        if (e->srv[k] == srv)
            return;
    if (e->n == e->cap) {
        e->cap = e->cap ? (uint16_t)(e->cap * 2) : 3;
        e->srv = ts_realloc(e->srv, e->cap * sizeof(uint16_t));
    }
    e->srv[e->n++] = srv;
    o->replicas++;
}

/* Removes e from the table and frees it. */
static void remove_entry(orphans *o, struct orphan *e)
{
    ptab_remove(&o->t, &ptab_chunk_id_ops, ptab_hash_chunk_id(&e->id), &e->id);
    o->replicas -= e->n;
    free(e->srv);
    free(e);
}

void orphans_drop(orphans *o, const ts_chunk_id *id, uint16_t srv)
{
    struct orphan *e = ptab_find(&o->t, &ptab_chunk_id_ops, ptab_hash_chunk_id(id), id);
    for (uint16_t k = 0; e && k < e->n; k++)
        if (e->srv[k] == srv) {
            e->srv[k] = e->srv[--e->n];
            o->replicas--;
            if (e->n == 0)
                remove_entry(o, e);
            return;
        }
}

void orphans_forget_server(orphans *o, uint16_t srv)
{
    size_t n = ptab_nslots(&o->t);
    for (size_t i = 0; i < n;) {
        struct orphan *e = o->t.slot[i];
        if (!e) {
            i++;
            continue;
        }
        for (uint16_t k = 0; k < e->n; k++)
            if (e->srv[k] == srv) {
                e->srv[k] = e->srv[--e->n];
                o->replicas--;
                break;
            }
        if (e->n == 0) {
            /* Backward-shift deletion: slot i holds the next element now. */
            remove_entry(o, e);
            n = ptab_nslots(&o->t);
            continue;
        }
        i++;
    }
}

size_t orphans_take(orphans *o, const ts_chunk_id *id, uint16_t *srv, size_t max)
{
    struct orphan *e = ptab_find(&o->t, &ptab_chunk_id_ops, ptab_hash_chunk_id(id), id);
    if (!e)
        return 0;
    size_t n = e->n < max ? e->n : max;
    memcpy(srv, e->srv, n * sizeof(uint16_t));
    remove_entry(o, e);
    return n;
}

int orphans_holds(const orphans *o, const ts_chunk_id *id, uint16_t srv, int64_t seen_by_ms)
{
    const struct orphan *e = ptab_find(&o->t, &ptab_chunk_id_ops, ptab_hash_chunk_id(id), id);
    if (!e || e->since_ms > seen_by_ms)
        return 0;
    for (uint16_t k = 0; k < e->n; k++)
        if (e->srv[k] == srv)
            return 1;
    return 0;
}

void orphans_foreach(const orphans *o, orphans_fn fn, void *arg)
{
    size_t n = ptab_nslots(&o->t);
    for (size_t i = 0; i < n; i++) {
        const struct orphan *e = o->t.slot[i];
        if (e && fn(arg, &e->id, e->srv, e->n, e->since_ms) != 0)
            return;
    }
}

uint64_t orphans_chunks(const orphans *o)
{
    return o->t.count;
}

uint64_t orphans_replicas(const orphans *o)
{
    return o->replicas;
}
