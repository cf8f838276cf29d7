/*
 * Unit tests of mapreduce/kvsort.h: the external sort with a memory limit
 * small enough to force many spills gives, per partition, exactly the
 * records added, sorted by key; the combiner hook is applied at each spill;
 * the k-way merge of sorted files is sorted and complete.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "mapreduce/kvsort.h"
#include "mapreduce/split.h"
#include "tests/unit/tcheck.h"

static char tmpdir[] = "/tmp/test_mr_sort.XXXXXX";

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks partition p of the file holds sorted keys, each of the right
 * partition; returns its lines joined in *all. */
static size_t check_partitions(const char *path, const uint64_t *off, unsigned nparts,
                               char ***lines_out)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    ts_error e;
    char **lines = NULL;

    TC_CHECK(ts_read_file(path, &text, &len, &e) == 0);
    TC_CHECK_EQ_U64(off[nparts], len);
    for (unsigned p = 0; p < nparts; p++) {
        const char *prev = NULL;
        size_t prevk = 0;
        for (uint64_t i = off[p]; i < off[p + 1];) {
            char *nl = memchr(text + i, '\n', off[p + 1] - i);
            TC_CHECK(nl != NULL);
            if (!nl)
                break;
            size_t l = (size_t)(nl - (text + i)), k = mr_key_len(text + i, l);
            TC_CHECK_EQ_U64(mr_partition(text + i, k, nparts), p);
            if (prev)
                TC_CHECK(mr_key_cmp(prev, prevk, text + i, k) <= 0);
            prev = text + i;
            prevk = k;
            lines = ts_realloc(lines, (n + 1) * sizeof(*lines));
            lines[n++] = ts_strndup(text + i, l);
            i += l + 1;
        }
    }
    free(text);
    qsort(lines, n, sizeof(*lines), line_cmp);
    *lines_out = lines;
    return n;
}

static void test_sort_with_spills(void)
{
    mr_sorter *s;
    ts_error e;
    uint64_t off[4];
    char **want = NULL, **got;
    size_t nwant = 20000;
    char *out = ts_sprintf("%s/out", tmpdir);

    TC_CHECK(mr_sorter_open(tmpdir, 3, 64 * 1024, NULL, NULL, &s, &e) == 0);
    srand(3);
    want = ts_malloc(nwant * sizeof(*want));
    for (size_t i = 0; i < nwant; i++) {
        want[i] = ts_sprintf("key%05d\tvalue-%zu", rand() % 5000, i);
        if (i % 1000 == 0) {   /* keys without a value */
            free(want[i]);
            want[i] = ts_sprintf("bare%zu", i);
        }
        TC_CHECK(mr_sorter_add(s, want[i], strlen(want[i]), &e) == 0);
    }
    TC_CHECK(mr_sorter_finish(s, out, off, &e) == 0);
    mr_sorter_stats st;
    mr_sorter_get_stats(s, &st);
    TC_CHECK(st.spills >= 5);
    TC_CHECK_EQ_U64(st.records_in, nwant);
    TC_CHECK_EQ_U64(st.records_out, nwant);
    mr_sorter_free(s);
    size_t n = check_partitions(out, off, 3, &got);
    TC_CHECK_EQ_U64(n, nwant);
    qsort(want, nwant, sizeof(*want), line_cmp);
    for (size_t i = 0; i < n && i < nwant; i++)
        TC_CHECK(strcmp(got[i], want[i]) == 0);
    for (size_t i = 0; i < nwant; i++)
        free(want[i]);
    for (size_t i = 0; i < n; i++)
        free(got[i]);
    free(want);
    free(got);
    /* Only the output is left in the directory. */
    char *run0 = ts_sprintf("%s/run-0000", tmpdir);
    TC_CHECK(access(run0, F_OK) != 0);
    free(run0);
    unlink(out);
    free(out);
}

