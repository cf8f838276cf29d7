/*
 * The Raft consensus core (see raft.h for the contract and the driving loop).
 *
 * Roles of one server:
 *
 *                 election timeout (voter only)
 *     FOLLOWER ---------------------------------> PRECANDIDATE
 *       ^  ^ ^                                    |   |
 *       |  | |   majority of pre-votes rejected   |   | majority of pre-votes
 *       |  | +------------------------------------+   | granted (term + 1)
 *       |  |                                          v
 *       |  |   votes rejected / higher term     CANDIDATE <-- TIMEOUT_NOW
 *       |  +--------------------------------------+   |       (transfer)
 *       |                                             | majority of votes
 *       |  higher term, lost check-quorum,            v
 *       +-- removed from the configuration ------- LEADER
 *
 * Pre-vote: a would-be candidate first asks "would you vote for me at
 * term + 1?" without changing any term, so a server cut off by a partition
 * cannot disrupt the group with ever-higher terms when it comes back.
 * Leader stickiness: a server that heard from a leader less than an
 * election timeout ago ignores (pre-)vote requests, unless they come from a
 * leadership transfer.  Check-quorum: a leader that did not hear from a
 * majority during an election timeout steps down, so a minority side of a
 * partition stops believing it leads (and its ReadIndex rounds fail).
 *
 * Log indexes held in memory: every entry after the latest snapshot, plus
 * `keep` trailing entries the caller asked to keep (raft_compact):
 *
 *     first-1 (term prev_term)  first ....... applied .. commit .. stable .. last
 *                               |<-------- ents[0 .. n) ------------------------>|
 *                                                              unstable ^ (to persist)
 *
 * Invariants (checked by raft_check_invariants, raft_inspect.c, after every
 * step in tests):
 *   I1  applied <= commit <= last
 *   I2  first - 1 <= snap.index <= applied
 *   I3  unstable <= stable + 1, first <= unstable, stable <= last
 *   I4  ents[i].index == first + i; terms never decrease along the log and
 *       never exceed the current term; prev_term <= term of ents[0]
 *   I5  leader: vote == id == leader; candidate: vote == id
 *   I6  leader: for every member, match < next <= last + 1
 *   I7  leader: pending_conf_index <= last
 *   I8  conf is the configuration of the latest CONF entry in the log
 *       (conf_index), or the snapshot's when there is none after it
 *
 * Ownership: the core owns its log entries (and their data), the outgoing
 * messages (each with its own copy of the entries it carries) and the
 * incoming snapshot piece.  The caller owns what it passes in.
 */
#include "metadata/raft/raft_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/ts_error.h"
#include "common/util.h"

/* ---- small helpers ------------------------------------------------------- */

static uint64_t rng_next(raft *r)
{
    /* splitmix64: tiny, seedable, good enough for timeouts. */
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void reset_rand_timeout(raft *r)
{
    r->rand_timeout = r->cfg.election_ticks +
                      (uint32_t)(rng_next(r) % r->cfg.election_ticks);
}


uint64_t raft_term_at(const raft *r, uint64_t i)
{
    if (i == 0)
        return 0;
    if (i + 1 == r->first)
        return r->prev_term;
    if (i >= r->first && i <= last_index(r))
        return r->ents[i - r->first].term;
    if (i == r->snap.index)
        return r->snap.term;
    return 0;
}

static const raft_entry *entry_at(const raft *r, uint64_t i)
{
    return (i >= r->first && i <= last_index(r)) ? &r->ents[i - r->first] : NULL;
}

const raft_member *raft_conf_find(const raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->m[i].id == id)
            return &c->m[i];
    return NULL;
}

uint32_t raft_conf_voters(const raft_conf *c)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < c->n; i++)
        v += c->m[i].role == RAFT_VOTER;
    return v;
}

static int voter_in(const raft_conf *c, uint64_t id);

static int is_voter(const raft *r, uint64_t id)
{
    return voter_in(&r->conf, id);
}

static uint32_t quorum(const raft *r) { return raft_conf_voters(&r->conf) / 2 + 1; }

static progress *pr_of(raft *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->conf.n; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void free_entries(raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].data);
}

/* Copies src into dst (data duplicated).  0 or TS_ENOMEM. */
static int copy_entry(raft_entry *dst, const raft_entry *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len > 0) {
        dst->data = malloc(src->len);
        if (dst->data == NULL)
            return TS_ENOMEM;
        memcpy(dst->data, src->data, src->len);
    }
    return 0;
}

/* ---- the in-memory log --------------------------------------------------- */

static int log_reserve(raft *r, size_t extra)
{
    if (r->n + extra <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 64;
    while (cap < r->n + extra)
        cap *= 2;
    raft_entry *e = realloc(r->ents, cap * sizeof(*e));
    if (e == NULL)
        return TS_ENOMEM;
    r->ents = e;
    r->cap = cap;
    return 0;
}

/* Appends a copy of e (e->index must be last + 1). */
static int log_append(raft *r, const raft_entry *e)
{
    int rc = log_reserve(r, 1);
    if (rc != 0)
        return rc;
    rc = copy_entry(&r->ents[r->n], e);
    if (rc != 0)
        return rc;
    r->n++;
    return 0;
}

/* Drops entries >= i (a conflicting suffix). */
static void log_truncate(raft *r, uint64_t i)
{
    if (i > last_index(r))
        return;
    size_t keep = (size_t)(i - r->first);
    free_entries(r->ents + keep, r->n - keep);
    r->n = keep;
    if (r->unstable > i)
        r->unstable = i;
    if (r->stable >= i)
        r->stable = i - 1;
}

/* Drops entries <= i (covered by a snapshot). */
static void log_drop_prefix(raft *r, uint64_t i)
{
    if (i < r->first)
        return;
    uint64_t t = raft_term_at(r, i);
    size_t drop = (size_t)(i - r->first + 1);
    free_entries(r->ents, drop);
    memmove(r->ents, r->ents + drop, (r->n - drop) * sizeof(*r->ents));
    r->n -= drop;
    r->first = i + 1;
    r->prev_term = t;
}

/* Empties the log so that it continues after (index, term). */
static void log_reset(raft *r, uint64_t index, uint64_t term)
{
    free_entries(r->ents, r->n);
    r->n = 0;
    r->first = index + 1;
    r->prev_term = term;
    r->stable = index;
    r->unstable = index + 1;
}

/* ---- configuration ------------------------------------------------------- */

/* The configuration in force at index: the latest CONF entry <= index, else
 * the snapshot's.  A CONF entry that does not decode cannot have been
 * written by a core (they are encoded by raft_conf_encode), so it is
 * skipped. */
void raft_conf_at(const raft *r, uint64_t index, raft_conf *out, uint64_t *at)
{
    uint64_t lo = r->first;
    for (uint64_t i = TS_MIN(index, last_index(r)); i >= lo && i > 0; i--) {
        const raft_entry *e = entry_at(r, i);
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, out) == 0) {
            if (at)
                *at = i;
            return;
        }
    }
    *out = r->snap.conf;
    if (at)
        *at = r->snap.index;
}

