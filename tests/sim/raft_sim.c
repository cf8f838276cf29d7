/*
 * Deterministic simulator for the Raft core (metadata/raft/raft.h).
 *
 * One seed fixes everything: group size, fault rates, and every decision of
 * the scheduler.  Time advances in units; in each unit the scheduler may
 * crash or restart servers (a crash can also strike in the middle of
 * persisting a ready), reshape the network (groups, or single one-way
 * links), propose commands, request ReadIndex reads, add or remove members
 * and transfer leadership; then every running server ticks (some skip a
 * tick: clocks drift) and the messages due are delivered in random order,
 * each possibly lost or duplicated, with random delays so they also arrive
 * out of order.  Messages travel encoded (raft_msg_encode), so the codec is
 * exercised too.  Each server has a simulated disk (hard state, log,
 * snapshot image) that survives crashes and a state machine (a running hash
 * of the commands) that does not.
 *
 * Checked at every step:
 *   - every core's own invariants (raft_check_invariants);
 *   - election safety: at most one leader per term;
 *   - log matching: an (index, term) pair, wherever persisted, always has
 *     the same command and the same term before it;
 *   - leader completeness: an entry committed in term t is in the log (or
 *     the snapshot) of every leader of a term > t;
 *   - state machine safety: all servers apply the same command at an index,
 *     and snapshots carry the same state as applying the log;
 *   - ReadIndex: a read's index is at least every commit index reached
 *     before the read was requested.
 * Then faults stop (network healed, everyone restarted, no loss) and the
 * group must elect a leader and apply a new command on every member within
 * a bounded time (liveness), and every command ever acknowledged must be
 * in the final state (committed entries are never lost).
 *
 * Usage: test_raft_sim [seeds [steps [first_seed]]]
 *   defaults 2000 seeds x 500 steps (CI); RAFT_SIM_SEEDS, RAFT_SIM_STEPS,
 *   RAFT_SIM_SEED (run one seed), RAFT_SIM_TRACE=1 (print every event; 2:
 *   every message too), RAFT_SIM_LONG=1 (100,000 seeds) and RAFT_SIM_JOBS
 *   (worker processes, default 2) override.
 * Prints the seed tally, then "test_raft_sim: 1 passed, 0 failed" (the whole
 * simulation counts as one test in the suite's total, however many seeds it
 * ran) and, for each failing seed, the command that replays it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/ts_error.h"
#include "common/util.h"
#include "metadata/raft/raft.h"

#define MAX_NODES 9
#define INITIAL_MAX 5
#define ELECTION_TICKS 10
#define HEARTBEAT_TICKS 2
/* After faults stop: a leader must commit a new command within
 * LIVENESS_BOUND ticks, and every member must have applied it within
 * CATCHUP_BOUND (members far behind catch up with small batches). */
#define LIVENESS_BOUND 600
#define CATCHUP_BOUND 6000

/* ---- per-seed world ------------------------------------------------------ */

typedef struct node {
    uint64_t id;
    int exists, up, initial, removed_seen;
    raft *r;
    /* disk */
    uint64_t d_term, d_vote;
    raft_snapshot_meta d_snap;
    uint8_t *d_blob;
    size_t d_blob_len;
    raft_entry *d_log;
    size_t d_n, d_cap;
    /* incoming snapshot (a temporary file) */
    uint8_t *in_blob;
    size_t in_len;
    uint64_t in_index;
    /* state machine (memory) */
    uint64_t sm_index, sm_hash;
    uint32_t snap_every, snap_keep;
    uint64_t seen_commit;
} node;

typedef struct net_msg {
    uint64_t at;
    int from, to;
    uint8_t *buf;
    size_t len;
} net_msg;

typedef struct lm_slot { uint64_t index, term, prev_term, hash; int used; } lm_slot;
typedef struct applied_rec { uint64_t term, data_hash, run_hash; int set; } applied_rec;
typedef struct read_rec { uint64_t ctx, min_index; int node; } read_rec;

typedef struct world {
    uint64_t seed, rng;
    int trace;
    char fail[512];
    uint64_t now;
    int n_initial;
    node nodes[MAX_NODES];
    int n_nodes;              /* ids 1..n_nodes have been used */
    net_msg *net;
    size_t n_net, cap_net;
    int link[MAX_NODES][MAX_NODES];   /* 1 = up */
    double p_loss, p_dup, p_crash, p_restart, p_part, p_heal, p_propose, p_conf,
        p_transfer, p_read, p_crash_ready;
    uint32_t max_delay;
    int faults;               /* 0 during the liveness phase */
    /* checks */
    uint64_t *leader_of;      /* by term */
    size_t n_leader_of;
    lm_slot *lm;
    size_t lm_cap, lm_used;
    applied_rec *applied;
    size_t n_applied;
    uint64_t *commit_term;    /* smallest term of a leader that committed index */
    size_t n_commit_term;
    uint64_t max_commit;
    read_rec *reads;
    size_t n_reads, cap_reads;
    uint64_t next_value, next_ctx;
    struct { uint64_t index, value; } *acked;   /* acknowledged to a "client" */
    size_t n_acked, cap_acked;
    struct { uint64_t index, term, value; int node; } *props;
    size_t n_props, cap_props;
} world;

static uint64_t rnd(world *w)
{
    uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(world *w, uint64_t n) { return n ? rnd(w) % n : 0; }
static int chance(world *w, double p) { return (double)(rnd(w) >> 11) * (1.0 / 9007199254740992.0) < p; }

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 33);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

