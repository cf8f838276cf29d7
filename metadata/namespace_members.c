/*
 * Durable membership of the namespace: the chunkservers (id, address,
 * zone, weight, the operator's admin state and which fields the operator
 * pinned) and the cluster-wide rebalance flag.  Two writers: a server's
 * own heartbeat (ns_register_server) and the operator (ns_set_server);
 * the operator wins on the fields it set, so a restarted chunkserver with
 * its default weight does not undo `tessera admin node set-weight`.
 */
#include "metadata/namespace_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common/codec.h"
#include "common/util.h"

#define SERVER_ID_MAX 64
#define ZONE_MAX 64
#define WEIGHT_MAX 1e15

const ns_server *ns_server_find(const ns_state *ns, const char *id)
{
    for (size_t i = 0; i < ns->n_servers; i++)
        if (strcmp(ns->servers[i].id, id) == 0)
            return &ns->servers[i];
    return NULL;
}

size_t ns_server_count(const ns_state *ns)
{
    return ns->n_servers;
}

const ns_server *ns_server_at(const ns_state *ns, size_t i)
{
    return i < ns->n_servers ? &ns->servers[i] : NULL;
}

const char *ns_server_admin_name(unsigned admin)
{
    switch (admin) {
    case NS_SERVER_ACTIVE: return "active";
    case NS_SERVER_DRAINING: return "draining";
    case NS_SERVER_REMOVED: return "removed";
    default: return "?";
    }
}

static int weight_ok(double w)
{
    return w > 0 && isfinite(w) && w <= WEIGHT_MAX;
}

/* A new server record (weight 1, no zone, active); the epoch is the
 * caller's to bump. */
static ns_server *server_add(ns_state *ns, const char *id, const char *address)
{
    ns->servers = ts_realloc(ns->servers, (ns->n_servers + 1) * sizeof(ns_server));
    ns_server *s = &ns->servers[ns->n_servers++];
    memset(s, 0, sizeof(*s));
    s->id = ts_strdup(id);
    s->address = ts_strdup(address);
    s->zone = ts_strdup("");
    s->weight = 1.0;
    return s;
}

static void replace_str(char **dst, const char *src)
{
    char *v = ts_strdup(src);
    free(*dst);
    *dst = v;
}

int ns_server_matches(const ns_state *ns, const char *id, const char *address, const char *zone,
                      double weight)
{
    const ns_server *s = ns_server_find(ns, id);
    if (!s)
        return 0;
    return strcmp(s->address, address) == 0 &&
           ((s->pinned & NS_PIN_ZONE) || strcmp(s->zone, zone ? zone : "") == 0) &&
           ((s->pinned & NS_PIN_WEIGHT) || s->weight == weight);
}

int ns_register_server(ns_state *ns, const char *id, const char *address, const char *zone,
                       double weight, ts_error *err)
{
    if (!id || !*id || strlen(id) > SERVER_ID_MAX)
        return ts_fail(err, TS_EINVAL, "register server: id must be 1..%d bytes", SERVER_ID_MAX);
    if (!address || !*address)
        return ts_fail(err, TS_EINVAL, "register server %s: empty address", id);
    if (!weight_ok(weight))
        return ts_fail(err, TS_EINVAL, "register server %s: weight %g out of range", id, weight);
    if (!zone)
        zone = "";
    if (ns_server_matches(ns, id, address, zone, weight))
        return 0;
    ns_server *s = (ns_server *)ns_server_find(ns, id);
    if (!s)
        s = server_add(ns, id, address);
    replace_str(&s->address, address);
    if (!(s->pinned & NS_PIN_ZONE))
        replace_str(&s->zone, zone);
    if (!(s->pinned & NS_PIN_WEIGHT))
        s->weight = weight;
    ns->membership_epoch++;
    return 0;
}

int ns_set_server(ns_state *ns, const char *id, const ns_server_change *ch, ts_error *err)
{
    int has_addr = ch->address && *ch->address;
    if (!id || !*id || strlen(id) > SERVER_ID_MAX)
        return ts_fail(err, TS_EINVAL, "set server: id must be 1..%d bytes", SERVER_ID_MAX);
    if (ch->set_weight && !weight_ok(ch->weight))
        return ts_fail(err, TS_EINVAL, "server %s: weight %g must be a number above 0 (and at "
                       "most %g)", id, ch->weight, WEIGHT_MAX);
    if (ch->set_zone && (!ch->zone || strlen(ch->zone) > ZONE_MAX))
        return ts_fail(err, TS_EINVAL, "server %s: zone must be 0..%d bytes", id, ZONE_MAX);
    if (ch->set_admin && ch->admin > NS_SERVER_REMOVED)
        return ts_fail(err, TS_EINVAL, "server %s: unknown admin state %u", id, ch->admin);
    ns_server *s = (ns_server *)ns_server_find(ns, id);
    if (!s && !has_addr)
        return ts_fail(err, TS_ENOENT, "no chunkserver with id '%s'", id);
    if (!s)
        s = server_add(ns, id, ch->address);
    else if (has_addr)
        replace_str(&s->address, ch->address);
    if (ch->set_weight) {
        s->weight = ch->weight;
        s->pinned |= NS_PIN_WEIGHT;
    }
    if (ch->set_zone) {
        replace_str(&s->zone, ch->zone);
        s->pinned |= NS_PIN_ZONE;
    }
    if (ch->set_admin)
        s->admin = ch->admin;
    ns->membership_epoch++;
    return 0;
}

void ns_get_rebalance(const ns_state *ns, ns_rebalance *out)
{
    *out = ns->rebalance;
}

void ns_set_rebalance(ns_state *ns, const ns_rebalance *r)
{
    ns->rebalance = *r;
    ns->rebalance.running = r->running != 0;
}

void ns_rebalance_encode(ts_buf *b, const ns_rebalance *r)
{
    ts_enc_u8(b, r->running);
    ts_enc_u64(b, r->bandwidth);
    ts_enc_u64(b, r->max_moves);
    ts_enc_u64(b, r->bytes_planned);
    ts_enc_u64(b, r->bytes_target);
    ts_enc_u64(b, r->moves_target);
    ts_enc_i64(b, r->started_ns);
}

void ns_rebalance_decode(ts_dec *d, ns_rebalance *r)
{
    r->running = ts_dec_u8(d);
    r->bandwidth = ts_dec_u64(d);
    r->max_moves = ts_dec_u64(d);
    r->bytes_planned = ts_dec_u64(d);
    r->bytes_target = ts_dec_u64(d);
    r->moves_target = ts_dec_u64(d);
    r->started_ns = ts_dec_i64(d);
    if (ts_dec_ok(d) && r->running > 1)
        d->err = TS_EINVAL;
}
