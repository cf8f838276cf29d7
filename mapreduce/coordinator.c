/*
 * The job coordinator (see coordinator.h).  One loop, every POLL_MS:
 *
 *   poll running attempts ─► feed results to the job model
 *   check the kill marker (every second)
 *   schedule (scheduler.h) ─► POST attempts to executors
 *   write status.json (every 2 s, and when the phase changes)
 *
 * until the job model says the job is over; then commit or clean up.
 * Server failure: an executor that does not answer 3 polls in a row over at
 * least a second is lost for the rest of the job (mr_job_server_lost), as
 * is one the metadata service reports down.
 */
#include "mapreduce/coordinator.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "mapreduce/job.h"
#include "mapreduce/scheduler.h"
#include "mapreduce/split.h"

#define POLL_MS 200
#define STATUS_EVERY_MS 2000
#define KILL_CHECK_MS 1000
#define META_CHECK_MS 2000
#define HTTP_TIMEOUT_MS 10000
#define LOST_AFTER_FAILURES 3
#define LOST_AFTER_MS 1000
#define LOG_KEEP (64u * 1024)
#define TAIL_IN_ERROR 600

/* One executor as the job sees it. */
struct server {
    char *id, *addr;
    unsigned slots, used;
    int alive;
    unsigned failures;          /* consecutive unanswered requests */
    int64_t first_failure_ms;
};

/* What the coordinator keeps per task beyond the job model. */
struct task_extra {
    char attempt_id[MR_JOB_ID_MAX + 32];
    uint64_t *parts;            /* map: partition sizes of the done attempt */
    uint64_t remote_planned;    /* reduce: shuffle bytes from other servers */
    ts_buf log;                 /* stderr of the attempts so far */
};

struct coord {
    tess_client *c;
    const mr_job_conf *conf;
    char id[MR_JOB_ID_MAX];
    char job_dir[TS_PATH_MAX + 1], out_dir[TS_PATH_MAX + 1];
    char tmp_dir[TS_PATH_MAX + 16];  /* out_dir + "/_temporary" */
    uint64_t job_dir_ino, logs_ino, tmp_ino, out_ino;
    mr_job job;
    struct task_extra *extra;
    struct server *servers;
    size_t nservers;
    char **input_paths;         /* per split */
    mr_split *splits;
    size_t nsplits;
    tess_layout **layouts;      /* per input file: the splits' hosts point into them */
    char **files;               /* input file paths */
    size_t nfiles;
    json_t *shipped;            /* [{"name","path"}] */
    int64_t start_ms, start_ns;
    uint64_t input_bytes, local_bytes, remote_bytes, map_output_bytes;
    uint64_t shuffle_bytes, shuffle_remote_bytes, output_bytes;
    unsigned failed_attempts;
    const char *phase_name;
};

/* ------------------------------------------------------ filesystem helpers */

static int put_bytes(tess_client *c, uint64_t parent, const char *name, const void *data,
                     size_t len, ts_error *err)
{
    ts_attr a;
    tess_writer *w;
    tess_writer_opts wo = {.truncate = 1, .in_flight = 1};
    int rc;

    if ((rc = tess_create(c, parent, name, 0644, (uint32_t)getuid(), (uint32_t)getgid(), 0, &a,
                          NULL, err)) != 0)
        return rc;
    /* Small state files: a chunk no larger than what they hold. */
    wo.chunk_size = len < 4096 ? 4096 : len;
    if ((rc = tess_writer_open(c, a.ino, 0, &wo, &w, err)) != 0)
        return rc;
    if (len > 0 && (rc = tess_writer_write(w, data, len, err)) != 0) {
        tess_writer_abort(w);
        return rc;
    }
    return tess_writer_close(w, NULL, err);
}

int mr_fs_read(tess_client *c, const char *path, char **data, size_t *len, ts_error *err)
{
    ts_attr a;
    tess_layout *l;
    int rc;

    if ((rc = tess_resolve(c, path, &a, err)) != 0)
        return rc;
    if ((rc = tess_get_layout(c, a.ino, &l, err)) != 0)
        return rc;
    char *buf = ts_malloc(l->attr.size + 1);
    ssize_t got = l->attr.size ? tess_read(c, l, 0, l->attr.size, buf, err) : 0;
    tess_layout_free(l);
    if (got < 0) {
        free(buf);
        return (int)got;
    }
    buf[got] = '\0';
    *data = buf;
    *len = (size_t)got;
    return 0;
}

static int mkdir_in(tess_client *c, uint64_t parent, const char *name, uint64_t *ino,
                    ts_error *err)
{
    ts_attr a;
    int rc = tess_mkdir(c, parent, name, 0755, (uint32_t)getuid(), (uint32_t)getgid(), &a, err);
    if (rc == TS_EEXIST)
        rc = tess_lookup(c, parent, name, &a, err);
    if (rc == 0 && ino)
        *ino = a.ino;
    return rc;
}

/* Unlinks every entry of directory ino (files only) and then the directory. */
static int unlink_name(void *ctx, const tess_dirent *e)
{
    void **a = ctx;
    ts_error err;
    if (tess_unlink(a[0], *(uint64_t *)a[1], e->name, &err) != 0)
        TS_WARN("cannot remove %s: %s", e->name, err.msg);
    return 0;
}

static void remove_dir_files(tess_client *c, uint64_t parent, uint64_t ino, const char *name)
{
    ts_error err;
    void *args[2] = {c, &ino};

    if (tess_readdir(c, ino, unlink_name, args, &err) != 0)
        TS_WARN("list %s: %s", name, err.msg);
    if (tess_rmdir(c, parent, name, &err) != 0)
        TS_WARN("remove %s: %s", name, err.msg);
}

/* ------------------------------------------------------------- HTTP helpers */

