/*
 * Unit tests for common/placement (weighted rendezvous hashing): determinism,
 * distinct servers, zones first, ineligible servers skipped, choose() equal to
 * the prefix of rank(), load proportional to weight for r = 1, the spread for
 * r = 3 (printed), and minimal movement when a server joins.
 *
 * Chunk ids come from a seeded generator so every run sees the same ids.
 */
#include <math.h>

#include "common/placement.h"
#include "common/util.h"
#include "tests/unit/tcheck.h"

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_chunk(ts_chunk_id *id)
{
    uint64_t a = rng_next(), b = rng_next();
    for (int i = 0; i < 8; i++) {
        id->b[i] = (uint8_t)(a >> (8 * i));
        id->b[8 + i] = (uint8_t)(b >> (8 * i));
    }
}

static char ids[2000][24];

static void make_servers(ts_place_server *s, size_t n, const double *weights)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "cs-%zu", i + 1);
        s[i].id = ids[i];
        s[i].zone = NULL;
        s[i].weight = weights != NULL ? weights[i] : 1.0;
        s[i].eligible = 1;
    }
    ts_place_prepare(s, n);
}

static const double w10[10] = { 1, 1, 1, 2, 2, 2, 3, 3, 4, 4 };

static void test_determinism(void)
{
    ts_place_server a[10], b[10];
    size_t oa[3], ob[3];
    ts_chunk_id id;

    make_servers(a, 10, w10);
    make_servers(b, 10, w10);
    TC_CHECK(a[3].id_hash == b[3].id_hash);
    TC_CHECK(a[3].id_hash != a[4].id_hash);
    rng_state = 1;
    for (int i = 0; i < 1000; i++) {
        rng_chunk(&id);
        size_t na = ts_place_choose(&id, a, 10, 3, oa);
        size_t nb = ts_place_choose(&id, b, 10, 3, ob);
        TC_CHECK(na == 3 && nb == 3);
        TC_CHECK(memcmp(oa, ob, sizeof(oa)) == 0);
        double s = ts_place_score(&id, &a[0]);
        TC_CHECK(s > 0 && isfinite(s));
    }
    /* Fixed value: the hash must never change between releases, or every
     * cluster would reshuffle its chunks on upgrade. */
    TC_CHECK(ts_chunk_id_from_hex("000102030405060708090a0b0c0d0e0f", &id) == 0);
    size_t n = ts_place_choose(&id, a, 10, 3, oa);
    fprintf(stderr, "  placement of 000102…0f: %s %s %s\n", a[oa[0]].id, a[oa[1]].id,
            a[oa[2]].id);
    TC_CHECK(n == 3);
    TC_CHECK_STR(a[oa[0]].id, "cs-10");
    TC_CHECK_STR(a[oa[1]].id, "cs-4");
    TC_CHECK_STR(a[oa[2]].id, "cs-1");
}

static void test_distinct_and_eligible(void)
{
    ts_place_server s[10];
    size_t out[10];
    ts_chunk_id id;

    make_servers(s, 10, w10);
    s[2].eligible = 0;
    s[9].eligible = 0;
    rng_state = 2;
    for (int i = 0; i < 2000; i++) {
        rng_chunk(&id);
        size_t n = ts_place_choose(&id, s, 10, 3, out);
        TC_CHECK(n == 3);
        TC_CHECK(out[0] != out[1] && out[0] != out[2] && out[1] != out[2]);
        for (size_t k = 0; k < n; k++)
            TC_CHECK(out[k] != 2 && out[k] != 9);
        /* Asking for more than exist returns every eligible server. */
        n = ts_place_choose(&id, s, 10, 10, out);
        TC_CHECK(n == 8);
    }
    /* A weight of zero also keeps a server out. */
    s[2].eligible = 1;
    s[2].weight = 0;
    TC_CHECK(ts_place_choose(&id, s, 10, 10, out) == 8);
    TC_CHECK(ts_place_choose(&id, s, 10, 0, out) == 0);
    TC_CHECK(ts_place_choose(&id, s, 0, 3, out) == 0);
}

