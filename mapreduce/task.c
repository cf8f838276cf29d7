/*
 * The streaming task runner (see task.h): producers and consumers that
 * connect the record reader, the user's commands, the sorter and the sinks
 * through mr_proc_pump.
 */
#include "mapreduce/task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "mapreduce/kvsort.h"
#include "mapreduce/proc.h"
#include "mapreduce/split.h"

#define INPUT_BLOCK (1u << 20)
#define TAIL_BLOCK (4u << 10)
#define REDUCE_BATCH (256u * 1024)

/* ------------------------------------------------- map input producer */

struct map_input {
    const mr_map_spec *spec;
    mr_linerec lr;
    char *buf;
    int eof_newline_sent;
    mr_task_stats *st;
};

static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t c = 0;
    const char *end = p + n;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        c++;
        p++;
    }
    return c;
}

static int map_produce(void *ctx, const char **data, size_t *len, ts_error *err)
{
    struct map_input *in = ctx;

    while (!mr_linerec_done(&in->lr)) {
        uint64_t pos = mr_linerec_pos(&in->lr);
        /* Past the split's end only the last line's rest is needed: read
         * small pieces there (often from another chunk, maybe remote). */
        size_t want = pos < in->spec->end ? (size_t)TS_MIN((uint64_t)INPUT_BLOCK, in->spec->end - pos)
                                          : TAIL_BLOCK;
        ssize_t got = in->spec->read(in->spec->read_ctx, pos, in->buf, want, err);
        if (got < 0)
            return (int)got;
        if (got == 0) {
            /* End of file: the last line may lack its '\n'. */
            if (mr_linerec_eof(&in->lr)) {
                in->st->records_in++;
                *data = "\n";
                *len = 1;
                return 0;
            }
            break;
        }
        in->st->input_bytes += (uint64_t)got;
        size_t off, n;
        mr_linerec_feed(&in->lr, in->buf, (size_t)got, &off, &n);
        if (n > 0) {
            in->st->records_in += count_lines(in->buf + off, n);
            *data = in->buf + off;
            *len = n;
            return 0;
        }
    }
    *len = 0;
    return 0;
}

/* ------------------------------------------------ line-wise consumers */

/* Cuts a byte stream into lines (without '\n') for fn; a last line without
 * '\n' is delivered by lines_finish. */
struct lines {
    ts_buf partial;
    int (*fn)(void *ctx, const char *line, size_t len, ts_error *err);
    void *ctx;
};

static int lines_consume(void *ctx, const char *buf, size_t len, ts_error *err)
{
    struct lines *l = ctx;
    size_t i = 0;
    int rc;

    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (nl == NULL) {
            ts_buf_append(&l->partial, buf + i, len - i);
            return 0;
        }
        size_t n = (size_t)(nl - (buf + i));
        if (l->partial.len > 0) {
            ts_buf_append(&l->partial, buf + i, n);
            rc = l->fn(l->ctx, l->partial.data, l->partial.len, err);
            l->partial.len = 0;
        } else {
            rc = l->fn(l->ctx, buf + i, n, err);
        }
        if (rc != 0)
            return rc;
        i += n + 1;
    }
    return 0;
}

static int lines_finish(struct lines *l, ts_error *err)
{
    int rc = 0;

    if (l->partial.len > 0)
        rc = l->fn(l->ctx, l->partial.data, l->partial.len, err);
    ts_buf_free(&l->partial);
    return rc;
}

static int add_to_sorter(void *ctx, const char *line, size_t len, ts_error *err)
{
    return mr_sorter_add(ctx, line, len, err);
}

/* Counts lines and passes bytes on to the sink. */
struct counting_sink {
    mr_sink_fn sink;
    void *ctx;
    mr_task_stats *st;
    int ends_with_newline;
};

static int sink_consume(void *ctx, const char *buf, size_t len, ts_error *err)
{
    struct counting_sink *c = ctx;

    if (len == 0)
        return 0;
    c->st->records_out += count_lines(buf, len);
    c->st->output_bytes += len;
    c->ends_with_newline = buf[len - 1] == '\n';
    return c->sink(c->ctx, buf, len, err);
}

/* Runs a command over the pump and waits for it; `what` names it in errors. */
static int run_command(const char *what, const char *cmd, const mr_cmd_env *env,
                       mr_produce_fn produce, void *pctx, mr_consume_fn consume, void *cctx,
                       ts_error *err)
{
    mr_proc p;
    int rc = mr_proc_spawn(cmd, env->workdir, env->env, env->stderr_fd, &p, err);

    if (rc != 0)
        return ts_error_prefix(err, "%s", what);
    rc = mr_proc_pump(&p, produce, pctx, consume, cctx, env->cancel, err);
    if (rc != 0) {
        mr_proc_kill(&p);
        return rc == TS_EBUSY ? rc : ts_error_prefix(err, "%s", what);
    }
    if ((rc = mr_proc_wait(&p, err)) != 0)
        return ts_error_prefix(err, "%s '%.200s'", what, cmd);
    return 0;
}

/* ----------------------------------------------------------- combiner */

struct combine_ctx {
    const mr_map_spec *spec;
};

struct line_feed {
    const mr_line *recs;
    size_t n, i;
    ts_buf batch;
};

static int feed_lines(void *ctx, const char **data, size_t *len, ts_error *err)
{
    struct line_feed *f = ctx;

    f->batch.len = 0;
    while (f->i < f->n && f->batch.len < REDUCE_BATCH) {
        ts_buf_append(&f->batch, f->recs[f->i].line, f->recs[f->i].len);
        f->i++;
    }
    *data = f->batch.data;
    *len = f->batch.len;
    return 0;
}

