#!/usr/bin/env bats
# Snapshots of the metadata state machine are written in the background
# (metadata/checkpoint.h): on every server of a Raft group and on a single
# server, a snapshot is taken while clients keep writing, the log is
# compacted behind it, and after kill -9 of every server the restart
# recovers snapshot + log with nothing lost.  The latency figures are in
# tests/bench/snapshot_latency.sh (not a timed test).

load helpers

# Run against a sanitizer build (TESSERA_BUILD=build-asan), a report from
# the checkpoint thread fails the test.
teardown() {
    stop_cluster
    assert_no_sanitizer_reports
}

# background_snapshots SERVER: how many snapshots it wrote in the background.
background_snapshots() {
    grep -c 'written in the background' "$CLUSTER/$1/$1.log" || true
}

@test "a Raft group writes snapshots in the background on every server, compacts its log, and recovers after kill -9 of all three" {
    start_cluster --metas 3 --set-meta snapshot_every=40
    "$TESSERA" mkdir /s
    for i in $(seq 1 100); do "$TESSERA" mkdir "/s/d$i"; done
    for m in meta-1 meta-2 meta-3; do
        wait_until 20 bash -c "[ \$(grep -c 'written in the background' $CLUSTER/$m/$m.log) -ge 2 ]"
    done
    # every server reports a snapshot and keeps only its newest image
    "$TESSERA" admin raft status --json | jq -e '[.servers[] | select(.snapshot_index >= 80)] | length == 3'
    for m in meta-1 meta-2 meta-3; do
        [ "$(ls "$CLUSTER/$m/data/raft" | grep -c '^raft-snap-.*\.img$')" -eq 1 ]
    done
    for m in meta-1 meta-2 meta-3; do kill -9 "$(daemon_pid $m)"; done
    for m in meta-1 meta-2 meta-3; do wait_until 10 bash -c "! kill -0 $(daemon_pid $m) 2>/dev/null"; done
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    wait_until 20 "$TESSERA" mkdir /after
    [ "$("$TESSERA" ls /s | wc -l)" -eq 100 ]
    # the Raft servers restored an image at start, not the whole log
    "$TESSERA" admin raft status --json | jq -e '[.servers[] | select(.snapshot_index >= 80)] | length == 3'
}

@test "a single server writes snapshots in the background and recovers snapshot + log after kill -9" {
    start_cluster --metas 1 --set-meta snapshot_every=40
    "$TESSERA" mkdir /s
    for i in $(seq 1 100); do "$TESSERA" mkdir "/s/d$i"; done
    wait_until 20 bash -c "[ \$(grep -c 'written in the background' $CLUSTER/meta-1/meta-1.log) -ge 2 ]"
    # older snapshots and log segments were removed
    [ "$(ls "$CLUSTER/meta-1/data" | grep -c '^snap-.*\.snap$')" -eq 1 ]
    kill -9 "$(daemon_pid meta-1)"
    wait_until 10 bash -c "! kill -0 $(daemon_pid meta-1) 2>/dev/null"
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$("$TESSERA" ls /s | wc -l)" -eq 100 ]
    # it started from a snapshot at 40 or later, then the log after it
    grep -Eq 'recovered snapshot ([4-9][0-9]|1[0-9][0-9]) \+' "$CLUSTER/meta-1/meta-1.log"
}