static void test_zones_first(void)
{
    /* Three zones with 4, 3 and 1 servers, plus two zoneless servers. */
    static const char *const zones[10] = { "a", "a", "a", "a", "b", "b", "b", "c", NULL, "" };
    ts_place_server s[10];
    size_t out[10], rank[10];
    ts_chunk_id id;
    int used_zoneless = 0;

    make_servers(s, 10, NULL);
    for (int i = 0; i < 10; i++)
        s[i].zone = zones[i];
    rng_state = 3;
    for (int i = 0; i < 3000; i++) {
        rng_chunk(&id);
        size_t n = ts_place_choose(&id, s, 10, 3, out);
        TC_CHECK(n == 3);
        /* All three in different failure domains (zoneless = own domain). */
        for (size_t x = 0; x < 3; x++)
            for (size_t y = x + 1; y < 3; y++) {
                const char *zx = s[out[x]].zone, *zy = s[out[y]].zone;
                int own = zx == NULL || zx[0] == '\0' || zy == NULL || zy[0] == '\0';
                TC_CHECK(own || strcmp(zx, zy) != 0);
                if (own)
                    used_zoneless = 1;
            }
        /* choose(r) is the prefix of rank() for every r. */
        size_t m = ts_place_rank(&id, s, 10, rank);
        TC_CHECK(m == 10);
        for (size_t r = 1; r <= 10; r++) {
            size_t k = ts_place_choose(&id, s, 10, r, out);
            TC_CHECK(k == r);
            TC_CHECK(memcmp(out, rank, r * sizeof(out[0])) == 0);
        }
        /* rank() lists everyone exactly once. */
        int seen[10] = {0};
        for (size_t k = 0; k < m; k++)
            seen[rank[k]]++;
        for (int k = 0; k < 10; k++)
            TC_CHECK(seen[k] == 1);
    }
    TC_CHECK(used_zoneless);

    /* Fewer zones than replicas: both zones first, then a repeat. */
    ts_place_server t[4];
    make_servers(t, 4, NULL);
    t[0].zone = t[1].zone = "x";
    t[2].zone = t[3].zone = "y";
    for (int i = 0; i < 500; i++) {
        rng_chunk(&id);
        TC_CHECK(ts_place_choose(&id, t, 4, 3, out) == 3);
        TC_CHECK(strcmp(t[out[0]].zone, t[out[1]].zone) != 0);
    }
}

static void test_large_cluster_rank(void)
{
    /* Above the score cache size, scores are recomputed: same answers. */
    enum { N = 1500 };
    static ts_place_server s[N];
    static size_t rank[N];
    size_t out[5];
    ts_chunk_id id;

    make_servers(s, N, NULL);
    for (size_t i = 0; i < N; i++)
        s[i].weight = 1.0 + (double)(i % 7);
    rng_state = 4;
    for (int i = 0; i < 20; i++) {
        rng_chunk(&id);
        TC_CHECK(ts_place_rank(&id, s, N, rank) == N);
        TC_CHECK(ts_place_choose(&id, s, N, 5, out) == 5);
        TC_CHECK(memcmp(out, rank, sizeof(out)) == 0);
        for (size_t k = 1; k < N; k++)
            TC_CHECK(ts_place_score(&id, &s[rank[k - 1]]) >= ts_place_score(&id, &s[rank[k]]));
    }
}