static void trace(world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(world *w, const char *fmt, ...)
{
    if (!w->trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[t=%" PRIu64 "] ", w->now);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void failf(world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(world *w, const char *fmt, ...)
{
    if (w->fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(w->fail, sizeof(w->fail), "t=%" PRIu64 ": ", w->now);
    vsnprintf(w->fail + k, sizeof(w->fail) - (size_t)k, fmt, ap);
    va_end(ap);
    if (w->trace)
        fprintf(stderr, "FAILURE %s\n", w->fail);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    p = ts_realloc(p, c * elem);
    memset((char *)p + *cap * elem, 0, (c - *cap) * elem);
    *cap = c;
    return p;
}

/* ---- global history checks ----------------------------------------------- */

static void check_log_matching(world *w, uint64_t index, uint64_t term, uint64_t prev_term,
                               uint64_t h)
{
    if (w->lm_used * 2 >= w->lm_cap) {
        size_t oc = w->lm_cap;
        lm_slot *old = w->lm;
        w->lm_cap = oc ? oc * 2 : 1024;
        w->lm = ts_calloc(w->lm_cap, sizeof(lm_slot));
        w->lm_used = 0;
        for (size_t i = 0; i < oc; i++) {
            if (!old[i].used)
                continue;
            size_t k = mix(old[i].index, old[i].term) & (w->lm_cap - 1);
            while (w->lm[k].used)
                k = (k + 1) & (w->lm_cap - 1);
            w->lm[k] = old[i];
            w->lm_used++;
        }
        free(old);
    }
    size_t k = mix(index, term) & (w->lm_cap - 1);
    while (w->lm[k].used) {
        if (w->lm[k].index == index && w->lm[k].term == term) {
            if (w->lm[k].hash != h || w->lm[k].prev_term != prev_term)
                failf(w, "log matching: entry (%" PRIu64 ", term %" PRIu64
                      ") differs between servers", index, term);
            return;
        }
        k = (k + 1) & (w->lm_cap - 1);
    }
    w->lm[k] = (lm_slot){index, term, prev_term, h, 1};
    w->lm_used++;
}

static void check_applied(world *w, node *n, const raft_entry *e)
{
    w->applied = grow(w->applied, &w->n_applied, e->index + 1, sizeof(applied_rec));
    applied_rec *a = &w->applied[e->index];
    uint64_t dh = hash_bytes(e->data, e->len) ^ e->type;
    if (!a->set) {
        a->set = 1;
        a->term = e->term;
        a->data_hash = dh;
        a->run_hash = n->sm_hash;
    } else if (a->term != e->term || a->data_hash != dh || a->run_hash != n->sm_hash) {
        failf(w, "state machine safety: server %" PRIu64 " applied a different entry at %"
              PRIu64 " (term %" PRIu64 " vs %" PRIu64 ")", n->id, e->index, e->term, a->term);
    }
}

static void leader_complete(world *w, node *n)
{
    raft_status st;
    raft_get_status(n->r, &st);
    for (uint64_t i = st.snap_index + 1; i < w->n_commit_term; i++) {
        uint64_t ct = w->commit_term[i];
        if (ct == 0 || ct >= st.term)
            continue;
        uint64_t t = raft_term_at(n->r, i);
        if (t == 0 || (i < w->n_applied && w->applied[i].set && w->applied[i].term != t)) {
            failf(w, "leader completeness: leader %" PRIu64 " of term %" PRIu64
                  " lacks entry %" PRIu64 " committed in term %" PRIu64, n->id, st.term, i, ct);
            return;
        }
    }
}

/* Called after every input a server handled. */
static void check_node(world *w, node *n)
{
    const char *bad = raft_check_invariants(n->r);
    if (bad != NULL)
        failf(w, "server %" PRIu64 ": invariant %s", n->id, bad);
    /* A leader counts once its term is durable: until then it has sent
     * nothing and persisted nothing, and a crash erases it without a trace
     * (it may then legitimately lose that term to someone else). */
    if (raft_role(n->r) != RAFT_LEADER || n->d_term != raft_term(n->r))
        return;
    struct { uint64_t term, commit; } st = {raft_term(n->r), raft_commit_index(n->r)};
    w->leader_of = grow(w->leader_of, &w->n_leader_of, st.term + 1, sizeof(uint64_t));
    if (w->leader_of[st.term] == 0) {
        w->leader_of[st.term] = n->id;
        trace(w, "server %" PRIu64 " leads term %" PRIu64, n->id, st.term);
        leader_complete(w, n);
    } else if (w->leader_of[st.term] != n->id) {
        failf(w, "election safety: servers %" PRIu64 " and %" PRIu64 " both lead term %" PRIu64,
              w->leader_of[st.term], n->id, st.term);
    }
    if (st.commit > n->seen_commit) {
        /* Entries this leader just committed were committed in its term. */
        w->commit_term = grow(w->commit_term, &w->n_commit_term, st.commit + 1, sizeof(uint64_t));
        int newer = 0;
        for (uint64_t i = n->seen_commit + 1; i <= st.commit; i++) {
            if (w->commit_term[i] == 0 || w->commit_term[i] > st.term) {
                w->commit_term[i] = st.term;
                newer = 1;
            }
        }
        n->seen_commit = st.commit;
        if (st.commit > w->max_commit)
            w->max_commit = st.commit;
        if (newer) {
            for (int k = 0; k < w->n_nodes; k++) {
                node *o = &w->nodes[k];
                if (o->up && o != n && raft_role(o->r) == RAFT_LEADER &&
                    raft_term(o->r) > st.term)
                    leader_complete(w, o);
            }
        }
    }
}

/* ---- the simulated disk and state machine -------------------------------- */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Image: index, running hash, then filler derived from both (so that a
 * misassembled transfer is caught), long enough to need several pieces. */
static uint8_t *sm_image(uint64_t index, uint64_t hash, size_t *len)
{
    size_t n = 16 + (size_t)(index * 7 % 97);
    uint8_t *b = ts_malloc(n);
    put_u64(b, index);
    put_u64(b + 8, hash);
    for (size_t i = 16; i < n; i++)
        b[i] = (uint8_t)(mix(hash, i) >> 7);
    *len = n;
    return b;
}

static int sm_load(const uint8_t *b, size_t len, uint64_t *index, uint64_t *hash)
{
    if (len < 16)
        return -1;
    *index = get_u64(b);
    *hash = get_u64(b + 8);
    size_t want = 0;
    uint8_t *ref = sm_image(*index, *hash, &want);
    int ok = want == len && memcmp(ref, b, len) == 0;
    free(ref);
    return ok ? 0 : -1;
}

static void disk_free_log(node *n, size_t from)
{
    for (size_t i = from; i < n->d_n; i++)
        free(n->d_log[i].data);
    n->d_n = from;
}

static void disk_append(world *w, node *n, const raft_entry *e, size_t cnt)
{
    uint64_t first = n->d_snap.index + 1;
    uint64_t start = e[0].index;
    if (start < first || start > first + n->d_n) {
        failf(w, "server %" PRIu64 ": persisting entries from %" PRIu64
              " leaves a gap (disk has %" PRIu64 "..%" PRIu64 ")", n->id, start, first,
              first + n->d_n - 1);
        return;
    }
    disk_free_log(n, (size_t)(start - first));
    n->d_log = grow(n->d_log, &n->d_cap, n->d_n + cnt, sizeof(raft_entry));
    for (size_t i = 0; i < cnt; i++) {
        raft_entry *d = &n->d_log[n->d_n++];
        *d = e[i];
        d->data = NULL;
        if (e[i].len) {
            d->data = ts_malloc(e[i].len);
            memcpy(d->data, e[i].data, e[i].len);
        }
        uint64_t pt = i > 0 ? e[i - 1].term : raft_term_at(n->r, e[i].index - 1);
        check_log_matching(w, e[i].index, e[i].term, pt, hash_bytes(e[i].data, e[i].len) ^ e[i].type);
    }
}

static void node_crash(world *w, node *n)
{
    trace(w, "crash server %" PRIu64, n->id);
    raft_free(n->r);
    n->r = NULL;
    n->up = 0;
    free(n->in_blob);
    n->in_blob = NULL;
    n->in_len = 0;
}

static void node_start(world *w, node *n)
{
    raft_config cfg = {0};
    cfg.id = n->id;
    cfg.election_ticks = ELECTION_TICKS;
    cfg.heartbeat_ticks = HEARTBEAT_TICKS;
    cfg.max_inflight = 1 + (uint32_t)rnd_below(w, 8);
    cfg.max_batch_entries = 1 + (uint32_t)rnd_below(w, 16);
    cfg.snapshot_chunk = 8 + (uint32_t)rnd_below(w, 64);
    cfg.max_uncommitted = 8 + (uint32_t)rnd_below(w, 64);
    cfg.seed = rnd(w);
    raft_restore rs = {0};
    raft_conf boot = {0};
    rs.term = n->d_term;
    rs.vote = n->d_vote;
    rs.entries = n->d_log;
    rs.n_entries = n->d_n;
    n->sm_index = 0;
    n->sm_hash = 0;
    if (n->d_snap.index > 0) {
        rs.snapshot = &n->d_snap;
        if (sm_load(n->d_blob, n->d_blob_len, &n->sm_index, &n->sm_hash) != 0 ||
            n->sm_index != n->d_snap.index) {
            failf(w, "server %" PRIu64 ": snapshot image on disk is damaged", n->id);
            return;
        }
    }
    if (n->initial && n->d_snap.index == 0 && n->d_n == 0) {
        for (int i = 0; i < w->n_initial; i++) {
            boot.m[i].id = (uint64_t)i + 1;
            boot.m[i].role = RAFT_VOTER;
            snprintf(boot.m[i].addr, RAFT_ADDR_MAX, "n%d", i + 1);
        }
        boot.n = (uint32_t)w->n_initial;
        rs.bootstrap = &boot;
    }
    int rc = raft_new(&cfg, &rs, &n->r);
    if (rc != 0) {
        failf(w, "server %" PRIu64 ": raft_new failed on its own disk: %s", n->id, ts_err_name(rc));
        return;
    }
    n->up = 1;
    n->seen_commit = 0;
    trace(w, "start server %" PRIu64 " (term %" PRIu64 ", snapshot %" PRIu64 ", %zu entries)",
          n->id, n->d_term, n->d_snap.index, n->d_n);
}

static void net_send(world *w, int from, const raft_msg *m)
{
    ts_buf b = {0};
    raft_msg_encode(m, &b);
    w->net = grow(w->net, &w->cap_net, w->n_net + 1, sizeof(net_msg));
    net_msg *nm = &w->net[w->n_net++];
    nm->at = w->now + rnd_below(w, w->max_delay + 1);
    nm->from = from;
    nm->to = (int)m->to - 1;
    nm->buf = (uint8_t *)b.data;
    nm->len = b.len;
}

static void apply_entry(world *w, node *n, const raft_entry *e, uint8_t role)
{
    if (e->index != n->sm_index + 1) {
        failf(w, "server %" PRIu64 ": applied %" PRIu64 " after %" PRIu64, n->id, e->index,
              n->sm_index);
        return;
    }
    if (e->type == RAFT_ENTRY_NORMAL)
        n->sm_hash = mix(n->sm_hash, hash_bytes(e->data, e->len));
    n->sm_index = e->index;
    check_applied(w, n, e);
    if (role != RAFT_LEADER || e->type != RAFT_ENTRY_NORMAL)
        return;
    for (size_t i = 0; i < w->n_props; i++) {
        if (w->props[i].index == e->index && w->props[i].node == (int)(n - w->nodes) &&
            w->props[i].term == e->term) {
            w->acked = grow(w->acked, &w->cap_acked, w->n_acked + 1, sizeof(*w->acked));
            w->acked[w->n_acked].index = e->index;
            w->acked[w->n_acked].value = w->props[i].value;
            w->n_acked++;
            w->props[i] = w->props[--w->n_props];
            return;
        }
    }
}

/* Persists, sends and applies everything the core has ready.  A crash may
 * strike at any point of it. */
static void process_ready(world *w, node *n)
{
    while (n->up && !w->fail[0] && raft_has_ready(n->r)) {
        raft_ready rd;
        raft_get_ready(n->r, &rd);
        int crash_at = w->faults && chance(w, w->p_crash_ready) ? (int)rnd_below(w, 6) : 99;
        if (rd.snapshot_chunk != NULL) {
            const raft_snap_chunk *c = rd.snapshot_chunk;
            if (c->offset == 0) {
                free(n->in_blob);
                n->in_blob = NULL;
                n->in_len = 0;
                n->in_index = c->index;
            }
            if (c->offset != n->in_len || c->index != n->in_index) {
                failf(w, "server %" PRIu64 ": snapshot piece at %" PRIu64 " does not continue %zu",
                      n->id, c->offset, n->in_len);
                return;
            }
            n->in_blob = ts_realloc(n->in_blob, n->in_len + c->len + 1);
            if (c->len)
                memcpy(n->in_blob + n->in_len, c->data, c->len);
            n->in_len += c->len;
        }
        if (crash_at == 0) {
            node_crash(w, n);
            return;
        }
        if (rd.snapshot != NULL) {
            uint64_t idx, h;
            if (n->in_index != rd.snapshot->index || n->in_len != rd.snapshot->size ||
                sm_load(n->in_blob, n->in_len, &idx, &h) != 0 || idx != rd.snapshot->index) {
                failf(w, "server %" PRIu64 ": received snapshot %" PRIu64 " is damaged", n->id,
                      rd.snapshot->index);
                return;
            }
            free(n->d_blob);
            n->d_blob = n->in_blob;
            n->d_blob_len = n->in_len;
            n->in_blob = NULL;
            n->in_len = 0;
            n->d_snap = *rd.snapshot;
            disk_free_log(n, 0);
            n->sm_index = idx;
            n->sm_hash = h;
            if (idx < w->n_applied && w->applied[idx].set && w->applied[idx].run_hash != h)
                failf(w, "server %" PRIu64 ": snapshot %" PRIu64 " holds a different state",
                      n->id, idx);
            trace(w, "server %" PRIu64 " installed snapshot %" PRIu64, n->id, idx);
        }
        if (crash_at == 1) {
            node_crash(w, n);
            return;
        }
        if (rd.n_entries > 0)
            disk_append(w, n, rd.entries, rd.n_entries);
        if (crash_at == 2) {
            node_crash(w, n);
            return;
        }
        if (rd.hard_state_changed) {
            n->d_term = rd.term;
            n->d_vote = rd.vote;
        }
        if (crash_at == 3) {
            node_crash(w, n);
            return;
        }
        size_t n_send = crash_at == 4 ? (size_t)rnd_below(w, rd.n_msgs + 1) : rd.n_msgs;
        for (size_t i = 0; i < n_send; i++) {
            raft_msg *m = &rd.msgs[i];
            if (m->type == RAFT_MSG_SNAP) {
                if (m->snap.index != n->d_snap.index || m->offset + m->len > n->d_blob_len) {
                    failf(w, "server %" PRIu64 ": asked to send a piece of snapshot %" PRIu64
                          " it does not have", n->id, m->snap.index);
                    return;
                }
                m->data = n->d_blob + m->offset;
            }
            net_send(w, (int)(n - w->nodes), m);
        }
        if (crash_at == 4) {
            node_crash(w, n);
            return;
        }
        for (size_t i = 0; i < rd.n_committed; i++)
            apply_entry(w, n, &rd.committed[i], rd.role);
        for (size_t i = 0; i < rd.n_reads; i++) {
            for (size_t k = 0; k < w->n_reads; k++) {
                if (w->reads[k].ctx != rd.reads[i].ctx)
                    continue;
                if (rd.reads[i].index != 0 && rd.reads[i].index < w->reads[k].min_index)
                    failf(w, "ReadIndex: read %" PRIu64 " got index %" PRIu64
                          " but %" PRIu64 " was committed before it started",
                          rd.reads[i].ctx, rd.reads[i].index, w->reads[k].min_index);
                w->reads[k] = w->reads[--w->n_reads];
                break;
            }
        }
        raft_advance(n->r, &rd);
        check_node(w, n);
        /* Snapshot policy: every snap_every applied entries. */
        if (n->sm_index >= n->d_snap.index + n->snap_every) {
            size_t len;
            uint8_t *img = sm_image(n->sm_index, n->sm_hash, &len);
            raft_snapshot_meta meta;
            if (raft_compact(n->r, n->sm_index, len, n->snap_keep, &meta) != 0) {
                free(img);
                failf(w, "server %" PRIu64 ": compaction at %" PRIu64 " refused", n->id,
                      n->sm_index);
                return;
            }
            free(n->d_blob);
            n->d_blob = img;
            n->d_blob_len = len;
            uint64_t first = n->d_snap.index + 1;
            n->d_snap = meta;
            /* Drop disk entries the snapshot covers. */
            size_t drop = (size_t)TS_MIN(meta.index + 1 - first, (uint64_t)n->d_n);
            for (size_t i = 0; i < drop; i++)
                free(n->d_log[i].data);
            memmove(n->d_log, n->d_log + drop, (n->d_n - drop) * sizeof(raft_entry));
            n->d_n -= drop;
            check_node(w, n);
        }
    }
}

/* ---- scheduler ----------------------------------------------------------- */

static node *find_leader(world *w)
{
    node *best = NULL;
    uint64_t bt = 0;
    for (int i = 0; i < w->n_nodes; i++) {
        node *n = &w->nodes[i];
        if (n->up && raft_role(n->r) == RAFT_LEADER && raft_term(n->r) >= bt) {
            best = n;
            bt = raft_term(n->r);
        }
    }
    return best;
}

/* Proposes one command; the ready is processed unless `batch` (then the
 * caller processes it after more proposals: they share one persist and one
 * append per follower). */
static int propose_one(world *w, node *n, int batch);

static int propose(world *w, node *n)
{
    return propose_one(w, n, 0);
}

static int propose_one(world *w, node *n, int batch)
{
    uint8_t buf[8];
    uint64_t v = ++w->next_value;
    put_u64(buf, v);
    uint64_t idx, term;
    int rc = raft_propose(n->r, buf, sizeof(buf), &idx, &term);
    if (rc == 0) {
        w->props = grow(w->props, &w->cap_props, w->n_props + 1, sizeof(*w->props));
        w->props[w->n_props].index = idx;
        w->props[w->n_props].term = term;
        w->props[w->n_props].value = v;
        w->props[w->n_props].node = (int)(n - w->nodes);
        w->n_props++;
        trace(w, "server %" PRIu64 " proposed %" PRIu64 " at %" PRIu64, n->id, v, idx);
    }
    if (!batch)
        process_ready(w, n);
    return rc;
}

static void random_partition(world *w)
{
    int kind = (int)rnd_below(w, 3);
    if (kind == 0) {            /* groups */
        int g[MAX_NODES];
        int groups = 2 + (int)rnd_below(w, 2);
        for (int i = 0; i < MAX_NODES; i++)
            g[i] = (int)rnd_below(w, (uint64_t)groups);
        for (int i = 0; i < MAX_NODES; i++)
            for (int j = 0; j < MAX_NODES; j++)
                w->link[i][j] = g[i] == g[j];
        trace(w, "partition into %d groups", groups);
    } else if (kind == 1) {     /* isolate the leader, or one server */
        node *l = find_leader(w);
        int v = l ? (int)(l - w->nodes) : (int)rnd_below(w, (uint64_t)w->n_nodes);
        for (int j = 0; j < MAX_NODES; j++)
            w->link[v][j] = w->link[j][v] = j == v;
        trace(w, "isolate server %d", v + 1);
    } else {                    /* cut single one-way links */
        int cuts = 1 + (int)rnd_below(w, 4);
        for (int c = 0; c < cuts; c++) {
            int a = (int)rnd_below(w, (uint64_t)w->n_nodes), b = (int)rnd_below(w, (uint64_t)w->n_nodes);
            w->link[a][b] = 0;
        }
        trace(w, "cut %d one-way links", cuts);
    }
}

static void heal(world *w)
{
    for (int i = 0; i < MAX_NODES; i++)
        for (int j = 0; j < MAX_NODES; j++)
            w->link[i][j] = 1;
}

static void conf_change(world *w, node *l)
{
    raft_status st;
    raft_get_status(l->r, &st);
    uint64_t idx;
    if (chance(w, 0.5) && w->n_nodes < MAX_NODES) {
        node *n = &w->nodes[w->n_nodes];
        char addr[16];
        snprintf(addr, sizeof(addr), "n%d", w->n_nodes + 1);
        int rc = raft_propose_conf(l->r, RAFT_CONF_ADD, n->id, addr, &idx);
        trace(w, "leader %" PRIu64 " adds server %" PRIu64 ": %s", l->id, n->id, ts_err_name(rc));
        if (rc == 0) {
            w->n_nodes++;
            n->exists = 1;
            node_start(w, n);
        }
    } else if (st.conf.n > 1) {
        uint64_t victim = st.conf.m[rnd_below(w, st.conf.n)].id;
        int rc = raft_propose_conf(l->r, RAFT_CONF_REMOVE, victim, NULL, &idx);
        trace(w, "leader %" PRIu64 " removes server %" PRIu64 ": %s", l->id, victim, ts_err_name(rc));
    }
    process_ready(w, l);
}

static void dump(world *w);

static void deliver_due(world *w)
{
    /* Pick due messages in random order until none is left.  A healthy
     * exchange settles quickly; an endless one within a single time unit is
     * a livelock. */
    for (int rounds = 0;; rounds++) {
        if (rounds > 100000) {
            failf(w, "livelock: messages keep flowing without time passing");
            dump(w);
            return;
        }
        size_t due = 0;
        for (size_t i = 0; i < w->n_net; i++)
            due += w->net[i].at <= w->now;
        if (due == 0 || w->fail[0])
            return;
        size_t pick = rnd_below(w, due), k = 0, i;
        for (i = 0; i < w->n_net; i++) {
            if (w->net[i].at <= w->now && k++ == pick)
                break;
        }
        net_msg m = w->net[i];
        w->net[i] = w->net[--w->n_net];
        node *to = &w->nodes[m.to];
        int lost = !w->link[m.from][m.to] || !to->up || (w->faults && chance(w, w->p_loss));
        if (!lost && w->faults && chance(w, w->p_dup)) {
            w->net = grow(w->net, &w->cap_net, w->n_net + 1, sizeof(net_msg));
            net_msg *d = &w->net[w->n_net++];
            *d = m;
            d->at = w->now + 1 + rnd_below(w, w->max_delay + 1);
            d->buf = ts_malloc(m.len);
            memcpy(d->buf, m.buf, m.len);
        }
        if (!lost) {
            raft_msg rm;
            if (raft_msg_decode(m.buf, m.len, &rm) != 0) {
                failf(w, "message from %d does not decode", m.from + 1);
            } else {
                if (w->trace > 1)
                    trace(w, "%s %" PRIu64 "->%" PRIu64 " term %" PRIu64 " index %" PRIu64
                          " log_term %" PRIu64 " commit %" PRIu64 " n %zu reject %d hint %"
                          PRIu64 " offset %" PRIu64, raft_msg_type_name(rm.type), rm.from,
                          rm.to, rm.term, rm.index, rm.log_term, rm.commit, rm.n_entries,
                          rm.reject, rm.hint, rm.offset);
                int rc = raft_step(to->r, &rm);
                if (rc != 0)
                    failf(w, "server %" PRIu64 " rejected a %s: %s", to->id,
                          raft_msg_type_name(rm.type), ts_err_name(rc));
                raft_msg_release(&rm);
                check_node(w, to);
                process_ready(w, to);
            }
        }
        free(m.buf);
    }
}

static void tick_all(world *w, double p_skip)
{
    for (int i = 0; i < w->n_nodes && !w->fail[0]; i++) {
        node *n = &w->nodes[i];
        if (!n->up || chance(w, p_skip))
            continue;
        raft_tick(n->r);
        check_node(w, n);
        process_ready(w, n);
    }
}

static void fault_step(world *w)
{
    for (int i = 0; i < w->n_nodes; i++) {
        node *n = &w->nodes[i];
        if (!n->exists)
            continue;
        if (n->up && chance(w, w->p_crash))
            node_crash(w, n);
        else if (!n->up && chance(w, w->p_restart))
            node_start(w, n);
    }
    if (chance(w, w->p_part))
        random_partition(w);
    if (chance(w, w->p_heal)) {
        trace(w, "heal");
        heal(w);
    }
    node *l = find_leader(w);
    if (l != NULL && chance(w, w->p_propose)) {
        int burst = 1 + (int)rnd_below(w, 4);   /* several proposals share a ready */
        for (int b = 0; b < burst; b++)
            propose_one(w, l, 1);
        process_ready(w, l);
    }
    l = find_leader(w);
    if (l != NULL && chance(w, w->p_read)) {
        uint64_t ctx = ++w->next_ctx;
        if (raft_read_index(l->r, ctx) == 0) {
            w->reads = grow(w->reads, &w->cap_reads, w->n_reads + 1, sizeof(read_rec));
            w->reads[w->n_reads++] = (read_rec){ctx, w->max_commit, (int)(l - w->nodes)};
            process_ready(w, l);
        }
    }
    l = find_leader(w);
    if (l != NULL && chance(w, w->p_conf))
        conf_change(w, l);
    l = find_leader(w);
    if (l != NULL && chance(w, w->p_transfer)) {
        raft_status st;
        raft_get_status(l->r, &st);
        uint64_t to = st.conf.m[rnd_below(w, st.conf.n)].id;
        int rc = raft_transfer(l->r, to);
        trace(w, "leader %" PRIu64 " transfers to %" PRIu64 ": %s", l->id, to, ts_err_name(rc));
        process_ready(w, l);
    }
}

static void dump(world *w)
{
    if (!w->trace)
        return;
    for (int i = 0; i < w->n_nodes; i++) {
        node *n = &w->nodes[i];
        if (!n->up) {
            fprintf(stderr, "  server %" PRIu64 ": down\n", n->id);
            continue;
        }
        raft_status st;
        raft_get_status(n->r, &st);
        fprintf(stderr, "  server %" PRIu64 ": %s term %" PRIu64 " leader %" PRIu64
                " commit %" PRIu64 " applied %" PRIu64 " last %" PRIu64 " snap %" PRIu64
                " sm %" PRIu64 " conf", n->id, raft_role_name(st.role), st.term, st.leader,
                st.commit, st.applied, st.last_index, st.snap_index, n->sm_index);
        for (uint32_t k = 0; k < st.conf.n; k++)
            fprintf(stderr, " %" PRIu64 "%s", st.conf.m[k].id,
                    st.conf.m[k].role == RAFT_LEARNER ? "L" : "");
        for (uint32_t k = 0; k < st.conf.n && st.role == RAFT_LEADER; k++)
            fprintf(stderr, " [%" PRIu64 " m%" PRIu64 " n%" PRIu64 " s%u]", st.pr[k].id,
                    st.pr[k].match, st.pr[k].next, st.pr[k].state);
        fputc('\n', stderr);
    }
}

/* 0: no leader has applied the probe yet; 1: it has, but not every member
 * of the leader's configuration; 2: everyone has. */
static int liveness_state(world *w, uint64_t probe_index)
{
    node *l = find_leader(w);
    if (l == NULL || probe_index == 0)
        return 0;
    raft_status st;
    raft_get_status(l->r, &st);
    if (st.applied < probe_index || raft_term_at(l->r, probe_index) != st.term)
        return 0;
    for (uint32_t i = 0; i < st.conf.n; i++) {
        node *n = &w->nodes[st.conf.m[i].id - 1];
        if (!n->up || n->sm_index < probe_index)
            return 1;
    }
    return 2;
}

static void world_free(world *w)
{
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = &w->nodes[i];
        raft_free(n->r);
        disk_free_log(n, 0);
        free(n->d_log);
        free(n->d_blob);
        free(n->in_blob);
    }
    for (size_t i = 0; i < w->n_net; i++)
        free(w->net[i].buf);
    free(w->net);
    free(w->leader_of);
    free(w->lm);
    free(w->applied);
    free(w->commit_term);
    free(w->reads);
    free(w->acked);
    free(w->props);
}

/* Runs one seed; returns 0 or -1 with w->fail set. */
static int run_seed(world *w, uint64_t seed, uint64_t steps, int tr)
{
    memset(w, 0, sizeof(*w));
    w->seed = seed;
    w->rng = seed * 0x2545F4914F6CDD1Dull + 1;
    w->trace = tr;
    uint64_t k = rnd_below(w, 10);
    w->n_initial = k == 0 ? 1 : k < 6 ? 3 : 5;
    w->p_loss = (double)rnd_below(w, 20) / 100.0;
    w->p_dup = (double)rnd_below(w, 10) / 100.0;
    w->max_delay = (uint32_t)rnd_below(w, 5);
    w->p_crash = (double)rnd_below(w, 15) / 1000.0;
    w->p_restart = 0.05 + (double)rnd_below(w, 20) / 100.0;
    w->p_crash_ready = (double)rnd_below(w, 5) / 1000.0;
    w->p_part = (double)rnd_below(w, 30) / 1000.0;
    w->p_heal = 0.02 + (double)rnd_below(w, 10) / 100.0;
    w->p_propose = 0.2 + (double)rnd_below(w, 60) / 100.0;
    w->p_conf = (double)rnd_below(w, 20) / 1000.0;
    w->p_transfer = (double)rnd_below(w, 10) / 1000.0;
    w->p_read = (double)rnd_below(w, 30) / 100.0;
    w->faults = 1;
    heal(w);
    w->n_nodes = w->n_initial;
    for (int i = 0; i < MAX_NODES; i++) {
        node *n = &w->nodes[i];
        n->id = (uint64_t)i + 1;
        n->snap_every = 5 + (uint32_t)rnd_below(w, 40);
        n->snap_keep = (uint32_t)rnd_below(w, 6);
    }
    trace(w, "seed %" PRIu64 ": %d servers, loss %.2f dup %.2f delay %u", seed, w->n_initial,
          w->p_loss, w->p_dup, w->max_delay);
    for (int i = 0; i < w->n_initial; i++) {
        w->nodes[i].exists = 1;
        w->nodes[i].initial = 1;
        node_start(w, &w->nodes[i]);
    }
    for (w->now = 1; w->now <= steps && !w->fail[0]; w->now++) {
        fault_step(w);
        if (w->fail[0])
            break;
        tick_all(w, 0.1);
        deliver_due(w);
    }
    /* Faults stop: heal, restart everyone, no more loss. */
    w->faults = 0;
    heal(w);
    for (int i = 0; i < w->n_nodes && !w->fail[0]; i++)
        if (w->nodes[i].exists && !w->nodes[i].up)
            node_start(w, &w->nodes[i]);
    uint64_t start = w->now, probe = 0;
    node *probe_node = NULL;
    int ls;
    while (!w->fail[0] && (ls = liveness_state(w, probe)) != 2) {
        if (ls == 0 && w->now - start > LIVENESS_BOUND) {
            failf(w, "liveness: no leader committed a command within %d ticks after faults "
                  "stopped", LIVENESS_BOUND);
            dump(w);
            break;
        }
        if (w->now - start > CATCHUP_BOUND) {
            failf(w, "liveness: members did not catch up within %d ticks after faults "
                  "stopped", CATCHUP_BOUND);
            dump(w);
            break;
        }
        node *l = find_leader(w);
        if (l != NULL) {
            raft_status st;
            raft_get_status(l->r, &st);
            /* (Re)propose until the probe is in the current leader's log
             * with its term. */
            if (probe_node != l || probe == 0 || raft_term_at(l->r, probe) != st.term) {
                if (propose(w, l) == 0 && l->up) {
                    raft_get_status(l->r, &st);
                    probe = st.last_index;
                    probe_node = l;
                }
            }
        }
        tick_all(w, 0.0);
        deliver_due(w);
        w->now++;
    }
    /* Every acknowledged command is in the final state. */
    for (size_t i = 0; i < w->n_acked && !w->fail[0]; i++) {
        uint64_t idx = w->acked[i].index;
        uint8_t buf[8];
        put_u64(buf, w->acked[i].value);
        if (idx >= w->n_applied || !w->applied[idx].set ||
            w->applied[idx].data_hash != (hash_bytes(buf, 8) ^ RAFT_ENTRY_NORMAL))
            failf(w, "lost: acknowledged command %" PRIu64 " at index %" PRIu64
                  " is not what was applied there", w->acked[i].value, idx);
    }
    node *l = find_leader(w);
    if (l != NULL && !w->fail[0]) {
        raft_status st;
        raft_get_status(l->r, &st);
        for (size_t i = 0; i < w->n_acked; i++)
            if (w->acked[i].index > st.applied)
                failf(w, "lost: acknowledged index %" PRIu64 " beyond the final applied %" PRIu64,
                      w->acked[i].index, st.applied);
    }
    return w->fail[0] ? -1 : 0;
}

typedef struct tally { uint64_t passed, failed, acked, terms; } tally;

/* Runs seeds first + k, first + k + jobs, ... */
static void run_share(uint64_t first, uint64_t seeds, uint64_t steps, int tr, int k, int jobs,
                      const char *argv0, tally *t)
{
    world *w = ts_calloc(1, sizeof(*w));
    memset(t, 0, sizeof(*t));
    for (uint64_t s = first + (uint64_t)k; s < first + seeds; s += (uint64_t)jobs) {
        if (run_seed(w, s, steps, tr) == 0) {
            t->passed++;
        } else {
            t->failed++;
            fprintf(stderr, "FAIL seed %" PRIu64 ": %s\n  replay: RAFT_SIM_SEED=%" PRIu64
                    " RAFT_SIM_STEPS=%" PRIu64 " RAFT_SIM_TRACE=1 %s\n", s, w->fail, s, steps,
                    argv0);
        }
        t->acked += w->n_acked;
        t->terms += w->n_leader_of;
        world_free(w);
    }
    free(w);
}

int main(int argc, char **argv)
{
    uint64_t seeds = 2000, steps = 500, first = 1;
    int jobs = 2;
    const char *e;
    if ((e = getenv("RAFT_SIM_LONG")) != NULL && atoi(e) != 0)
        seeds = 100000;
    if ((e = getenv("RAFT_SIM_SEEDS")) != NULL)
        seeds = strtoull(e, NULL, 10);
    if ((e = getenv("RAFT_SIM_STEPS")) != NULL)
        steps = strtoull(e, NULL, 10);
    if ((e = getenv("RAFT_SIM_JOBS")) != NULL && atoi(e) > 0)
        jobs = atoi(e);
    if (argc > 1)
        seeds = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        steps = strtoull(argv[2], NULL, 10);
    if (argc > 3)
        first = strtoull(argv[3], NULL, 10);
    int tr = (e = getenv("RAFT_SIM_TRACE")) != NULL ? atoi(e) : 0;   /* 2: messages too */
    if ((e = getenv("RAFT_SIM_SEED")) != NULL) {
        first = strtoull(e, NULL, 10);
        seeds = 1;
    }
    if (seeds < 2 || tr)
        jobs = 1;
    /* Seeds are independent: workers (one per core) each run a share and
     * report their tally through a pipe. */
    tally sum = {0};
    int fds[64][2];
    pid_t pids[64];
    if (jobs > 64)
        jobs = 64;
    for (int k = 1; k < jobs; k++) {
        if (pipe(fds[k]) != 0 || (pids[k] = fork()) < 0) {
            perror("test_raft_sim: pipe/fork");
            return 2;
        }
        if (pids[k] == 0) {
            tally t;
            close(fds[k][0]);
            run_share(first, seeds, steps, tr, k, jobs, argv[0], &t);
            ssize_t wr = write(fds[k][1], &t, sizeof(t));
            _exit(wr == (ssize_t)sizeof(t) ? 0 : 3);
        }
        close(fds[k][1]);
    }
    run_share(first, seeds, steps, tr, 0, jobs, argv[0], &sum);
    for (int k = 1; k < jobs; k++) {
        tally t;
        int status = 0;
        ssize_t rd = read(fds[k][0], &t, sizeof(t));
        close(fds[k][0]);
        if (waitpid(pids[k], &status, 0) < 0 || rd != (ssize_t)sizeof(t) ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "FAIL worker %d died (its seeds count as one failure)\n", k);
            sum.failed++;
            continue;
        }
        sum.passed += t.passed;
        sum.failed += t.failed;
        sum.acked += t.acked;
        sum.terms += t.terms;
    }
    fprintf(stderr, "%" PRIu64 " seeds x %" PRIu64 " steps (%d workers): %" PRIu64
            " commands acknowledged, %" PRIu64 " terms\n", seeds, steps, jobs, sum.acked,
            sum.terms);
    printf("seeds: %" PRIu64 " passed, %" PRIu64 " failed\n", sum.passed, sum.failed);
    printf("test_raft_sim: %d passed, %d failed\n", sum.failed ? 0 : 1, sum.failed ? 1 : 0);
    return sum.failed ? 1 : 0;
}
