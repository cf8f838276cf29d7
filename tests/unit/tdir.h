/*
 * Per-test scratch directories for the unit tests: tdir_fresh() gives an
 * empty directory name under /tmp, unique per process and test (removing
 * what a previous run left; the directory itself is not created, so tests
 * can also check that code creates it); tdir_remove() deletes it and frees
 * the name.
 */
#ifndef TS_TDIR_H
#define TS_TDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "common/util.h"

static void tdir_rm_rf(const char *d)
{
    char *rm = ts_sprintf("rm -rf '%s'", d);
    if (system(rm) != 0)
        fprintf(stderr, "  cleanup of %s failed\n", d);
    free(rm);
}

static char *tdir_fresh(const char *prefix, const char *name)
{
    char *d = ts_sprintf("/tmp/tessera-test-%s-%d-%s", prefix, (int)getpid(), name);
    tdir_rm_rf(d);
    return d;
}

static void tdir_remove(char *d)
{
    tdir_rm_rf(d);
    free(d);
}

#endif
