#!/usr/bin/env bats
# The replicated metadata service on a real Raft group of tessera-meta
# servers: leader kills under a CLI workload (every acknowledged operation
# present afterwards, none applied twice), restart of the whole group, a
# 5-server group losing 2, and a wiped server re-added that catches up by
# snapshot.

load helpers

teardown() { stop_cluster; }

leader_id() {
    "$TESSERA" admin raft status --json | jq -r '.servers[] | select(.role == "leader") | .id' | head -n 1
}

# Waits until some server is leader and prints its id.
wait_leader() {
    wait_until 15 bash -c "\"$TESSERA\" admin raft status --json | jq -e '.servers[] | select(.role == \"leader\")' >/dev/null"
    leader_id
}

@test "20 kill -9 of the leader under a create workload: every acknowledged create present, none applied twice" {
    start_cluster --metas 3
    "$TESSERA" mkdir /w
    acked=$BATS_TEST_TMPDIR/acked
    : >"$acked"
    # The workload: each create has a unique name; a name is recorded only
    # when the CLI said it succeeded.
    (
        i=0
        while [ ! -e "$BATS_TEST_TMPDIR/stop" ]; do
            i=$((i + 1))
            if "$TESSERA" put /dev/null "/w/f$i" >/dev/null 2>&1; then
                echo "f$i" >>"$acked"
            fi
        done
    ) &
    workload=$!
    for k in $(seq 1 20); do
        leader=$(wait_leader)
        [ -n "$leader" ]
        pid=$(daemon_pid "$leader")
        kill -9 "$pid"
        wait_until 10 bash -c "! kill -0 $pid"
        sleep 0.3
        run "$TESSERA" local up --dir "$CLUSTER"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
    done
    touch "$BATS_TEST_TMPDIR/stop"
    wait "$workload"
    [ "$(wc -l <"$acked")" -ge 20 ]
    "$TESSERA" ls /w | sort >"$BATS_TEST_TMPDIR/present"
    # every acknowledged name is there ...
    missing=$(comm -23 <(sort "$acked") "$BATS_TEST_TMPDIR/present")
    [ -z "$missing" ] || { echo "missing: $missing"; false; }
    # ... and each name exists once (a create applied twice would fail the
    # CLI with EEXIST, so it would be missing from $acked, not doubled)
    [ "$(sort "$BATS_TEST_TMPDIR/present" | uniq -d | wc -l)" -eq 0 ]
    # the servers agree on what they applied
    wait_until 10 bash -c "[ \"\$(\"$TESSERA\" admin raft status --json | jq '[.servers[].applied] | unique | length')\" -eq 1 ]"
}

@test "restart of all three metadata servers keeps everything" {
    start_cluster --metas 3
    "$TESSERA" mkdir /r
    for i in 1 2 3 4 5; do "$TESSERA" put /dev/null "/r/f$i"; done
    "$TESSERA" mv /r/f5 /r/g5
    for m in meta-1 meta-2 meta-3; do kill -9 "$(daemon_pid $m)"; done
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$("$TESSERA" ls /r | sort | tr '\n' ' ')" = "f1 f2 f3 f4 g5 " ]
    [ -n "$(wait_leader)" ]
}

@test "a 5-server group keeps serving with 2 servers down, and not with 3" {
    start_cluster --metas 5
    "$TESSERA" mkdir /five
    l=$(wait_leader)
    # two servers, the leader among them
    other=meta-1
    [ "$l" != meta-1 ] || other=meta-2
    kill -9 "$(daemon_pid "$l")" "$(daemon_pid "$other")"
    "$TESSERA" put /dev/null /five/a
    [ "$("$TESSERA" ls /five)" = a ]
    # a third one down: no majority, no acknowledged write
    for m in meta-1 meta-2 meta-3 meta-4 meta-5; do
        [ "$m" = "$l" ] || [ "$m" = "$other" ] || { kill -9 "$(daemon_pid $m)"; break; }
    done
    run timeout 20 "$TESSERA" mkdir /five/b
    [ "$status" -ne 0 ]
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$("$TESSERA" ls /five)" = a ] || "$TESSERA" ls /five | grep -qx a
}

