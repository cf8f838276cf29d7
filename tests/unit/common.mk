# unit tests for common/
check_PROGRAMS += tests/unit/test_codec
tests_unit_test_codec_SOURCES = tests/unit/test_codec.c
tests_unit_test_codec_LDADD = libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_codec

check_PROGRAMS += tests/unit/test_checksum
tests_unit_test_checksum_SOURCES = tests/unit/test_checksum.c
tests_unit_test_checksum_LDADD = libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_checksum

check_PROGRAMS += tests/unit/test_placement
tests_unit_test_placement_SOURCES = tests/unit/test_placement.c
tests_unit_test_placement_LDADD = libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_placement

check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_LDADD = libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_config

check_PROGRAMS += tests/unit/test_util
tests_unit_test_util_SOURCES = tests/unit/test_util.c
tests_unit_test_util_LDADD = libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_util

check_PROGRAMS += tests/unit/test_http
tests_unit_test_http_SOURCES = tests/unit/test_http.c
tests_unit_test_http_LDADD = libtscommon.a $(COMMON_LIBS)
TESTS += tests/unit/test_http
