#!/usr/bin/env bats
# Re-replication by the metadata leader against real daemons: a chunkserver
# killed -9 is suspect, then down, and every chunk it held is copied back to
# 3 live replicas (seen by the metadata service and as chunk files on disk);
# when it comes back the surplus replicas are deleted; a replica damaged on
# disk is quarantined by its server and replaced from a good one.

load helpers

# Run against a sanitizer build (TESSERA_BUILD=build-asan), a report from
# the repair threads fails the test.
teardown() {
    stop_cluster
    assert_no_sanitizer_reports
}

# 4 chunkservers, 8 MiB chunks, suspect after 1.5 s, down after 3 s.
start_repair_cluster() {
    start_cluster --chunkservers 4 --chunk-size 8M --heartbeat-timeout 1500 \
        --set-meta down_after_ms=3000 --set-meta repair_bytes_per_sec=400M "$@"
}

# chunk_ids PATH: the file's chunk ids, one per line.
chunk_ids() { "$TESSERA" admin chunks "$1" --json | jq -r '.chunks[].id' | sort -u; }

# disk_copies ID SERVER...: chunk files of ID on those servers' disks.
disk_copies() {
    local id=$1 n=0 s
    shift
    for s in "$@"; do
        [ -f "$CLUSTER/$s/data/chunks/${id:0:2}/$id.chunk" ] && n=$((n + 1))
    done
    echo "$n"
}

# all_replicated PATH WANT EXCLUDED SERVER...: every chunk of PATH has WANT
# replicas the metadata service knows of outside EXCLUDED (a server id or
# "none"), and WANT chunk files on the disks of the SERVERs.
all_replicated() {
    local path=$1 want=$2 excluded=$3 id n
    shift 3
    local layout
    layout=$("$TESSERA" admin chunks "$path" --json) || return 1
    n=$(jq --arg x "$excluded" --argjson w "$want" \
        '[.chunks[] | [.replicas[] | select(. != $x)] | unique | length | select(. != $w)] | length' \
        <<<"$layout") || return 1
    [ "$n" -eq 0 ] || return 1
    for id in $(jq -r '.chunks[].id' <<<"$layout" | sort -u); do
        [ "$(disk_copies "$id" "$@")" -eq "$want" ] || return 1
    done
}

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
    local b
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ 255 )))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# repair_done N: the leader counts at least N confirmed copies and its
# last repair episode is over.
repair_done() {
    local r
    r=$("$TESSERA" admin status --json | jq '.repair') || return 1
    [ "$(jq '.copies_total' <<<"$r")" -ge "$1" ] && [ "$(jq '.episode_active' <<<"$r")" = false ] &&
        [ "$(jq '.last_full_restore_ms' <<<"$r")" -ge 0 ]
}

state_is() { [ "$(server_state "$1")" = "$2" ]; }