static void init_progress(raft *r, progress *p, uint64_t id)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->next = last_index(r) + 1;
    p->state = PR_PROBE;
    p->active = 1;
}

/* Sets the configuration, keeping what is known of members that stay. */
static void set_conf(raft *r, const raft_conf *c, uint64_t at)
{
    progress old[RAFT_MAX_MEMBERS];
    uint32_t n_old = r->conf.n;
    memcpy(old, r->prs, sizeof(old));
    r->conf = *c;
    r->conf_index = at;
    for (uint32_t i = 0; i < c->n; i++) {
        uint32_t j;
        for (j = 0; j < n_old; j++)
            if (old[j].id == c->m[i].id)
                break;
        if (j < n_old)
            r->prs[i] = old[j];
        else
            init_progress(r, &r->prs[i], c->m[i].id);
    }
}

static void refresh_conf(raft *r)
{
    raft_conf c;
    uint64_t at = 0;
    raft_conf_at(r, last_index(r), &c, &at);
    if (at != r->conf_index || memcmp(&c, &r->conf, sizeof(c)) != 0)
        set_conf(r, &c, at);
}

/* ---- outgoing messages --------------------------------------------------- */

/* Queues m (entries are copied).  On allocation failure the message is
 * dropped: the protocol already tolerates lost messages. */
static void send_msg(raft *r, raft_msg *m, const raft_entry *ents, size_t n_ents)
{
    m->from = r->id;
    if (m->term == 0)
        m->term = r->term;
    if (r->n_msgs == r->cap_msgs) {
        size_t cap = r->cap_msgs ? r->cap_msgs * 2 : 16;
        raft_msg *nm = realloc(r->msgs, cap * sizeof(*nm));
        if (nm == NULL)
            return;
        r->msgs = nm;
        r->cap_msgs = cap;
    }
    m->entries = NULL;
    m->n_entries = 0;
    if (n_ents > 0) {
        m->entries = calloc(n_ents, sizeof(raft_entry));
        if (m->entries == NULL)
            return;
        for (size_t i = 0; i < n_ents; i++) {
            if (copy_entry(&m->entries[i], &ents[i]) != 0) {
                free_entries(m->entries, i);
                free(m->entries);
                return;
            }
        }
        m->n_entries = n_ents;
    }
    r->msgs[r->n_msgs++] = *m;
}

static void release_msgs(raft *r)
{
    for (size_t i = 0; i < r->n_msgs; i++) {
        free_entries(r->msgs[i].entries, r->msgs[i].n_entries);
        free(r->msgs[i].entries);
    }
    r->n_msgs = 0;
}

/* ---- reads --------------------------------------------------------------- */

static void read_out(raft *r, uint64_t ctx, uint64_t index)
{
    if (r->n_ro == r->cap_ro) {
        size_t cap = r->cap_ro ? r->cap_ro * 2 : 16;
        raft_read *n = realloc(r->ro, cap * sizeof(*n));
        if (n == NULL)
            return;     /* the caller times the read out */
        r->ro = n;
        r->cap_ro = cap;
    }
    r->ro[r->n_ro].ctx = ctx;
    r->ro[r->n_ro].index = index;
    r->n_ro++;
}

static void fail_reads(raft *r)
{
    for (size_t i = 0; i < r->n_rp; i++)
        read_out(r, r->rp[i].ctx, 0);
    r->n_rp = 0;
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The value v such that a majority of voters have a value >= v. */
static uint64_t quorum_value(raft *r, uint64_t self_value, int use_match)
{
    uint64_t v[RAFT_MAX_MEMBERS];
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        if (r->conf.m[i].role != RAFT_VOTER)
            continue;
        if (r->conf.m[i].id == r->id)
            v[k++] = self_value;
        else
            v[k++] = use_match ? r->prs[i].match : r->prs[i].acked_seq;
    }
    if (k == 0)
        return 0;
    qsort(v, k, sizeof(v[0]), cmp_u64_desc);
    return v[k / 2];
}

/* Releases the reads whose round a majority has acknowledged. */
static void release_reads(raft *r)
{
    if (r->role != RAFT_LEADER || r->n_rp == 0)
        return;
    uint64_t q = quorum_value(r, r->read_seq, 0);
    size_t k = 0;
    while (k < r->n_rp && r->rp[k].seq != 0 && r->rp[k].seq <= q) {
        read_out(r, r->rp[k].ctx, r->rp[k].index);
        k++;
    }
    memmove(r->rp, r->rp + k, (r->n_rp - k) * sizeof(*r->rp));
    r->n_rp -= k;
}

/* ---- leader: replication ------------------------------------------------- */

static void bcast_heartbeat(raft *r);

static int pr_paused(const raft *r, const progress *p)
{
    switch (p->state) {
    case PR_PROBE: return p->probe_sent;
    case PR_REPLICATE: return p->in_count >= r->cfg.max_inflight;
    default: return 1;
    }
}

