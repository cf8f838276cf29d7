#!/usr/bin/env bats
# Cluster operations against real local clusters: adding a server and
# rebalancing (bytes moved against the ideal, every server near its share),
# draining a server to empty under a reader, removing it, refusals of bad
# operator input, a rebalance interrupted (CLI killed, leader killed) and
# resumed, fsck's verdict in each situation, and a chunkserver restarted
# with a dead data directory.

load helpers

teardown() {
    stop_cluster
    assert_no_sanitizer_reports
}

# 1 MiB chunks: 1 GiB is 1024 chunks, enough for rendezvous hashing to land
# every server within a few percent of its share (the spread of a server's
# replica count is about 3%, so the 10% bound holds at 3 sigma).
start_ops_cluster() {
    start_cluster --chunk-size 1M --heartbeat-timeout 2000 --set-meta down_after_ms=4000 \
        --set-meta repair_bytes_per_sec=1G --set-meta repair_max_copies=8 \
        --set-chunk max_copies_in=8 --set-chunk max_copies_out=8 "$@"
}

state_is() { [ "$(server_state "$1")" = "$2" ]; }

# disk_bytes SERVER: bytes of the chunk files on its disk.
disk_bytes() {
    find "$CLUSTER/$1/data/chunks" -name '*.chunk' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}
disk_chunks() { find "$CLUSTER/$1/data/chunks" -name '*.chunk' | wc -l; }

# fsck_field FIELD [PATH]: one number of fsck --json.
fsck_field() { "$TESSERA" admin fsck "${2:-/}" --json | jq ".$1"; }
fsck_clean() { [ "$(fsck_field under_replicated)" -eq 0 ] && [ "$(fsck_field missing)" -eq 0 ]; }

rebalance_running() { [ "$("$TESSERA" admin rebalance --status --json | jq .running)" = true ]; }
rebalance_progress() { [ "$("$TESSERA" admin rebalance --status --json | jq .bytes_done)" -gt "$1" ]; }

leader_id() {
    "$TESSERA" admin raft status --json | jq -r '.servers[] | select(.role == "leader") | .id' | head -n 1
}

