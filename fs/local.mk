# fs/: libtessera (the client library, fs/tessera.h is its contract), the
# `tessera` CLI and the FUSE mount `tessera-mount`, both built on it.
noinst_LIBRARIES += libtessera.a
libtessera_a_SOURCES = \
	fs/tessera.h fs/client_int.h \
	fs/client_core.c \
	fs/client_meta.c \
	fs/client_write.c \
	fs/client_read.c \
	fs/client_path.c \
	fs/client_xattr.c

bin_PROGRAMS += tessera
tessera_SOURCES = \
	fs/cli.h \
	fs/cli_main.c \
	fs/cli_util.c \
	fs/cli_files.c \
	fs/cli_admin.c \
	fs/cli_fsck.c \
	fs/cli_ops.c \
	fs/cli_compact.c \
	fs/cli_raft.c \
	fs/cli_local.c \
	fs/cli_mount.c \
	fs/cli_mr.c
tessera_LDADD = libtsmr.a libtessera.a libtscommon.a $(COMMON_LIBS)

bin_PROGRAMS += tessera-mount
tessera_mount_SOURCES = \
	fs/mount_inode.h fs/mount_inode.c \
	fs/mount_io.h fs/mount_io.c \
	fs/mount_ops.h \
	fs/mount_ops_attr.c \
	fs/mount_ops_dir.c \
	fs/mount_ops_file.c \
	fs/mount_main.c
tessera_mount_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS)
tessera_mount_LDADD = libtessera.a libtscommon.a $(FUSE3_LIBS) $(COMMON_LIBS)
