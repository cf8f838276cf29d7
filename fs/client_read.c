/*
 * The read path of libtessera: a read is planned over the file's extents
 * (holes become zeros, data is cut into pieces of at most 8 MiB), and each
 * data piece is fetched with an HTTP Range GET from one replica after
 * another until one serves it.  Several pieces of a large read are fetched in
 * parallel on the client's I/O pool.
 *
 * Replica order for a chunk: the servers the metadata server lists as
 * holding it that are up, then listed ones that are draining (alive, still
 * serving), then every other up server in placement order (after a
 * metadata failover the lists are rebuilt from reports, and placement is
 * where the data should be), and last the listed servers believed down.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/placement.h"
#include "common/util.h"
#include "fs/client_int.h"

/* ------------------------------------------------------------- planning */

static void push_piece(tess_read_piece **v, size_t *n, size_t *cap, tess_read_piece p)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *v = ts_realloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = p;
}

size_t tess_read_plan(const tess_layout_extent *extents, size_t nextents, uint64_t file_size,
                      uint64_t offset, size_t len, size_t max_piece, tess_read_piece **pieces,
                      size_t *npieces)
{
    tess_read_piece *v = NULL;
    size_t n = 0, cap = 0, i = 0;
    uint64_t end, cur;

    *pieces = NULL;
    *npieces = 0;
    if (offset >= file_size || len == 0)
        return 0;
    if (max_piece == 0)
        max_piece = TESS_READ_PIECE;
    end = offset + len < offset || offset + len > file_size ? file_size : offset + len;
    /* First extent that ends after offset (extents are sorted). */
    while (i < nextents && extents[i].ext.file_offset + extents[i].ext.length <= offset)
        i++;
    for (cur = offset; cur < end;) {
        const ts_extent *e = i < nextents ? &extents[i].ext : NULL;

        if (e && e->file_offset <= cur) {
            uint64_t stop = TS_MIN(e->file_offset + e->length, end);
            while (cur < stop) {
                size_t take = (size_t)TS_MIN(stop - cur, (uint64_t)max_piece);
                push_piece(&v, &n, &cap, (tess_read_piece){
                    .buf_off = (size_t)(cur - offset), .len = take, .extent = i,
                    .chunk_off = e->chunk_offset + (cur - e->file_offset)});
                cur += take;
            }
            i++;
        } else {
            /* A hole up to the next extent or the end. */
            uint64_t stop = e ? TS_MIN(e->file_offset, end) : end;
            push_piece(&v, &n, &cap, (tess_read_piece){
                .buf_off = (size_t)(cur - offset), .len = (size_t)(stop - cur),
                .extent = SIZE_MAX, .chunk_off = 0});
            cur = stop;
        }
    }
    *pieces = v;
    *npieces = n;
    return (size_t)(end - offset);
}

/* ------------------------------------------------------- replica order */

static int already(const size_t *out, size_t n, size_t idx)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] == idx)
            return 1;
    return 0;
}

static void add_listed(const tess_servers *servers, char *const *replicas, size_t nreplicas,
                       enum tess_server_state want, int negate, size_t *out, size_t *n)
{
    for (size_t r = 0; r < nreplicas; r++)
        for (size_t i = 0; i < servers->n; i++) {
            int match = servers->v[i].state == want;
            if (negate)
                match = !match;
            if (strcmp(servers->v[i].id, replicas[r]) == 0 && match && !already(out, *n, i))
                out[(*n)++] = i;
        }
}

size_t tess_replica_order(const ts_chunk_id *id, char *const *replicas, size_t nreplicas,
                          const tess_servers *servers, size_t *out)
{
    ts_place_server *ps;
    size_t *ranked, n = 0, nranked;

    add_listed(servers, replicas, nreplicas, TESS_SERVER_UP, 0, out, &n);
    add_listed(servers, replicas, nreplicas, TESS_SERVER_DRAINING, 0, out, &n);
    if (servers->n > 0) {
        ps = ts_calloc(servers->n, sizeof(*ps));
        ranked = ts_calloc(servers->n, sizeof(*ranked));
        for (size_t i = 0; i < servers->n; i++) {
            ps[i].id = servers->v[i].id;
            ps[i].zone = servers->v[i].zone;
            ps[i].weight = servers->v[i].weight;
            ps[i].eligible = servers->v[i].state == TESS_SERVER_UP;
        }
        ts_place_prepare(ps, servers->n);
        nranked = ts_place_rank(id, ps, servers->n, ranked);
        for (size_t k = 0; k < nranked; k++)
            if (!already(out, n, ranked[k]))
                out[n++] = ranked[k];
        free(ranked);
        free(ps);
    }
    /* Listed but believed down or unknown: a last resort, heartbeats lag. */
    add_listed(servers, replicas, nreplicas, TESS_SERVER_UP, 1, out, &n);
    return n;
}

