# metadata/: the metadata server tessera-meta.  One header per module:
# ptab.h (hash-ordered pointer table), namespace.h (state machine),
# command.h (commands + codec), wal.h (write-ahead log), snapshot.h,
# store.h (sequencing, durability, recovery), cluster.h (soft state),
# meta_api.h (HTTP endpoints), raft/raft.h (consensus core).
noinst_LIBRARIES += libtsmeta.a
libtsmeta_a_SOURCES = \
	metadata/ptab.c metadata/ptab.h \
	metadata/namespace.c metadata/namespace.h metadata/namespace_int.h \
	metadata/namespace_extents.c metadata/namespace_check.c metadata/namespace_codec.c \
	metadata/namespace_xattr.c metadata/namespace_compact.c metadata/namespace_reserve.c \
	metadata/command.c metadata/command.h \
	metadata/session.c metadata/session.h \
	metadata/wal.c metadata/wal.h \
	metadata/snapshot.c metadata/snapshot.h \
	metadata/sm.c metadata/sm.h metadata/checkpoint.c metadata/checkpoint.h \
	metadata/store.c metadata/store.h \
	metadata/cluster.c metadata/cluster.h \
	metadata/orphans.c metadata/orphans.h
# raft/raft.h: the I/O-free consensus core (+ its wire codec);
# raft/raft_storage.h: its durable state (hard state, log on wal.c, snapshot meta);
# raft/raft_node.h: the driver thread (clock, storage, transport, waiters);
# raft/raft_transport.h: messages between servers over HTTP.
libtsmeta_a_SOURCES += \
	metadata/raft/raft.c metadata/raft/raft.h metadata/raft/raft_int.h \
	metadata/raft/raft_inspect.c metadata/raft/raft_codec.c \
	metadata/raft/raft_storage.c metadata/raft/raft_storage.h \
	metadata/raft/raft_node.c metadata/raft/raft_node.h \
	metadata/raft/raft_transport.c metadata/raft/raft_transport.h
libtsmeta_a_SOURCES += \
	metadata/meta_api.c metadata/meta_api.h metadata/meta_api_int.h \
	metadata/meta_cluster_api.c metadata/meta_raft_api.c

bin_PROGRAMS += tessera-meta
tessera_meta_SOURCES = metadata/main.c
tessera_meta_LDADD = libtsmeta.a libtscommon.a $(COMMON_LIBS)

# Pure planners of cluster operations (no I/O): the server state machine,
# repair (re-replication, surplus deletes) and rebalance/drain.
libtsmeta_a_SOURCES += \
	metadata/server_state.c metadata/server_state.h \
	metadata/repair_plan.c metadata/repair_plan.h \
	metadata/rebalance_plan.c metadata/rebalance_plan.h
# The leader's re-replication loop (threads, HTTP to chunkservers) around
# the repair planner.
libtsmeta_a_SOURCES += metadata/repair.c metadata/repair.h
# Cluster operations: durable membership and the rebalance flag, the
# planners' view of the cluster shared by repair, drain and rebalance, and
# the operator endpoints (/v1/admin/...).
libtsmeta_a_SOURCES += \
	metadata/namespace_members.c \
	metadata/plan_view.c metadata/plan_view.h \
	metadata/meta_ops_api.c
# The compaction planner (pure) and the leader's garbage collector of
# orphan replicas (gc.h).
libtsmeta_a_SOURCES += metadata/compact_plan.c metadata/compact_plan.h
libtsmeta_a_SOURCES += metadata/gc.c metadata/gc.h
# The leader's compactor (compact.h) and its admin endpoint.
libtsmeta_a_SOURCES += metadata/compact.c metadata/compact.h metadata/meta_compact_api.c
