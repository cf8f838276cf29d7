# unit tests for mapreduce/: splits and line records, the job model and
# scheduler (deterministic simulations), the external sort and merge, and
# the streaming task runner over local files.
check_PROGRAMS += tests/unit/test_mr_split tests/unit/test_mr_sched tests/unit/test_mr_sort \
	tests/unit/test_mr_task
TESTS += tests/unit/test_mr_split tests/unit/test_mr_sched tests/unit/test_mr_sort \
	tests/unit/test_mr_task
tests_unit_test_mr_split_SOURCES = tests/unit/test_mr_split.c tests/unit/tcheck.h
tests_unit_test_mr_split_LDADD = libtsmr.a libtscommon.a $(COMMON_LIBS)
tests_unit_test_mr_sched_SOURCES = tests/unit/test_mr_sched.c tests/unit/tcheck.h
tests_unit_test_mr_sched_LDADD = libtsmr.a libtscommon.a $(COMMON_LIBS)
tests_unit_test_mr_sort_SOURCES = tests/unit/test_mr_sort.c tests/unit/tcheck.h
tests_unit_test_mr_sort_LDADD = libtsmr.a libtscommon.a $(COMMON_LIBS)
tests_unit_test_mr_task_SOURCES = tests/unit/test_mr_task.c tests/unit/tcheck.h
tests_unit_test_mr_task_LDADD = libtsmr.a libtscommon.a $(COMMON_LIBS)
