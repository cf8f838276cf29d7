# unit tests for chunkserver/
check_PROGRAMS += tests/unit/test_chunk_store tests/unit/test_chunk_api tests/unit/test_chunk_heartbeat
TESTS += tests/unit/test_chunk_store tests/unit/test_chunk_api tests/unit/test_chunk_heartbeat
tests_unit_test_chunk_store_SOURCES = tests/unit/test_chunk_store.c tests/unit/tcheck.h
tests_unit_test_chunk_store_LDADD = libtschunk.a libtscommon.a $(COMMON_LIBS)
tests_unit_test_chunk_api_SOURCES = tests/unit/test_chunk_api.c tests/unit/tcheck.h
tests_unit_test_chunk_api_LDADD = libtschunk.a libtscommon.a $(COMMON_LIBS)
tests_unit_test_chunk_heartbeat_SOURCES = tests/unit/test_chunk_heartbeat.c tests/unit/tcheck.h
tests_unit_test_chunk_heartbeat_LDADD = libtschunk.a libtscommon.a $(COMMON_LIBS)
# scrubber, quarantine, failed data dirs, copies between servers
check_PROGRAMS += tests/unit/test_chunk_ops
TESTS += tests/unit/test_chunk_ops
tests_unit_test_chunk_ops_SOURCES = tests/unit/test_chunk_ops.c tests/unit/tcheck.h
tests_unit_test_chunk_ops_LDADD = libtschunk.a libtscommon.a $(COMMON_LIBS)