static void pr_become_probe(raft *r, progress *p, uint64_t next)
{
    p->state = PR_PROBE;
    p->next = TS_MAX(next, p->match + 1);
    p->probe_sent = 0;
    p->in_count = p->in_start = 0;
}

static void pr_become_replicate(progress *p)
{
    p->state = PR_REPLICATE;
    p->next = p->match + 1;
    p->in_count = p->in_start = 0;
}

static void pr_free_inflight(raft *r, progress *p, uint64_t upto)
{
    while (p->in_count > 0 && p->inflight[p->in_start] <= upto) {
        p->in_start = (p->in_start + 1) % r->cfg.max_inflight;
        p->in_count--;
    }
}

/* Sends the piece of the current snapshot at p->snap_offset. */
static void send_snap_piece(raft *r, progress *p)
{
    if (r->snap.index == 0)
        return;
    if (p->state != PR_SNAPSHOT || p->snap_index != r->snap.index) {
        p->state = PR_SNAPSHOT;
        p->snap_index = r->snap.index;
        p->snap_offset = 0;
        p->in_count = p->in_start = 0;
    }
    uint64_t left = r->snap.size - TS_MIN(p->snap_offset, r->snap.size);
    raft_msg m = {0};
    m.type = RAFT_MSG_SNAP;
    m.to = p->id;
    m.snap = r->snap;
    m.offset = p->snap_offset;
    m.len = (size_t)TS_MIN(left, (uint64_t)r->cfg.snapshot_chunk);
    m.flags = m.len == left ? RAFT_FLAG_DONE : 0;
    p->snap_waiting = 1;
    send_msg(r, &m, NULL, 0);
}

/* Sends p the next batch of entries (or an empty append carrying the commit
 * index when send_empty).  Returns 1 when something was sent. */
static int send_append(raft *r, progress *p, int send_empty)
{
    if (pr_paused(r, p))
        return 0;
    uint64_t prev = p->next - 1;
    if (p->next < r->first) {   /* compacted away: only a snapshot helps */
        send_snap_piece(r, p);
        return 1;
    }
    uint64_t last = last_index(r);
    size_t cnt = 0;
    uint64_t bytes = 0;
    while (p->next + cnt <= last && cnt < r->cfg.max_batch_entries) {
        const raft_entry *e = entry_at(r, p->next + cnt);
        if (cnt > 0 && bytes + e->len > r->cfg.max_batch_bytes)
            break;
        bytes += e->len;
        cnt++;
    }
    if (cnt == 0 && !send_empty)
        return 0;
    raft_msg m = {0};
    m.type = RAFT_MSG_APPEND;
    m.to = p->id;
    m.index = prev;
    m.log_term = raft_term_at(r, prev);
    m.commit = r->commit;
    send_msg(r, &m, cnt ? entry_at(r, p->next) : NULL, cnt);
    if (p->state == PR_REPLICATE) {
        if (cnt > 0) {
            p->next += cnt;
            uint32_t slot = (p->in_start + p->in_count) % r->cfg.max_inflight;
            p->inflight[slot] = p->next - 1;
            p->in_count++;
        }
    } else {
        p->probe_sent = 1;
    }
    return 1;
}

/* Sends p everything the window allows; the first message goes out even
 * if empty when send_empty (it carries the commit index, or makes a
 * follower that lost appends reject, which restarts probing). */
static void send_append_all(raft *r, progress *p, int send_empty)
{
    while (send_append(r, p, send_empty) && p->state == PR_REPLICATE &&
           p->next <= last_index(r))
        send_empty = 0;
}

static void bcast_append(raft *r)
{
    for (uint32_t i = 0; i < r->conf.n; i++)
        if (r->prs[i].id != r->id)
            send_append_all(r, &r->prs[i], 1);
}

static void send_timeout_now(raft *r, uint64_t to)
{
    raft_msg m = {0};
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.to = to;
    send_msg(r, &m, NULL, 0);
}

static int append_local(raft *r, uint8_t type, const void *data, size_t len, uint64_t *index);
static void become_follower(raft *r, uint64_t term, uint64_t leader);

/* The configuration change that promotes a caught-up learner. */
static void maybe_promote(raft *r, progress *p)
{
    const raft_member *m = raft_conf_find(&r->conf, p->id);
    if (m == NULL || m->role != RAFT_LEARNER || p->match < r->commit ||
        r->pending_conf_index > r->commit || r->transfer_target != 0)
        return;
    raft_conf c = r->conf;
    for (uint32_t i = 0; i < c.n; i++)
        if (c.m[i].id == p->id)
            c.m[i].role = RAFT_VOTER;
    ts_buf b = {0};
    raft_conf_encode(&c, &b);
    uint64_t idx;
    if (append_local(r, RAFT_ENTRY_CONF, b.data, b.len, &idx) == 0)
        bcast_append(r);
    ts_buf_free(&b);
}

/* Advances the commit index if a majority of voters stores an entry of the
 * current term beyond it.  Returns 1 when it moved.
 *
 * The new index is not broadcast on its own: followers learn it from the
 * next append (under load, the very next round) or heartbeat (within
 * heartbeat_ticks when idle).  Only the leader answers clients, so nothing
 * waits for a follower to apply, and an empty append to every follower
 * after every commit cost each server of the group one more request, a
 * driver round and several thread hand-offs per write -- about a third of
 * the messages of a single writer's create. */
