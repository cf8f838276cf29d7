#!/usr/bin/env bats
# Chunkserver operations against real daemons: the scrubber finds and
# quarantines a flipped byte, chunks are copied server to server
# (POST replicate) and deleted (DELETE), and a data directory that dies is
# taken out of service while the server keeps serving the rest.  The
# metadata leader's re-replication is switched off here (repair=false) so
# that it does not put back what these tests take away; it is tested in
# repair.bats.

load helpers

teardown() { stop_cluster; }

# chunk_files SERVER: the chunk files of a cluster chunkserver.
chunk_files() { find "$CLUSTER/$1/data/chunks" -name '*.chunk' | sort; }

chunk_port() { awk -v n="$1" '$1 == "daemon" && $2 == n { print $4 }' "$CLUSTER/cluster.state"; }

metric() {  # metric PORT NAME -> value
    curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
    local b
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ 255 )))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

@test "the scrubber finds a flipped byte, quarantines the replica and counts it" {
    start_cluster --set-meta repair=false --set-chunk scrub_bytes_per_sec=1G --set-chunk scrub_interval_s=1
    head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    local file id port
    file=$(chunk_files cs-2 | head -n 1)
    [ -n "$file" ]
    id=$(basename "$file" .chunk)
    port=$(chunk_port cs-2)
    flip_byte "$file" 2000000
    wait_until 20 test -f "$CLUSTER/cs-2/data/quarantine/$id.chunk"
    [ ! -e "$file" ]
    [ "$(metric "$port" tessera_chunk_quarantined_total)" = 1 ]
    wait_until 5 test "$(metric "$port" tessera_chunk_scrub_corrupt_total)" = 1
    grep -q "chunk $id quarantined" "$CLUSTER/cs-2/cs-2.log"
    # Never served again.
    run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/chunk/$id"
    [ "$output" = 404 ]
    # The file still reads back from the other replicas.
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"
}

@test "DELETE removes a replica and POST replicate copies it back from another server" {
    start_cluster --set-meta repair=false
    head -c 5000000 /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    local file id p1 p3
    file=$(chunk_files cs-1 | head -n 1)
    id=$(basename "$file" .chunk)
    p1=$(chunk_port cs-1)
    p3=$(chunk_port cs-3)
    run curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$p3/v1/chunk/$id"
    [ "$output" = 200 ]
    [ ! -e "$CLUSTER/cs-3/data/chunks/${id:0:2}/$id.chunk" ]
    run curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$p3/v1/chunk/$id"
    [ "$output" = 404 ]

    # A dead source first: the copy comes from the next one.
    run curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"from\":[\"127.0.0.1:1\",\"127.0.0.1:$p1\"]}" \
        "http://127.0.0.1:$p3/v1/chunk/$id/replicate"
    [ "$(tail -n 1 <<<"$output")" = 201 ]
    [ "$(head -n 1 <<<"$output" | jq -r .copied)" = true ]
    cmp "$file" "$CLUSTER/cs-3/data/chunks/${id:0:2}/$id.chunk"
    # Idempotent.
    run curl -s -w '\n%{http_code}' -X POST -d "{\"from\":[\"127.0.0.1:$p1\"]}" \
        "http://127.0.0.1:$p3/v1/chunk/$id/replicate"
    [ "$(tail -n 1 <<<"$output")" = 200 ]
    [ "$(head -n 1 <<<"$output" | jq -r .copied)" = false ]
    [ "$(metric "$p3" tessera_chunk_copies_in_total)" = 1 ]
    [ "$(metric "$p1" tessera_chunk_copies_out_total)" = 1 ]
    # Bad input is refused clearly.
    run curl -s -w '\n%{http_code}' -X POST -d '{"from":"x"}' \
        "http://127.0.0.1:$p3/v1/chunk/$id/replicate"
    [ "$(tail -n 1 <<<"$output")" = 400 ]
    grep -q "from" <<<"$output"
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"
}

