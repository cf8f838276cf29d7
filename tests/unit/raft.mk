# unit tests for metadata/raft/ (the simulator is tests/sim/sim.mk)
check_PROGRAMS += tests/unit/test_raft
tests_unit_test_raft_SOURCES = tests/unit/test_raft.c tests/unit/tcheck.h
tests_unit_test_raft_LDADD = libtsmeta.a libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_raft

check_PROGRAMS += tests/unit/test_raft_storage
tests_unit_test_raft_storage_SOURCES = tests/unit/test_raft_storage.c tests/unit/tcheck.h tests/unit/tdir.h
tests_unit_test_raft_storage_LDADD = libtsmeta.a libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_raft_storage

check_PROGRAMS += tests/unit/test_raft_node
tests_unit_test_raft_node_SOURCES = tests/unit/test_raft_node.c tests/unit/tcheck.h tests/unit/tdir.h
tests_unit_test_raft_node_LDADD = libtsmeta.a libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_raft_node

check_PROGRAMS += tests/unit/test_raft_transport
tests_unit_test_raft_transport_SOURCES = tests/unit/test_raft_transport.c tests/unit/tcheck.h tests/unit/tdir.h
tests_unit_test_raft_transport_LDADD = libtsmeta.a libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_raft_transport