/* Calls an executor; a transport failure counts against the server. */
static int exec_call(struct coord *k, struct server *s, const char *method, const char *path,
                     const char *body, ts_http_result *res, ts_error *err)
{
    char *url = ts_sprintf("http://%s%s", s->addr, path);
    int rc = ts_http_call(method, url, body ? "application/json" : NULL, body,
                          body ? strlen(body) : 0, HTTP_TIMEOUT_MS, res, err);
    free(url);
    if (rc != 0) {
        if (s->failures++ == 0)
            s->first_failure_ms = ts_mono_ms();
    } else {
        s->failures = 0;
    }
    return rc;
}

static void exec_delete(struct coord *k, struct server *s, const char *attempt_id)
{
    ts_http_result res = {0};
    ts_error err;
    char *path = ts_sprintf("/v1/task/%s", attempt_id);

    if (s->alive && exec_call(k, s, "DELETE", path, NULL, &res, &err) != 0)
        TS_DEBUG("delete %s on %s: %s", attempt_id, s->id, err.msg);
    ts_http_result_free(&res);
    free(path);
}

/* ----------------------------------------------------------------- setup */

static int add_input_file(struct coord *k, const char *path, ts_error *err)
{
    ts_attr a;
    tess_layout *l;
    int rc;

    if ((rc = tess_resolve(k->c, path, &a, err)) != 0)
        return ts_error_prefix(err, "input %s", path);
    if ((rc = tess_get_layout(k->c, a.ino, &l, err)) != 0)
        return ts_error_prefix(err, "input %s", path);
    k->files = ts_realloc(k->files, (k->nfiles + 1) * sizeof(*k->files));
    k->layouts = ts_realloc(k->layouts, (k->nfiles + 1) * sizeof(*k->layouts));
    k->files[k->nfiles] = ts_strdup(path);
    k->layouts[k->nfiles] = l;
    k->nfiles++;
    return 0;
}

struct dir_walk {
    struct coord *k;
    const char *dir;
    char **names;
    size_t n;
};

