#!/usr/bin/env bats
# A network partition of the Raft leader, and a linearizability check of a
# history recorded through the partition and through leader kills.  The
# partition uses the servers' fault-injection switch (`fault_injection =
# true`, POST /v1/raft/fault): all daemons listen on 127.0.0.1, so the
# isolated leader is cut off by dropping every Raft message to and from its
# peers, while clients still reach it over HTTP -- which is what the
# minority side of a real partition looks like to a client near it.

load helpers

teardown() { stop_cluster; }

LINCHECK=$BATS_TEST_DIRNAME/lincheck.py

status_json() { "$TESSERA" admin raft status --json; }

# The role one server reports about itself (asked directly, not through the
# leader: the two sides of a partition disagree).
self_role() { curl -sf "http://$1/v1/raft/status" | jq -r .role; }

# The leader as seen by a majority-side server, when it is not $1.
new_leader_on() {   # ADDRESS OLD_LEADER_ADDRESS
    local l
    l=$(curl -sf "http://$1/v1/raft/status" | jq -r '.leader // empty')
    [ -n "$l" ] && [ "$l" != "$2" ]
}

fault() {   # ADDRESS JSON_ID_LIST
    curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"isolate\":[$2]}" "http://$1/v1/raft/fault" >/dev/null
}

@test "the linearizability checker accepts linearizable histories and rejects known non-linearizable ones" {
    run python3 "$LINCHECK" --self-test
    echo "$output"
    [ "$status" -eq 0 ]
    # the classic one on its own, from a file: two reads see two concurrent
    # writes in opposite orders
    printf '%s\n' "0 0 w a 0 100 ok" "1 0 w b 0 100 ok" "2 0 r a 10 20 ok" \
        "2 0 r b 30 40 ok" "3 0 r b 10 20 ok" "3 0 r a 30 40 ok" >"$BATS_TEST_TMPDIR/bad"
    run python3 "$LINCHECK" "$BATS_TEST_TMPDIR/bad"
    [ "$status" -eq 1 ]
    [[ "$output" == *"NOT linearizable"* ]]
}

@test "fault injection is refused unless the server enables it" {
    start_cluster --metas 3
    run curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"isolate":[2]}' \
        "http://$(meta_address)/v1/raft/fault"
    [ "$output" = 403 ] || { echo "got HTTP $output"; false; }
    curl -s -X POST -d '{"isolate":[2]}' "http://$(meta_address)/v1/raft/fault" | grep -q EPERM
}

@test "isolated leader: the minority accepts no writes, the majority elects and writes, the old leader rejoins; the recorded history is linearizable" {
    start_cluster --metas 3 --set-meta fault_injection=true
    "$TESSERA" mkdir /p
    hist=$BATS_TEST_TMPDIR/history
    stop=$BATS_TEST_TMPDIR/lin.stop
    # 4 clients on 3 registers for the whole test: through the partition,
    # the heal and two leader kills
    "$BUILD/tests/lin/lin_client" --conf "$CLUSTER/client.conf" --dir lin --out "$hist" \
        --stop "$stop" --threads 4 --keys 3 --timeout-ms 3000 \
        >"$BATS_TEST_TMPDIR/lin.out" 2>"$BATS_TEST_TMPDIR/lin.err" &
    lin=$!
    track_pid $lin
    wait_until 20 grep -qx ready "$BATS_TEST_TMPDIR/lin.out"
    sleep 1

    old=$(wait_leader)
    old_addr=$(status_json | jq -r --arg id "$old" '.servers[] | select(.id == $id) | .address')
    others=$(status_json | jq -r --arg id "$old" '.servers[] | select(.id != $id) | .address')
    peer_ids=$(status_json | jq -r --arg id "$old" \
        '[.servers[] | select(.id != $id) | .id | sub("^.*-"; "")] | join(",")')
    fault "$old_addr" "$peer_ids"

    # the majority elects a new leader among itself
    for a in $others; do
        wait_until 15 new_leader_on "$a" "$old_addr"
    done
    # the minority side accepts no write: a client that only knows the old
    # leader times out or is refused (it steps down by check-quorum)
    printf 'meta = %s\ntimeout_ms = 3000\n' "$old_addr" >"$BATS_TEST_TMPDIR/minority.conf"
    run timeout 30 env TESSERA_CONF="$BATS_TEST_TMPDIR/minority.conf" "$TESSERA" mkdir /p/minority
    [ "$status" -ne 0 ]
    # the majority accepts writes
    "$TESSERA" mkdir /p/majority
    sleep 1

    # heal: the old leader steps down (if it had not already), follows the
    # new one and converges
    fault "$old_addr" ""
    wait_until 15 bash -c "[ \"\$(curl -sf http://$old_addr/v1/raft/status | jq -r .role)\" = follower ]"
    # it catches up with what the majority committed meanwhile (identical
    # applied indexes are checked at the end, once the workload stopped)
    target=$(status_json | jq '[.servers[] | select(.role == "leader") | .commit] | max')
    wait_until 15 bash -c "[ \"\$(curl -sf http://$old_addr/v1/raft/status | jq .applied)\" -ge $target ]"

    # two leader kills while the history is still being recorded
    for k in 1 2; do
        l=$(wait_leader)
        pid=$(daemon_pid "$l")
        kill -9 "$pid"
        wait_until 10 bash -c "! kill -0 $pid"
        sleep 1
        run "$TESSERA" local up --dir "$CLUSTER"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
    done
    sleep 1
    touch "$stop"
    wait "$lin" || { cat "$BATS_TEST_TMPDIR/lin.err"; false; }
    cat "$BATS_TEST_TMPDIR/lin.err"
    # a history with writes and reads that succeeded, and the check
    [ "$(grep -c ' w .* ok$' "$hist")" -ge 20 ]
    [ "$(grep -c ' r .* ok$' "$hist")" -ge 20 ]
    run timeout 60 python3 "$LINCHECK" "$hist"
    echo "$output"
    [ "$status" -eq 0 ]

    # the old leader holds the same namespace: lead from it and look; the
    # write refused on the minority side was never applied
    wait_until 15 bash -c "[ \"\$(\"$TESSERA\" admin raft status --json | jq '[.servers[].applied] | unique | length')\" -eq 1 ]"
    wait_leader >/dev/null
    if [ "$(leader_id)" != "$old" ]; then
        "$TESSERA" admin raft transfer "$old"
        wait_until 10 bash -c "[ \"\$(\"$TESSERA\" admin raft status --json | jq -r '.servers[] | select(.role == \"leader\") | .id')\" = $old ]"
    fi
    [ "$("$TESSERA" ls /p)" = majority ]
    [ "$("$TESSERA" ls /lin | sort | tr '\n' ' ')" = "k0 k1 k2 " ]
}

leader_id() {
    status_json | jq -r '.servers[] | select(.role == "leader") | .id' | head -n 1
}

wait_leader() {
    wait_until 15 bash -c "\"$TESSERA\" admin raft status --json | jq -e '.servers[] | select(.role == \"leader\")' >/dev/null"
    leader_id
}
