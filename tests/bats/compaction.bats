#!/usr/bin/env bats
# Compaction and garbage collection against real daemons: 5,000 appends
# through the mount compacted (racing the appender) into one chunk with
# exact bytes throughout; 10,000 small files packed into a few pack chunks
# and repacked after 90% are deleted; orphan chunks (a writer killed
# before its commit, deleted files) deleted by the leader's garbage
# collector after the grace period and nothing else; the metadata leader
# killed during a compaction.  Small writes start as inline chunks (bytes
# kept in the metadata, no chunk files); compaction moves them onto
# chunkservers.

load helpers

teardown() {
    stop_cluster
    assert_no_sanitizer_reports
}

# chunk files on every chunkserver's disk
chunk_files() { find "$CLUSTER"/cs-*/data/chunks -name '*.chunk' 2>/dev/null | wc -l; }

# gc_field NAME: a figure of the leader's garbage collector
gc_field() { "$TESSERA" admin status --json | jq -r ".gc.$1"; }

at_least() { [ "$("$1")" -ge "$2" ]; }
files_at_least() { [ "$(chunk_files)" -ge "$1" ]; }
files_equal() { [ "$(chunk_files)" -eq "$1" ]; }
orphan_replicas_at_least() { [ "$(gc_field orphan_replicas)" -ge "$1" ]; }
# extents of a file (its chunk list, one entry per extent)
extent_count() { "$TESSERA" admin chunks "$1" --json | jq '.chunks | length'; }
all_up() { [ "$("$TESSERA" admin status --json | jq '[.servers[] | select(.state == "up")] | length')" -eq 3 ]; }
status_chunks() { "$TESSERA" admin status --json | jq .chunks; }
status_inline() { "$TESSERA" admin status --json | jq .inline_chunks; }

APPENDER=$BATS_TEST_DIRNAME/appender.py
SMALL_FILES=$BUILD/tests/bench/small_files

# Background rounds off: each test compacts on demand, so it knows when.
start_compact_cluster() {
    start_mounted_cluster --set-meta compact_background=false --set-meta gc_grace_ms=3000 \
        --set-meta compact_chunk_size=16M --set-meta gc_deletes_per_sec=5000 "$@"
}

@test "5,000 appends of 128 bytes through the mount, compaction racing the second half: exact bytes throughout, then 1 chunk" {
    start_compact_cluster
    local exp=$BATS_TEST_TMPDIR/expected now=$BATS_TEST_TMPDIR/now
    python3 "$APPENDER" --expect 0 5000 >"$exp"
    python3 "$APPENDER" "$MNT/log" 0 2500
    [ "$(extent_count /log)" -eq 2500 ]
    # Every 128-byte append went inline: no chunk file anywhere.
    [ "$(status_inline)" -eq 2500 ]
    [ "$(chunk_files)" -eq 0 ]

    # The second half appends while compaction runs again and again; every
    # read meanwhile is an exact prefix of the expected bytes.
    python3 "$APPENDER" "$MNT/log" 2500 2500 &
    local writer=$! rounds=0 size
    track_pid "$writer"
    while kill -0 "$writer" 2>/dev/null; do
        "$TESSERA" admin compact /log --json >"$BATS_TEST_TMPDIR/round.json"
        [ "$(jq .jobs_failed "$BATS_TEST_TMPDIR/round.json")" -eq 0 ]
        rounds=$((rounds + 1))
        "$TESSERA" cat /log >"$now"
        size=$(stat -c %s "$now")
        [ "$size" -ge 320000 ] && [ $((size % 128)) -eq 0 ]
        cmp -n "$size" "$now" "$exp"
    done
    wait "$writer"
    [ "$rounds" -ge 2 ]
    run "$TESSERA" admin compact /log
    [ "$status" -eq 0 ]
    [ "$(extent_count /log)" -eq 1 ]
    [ "$(status_inline)" -eq 0 ]
    cmp "$MNT/log" "$exp"
    "$TESSERA" cat /log | cmp - "$exp"
    # 1 chunk x 3 replicas, whatever the uploads before were.
    wait_until 60 files_equal 3
    cmp "$MNT/log" "$exp"
    run "$TESSERA" admin status
    [[ "$output" == *"compaction: "*" files compacted"* ]]
}