@test "a server whose data directory was lost is removed, re-added and catches up by snapshot" {
    start_cluster --metas 3 --set-meta snapshot_every=50
    "$TESSERA" mkdir /s
    for i in $(seq 1 80); do "$TESSERA" mkdir "/s/d$i"; done
    l=$(wait_leader)
    victim=meta-3
    [ "$l" != meta-3 ] || victim=meta-2
    addr=$(sed -nE 's/^listen *= *//p' "$CLUSTER/$victim/meta.conf")
    kill -9 "$(daemon_pid $victim)"
    "$TESSERA" admin raft remove "$victim"
    rm -rf "$CLUSTER/$victim/data"
    mkdir -p "$CLUSTER/$victim/data"
    for i in $(seq 81 120); do "$TESSERA" mkdir "/s/d$i"; done
    # the wiped server starts empty and waits to be added
    "$BUILD/tessera-meta" --conf "$CLUSTER/$victim/meta.conf" --set join=true \
        >>"$CLUSTER/$victim/$victim.log" 2>&1 &
    echo $! >"$CLUSTER/$victim/pid"
    track_pid $!
    wait_until 10 curl -sf "http://$addr/health"
    "$TESSERA" admin raft add "$addr"
    wait_until 20 bash -c "[ \"\$(\"$TESSERA\" admin raft status --json | jq -r --arg a $addr '.servers[] | select(.address == \$a) | .role')\" = follower ]"
    grep -q "snapshot" "$CLUSTER/$victim/$victim.log"
    # it holds the whole namespace: make it the leader and read from it
    wait_until 10 bash -c "[ \"\$(\"$TESSERA\" admin raft status --json | jq '[.servers[].applied] | unique | length')\" -eq 1 ]"
    "$TESSERA" admin raft transfer "$victim"
    wait_until 10 bash -c "[ \"\$(\"$TESSERA\" admin raft status --json | jq -r '.servers[] | select(.role == \"leader\") | .address')\" = $addr ]"
    [ "$("$TESSERA" ls /s | wc -l)" -eq 120 ]
}

@test "through the mount, a file is written and read back while the leader is killed: both keep succeeding" {
    start_mounted_cluster --metas 3
    mkdir "$MNT/mw"
    progress=$BATS_TEST_TMPDIR/progress
    stop=$BATS_TEST_TMPDIR/mount.stop
    # Each round rewrites the file with new contents (the close commits it
    # through the metadata leader) and reads it back through a new open;
    # any error or a wrong content ends the loop with a message.
    python3 - "$MNT/mw/f" "$progress" "$stop" >"$BATS_TEST_TMPDIR/mount.log" 2>&1 <<'PY' &
import os, sys
path, progress, stop = sys.argv[1:4]
i = 0
while not os.path.exists(stop):
    i += 1
    data = ("round %d\n" % i).encode() * 500
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        got = f.read()
    if got != data:
        sys.exit("round %d: read %d bytes, not what was written" % (i, len(got)))
    with open(progress, "w") as f:
        f.write("%d\n" % i)
print("rounds:", i)
PY
    workload=$!
    track_pid $workload
    wait_until 20 bash -c "[ \"\$(cat $progress 2>/dev/null || echo 0)\" -ge 3 ]"
    l=$(wait_leader)
    pid=$(daemon_pid "$l")
    kill -9 "$pid"
    wait_until 10 bash -c "! kill -0 $pid"
    at_kill=$(cat "$progress")
    # rounds go on with the new leader (the group still has a majority)
    wait_until 30 bash -c "[ \"\$(cat $progress)\" -ge $((at_kill + 5)) ]"
    [ "$(leader_id)" != "$l" ]
    touch "$stop"
    wait "$workload" || { cat "$BATS_TEST_TMPDIR/mount.log"; false; }
    cat "$BATS_TEST_TMPDIR/mount.log"
    # what the mount wrote last is what the metadata service holds
    n=$(cat "$progress")
    "$TESSERA" get /mw/f "$BATS_TEST_TMPDIR/last"
    python3 -c "import sys; sys.exit(open(sys.argv[1], 'rb').read() != ('round %s\n' % sys.argv[2]).encode() * 500)" \
        "$BATS_TEST_TMPDIR/last" "$n"
}
