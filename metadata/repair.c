/*
 * The metadata leader's re-replication loop (see repair.h).
 *
 * Threads: one loop thread plans a round every interval; `workers` threads
 * carry out the HTTP requests of the round.  They share the task list
 * under r->mu.  A task's life:
 *
 *     queued ──worker──► running ──201/200──► awaiting ──report lists it──► (confirmed, gone)
 *                           │                    └──confirm timeout──► (dropped)
 *                           └──503: destination on hold / error: chunk on hold──► (gone)
 *
 * Lock order: store read lock -> cluster mutex (cluster.h); r->mu is never
 * held while taking either, nor during a request.
 */
#include "metadata/repair.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/http_client.h"
#include "common/log.h"
#include "common/util.h"
#include "metadata/plan_view.h"
#include "metadata/rebalance_plan.h"
#include "metadata/repair_plan.h"

#define ADDR_MAX PLAN_ADDR_MAX
#define REQUEST_TIMEOUT_MS 120000
#define CHUNK_HOLD_MS 5000        /* after a failed copy or delete */
#define BUSY_HOLD_MS 1000         /* after a 503 without Retry-After */
#define PROGRESS_EVERY_MS 5000
#define SLEEP_SLICE_MS 20
#define KICKED_ROUND_MS 100       /* least time between rounds when woken early */

enum task_kind { TASK_COPY, TASK_DELETE };
enum task_state { TASK_QUEUED, TASK_RUNNING, TASK_AWAITING };

struct task {
    struct task *next;
    enum task_kind kind;
    enum task_state state;
    ts_chunk_id id;
    uint64_t length;
    char server[CLUSTER_ID_MAX + 1];          /* copy: destination; delete: holder */
    char server_addr[ADDR_MAX];
    char source[CLUSTER_ID_MAX + 1];          /* first source, counted as copying out */
    char source_addrs[TS_PLAN_MAX_SOURCES][ADDR_MAX];
    size_t nsources;
    int64_t answered_ms;
    int rebalance;                            /* a rebalance move, not a repair */
};

/* A destination (id) or a chunk (id empty) left alone until `until`. */
struct hold {
    char server[CLUSTER_ID_MAX + 1];
    ts_chunk_id chunk;
    int64_t until;
};

struct repair {
    store *st;
    cluster *cl;
    repair_opts o;
    pthread_t loop;
    pthread_t *workers;
    unsigned nworkers_started;
    atomic_int stop;
    atomic_int kick;            /* a copy or delete ended: plan again soon */

    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a task was queued, or stop */
    struct task *tasks;
    struct hold *holds;
    size_t nholds;
    repair_stats stats;
    repair_rebalance_stats rb;
    int64_t rb_round_ms;        /* when rb was last updated (0: never) */
    int64_t episode_start_ms;   /* valid while stats.episode_active */
    int episode_had_single;
    uint64_t episode_bytes_at_start;
};

/* ------------------------------------------------------------- helpers */

/* mu held */
static int held(const repair *r, const char *server, const ts_chunk_id *chunk, int64_t now)
{
    for (size_t i = 0; i < r->nholds; i++) {
        const struct hold *h = &r->holds[i];
        if (h->until <= now)
            continue;
        if (server && h->server[0] && strcmp(h->server, server) == 0)
            return 1;
        if (chunk && !h->server[0] && ts_chunk_id_eq(&h->chunk, chunk))
            return 1;
    }
    return 0;
}

/* mu held.  Expired holds are reused. */
static void hold_add(repair *r, const char *server, const ts_chunk_id *chunk, int64_t until)
{
    struct hold *h = NULL;
    int64_t now = ts_mono_ms();
    for (size_t i = 0; i < r->nholds && !h; i++)
        if (r->holds[i].until <= now)
            h = &r->holds[i];
    if (!h) {
        r->holds = ts_realloc(r->holds, (r->nholds + 1) * sizeof(*r->holds));
        h = &r->holds[r->nholds++];
    }
    memset(h, 0, sizeof(*h));
    if (server)
        snprintf(h->server, sizeof(h->server), "%s", server);
    if (chunk)
        h->chunk = *chunk;
    h->until = until;
}

