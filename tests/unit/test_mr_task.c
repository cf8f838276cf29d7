/*
 * Unit tests of the streaming task runner (mapreduce/task.h) over local
 * files with real /bin/sh commands: a word count through 3 map splits, a
 * combiner and 2 reducers gives the exact counts; map-only output; a failing
 * mapper's status and stderr; a cancelled task.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "mapreduce/task.h"
#include "tests/unit/tcheck.h"

static char tmpdir[] = "/tmp/test_mr_task.XXXXXX";
static const char *text;

static ssize_t read_text(void *ctx, uint64_t off, void *buf, size_t len, ts_error *err)
{
    size_t size = strlen(text);
    (void)ctx;
    if (off >= size)
        return 0;
    len = TS_MIN(len, size - (size_t)off);
    memcpy(buf, text + off, len);
    return (ssize_t)len;
}

static int to_buf(void *ctx, const char *buf, size_t len, ts_error *err)
{
    ts_buf_append(ctx, buf, len);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define MAPPER "awk '{for (i = 1; i <= NF; i++) print $i \"\\t1\"}'"
#define SUMMER "awk -F'\\t' '{c[$1] += $2} END {for (w in c) print w \"\\t\" c[w]}'"

static void test_wordcount_end_to_end(void)
{
    /* Split boundaries at 10 and 20 fall inside lines. */
    text = "the cat sat\non the mat\nthe end of the cat\nmat";
    ts_buf counts = {0};
    char *outs[3];
    int log = open("/dev/null", O_WRONLY);
    ts_error e;

    uint64_t off[3][3];
    for (int m = 0; m < 3; m++) {
        mr_task_stats st;
        outs[m] = ts_sprintf("%s/map%d", tmpdir, m);
        mr_map_spec sp = {
            .mapper = MAPPER, .combiner = SUMMER,
            .env = {.workdir = tmpdir, .stderr_fd = log},
            .start = (uint64_t)m * 15, .end = TS_MIN((uint64_t)(m + 1) * 15, strlen(text)),
            .nparts = 2, .sort_mem = 1 << 20, .spill_dir = tmpdir, .out_path = outs[m],
            .read = read_text,
        };
        int rc = mr_run_map(&sp, off[m], &st, &e);
        TC_CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "  %s\n", e.msg);
    }
    /* Reducer p merges partition p of every map output (cut out by the
     * offsets, as the executor's shuffle does), and its output is sorted
     * because its input is. */
    for (unsigned p = 0; p < 2; p++) {
        char *seg[3];
        for (int m = 0; m < 3; m++) {
            char *all = NULL;
            size_t len;
            seg[m] = ts_sprintf("%s/seg%d.%u", tmpdir, m, p);
            TC_CHECK(ts_read_file(outs[m], &all, &len, &e) == 0);
            TC_CHECK(ts_write_file_atomic(seg[m], all + off[m][p], off[m][p + 1] - off[m][p],
                                          &e) == 0);
            free(all);
        }
        mr_task_stats st;
        mr_reduce_spec rs = {
            .reducer = "awk -F'\\t' '$1 != k {if (NR > 1) print k \"\\t\" c; k = $1; c = 0} "
                       "{c += $2} END {if (NR) print k \"\\t\" c}'",
            .env = {.workdir = tmpdir, .stderr_fd = log},
            .inputs = (const char *const *)seg, .ninputs = 3,
            .sink = to_buf, .sink_ctx = &counts,
        };
        int rc = mr_run_reduce(&rs, &st, &e);
        TC_CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "  %s\n", e.msg);
        for (int m = 0; m < 3; m++) {
            unlink(seg[m]);
            free(seg[m]);
        }
    }
    /* Both reducers' outputs together, sorted, are the counts. */
    ts_buf_append(&counts, "", 1);
    char *lines[16];
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(counts.data, "\n", &save); l && n < 16;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    qsort(lines, n, sizeof(*lines), cmp_str);
    ts_buf joined = {0};
    for (size_t i = 0; i < n; i++)
        ts_buf_printf(&joined, "%s\n", lines[i]);
    ts_buf_append(&joined, "", 1);
    TC_CHECK_STR(joined.data, "cat\t2\nend\t1\nmat\t2\nof\t1\non\t1\nsat\t1\nthe\t4\n");
    ts_buf_free(&joined);
    ts_buf_free(&counts);
    for (int m = 0; m < 3; m++) {
        unlink(outs[m]);
        free(outs[m]);
    }
    close(log);
}

static void test_map_only_output(void)
{
    ts_buf out = {0};
    mr_task_stats st;
    ts_error e;

    text = "alpha\nbeta\ngamma";   /* no final newline: the mapper still sees 3 lines */
    mr_map_spec sp = {
        .mapper = "tr a-z A-Z", .env = {.workdir = tmpdir, .stderr_fd = -1},
        .start = 0, .end = strlen(text), .nparts = 0, .read = read_text,
        .sink = to_buf, .sink_ctx = &out,
    };
    TC_CHECK(mr_run_map(&sp, NULL, &st, &e) == 0);
    ts_buf_append(&out, "", 1);
    TC_CHECK_STR(out.data, "ALPHA\nBETA\nGAMMA\n");
    TC_CHECK_EQ_U64(st.records_in, 3);
    TC_CHECK_EQ_U64(st.records_out, 3);
    ts_buf_free(&out);
}

static void test_failing_mapper(void)
{
    char *logp = ts_sprintf("%s/log", tmpdir), *logtext = NULL;
    int log = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t off[2];
    mr_task_stats st;
    size_t len;
    ts_error e;

    text = "x\n";
    mr_map_spec sp = {
        .mapper = "cat >/dev/null; echo 'boom: bad record' >&2; exit 3",
        .env = {.workdir = tmpdir, .stderr_fd = log},
        .start = 0, .end = 2, .nparts = 1, .sort_mem = 1 << 20, .spill_dir = tmpdir,
        .out_path = "/nonexistent/never", .read = read_text,
    };
    int rc = mr_run_map(&sp, off, &st, &e);
    TC_CHECK(rc == TS_EIO);
    TC_CHECK(strstr(e.msg, "mapper") != NULL);
    TC_CHECK(strstr(e.msg, "status 3") != NULL);
    close(log);
    TC_CHECK(ts_read_file(logp, &logtext, &len, &e) == 0);
    TC_CHECK(logtext && strstr(logtext, "boom: bad record") != NULL);
    free(logtext);
    unlink(logp);
    free(logp);
}

static void test_cancelled(void)
{
    volatile int cancel = 1;
    ts_buf out = {0};
    mr_task_stats st;
    ts_error e;
    int64_t t0 = ts_mono_ms();

    text = "x\n";
    mr_map_spec sp = {
        .mapper = "sleep 20", .env = {.workdir = tmpdir, .stderr_fd = -1, .cancel = &cancel},
        .start = 0, .end = 2, .nparts = 0, .read = read_text, .sink = to_buf, .sink_ctx = &out,
    };
    TC_CHECK(mr_run_map(&sp, NULL, &st, &e) == TS_EBUSY);
    TC_CHECK(ts_mono_ms() - t0 < 5000);
    ts_buf_free(&out);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TC_RUN(test_wordcount_end_to_end);
    TC_RUN(test_map_only_output);
    TC_RUN(test_failing_mapper);
    TC_RUN(test_cancelled);
    rmdir(tmpdir);
    TC_DONE("test_mr_task");
}
