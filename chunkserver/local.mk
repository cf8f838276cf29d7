# chunkserver/: the chunk store, the chunk HTTP API with the write chain
# (forwarder), heartbeats, and the tessera-chunk daemon.  See the headers.
noinst_LIBRARIES += libtschunk.a
libtschunk_a_SOURCES = \
	chunkserver/chunk_store.c chunkserver/chunk_store.h \
	chunkserver/forwarder.c chunkserver/forwarder.h \
	chunkserver/chunk_api.c chunkserver/chunk_api.h \
	chunkserver/heartbeat.c chunkserver/heartbeat.h

bin_PROGRAMS += tessera-chunk
tessera_chunk_SOURCES = chunkserver/main.c
tessera_chunk_LDADD = libtschunk.a libtscommon.a $(COMMON_LIBS)
