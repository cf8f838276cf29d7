/*
 * HTTP transport between metadata servers for Raft messages:
 *
 *     POST /v1/raft/msg?from=<id>@<host:port>
 *     Content-Type: application/octet-stream
 *     body: one message, raft_msg_encode()
 *     -> 204 when queued for the core, 400 when it does not decode
 *
 * Answers on the response (version 1): a sender that adds
 * `&answers=1` lets the receiver hold the request until its driver has
 * handled the message (persisted it, fsync included, and produced what
 * follows, typically the acknowledgement), at most a fraction of a second,
 * and answer
 *
 *     -> 200, Content-Type RAFT_TRANSPORT_ANSWERS_TYPE,
 *        body: messages for the sender, each as u32 length + bytes
 *        (common/codec.h ts_enc_bytes), back to back
 *
 * or 204 when there is nothing for the sender.  This saves the answer its
 * own POST in the other direction -- a thread hand-off and an HTTP
 * exchange on each side of every replication round.  Mixed versions:
 * a server that predates it ignores the argument and answers 204, and
 * sends its answers on its own POSTs, which this version still takes; a
 * sender that does not ask gets 204 as before.  The sender asks only on
 * the last message it has queued for the peer, so messages that pile up
 * still reach the peer in time to share its fsync.
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
#define RAFT_TRANSPORT_ANSWERS_ARG "answers"
#define RAFT_TRANSPORT_ANSWERS_VERSION 1
#define RAFT_TRANSPORT_ANSWERS_TYPE "application/x-tessera-raft-msgs"

typedef struct raft_transport_stats {
    uint64_t answers_sent;      /* messages given back on responses */
    uint64_t answers_received;  /* messages taken from responses */
    uint64_t dropped;           /* to a full queue */
} raft_transport_stats;

typedef struct raft_transport raft_transport;

/* self_addr: this server's "host:port" as peers reach it. */
int raft_transport_new(uint64_t self_id, const char *self_addr, raft_transport **out,
                       ts_error *err);
/* Where the transport delivers received messages (set before serving).
 * Answers taken from responses are delivered by the sender threads, which
 * outlive the HTTP server: attach NULL before stopping the node (after the
 * call returns nothing is delivered into it). */
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
/* Whether this transport asks for and gives answers on responses (on by
 * default).  Off, it speaks exactly the protocol before answers existed:
 * for tests of a mixed-version group, and a switch should a peer mishandle
 * them. */
void raft_transport_set_answers(raft_transport *t, int on);
void raft_transport_get_stats(raft_transport *t, raft_transport_stats *st);
/* Stops the sender threads (after raft_node_stop).  NULL is fine. */
void raft_transport_free(raft_transport *t);

#endif