/* ------------------------------------------------------------- fetching */

/* Reads one data piece from the first replica that serves it. */
static int fetch_piece(tess_client *c, const tess_layout_extent *x, const tess_servers *servers,
                       const tess_read_piece *p, char *buf, ts_error *err)
{
    char hex[TS_CHUNK_ID_HEX_LEN + 1];
    size_t *order = ts_calloc(servers->n + 1, sizeof(*order));
    size_t norder = tess_replica_order(&x->ext.chunk, x->replicas, x->nreplicas, servers, order);
    ts_buf tried = {0};
    size_t k, front = 0;
    int rc;

    /* Servers that just failed another read go last (stable order). */
    for (k = 0; k < norder; k++) {
        if (!tess_suspect_is(c, servers->v[order[k]].id)) {
            size_t keep = order[k];
            memmove(order + front + 1, order + front, (k - front) * sizeof(*order));
            order[front++] = keep;
        }
    }

    ts_chunk_id_to_hex(&x->ext.chunk, hex);
    for (k = 0; k < norder; k++) {
        const tess_server *s = &servers->v[order[k]];
        ts_http_result r = {0};
        char url[512];
        size_t got = 0;
        ts_error e;

        snprintf(url, sizeof(url), "http://%s/v1/chunk/%s", s->address, hex);
        rc = ts_http_get_range(url, p->chunk_off, p->len, buf + p->buf_off, &got, c->timeout_ms,
                               &r, &e);
        if (rc == 0 && r.status >= 200 && r.status < 300 && got == p->len) {
            ts_http_result_free(&r);
            ts_buf_free(&tried);
            free(order);
            return 0;
        }
        if (rc == 0 && r.status >= 300)
            ts_http_result_error(&r, "", &e);
        else if (rc == 0)
            ts_fail(&e, TS_EPROTO, "short read: %zu of %zu bytes", got, p->len);
        ts_http_result_free(&r);
        tess_suspect_note(c, s->id);
        TS_WARN("chunk %s [%llu, +%zu): replica %s (%s) failed: %s; trying the next one", hex,
                (unsigned long long)p->chunk_off, p->len, s->id, s->address, e.msg);
        ts_buf_printf(&tried, "%s%s (%s): %s", tried.len ? "; " : "", s->id, s->address, e.msg);
    }
    if (norder == 0)
        rc = ts_fail(err, TS_EUNAVAIL,
                     "chunk %s: no replica to read from (the file lists none and no chunkserver is up)",
                     hex);
    else
        rc = ts_fail(err, TS_EUNAVAIL, "chunk %s [%llu, +%zu): every replica failed: %s", hex,
                     (unsigned long long)p->chunk_off, p->len, tried.data);
    ts_buf_free(&tried);
    free(order);
    return rc;
}

/* One parallel read: pieces fetched on the pool, the caller waits for all. */
typedef struct read_group {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
    int rc;                     /* first failure */
    ts_error err;
} read_group;

typedef struct read_job {
    tess_task task;
    read_group *g;
    tess_client *c;
    const tess_layout_extent *x;
    const tess_servers *servers;
    const tess_read_piece *piece;
    char *buf;
} read_job;