static int collect_file(void *ctx, const tess_dirent *e)
{
    struct dir_walk *w = ctx;
    /* Hadoop's rule: names starting with '_' or '.' are not input. */
    if ((e->attr.mode & S_IFMT) != S_IFREG || e->name[0] == '_' || e->name[0] == '.')
        return 0;
    w->names = ts_realloc(w->names, (w->n + 1) * sizeof(*w->names));
    w->names[w->n++] = ts_sprintf("%s/%s", strcmp(w->dir, "/") ? w->dir : "", e->name);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int resolve_inputs(struct coord *k, ts_error *err)
{
    for (size_t i = 0; i < k->conf->ninputs; i++) {
        char norm[TS_PATH_MAX + 1];
        ts_attr a;
        int rc;
        if ((rc = tess_path_normalize(k->conf->inputs[i], norm, err)) != 0 ||
            (rc = tess_resolve(k->c, norm, &a, err)) != 0)
            return ts_error_prefix(err, "input %s", k->conf->inputs[i]);
        if ((a.mode & S_IFMT) == S_IFREG) {
            if ((rc = add_input_file(k, norm, err)) != 0)
                return rc;
            continue;
        }
        if ((a.mode & S_IFMT) != S_IFDIR)
            return ts_fail(err, TS_EINVAL, "input %s is neither a file nor a directory", norm);
        struct dir_walk w = {.k = k, .dir = norm};
        rc = tess_readdir(k->c, a.ino, collect_file, &w, err);
        qsort(w.names, w.n, sizeof(*w.names), cmp_str);
        for (size_t j = 0; j < w.n; j++) {
            if (rc == 0)
                rc = add_input_file(k, w.names[j], err);
            free(w.names[j]);
        }
        free(w.names);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int compute_splits(struct coord *k, ts_error *err)
{
    mr_file_info *fi = ts_calloc(k->nfiles ? k->nfiles : 1, sizeof(*fi));
    mr_extent_info **ex = ts_calloc(k->nfiles ? k->nfiles : 1, sizeof(*ex));
    uint64_t split = k->conf->split_size ? k->conf->split_size : tess_client_chunk_size(k->c);
    int rc;

    for (size_t i = 0; i < k->nfiles; i++) {
        const tess_layout *l = k->layouts[i];
        ex[i] = ts_calloc(l->nextents ? l->nextents : 1, sizeof(**ex));
        for (size_t j = 0; j < l->nextents; j++)
            ex[i][j] = (mr_extent_info){.file_offset = l->extents[j].ext.file_offset,
                                        .length = l->extents[j].ext.length,
                                        .replicas = l->extents[j].replicas,
                                        .nreplicas = l->extents[j].nreplicas};
        fi[i] = (mr_file_info){.path = k->files[i], .ino = l->attr.ino, .size = l->attr.size,
                               .extents = ex[i], .nextents = l->nextents};
        k->input_bytes += l->attr.size;
    }
    rc = mr_splits_compute(fi, k->nfiles, split, &k->splits, &k->nsplits, err);
    for (size_t i = 0; i < k->nfiles; i++)
        free(ex[i]);
    free(ex);
    free(fi);
    return rc;
}

static void make_job_id(struct coord *k)
{
    time_t now = time(NULL);
    struct tm tm;
    uint8_t rnd[2];
    char hex[5];

    gmtime_r(&now, &tm);
    ts_random_bytes(rnd, sizeof rnd);
    ts_hex_encode(rnd, sizeof rnd, hex);
    strftime(k->id, sizeof k->id, "job_%Y%m%d_%H%M%S_", &tm);
    strncat(k->id, hex, sizeof(k->id) - strlen(k->id) - 1);
}

/* /.mr/JOB/{files,logs} and the shipped files. */
static int create_job_dir(struct coord *k, ts_error *err)
{
    uint64_t state_ino, files_ino;
    int rc;

    if ((rc = mkdir_in(k->c, TS_ROOT_INO, MR_STATE_DIR + 1, &state_ino, err)) != 0 ||
        (rc = mkdir_in(k->c, state_ino, k->id, &k->job_dir_ino, err)) != 0 ||
        (rc = mkdir_in(k->c, k->job_dir_ino, "logs", &k->logs_ino, err)) != 0 ||
        (rc = mkdir_in(k->c, k->job_dir_ino, "files", &files_ino, err)) != 0)
        return ts_error_prefix(err, "job state %s", k->job_dir);
    k->shipped = json_array();
    for (size_t i = 0; i < k->conf->nfiles; i++) {
        char base[4096], *remote;
        tess_put_opts po = {0};
        tess_path_basename(k->conf->files[i], base, sizeof base);
        remote = ts_sprintf("%s/files/%s", k->job_dir, base);
        rc = tess_put_file(k->c, k->conf->files[i], remote, &po, NULL, err);
        if (rc == 0)
            json_array_append_new(k->shipped, json_pack("{s:s, s:s}", "name", base, "path", remote));
        free(remote);
        if (rc != 0)
            return ts_error_prefix(err, "--files %s", k->conf->files[i]);
    }
    return 0;
}

/* The output directory must not exist: claim it with mkdir (race-free). */
static int create_output(struct coord *k, ts_error *err)
{
    char buf[TS_PATH_MAX + 1];
    const char *parent_path, *name;
    ts_attr parent, a;
    int rc;

    if ((rc = tess_path_normalize(k->conf->output, k->out_dir, err)) != 0)
        return rc;
    memcpy(buf, k->out_dir, sizeof buf);
    if ((rc = tess_path_split(buf, &parent_path, &name, err)) != 0)
        return rc;
    if ((rc = tess_resolve(k->c, parent_path, &parent, err)) != 0)
        return ts_error_prefix(err, "output's parent directory %s", parent_path);
    rc = tess_mkdir(k->c, parent.ino, name, 0755, (uint32_t)getuid(), (uint32_t)getgid(), &a, err);
    if (rc == TS_EEXIST)
        return ts_fail(err, TS_EEXIST, "output directory %s already exists (remove it or choose "
                       "another --output)", k->out_dir);
    if (rc != 0)
        return ts_error_prefix(err, "create output directory %s", k->out_dir);
    k->out_ino = a.ino;
    snprintf(k->tmp_dir, sizeof k->tmp_dir, "%s/_temporary", k->out_dir);
    return mkdir_in(k->c, a.ino, "_temporary", &k->tmp_ino, err);
}

/* The up chunkservers whose executors answer, with their slots. */
static int find_servers(struct coord *k, ts_error *err)
{
    tess_servers sv;
    int rc = tess_cluster_servers(k->c, &sv, err);

    if (rc != 0)
        return rc;
    k->servers = ts_calloc(sv.n ? sv.n : 1, sizeof(*k->servers));
    for (size_t i = 0; i < sv.n; i++) {
        if (sv.v[i].state != TESS_SERVER_UP)
            continue;
        struct server *s = &k->servers[k->nservers];
        ts_http_result res = {0};
        json_t *j = NULL;
        uint64_t slots = 0;
        ts_error e;
        s->id = ts_strdup(sv.v[i].id);
        s->addr = ts_strdup(sv.v[i].address);
        s->alive = 1;
        if (exec_call(k, s, "GET", "/v1/task", NULL, &res, &e) == 0 && res.status == 200 &&
            ts_json_parse_object(res.body, res.body_len, &j, &e) == 0 &&
            ts_json_u64(j, "slots", &slots, &e) == 0 && slots > 0) {
            s->slots = (unsigned)slots;
            s->failures = 0;
            k->nservers++;
        } else {
            TS_WARN("chunkserver %s (%s): no task executor answers; not used", s->id, s->addr);
            free(s->id);
            free(s->addr);
        }
        json_decref(j);
        ts_http_result_free(&res);
    }
    tess_servers_free(&sv);
    if (k->nservers == 0)
        return ts_fail(err, TS_EUNAVAIL, "no chunkserver with a task executor is up");
    return 0;
}

/* --------------------------------------------------------------- status */

static const char *job_state_name(enum mr_job_state s)
{
    switch (s) {
    case MR_JOB_RUNNING: return "running";
    case MR_JOB_SUCCEEDED: return "succeeded";
    case MR_JOB_FAILED: return "failed";
    default: return "killed";
    }
}

static json_t *status_json(struct coord *k)
{
    size_t mp, mr_, md, rp, rr, rd;
    json_t *tasks = json_array(), *inputs = json_array();
    char name[16];

    mr_job_counts(&k->job, MR_MAP, &mp, &mr_, &md);
    mr_job_counts(&k->job, MR_REDUCE, &rp, &rr, &rd);
    for (size_t i = 0; i < mr_job_ntasks(&k->job); i++) {
        mr_task *t = mr_job_task(&k->job, i);
        static const char *const st[] = {"pending", "running", "done"};
        mr_task_name(t, name);
        json_t *jt = json_pack("{s:s, s:s, s:I, s:I, s:s, s:b, s:s}", "task", name, "state",
                               st[t->state], "attempts", (json_int_t)t->attempt, "failures",
                               (json_int_t)t->failures, "server",
                               t->server >= 0 ? k->servers[t->server].id : "", "local", t->local,
                               "last_error", t->last_error);
        if (t->state == MR_RUNNING) {
            json_object_set_new(jt, "attempt_id", json_string(k->extra[i].attempt_id));
            json_object_set_new(jt, "addr", json_string(k->servers[t->server].addr));
        }
        json_array_append_new(tasks, jt);
    }
    for (size_t i = 0; i < k->conf->ninputs; i++)
        json_array_append_new(inputs, json_string(k->conf->inputs[i]));
    size_t local = mr_job_local_maps(&k->job);
    int64_t now_ns = ts_now_ns();
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s?, s:I,"
        " s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:I, s:f, s:I,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:o}",
        "id", k->id, "name", k->conf->name ? k->conf->name : "job", "state",
        job_state_name(k->job.state), "phase", k->phase_name, "error", k->job.error, "inputs",
        inputs, "output", k->out_dir, "mapper", k->conf->mapper, "reducer",
        k->conf->reducers ? k->conf->reducer : "", "combiner", k->conf->combiner, "reducers",
        (json_int_t)k->conf->reducers,
        "maps", "total", (json_int_t)k->job.nmaps, "pending", (json_int_t)mp, "running",
        (json_int_t)mr_, "done", (json_int_t)md,
        "reduces", "total", (json_int_t)k->job.nreduces, "pending", (json_int_t)rp, "running",
        (json_int_t)rr, "done", (json_int_t)rd,
        "data_local_maps", (json_int_t)local, "data_local_fraction",
        md ? (double)local / (double)md : 0.0, "failed_attempts", (json_int_t)k->failed_attempts,
        "bytes", "input", (json_int_t)k->input_bytes, "read_local", (json_int_t)k->local_bytes,
        "read_remote", (json_int_t)k->remote_bytes, "map_output",
        (json_int_t)k->map_output_bytes, "shuffle", (json_int_t)k->shuffle_bytes,
        "shuffle_remote", (json_int_t)k->shuffle_remote_bytes, "output",
        (json_int_t)k->output_bytes,
        "started_ns", (json_int_t)k->start_ns, "updated_ns", (json_int_t)now_ns, "elapsed_ms",
        (json_int_t)(ts_mono_ms() - k->start_ms), "tasks", tasks);
    if (j == NULL)
        ts_die("out of memory building job status");
    return j;
}

static void write_status(struct coord *k)
{
    json_t *j = status_json(k);
    char *text = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    ts_error err;

    if (text == NULL)
        ts_die("out of memory encoding job status");
    if (put_bytes(k->c, k->job_dir_ino, "status.json", text, strlen(text), &err) != 0)
        TS_WARN("job %s: cannot write status: %s", k->id, err.msg);
    free(text);
    json_decref(j);
}

static void report_progress(struct coord *k)
{
    mr_progress p = {.job_id = k->id, .phase = k->phase_name, .maps = k->job.nmaps,
                     .reduces = k->job.nreduces, .local_maps = mr_job_local_maps(&k->job),
                     .elapsed_ms = ts_mono_ms() - k->start_ms};

    if (k->conf->progress == NULL)
        return;
    mr_job_counts(&k->job, MR_MAP, NULL, &p.maps_running, &p.maps_done);
    mr_job_counts(&k->job, MR_REDUCE, NULL, &p.reduces_running, &p.reduces_done);
    k->conf->progress(k->conf->progress_ctx, &p);
}

/* Appends the attempt's stderr to the task's log and stores it. */
static void save_log(struct coord *k, size_t ti, struct server *s, const char *outcome)
{
    struct task_extra *x = &k->extra[ti];
    mr_task *t = mr_job_task(&k->job, ti);
    ts_http_result res = {0};
    ts_error err;
    char name[16];
    char *path = ts_sprintf("/v1/task/%s/log", x->attempt_id);

    mr_task_name(t, name);
    ts_buf_printf(&x->log, "== %s attempt %u on %s: %s ==\n", name, t->attempt, s->id, outcome);
    if (exec_call(k, s, "GET", path, NULL, &res, &err) == 0 && res.status == 200) {
        size_t from = res.body_len > LOG_KEEP ? res.body_len - LOG_KEEP : 0;
        ts_buf_append(&x->log, res.body + from, res.body_len - from);
    } else {
        ts_buf_printf(&x->log, "(log unavailable: %s)\n", err.msg);
    }
    ts_http_result_free(&res);
    free(path);
    if (put_bytes(k->c, k->logs_ino, name, x->log.data, x->log.len, &err) != 0)
        TS_WARN("job %s: cannot store the log of %s: %s", k->id, name, err.msg);
}

/* ------------------------------------------------------------ attempts */

static json_t *attempt_spec(struct coord *k, size_t ti, int server, unsigned attempt)
{
    mr_task *t = mr_job_task(&k->job, ti);
    struct task_extra *x = &k->extra[ti];
    char name[16], outname[32];

    mr_task_name(t, name);
    snprintf(x->attempt_id, sizeof x->attempt_id, "%s.%s.a%u", k->id, name, attempt);
    snprintf(outname, sizeof outname, "%s.a%u", name, attempt);
    json_t *spec = json_pack("{s:s, s:s, s:O, s:I, s:I}", "id", x->attempt_id, "kind",
                             t->kind == MR_MAP ? "map" : "reduce", "files", k->shipped,
                             "chunk_size", (json_int_t)tess_client_chunk_size(k->c), "replicas",
                             (json_int_t)k->conf->replicas);
    json_t *out = json_pack("{s:s, s:s}", "dir", k->tmp_dir, "name", outname);
    if (t->kind == MR_MAP) {
        const mr_split *sp = &k->splits[t->index];
        json_object_set_new(spec, "cmd", json_string(k->conf->mapper));
        if (k->conf->combiner && k->conf->reducers)
            json_object_set_new(spec, "combiner", json_string(k->conf->combiner));
        json_object_set_new(spec, "partitions", json_integer(k->conf->reducers));
        json_object_set_new(spec, "input", json_pack("{s:s, s:I, s:I}", "path",
                                                     k->files[sp->file], "start",
                                                     (json_int_t)sp->start, "end",
                                                     (json_int_t)sp->end));
        if (k->conf->reducers == 0)
            json_object_set_new(spec, "output", out);
        else
            json_decref(out);
        return spec;
    }
    json_t *srcs = json_array();
    x->remote_planned = 0;
    for (size_t m = 0; m < k->job.nmaps; m++) {
        mr_task *mt = mr_job_task(&k->job, m);
        uint64_t len = k->extra[m].parts ? k->extra[m].parts[t->index] : 0;
        if (len == 0)
            continue;
        struct server *ms = &k->servers[mt->server];
        json_array_append_new(srcs, json_pack("{s:s, s:s, s:s, s:I}", "addr", ms->addr, "server",
                                              ms->id, "task", k->extra[m].attempt_id, "length",
                                              (json_int_t)len));
        if (mt->server != server)
            x->remote_planned += len;
    }
    json_object_set_new(spec, "cmd", json_string(k->conf->reducer));
    json_object_set_new(spec, "partition", json_integer(t->index));
    json_object_set_new(spec, "sources", srcs);
    json_object_set_new(spec, "output", out);
    return spec;
}

/* Starts the assigned attempt.  0 started; 1 the server is busy (try
 * later); < 0 the server did not answer. */
static int launch(struct coord *k, const mr_assignment *a)
{
    mr_task *t = mr_job_task(&k->job, a->task);
    struct server *s = &k->servers[a->server];
    json_t *spec = attempt_spec(k, a->task, a->server, t->attempt + 1);
    char *body = ts_json_dump(spec);
    ts_http_result res = {0};
    ts_error err;
    int rc = exec_call(k, s, "POST", "/v1/task", body, &res, &err);

    if (rc == 0 && res.status == 201) {
        int at = mr_job_start_attempt(&k->job, a->task, a->server, a->local, &err);
        if (at < 0)
            ts_die("job %s: scheduler chose a task it cannot start: %s", k->id, err.msg);
        s->used++;
        rc = 0;
    } else if (rc == 0) {
        ts_http_result_error(&res, "start task", &err);
        TS_DEBUG("job %s: %s on %s: %s", k->id, k->extra[a->task].attempt_id, s->id, err.msg);
        rc = 1;
    }
    ts_http_result_free(&res);
    free(body);
    json_decref(spec);
    return rc;
}

/* Which server a reduce's "shuffle fetch of T from SERVER (ADDR)" names. */
static struct server *fetch_source(struct coord *k, const char *msg)
{
    const char *p = strstr(msg, "shuffle fetch of ");
    if (p == NULL)
        return NULL;
    p = strstr(p, " from ");
    if (p == NULL)
        return NULL;
    p += 6;
    const char *end = strchr(p, ' ');
    for (size_t i = 0; end && i < k->nservers; i++)
        if (strlen(k->servers[i].id) == (size_t)(end - p) &&
            strncmp(k->servers[i].id, p, (size_t)(end - p)) == 0)
            return &k->servers[i];
    return NULL;
}

static void lose_server(struct coord *k, struct server *s, const char *why)
{
    if (!s->alive)
        return;
    s->alive = 0;
    /* Attempts reset on other servers (reduces, when maps must run again)
     * are still running there: stop them. */
    size_t n = mr_job_ntasks(&k->job);
    int *was = ts_malloc(n * sizeof(*was));
    for (size_t i = 0; i < n; i++) {
        mr_task *t = mr_job_task(&k->job, i);
        was[i] = t->state == MR_RUNNING ? t->server : -1;
    }
    size_t reset = mr_job_server_lost(&k->job, (int)(s - k->servers), ts_mono_ms());
    for (size_t i = 0; i < n; i++)
        if (was[i] >= 0 && mr_job_task(&k->job, i)->state != MR_RUNNING &&
            k->servers[was[i]].alive)
            exec_delete(k, &k->servers[was[i]], k->extra[i].attempt_id);
    free(was);
    TS_WARN("job %s: chunkserver %s lost (%s); %zu task(s) to run again", k->id, s->id, why,
            reset);
    /* Reset tasks are no longer running anywhere. */
    for (size_t i = 0; i < k->nservers; i++)
        k->servers[i].used = 0;
    for (size_t i = 0; i < mr_job_ntasks(&k->job); i++) {
        mr_task *t = mr_job_task(&k->job, i);
        if (t->state == MR_RUNNING)
            k->servers[t->server].used++;
    }
}

/* Is s still serving its map outputs?  (A restarted server lost them.) */
static void probe_source(struct coord *k, struct server *s)
{
    ts_http_result res = {0};
    ts_error err;

    if (!s->alive)
        return;
    if (exec_call(k, s, "GET", "/v1/task", NULL, &res, &err) != 0) {
        lose_server(k, s, err.msg);
    } else {
        /* Any DONE map of s whose attempt is gone means a restart. */
        for (size_t m = 0; m < k->job.nmaps; m++) {
            mr_task *t = mr_job_task(&k->job, m);
            if (t->state == MR_DONE && &k->servers[t->server] == s &&
                !strstr(res.body ? res.body : "", k->extra[m].attempt_id)) {
                lose_server(k, s, "its map outputs are gone (restarted?)");
                break;
            }
        }
    }
    ts_http_result_free(&res);
}

static void attempt_finished(struct coord *k, size_t ti, const json_t *st)
{
    mr_task *t = mr_job_task(&k->job, ti);
    struct server *s = &k->servers[t->server];
    struct task_extra *x = &k->extra[ti];
    const char *state = json_string_value(json_object_get(st, "state"));
    const char *error = json_string_value(json_object_get(st, "error"));
    const char *tail = json_string_value(json_object_get(st, "stderr_tail"));
    uint64_t v;
    ts_error err;
    char name[16];

    mr_task_name(t, name);
    s->used--;
    if (state && strcmp(state, "succeeded") == 0) {
        if (t->kind == MR_MAP) {
            const json_t *parts = json_object_get(st, "partitions");
            free(x->parts);
            x->parts = ts_calloc(k->conf->reducers + 1, sizeof(*x->parts));
            for (size_t p = 0; p < k->conf->reducers && p < json_array_size(parts); p++)
                x->parts[p] = (uint64_t)json_integer_value(json_array_get(parts, p));
            if (ts_json_u64(st, "local_bytes", &v, NULL) == 0)
                k->local_bytes += v;
            if (ts_json_u64(st, "remote_bytes", &v, NULL) == 0)
                k->remote_bytes += v;
            if (ts_json_u64(st, "output_bytes", &v, NULL) == 0)
                k->map_output_bytes += v;
        } else {
            if (ts_json_u64(st, "shuffle_bytes", &v, NULL) == 0)
                k->shuffle_bytes += v;
            k->shuffle_remote_bytes += x->remote_planned;
        }
        if (t->kind == MR_REDUCE || k->conf->reducers == 0) {
            if (ts_json_u64(st, "output_bytes", &v, NULL) == 0)
                k->output_bytes += v;
        }
        save_log(k, ti, s, "succeeded");
        if (mr_job_attempt_done(&k->job, ti, t->attempt, &err) != 0)
            ts_die("job %s: %s", k->id, err.msg);
        /* Map outputs stay on the executor until the job ends. */
        if (t->kind == MR_REDUCE || k->conf->reducers == 0)
            exec_delete(k, s, x->attempt_id);
        return;
    }
    /* Failed or killed. */
    char msg[sizeof(t->last_error)];
    int counted = state && strcmp(state, "failed") == 0;
    struct server *src = counted && error ? fetch_source(k, error) : NULL;
    size_t tl = tail ? strlen(tail) : 0;
    snprintf(msg, sizeof msg, "%s on %s: %s%s%s", x->attempt_id, s->id,
             error && *error ? error : (state ? state : "lost"), tl ? "; stderr: " : "",
             tl ? tail + (tl > TAIL_IN_ERROR ? tl - TAIL_IN_ERROR : 0) : "");
    if (src != NULL)
        counted = 0;   /* the map output vanished: not the reduce's fault */
    k->failed_attempts++;
    save_log(k, ti, s, msg);
    TS_INFO("job %s: %s", k->id, msg);
    exec_delete(k, s, x->attempt_id);
    if (mr_job_attempt_failed(&k->job, ti, t->attempt, counted, msg, ts_mono_ms(), &err) != 0)
        ts_die("job %s: %s", k->id, err.msg);
    if (src != NULL)
        probe_source(k, src);
}

/* Polls every running attempt once. */
static void poll_attempts(struct coord *k)
{
    for (size_t ti = 0; ti < mr_job_ntasks(&k->job) && k->job.state == MR_JOB_RUNNING; ti++) {
        mr_task *t = mr_job_task(&k->job, ti);
        if (t->state != MR_RUNNING)
            continue;
        struct server *s = &k->servers[t->server];
        char *path = ts_sprintf("/v1/task/%s", k->extra[ti].attempt_id);
        ts_http_result res = {0};
        json_t *st = NULL;
        ts_error err;
        if (exec_call(k, s, "GET", path, NULL, &res, &err) != 0) {
            if (s->failures >= LOST_AFTER_FAILURES &&
                ts_mono_ms() - s->first_failure_ms >= LOST_AFTER_MS)
                lose_server(k, s, err.msg);
        } else if (res.status == 404) {
            /* The executor forgot the attempt: it restarted. */
            lose_server(k, s, "it no longer knows its tasks (restarted?)");
        } else if (res.status == 200 &&
                   ts_json_parse_object(res.body, res.body_len, &st, &err) == 0) {
            const char *state = json_string_value(json_object_get(st, "state"));
            if (state && strcmp(state, "running") != 0)
                attempt_finished(k, ti, st);
        }
        json_decref(st);
        ts_http_result_free(&res);
        free(path);
    }
}

/* Servers the metadata service reports down are lost too. */
static void check_membership(struct coord *k)
{
    tess_servers sv;
    ts_error err;

    if (tess_cluster_servers(k->c, &sv, &err) != 0)
        return;   /* the metadata service may be failing over */
    for (size_t i = 0; i < k->nservers; i++) {
        const tess_server *m = tess_servers_find(&sv, k->servers[i].id);
        if (m && m->state == TESS_SERVER_DOWN)
            lose_server(k, &k->servers[i], "the metadata service reports it down");
    }
    tess_servers_free(&sv);
}

static int kill_requested(struct coord *k)
{
    ts_attr a;
    ts_error err;
    return tess_lookup(k->c, k->job_dir_ino, "kill", &a, &err) == 0;
}

/* ------------------------------------------------------- commit, cleanup */

static int commit_output(struct coord *k, ts_error *err)
{
    size_t first = k->conf->reducers ? k->job.nmaps : 0;
    size_t last = k->conf->reducers ? mr_job_ntasks(&k->job) : k->job.nmaps;
    ts_attr a;
    int rc;

    for (size_t i = first; i < last; i++) {
        mr_task *t = mr_job_task(&k->job, i);
        char from[32], to[32], name[16];
        mr_task_name(t, name);
        snprintf(from, sizeof from, "%s.a%u", name, t->attempt);
        snprintf(to, sizeof to, "part-%05u", t->index);
        if ((rc = tess_rename(k->c, k->tmp_ino, from, k->out_ino, to, TESS_RENAME_NOREPLACE,
                              err)) != 0)
            return ts_error_prefix(err, "commit %s/%s", k->tmp_dir, from);
    }
    remove_dir_files(k->c, k->out_ino, k->tmp_ino, "_temporary");
    if ((rc = tess_create(k->c, k->out_ino, "_SUCCESS", 0644, (uint32_t)getuid(),
                          (uint32_t)getgid(), TESS_CREATE_EXCL, &a, NULL, err)) != 0)
        return ts_error_prefix(err, "create %s/_SUCCESS", k->out_dir);
    return 0;
}

static void stop_attempts(struct coord *k)
{
    for (size_t i = 0; i < mr_job_ntasks(&k->job); i++) {
        mr_task *t = mr_job_task(&k->job, i);
        /* Running attempts, and done maps' outputs. */
        if (t->server >= 0 && (t->state == MR_RUNNING || t->kind == MR_MAP))
            exec_delete(k, &k->servers[t->server], k->extra[i].attempt_id);
    }
}

static void coord_free(struct coord *k)
{
    for (size_t i = 0; k->extra && i < mr_job_ntasks(&k->job); i++) {
        free(k->extra[i].parts);
        ts_buf_free(&k->extra[i].log);
    }
    free(k->extra);
    mr_job_free(&k->job);
    for (size_t i = 0; i < k->nservers; i++) {
        free(k->servers[i].id);
        free(k->servers[i].addr);
    }
    free(k->servers);
    free(k->splits);
    for (size_t i = 0; i < k->nfiles; i++) {
        free(k->files[i]);
        tess_layout_free(k->layouts[i]);
    }
    free(k->files);
    free(k->layouts);
    json_decref(k->shipped);
}

/* --------------------------------------------------------------- the run */

static void run_loop(struct coord *k)
{
    int64_t last_status = 0, last_kill = ts_mono_ms(), last_meta = ts_mono_ms();
    enum mr_phase last_phase = mr_job_phase(&k->job);
    size_t nassign = k->nservers * 64;
    mr_assignment *as = ts_malloc(nassign * sizeof(*as));
    mr_sched_server *ss = ts_malloc(k->nservers * sizeof(*ss));
    mr_sched_opts so = {.locality_wait_ms = k->conf->locality_wait_ms < 0 ? 3000
                                                                           : k->conf->locality_wait_ms};

    while (k->job.state == MR_JOB_RUNNING) {
        int64_t now = ts_mono_ms();
        poll_attempts(k);
        if (now - last_kill >= KILL_CHECK_MS) {
            last_kill = now;
            if (kill_requested(k)) {
                mr_job_kill(&k->job);
                break;
            }
        }
        if (now - last_meta >= META_CHECK_MS) {
            last_meta = now;
            check_membership(k);
        }
        size_t alive = 0;
        for (size_t i = 0; i < k->nservers; i++) {
            struct server *s = &k->servers[i];
            alive += s->alive;
            ss[i] = (mr_sched_server){.id = s->id, .alive = s->alive,
                                      .free_slots = s->slots > s->used ? s->slots - s->used : 0};
        }
        if (alive == 0) {
            snprintf(k->job.error, sizeof k->job.error, "every chunkserver running tasks is lost");
            k->job.state = MR_JOB_FAILED;
            break;
        }
        size_t n = mr_schedule(&k->job, ss, k->nservers, ts_mono_ms(), &so, as, nassign);
        for (size_t i = 0; i < n; i++) {
            /* A busy server takes nothing more this round. */
            if (ss[as[i].server].free_slots == 0)
                continue;
            int rc = launch(k, &as[i]);
            if (rc != 0)
                ss[as[i].server].free_slots = 0;
        }
        enum mr_phase ph = mr_job_phase(&k->job);
        k->phase_name = ph == MR_PHASE_MAP ? "map" : ph == MR_PHASE_REDUCE ? "reduce" : "commit";
        if (ph != last_phase || now - last_status >= STATUS_EVERY_MS) {
            last_phase = ph;
            last_status = now;
            write_status(k);
        }
        report_progress(k);
        if (k->job.state == MR_JOB_RUNNING)
            ts_sleep_ms(POLL_MS);
    }
    free(ss);
    free(as);
}

int mr_job_run(tess_client *c, const mr_job_conf *conf, char *job_id, ts_error *err)
{
    struct coord k = {.c = c, .conf = conf, .phase_name = "map"};
    int rc;

    job_id[0] = '\0';
    k.start_ms = ts_mono_ms();
    k.start_ns = ts_now_ns();
    if (conf->ninputs == 0 || !conf->output || !conf->mapper ||
        (conf->reducers > 0 && !conf->reducer))
        return ts_fail(err, TS_EINVAL, "a job needs --input, --output, --mapper and --reducer");
    if ((rc = resolve_inputs(&k, err)) != 0 || (rc = compute_splits(&k, err)) != 0)
        goto free_coord;
    if (k.nsplits == 0) {
        rc = ts_fail(err, TS_EINVAL, "the input holds no data");
        goto free_coord;
    }
    if ((rc = find_servers(&k, err)) != 0)
        goto free_coord;
    make_job_id(&k);
    snprintf(k.job_dir, sizeof k.job_dir, "%s/%s", MR_STATE_DIR, k.id);
    if ((rc = create_output(&k, err)) != 0)
        goto free_coord;
    snprintf(job_id, MR_JOB_ID_MAX, "%s", k.id);
    if ((rc = create_job_dir(&k, err)) != 0)
        goto remove_output;
    if ((rc = mr_job_init(&k.job, k.nsplits, conf->reducers,
                          conf->max_attempts ? conf->max_attempts : 4, ts_mono_ms(), err)) != 0)
        goto remove_output;
    k.extra = ts_calloc(mr_job_ntasks(&k.job), sizeof(*k.extra));
    for (size_t i = 0; i < k.nsplits; i++) {
        mr_task *t = mr_job_task(&k.job, i);
        for (size_t h = 0; h < k.splits[i].nhosts && h < MR_TASK_HOSTS; h++)
            t->hosts[t->nhosts++] = k.splits[i].hosts[h];
    }
    if (conf->started)
        conf->started(conf->progress_ctx, k.id);
    write_status(&k);

    run_loop(&k);

    if (k.job.state == MR_JOB_SUCCEEDED) {
        k.phase_name = "commit";
        report_progress(&k);
        rc = commit_output(&k, err);
        if (rc != 0) {
            k.job.state = MR_JOB_FAILED;
            snprintf(k.job.error, sizeof k.job.error, "%s", err->msg);
        }
    } else {
        rc = ts_fail(err, k.job.state == MR_JOB_KILLED ? TS_EBUSY : TS_EIO, "job %s %s: %s",
                     k.id, job_state_name(k.job.state), k.job.error);
    }
    stop_attempts(&k);
    if (rc != 0)
        remove_dir_files(c, k.out_ino, k.tmp_ino, "_temporary");
    k.phase_name = rc == 0 ? "done" : "failed";
    write_status(&k);
    report_progress(&k);
    coord_free(&k);
    return rc;

remove_output:
    if (k.tmp_ino)
        remove_dir_files(c, k.out_ino, k.tmp_ino, "_temporary");
    {
        char buf[TS_PATH_MAX + 1];
        const char *pp, *nm;
        ts_attr parent;
        ts_error e2;
        memcpy(buf, k.out_dir, sizeof buf);
        if (tess_path_split(buf, &pp, &nm, &e2) == 0 && tess_resolve(c, pp, &parent, &e2) == 0)
            tess_rmdir(c, parent.ino, nm, &e2);
    }
free_coord:
    coord_free(&k);
    return rc;
}

/* ---------------------------------------------------- status, kill (CLI) */

static int read_status(tess_client *c, const char *id, json_t **out, ts_error *err)
{
    char *path = ts_sprintf("%s/%s/status.json", MR_STATE_DIR, id), *text = NULL;
    size_t len;
    int rc = mr_fs_read(c, path, &text, &len, err);

    if (rc == 0)
        rc = ts_json_parse_object(text, len, out, err);
    free(text);
    free(path);
    return rc;
}

static int collect_job(void *ctx, const tess_dirent *e)
{
    void **a = ctx;
    json_t *st;
    ts_error err;

    if (read_status(a[0], e->name, &st, &err) == 0)
        json_array_append_new(a[1], st);
    return 0;
}

static int newest_first(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "started_ns"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "started_ns"));
    return x < y ? 1 : x > y ? -1 : 0;
}

