#!/usr/bin/env bats
# Compaction and garbage collection against real daemons: orphan chunks
# (a writer killed before its commit, deleted files) are deleted by the
# metadata leader's garbage collector after the grace period and nothing
# else is.

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
orphans_at_least() { [ "$(gc_field orphan_chunks)" -ge "$1" ]; }

@test "gc: a writer killed mid-file leaves orphans that are deleted after the grace period, nothing else" {
    start_cluster --chunk-size 1M --set-meta gc_grace_ms=4000
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
    wait_until 20 orphans_at_least 4
    # Inside the grace period nothing is deleted.
    [ "$(chunk_files)" -eq $((committed + 12)) ]
    [ "$(gc_field deletes_total)" -eq 0 ]
    run "$TESSERA" admin fsck
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
