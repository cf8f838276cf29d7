# tests/sim/: deterministic simulators of the pure cores.  They are built and
# run like unit tests (tests/run-all.sh runs tests/unit/test_*), hence the
# binary names.
check_PROGRAMS += tests/unit/test_raft_sim
tests_unit_test_raft_sim_SOURCES = tests/sim/raft_sim.c
tests_unit_test_raft_sim_LDADD = libtsmeta.a libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_raft_sim