# A stand-in metadata server that records every heartbeat body.
start_fake_meta() {
    FAKE_META_LOG=$BATS_TEST_TMPDIR/heartbeats
    python3 - "$FAKE_META_LOG" >"$BATS_TEST_TMPDIR/fake_meta.port" 2>/dev/null <<'PY' &
import http.server, sys, json
log = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(log, 'ab') as f:
            f.write(body + b'\n')
        out = b'{"report_needed":false}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
    track_pid $!
    wait_until 10 test -s "$BATS_TEST_TMPDIR/fake_meta.port"
    FAKE_META=127.0.0.1:$(cat "$BATS_TEST_TMPDIR/fake_meta.port")
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_chunk DIRS: a chunkserver by hand on $CS_PORT with data dirs DIRS.
start_chunk() {
    "$BUILD/tessera-chunk" --listen "127.0.0.1:$CS_PORT" --data-dir "$1" --meta "$FAKE_META" \
        --id cs-x --set heartbeat_interval_ms=200 --set dir_check_interval_ms=200 \
        --set scrub_bytes_per_sec=1G --set scrub_interval_s=1 \
        --log-file "$BATS_TEST_TMPDIR/cs-x.log" &
    CS_PID=$!
    track_pid "$CS_PID"
    wait_until 10 curl -sf "http://127.0.0.1:$CS_PORT/health"
}

put_chunk() {  # put_chunk ID FILE
    curl -sf -X PUT --data-binary "@$2" "http://127.0.0.1:$CS_PORT/v1/chunk/$1" >/dev/null
}

last_heartbeat() { tail -n 1 "$FAKE_META_LOG"; }

@test "a data dir that dies is taken out of service, reported, and the rest keeps serving" {
    start_fake_meta
    CS_PORT=$(free_port)
    local d1=$BATS_TEST_TMPDIR/d1 d2=$BATS_TEST_TMPDIR/d2 i
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/c"
    # Three chunks land in d2 (alone at first), then d1 joins.
    start_chunk "$d2"
    for i in 1 2 3; do put_chunk "${i}0000000000000000000000000000000" "$BATS_TEST_TMPDIR/c"; done
    kill "$CS_PID"; wait "$CS_PID" || true
    start_chunk "$d1,$d2"
    put_chunk aa000000000000000000000000000000 "$BATS_TEST_TMPDIR/c"
    [ -f "$d1/chunks/aa/aa000000000000000000000000000000.chunk" ]
    wait_until 5 bash -c "tail -n 1 '$FAKE_META_LOG' | jq -e '.failed_dirs == []'"

    # The disk under d2 dies: its tree vanishes from under the server.
    mv "$d2" "$d2.dead"
    touch "$d2"
    wait_until 10 bash -c "tail -n 1 '$FAKE_META_LOG' | jq -e '.failed_dirs == [\"$d2\"]'"
    run grep "taken out of service" "$BATS_TEST_TMPDIR/cs-x.log"
    [ "$status" -eq 0 ]
    grep -q "3 chunk(s)" <<<"$output"
    # Its chunks were reported removed, and are no longer served.
    jq -s -e '[.[].removed // [] | .[]] | sort == ["10000000000000000000000000000000","20000000000000000000000000000000","30000000000000000000000000000000"]' "$FAKE_META_LOG"
    run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CS_PORT/v1/chunk/10000000000000000000000000000000"
    [ "$output" = 404 ]
    [ "$(metric "$CS_PORT" tessera_chunk_failed_dirs)" = 1 ]
    # The rest keeps serving: reads from d1 and new writes.
    curl -sf "http://127.0.0.1:$CS_PORT/v1/chunk/aa000000000000000000000000000000" | cmp - "$BATS_TEST_TMPDIR/c"
    put_chunk bb000000000000000000000000000000 "$BATS_TEST_TMPDIR/c"
    [ -f "$d1/chunks/bb/bb000000000000000000000000000000.chunk" ]

    # A corrupt replica in d1 is reported as corrupt in the heartbeat.
    flip_byte "$d1/chunks/bb/bb000000000000000000000000000000.chunk" 100
    wait_until 15 bash -c "jq -s -e '[.[].corrupt // [] | .[]] | index(\"bb000000000000000000000000000000\")' '$FAKE_META_LOG'"
    wait_until 5 bash -c "tail -n 1 '$FAKE_META_LOG' | jq -e '.full_report == null and (.chunk_count == 1)'"
    kill "$CS_PID"
    wait "$CS_PID" || true
}