static int maybe_commit(raft *r)
{
    uint64_t q = quorum_value(r, r->stable, 1);
    if (q <= r->commit || raft_term_at(r, q) != r->term)
        return 0;
    int first_in_term = raft_term_at(r, r->commit) != r->term;
    r->commit = q;
    if (first_in_term) {
        /* Reads queued before the leader committed in its term can now be
         * pinned to this commit index. */
        int any = 0;
        for (size_t i = 0; i < r->n_rp; i++) {
            if (r->rp[i].seq == 0) {
                r->rp[i].index = r->commit;
                r->rp[i].seq = r->read_seq + 1;
                any = 1;
            }
        }
        if (any) {
            r->read_seq++;
            bcast_heartbeat(r);
            release_reads(r);
        }
    }
    /* A leader removed from the voters steps down once that is committed,
     * handing over to the most up-to-date voter. */
    if (!is_voter(r, r->id) && r->commit >= r->conf_index) {
        uint64_t best = 0, best_match = 0;
        for (uint32_t i = 0; i < r->conf.n; i++) {
            if (r->conf.m[i].role == RAFT_VOTER && r->prs[i].match >= best_match) {
                best = r->prs[i].id;
                best_match = r->prs[i].match;
            }
        }
        bcast_append(r);
        if (best != 0)
            send_timeout_now(r, best);
        become_follower(r, r->term, 0);
    }
    return 1;
}

static void bcast_heartbeat(raft *r)
{
    for (uint32_t i = 0; i < r->conf.n; i++) {
        progress *p = &r->prs[i];
        if (p->id == r->id)
            continue;
        raft_msg m = {0};
        m.type = RAFT_MSG_HEARTBEAT;
        m.to = p->id;
        m.commit = TS_MIN(p->match, r->commit);
        m.ctx = r->read_seq;
        send_msg(r, &m, NULL, 0);
    }
}

/* Appends an entry of the current term to the leader's log. */
static int append_local(raft *r, uint8_t type, const void *data, size_t len, uint64_t *index)
{
    raft_entry e = {0};
    e.term = r->term;
    e.index = last_index(r) + 1;
    e.type = type;
    e.len = len;
    e.data = (uint8_t *)data;
    int rc = log_append(r, &e);
    if (rc != 0)
        return rc;
    if (type == RAFT_ENTRY_CONF) {
        raft_conf c;
        if (raft_conf_decode(data, len, &c) == 0)
            set_conf(r, &c, e.index);
        r->pending_conf_index = e.index;
    }
    *index = e.index;
    return 0;
}

/* ---- role changes -------------------------------------------------------- */

static void reset_timers(raft *r)
{
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_rand_timeout(r);
}

static void become_follower(raft *r, uint64_t term, uint64_t leader)
{
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
        r->hs_dirty = 1;
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->transfer_target = 0;
    reset_timers(r);
    fail_reads(r);
}

static void become_leader(raft *r)
{
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->transfer_target = 0;
    reset_timers(r);
    for (uint32_t i = 0; i < r->conf.n; i++)
        init_progress(r, &r->prs[i], r->conf.m[i].id);
    /* A change may only be proposed once the leader has committed an entry
     * of its term (the no-op below): until then an uncommitted change from
     * an earlier term could still be in flight. */
    r->pending_conf_index = last_index(r);
    uint64_t idx;
    if (append_local(r, RAFT_ENTRY_NOOP, NULL, 0, &idx) != 0) {
        /* Without its no-op a leader cannot commit anything: give up. */
        become_follower(r, r->term, 0);
        return;
    }
    bcast_append(r);
}

static void record_vote(raft *r, uint64_t from, int granted)
{
    progress *p = pr_of(r, from);
    if (p != NULL && p->vote == 0 && is_voter(r, from))
        p->vote = granted ? 1 : -1;
}

static void tally(const raft *r, uint32_t *yes, uint32_t *no)
{
    *yes = *no = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        if (r->conf.m[i].role != RAFT_VOTER)
            continue;
        *yes += r->prs[i].vote > 0;
        *no += r->prs[i].vote < 0;
    }
}

static void campaign(raft *r, int pre, int transfer);

static void check_election(raft *r)
{
    uint32_t yes, no;
    tally(r, &yes, &no);
    if (yes >= quorum(r)) {
        if (r->role == RAFT_PRECANDIDATE)
            campaign(r, 0, 0);
        else
            become_leader(r);
    } else if (no >= quorum(r)) {
        become_follower(r, r->term, 0);
    }
}

static int voter_in(const raft_conf *c, uint64_t id)
{
    const raft_member *me = raft_conf_find(c, id);
    return me != NULL && me->role == RAFT_VOTER;
}

/* Whether this server may start an election: it is a voter in its latest
 * configuration, or in the committed one, or in one in between.  The other
 * cases matter when a leader appended its own removal and lost leadership
 * before committing it: its log is the most up to date, so nobody else can
 * win, and it must be able to finish the change itself (elected by a
 * majority of the new configuration, it commits it and then steps down).
 * Its own commit index may lag (it restarted), hence "in between".  Safety
 * does not depend on this: votes are always counted in the latest
 * configuration. */
static int can_campaign(const raft *r)
{
    if (is_voter(r, r->id))
        return 1;
    if (r->conf_index <= r->commit || raft_conf_voters(&r->conf) == 0)
        return 0;
    raft_conf c;
    raft_conf_at(r, r->commit, &c, NULL);
    if (voter_in(&c, r->id))
        return 1;
    for (uint64_t i = TS_MAX(r->commit + 1, r->first); i < r->conf_index; i++) {
        const raft_entry *e = entry_at(r, i);
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &c) == 0 &&
            voter_in(&c, r->id))
            return 1;
    }
    return 0;
}

static void campaign(raft *r, int pre, int transfer)
{
    if (!can_campaign(r))
        return;
    reset_timers(r);
    r->leader = 0;
    fail_reads(r);
    uint64_t term = r->term + 1;
    if (pre) {
        r->role = RAFT_PRECANDIDATE;
    } else {
        r->role = RAFT_CANDIDATE;
        r->term = term;
        r->vote = r->id;
        r->hs_dirty = 1;
    }
    for (uint32_t i = 0; i < r->conf.n; i++)
        r->prs[i].vote = 0;
    record_vote(r, r->id, 1);
    for (uint32_t i = 0; i < r->conf.n; i++) {
        if (r->conf.m[i].role != RAFT_VOTER || r->conf.m[i].id == r->id)
            continue;
        raft_msg m = {0};
        m.type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;
        m.to = r->conf.m[i].id;
        m.term = term;
        m.index = last_index(r);
        m.log_term = raft_term_at(r, m.index);
        m.flags = transfer ? RAFT_FLAG_TRANSFER : 0;
        send_msg(r, &m, NULL, 0);
    }
    check_election(r);
}