int mr_status_list(tess_client *c, json_t **out, ts_error *err)
{
    ts_attr a;
    json_t *all = json_array();
    int rc = tess_resolve(c, MR_STATE_DIR, &a, err);

    if (rc == TS_ENOENT) {
        *out = all;
        return 0;
    }
    void *args[2] = {c, all};
    if (rc == 0)
        rc = tess_readdir(c, a.ino, collect_job, args, err);
    if (rc != 0) {
        json_decref(all);
        return rc;
    }
    /* Sort by start time, newest first. */
    size_t n = json_array_size(all);
    json_t **v = ts_malloc((n ? n : 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(all, i));
    qsort(v, n, sizeof(*v), newest_first);
    json_array_clear(all);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(all, v[i]);
    free(v);
    *out = all;
    return 0;
}

int mr_status_get(tess_client *c, const char *job, json_t **out, ts_error *err)
{
    json_t *all;
    int rc;

    if (strchr(job, '/') == NULL && strncmp(job, "job_", 4) == 0 &&
        read_status(c, job, out, err) == 0)
        return 0;
    if ((rc = mr_status_list(c, &all, err)) != 0)
        return rc;
    for (size_t i = 0; i < json_array_size(all); i++) {
        json_t *j = json_array_get(all, i);
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *name = json_string_value(json_object_get(j, "name"));
        if ((id && strcmp(id, job) == 0) || (name && strcmp(name, job) == 0)) {
            *out = json_incref(j);
            json_decref(all);
            return 0;
        }
    }
    json_decref(all);
    return ts_fail(err, TS_ENOENT, "no job %s", job);
}

int mr_job_kill_request(tess_client *c, const char *job, ts_error *err)
{
    json_t *st;
    ts_attr dir, a;
    int rc;

    if ((rc = mr_status_get(c, job, &st, err)) != 0)
        return rc;
    const char *id = json_string_value(json_object_get(st, "id"));
    const char *state = json_string_value(json_object_get(st, "state"));
    char *path = ts_sprintf("%s/%s", MR_STATE_DIR, id ? id : "?");
    if (!state || strcmp(state, "running") != 0) {
        rc = ts_fail(err, TS_EINVAL, "job %s is not running (%s)", id ? id : job,
                     state ? state : "?");
        goto free_status;
    }
    if ((rc = tess_resolve(c, path, &dir, err)) != 0 ||
        (rc = tess_create(c, dir.ino, "kill", 0644, (uint32_t)getuid(), (uint32_t)getgid(), 0,
                          &a, NULL, err)) != 0)
        goto free_status;
    for (int i = 0; i < 100; i++) {
        json_t *now;
        ts_sleep_ms(100);
        if (read_status(c, id, &now, err) != 0)
            continue;
        const char *s = json_string_value(json_object_get(now, "state"));
        int over = s && strcmp(s, "running") != 0;
        json_decref(now);
        if (over)
            goto free_status;
    }
    /* No coordinator answered: stop the attempts it left and say so. */
    json_t *tasks = json_object_get(st, "tasks"), *t;
    size_t i;
    json_array_foreach(tasks, i, t) {
        const char *aid = json_string_value(json_object_get(t, "attempt_id"));
        const char *addr = json_string_value(json_object_get(t, "addr"));
        if (!aid || !addr)
            continue;
        char *url = ts_sprintf("http://%s/v1/task/%s", addr, aid);
        ts_http_result res = {0};
        ts_error e2;
        if (ts_http_call("DELETE", url, NULL, NULL, 0, HTTP_TIMEOUT_MS, &res, &e2) != 0)
            TS_WARN("kill %s: %s", aid, e2.msg);
        ts_http_result_free(&res);
        free(url);
    }
    json_object_set_new(st, "state", json_string("killed"));
    json_object_set_new(st, "error", json_string("killed (its coordinator was gone)"));
    char *text = json_dumps(st, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    rc = put_bytes(c, dir.ino, "status.json", text, strlen(text), err);
    free(text);
free_status:
    free(path);
    json_decref(st);
    return rc;
}
