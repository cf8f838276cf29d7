/*
 * HTTP transport between metadata servers for Raft messages:
 *
 *     POST /v1/raft/msg?from=<id>@<host:port>
 *     Content-Type: application/octet-stream
 *     body: one message, raft_msg_encode()
 *     -> 204 when queued for the core, 400 when it does not decode
 *
 * Sending never blocks the Raft driver: each peer has a sender thread with
 * a bounded queue (the oldest message is dropped when it is full -- Raft
 * tolerates loss) that POSTs over a kept-alive connection (common/
 * http_client.h), backing off after a failure.  The `from` argument lets a
 * server that joined (and has no configuration yet) answer the leader: the
 * receiving side records id -> address.
 */
#ifndef TS_META_RAFT_TRANSPORT_H
#define TS_META_RAFT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include "common/http_server.h"
#include "common/ts_error.h"
#include "metadata/raft/raft_node.h"

#define RAFT_TRANSPORT_PATH "/v1/raft/msg"

typedef struct raft_transport raft_transport;

/* self_addr: this server's "host:port" as peers reach it. */
int raft_transport_new(uint64_t self_id, const char *self_addr, raft_transport **out,
                       ts_error *err);
/* Where the transport delivers received messages (set before serving). */
void raft_transport_attach(raft_transport *t, raft_node *n);
/* raft_node_ops.send (arg = the transport). */
void raft_transport_send(void *arg, uint64_t to, const char *addr, const void *buf, size_t len);
/* Handles POST RAFT_TRANSPORT_PATH (call it from the server's handler). */
void raft_transport_handle(raft_transport *t, const ts_http_request *req,
                           ts_http_response *resp);
/* Fault injection for partition tests, off unless the server's
 * `fault_injection = true` key enabled it: raft_transport_isolate() then
 * drops every message to and from the given servers (as a network
 * partition would) until it is called again; n = 0 heals.  TS_EPERM when
 * fault injection is off, so a production server cannot be cut off by a
 * stray request. */
void raft_transport_enable_faults(raft_transport *t);
int raft_transport_isolate(raft_transport *t, const uint64_t *ids, size_t n, ts_error *err);
/* Stops the sender threads (after raft_node_stop).  NULL is fine. */
void raft_transport_free(raft_transport *t);

#endif