@test "10,000 files of 4 KiB packed into 3 pack chunks: identical bytes and ls -l; 90% deleted and repacked: space reclaimed" {
    start_compact_cluster
    "$TESSERA" mkdir /many
    "$SMALL_FILES" "$TESSERA_CONF" create /many 10000 4096 8
    ls -l --time-style=full-iso "$MNT/many" >"$BATS_TEST_TMPDIR/ls.before"
    [ "$(status_inline)" -eq 10000 ]
    [ "$(status_chunks)" -eq 0 ]

    run "$TESSERA" admin compact /many --dry-run --json
    [ "$status" -eq 0 ]
    [ "$(jq .pack_files <<<"$output")" -eq 10000 ]
    [ "$(status_inline)" -eq 10000 ]
    run "$TESSERA" admin compact /many --json
    [ "$status" -eq 0 ]
    [ "$(jq .files_replaced <<<"$output")" -eq 10000 ]
    [ "$(jq .packs <<<"$output")" -eq 3 ]
    [ "$(status_chunks)" -eq 3 ]
    [ "$(status_inline)" -eq 0 ]
    "$SMALL_FILES" "$TESSERA_CONF" verify /many 10000 4096 8
    ls -l --time-style=full-iso "$MNT/many" >"$BATS_TEST_TMPDIR/ls.after"
    diff "$BATS_TEST_TMPDIR/ls.before" "$BATS_TEST_TMPDIR/ls.after"
    wait_until 90 files_equal 9

    # 90% deleted: the packs are mostly dead; repacking moves the rest.
    "$SMALL_FILES" "$TESSERA_CONF" remove /many 10000 4096 8 1 10
    [ "$("$TESSERA" admin status --json | jq .compaction.reclaimable_bytes)" -ge 0 ]
    run "$TESSERA" admin compact /many --json
    [ "$status" -eq 0 ]
    [ "$(jq .reclaimable_bytes <<<"$output")" -eq $((9000 * 4096)) ]
    [ "$(jq .files_replaced <<<"$output")" -eq 1000 ]
    [ "$(status_chunks)" -eq 1 ]
    "$SMALL_FILES" "$TESSERA_CONF" verify /many 10000 4096 8 1 10
    [ "$(ls "$MNT/many" | wc -l)" -eq 1000 ]
    wait_until 30 files_equal 3
    run "$TESSERA" admin compact /many --dry-run --json
    [ "$(jq .reclaimable_bytes <<<"$output")" -eq 0 ]
    [ "$(jq .pack_files <<<"$output")" -eq 0 ]
}

@test "gc: a writer killed mid-file leaves orphans that are deleted after the grace period, nothing else" {
    start_cluster --chunk-size 1M --set-meta gc_grace_ms=4000 --set-meta compact_background=false
    head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/keep"
    "$TESSERA" put "$BATS_TEST_TMPDIR/keep" /keep
    local committed
    committed=$(chunk_files)
    [ "$committed" -eq 9 ]     # 3 chunks x 3 replicas

    # A writer that has sealed 4 chunks and dies before closing (its one
    # commit comes at close).
    mkfifo "$BATS_TEST_TMPDIR/fifo"
    "$TESSERA" put - /dying <"$BATS_TEST_TMPDIR/fifo" &
    local writer=$!
    track_pid "$writer"
    # The feeder keeps the pipe open after 4.5 MB so the writer waits.
    (head -c 4500000 /dev/urandom; exec sleep 120) >"$BATS_TEST_TMPDIR/fifo" &
    local feeder=$!
    track_pid "$feeder"
    wait_until 30 files_at_least $((committed + 12))
    kill -9 "$writer"
    kill "$feeder"
    wait_until 20 orphan_replicas_at_least 12
    # Inside the grace period nothing is deleted.
    [ "$(chunk_files)" -eq $((committed + 12)) ]
    [ "$(gc_field deletes_total)" -eq 0 ]
    run "$TESSERA" admin fsck
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"orphans: 4 chunks (12 replicas)"* ]]

    wait_until 30 files_equal "$committed"
    [ "$(gc_field deletes_total)" -eq 12 ]
    [ "$(gc_field orphan_chunks)" -eq 0 ]
    "$TESSERA" get /keep "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/keep" "$BATS_TEST_TMPDIR/back"
    run "$TESSERA" admin fsck --json
    [ "$status" -eq 0 ]
    [ "$(jq .orphans.chunks <<<"$output")" -eq 0 ]
    [ "$(jq .healthy <<<"$output")" -eq 3 ]

    # A deleted file's chunks fall to refcount 0: orphans, then deleted.
    "$TESSERA" rm /keep
    wait_until 30 files_equal 0
    run "$TESSERA" admin status
    [[ "$output" == *"gc: 0 orphan chunks"*"21 deleted"* ]]
}

@test "metadata leader killed during a compaction: every file stays correct, a later compaction completes" {
    # Builds read at 1 MB/s, so the leader dies while the pack is built.
    start_compact_cluster --set-chunk background_bytes_per_sec=1M
    "$TESSERA" mkdir /d
    "$SMALL_FILES" "$TESSERA_CONF" create /d 600 4096 8
    local leader log
    leader=$("$TESSERA" admin raft status --json | jq -r '.servers[] | select(.role == "leader") | .id' | head -n 1)
    [ -n "$leader" ]
    log=$CLUSTER/$leader/$leader.log
    "$TESSERA" admin compact /d >"$BATS_TEST_TMPDIR/compact.out" 2>&1 &
    local cpid=$!
    track_pid "$cpid"
    wait_until 20 grep -q "compact: pack job" "$log"
    kill -9 "$(daemon_pid "$leader")"
    wait "$cpid" || true     # retried on the new leader, or failed: either is fine
    # The new leader hears from the chunkservers before reads find replicas.
    wait_until 30 all_up
    "$SMALL_FILES" "$TESSERA_CONF" verify /d 600 4096 8
    run "$TESSERA" admin compact /d --json
    [ "$status" -eq 0 ]
    run "$TESSERA" admin compact /d --dry-run --json
    [ "$(jq .pack_files <<<"$output")" -eq 0 ]
    "$SMALL_FILES" "$TESSERA_CONF" verify /d 600 4096 8
    run "$TESSERA" admin fsck /d
    [ "$status" -eq 0 ]
}

