/*
 * Placement by weighted rendezvous hashing (highest random weight).  For chunk
 * c and server s, score(c, s) = weight(s) / -ln(u(c, s)) where u is a uniform
 * hash in (0, 1); the replicas of c belong on the r up servers with the highest
 * scores, taking distinct zones first.  Anyone with the membership map computes
 * the same answer, and adding a server of weight w to total weight W moves only
 * about w / (W + w) of the replicas.  Pure: no I/O, no allocation.
 */
#ifndef TS_PLACEMENT_H
#define TS_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>
#include "common/chunk_id.h"

typedef struct ts_place_server {
    const char *id;      /* stable server id, e.g. "cs-1"; hashed */
    const char *zone;    /* failure domain; NULL or "" means its own zone */
    double weight;       /* > 0; proportional to capacity */
    int eligible;        /* 0: skip (down, draining, full) */
    uint64_t id_hash;    /* filled by ts_place_prepare */
} ts_place_server;

/* Computes id_hash for each server; call once after filling the array. */
void ts_place_prepare(ts_place_server *servers, size_t n);

/* Writes into out[0..] the indexes of up to r eligible servers for chunk id,
 * best first, distinct zones first (a zone repeats only when there are fewer
 * zones than r).  Returns how many were chosen (< r when fewer eligible). */
size_t ts_place_choose(const ts_chunk_id *id, const ts_place_server *servers,
                       size_t n, size_t r, size_t *out);

/* Orders every eligible server for chunk id (the full preference list: the
 * first r are the placement, the rest are the fallbacks a writer tries when a
 * chosen server fails).  out must hold n entries; returns the count written. */
size_t ts_place_rank(const ts_chunk_id *id, const ts_place_server *servers,
                     size_t n, size_t *out);

/* The score itself, exposed for tests. */
double ts_place_score(const ts_chunk_id *id, const ts_place_server *s);

#endif