static void test_r1_proportional(void)
{
    enum { CHUNKS = 1000000 };
    ts_place_server s[10];
    size_t out[1];
    long count[10] = {0};
    ts_chunk_id id;
    double total = 0, worst = 0;

    make_servers(s, 10, w10);
    for (int i = 0; i < 10; i++)
        total += w10[i];
    rng_state = 5;
    for (int i = 0; i < CHUNKS; i++) {
        rng_chunk(&id);
        TC_CHECK(ts_place_choose(&id, s, 10, 1, out) == 1);
        count[out[0]]++;
    }
    for (int i = 0; i < 10; i++) {
        double ideal = CHUNKS * w10[i] / total;
        double dev = fabs(count[i] - ideal) / ideal;
        worst = fmax(worst, dev);
        TC_CHECK(dev < 0.03);
    }
    fprintf(stderr, "  r=1 over %d chunks: worst deviation from weight share %.2f%%\n",
            CHUNKS, 100 * worst);
}

static void test_r3_spread(void)
{
    enum { CHUNKS = 100000 };
    ts_place_server s[10];
    size_t out[3];
    long count[10] = {0};
    ts_chunk_id id;
    double total = 0;

    make_servers(s, 10, w10);
    for (int i = 0; i < 10; i++)
        total += w10[i];
    rng_state = 6;
    for (int i = 0; i < CHUNKS; i++) {
        rng_chunk(&id);
        TC_CHECK(ts_place_choose(&id, s, 10, 3, out) == 3);
        for (int k = 0; k < 3; k++)
            count[out[k]]++;
    }
    fprintf(stderr, "  r=3 spread over %d chunks (server weight: share of replicas vs weight share):\n",
            CHUNKS);
    for (int i = 0; i < 10; i++) {
        double share = (double)count[i] / (3.0 * CHUNKS);
        fprintf(stderr, "    %s w=%.0f: %.2f%% vs %.2f%%\n", s[i].id, w10[i], 100 * share,
                100 * w10[i] / total);
        /* Not proportional (a server holds at most one replica of a chunk),
         * but heavier servers must never hold less. */
        if (i > 0 && w10[i] > w10[i - 1])
            TC_CHECK(count[i] > count[i - 1]);
    }
}

static void test_movement_on_join(void)
{
    enum { CHUNKS = 100000 };
    ts_place_server before[10], after[11];
    static const double w11[11] = { 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 2 };
    size_t ob[3], oa[3];
    ts_chunk_id id;
    long moved = 0, moved_not_to_new = 0;
    double total = 0;

    make_servers(before, 10, w10);
    make_servers(after, 11, w11);
    for (int i = 0; i < 10; i++)
        total += w10[i];
    rng_state = 7;
    for (int i = 0; i < CHUNKS; i++) {
        rng_chunk(&id);
        TC_CHECK(ts_place_choose(&id, before, 10, 3, ob) == 3);
        TC_CHECK(ts_place_choose(&id, after, 11, 3, oa) == 3);
        /* A replica moves when its server left this chunk's set. */
        for (int k = 0; k < 3; k++) {
            int kept = 0;
            for (int j = 0; j < 3; j++)
                kept |= oa[j] == ob[k];
            moved += !kept;
        }
        /* Minimal movement: every new placement is the new server. */
        for (int j = 0; j < 3; j++) {
            int was = 0;
            for (int k = 0; k < 3; k++)
                was |= oa[j] == ob[k];
            if (!was && oa[j] != 10)
                moved_not_to_new++;
        }
    }
    double frac = (double)moved / (3.0 * CHUNKS);
    double ideal = w11[10] / (total + w11[10]);
    fprintf(stderr, "  join of a weight-%.0f server to total %.0f: moved %.2f%% (ideal %.2f%%)\n",
            w11[10], total, 100 * frac, 100 * ideal);
    TC_CHECK(fabs(frac - ideal) / ideal < 0.20);
    TC_CHECK_EQ_U64(moved_not_to_new, 0);
}

int main(void)
{
    TC_RUN(test_determinism);
    TC_RUN(test_distinct_and_eligible);
    TC_RUN(test_zones_first);
    TC_RUN(test_large_cluster_rank);
    TC_RUN(test_r1_proportional);
    TC_RUN(test_r3_spread);
    TC_RUN(test_movement_on_join);
    TC_DONE("test_placement");
}
