# common/: shared library code linked into every binary.
noinst_LIBRARIES += libtscommon.a
libtscommon_a_SOURCES = \
	common/ts_error.c common/ts_error.h \
	common/log.c common/log.h \
	common/util.c common/util.h \
	common/chunk_id.c common/chunk_id.h \
	common/checksum.c common/checksum.h \
	common/placement.c common/placement.h \
	common/codec.c common/codec.h \
	common/config.c common/config.h \
	common/proto.c common/proto.h \
	common/http_server.c common/http_server.h \
	common/http_client.c common/http_client.h
EXTRA_DIST += common/PROTOCOL.md