void raft_campaign(raft *r)
{
    if (r->role != RAFT_LEADER)
        campaign(r, 1, 0);
}

/* ---- handlers ------------------------------------------------------------ */

static void reply(raft *r, const raft_msg *in, raft_msg *out)
{
    out->to = in->from;
    send_msg(r, out, NULL, 0);
}

static void handle_vote(raft *r, const raft_msg *m)
{
    int pre = m->type == RAFT_MSG_PREVOTE;
    uint64_t last = last_index(r);
    int up_to_date = m->log_term > raft_term_at(r, last) ||
                     (m->log_term == raft_term_at(r, last) && m->index >= last);
    int can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) ||
                   (pre && m->term > r->term);
    raft_msg out = {0};
    out.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    if (can_vote && up_to_date) {
        out.term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->hs_dirty = 1;
            r->election_elapsed = 0;
        }
    } else {
        out.reject = 1;
        out.term = r->term;
    }
    reply(r, m, &out);
}

static void handle_append(raft *r, const raft_msg *m)
{
    raft_msg out = {0};
    out.type = RAFT_MSG_APPEND_RESP;
    if (m->index < r->commit) {
        out.index = r->commit;
        reply(r, m, &out);
        return;
    }
    if (m->index > last_index(r) || raft_term_at(r, m->index) != m->log_term) {
        /* Hint: the last index whose term is <= the leader's prev term, so
         * the leader can skip a whole conflicting term per round trip. */
        uint64_t h = TS_MIN(m->index, last_index(r));
        while (h > r->commit && h >= r->first && raft_term_at(r, h) > m->log_term)
            h--;
        out.reject = 1;
        out.index = m->index;
        out.hint = h;
        out.hint_term = raft_term_at(r, h);
        reply(r, m, &out);
        return;
    }
    uint64_t last_new = m->index;
    int conf_touched = 0;
    for (size_t k = 0; k < m->n_entries; k++) {
        const raft_entry *e = &m->entries[k];
        if (e->index != m->index + 1 + k)
            return;     /* malformed: checked by raft_step, kept for safety */
        if (e->index <= last_index(r)) {
            if (raft_term_at(r, e->index) == e->term) {
                last_new = e->index;
                continue;
            }
            if (e->index <= r->commit)
                return;     /* would rewrite a committed entry: refuse */
            for (uint64_t i = e->index; i <= last_index(r); i++)
                conf_touched |= entry_at(r, i)->type == RAFT_ENTRY_CONF;
            log_truncate(r, e->index);
        }
        if (log_append(r, e) != 0)
            break;
        conf_touched |= e->type == RAFT_ENTRY_CONF;
        last_new = e->index;
    }
    if (conf_touched)
        refresh_conf(r);
    uint64_t c = TS_MIN(m->commit, last_new);
    if (c > r->commit)
        r->commit = c;
    out.index = last_new;
    reply(r, m, &out);
}

static void handle_heartbeat(raft *r, const raft_msg *m)
{
    uint64_t c = TS_MIN(m->commit, last_index(r));
    if (c > r->commit)
        r->commit = c;
    raft_msg out = {0};
    out.type = RAFT_MSG_HEARTBEAT_RESP;
    out.ctx = m->ctx;
    reply(r, m, &out);
}

static void handle_snap(raft *r, const raft_msg *m)
{
    raft_msg out = {0};
    if (m->snap.index <= r->commit) {
        out.type = RAFT_MSG_APPEND_RESP;
        out.index = r->commit;
        reply(r, m, &out);
        return;
    }
    if (r->chunk_pending || r->install_pending)
        return;     /* one piece per ready; the leader resends */
    if (m->offset == 0) {
        if (raft_term_at(r, m->snap.index) == m->snap.term) {
            /* Our log already holds what the snapshot covers. */
            r->commit = m->snap.index;
            out.type = RAFT_MSG_APPEND_RESP;
            out.index = m->snap.index;
            reply(r, m, &out);
            return;
        }
        r->recv_active = 1;
        r->recv_index = m->snap.index;
        r->recv_offset = 0;
    }
    out.type = RAFT_MSG_SNAP_RESP;
    out.snap.index = m->snap.index;
    if (!r->recv_active || r->recv_index != m->snap.index || m->offset != r->recv_offset) {
        out.reject = 1;
        out.offset = (r->recv_active && r->recv_index == m->snap.index) ? r->recv_offset : 0;
        reply(r, m, &out);
        return;
    }
    uint8_t *buf = NULL;
    if (m->len > 0) {
        buf = malloc(m->len);
        if (buf == NULL)
            return;
        memcpy(buf, m->data, m->len);
    }
    free(r->chunk_buf);
    r->chunk_buf = buf;
    r->chunk.index = m->snap.index;
    r->chunk.term = m->snap.term;
    r->chunk.offset = m->offset;
    r->chunk.data = buf;
    r->chunk.len = m->len;
    r->chunk.done = (m->flags & RAFT_FLAG_DONE) != 0;
    r->chunk_pending = 1;
    r->recv_offset += m->len;
    if (!r->chunk.done) {
        out.offset = r->recv_offset;
        reply(r, m, &out);
        return;
    }
    r->recv_active = 0;
    out.type = RAFT_MSG_APPEND_RESP;
    out.index = m->snap.index;
    if (raft_term_at(r, m->snap.index) == m->snap.term) {
        /* Appends overtook the transfer: the log already holds what the
         * snapshot covers, and maybe entries after it that we acknowledged.
         * Keep them (dropping acknowledged entries would leave the leader
         * believing we store them); the received image is not needed. */
        if (m->snap.index > r->commit)
            r->commit = m->snap.index;
        reply(r, m, &out);
        return;
    }
    /* Complete: the snapshot replaces our whole log and state. */
    r->install = m->snap;
    r->install_pending = 1;
    r->snap = m->snap;
    log_reset(r, m->snap.index, m->snap.term);
    r->commit = r->applied = m->snap.index;
    set_conf(r, &m->snap.conf, m->snap.index);
    reply(r, m, &out);
}

