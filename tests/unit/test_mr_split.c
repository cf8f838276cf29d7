/*
 * Unit tests of mapreduce/split.h: split computation and host choice, and
 * the line record rule checked exhaustively on random text: for every split
 * size and read block size, the splits' records put together are the file's
 * lines, each exactly once.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "mapreduce/split.h"
#include "tests/unit/tcheck.h"

static void test_splits_and_hosts(void)
{
    char *r1[] = {"cs-1", "cs-2", "cs-3"}, *r2[] = {"cs-2", "cs-3", "cs-4"}, *r3[] = {"cs-4"};
    mr_extent_info ex[3] = {
        {.file_offset = 0, .length = 4000, .replicas = r1, .nreplicas = 3},
        {.file_offset = 4000, .length = 4000, .replicas = r2, .nreplicas = 3},
        {.file_offset = 8000, .length = 2000, .replicas = r3, .nreplicas = 1},
    };
    mr_file_info f[2] = {{.path = "/a", .ino = 5, .size = 10000, .extents = ex, .nextents = 3},
                         {.path = "/empty", .ino = 6, .size = 0}};
    mr_split *s;
    size_t n;
    ts_error e;

    TC_CHECK(mr_splits_compute(f, 2, 4000, &s, &n, &e) == 0);
    TC_CHECK_EQ_U64(n, 3);
    TC_CHECK_EQ_U64(s[0].start, 0);
    TC_CHECK_EQ_U64(s[0].end, 4000);
    TC_CHECK_EQ_U64(s[2].start, 8000);
    TC_CHECK_EQ_U64(s[2].end, 10000);
    TC_CHECK_EQ_U64(s[1].nhosts, 3);
    TC_CHECK_STR(s[1].hosts[0], "cs-2");
    TC_CHECK_STR(s[2].hosts[0], "cs-4");
    free(s);
    /* 3000-byte splits: [3000,6000) overlaps extent 0 by 1000 and extent 1
     * by 2000, so extent 1's servers are its hosts. */
    TC_CHECK(mr_splits_compute(f, 2, 3000, &s, &n, &e) == 0);
    TC_CHECK_EQ_U64(n, 4);
    TC_CHECK_STR(s[1].hosts[0], "cs-2");
    TC_CHECK_STR(s[1].hosts[2], "cs-4");
    TC_CHECK_EQ_U64(s[3].end, 10000);
    free(s);
    TC_CHECK(mr_splits_compute(f, 2, 0, &s, &n, &e) == TS_EINVAL);
}

/* Reads split [a, b) of text with blocks of `block` bytes, appending the
 * records to out. */
static void read_split(const char *text, size_t size, uint64_t a, uint64_t b, size_t block,
                       ts_buf *out)
{
    mr_linerec r;

    mr_linerec_init(&r, a, b);
    while (!mr_linerec_done(&r)) {
        uint64_t pos = mr_linerec_pos(&r);
        if (pos >= size) {
            if (mr_linerec_eof(&r))
                ts_buf_append(out, "\n", 1);
            break;
        }
        size_t len = TS_MIN(block, size - (size_t)pos), off, n;
        size_t used = mr_linerec_feed(&r, text + pos, len, &off, &n);
        TC_CHECK(used <= len);
        TC_CHECK(off + n <= len);
        ts_buf_append(out, text + pos + off, n);
    }
}

static void check_text(const char *text, size_t size)
{
    ts_buf want = {0};

    ts_buf_append(&want, text, size);
    if (size > 0 && text[size - 1] != '\n')
        ts_buf_append(&want, "\n", 1);
    for (size_t split = 1; split <= 40; split++) {
        for (size_t block = 1; block <= 9; block += 4) {
            ts_buf got = {0};
            for (uint64_t a = 0; a < size; a += split)
                read_split(text, size, a, TS_MIN(a + split, size), block, &got);
            int same = got.len == want.len && (got.len == 0 || memcmp(got.data, want.data, got.len) == 0);
            TC_CHECK(same);
            if (!same) {
                fprintf(stderr, "  split %zu block %zu: got %zu bytes, want %zu\n", split,
                        block, got.len, want.len);
                ts_buf_free(&got);
                ts_buf_free(&want);
                return;
            }
            ts_buf_free(&got);
        }
    }
    ts_buf_free(&want);
}