/* A combiner in C: sums the integer values of equal keys. */
static int sum_combiner(void *ctx, unsigned part, const mr_line *recs, size_t n, ts_buf *out,
                        ts_error *err)
{
    (*(int *)ctx)++;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        long sum = 0;
        while (j < n && mr_key_cmp(recs[j].line, recs[j].keylen, recs[i].line, recs[i].keylen) == 0) {
            sum += atol(recs[j].line + recs[j].keylen + 1);
            j++;
        }
        ts_buf_printf(out, "%.*s\t%ld\n", (int)recs[i].keylen, recs[i].line, sum);
        i = j;
    }
    return 0;
}

static void test_combiner_at_spill(void)
{
    mr_sorter *s;
    ts_error e;
    uint64_t off[3];
    int calls = 0;
    char *out = ts_sprintf("%s/comb", tmpdir);
    long total[50] = {0};

    TC_CHECK(mr_sorter_open(tmpdir, 2, 64 * 1024, sum_combiner, &calls, &s, &e) == 0);
    for (int i = 0; i < 30000; i++) {
        char line[32];
        int k = i % 50;
        int n = snprintf(line, sizeof line, "w%02d\t1", k);
        total[k]++;
        TC_CHECK(mr_sorter_add(s, line, (size_t)n, &e) == 0);
    }
    TC_CHECK(mr_sorter_finish(s, out, off, &e) == 0);
    mr_sorter_stats st;
    mr_sorter_get_stats(s, &st);
    mr_sorter_free(s);
    TC_CHECK(calls >= 2 * (int)st.spills);
    /* Each spill left at most 50 records; their sums add up to the counts. */
    TC_CHECK(st.records_out <= 50 * (st.spills + 1));
    char **got;
    size_t n = check_partitions(out, off, 2, &got);
    long sum[50] = {0};
    for (size_t i = 0; i < n; i++) {
        int k = atoi(got[i] + 1);
        sum[k] += atol(strchr(got[i], '\t') + 1);
        free(got[i]);
    }
    free(got);
    for (int k = 0; k < 50; k++)
        TC_CHECK_EQ_U64(sum[k], total[k]);
    unlink(out);
    free(out);
}

static void test_merge_files(void)
{
    const char *a = "a\t1\nc\t1\nc\t2\n", *b = "b\nc\t3\nd\t1\n", *empty = "";
    const char *texts[3] = {a, b, empty};
    mr_merge_src src[3];
    int fds[3];
    ts_error e;
    mr_merge *m;
    mr_line l;
    ts_buf got = {0};

    for (int i = 0; i < 3; i++) {
        char *p = ts_sprintf("%s/m%d", tmpdir, i);
        TC_CHECK(ts_write_file_atomic(p, texts[i], strlen(texts[i]), &e) == 0);
        fds[i] = open(p, O_RDONLY);
        src[i] = (mr_merge_src){.fd = fds[i], .start = 0, .end = strlen(texts[i])};
        unlink(p);
        free(p);
    }
    TC_CHECK(mr_merge_open(src, 3, &m, &e) == 0);
    int rc;
    while ((rc = mr_merge_next(m, &l, &e)) == 1)
        ts_buf_append(&got, l.line, l.len);
    TC_CHECK(rc == 0);
    mr_merge_free(m);
    ts_buf_append(&got, "", 1);
    TC_CHECK_STR(got.data, "a\t1\nb\nc\t1\nc\t2\nc\t3\nd\t1\n");
    ts_buf_free(&got);
    /* A stream whose last line lacks '\n' is reported. */
    src[0].end = strlen(a) - 1;
    TC_CHECK(mr_merge_open(src, 1, &m, &e) == 0);
    while ((rc = mr_merge_next(m, &l, &e)) == 1)
        ;
    TC_CHECK(rc == TS_ECORRUPT);
    mr_merge_free(m);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TC_RUN(test_sort_with_spills);
    TC_RUN(test_combiner_at_spill);
    TC_RUN(test_merge_files);
    rmdir(tmpdir);
    TC_DONE("test_mr_sort");
}
