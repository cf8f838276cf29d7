/*
 * Inspection of the Raft core: status, cheap accessors, the invariant check
 * (the invariants are listed in raft.c) and names for logs.
 */
#include "metadata/raft/raft_int.h"

#include <string.h>

void raft_get_status(const raft *r, raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = r->id;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->leader;
    st->role = r->role;
    const raft_member *me = raft_conf_find(&r->conf, r->id);
    st->is_member = me != NULL;
    st->is_learner = me != NULL && me->role == RAFT_LEARNER;
    st->commit = r->commit;
    st->applied = r->applied;
    st->last_index = last_index(r);
    st->first_index = r->first;
    st->snap_index = r->snap.index;
    st->snap_term = r->snap.term;
    st->conf = r->conf;
    st->transfer_target = r->transfer_target;
    if (r->role == RAFT_LEADER) {
        for (uint32_t i = 0; i < r->conf.n; i++) {
            st->pr[i].id = r->prs[i].id;
            st->pr[i].match = r->prs[i].id == r->id ? r->stable : r->prs[i].match;
            st->pr[i].next = r->prs[i].next;
            st->pr[i].state = r->prs[i].state;
        }
    }
}

uint8_t raft_role(const raft *r) { return r->role; }
uint64_t raft_term(const raft *r) { return r->term; }
uint64_t raft_leader(const raft *r) { return r->leader; }
uint64_t raft_commit_index(const raft *r) { return r->commit; }
uint64_t raft_applied_index(const raft *r) { return r->applied; }
uint64_t raft_last_index(const raft *r) { return last_index(r); }

const char *raft_check_invariants(const raft *r)
{
    uint64_t last = last_index(r);
    if (!(r->applied <= r->commit && r->commit <= last))
        return "I1 applied <= commit <= last";
    if (!(r->first - 1 <= r->snap.index && r->snap.index <= r->applied))
        return "I2 first - 1 <= snap.index <= applied";
    if (!(r->unstable <= r->stable + 1 && r->first <= r->unstable && r->stable <= last))
        return "I3 unstable <= stable + 1, first <= unstable, stable <= last";
    uint64_t prev = r->prev_term;
    for (size_t i = 0; i < r->n; i++) {
        if (r->ents[i].index != r->first + i)
            return "I4 consecutive indexes";
        if (r->ents[i].term < prev || r->ents[i].term > r->term)
            return "I4 terms nondecreasing and <= current term";
        prev = r->ents[i].term;
    }
    if (r->role == RAFT_LEADER && !(r->vote == r->id && r->leader == r->id))
        return "I5 leader voted for itself";
    if (r->role == RAFT_CANDIDATE && r->vote != r->id)
        return "I5 candidate voted for itself";
    if (r->role == RAFT_LEADER) {
        for (uint32_t i = 0; i < r->conf.n; i++) {
            const progress *p = &r->prs[i];
            if (p->id == r->id)
                continue;
            if (!(p->match < p->next && p->next <= last + 1))
                return "I6 match < next <= last + 1";
        }
        if (r->pending_conf_index > last)
            return "I7 pending_conf_index <= last";
    }
    raft_conf c;
    uint64_t at = 0;
    raft_conf_at(r, last, &c, &at);
    if (at != r->conf_index || memcmp(&c, &r->conf, sizeof(c)) != 0)
        return "I8 conf is the latest configuration in the log";
    return NULL;
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRECANDIDATE: return "precandidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "unknown";
    }
}

const char *raft_msg_type_name(int type)
{
    static const char *const names[] = {
        "?", "prevote", "prevote_resp", "vote", "vote_resp", "append", "append_resp",
        "heartbeat", "heartbeat_resp", "snap", "snap_resp", "timeout_now"};
    return type > 0 && type < RAFT_MSG_TYPE_END_ ? names[type] : "unknown";
}