@test "3 servers hold 1 GiB, a 4th joins: rebalance moves ~1/4 of the replica bytes and evens the servers out" {
    start_ops_cluster
    head -c $((1024 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /big
    wait_until 20 fsck_clean
    run "$TESSERA" admin fsck
    [ "$status" -eq 0 ]
    [[ "$output" == *healthy* ]]

    run "$TESSERA" local up --dir "$CLUSTER" --chunkservers 4 --no-mount
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    wait_until 15 state_is cs-4 up
    # nothing is wrong with the data, it is only not where placement wants it
    run "$TESSERA" admin fsck --json
    [ "$status" -eq 0 ]
    [ "$(jq .misplaced <<<"$output")" -gt 500 ]
    [ "$(jq .healthy <<<"$output")" -eq 1024 ]

    local plan total ideal planned
    plan=$("$TESSERA" admin rebalance --dry-run --json)
    total=$(jq .total_bytes <<<"$plan")
    [ "$total" -eq $((3 * 1024 * 1024 * 1024)) ]
    ideal=$((total / 4))
    planned=$(jq .bytes_to_move <<<"$plan")
    [ "$(jq .started <<<"$plan")" = false ]
    [ "$(jq '.imbalance_before == 1' <<<"$plan")" = true ]
    # the dry run moved nothing
    [ "$(disk_bytes cs-4)" -eq 0 ]

    local t0=$(date +%s%N) out moved secs
    out=$("$TESSERA" admin rebalance --json)
    secs=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$(jq .started <<<"$out")" = true ]
    [ "$(jq .status.running <<<"$out")" = false ]
    moved=$(jq .status.bytes_copied <<<"$out")
    echo "# rebalance: moved $((moved >> 20)) MiB (planned $((planned >> 20)) MiB), ideal $((ideal >> 20)) MiB" \
         "(1/4 of $((total >> 20)) MiB of replicas): $(( (moved - ideal) * 1000 / ideal ))/1000 off;" \
         "$secs ms, $(( (moved >> 20) * 1000 / (secs + 1) )) MiB/s" >&3
    [ "$(( moved > ideal ? moved - ideal : ideal - moved ))" -le $((ideal / 10)) ]

    # every server within 10% of its (equal) share, on disk
    local s b share=$((total / 4)) line="#"
    for s in cs-1 cs-2 cs-3 cs-4; do
        b=$(disk_bytes "$s")
        line="$line $s=$((b >> 20))MiB"
        [ "$(( b > share ? b - share : share - b ))" -le $((share / 10)) ]
    done
    echo "$line (share $((share >> 20)) MiB each)" >&3
    [ "$(fsck_field misplaced)" -eq 0 ]
    run "$TESSERA" admin rebalance --status
    [ "$status" -eq 0 ]
    [[ "$output" == *"no rebalance running"* ]]
    "$TESSERA" get /big "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"
    grep -q "rebalance: finished" "$CLUSTER"/meta-*/meta-*.log
}

@test "drain a server to empty under a looping reader, then remove it; every refusal" {
    start_ops_cluster --chunkservers 4
    head -c $((48 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    wait_until 20 fsck_clean

    # bad input: unknown ids, weights, bandwidth, moves
    run "$TESSERA" admin drain cs-9
    [ "$status" -eq 1 ]; [[ "$output" == *"no chunkserver with id 'cs-9'"* ]]
    run "$TESSERA" admin node set-weight cs-9 2
    [ "$status" -eq 1 ]; [[ "$output" == *"no chunkserver with id 'cs-9'"* ]]
    run "$TESSERA" admin node remove cs-9
    [ "$status" -eq 1 ]; [[ "$output" == *"no chunkserver with id 'cs-9'"* ]]
    run "$TESSERA" admin node set-weight cs-1 0
    [ "$status" -eq 1 ]; [[ "$output" == *"must be a number above 0"* ]]
    run "$TESSERA" admin node set-weight cs-1 -2
    [ "$status" -eq 1 ]; [[ "$output" == *"must be a number above 0"* ]]
    run "$TESSERA" admin node add 127.0.0.1:1 --id cs-x --weight -1
    [ "$status" -eq 1 ]; [[ "$output" == *"must be a number above 0"* ]]
    run "$TESSERA" admin rebalance --bandwidth -5M
    [ "$status" -eq 1 ]; [[ "$output" == *"must be a positive rate"* ]]
    run "$TESSERA" admin rebalance --max-moves 0
    [ "$status" -eq 1 ]
    run "$TESSERA" admin node add 127.0.0.1:1
    [ "$status" -eq 1 ]; [[ "$output" == *"give --id ID"* ]]
    # removing a server that holds data: refused, it would lose data
    run "$TESSERA" admin node remove cs-1
    [ "$status" -eq 1 ]; [[ "$output" == *"would lose data"* ]]
    for c in node drain rebalance; do
        "$TESSERA" admin $c --help | grep -q usage
    done
    # the endpoints themselves reject malformed requests with a message
    local meta
    meta=$(meta_address)
    run curl -s -w ' %{http_code}' -X POST -d '{"id":5}' "http://$meta/v1/admin/drain"
    [[ "$output" == *400 ]]; [[ "$output" == *"field 'id'"* ]]
    run curl -s -w ' %{http_code}' -X POST -d '{"id":"cs-1","weight":"x"}' "http://$meta/v1/admin/node/set"
    [[ "$output" == *400 ]]; [[ "$output" == *"weight"* ]]
    run curl -s -w ' %{http_code}' -X POST -d '{"bandwidth":-1}' "http://$meta/v1/admin/rebalance"
    [[ "$output" == *400 ]]
    run curl -s -w ' %{http_code}' -X POST -d '[1]' "http://$meta/v1/admin/rebalance/status"
    [[ "$output" == *400 ]]
    run curl -s -w ' %{http_code}' "http://$meta/v1/admin/rebalance"
    [[ "$output" == *"needs POST"* ]]

    # drain and cancel: back to up, nothing lost
    "$TESSERA" admin drain cs-4
    [ "$(server_state cs-4)" = draining ]
    run "$TESSERA" admin drain --cancel cs-4
    [ "$status" -eq 0 ]
    wait_until 5 state_is cs-4 up

    # a reader loops over the file while cs-2 drains
    local stop=$BATS_TEST_TMPDIR/stop errs=$BATS_TEST_TMPDIR/errs reads=$BATS_TEST_TMPDIR/reads
    local reader
    (
        while [ ! -f "$stop" ]; do
            if "$TESSERA" get /f "$BATS_TEST_TMPDIR/r" 2>>"$errs" && cmp -s "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/r"; then
                echo ok >>"$reads"
            else
                echo "read failed or differed" >>"$errs"
            fi
        done
    ) &
    reader=$!
    track_pid "$reader"
    wait_until 10 test -s "$reads"
    [ "$(disk_chunks cs-2)" -gt 0 ]
    run "$TESSERA" admin drain cs-2 --wait
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"safe to remove"* ]]
    # a second drain would leave 2 servers for 3 replicas: refused up front
    run "$TESSERA" admin drain cs-3
    [ "$status" -eq 1 ]; [[ "$output" == *"fewer than the 3 replicas"* ]]
    # the drained server ends empty
    wait_until 20 bash -c "[ \$(find '$CLUSTER/cs-2/data/chunks' -name '*.chunk' | wc -l) -eq 0 ]"
    local n_before
    n_before=$(wc -l <"$reads")
    wait_until 10 bash -c "[ \$(wc -l <'$reads') -gt $n_before ]"
    touch "$stop"
    wait_until 20 bash -c "! kill -0 $reader 2>/dev/null"
    echo "# reader: $(wc -l <"$reads") full reads during the drain, errors: $(wc -l <"$errs" 2>/dev/null || echo 0)" >&3
    [ ! -s "$errs" ]
    run "$TESSERA" admin fsck --json
    [ "$status" -eq 0 ]
    [ "$(jq .under_replicated <<<"$output")" -eq 0 ]
    [ "$(jq .misplaced <<<"$output")" -eq 0 ]
    "$TESSERA" admin drain cs-2 --status --json | jq -e '.complete and .chunks_held == 0'

    # now cs-2 can go; removing cs-1 would leave chunks short: refused
    run "$TESSERA" admin node remove cs-2
    [ "$status" -eq 0 ]
    [ "$(server_state cs-2)" = removed ]
    run "$TESSERA" admin nodes
    [[ "$output" == *"1 removed"* ]]
    run "$TESSERA" admin node remove cs-1
    [ "$status" -eq 1 ]; [[ "$output" == *"would lose data"* ]]
    run "$TESSERA" admin drain cs-2
    [ "$status" -eq 1 ]; [[ "$output" == *"is removed"* ]]
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"

    # weight and zone are durable and win over the server's own heartbeat
    "$TESSERA" admin node set-weight cs-3 2.5
    "$TESSERA" admin node set-zone cs-3 rack-b
    sleep 2     # several heartbeats from cs-3, which says weight 1 and no zone
    "$TESSERA" admin nodes --json | jq -e '.servers[] | select(.id == "cs-3") | .weight == 2.5 and .zone == "rack-b"'
    # the removed server comes back with node add
    run "$TESSERA" admin node add "$(server_address cs-2)"
    [ "$status" -eq 0 ]; [[ "$output" == *"added back"* ]]
    wait_until 5 state_is cs-2 up
    [ "$("$TESSERA" admin rebalance --dry-run --json | jq .moves)" -gt 0 ]
}

@test "a rebalance survives its CLI killed and its leader killed, and finishes; fsck throughout" {
    start_ops_cluster
    head -c $((96 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    wait_until 20 fsck_clean
    run "$TESSERA" local up --dir "$CLUSTER" --chunkservers 4 --no-mount
    [ "$status" -eq 0 ]
    wait_until 15 state_is cs-4 up
    [ "$("$TESSERA" admin rebalance --dry-run --max-moves 3 --json | jq .moves)" -eq 3 ]
    # --max-moves 3: exactly three 1 MiB chunks move, the rest stays misplaced
    local misplaced
    misplaced=$(fsck_field misplaced)
    local out
    out=$("$TESSERA" admin rebalance --max-moves 3 --json)
    [ "$(jq .status.bytes_copied <<<"$out")" -eq $((3 * 1024 * 1024)) ]
    [ "$(fsck_field misplaced)" -eq $((misplaced - 3)) ]

    # throttled to 8 MiB/s: ~24 MiB to move takes a few seconds
    "$TESSERA" admin rebalance --bandwidth 8M >"$BATS_TEST_TMPDIR/cli.out" 2>&1 &
    local cli=$!
    track_pid "$cli"
    wait_until 15 rebalance_progress 0
    kill -9 "$cli"
    run "$TESSERA" admin rebalance --status --json
    [ "$(jq .running <<<"$output")" = true ]
    [ "$(jq .bandwidth <<<"$output")" -eq $((8 * 1024 * 1024)) ]
    run "$TESSERA" admin status
    [[ "$output" == *"rebalance: running"* ]]
    # fsck while moving: nothing lost, nothing under-replicated
    run "$TESSERA" admin fsck
    [ "$status" -eq 0 ]

    # the leader dies in the middle: a new one carries on from the durable flag
    local leader done_before
    leader=$(leader_id)
    [ -n "$leader" ]
    done_before=$("$TESSERA" admin rebalance --status --json | jq .bytes_done)
    kill -9 "$(daemon_pid "$leader")"
    wait_until 20 bash -c "[ -n \"\$(\"$TESSERA\" admin raft status --json 2>/dev/null | jq -r '.servers[] | select(.role == \"leader\") | .id' | head -n 1)\" ]"
    [ "$(leader_id)" != "$leader" ]
    wait_until 20 rebalance_running
    # re-running the command attaches to the running rebalance and waits for it
    run "$TESSERA" admin rebalance
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"already running"* ]]
    [[ "$output" == *"rebalance finished"* ]]
    run "$TESSERA" admin fsck --json
    [ "$status" -eq 0 ]
    [ "$(jq .misplaced <<<"$output")" -eq 0 ]
    [ "$(jq .under_replicated <<<"$output")" -eq 0 ]
    [ "$("$TESSERA" admin status --json | jq .rebalance.running)" = false ]
    echo "# resumed after the leader ($leader) was killed at $((done_before >> 20)) MiB done" >&3
    grep -q "rebalance: finished" "$CLUSTER"/meta-*/meta-*.log
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"
}

@test "a chunkserver restarted with a dead data dir serves the rest; what the dir held is re-replicated" {
    start_ops_cluster --chunkservers 4
    head -c $((8 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/a"
    "$TESSERA" put "$BATS_TEST_TMPDIR/a" /a          # lands in cs-1's first dir
    wait_until 20 fsck_clean
    # cs-1 restarted by hand with a second data dir, listed first: new
    # chunks go there (ties go to the first)
    local conf=$CLUSTER/cs-1/chunk.conf d1=$CLUSTER/cs-1/data d2=$CLUSTER/cs-1/data2 pid
    kill "$(daemon_pid cs-1)"
    wait_until 10 bash -c "! kill -0 $(daemon_pid cs-1) 2>/dev/null"
    "$BUILD/tessera-chunk" --conf "$conf" --set "data_dirs=$d2,$d1" &
    pid=$!
    track_pid "$pid"
    wait_until 15 curl -sf "http://$(server_address cs-1)/health"
    wait_until 15 state_is cs-1 up
    head -c $((24 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/b"
    "$TESSERA" put "$BATS_TEST_TMPDIR/b" /b
    wait_until 20 fsck_clean
    local in_d1 in_d2
    in_d1=$(find "$d1/chunks" -name '*.chunk' | wc -l)
    in_d2=$(find "$d2/chunks" -name '*.chunk' | wc -l)
    [ "$in_d1" -gt 0 ] && [ "$in_d2" -gt 0 ]

    # the disk under data2 dies while cs-1 is down; cs-1 starts anyway
    kill "$pid"
    wait_until 10 bash -c "! kill -0 $pid 2>/dev/null"
    mv "$d2" "$d2.dead"
    touch "$d2"
    "$BUILD/tessera-chunk" --conf "$conf" --set "data_dirs=$d2,$d1" &
    pid=$!
    track_pid "$pid"
    wait_until 15 curl -sf "http://$(server_address cs-1)/health"
    wait_until 15 state_is cs-1 up
    grep -q "data dir $d2 taken out of service" "$CLUSTER/cs-1/cs-1.log"
    [ "$("$TESSERA" admin status --json | jq '.servers[] | select(.id == "cs-1") | .failed_dirs')" -eq 1 ]
    # it serves what data (the live dir) holds
    local id
    id=$(basename "$(find "$d1/chunks" -name '*.chunk' | head -n 1)" .chunk)
    curl -sf "http://$(server_address cs-1)/v1/chunk/$id" >/dev/null
    # and what data2 held is re-replicated elsewhere
    wait_until 60 fsck_clean
    "$TESSERA" get /b "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/b" "$BATS_TEST_TMPDIR/back"
    "$TESSERA" get /a "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/back"
}

@test "a drain waits for the chunks of a file still open for writing, and moves them once committed" {
    start_ops_cluster --chunkservers 4
    head -c $((8 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/p1"
    head -c $((3 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/p2"
    cat "$BATS_TEST_TMPDIR/p1" "$BATS_TEST_TMPDIR/p2" >"$BATS_TEST_TMPDIR/w"
    local go=$BATS_TEST_TMPDIR/go writer
    # the writer uploads 8 MiB, then holds the file open (nothing committed)
    ( cat "$BATS_TEST_TMPDIR/p1"; while [ ! -f "$go" ]; do sleep 0.1; done
      cat "$BATS_TEST_TMPDIR/p2" ) | "$TESSERA" put - /w &
    writer=$!
    track_pid "$writer"
    wait_until 20 bash -c "[ \$(find '$CLUSTER'/cs-*/data/chunks -name '*.chunk' | wc -l) -ge 21 ]"
    local s victim=
    for s in cs-1 cs-2 cs-3 cs-4; do
        [ "$(disk_chunks "$s")" -gt 0 ] && { victim=$s; break; }
    done
    [ -n "$victim" ]
    run "$TESSERA" ls /w
    [[ "$output" != *8388608* ]]       # nothing committed yet
    "$TESSERA" admin drain "$victim" --wait >"$BATS_TEST_TMPDIR/drain.out" 2>&1 &
    local drain=$!
    track_pid "$drain"
    # no committed chunk is on it, yet the drain waits for the open file's chunks
    wait_until 10 bash -c "\"$TESSERA\" admin drain $victim --status --json | jq -e '.complete and .chunks_uncommitted > 0'"
    sleep 1
    kill -0 "$drain" || { echo "drain --wait ended early:"; cat "$BATS_TEST_TMPDIR/drain.out"; false; }
    touch "$go"
    wait_until 20 bash -c "! kill -0 $writer 2>/dev/null"
    wait_until 40 bash -c "! kill -0 $drain 2>/dev/null"
    wait "$drain"
    grep -q "safe to remove" "$BATS_TEST_TMPDIR/drain.out"
    wait_until 20 bash -c "[ \$(find '$CLUSTER/$victim/data/chunks' -name '*.chunk' | wc -l) -eq 0 ]"
    "$TESSERA" get /w "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/w" "$BATS_TEST_TMPDIR/back"
    wait_until 20 fsck_clean
}

@test "a drain that cannot finish says why; fsck meanwhile" {
    # repair off: the drain cannot progress, so its state is stable to look at
    start_ops_cluster --chunkservers 4 --set-meta repair=false
    head -c $((8 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    wait_until 20 fsck_clean
    local victim
    victim=$("$TESSERA" admin chunks /f --json | jq -r '.chunks[0].replicas[0]')
    "$TESSERA" admin drain "$victim"
    run "$TESSERA" admin drain "$victim" --status --json
    [ "$(jq .complete <<<"$output")" = false ]
    [ "$(jq .stuck <<<"$output")" = false ]
    [[ "$(jq -r .reason <<<"$output")" == "in progress"* ]]
    # the draining server's replicas no longer count: under-replicated, no data lost
    run "$TESSERA" admin fsck --json
    [ "$status" -eq 0 ]
    [ "$(jq .under_replicated <<<"$output")" -gt 0 ]
    # another server dies: 2 left up and not draining, for 3 replicas
    local other s
    for s in cs-1 cs-2 cs-3 cs-4; do [ "$s" != "$victim" ] && { other=$s; break; }; done
    kill -9 "$(daemon_pid "$other")"
    wait_until 15 state_is "$other" down
    run "$TESSERA" admin drain "$victim" --wait
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot finish"*"only 2 other server(s) are up and not draining"* ]]
    run "$TESSERA" admin node remove "$victim"
    [ "$status" -eq 1 ]; [[ "$output" == *"would lose data"* ]]
    run "$TESSERA" admin fsck
    [ "$status" -eq 0 ]
    # with repair off nothing would carry a rebalance out: refused, the plan still shown
    run "$TESSERA" admin rebalance
    [ "$status" -eq 1 ]; [[ "$output" == *"repair=false"* ]]
    "$TESSERA" admin rebalance --dry-run >/dev/null
}