static void test_every_line_exactly_once(void)
{
    /* Fixed shapes: lines at exact boundaries, empty lines, no final '\n'. */
    check_text("", 0);
    check_text("\n", 1);
    check_text("a\nbb\n\nccc\n", 10);
    check_text("abcdef", 6);
    check_text("\n\n\nx\n\ny", 8);
    /* Random texts with lines longer than the splits. */
    srand(7);
    for (int round = 0; round < 30; round++) {
        size_t size = (size_t)(rand() % 300);
        char *t = ts_malloc(size + 1);
        for (size_t i = 0; i < size; i++)
            t[i] = rand() % 6 == 0 ? '\n' : (char)('a' + rand() % 26);
        if (rand() % 3 == 0 && size > 50)
            memset(t + 10, 'z', 45);   /* a line longer than most splits */
        check_text(t, size);
        free(t);
    }
}

static void test_straddling_line_goes_to_its_first_split(void)
{
    const char *t = "one\ntwo-crosses\nthree\n";   /* boundary at 8, inside "two-crosses" */
    ts_buf a = {0}, b = {0};

    read_split(t, strlen(t), 0, 8, 4, &a);
    read_split(t, strlen(t), 8, strlen(t), 4, &b);
    TC_CHECK(a.len == strlen("one\ntwo-crosses\n") &&
             memcmp(a.data, "one\ntwo-crosses\n", a.len) == 0);
    TC_CHECK(b.len == strlen("three\n") && memcmp(b.data, "three\n", b.len) == 0);
    ts_buf_free(&a);
    ts_buf_free(&b);
    /* A line starting exactly at the boundary belongs to the second split. */
    read_split(t, strlen(t), 0, 4, 3, &a);
    read_split(t, strlen(t), 4, strlen(t), 3, &b);
    TC_CHECK(a.len == 4 && memcmp(a.data, "one\n", 4) == 0);
    TC_CHECK(b.len == strlen(t) - 4);
    ts_buf_free(&a);
    ts_buf_free(&b);
}

static void test_keys_and_partitions(void)
{
    unsigned seen[4] = {0};
    char key[16];

    TC_CHECK_EQ_U64(mr_key_len("word\t1", 6), 4);
    TC_CHECK_EQ_U64(mr_key_len("word", 4), 4);
    TC_CHECK_EQ_U64(mr_key_len("\tx", 2), 0);
    TC_CHECK(mr_key_cmp("ab", 2, "abc", 3) < 0);
    TC_CHECK(mr_key_cmp("b", 1, "abc", 3) > 0);
    TC_CHECK(mr_key_cmp("abc", 3, "abc", 3) == 0);
    TC_CHECK(mr_key_cmp("\xff", 1, "a", 1) > 0);   /* bytes, unsigned */
    TC_CHECK_EQ_U64(mr_partition("x", 1, 1), 0);
    TC_CHECK_EQ_U64(mr_partition("x", 1, 0), 0);
    for (int i = 0; i < 400; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        unsigned p = mr_partition(key, (size_t)n, 4);
        TC_CHECK(p < 4);
        TC_CHECK_EQ_U64(p, mr_partition(key, (size_t)n, 4));   /* deterministic */
        seen[p]++;
    }
    for (int p = 0; p < 4; p++)
        TC_CHECK(seen[p] > 50);   /* roughly even */
}

int main(void)
{
    TC_RUN(test_splits_and_hosts);
    TC_RUN(test_every_line_exactly_once);
    TC_RUN(test_straddling_line_goes_to_its_first_split);
    TC_RUN(test_keys_and_partitions);
    TC_DONE("test_mr_split");
}
