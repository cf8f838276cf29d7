# Tests: C unit tests per area (tests/unit/*.mk), bats end-to-end tests.
include tests/unit/common.mk
include tests/unit/metadata.mk
include tests/unit/chunkserver.mk
include tests/unit/fs.mk
include tests/unit/mapreduce.mk
include tests/unit/raft.mk
include tests/sim/sim.mk

# Benchmarks (built by `make check`, run by hand: see tests/bench/*.sh).
check_PROGRAMS += tests/bench/meta_create
tests_bench_meta_create_SOURCES = tests/bench/meta_create.c
tests_bench_meta_create_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
check_PROGRAMS += tests/bench/meta_ops
tests_bench_meta_ops_SOURCES = tests/bench/meta_ops.c
tests_bench_meta_ops_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)

# History recorder of the linearizability check (tests/bats/lincheck.py).
check_PROGRAMS += tests/lin/lin_client
tests_lin_lin_client_SOURCES = tests/lin/lin_client.c
tests_lin_lin_client_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
# Small files for the compaction tests and benchmark (create / verify).
check_PROGRAMS += tests/bench/small_files
tests_bench_small_files_SOURCES = tests/bench/small_files.c
tests_bench_small_files_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