static void handle_append_resp(raft *r, progress *p, const raft_msg *m)
{
    p->active = 1;
    if (m->reject) {
        if (p->state == PR_REPLICATE) {
            if (m->index <= p->match)
                return;     /* stale */
        } else if (p->state == PR_PROBE) {
            if (m->index != p->next - 1)
                return;     /* answer to an older probe */
        } else {
            return;
        }
        /* Skip back over the follower's conflicting term. */
        uint64_t idx = TS_MIN(m->hint, m->index);
        while (idx > p->match) {
            uint64_t t = raft_term_at(r, idx);
            if (t != 0 && t <= m->hint_term)
                break;
            idx--;
            if (t == 0)
                break;      /* compacted away: next < first sends a snapshot */
        }
        pr_become_probe(r, p, idx + 1);
        send_append(r, p, 1);
        return;
    }
    if (m->index > p->match) {
        p->match = m->index;
        if (p->next <= p->match)
            p->next = p->match + 1;
        if (p->state == PR_PROBE || (p->state == PR_SNAPSHOT && p->match >= p->snap_index))
            pr_become_replicate(p);
        else if (p->state == PR_REPLICATE)
            pr_free_inflight(r, p, p->match);
        /* Not broadcast: see maybe_commit. */
        if (maybe_commit(r) && r->role != RAFT_LEADER)
            return;
        if (p->id == r->transfer_target && p->match == last_index(r))
            send_timeout_now(r, p->id);
        maybe_promote(r, p);
    } else if (p->state == PR_PROBE) {
        p->probe_sent = 0;
    }
    send_append_all(r, p, 0);
}

static void handle_heartbeat_resp(raft *r, progress *p, const raft_msg *m)
{
    p->active = 1;
    p->probe_sent = 0;
    if (p->state == PR_REPLICATE && p->in_count >= r->cfg.max_inflight) {
        /* Let one more append out: if earlier ones were lost, the follower
         * rejects it and the leader falls back to probing. */
        p->in_start = (p->in_start + 1) % r->cfg.max_inflight;
        p->in_count--;
    }
    if (m->ctx > p->acked_seq)
        p->acked_seq = m->ctx;
    release_reads(r);
    if (p->match < last_index(r))
        send_append_all(r, p, 1);
}

static void handle_snap_resp(raft *r, progress *p, const raft_msg *m)
{
    p->active = 1;
    if (p->state != PR_SNAPSHOT || m->snap.index != p->snap_index)
        return;
    p->snap_waiting = 0;
    p->snap_offset = m->offset;
    if (p->snap_index != r->snap.index || p->snap_offset < r->snap.size)
        send_snap_piece(r, p);
}

static int valid_msg(const raft_msg *m)
{
    if (m->type == 0 || m->type >= RAFT_MSG_TYPE_END_ || m->from == 0)
        return 0;
    for (size_t k = 0; k < m->n_entries; k++)
        if (m->entries[k].index != m->index + 1 + k)
            return 0;
    if (m->type == RAFT_MSG_SNAP && (m->snap.index == 0 || m->offset + m->len > m->snap.size ||
                                     (m->len > 0 && m->data == NULL)))
        return 0;
    return 1;
}

int raft_step(raft *r, const raft_msg *m)
{
    if (!valid_msg(m) || m->to != r->id)
        return TS_EINVAL;
    int vote_req = m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE;
    int from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                      m->type == RAFT_MSG_SNAP;
    if (m->term > r->term) {
        if (vote_req && !(m->flags & RAFT_FLAG_TRANSFER) && r->leader != 0 &&
            r->election_elapsed < r->cfg.election_ticks)
            return 0;   /* leader stickiness */
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* pre-votes never change terms */
        } else {
            become_follower(r, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < r->term) {
        raft_msg out = {0};
        if (from_leader) {
            /* Tell a deposed leader about the newer term. */
            out.type = RAFT_MSG_APPEND_RESP;
            reply(r, m, &out);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            out.type = RAFT_MSG_PREVOTE_RESP;
            out.reject = 1;
            reply(r, m, &out);
        }
        return 0;
    }

    progress *p;
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        handle_vote(r, m);
        break;
    case RAFT_MSG_PREVOTE_RESP:
        if (r->role == RAFT_PRECANDIDATE && (m->term == r->term + 1 || m->reject)) {
            record_vote(r, m->from, !m->reject);
            check_election(r);
        }
        break;
    case RAFT_MSG_VOTE_RESP:
        if (r->role == RAFT_CANDIDATE) {
            record_vote(r, m->from, !m->reject);
            check_election(r);
        }
        break;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAP:
        if (r->role == RAFT_LEADER)
            break;      /* same term, two leaders: impossible, ignore */
        if (r->role != RAFT_FOLLOWER || r->leader != m->from)
            become_follower(r, m->term, m->from);
        r->election_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND)
            handle_append(r, m);
        else if (m->type == RAFT_MSG_HEARTBEAT)
            handle_heartbeat(r, m);
        else
            handle_snap(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_SNAP_RESP:
        if (r->role != RAFT_LEADER || (p = pr_of(r, m->from)) == NULL)
            break;
        if (m->type == RAFT_MSG_APPEND_RESP)
            handle_append_resp(r, p, m);
        else if (m->type == RAFT_MSG_HEARTBEAT_RESP)
            handle_heartbeat_resp(r, p, m);
        else
            handle_snap_resp(r, p, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role != RAFT_LEADER)
            campaign(r, 0, 1);
        break;
    default:
        break;
    }
    return 0;
}

