/*
 * The task executor (see task_exec.h): the task table, the HTTP endpoints,
 * and the storage around mapreduce/task.h's runner: split reads from the
 * chunk store or a replica, output files through libtessera, and the
 * shuffle fetch of a reduce's input from the map servers.
 *
 * Life of an attempt:
 *
 *   POST ──► running ──(thread ends)──► succeeded | failed | killed
 *               │                              │
 *               └── DELETE: cancel, unlist ────┴── DELETE / retain_s: unlist;
 *                                                  the last reference frees
 *                                                  it and removes WORK/ID
 */
#include "chunkserver/task_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "mapreduce/task.h"

#define TASK_PREFIX "/v1/task"
#define TASK_ID_MAX 128
#define FETCH_PIECE (8u << 20)
#define FETCH_TIMEOUT_MS 60000
#define TAIL_BYTES 2048

enum task_state { T_RUNNING = 0, T_SUCCEEDED, T_FAILED, T_KILLED };
static const char *const state_names[] = {"running", "succeeded", "failed", "killed"};

struct task {
    ts_task_exec *x;
    char *id;
    int is_map;
    json_t *spec;               /* owned */
    char *dir;                  /* WORK/ID */
    int refs;                   /* under x->lock */
    enum task_state state;      /* under x->lock */
    volatile int cancel;
    int64_t start_ms, end_ms;
    char error[600];
    char tail[TAIL_BYTES + 1];
    mr_task_stats st;
    uint64_t local_bytes, remote_bytes, shuffle_bytes;
    uint64_t *offsets;          /* map output partitions (nparts + 1) */
    unsigned nparts;
    struct task *next;
};

struct ts_task_exec {
    ts_chunk_store *store;
    tess_client *client;
    char *server_id;
    char *work_dir;
    unsigned slots;
    size_t sort_mem;
    long retain_s;
    pthread_mutex_t lock;
    pthread_cond_t idle;        /* signalled when running drops */
    struct task *tasks;         /* the table (listed tasks) */
    unsigned running;
    int stopping;
};

