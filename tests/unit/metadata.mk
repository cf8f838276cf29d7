# unit tests for metadata/
META_TEST_LDADD = libtsmeta.a libtscommon.a $(COMMON_LIBS)

check_PROGRAMS += tests/unit/test_namespace
tests_unit_test_namespace_SOURCES = tests/unit/test_namespace.c tests/unit/tcheck.h
tests_unit_test_namespace_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_namespace

check_PROGRAMS += tests/unit/test_command
tests_unit_test_command_SOURCES = tests/unit/test_command.c tests/unit/tcheck.h
tests_unit_test_command_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_command

check_PROGRAMS += tests/unit/test_wal
tests_unit_test_wal_SOURCES = tests/unit/test_wal.c tests/unit/cmd_fixture.h tests/unit/tcheck.h
tests_unit_test_wal_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_wal

# Memory per empty file (prints the figure; skipped under ASan).
check_PROGRAMS += tests/unit/test_meta_memory
tests_unit_test_meta_memory_SOURCES = tests/unit/test_meta_memory.c tests/unit/tcheck.h
tests_unit_test_meta_memory_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_meta_memory

check_PROGRAMS += tests/unit/test_meta_api
tests_unit_test_meta_api_SOURCES = tests/unit/test_meta_api.c tests/unit/tcheck.h
tests_unit_test_meta_api_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_meta_api

# Cluster soft state: liveness by the server state machine, chunk reports.
check_PROGRAMS += tests/unit/test_cluster
tests_unit_test_cluster_SOURCES = tests/unit/test_cluster.c tests/unit/tcheck.h
tests_unit_test_cluster_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_cluster

# Pure planners of cluster operations (repair, rebalance, drain) and the
# server state machine.
check_PROGRAMS += tests/unit/test_repair_plan tests/unit/test_rebalance_plan
TESTS += tests/unit/test_repair_plan tests/unit/test_rebalance_plan
tests_unit_test_repair_plan_SOURCES = tests/unit/test_repair_plan.c tests/unit/plan_fixture.h \
	tests/unit/tcheck.h
tests_unit_test_repair_plan_LDADD = $(META_TEST_LDADD)
tests_unit_test_rebalance_plan_SOURCES = tests/unit/test_rebalance_plan.c \
	tests/unit/plan_fixture.h tests/unit/tcheck.h
tests_unit_test_rebalance_plan_LDADD = $(META_TEST_LDADD)

# Orphan replicas for the garbage collector (cluster.h, orphans.h).
check_PROGRAMS += tests/unit/test_gc
tests_unit_test_gc_SOURCES = tests/unit/test_gc.c tests/unit/tcheck.h
tests_unit_test_gc_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_gc

# Compaction: the compare-and-swap extent replacement and the planners.
check_PROGRAMS += tests/unit/test_compact
tests_unit_test_compact_SOURCES = tests/unit/test_compact.c tests/unit/tcheck.h
tests_unit_test_compact_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_compact
# The background checkpointer: its image equals the live state's.
check_PROGRAMS += tests/unit/test_checkpoint
tests_unit_test_checkpoint_SOURCES = tests/unit/test_checkpoint.c tests/unit/cmd_fixture.h \
	tests/unit/tcheck.h
tests_unit_test_checkpoint_LDADD = $(META_TEST_LDADD)
TESTS += tests/unit/test_checkpoint