/* ---- ticks --------------------------------------------------------------- */

static void tick_leader(raft *r)
{
    if (++r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        bcast_heartbeat(r);
        /* Resend a snapshot piece whose answer did not come back. */
        for (uint32_t i = 0; i < r->conf.n; i++) {
            progress *p = &r->prs[i];
            if (p->id == r->id || p->state != PR_SNAPSHOT)
                continue;
            if (p->snap_waiting)
                p->snap_waiting = 0;
            else
                send_snap_piece(r, p);
        }
    }
    if (r->transfer_target != 0 && ++r->transfer_elapsed >= r->cfg.election_ticks)
        r->transfer_target = 0;
    if (++r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        uint32_t active = 0;
        for (uint32_t i = 0; i < r->conf.n; i++) {
            if (r->conf.m[i].role == RAFT_VOTER &&
                (r->prs[i].active || r->prs[i].id == r->id))
                active++;
            r->prs[i].active = 0;
        }
        if (active < quorum(r))
            become_follower(r, r->term, 0);
    }
}

void raft_tick(raft *r)
{
    if (r->role == RAFT_LEADER) {
        tick_leader(r);
        return;
    }
    if (++r->election_elapsed >= r->rand_timeout && can_campaign(r))
        campaign(r, 1, 0);
}

/* ---- client-facing inputs ------------------------------------------------ */

int raft_propose(raft *r, const void *data, size_t len, uint64_t *index, uint64_t *term)
{
    if (r->role != RAFT_LEADER)
        return TS_ENOTLEADER;
    if (r->transfer_target != 0 || last_index(r) - r->commit >= r->cfg.max_uncommitted)
        return TS_EBUSY;
    int rc = append_local(r, RAFT_ENTRY_NORMAL, data, len, index);
    if (rc != 0)
        return rc;
    *term = r->term;
    /* Not sent yet: every proposal until the next raft_get_ready goes out
     * in one append per follower (and is persisted in one write). */
    r->bcast_pending = 1;
    return 0;
}

int raft_propose_conf(raft *r, int op, uint64_t id, const char *addr, uint64_t *index)
{
    if (r->role != RAFT_LEADER)
        return TS_ENOTLEADER;
    if (r->transfer_target != 0 || r->pending_conf_index > r->commit)
        return TS_EBUSY;
    if (id == 0)
        return TS_EINVAL;
    raft_conf c = r->conf;
    const raft_member *m = raft_conf_find(&c, id);
    if (op == RAFT_CONF_ADD) {
        if (m != NULL)
            return TS_EEXIST;
        if (c.n == RAFT_MAX_MEMBERS || addr == NULL || strlen(addr) >= RAFT_ADDR_MAX)
            return TS_EINVAL;
        raft_member *nm = &c.m[c.n++];
        memset(nm, 0, sizeof(*nm));
        nm->id = id;
        nm->role = RAFT_LEARNER;
        strcpy(nm->addr, addr);
    } else if (op == RAFT_CONF_REMOVE) {
        if (m == NULL)
            return TS_ENOENT;
        if (m->role == RAFT_VOTER && raft_conf_voters(&c) == 1)
            return TS_EINVAL;
        size_t k = (size_t)(m - c.m);
        memmove(&c.m[k], &c.m[k + 1], (c.n - k - 1) * sizeof(c.m[0]));
        c.n--;
    } else {
        return TS_EINVAL;
    }
    ts_buf b = {0};
    raft_conf_encode(&c, &b);
    int rc = append_local(r, RAFT_ENTRY_CONF, b.data, b.len, index);
    ts_buf_free(&b);
    if (rc != 0)
        return rc;
    bcast_append(r);
    /* Removing a voter can shrink the quorum: maybe commit right away. */
    if (maybe_commit(r) && r->role == RAFT_LEADER)
        bcast_append(r);
    return 0;
}

int raft_transfer(raft *r, uint64_t id)
{
    if (r->role != RAFT_LEADER)
        return TS_ENOTLEADER;
    if (id == r->id)
        return TS_EINVAL;
    if (!is_voter(r, id))
        return TS_ENOENT;
    progress *p = pr_of(r, id);
    r->transfer_target = id;
    r->transfer_elapsed = 0;
    if (p->match == last_index(r))
        send_timeout_now(r, id);
    else
        send_append_all(r, p, 0);
    return 0;
}

int raft_read_index(raft *r, uint64_t ctx)
{
    if (r->role != RAFT_LEADER)
        return TS_ENOTLEADER;
    if (r->n_rp == r->cap_rp) {
        size_t cap = r->cap_rp ? r->cap_rp * 2 : 16;
        pending_read *n = realloc(r->rp, cap * sizeof(*n));
        if (n == NULL)
            return TS_ENOMEM;
        r->rp = n;
        r->cap_rp = cap;
    }
    pending_read *pr = &r->rp[r->n_rp++];
    pr->ctx = ctx;
    pr->index = 0;
    pr->seq = 0;
    if (raft_term_at(r, r->commit) == r->term) {
        pr->index = r->commit;
        pr->seq = ++r->read_seq;
        bcast_heartbeat(r);
        release_reads(r);
    }
    return 0;
}

int raft_compact(raft *r, uint64_t index, uint64_t size, uint64_t keep,
                 raft_snapshot_meta *meta)
{
    if (index > r->applied || index < r->snap.index || raft_term_at(r, index) == 0)
        return TS_EINVAL;
    raft_snapshot_meta s;
    memset(&s, 0, sizeof(s));
    s.index = index;
    s.term = raft_term_at(r, index);
    s.size = size;
    raft_conf_at(r, index, &s.conf, NULL);
    r->snap = s;
    *meta = s;
    if (index > keep)
        log_drop_prefix(r, index - keep);
    refresh_conf(r);    /* the CONF entry in force may have been dropped */
    return 0;
}

/* ---- ready / advance ----------------------------------------------------- */

static uint64_t apply_upto(const raft *r)
{
    return TS_MIN(r->commit, last_index(r));
}