/* mu held: unlinks and frees t. */
static void task_remove(repair *r, struct task *t)
{
    for (struct task **p = &r->tasks; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            free(t);
            return;
        }
    ts_die("repair: task list inconsistent");
}

/* --------------------------------------------------------------- workers */

/* Retry-After from a 503 body is not available through ts_http_result, so
 * a busy destination is held back a fixed time. */
static void run_copy(repair *r, struct task *t)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1], *url, *body;
    ts_http_result res = {0};
    ts_error e = {0};
    json_t *from = json_array(), *req = json_object();

    ts_chunk_id_to_hex(&t->id, hex);
    for (size_t i = 0; i < t->nsources; i++)
        if (json_array_append_new(from, json_string(t->source_addrs[i])) != 0)
            ts_die("repair: out of memory");
    if (json_object_set_new(req, "from", from) != 0)
        ts_die("repair: out of memory");
    body = ts_json_dump(req);
    json_decref(req);
    url = ts_sprintf("http://%s/v1/chunk/%s/replicate", t->server_addr, hex);
    int rc = ts_http_call("POST", url, "application/json", body, strlen(body),
                          REQUEST_TIMEOUT_MS, &res, &e);
    int64_t now = ts_mono_ms();
    pthread_mutex_lock(&r->mu);
    if (rc == 0 && (res.status == 200 || res.status == 201)) {
        t->state = TASK_AWAITING;
        t->answered_ms = now;
    } else if (rc == 0 && res.status == 503) {
        r->stats.copy_busy_total++;
        hold_add(r, t->server, NULL, now + BUSY_HOLD_MS);
        task_remove(r, t);
    } else {
        if (rc == 0)
            ts_http_result_error(&res, "replicate", &e);
        TS_WARN("repair: copy of chunk %s to %s failed (retrying in %d s): %s", hex, t->server,
                CHUNK_HOLD_MS / 1000, e.msg);
        if (t->rebalance)
            r->rb.copy_failures++;
        else
            r->stats.copy_failures_total++;
        hold_add(r, NULL, &t->id, now + CHUNK_HOLD_MS);
        task_remove(r, t);
    }
    pthread_mutex_unlock(&r->mu);
    ts_http_result_free(&res);
    free(url);
    free(body);
}

static void run_delete(repair *r, struct task *t)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1], *url;
    ts_http_result res = {0};
    ts_error e = {0};

    ts_chunk_id_to_hex(&t->id, hex);
    url = ts_sprintf("http://%s/v1/chunk/%s", t->server_addr, hex);
    int rc = ts_http_call("DELETE", url, NULL, NULL, 0, REQUEST_TIMEOUT_MS, &res, &e);
    int ok = rc == 0 && (res.status == 200 || res.status == 404);
    if (ok) {
        /* Gone either way; the server reports it as removed too. */
        cluster_drop_replica(r->cl, &t->id, t->server);
        TS_INFO("repair: deleted surplus replica of chunk %s on %s", hex, t->server);
    } else {
        if (rc == 0)
            ts_http_result_error(&res, "delete", &e);
        TS_WARN("repair: delete of surplus replica of chunk %s on %s failed: %s", hex,
                t->server, e.msg);
    }
    pthread_mutex_lock(&r->mu);
    if (ok)
        r->stats.deletes_total++;
    else
        hold_add(r, NULL, &t->id, ts_mono_ms() + CHUNK_HOLD_MS);
    task_remove(r, t);
    pthread_mutex_unlock(&r->mu);
    ts_http_result_free(&res);
    free(url);
}