static int append_buf(void *ctx, const char *buf, size_t len, ts_error *err)
{
    ts_buf_append(ctx, buf, len);
    return 0;
}

static int run_combiner(void *ctx, unsigned part, const mr_line *recs, size_t n, ts_buf *out,
                        ts_error *err)
{
    struct combine_ctx *c = ctx;
    struct line_feed f = {.recs = recs, .n = n};
    int rc;

    rc = run_command("combiner", c->spec->combiner, &c->spec->env, feed_lines, &f, append_buf,
                     out, err);
    ts_buf_free(&f.batch);
    /* The sorter parses whole lines; finish a last unterminated one. */
    if (rc == 0 && out->len > 0 && out->data[out->len - 1] != '\n')
        ts_buf_append(out, "\n", 1);
    return rc;
}

/* ---------------------------------------------------------------- map */

int mr_run_map(const mr_map_spec *spec, uint64_t *offsets, mr_task_stats *st, ts_error *err)
{
    struct map_input in = {.spec = spec, .st = st};
    struct combine_ctx cc = {.spec = spec};
    mr_sorter *sorter = NULL;
    int rc;

    memset(st, 0, sizeof(*st));
    mr_linerec_init(&in.lr, spec->start, spec->end);
    in.buf = ts_malloc(INPUT_BLOCK);
    if (spec->nparts == 0) {
        struct counting_sink cs = {.sink = spec->sink, .ctx = spec->sink_ctx, .st = st,
                                   .ends_with_newline = 1};
        rc = run_command("mapper", spec->mapper, &spec->env, map_produce, &in, sink_consume, &cs,
                         err);
        /* Output files hold whole lines. */
        if (rc == 0 && !cs.ends_with_newline)
            rc = sink_consume(&cs, "\n", 1, err);
        goto free_buf;
    }
    rc = mr_sorter_open(spec->spill_dir, spec->nparts, spec->sort_mem,
                        spec->combiner ? run_combiner : NULL, &cc, &sorter, err);
    if (rc != 0)
        goto free_buf;
    struct lines lc = {.fn = add_to_sorter, .ctx = sorter};
    rc = run_command("mapper", spec->mapper, &spec->env, map_produce, &in, lines_consume, &lc,
                     err);
    if (rc == 0)
        rc = lines_finish(&lc, err);
    else
        ts_buf_free(&lc.partial);
    if (rc == 0)
        rc = mr_sorter_finish(sorter, spec->out_path, offsets, err);
    if (rc == 0) {
        mr_sorter_stats ss;
        mr_sorter_get_stats(sorter, &ss);
        st->records_out = ss.records_out;
        st->spills = ss.spills;
        st->output_bytes = offsets[spec->nparts];
    }
    mr_sorter_free(sorter);
free_buf:
    free(in.buf);
    return rc;
}

/* ------------------------------------------------------------- reduce */

struct reduce_input {
    mr_merge *m;
    ts_buf batch;
    mr_task_stats *st;
};

static int reduce_produce(void *ctx, const char **data, size_t *len, ts_error *err)
{
    struct reduce_input *r = ctx;
    mr_line l;
    int rc = 1;

    r->batch.len = 0;
    while (r->batch.len < REDUCE_BATCH && (rc = mr_merge_next(r->m, &l, err)) == 1) {
        ts_buf_append(&r->batch, l.line, l.len);
        r->st->records_in++;
    }
    if (rc < 0)
        return rc;
    *data = r->batch.data;
    *len = r->batch.len;
    return 0;
}

int mr_run_reduce(const mr_reduce_spec *spec, mr_task_stats *st, ts_error *err)
{
    int *fds = ts_malloc((spec->ninputs ? spec->ninputs : 1) * sizeof(*fds));
    mr_merge_src *srcs = ts_malloc((spec->ninputs ? spec->ninputs : 1) * sizeof(*srcs));
    struct reduce_input in = {.st = st};
    size_t opened = 0;
    int rc = 0;

    memset(st, 0, sizeof(*st));
    for (; opened < spec->ninputs; opened++) {
        struct stat sb;
        fds[opened] = open(spec->inputs[opened], O_RDONLY | O_CLOEXEC);
        if (fds[opened] < 0 || fstat(fds[opened], &sb) != 0) {
            rc = ts_fail(err, TS_EIO, "open %s: %s", spec->inputs[opened], strerror(errno));
            if (fds[opened] >= 0)
                close(fds[opened]);
            goto close_inputs;
        }
        srcs[opened] = (mr_merge_src){.fd = fds[opened], .start = 0, .end = (uint64_t)sb.st_size};
        st->input_bytes += (uint64_t)sb.st_size;
    }
    if ((rc = mr_merge_open(srcs, spec->ninputs, &in.m, err)) != 0)
        goto close_inputs;
    struct counting_sink cs = {.sink = spec->sink, .ctx = spec->sink_ctx, .st = st,
                               .ends_with_newline = 1};
    rc = run_command("reducer", spec->reducer, &spec->env, reduce_produce, &in, sink_consume, &cs,
                     err);
    if (rc == 0 && !cs.ends_with_newline)
        rc = sink_consume(&cs, "\n", 1, err);
    mr_merge_free(in.m);
    ts_buf_free(&in.batch);
close_inputs:
    for (size_t k = 0; k < opened; k++)
        close(fds[k]);
    free(fds);
    free(srcs);
    return rc;
}