int raft_has_ready(const raft *r)
{
    return r->bcast_pending || r->hs_dirty || r->unstable <= last_index(r) || r->n_msgs > 0 ||
           r->chunk_pending || r->install_pending || r->applied < apply_upto(r) ||
           r->n_ro > 0;
}

void raft_get_ready(raft *r, raft_ready *rd)
{
    if (r->bcast_pending) {
        r->bcast_pending = 0;
        if (r->role == RAFT_LEADER)
            bcast_append(r);
    }
    memset(rd, 0, sizeof(*rd));
    rd->role = r->role;
    rd->leader = r->leader;
    rd->term = r->term;
    rd->vote = r->vote;
    rd->commit = r->commit;
    rd->hard_state_changed = r->hs_dirty;
    rd->snapshot_chunk = r->chunk_pending ? &r->chunk : NULL;
    rd->snapshot = r->install_pending ? &r->install : NULL;
    if (r->unstable <= last_index(r)) {
        rd->entries = entry_at(r, r->unstable);
        rd->n_entries = (size_t)(last_index(r) - r->unstable + 1);
    }
    rd->msgs = r->msgs;
    rd->n_msgs = r->n_msgs;
    uint64_t upto = apply_upto(r);
    if (r->applied < upto) {
        rd->committed = entry_at(r, r->applied + 1);
        rd->n_committed = (size_t)(upto - r->applied);
    }
    rd->reads = r->ro;
    rd->n_reads = r->n_ro;
    r->rd_last = last_index(r);
    r->rd_applied = upto > r->applied ? upto : r->applied;
}

void raft_advance(raft *r, const raft_ready *rd)
{
    r->hs_dirty = 0;
    if (rd->n_entries > 0 || rd->snapshot != NULL) {
        r->stable = r->rd_last;
        r->unstable = r->rd_last + 1;
    }
    r->applied = r->rd_applied;
    release_msgs(r);
    r->chunk_pending = 0;
    r->install_pending = 0;
    r->n_ro = 0;
    if (r->role == RAFT_LEADER)
        maybe_commit(r);    /* not broadcast: see maybe_commit */
}

/* ---- construction -------------------------------------------------------- */

int raft_new(const raft_config *cfg, const raft_restore *rs, raft **out)
{
    *out = NULL;
    if (cfg->id == 0 || cfg->election_ticks < 2 || cfg->heartbeat_ticks == 0 ||
        cfg->heartbeat_ticks >= cfg->election_ticks)
        return TS_EINVAL;
    raft *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return TS_ENOMEM;
    r->cfg = *cfg;
    if (r->cfg.max_inflight == 0 || r->cfg.max_inflight > RAFT_MAX_INFLIGHT)
        r->cfg.max_inflight = r->cfg.max_inflight ? RAFT_MAX_INFLIGHT : 16;
    if (r->cfg.max_batch_entries == 0)
        r->cfg.max_batch_entries = 256;
    if (r->cfg.max_batch_bytes == 0)
        r->cfg.max_batch_bytes = 1u << 20;
    if (r->cfg.snapshot_chunk == 0)
        r->cfg.snapshot_chunk = 1u << 20;
    if (r->cfg.max_uncommitted == 0)
        r->cfg.max_uncommitted = 4096;
    r->id = cfg->id;
    r->rng = cfg->seed ^ (cfg->id * 0xD1B54A32D192ED03ull);
    r->term = rs->term;
    r->vote = rs->vote;
    uint64_t si = 0, st = 0;
    if (rs->snapshot != NULL) {
        r->snap = *rs->snapshot;
        si = r->snap.index;
        st = r->snap.term;
    }
    log_reset(r, si, st);
    r->commit = r->applied = si;
    int rc = 0;
    for (size_t i = 0; i < rs->n_entries; i++) {
        const raft_entry *e = &rs->entries[i];
        if (e->index != last_index(r) + 1 || e->term < raft_term_at(r, last_index(r))) {
            rc = TS_EINVAL;
            goto fail_free_core;
        }
        if ((rc = log_append(r, e)) != 0)
            goto fail_free_core;
    }
    if (raft_term_at(r, last_index(r)) > r->term) {
        /* A crash came between writing entries of a newer term and writing
         * that term.  Nothing was sent in that term yet (messages leave only
         * after everything is persisted), so adopting it without a vote is
         * safe. */
        r->term = raft_term_at(r, last_index(r));
        r->vote = 0;
        r->hs_dirty = 1;
    }
    r->stable = last_index(r);
    r->unstable = r->stable + 1;
    if (rs->bootstrap != NULL && si == 0 && rs->n_entries == 0) {
        if (rs->bootstrap->n == 0 || raft_conf_voters(rs->bootstrap) == 0) {
            rc = TS_EINVAL;
            goto fail_free_core;
        }
        ts_buf b = {0};
        raft_conf_encode(rs->bootstrap, &b);
        raft_entry e = {.term = 1, .index = 1, .type = RAFT_ENTRY_CONF,
                        .len = b.len, .data = (uint8_t *)b.data};
        rc = log_append(r, &e);
        ts_buf_free(&b);
        if (rc != 0)
            goto fail_free_core;
        if (r->term < 1) {
            r->term = 1;
            r->hs_dirty = 1;
        }
        /* Every initial member writes the same entry 1: it is committed. */
        r->commit = 1;
    }
    memset(&r->conf, 0, sizeof(r->conf));
    r->conf_index = (uint64_t)-1;   /* force set_conf */
    refresh_conf(r);
    r->role = RAFT_FOLLOWER;
    reset_timers(r);
    *out = r;
    return 0;

fail_free_core:
    raft_free(r);
    return rc;
}

void raft_free(raft *r)
{
    if (r == NULL)
        return;
    free_entries(r->ents, r->n);
    free(r->ents);
    release_msgs(r);
    free(r->msgs);
    free(r->chunk_buf);
    free(r->rp);
    free(r->ro);
    free(r);
}