/* ------------------------------------------------------- files, helpers */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        TS_WARN("task executor: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* rm -rf path (best effort; logged). */
static void remove_tree(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        TS_WARN("task executor: cannot remove %s: %s", path, strerror(errno));
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > TASK_ID_MAX || id[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static void task_unref(struct task *t)
{
    ts_task_exec *x = t->x;
    pthread_mutex_lock(&x->lock);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&x->lock);
    if (!last)
        return;
    remove_tree(t->dir);
    json_decref(t->spec);
    free(t->offsets);
    free(t->dir);
    free(t->id);
    free(t);
}

/* Finds a listed task and takes a reference (NULL when unknown). */
static struct task *task_get(ts_task_exec *x, const char *id)
{
    struct task *t;

    pthread_mutex_lock(&x->lock);
    for (t = x->tasks; t && strcmp(t->id, id) != 0; t = t->next)
        ;
    if (t)
        t->refs++;
    pthread_mutex_unlock(&x->lock);
    return t;
}

/* Unlists t (caller holds the lock); the table's reference is returned to
 * the caller, who drops it after unlocking. */
static void unlist_locked(ts_task_exec *x, struct task *t)
{
    for (struct task **pp = &x->tasks; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            return;
        }
    }
}

/* ------------------------------------------------------------ map input */

struct split_reader {
    ts_task_exec *x;
    struct task *t;
    tess_layout *layout;
};

/* Reads from the extent holding off: the local chunk file when this server
 * has it, else through the client from a replica. */
static ssize_t split_read(void *ctx, uint64_t off, void *buf, size_t len, ts_error *err)
{
    struct split_reader *r = ctx;
    const tess_layout *l = r->layout;

    if (off >= l->attr.size)
        return 0;
    len = (size_t)TS_MIN((uint64_t)len, l->attr.size - off);
    for (size_t i = 0; i < l->nextents; i++) {
        const ts_extent *e = &l->extents[i].ext;
        if (off < e->file_offset || off >= e->file_offset + e->length)
            continue;
        size_t n = (size_t)TS_MIN((uint64_t)len, e->file_offset + e->length - off);
        if (ts_chunk_store_contains(r->x->store, &e->chunk, NULL)) {
            ts_error lerr;
            if (ts_chunk_store_read(r->x->store, &e->chunk, e->chunk_offset + (off - e->file_offset),
                                    n, buf, &lerr) == 0) {
                r->t->local_bytes += n;
                return (ssize_t)n;
            }
            /* A corrupt or vanished local copy: a replica still serves. */
            TS_WARN("task %s: local read failed (%s); reading from a replica", r->t->id, lerr.msg);
        }
        len = n;
        break;
    }
    ssize_t got = tess_read(r->x->client, l, off, len, buf, err);
    if (got > 0)
        r->t->remote_bytes += (uint64_t)got;
    return got;
}

/* --------------------------------------------------------------- output */

struct out_file {
    tess_writer *w;
    uint64_t parent;
    char *name;
};

static int out_open(ts_task_exec *x, const json_t *spec, struct out_file *o, ts_error *err)
{
    const json_t *out = json_object_get(spec, "output");
    const char *dir, *name;
    ts_attr parent, file;
    uint64_t chunk_size = 0, replicas = 0;
    int rc;

    memset(o, 0, sizeof(*o));
    if (!json_is_object(out))
        return ts_fail(err, TS_EINVAL, "spec: 'output' is missing");
    if ((rc = ts_json_str(out, "dir", &dir, err)) != 0 ||
        (rc = ts_json_str(out, "name", &name, err)) != 0 ||
        (rc = ts_json_u64_opt(spec, "chunk_size", &chunk_size, NULL, err)) != 0 ||
        (rc = ts_json_u64_opt(spec, "replicas", &replicas, NULL, err)) != 0)
        return rc;
    if ((rc = tess_resolve(x->client, dir, &parent, err)) != 0)
        return ts_error_prefix(err, "output directory %s", dir);
    if ((rc = tess_create(x->client, parent.ino, name, 0644, 0, 0, TESS_CREATE_TRUNC, &file, NULL,
                          err)) != 0)
        return ts_error_prefix(err, "create %s/%s", dir, name);
    tess_writer_opts wo = {.replicas = (unsigned)replicas, .chunk_size = chunk_size,
                           .in_flight = 2, .truncate = 1};
    if ((rc = tess_writer_open(x->client, file.ino, 0, &wo, &o->w, err)) != 0)
        return ts_error_prefix(err, "write %s/%s", dir, name);
    o->parent = parent.ino;
    o->name = ts_strdup(name);
    return 0;
}

static int out_write(void *ctx, const char *buf, size_t len, ts_error *err)
{
    struct out_file *o = ctx;
    return tess_writer_write(o->w, buf, len, err);
}

/* Commits (ok) or drops the output file. */
static int out_close(ts_task_exec *x, struct out_file *o, int ok, ts_error *err)
{
    int rc = 0;

    if (o->w == NULL)
        return 0;
    if (ok) {
        rc = tess_writer_close(o->w, NULL, err);
    } else {
        tess_writer_abort(o->w);
        rc = -1;
    }
    o->w = NULL;
    if (rc != 0) {
        ts_error uerr;
        if (tess_unlink(x->client, o->parent, o->name, &uerr) != 0)
            TS_WARN("cannot remove partial output %s: %s", o->name, uerr.msg);
    }
    free(o->name);
    o->name = NULL;
    return ok ? rc : 0;
}

/* ------------------------------------------------------ running a task */

/* Copies the shipped files into the working directory. */
static int fetch_files(ts_task_exec *x, struct task *t, ts_error *err)
{
    const json_t *files = json_object_get(t->spec, "files");
    size_t i;
    json_t *f;

    if (files == NULL)
        return 0;
    if (!json_is_array(files))
        return ts_fail(err, TS_EINVAL, "spec: 'files' must be an array");
    json_array_foreach(files, i, f) {
        const char *name, *path;
        int rc;
        if ((rc = ts_json_str(f, "name", &name, err)) != 0 ||
            (rc = ts_json_str(f, "path", &path, err)) != 0)
            return rc;
        if (!valid_id(name))
            return ts_fail(err, TS_EINVAL, "shipped file name '%s' is not a plain file name", name);
        char *local = ts_sprintf("%s/%s", t->dir, name);
        int fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (fd < 0) {
            rc = ts_fail(err, TS_EIO, "create %s: %s", local, strerror(errno));
        } else {
            rc = tess_get_file(x->client, path, fd, NULL, NULL, NULL, err);
            if (close(fd) != 0 && rc == 0)
                rc = ts_fail(err, TS_EIO, "close %s: %s", local, strerror(errno));
            if (rc != 0)
                ts_error_prefix(err, "shipped file %s", path);
        }
        free(local);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int run_map(ts_task_exec *x, struct task *t, mr_cmd_env *env, ts_error *err)
{
    const json_t *in = json_object_get(t->spec, "input");
    const char *path, *cmd, *combiner = NULL;
    uint64_t start, end, parts;
    ts_attr attr;
    struct split_reader sr = {.x = x, .t = t};
    struct out_file of = {0};
    int rc;

    if (!json_is_object(in))
        return ts_fail(err, TS_EINVAL, "spec: 'input' is missing");
    if ((rc = ts_json_str(t->spec, "cmd", &cmd, err)) != 0 ||
        (rc = ts_json_str(in, "path", &path, err)) != 0 ||
        (rc = ts_json_u64(in, "start", &start, err)) != 0 ||
        (rc = ts_json_u64(in, "end", &end, err)) != 0 ||
        (rc = ts_json_u64(t->spec, "partitions", &parts, err)) != 0)
        return rc;
    if (json_is_string(json_object_get(t->spec, "combiner")))
        combiner = json_string_value(json_object_get(t->spec, "combiner"));
    if (parts > 100000)
        return ts_fail(err, TS_EINVAL, "spec: %" PRIu64 " partitions is too many", parts);
    if ((rc = tess_resolve(x->client, path, &attr, err)) != 0 ||
        (rc = tess_get_layout(x->client, attr.ino, &sr.layout, err)) != 0)
        return ts_error_prefix(err, "input %s", path);
    char *out_path = ts_sprintf("%s/output", t->dir);
    mr_map_spec ms = {
        .mapper = cmd, .combiner = combiner, .env = *env, .start = start, .end = end,
        .nparts = (unsigned)parts, .sort_mem = x->sort_mem, .spill_dir = t->dir,
        .out_path = out_path, .read = split_read, .read_ctx = &sr,
        .sink = out_write, .sink_ctx = &of,
    };
    if (parts == 0 && (rc = out_open(x, t->spec, &of, err)) != 0)
        goto free_layout;
    t->nparts = (unsigned)parts;
    t->offsets = parts ? ts_calloc(parts + 1, sizeof(*t->offsets)) : NULL;
    rc = mr_run_map(&ms, t->offsets, &t->st, err);
    if (parts == 0 && out_close(x, &of, rc == 0, err) != 0 && rc == 0)
        rc = err->code;
free_layout:
    free(out_path);
    tess_layout_free(sr.layout);
    return rc;
}

/* Downloads one map output partition into path, piece by piece. */
static int fetch_source(struct task *t, const char *addr, const char *task, unsigned part,
                        uint64_t length, const char *path, ts_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint64_t off = 0;
    int rc = 0;

    if (fd < 0)
        return ts_fail(err, TS_EIO, "create %s: %s", path, strerror(errno));
    while (off < length && rc == 0) {
        uint64_t n = TS_MIN(length - off, (uint64_t)FETCH_PIECE);
        char *url = ts_sprintf("http://%s" TASK_PREFIX "/%s/output/%u?offset=%" PRIu64
                               "&length=%" PRIu64, addr, task, part, off, n);
        ts_http_result res = {0};
        rc = ts_http_call("GET", url, NULL, NULL, 0, FETCH_TIMEOUT_MS, &res, err);
        if (rc == 0 && res.status != 200)
            rc = ts_http_result_error(&res, "fetch", err);
        else if (rc == 0 && res.body_len != n)
            rc = ts_fail(err, TS_EPROTO, "got %zu bytes, expected %" PRIu64, res.body_len, n);
        if (rc == 0 && ts_write_full(fd, res.body, res.body_len) != 0)
            rc = ts_fail(err, TS_EIO, "write %s: %s", path, strerror(errno));
        if (rc == 0)
            off += n;
        ts_http_result_free(&res);
        free(url);
        if (t->cancel && rc == 0)
            rc = ts_fail(err, TS_EBUSY, "killed");
    }
    if (close(fd) != 0 && rc == 0)
        rc = ts_fail(err, TS_EIO, "close %s: %s", path, strerror(errno));
    t->shuffle_bytes += off;
    return rc;
}

static int run_reduce(ts_task_exec *x, struct task *t, mr_cmd_env *env, ts_error *err)
{
    const json_t *srcs = json_object_get(t->spec, "sources");
    const char *cmd;
    uint64_t part;
    struct out_file of = {0};
    char **inputs = NULL;
    size_t n = 0, i;
    json_t *s;
    int rc;

    if ((rc = ts_json_str(t->spec, "cmd", &cmd, err)) != 0 ||
        (rc = ts_json_u64(t->spec, "partition", &part, err)) != 0)
        return rc;
    if (!json_is_array(srcs))
        return ts_fail(err, TS_EINVAL, "spec: 'sources' must be an array");
    inputs = ts_calloc(json_array_size(srcs) + 1, sizeof(*inputs));
    json_array_foreach(srcs, i, s) {
        const char *addr, *task, *server = "?";
        uint64_t length;
        if ((rc = ts_json_str(s, "addr", &addr, err)) != 0 ||
            (rc = ts_json_str(s, "task", &task, err)) != 0 ||
            (rc = ts_json_u64(s, "length", &length, err)) != 0)
            goto free_inputs;
        if (json_is_string(json_object_get(s, "server")))
            server = json_string_value(json_object_get(s, "server"));
        inputs[n] = ts_sprintf("%s/in-%05zu", t->dir, n);
        n++;
        if ((rc = fetch_source(t, addr, task, (unsigned)part, length, inputs[n - 1], err)) != 0) {
            /* The coordinator recognizes this prefix: the map output is
             * gone, which is not the reduce's fault. */
            ts_error_prefix(err, "shuffle fetch of %s from %s (%s)", task, server, addr);
            goto free_inputs;
        }
    }
    if ((rc = out_open(x, t->spec, &of, err)) != 0)
        goto free_inputs;
    mr_reduce_spec rs = {.reducer = cmd, .env = *env, .inputs = (const char *const *)inputs,
                         .ninputs = n, .sink = out_write, .sink_ctx = &of};
    rc = mr_run_reduce(&rs, &t->st, err);
    if (out_close(x, &of, rc == 0, err) != 0 && rc == 0)
        rc = err->code;
free_inputs:
    for (i = 0; i < n; i++) {
        unlink(inputs[i]);
        free(inputs[i]);
    }
    free(inputs);
    return rc;
}

/* The last TAIL_BYTES of the log, for status and error messages. */
static void read_tail(const char *path, char *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;

    out[0] = '\0';
    if (fd < 0)
        return;
    if (fstat(fd, &sb) == 0) {
        off_t from = sb.st_size > TAIL_BYTES ? sb.st_size - TAIL_BYTES : 0;
        ssize_t got = ts_pread_full(fd, out, TAIL_BYTES, from);
        out[got > 0 ? got : 0] = '\0';
    }
    close(fd);
}

static void *task_thread(void *arg)
{
    struct task *t = arg;
    ts_task_exec *x = t->x;
    ts_error err = {0};
    char *log_path = ts_sprintf("%s/stderr.log", t->dir);
    int log_fd = -1, rc;

    if ((rc = ts_mkdir_p(t->dir, &err)) != 0)
        goto finish;
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        rc = ts_fail(&err, TS_EIO, "create %s: %s", log_path, strerror(errno));
        goto finish;
    }
    if ((rc = fetch_files(x, t, &err)) != 0)
        goto finish;
    const char *input = json_string_value(json_object_get(json_object_get(t->spec, "input"), "path"));
    char *envv[4] = {ts_sprintf("TESSERA_TASK_ID=%s", t->id),
                     /* What Hadoop Streaming exports, for mappers that need
                      * the file name (an inverted index). */
                     ts_sprintf("mapreduce_map_input_file=%s", input ? input : ""),
                     ts_sprintf("map_input_file=%s", input ? input : ""), NULL};
    mr_cmd_env env = {.workdir = t->dir, .env = envv, .stderr_fd = log_fd, .cancel = &t->cancel};
    rc = t->is_map ? run_map(x, t, &env, &err) : run_reduce(x, t, &env, &err);
    for (int i = 0; i < 3; i++)
        free(envv[i]);
finish:
    if (log_fd >= 0)
        close(log_fd);
    read_tail(log_path, t->tail);
    free(log_path);
    pthread_mutex_lock(&x->lock);
    t->end_ms = ts_mono_ms();
    if (rc == 0) {
        t->state = T_SUCCEEDED;
    } else {
        t->state = t->cancel ? T_KILLED : T_FAILED;
        snprintf(t->error, sizeof(t->error), "%s", err.msg);
    }
    pthread_mutex_unlock(&x->lock);
    if (rc == 0)
        TS_INFO("task %s succeeded in %lld ms (%" PRIu64 " records in, %" PRIu64 " out)", t->id,
                (long long)(t->end_ms - t->start_ms), t->st.records_in, t->st.records_out);
    else
        TS_INFO("task %s %s: %s", t->id, t->cancel ? "killed" : "failed", err.msg);
    ts_http_client_thread_cleanup();
    task_unref(t);
    /* Last: ts_task_exec_stop frees x once nothing runs. */
    pthread_mutex_lock(&x->lock);
    x->running--;
    pthread_cond_broadcast(&x->idle);
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

/* ------------------------------------------------------------ endpoints */

static void respond_json(ts_http_response *resp, int status, json_t *j)
{
    if (j == NULL)
        ts_die("out of memory building a task answer");
    char *text = ts_json_dump(j);
    ts_http_respond_json(resp, status, text);
    free(text);
    json_decref(j);
}

/* Drops finished tasks nobody claimed within retain_s. */
static void sweep(ts_task_exec *x)
{
    struct task *gone = NULL;
    int64_t now = ts_mono_ms();

    pthread_mutex_lock(&x->lock);
    for (struct task **pp = &x->tasks; *pp;) {
        struct task *t = *pp;
        if (t->state != T_RUNNING && now - t->end_ms > x->retain_s * 1000) {
            *pp = t->next;
            t->next = gone;
            gone = t;
        } else {
            pp = &t->next;
        }
    }
    pthread_mutex_unlock(&x->lock);
    while (gone) {
        struct task *t = gone;
        gone = t->next;
        TS_INFO("task %s: dropped %ld s after it ended (never claimed)", t->id, x->retain_s);
        task_unref(t);
    }
}

/* A task refused before its thread started: nothing on disk yet. */
static void free_unstarted(struct task *t)
{
    json_decref(t->spec);
    free(t->dir);
    free(t->id);
    free(t);
}

static void handle_start(ts_task_exec *x, const ts_http_request *req, ts_http_response *resp)
{
    json_t *spec = NULL;
    ts_error err = {0};
    const char *id, *kind;

    sweep(x);
    if (ts_json_parse_object(req->body, req->body_len, &spec, &err) != 0 ||
        ts_json_str(spec, "id", &id, &err) != 0 || ts_json_str(spec, "kind", &kind, &err) != 0) {
        ts_http_respond_ts_error(resp, &err);
        json_decref(spec);
        return;
    }
    if (!valid_id(id) || (strcmp(kind, "map") != 0 && strcmp(kind, "reduce") != 0)) {
        ts_http_respond_error(resp, TS_EINVAL, "task '%.140s' kind '%.20s': bad id or kind", id,
                              kind);
        json_decref(spec);
        return;
    }
    struct task *t = ts_calloc(1, sizeof(*t));
    t->x = x;
    t->id = ts_strdup(id);
    t->is_map = strcmp(kind, "map") == 0;
    t->spec = spec;
    t->dir = ts_sprintf("%s/%s", x->work_dir, id);
    t->refs = 2;   /* the table and the thread */
    t->start_ms = ts_mono_ms();

    pthread_mutex_lock(&x->lock);
    struct task *dup;
    for (dup = x->tasks; dup && strcmp(dup->id, id) != 0; dup = dup->next)
        ;
    if (dup != NULL || x->running >= x->slots || x->stopping) {
        pthread_mutex_unlock(&x->lock);
        if (dup)
            ts_http_respond_error(resp, TS_EEXIST, "task %s exists", t->id);
        else
            ts_http_respond_error(resp, TS_EBUSY, "%s: all %u task slots are busy", x->server_id,
                                  x->slots);
        free_unstarted(t);
        return;
    }
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int prc = pthread_create(&th, &attr, task_thread, t);
    pthread_attr_destroy(&attr);
    if (prc != 0) {
        pthread_mutex_unlock(&x->lock);
        ts_http_respond_error(resp, TS_EIO, "task %s: cannot start a thread: %s", t->id,
                              strerror(prc));
        free_unstarted(t);
        return;
    }
    x->running++;
    t->next = x->tasks;
    x->tasks = t;
    pthread_mutex_unlock(&x->lock);
    TS_INFO("task %s (%s) started", t->id, kind);
    respond_json(resp, 201, json_pack("{s:s}", "id", t->id));
}

static void handle_list(ts_task_exec *x, ts_http_response *resp)
{
    json_t *ids = json_array();

    pthread_mutex_lock(&x->lock);
    for (struct task *t = x->tasks; t; t = t->next)
        json_array_append_new(ids, json_string(t->id));
    unsigned running = x->running;
    pthread_mutex_unlock(&x->lock);
    respond_json(resp, 200, json_pack("{s:s, s:I, s:I, s:o}", "server", x->server_id, "slots",
                                      (json_int_t)x->slots, "running", (json_int_t)running,
                                      "tasks", ids));
}

static void handle_status(ts_task_exec *x, struct task *t, ts_http_response *resp)
{
    json_t *parts = json_array();

    pthread_mutex_lock(&x->lock);
    enum task_state st = t->state;
    int64_t end = st == T_RUNNING ? ts_mono_ms() : t->end_ms;
    pthread_mutex_unlock(&x->lock);
    /* Counters change while running; finished ones are stable. */
    if (st == T_SUCCEEDED)
        for (unsigned p = 0; p < t->nparts; p++)
            json_array_append_new(parts, json_integer((json_int_t)(t->offsets[p + 1] - t->offsets[p])));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I}",
                          "id", t->id, "kind", t->is_map ? "map" : "reduce", "state",
                          state_names[st], "error", st == T_RUNNING ? "" : t->error,
                          "stderr_tail", st == T_RUNNING ? "" : t->tail, "input_bytes",
                          (json_int_t)t->st.input_bytes, "local_bytes", (json_int_t)t->local_bytes,
                          "remote_bytes", (json_int_t)t->remote_bytes, "records_in",
                          (json_int_t)t->st.records_in, "records_out",
                          (json_int_t)t->st.records_out, "output_bytes",
                          (json_int_t)t->st.output_bytes, "shuffle_bytes",
                          (json_int_t)t->shuffle_bytes, "partitions", parts, "elapsed_ms",
                          (json_int_t)(end - t->start_ms));
    respond_json(resp, 200, j);
}

static void handle_output(ts_task_exec *x, struct task *t, const char *part_s,
                          const ts_http_request *req, ts_http_response *resp)
{
    char *end;
    unsigned long p = strtoul(part_s, &end, 10);
    const char *qo = ts_http_query(req, "offset"), *ql = ts_http_query(req, "length");
    uint64_t off = qo ? strtoull(qo, NULL, 10) : 0, len;

    pthread_mutex_lock(&x->lock);
    enum task_state st = t->state;
    pthread_mutex_unlock(&x->lock);
    if (!t->is_map || st != T_SUCCEEDED) {
        ts_http_respond_error(resp, TS_EBUSY, "task %s has no output (%s)", t->id,
                              state_names[st]);
        return;
    }
    if (*part_s == '\0' || *end != '\0' || p >= t->nparts) {
        ts_http_respond_error(resp, TS_ENOENT, "task %s: no partition '%.20s'", t->id, part_s);
        return;
    }
    uint64_t size = t->offsets[p + 1] - t->offsets[p];
    len = ql ? strtoull(ql, NULL, 10) : size - TS_MIN(off, size);
    if (off > size || len > size - off) {
        ts_http_respond_error(resp, TS_ERANGE, "task %s partition %lu: range %" PRIu64 "+%" PRIu64
                              " beyond %" PRIu64 " bytes", t->id, p, off, len, size);
        return;
    }
    char *path = ts_sprintf("%s/output", t->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        ts_http_respond_error(resp, TS_EIO, "open %s: %s", path, strerror(errno));
    else
        ts_http_respond_fd(resp, 200, "text/plain", fd, (off_t)(t->offsets[p] + off), len);
    free(path);
}

static void handle_log(struct task *t, ts_http_response *resp)
{
    char *path = ts_sprintf("%s/stderr.log", t->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;

    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        /* Not started writing yet: an empty log. */
        ts_http_respond(resp, 200, "text/plain", ts_strdup(""), 0);
    } else {
        ts_http_respond_fd(resp, 200, "text/plain", fd, 0, (uint64_t)sb.st_size);
    }
    free(path);
}

static void handle_delete(ts_task_exec *x, const char *id, ts_http_response *resp)
{
    struct task *t;

    pthread_mutex_lock(&x->lock);
    for (t = x->tasks; t && strcmp(t->id, id) != 0; t = t->next)
        ;
    if (t) {
        t->cancel = 1;
        unlist_locked(x, t);
    }
    pthread_mutex_unlock(&x->lock);
    if (!t) {
        ts_http_respond_error(resp, TS_ENOENT, "no task %.140s", id);
        return;
    }
    task_unref(t);   /* the table's reference; the thread holds its own */
    ts_http_respond_json(resp, 200, "{}");
}

void ts_task_exec_handle(void *app, const ts_http_request *req, ts_http_response *resp)
{
    ts_task_exec *x = app;
    const char *m = req->method;
    const char *rest = req->path + strlen(TASK_PREFIX);
    char id[TASK_ID_MAX + 2];

    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        if (strcmp(m, "POST") == 0)
            handle_start(x, req, resp);
        else if (strcmp(m, "GET") == 0)
            handle_list(x, resp);
        else
            ts_http_respond_error(resp, TS_EINVAL, "%s %s: method not allowed", m, req->path);
        return;
    }
    rest++;   /* after "/v1/task/" */
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (idlen > TASK_ID_MAX) {
        ts_http_respond_error(resp, TS_EINVAL, "task id too long");
        return;
    }
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    if (!valid_id(id)) {
        ts_http_respond_error(resp, TS_EINVAL, "bad task id '%.140s'", id);
        return;
    }
    if (strcmp(m, "DELETE") == 0 && slash == NULL) {
        handle_delete(x, id, resp);
        return;
    }
    if (strcmp(m, "GET") != 0) {
        ts_http_respond_error(resp, TS_EINVAL, "%s %.200s: method not allowed", m, req->path);
        return;
    }
    struct task *t = task_get(x, id);
    if (t == NULL) {
        ts_http_respond_error(resp, TS_ENOENT, "no task %s", id);
        return;
    }
    if (slash == NULL)
        handle_status(x, t, resp);
    else if (strncmp(slash, "/output/", 8) == 0)
        handle_output(x, t, slash + 8, req, resp);
    else if (strcmp(slash, "/log") == 0)
        handle_log(t, resp);
    else
        ts_http_respond_error(resp, TS_ENOENT, "no such endpoint: GET %.200s", req->path);
    task_unref(t);
}

/* ------------------------------------------------------------- lifetime */

int ts_task_exec_start(const ts_task_exec_opts *opts, ts_task_exec **out, ts_error *err)
{
    if (opts->store == NULL || opts->client == NULL || opts->server_id == NULL ||
        opts->work_dir == NULL || opts->work_dir[0] == '\0')
        return ts_fail(err, TS_EINVAL, "task executor: store, client, id and work dir are required");
    if (opts->slots == 0 || opts->sort_mem < 64 * 1024 || opts->retain_s <= 0)
        return ts_fail(err, TS_EINVAL,
                       "task executor: task_slots must be > 0, task_sort_buffer >= 64K, "
                       "task_retain_s > 0");
    /* Attempts of a previous run are of no use: their coordinator has
     * written them off when this server stopped answering. */
    remove_tree(opts->work_dir);
    int rc = ts_mkdir_p(opts->work_dir, err);
    if (rc != 0)
        return ts_error_prefix(err, "task_dir");
    ts_task_exec *x = ts_calloc(1, sizeof(*x));
    x->store = opts->store;
    x->client = opts->client;
    x->server_id = ts_strdup(opts->server_id);
    x->work_dir = ts_strdup(opts->work_dir);
    x->slots = opts->slots;
    x->sort_mem = opts->sort_mem;
    x->retain_s = opts->retain_s;
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->idle, NULL);
    *out = x;
    return 0;
}

void ts_task_exec_stop(ts_task_exec *x)
{
    if (x == NULL)
        return;
    pthread_mutex_lock(&x->lock);
    x->stopping = 1;
    for (struct task *t = x->tasks; t; t = t->next)
        t->cancel = 1;
    while (x->running > 0)
        pthread_cond_wait(&x->idle, &x->lock);
    struct task *list = x->tasks;
    x->tasks = NULL;
    pthread_mutex_unlock(&x->lock);
    while (list) {
        struct task *t = list;
        list = t->next;
        task_unref(t);
    }
    pthread_cond_destroy(&x->idle);
    pthread_mutex_destroy(&x->lock);
    free(x->server_id);
    free(x->work_dir);
    free(x);
}