static void read_task(void *arg)
{
    read_job *j = arg;
    read_group *g = j->g;
    ts_error e;
    int rc = fetch_piece(j->c, j->x, j->servers, j->piece, j->buf, &e);

    pthread_mutex_lock(&g->mu);
    if (rc != 0 && g->rc == 0) {
        g->rc = rc;
        g->err = e;
    }
    if (--g->pending == 0)
        pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

ssize_t tess_read(tess_client *c, const tess_layout *layout, uint64_t offset, size_t len,
                  void *buf, ts_error *err)
{
    tess_read_piece *pieces = NULL;
    size_t npieces = 0, ndata = 0, total;
    tess_servers servers = {0};
    int rc = 0;

    total = tess_read_plan(layout->extents, layout->nextents, layout->attr.size, offset, len,
                           TESS_READ_PIECE, &pieces, &npieces);
    /* Holes and inline chunks are served here; the rest needs chunkservers
     * (marked by extent != SIZE_MAX after this loop). */
    for (size_t i = 0; i < npieces; i++) {
        const tess_layout_extent *x =
            pieces[i].extent == SIZE_MAX ? NULL : &layout->extents[pieces[i].extent];
        if (x == NULL) {
            memset((char *)buf + pieces[i].buf_off, 0, pieces[i].len);
        } else if (x->inline_data) {
            memcpy((char *)buf + pieces[i].buf_off, x->inline_data + pieces[i].chunk_off,
                   pieces[i].len);
            pieces[i].extent = SIZE_MAX;
        } else {
            ndata++;
        }
    }
    if (ndata == 0)
        goto free_pieces;
    if ((rc = tess_membership(c, 0, &servers, err)) != 0)
        goto free_pieces;

    if (ndata == 1) {
        for (size_t i = 0; i < npieces && rc == 0; i++)
            if (pieces[i].extent != SIZE_MAX)
                rc = fetch_piece(c, &layout->extents[pieces[i].extent], &servers, &pieces[i], buf, err);
    } else {
        read_group g = {.pending = ndata};
        read_job *jobs = ts_calloc(ndata, sizeof(*jobs));
        size_t k = 0;

        pthread_mutex_init(&g.mu, NULL);
        pthread_cond_init(&g.cv, NULL);
        for (size_t i = 0; i < npieces; i++) {
            if (pieces[i].extent == SIZE_MAX)
                continue;
            jobs[k] = (read_job){.task = {.fn = read_task, .arg = &jobs[k]}, .g = &g, .c = c,
                                 .x = &layout->extents[pieces[i].extent], .servers = &servers,
                                 .piece = &pieces[i], .buf = buf};
            tess_pool_submit(c, &jobs[k].task);
            k++;
        }
        pthread_mutex_lock(&g.mu);
        while (g.pending > 0)
            pthread_cond_wait(&g.cv, &g.mu);
        pthread_mutex_unlock(&g.mu);
        rc = g.rc;
        if (rc != 0 && err)
            *err = g.err;
        pthread_cond_destroy(&g.cv);
        pthread_mutex_destroy(&g.mu);
        free(jobs);
    }
    tess_servers_free(&servers);
free_pieces:
    free(pieces);
    return rc != 0 ? rc : (ssize_t)total;
}

/* ------------------------------------------------------------ convenience */

int tess_get_file(tess_client *c, const char *remote_path, int fd, tess_progress_fn progress,
                  void *progress_ctx, uint64_t *bytes, ts_error *err)
{
    /* Four pieces per step: the parallel fetch of one step overlaps nothing
     * else, but four 8 MiB fetches at once keep several servers busy. */
    const size_t step = 4 * (size_t)TESS_READ_PIECE;
    char norm[TS_PATH_MAX + 1];
    tess_layout *l = NULL;
    ts_attr a;
    char *buf = NULL;
    uint64_t off = 0;
    int rc;

    if ((rc = tess_path_normalize(remote_path, norm, err)) != 0)
        return rc;
    if ((rc = tess_resolve(c, norm, &a, err)) != 0) {
        if (rc == TS_ENOENT)
            ts_fail(err, rc, "no such file %s", norm);
        return rc;
    }
    if ((a.mode & S_IFMT) == S_IFDIR)
        return ts_fail(err, TS_EISDIR, "%s is a directory", norm);
    if ((a.mode & S_IFMT) != S_IFREG)
        return ts_fail(err, TS_EINVAL, "%s is not a regular file", norm);
    if ((rc = tess_get_layout(c, a.ino, &l, err)) != 0)
        return rc;
    buf = ts_malloc(step);
    while (off < l->attr.size) {
        ssize_t n = tess_read(c, l, off, step, buf, err);
        if (n < 0) {
            rc = (int)n;
            goto free_buf;
        }
        if (n == 0)
            break;
        if (ts_write_full(fd, buf, (size_t)n) != 0) {
            rc = ts_fail(err, TS_EIO, "write: %s", strerror(errno));
            goto free_buf;
        }
        off += (uint64_t)n;
        if (progress)
            progress(progress_ctx, off, l->attr.size);
    }
    if (bytes)
        *bytes = off;
free_buf:
    free(buf);
    tess_layout_free(l);
    return rc;
}