static void *worker_main(void *arg)
{
    repair *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->stop)) {
        struct task *t = r->tasks;
        while (t && t->state != TASK_QUEUED)
            t = t->next;
        if (!t) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        t->state = TASK_RUNNING;
        pthread_mutex_unlock(&r->mu);
        if (t->kind == TASK_COPY)
            run_copy(r, t);
        else
            run_delete(r, t);
        atomic_store(&r->kick, 1);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    ts_http_client_thread_cleanup();
    return NULL;
}

/* ------------------------------------------------------- planner inputs */

/* Adds the destinations of copies under way as holders (they count: the
 * chunk is not copied twice), and the running copies to the servers'
 * in/out counts.  Returns the number of tasks (mu held). */
static size_t view_add_tasks(repair *r, plan_view *v)
{
    size_t ntasks = 0;
    for (struct task *t = r->tasks; t; t = t->next) {
        ntasks++;
        if (t->kind != TASK_COPY)
            continue;
        int d = plan_view_server(v, t->server), s = plan_view_server(v, t->source);
        if (d >= 0 && t->state != TASK_AWAITING)
            v->servers[d].copies_in++;
        if (s >= 0 && t->state != TASK_AWAITING)
            v->servers[s].copies_out++;
        for (size_t c = 0; d >= 0 && c < v->nchunks; c++) {
            ts_plan_chunk *pc = &v->chunks[c];
            int have = 0;
            if (!ts_chunk_id_eq(&pc->id, &t->id))
                continue;
            for (size_t k = 0; k < pc->nholders; k++)
                have |= pc->holders[k] == (uint32_t)d;
            if (!have && pc->nholders < PLAN_MAX_HOLDERS)
                v->holders[c * PLAN_MAX_HOLDERS + pc->nholders++] = (uint32_t)d;
            break;
        }
    }
    return ntasks;
}

/* -------------------------------------------------------------- a round */

/* Confirms answered copies that a report now lists; drops those that
 * waited too long (the chunk is planned again). */
