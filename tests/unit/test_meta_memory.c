/*
 * Memory per empty file in the namespace (target: <= 256 bytes; GFS ~100,
 * HDFS ~150).  Creates 1,000,000 empty files -- once in a single directory,
 * once spread over 1,000 directories -- and compares heap use (mallinfo2)
 * and resident memory before and after.  Skipped (exit 77) under
 * AddressSanitizer, whose allocator changes the numbers.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/util.h"
#include "metadata/namespace.h"
#include "tests/unit/tcheck.h"

#define NFILES 1000000

/* Heap in use: small chunks plus mmapped large ones (the slot arrays). */
static size_t heap_used(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static void measure(const char *label, int ndirs)
{
    malloc_trim(0);
    size_t heap0 = heap_used();
    long rss0 = rss_bytes();
    ns_state *ns = ns_new(0);
    ts_error e = {0};
    ts_attr a;
    uint64_t *dirs = ts_malloc((size_t)ndirs * sizeof(uint64_t));
    char name[32];
    for (int d = 0; d < ndirs; d++) {
        if (ndirs == 1) {
            dirs[d] = TS_ROOT_INO;
            continue;
        }
        snprintf(name, sizeof(name), "dir%d", d);
        TC_CHECK(ns_mkdir(ns, TS_ROOT_INO, name, 0755, 0, 0, 1, &a, &e) == 0);
        dirs[d] = a.ino;
    }
    size_t heap_dirs = heap_used();
    long rss_dirs = rss_bytes();
    int failures = 0;
    for (int i = 0; i < NFILES; i++) {
        int created;
        snprintf(name, sizeof(name), "file-%07d", i);
        failures += ns_create(ns, dirs[i % ndirs], name, 0644, 1000, 1000, NS_CREATE_EXCL,
                              2, &a, &created, &e) != 0;
    }
    TC_CHECK(failures == 0);
    size_t heap1 = heap_used();
    long rss1 = rss_bytes();
    double per_heap = (double)(heap1 - heap_dirs) / NFILES;
    double per_rss = (double)(rss1 - rss_dirs) / NFILES;
    printf("%s: %d files (names 12 bytes): heap %.1f B/file, RSS %.1f B/file "
           "(heap before %zu, dirs %zu, after %zu; RSS %ld -> %ld)\n", label, NFILES, per_heap,
           per_rss, heap0, heap_dirs, heap1, rss0, rss1);
    TC_CHECK(per_heap <= 256);
    TC_CHECK(per_rss <= 256);
    TC_CHECK(ns_check_invariants(ns, &e) == 0);
    ns_free(ns);
    free(dirs);
}

static void test_one_directory(void)
{
    measure("one directory", 1);
}

static void test_thousand_directories(void)
{
    measure("1000 directories", 1000);
}

int main(void)
{
#if defined(__SANITIZE_ADDRESS__)
    printf("test_meta_memory: skipped under AddressSanitizer\n");
    return 77;
#endif
    TC_RUN(test_one_directory);
    TC_RUN(test_thousand_directories);
    TC_DONE("test_meta_memory");
}
