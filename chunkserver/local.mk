# chunkserver/: the chunk store, the chunk HTTP API with the write chain
# (forwarder), heartbeats, the scrubber, copies between servers (chunk_copy)
# under a shared background budget (throttle), and the tessera-chunk daemon.
# See the headers.
noinst_LIBRARIES += libtschunk.a
libtschunk_a_SOURCES = \
	chunkserver/chunk_store.c chunkserver/chunk_store.h \
	chunkserver/forwarder.c chunkserver/forwarder.h \
	chunkserver/chunk_api.c chunkserver/chunk_api.h \
	chunkserver/heartbeat.c chunkserver/heartbeat.h \
	chunkserver/throttle.c chunkserver/throttle.h \
	chunkserver/scrubber.c chunkserver/scrubber.h \
	chunkserver/chunk_copy.c chunkserver/chunk_copy.h \
	chunkserver/chunk_build.c chunkserver/chunk_build.h

bin_PROGRAMS += tessera-chunk
# The task executor (MapReduce) also needs the runner and the client library.
tessera_chunk_SOURCES = chunkserver/main.c chunkserver/task_exec.c chunkserver/task_exec.h
tessera_chunk_LDADD = libtschunk.a libtsmr.a libtessera.a libtscommon.a $(COMMON_LIBS)