meta_metric() {  # meta_metric NAME -> value on the leader
    curl -sf "http://$(meta_address)/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

@test "a killed chunkserver's chunks are re-replicated to 3 live copies; surplus deleted when it returns" {
    start_repair_cluster
    head -c $((200 * 1024 * 1024 + 4321)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    wait_until 20 all_replicated /f 3 none cs-1 cs-2 cs-3 cs-4
    local victim held
    victim=$(daemon_pid cs-2)
    held=$(find "$CLUSTER/cs-2/data/chunks" -name '*.chunk' | wc -l)
    [ "$held" -gt 0 ]
    local t0=$(date +%s%N)
    kill -9 "$victim"
    wait_until 10 bash -c "! kill -0 $victim"
    # suspect first, then down
    wait_until 10 state_is cs-2 suspect
    wait_until 10 state_is cs-2 down
    wait_until 90 all_replicated /f 3 cs-2 cs-1 cs-3 cs-4
    local t1=$(date +%s%N)
    local mib=$(( held * 8 ))
    echo "# repaired ~${mib} MiB of replicas lost with cs-2 in $(( (t1 - t0) / 1000000 )) ms" \
         "after kill (detection: 3 s)" >&3
    # the leader confirms copies and closes its measurement a round later
    wait_until 10 repair_done "$held"
    local status
    status=$("$TESSERA" admin status --json)
    echo "# repair: $(jq -c '.repair | {last_single_replica_restore_ms, last_full_restore_ms, last_restore_bytes, last_restore_mib_per_sec, copies_total, copy_busy_total}' <<<"$status")" >&3
    [ "$("$TESSERA" admin status --json | jq '.under_replicated')" -eq 0 ]
    [ "$(meta_metric tessera_meta_repair_copies_total)" -ge "$held" ]
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"

    # cs-2 comes back with its old replicas: 4 copies of each, so the
    # surplus is deleted (only once its full report is in) down to 3.
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    wait_until 60 all_replicated /f 3 none cs-1 cs-2 cs-3 cs-4
    [ "$("$TESSERA" admin status --json | jq '.repair.deletes_total')" -ge "$held" ]
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back2"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back2"
    grep -q "chunkserver cs-2: up -> suspect" "$CLUSTER"/meta-*/meta-*.log
    grep -q "chunkserver cs-2: suspect -> down" "$CLUSTER"/meta-*/meta-*.log
}

@test "a replica with flipped bytes is quarantined and replaced from a good one; the file reads right" {
    start_repair_cluster --set-chunk scrub_bytes_per_sec=1G --set-chunk scrub_interval_s=1
    head -c $((20 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    wait_until 20 all_replicated /f 3 none cs-1 cs-2 cs-3 cs-4
    local file id victim
    file=$(find "$CLUSTER"/cs-*/data/chunks -name '*.chunk' | sort | head -n 1)
    victim=$(sed -E "s|^$CLUSTER/([^/]+)/.*|\1|" <<<"$file")
    id=$(basename "$file" .chunk)
    flip_byte "$file" 1000000
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"
    wait_until 30 test -f "$CLUSTER/$victim/data/quarantine/$id.chunk"
    wait_until 30 all_replicated /f 3 none cs-1 cs-2 cs-3 cs-4
    # every replica of the damaged chunk is now a good, identical copy
    local copies=() s
    for s in cs-1 cs-2 cs-3 cs-4; do
        [ -f "$CLUSTER/$s/data/chunks/${id:0:2}/$id.chunk" ] &&
            copies+=("$CLUSTER/$s/data/chunks/${id:0:2}/$id.chunk")
    done
    [ "${#copies[@]}" -eq 3 ]
    cmp "${copies[0]}" "${copies[1]}"
    cmp "${copies[0]}" "${copies[2]}"
    [ "$(meta_metric tessera_meta_corrupt_replicas_total)" -ge 1 ]
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back2"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back2"
}

@test "admin nodes and fsck: healthy, under-replicated (exit 0), then data lost (exit 2)" {
    # repair off, so the damage stays for fsck to see
    start_repair_cluster --set-meta repair=false
    head -c $((20 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" mkdir /d
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /d/f
    wait_until 20 all_replicated /d/f 3 none cs-1 cs-2 cs-3 cs-4
    [ "$("$TESSERA" admin nodes --json | jq '[.servers[] | select(.state == "up")] | length')" -eq 4 ]
    run "$TESSERA" admin nodes
    [ "$status" -eq 0 ]
    [[ "$output" == *"4 up, 0 suspect, 0 down"* ]]
    run "$TESSERA" admin fsck
    [ "$status" -eq 0 ]
    [[ "$output" == *"healthy"* ]]
    [ "$("$TESSERA" admin fsck / --json | jq '.chunks')" -eq 3 ]

    # the holders of the first chunk: kill one -> under-replicated, exit 0
    local holders h survivor
    holders=$("$TESSERA" admin chunks /d/f --json | jq -r '.chunks[0].replicas[]')
    h=$(head -n 1 <<<"$holders")
    kill -9 "$(daemon_pid "$h")"
    wait_until 15 state_is "$h" down
    run "$TESSERA" admin fsck /d --json
    [ "$status" -eq 0 ]
    [ "$(jq '.under_replicated' <<<"$output")" -ge 1 ]
    [ "$(jq '.missing' <<<"$output")" -eq 0 ]

    # all three holders gone -> that chunk is lost, exit 2
    for h in $(tail -n +2 <<<"$holders"); do
        kill -9 "$(daemon_pid "$h")"
    done
    for h in $holders; do
        wait_until 15 state_is "$h" down
    done
    run "$TESSERA" admin fsck /d/f --json
    [ "$status" -eq 2 ]
    [ "$(jq '.missing' <<<"$output")" -ge 1 ]
    [ "$(jq -r '.problems[] | select(.state == "missing") | .path' <<<"$output" | head -n 1)" = /d/f ]
    run "$TESSERA" admin fsck /d/f
    [ "$status" -eq 2 ]
    [[ "$output" == *"DATA LOST"* ]]
    run "$TESSERA" admin fsck /nonexistent
    [ "$status" -eq 1 ]
}