static void confirm_copies(repair *r, int64_t now)
{
    pthread_mutex_lock(&r->mu);
    for (struct task *t = r->tasks, *next; t; t = next) {
        next = t->next;
        if (t->state != TASK_AWAITING)
            continue;
        char hex[TS_CHUNK_ID_HEX_LEN + 1];
        ts_chunk_id_to_hex(&t->id, hex);
        if (cluster_holds(r->cl, &t->id, t->server)) {
            if (t->rebalance) {
                r->rb.copies_total++;
                r->rb.bytes_copied += t->length;
            } else {
                r->stats.copies_total++;
                r->stats.copy_bytes_total += t->length;
            }
            TS_DEBUG("repair: copy of chunk %s to %s confirmed by its report", hex, t->server);
            task_remove(r, t);
        } else if (now - t->answered_ms > r->o.confirm_timeout_ms) {
            TS_WARN("repair: copy of chunk %s to %s never showed in a report in %lld ms; "
                    "planning it again", hex, t->server, (long long)r->o.confirm_timeout_ms);
            task_remove(r, t);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* Counts of the round (real holders only: pending copies do not make a
 * chunk safe yet) and the episode bookkeeping (mu held). */
static void account(repair *r, const plan_view *v, int64_t now)
{
    uint64_t under = 0, single = 0, lost = 0;
    for (size_t c = 0; c < v->nchunks; c++) {
        unsigned live = 0, readable = 0;
        for (size_t k = 0; k < v->nreal[c]; k++) {
            ts_server_state s = v->servers[v->chunks[c].holders[k]].state;
            live += (unsigned)ts_server_state_counts(s);
            readable += (unsigned)ts_server_state_readable(s);
        }
        if (readable == 0) {
            lost++;
            continue;
        }
        under += live < v->chunks[c].replication;
        single += live == 1 && v->chunks[c].replication > 1;
    }
    repair_stats *st = &r->stats;
    st->under_replicated = under + lost;
    st->single_replica = single;
    st->lost = lost;
    /* Lost chunks cannot be repaired: they do not keep an episode open. */
    if (under > 0 && !st->episode_active) {
        st->episode_active = 1;
        r->episode_start_ms = now;
        r->episode_had_single = 0;
        r->episode_bytes_at_start = st->copy_bytes_total;
        st->last_single_restore_ms = -1;
        TS_WARN("repair: %llu chunk%s below %d replicas (%llu with a single one); "
                "re-replicating", (unsigned long long)under, under == 1 ? "" : "s",
                CLUSTER_REPLICATION, (unsigned long long)single);
    }
    if (!st->episode_active)
        return;
    st->episode_ms = now - r->episode_start_ms;
    if (single > 0)
        r->episode_had_single = 1;
    else if (r->episode_had_single && st->last_single_restore_ms < 0) {
        st->last_single_restore_ms = st->episode_ms;
        TS_INFO("repair: no chunk left with a single replica after %.1f s",
                (double)st->episode_ms / 1000.0);
    }
    if (under == 0) {
        st->episode_active = 0;
        st->last_full_restore_ms = st->episode_ms;
        st->last_bytes = st->copy_bytes_total - r->episode_bytes_at_start;
        st->last_mb_per_sec = st->episode_ms > 0 ? (double)st->last_bytes / 1048576.0 /
                                                       ((double)st->episode_ms / 1000.0)
                                                 : 0;
        TS_INFO("repair: full replication restored in %.1f s (single-replica chunks: %s); "
                "%.1f MiB copied, %.1f MiB/s", (double)st->episode_ms / 1000.0,
                st->last_single_restore_ms >= 0 ? "restored earlier, see above" : "none",
                (double)st->last_bytes / 1048576.0, st->last_mb_per_sec);
    }
}

/* Queues the plan's tasks; copies stop when the budget runs out. */
static void enqueue(repair *r, plan_view *v, const ts_repair_plan *p, double *tokens,
                    int64_t now)
{
    size_t queued = 0;
    for (size_t i = 0; i < p->ncopies && *tokens > 0; i++) {
        const ts_copy_task *ct = &p->copies[i];
        const ts_plan_chunk *pc = &v->chunks[ct->chunk];
        if (held(r, v->ids[ct->dest], &pc->id, now) || ct->nsources == 0)
            continue;
        struct task *t = ts_calloc(1, sizeof(*t));
        t->kind = TASK_COPY;
        t->state = TASK_QUEUED;
        t->id = pc->id;
        t->length = pc->length;
        snprintf(t->server, sizeof(t->server), "%s", v->ids[ct->dest]);
        snprintf(t->server_addr, sizeof(t->server_addr), "%s", v->addrs[ct->dest]);
        snprintf(t->source, sizeof(t->source), "%s", v->ids[ct->sources[0]]);
        for (size_t k = 0; k < ct->nsources; k++)
            snprintf(t->source_addrs[k], ADDR_MAX, "%s", v->addrs[ct->sources[k]]);
        t->nsources = ct->nsources;
        t->next = r->tasks;
        r->tasks = t;
        *tokens -= (double)pc->length;
        v->servers[ct->dest].copies_in++;       /* the rebalance plans after this */
        v->servers[ct->sources[0]].copies_out++;
        queued++;
    }
    for (size_t i = 0; i < p->ndeletes; i++) {
        const ts_delete_task *dt = &p->deletes[i];
        const ts_plan_chunk *pc = &v->chunks[dt->chunk];
        if (held(r, NULL, &pc->id, now))
            continue;
        struct task *t = ts_calloc(1, sizeof(*t));
        t->kind = TASK_DELETE;
        t->state = TASK_QUEUED;
        t->id = pc->id;
        t->length = pc->length;
        snprintf(t->server, sizeof(t->server), "%s", v->ids[dt->server]);
        snprintf(t->server_addr, sizeof(t->server_addr), "%s", v->addrs[dt->server]);
        t->next = r->tasks;
        r->tasks = t;
        queued++;
    }
    if (queued > 0)
        pthread_cond_broadcast(&r->cv);
}

/* mu held */
static void count_tasks(repair *r)
{
    r->stats.copies_running = r->stats.copies_awaiting = 0;
    for (const struct task *t = r->tasks; t; t = t->next)
        if (t->kind != TASK_COPY || t->rebalance)
            continue;
        else if (t->state == TASK_AWAITING)
            r->stats.copies_awaiting++;
        else
            r->stats.copies_running++;
}

/* ------------------------------------------------------------ rebalance */

/* Chunks with more replicas than their factor on up servers, or a
 * draining replica beside a full count: repair's deletes are still due. */
static uint64_t count_surplus(const plan_view *v)
{
    uint64_t n = 0;
    for (size_t c = 0; c < v->nchunks; c++) {
        unsigned up = 0, draining = 0;
        for (size_t k = 0; k < v->nreal[c]; k++) {
            ts_server_state st = v->servers[v->chunks[c].holders[k]].state;
            up += st == TS_SERVER_UP;
            draining += st == TS_SERVER_DRAINING;
        }
        n += up > v->chunks[c].replication || (draining > 0 && up >= v->chunks[c].replication);
    }
    return n;
}

/* mu held: a task (copy or delete) for chunk id is queued or under way. */
static int chunk_busy(const repair *r, const ts_chunk_id *id)
{
    for (const struct task *t = r->tasks; t; t = t->next)
        if (ts_chunk_id_eq(&t->id, id))
            return 1;
    return 0;
}

/* mu held: queues move m as a copy to m->to, sources m->from first, then
 * the chunk's other readable holders. */
static void queue_move(repair *r, plan_view *v, const ts_rebalance_move *m, size_t chunk)
{
    const ts_plan_chunk *pc = &v->chunks[chunk];
    struct task *t = ts_calloc(1, sizeof(*t));
    t->kind = TASK_COPY;
    t->state = TASK_QUEUED;
    t->rebalance = 1;
    t->id = pc->id;
    t->length = pc->length;
    snprintf(t->server, sizeof(t->server), "%s", v->ids[m->to]);
    snprintf(t->server_addr, sizeof(t->server_addr), "%s", v->addrs[m->to]);
    snprintf(t->source, sizeof(t->source), "%s", v->ids[m->from]);
    snprintf(t->source_addrs[t->nsources++], ADDR_MAX, "%s", v->addrs[m->from]);
    for (size_t k = 0; k < v->nreal[chunk] && t->nsources < TS_PLAN_MAX_SOURCES; k++) {
        uint32_t h = pc->holders[k];
        if (h != m->from && ts_server_state_readable(v->servers[h].state))
            snprintf(t->source_addrs[t->nsources++], ADDR_MAX, "%s", v->addrs[h]);
    }
    t->next = r->tasks;
    r->tasks = t;
    v->servers[m->to].copies_in++;
    v->servers[m->from].copies_out++;
}

/* One rebalance round over the view (after repair queued its copies).
 * Returns 1 when the rebalance is finished and its flag must be cleared. */
static int rebalance_round(repair *r, plan_view *v, double *tokens, double *rb_tokens,
                           int64_t now)
{
    const ns_rebalance *nr = &v->rebalance;
    ts_rebalance_plan p;
    ts_error e = {0};

    if (ts_rebalance_plan_make(v->servers, v->nservers, v->chunks, v->nchunks, 0, &p, &e) != 0) {
        pthread_mutex_lock(&r->mu);
        snprintf(r->rb.note, sizeof(r->rb.note), "cannot plan: %.200s", e.msg);
        r->rb_round_ms = now;
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    uint64_t surplus = count_surplus(v);
    uint64_t done = nr->bytes_planned > p.bytes_to_move ? nr->bytes_planned - p.bytes_to_move : 0;
    pthread_mutex_lock(&r->mu);
    uint64_t inflight = 0;
    for (const struct task *t = r->tasks; t; t = t->next)
        inflight += t->rebalance != 0;
    /* Moves in flight already left the plan (their destination counts as
     * a holder), so `done` includes them. */
    int target_reached = p.nmoves == 0 || (nr->max_moves > 0 && done >= nr->bytes_target);
    size_t queued = 0;
    for (size_t i = 0; !target_reached && i < p.nmoves && *tokens > 0; i++) {
        const ts_rebalance_move *m = &p.moves[i];
        const ts_plan_chunk *pc = &v->chunks[m->chunk];
        if (nr->bandwidth > 0 && *rb_tokens <= 0)
            break;
        if (nr->max_moves > 0 && done + pc->length > nr->bytes_target)
            break;
        if (v->servers[m->to].copies_in >= r->o.max_copies_per_server ||
            v->servers[m->from].copies_out >= r->o.max_copies_per_server ||
            held(r, v->ids[m->to], &pc->id, now) || chunk_busy(r, &pc->id))
            continue;
        queue_move(r, v, m, m->chunk);
        *tokens -= (double)pc->length;
        *rb_tokens -= (double)pc->length;
        done += pc->length;
        queued++;
    }
    if (queued > 0)
        pthread_cond_broadcast(&r->cv);
    repair_rebalance_stats *rb = &r->rb;
    rb->running = 1;
    rb->acting = 1;
    rb->bytes_remaining = p.bytes_to_move;
    rb->moves_remaining = p.nmoves;
    rb->copies_running = inflight + queued;
    rb->surplus_chunks = surplus;
    rb->imbalance = p.imbalance_before;
    rb->imbalance_after = p.imbalance_after;
    r->rb_round_ms = now;
    int finish = target_reached && inflight + queued == 0 && surplus == 0;
    if (finish)
        snprintf(rb->note, sizeof(rb->note), "finished");
    else if (target_reached)
        snprintf(rb->note, sizeof(rb->note), "last copies confirming, %llu surplus replica(s) "
                 "to delete", (unsigned long long)surplus);
    else if (p.skipped_under_replicated > 0)
        snprintf(rb->note, sizeof(rb->note), "%zu under-replicated chunk(s) left to repair "
                 "first", p.skipped_under_replicated);
    else if (rb->copy_failures > 0)
        snprintf(rb->note, sizeof(rb->note), "%llu cop%s failed so far and %s retried (see "
                 "the leader's log)", (unsigned long long)rb->copy_failures,
                 rb->copy_failures == 1 ? "y" : "ies", rb->copy_failures == 1 ? "is" : "are");
    else
        rb->note[0] = '\0';
    pthread_mutex_unlock(&r->mu);
    ts_rebalance_plan_free(&p);
    return finish;
}

/* Clears the durable flag (keeping its figures for --status). */
static void rebalance_finish(repair *r, const ns_rebalance *nr)
{
    cmd c = { .type = CMD_REBALANCE };
    cmd_result res;
    ts_error e = {0};
    repair_rebalance_stats rb;

    c.u.rebalance = *nr;
    c.u.rebalance.running = 0;
    if (store_submit(r->st, &c, &res, &e) != 0) {
        TS_WARN("rebalance: cannot record its end (retrying next round): %s", e.msg);
        return;
    }
    repair_get_rebalance(r, &rb);
    TS_INFO("rebalance: finished: %llu copies (%.1f MiB) by this leader, imbalance now %.1f%%",
            (unsigned long long)rb.copies_total, (double)rb.bytes_copied / 1048576.0,
            rb.imbalance * 100.0);
}

/* ---------------------------------------------------------------- rounds */

/* Token buckets of one loop: the shared budget and the rebalance's own. */
struct budget {
    double tokens, rb_tokens;
    uint64_t rb_rate;           /* the rebalance's bandwidth (0: none of its own) */
};

static void round_once(repair *r, struct budget *b, int64_t now, int64_t *last_progress)
{
    plan_view v;
    ts_repair_plan plan;
    ts_error e = {0};
    double *tokens = &b->tokens;
    int finish = 0;

    cluster_tick(r->cl, now);
    confirm_copies(r, now);
    plan_view_build(r->st, r->cl, now, &v);
    b->rb_rate = v.rebalance.running ? v.rebalance.bandwidth : 0;
    pthread_mutex_lock(&r->mu);
    r->stats.reports_complete = v.reports_complete;
    r->rb.running = v.rebalance.running;
    r->rb.acting = 0;
    if (!v.reports_complete) {
        /* A new leader (or a server back from silence) has not told us what
         * it holds: deciding now could copy what exists, or delete what is
         * needed.  Servers that never report turn down and stop counting. */
        snprintf(r->rb.note, sizeof(r->rb.note), "waiting for chunkserver reports");
        pthread_mutex_unlock(&r->mu);
        goto free_view;
    }
    size_t ntasks = view_add_tasks(r, &v);
    account(r, &v, now);
    for (size_t i = 0; i < v.nservers; i++)
        if (held(r, v.ids[i], NULL, now))
            v.servers[i].copies_in = r->o.max_copies_per_server;   /* busy: not a destination */
    ts_repair_limits lim = {
        .max_copies_in = r->o.max_copies_per_server,
        .max_copies_out = r->o.max_copies_per_server,
        .byte_budget = *tokens >= 1 ? (uint64_t)*tokens : 1,
        /* copy, confirm, then delete: nothing in flight or unconfirmed */
        .reports_complete = ntasks == 0,
    };
    pthread_mutex_unlock(&r->mu);
    if (ts_repair_plan_make(v.servers, v.nservers, v.chunks, v.nchunks, &lim, &plan, &e) != 0) {
        TS_ERROR("repair: cannot plan: %s", e.msg);
        goto free_view;
    }
    pthread_mutex_lock(&r->mu);
    r->stats.deferred = plan.deferred;
    enqueue(r, &v, &plan, tokens, now);
    count_tasks(r);
    if (r->stats.episode_active && now - *last_progress >= PROGRESS_EVERY_MS) {
        *last_progress = now;
        TS_INFO("repair: %llu under-replicated (%llu single-replica, %llu lost), %llu copies "
                "running, %llu awaiting report, %.1f MiB copied in %.1f s",
                (unsigned long long)r->stats.under_replicated,
                (unsigned long long)r->stats.single_replica, (unsigned long long)r->stats.lost,
                (unsigned long long)r->stats.copies_running,
                (unsigned long long)r->stats.copies_awaiting,
                (double)(r->stats.copy_bytes_total - r->episode_bytes_at_start) / 1048576.0,
                (double)r->stats.episode_ms / 1000.0);
    }
    pthread_mutex_unlock(&r->mu);
    ts_repair_plan_free(&plan);
    if (v.rebalance.running)
        finish = rebalance_round(r, &v, tokens, &b->rb_tokens, now);
    if (finish)
        rebalance_finish(r, &v.rebalance);
free_view:
    plan_view_free(&v);
}

static void refill(double *tokens, double rate, int64_t elapsed_ms)
{
    *tokens += rate * (double)elapsed_ms / 1000.0;
    if (*tokens > rate)
        *tokens = rate;      /* at most one second of burst */
}

static void *loop_main(void *arg)
{
    repair *r = arg;
    uint64_t term = 0;
    struct budget b = {0};
    int64_t last = ts_mono_ms(), last_progress = 0;

    while (!atomic_load(&r->stop)) {
        int64_t now = ts_mono_ms();
        refill(&b.tokens, (double)r->o.bytes_per_sec, now - last);
        if (b.rb_rate > 0)
            refill(&b.rb_tokens, (double)b.rb_rate, now - last);
        last = now;
        uint64_t t = store_leader_term(r->st);
        pthread_mutex_lock(&r->mu);
        r->stats.leader = t != 0;
        if (t == 0)
            r->rb.acting = 0;
        pthread_mutex_unlock(&r->mu);
        /* The heartbeat handler may have started the term already. */
        cluster_lead_term(r->cl, t, now);
        if (t != 0 && t != term) {
            TS_INFO("repair: leader in term %llu: waiting for chunkserver reports",
                    (unsigned long long)t);
            pthread_mutex_lock(&r->mu);
            r->stats.episode_active = 0;
            pthread_mutex_unlock(&r->mu);
        }
        if (t != 0)
            round_once(r, &b, now, &last_progress);
        term = t;
        /* A finished copy frees a slot: plan the next one without waiting
         * the whole interval (short chunks would otherwise leave the
         * servers idle between rounds). */
        for (int64_t slept = 0; slept < r->o.interval_ms && !atomic_load(&r->stop);
             slept += SLEEP_SLICE_MS) {
            if (slept >= KICKED_ROUND_MS && atomic_exchange(&r->kick, 0))
                break;
            ts_sleep_ms(SLEEP_SLICE_MS);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int repair_start(store *st, cluster *cl, const repair_opts *o, repair **out, ts_error *err)
{
    repair *r = ts_calloc(1, sizeof(*r));
    r->st = st;
    r->cl = cl;
    r->o = *o;
    if (r->o.bytes_per_sec == 0)
        r->o.bytes_per_sec = 64ull << 20;
    if (r->o.max_copies_per_server == 0)
        r->o.max_copies_per_server = 2;
    if (r->o.workers == 0)
        r->o.workers = 8;
    if (r->o.interval_ms <= 0)
        r->o.interval_ms = 500;
    if (r->o.confirm_timeout_ms <= 0)
        r->o.confirm_timeout_ms = 30000;
    r->stats.last_single_restore_ms = -1;
    r->stats.last_full_restore_ms = -1;
    r->stats.bytes_per_sec = r->o.bytes_per_sec;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->workers = ts_calloc(r->o.workers, sizeof(pthread_t));
    for (unsigned i = 0; i < r->o.workers; i++) {
        int rc = pthread_create(&r->workers[i], NULL, worker_main, r);
        if (rc != 0) {
            ts_fail(err, TS_EIO, "repair: cannot start worker thread %u: %s", i, strerror(rc));
            goto stop_workers;
        }
        r->nworkers_started++;
    }
    int rc = pthread_create(&r->loop, NULL, loop_main, r);
    if (rc != 0) {
        ts_fail(err, TS_EIO, "repair: cannot start its thread: %s", strerror(rc));
        goto stop_workers;
    }
    TS_INFO("repair: loop started (budget %.1f MiB/s, %u copies in and out per server, "
            "%u workers)", (double)r->o.bytes_per_sec / 1048576.0, r->o.max_copies_per_server,
            r->o.workers);
    *out = r;
    return 0;
stop_workers:
    atomic_store(&r->stop, 1);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (unsigned i = 0; i < r->nworkers_started; i++)
        pthread_join(r->workers[i], NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->workers);
    free(r);
    return TS_EIO;
}

void repair_stop(repair *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->loop, NULL);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (unsigned i = 0; i < r->nworkers_started; i++)
        pthread_join(r->workers[i], NULL);
    while (r->tasks) {
        struct task *t = r->tasks;
        r->tasks = t->next;
        free(t);
    }
    free(r->holds);
    free(r->workers);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void repair_get_rebalance(repair *r, repair_rebalance_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->rb;
    out->last_round_ms_ago = r->rb_round_ms ? ts_mono_ms() - r->rb_round_ms : -1;
    pthread_mutex_unlock(&r->mu);
}

void repair_rebalance_started(repair *r, uint64_t bytes, uint64_t moves)
{
    pthread_mutex_lock(&r->mu);
    memset(&r->rb, 0, sizeof(r->rb));
    r->rb.running = 1;
    r->rb.bytes_remaining = bytes;
    r->rb.moves_remaining = moves;
    r->rb_round_ms = 0;
    pthread_mutex_unlock(&r->mu);
}

void repair_get_stats(repair *r, repair_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    if (out->episode_active)
        out->episode_ms = ts_mono_ms() - r->episode_start_ms;
    pthread_mutex_unlock(&r->mu);
}
