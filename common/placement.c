/*
 * Weighted rendezvous hashing (common/placement.h).
 *
 *   id_hash(s)  = splitmix64-finalize(FNV-1a-64(s.id))
 *   h(c, s)     = mix(mix(id_hash(s) ^ hi(c)) ^ lo(c))
 *   u(c, s)     = ((h >> 11) + 0.5) / 2^53           in (0, 1), never 0 or 1
 *   score(c, s) = weight(s) / -ln(u(c, s))
 *
 * -1/ln(u) of a uniform u is an exponential race: server s wins the top spot
 * with probability weight(s) / total weight, which is what makes r = 1 exactly
 * proportional and keeps movement minimal when membership changes.
 *
 * The preference order (ts_place_rank) is: eligible servers by score
 * descending (ties by id string, then index, so the order is total), then
 * stably reordered so that the best server of each zone comes first, the
 * others after.  ts_place_choose(r) returns exactly the first r entries of
 * that order, computed without sorting everything.  A NULL or "" zone counts
 * as a zone of its own.  Servers with weight <= 0 are treated as ineligible.
 *
 * No allocation: scores are cached in a stack array for n <= SCORE_CACHE and
 * recomputed on demand above that.
 */
#include "common/placement.h"

#include <math.h>
#include <string.h>

#define SCORE_CACHE 1024

static uint64_t mix64(uint64_t x)
{
    /* splitmix64 finalizer: every input bit affects every output bit. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void ts_place_prepare(ts_place_server *servers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        servers[i].id_hash = mix64(fnv1a64(servers[i].id != NULL ? servers[i].id : ""));
}

double ts_place_score(const ts_chunk_id *id, const ts_place_server *s)
{
    uint64_t h = mix64(mix64(s->id_hash ^ ts_chunk_id_hi(id)) ^ ts_chunk_id_lo(id));
    double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* 2^53 */
    return s->weight / -log(u);
}

static int usable(const ts_place_server *s)
{
    return s->eligible && s->weight > 0;
}

/* Scores for one chunk, cached when the server list is small. */
typedef struct scorer {
    const ts_chunk_id *id;
    const ts_place_server *servers;
    double *cache;            /* NULL: compute every time */
} scorer;

static double score_of(const scorer *sc, size_t i)
{
    return sc->cache != NULL ? sc->cache[i] : ts_place_score(sc->id, &sc->servers[i]);
}

/* 1 when server a ranks before server b. */
static int better(const scorer *sc, size_t a, size_t b)
{
    double sa = score_of(sc, a), sb = score_of(sc, b);
    if (sa != sb)
        return sa > sb;
    const char *ia = sc->servers[a].id ? sc->servers[a].id : "";
    const char *ib = sc->servers[b].id ? sc->servers[b].id : "";
    int c = strcmp(ia, ib);
    if (c != 0)
        return c < 0;
    return a < b;
}

static int zone_is_own(const char *z)
{
    return z == NULL || z[0] == '\0';
}

/* 1 when server i shares a (real) zone with any of picked[0..k). */
static int zone_taken(const ts_place_server *servers, const size_t *picked, size_t k, size_t i)
{
    const char *z = servers[i].zone;
    if (zone_is_own(z))
        return 0;
    for (size_t j = 0; j < k; j++) {
        const char *pz = servers[picked[j]].zone;
        if (!zone_is_own(pz) && strcmp(pz, z) == 0)
            return 1;
    }
    return 0;
}

static int is_picked(const size_t *picked, size_t k, size_t i)
{
    for (size_t j = 0; j < k; j++)
        if (picked[j] == i)
            return 1;
    return 0;
}

static void scorer_init(scorer *sc, const ts_chunk_id *id, const ts_place_server *servers,
                        size_t n, double *cache)
{
    sc->id = id;
    sc->servers = servers;
    sc->cache = NULL;
    if (n <= SCORE_CACHE) {
        for (size_t i = 0; i < n; i++)
            cache[i] = usable(&servers[i]) ? ts_place_score(id, &servers[i]) : 0.0;
        sc->cache = cache;
    }
}

size_t ts_place_choose(const ts_chunk_id *id, const ts_place_server *servers,
                       size_t n, size_t r, size_t *out)
{
    double cache[SCORE_CACHE];
    scorer sc;
    size_t k = 0;

    if (r == 0 || n == 0)
        return 0;
    scorer_init(&sc, id, servers, n, cache);

    /* Pass 1: best server of each not-yet-used zone, in rank order.  Pass 2:
     * fill with the best remaining servers whatever their zone. */
    for (int pass = 1; pass <= 2 && k < r; pass++) {
        while (k < r) {
            size_t best = n;
            for (size_t i = 0; i < n; i++) {
                if (!usable(&servers[i]) || is_picked(out, k, i))
                    continue;
                if (pass == 1 && zone_taken(servers, out, k, i))
                    continue;
                if (best == n || better(&sc, i, best))
                    best = i;
            }
            if (best == n)
                break;
            out[k++] = best;
        }
    }
    return k;
}

/* Heapsort of idx[0..m) into rank order: in place, O(m log m), no allocation
 * (qsort may allocate, and its comparator cannot take the scorer portably). */
static void sift_down(const scorer *sc, size_t *idx, size_t root, size_t m)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= m)
            return;
        /* The heap keeps the worst server at the root, so repeatedly moving
         * the root to the end leaves the array best first. */
        if (child + 1 < m && better(sc, idx[child], idx[child + 1]))
            child++;
        if (!better(sc, idx[root], idx[child]))
            return;
        size_t t = idx[root];
        idx[root] = idx[child];
        idx[child] = t;
        root = child;
    }
}

static void rank_sort(const scorer *sc, size_t *idx, size_t m)
{
    if (m < 2)
        return;
    for (size_t i = m / 2; i-- > 0;)
        sift_down(sc, idx, i, m);
    for (size_t end = m - 1; end > 0; end--) {
        size_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(sc, idx, 0, end);
    }
}

size_t ts_place_rank(const ts_chunk_id *id, const ts_place_server *servers,
                     size_t n, size_t *out)
{
    double cache[SCORE_CACHE];
    scorer sc;
    size_t m = 0, reps = 0;

    scorer_init(&sc, id, servers, n, cache);
    for (size_t i = 0; i < n; i++)
        if (usable(&servers[i]))
            out[m++] = i;
    rank_sort(&sc, out, m);

    /* Stable partition: the first server of each zone moves up to follow the
     * previous zone representatives; everyone else keeps rank order. */
    for (size_t i = 0; i < m; i++) {
        size_t s = out[i];
        if (zone_taken(servers, out, reps, s))
            continue;
        memmove(&out[reps + 1], &out[reps], (i - reps) * sizeof(out[0]));
        out[reps++] = s;
    }
    return m;
}
