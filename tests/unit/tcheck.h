/*
 * A minimal unit-test harness: each test binary defines test functions, runs
 * them with TC_RUN, and ends with TC_DONE(), which prints
 * "<binary>: N passed, M failed" (one count per test function) and exits
 * non-zero on any failure.  tests/run-all.sh adds these counts up.
 */
#ifndef TS_TCHECK_H
#define TS_TCHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tc_passed_, tc_failed_, tc_cur_failed_;
static const char *tc_name_;

#define TC_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "  FAIL %s:%d (%s): %s\n", __FILE__, __LINE__,    \
                    tc_name_, #cond);                                         \
            tc_cur_failed_ = 1;                                               \
        }                                                                     \
    } while (0)

#define TC_CHECK_EQ_U64(a, b)                                                 \
    do {                                                                      \
        uint64_t tc_a_ = (uint64_t)(a), tc_b_ = (uint64_t)(b);                \
        if (tc_a_ != tc_b_) {                                                 \
            fprintf(stderr, "  FAIL %s:%d (%s): %s == %s (%" PRIu64           \
                    " != %" PRIu64 ")\n", __FILE__, __LINE__, tc_name_, #a,   \
                    #b, tc_a_, tc_b_);                                        \
            tc_cur_failed_ = 1;                                               \
        }                                                                     \
    } while (0)

#define TC_CHECK_STR(a, b)                                                    \
    do {                                                                      \
        const char *tc_a_ = (a), *tc_b_ = (b);                                \
        if (!tc_a_ || !tc_b_ || strcmp(tc_a_, tc_b_) != 0) {                  \
            fprintf(stderr, "  FAIL %s:%d (%s): %s == %s (\"%s\" != \"%s\")\n",\
                    __FILE__, __LINE__, tc_name_, #a, #b,                     \
                    tc_a_ ? tc_a_ : "(null)", tc_b_ ? tc_b_ : "(null)");      \
            tc_cur_failed_ = 1;                                               \
        }                                                                     \
    } while (0)

#define TC_RUN(fn)                                                            \
    do {                                                                      \
        tc_name_ = #fn;                                                       \
        tc_cur_failed_ = 0;                                                   \
        fn();                                                                 \
        if (tc_cur_failed_) {                                                 \
            tc_failed_++;                                                     \
            fprintf(stderr, "not ok - %s\n", #fn);                            \
        } else {                                                              \
            tc_passed_++;                                                     \
            fprintf(stderr, "ok - %s\n", #fn);                                \
        }                                                                     \
    } while (0)

#define TC_DONE(binary)                                                       \
    do {                                                                      \
        printf("%s: %d passed, %d failed\n", binary, tc_passed_, tc_failed_); \
        return tc_failed_ ? 1 : 0;                                            \
    } while (0)

#endif
