#!/usr/bin/env bash
# Benchmark: resident memory of tessera-meta per file.  Starts a standalone
# metadata server, creates N empty files (default 1,000,000) through the
# client library, and reports (RSS after - RSS before) / N.  The write-ahead
# log's fsync is turned off for this run only: it measures memory, not disk
# latency.  Anchors: GFS ~100 B/file, HDFS ~150 B/object, MooseFS ~230 B/file.
#   tests/bench/meta_memory.sh [FILES] [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
files=${1:-1000000}
build=${2:-$top/build}
work=$(mktemp -d /var/tmp/tessera-membench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/tessera-meta" --listen "127.0.0.1:$port" --data-dir "$work/meta" --log-file "$work/meta.log" \
    --set wal_fsync=false &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$pid/status"; }
before=$(rss)
"$build/tests/bench/meta_create" --meta "127.0.0.1:$port" --files "$files" --threads 8
after=$(rss)
echo "tessera-meta RSS: before $((before / 1024)) KiB, after $((after / 1024)) KiB"
echo "resident memory per file: $(( (after - before) / files )) bytes ($files empty files, 1,000 per directory)"