@test "background rounds compact an appended file and pack small files once they are idle" {
    # Files up to 4 KiB are packed: the compacted 5 KiB log never joins a
    # pack, so the end state is exactly one log chunk and one pack.  The
    # 20 files go into one pack although a round may come while they are
    # being created: their directory must be quiet first.
    start_mounted_cluster --set-meta compact_interval_ms=500 --set-meta compact_min_age_ms=2000 \
        --set-meta compact_bytes_per_sec=1M --set-meta compact_small_file=4096
    local exp=$BATS_TEST_TMPDIR/expected
    python3 "$APPENDER" --expect 0 40 >"$exp"
    python3 "$APPENDER" "$MNT/log" 0 40
    "$TESSERA" mkdir /s
    "$SMALL_FILES" "$TESSERA_CONF" create /s 20 4096 4
    [ "$(extent_count /log)" -eq 40 ]
    [ "$(status_inline)" -eq 60 ]
    # One log chunk and one pack: 2 chunks, nothing asked for.
    wait_until 30 bash -c "[ \"\$(\"$TESSERA\" admin status --json | jq .chunks)\" -eq 2 ]" || {
        "$TESSERA" admin status --json | jq -c '{chunks, compaction}'
        grep -h "compact" "$CLUSTER"/meta-*/meta-*.log | tail -n 30
        false
    }
    [ "$(extent_count /log)" -eq 1 ]
    cmp "$MNT/log" "$exp"
    "$SMALL_FILES" "$TESSERA_CONF" verify /s 20 4096 4
    run "$TESSERA" admin status --json
    [ "$(jq .compaction.files_compacted_total <<<"$output")" -eq 1 ]
    [ "$(jq .compaction.files_packed_total <<<"$output")" -eq 20 ]
    [ "$(jq .compaction.rounds <<<"$output")" -ge 1 ]
    # The chunkservers built the two chunks (their own counters).
    local s builds=0 n
    for s in cs-1 cs-2 cs-3; do
        n=$(curl -s "http://$(server_address "$s")/metrics" | awk '/^tessera_chunk_builds_total/ { print $2 }')
        builds=$((builds + n))
    done
    [ "$builds" -eq 2 ]
}

@test "compaction refuses bad input with clear errors: CLI, metadata endpoint, chunkserver build" {
    start_cluster --set-meta compact_background=false
    run "$TESSERA" admin compact /no/such/dir
    [ "$status" -eq 1 ]
    [[ "$output" == *"admin compact /no/such/dir"* ]]
    run "$TESSERA" admin compact --bogus
    [ "$status" -ne 0 ]
    [[ "$output" == *"--help"* || "$output" == *"bogus"* ]]
    run "$TESSERA" admin compact / /x
    [ "$status" -ne 0 ]
    run "$TESSERA" admin compact --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"--dry-run"* ]]
    local meta cs id=0123456789abcdef0123456789abcdef
    meta=$(meta_address)
    run curl -s -X POST -d '{"path":5}' "http://$meta/v1/admin/compact"
    [[ "$output" == *"EINVAL"*"path"* ]]
    run curl -s -X POST -d '{"dry_run":"yes"}' "http://$meta/v1/admin/compact"
    [[ "$output" == *"EINVAL"*"dry_run"* ]]
    cs=$(server_address cs-1)
    run curl -s -w ' %{http_code}' -X POST -d 'not json' "http://$cs/v1/chunk/$id/build"
    [[ "$output" == *" 400" ]]
    run curl -s -w ' %{http_code}' -X POST -d '{"chain":["x"],"pieces":[]}' "http://$cs/v1/chunk/$id/build"
    [[ "$output" == *"chain[0]"*" 400" ]]
    run curl -s -w ' %{http_code}' -X POST \
        -d "{\"chain\":[\"$cs\"],\"pieces\":[{\"chunk\":\"$id\",\"offset\":0,\"length\":0,\"from\":[\"$cs\"]}]}" \
        "http://$cs/v1/chunk/$id/build"
    [[ "$output" == *"length 0"*" 400" ]]
    # A piece nobody has: 502 naming it, and no chunk left behind.
    run curl -s -w ' %{http_code}' -X POST \
        -d "{\"chain\":[\"$cs\"],\"pieces\":[{\"chunk\":\"$id\",\"offset\":0,\"length\":10,\"from\":[\"$cs\"]}]}" \
        "http://$cs/v1/chunk/ffffffffffffffffffffffffffffffff/build"
    [[ "$output" == *"$id"*" 502" ]]
    [ "$(find "$CLUSTER"/cs-*/data/chunks -name '*.chunk' | wc -l)" -eq 0 ]
}
