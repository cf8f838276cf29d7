# fs/: libtessera (the client library, fs/tessera.h is its contract) and the
# `tessera` CLI built on it.  The FUSE mount will link the same library.
noinst_LIBRARIES += libtessera.a
libtessera_a_SOURCES = \
	fs/tessera.h fs/client_int.h \
	fs/client_core.c \
	fs/client_meta.c \
	fs/client_write.c \
	fs/client_read.c \
	fs/client_path.c

bin_PROGRAMS += tessera
tessera_SOURCES = \
	fs/cli.h \
	fs/cli_main.c \
	fs/cli_util.c \
	fs/cli_files.c \
	fs/cli_admin.c \
	fs/cli_local.c
tessera_LDADD = libtessera.a libtscommon.a $(COMMON_LIBS)
