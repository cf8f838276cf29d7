# unit tests for fs/: libtessera's pure parts (test_client), the CLI helpers
# (test_client_cli) and the write/read paths against in-process fake servers
# (test_client_io).
check_PROGRAMS += tests/unit/test_client tests/unit/test_client_cli tests/unit/test_client_io
tests_unit_test_client_SOURCES = tests/unit/test_client.c tests/unit/tcheck.h
tests_unit_test_client_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
tests_unit_test_client_cli_SOURCES = tests/unit/test_client_cli.c fs/cli_util.c fs/cli.h
tests_unit_test_client_cli_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
tests_unit_test_client_io_SOURCES = tests/unit/test_client_io.c
tests_unit_test_client_io_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_client tests/unit/test_client_cli tests/unit/test_client_io

# The request-id window of libtessera against a fake metadata server that
# holds one request (session table limits, metadata/session.h).
check_PROGRAMS += tests/unit/test_client_seq
tests_unit_test_client_seq_SOURCES = tests/unit/test_client_seq.c tests/unit/tcheck.h
tests_unit_test_client_seq_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_client_seq
