#!/usr/bin/env bash
# Benchmark: what compaction buys for the two workloads that make small
# chunks, measured before and after on one local cluster (3 metadata
# servers, 3 chunkservers, 64 MiB chunks, GC grace 2 s):
#   appends: APPENDS records of 128 bytes appended to one file through the
#            mount, each with fsync (one extent and chunk each);
#   small:   FILES files of 4 KiB written through libtessera.
# For each: chunks in the namespace, chunk files on the chunkservers' disks
# (after GC), the metadata leader's resident memory, and the time to read
# everything back; then the ratios after/before.
#   tests/bench/compaction_bench.sh [APPENDS] [FILES] [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
appends=${1:-5000}
files=${2:-10000}
build=${3:-$top/build}
export PATH="$build:$PATH"
work=$(mktemp -d /var/tmp/tessera-bench.XXXXXX)
cluster=$work/cluster
cleanup() {
    tessera local down --dir "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

tessera local up --dir "$cluster" --set-meta compact_background=false \
    --set-meta gc_grace_ms=2000 --set-meta gc_deletes_per_sec=100000 >/dev/null
export TESSERA_CONF=$cluster/client.conf
mnt=$cluster/mnt

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
chunks() { tessera admin status --json | jq .chunks; }
disk_files() { find "$cluster"/cs-*/data/chunks -name '*.chunk' | wc -l; }
leader_rss_mib() {
    local a
    a=$(tessera admin raft status --json | jq -r '.servers[] | select(.role == "leader") | .address' | head -n 1)
    curl -s "http://$a/metrics" | awk '/^process_resident_memory_bytes/ { printf "%.1f", $2 / 1048576 }'
}
# wait for GC: no orphans left (at most 120 s)
settle() {
    local deadline=$(( $(now_ms) + 120000 ))
    while [ "$(tessera admin status --json | jq .gc.orphan_replicas)" -ne 0 ]; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "bench: GC did not finish" >&2; exit 1; }
        sleep 0.5
    done
}
measure() {   # measure LABEL READ_CMD...: prints one row
    local label=$1 t0 t1
    shift
    settle
    t0=$(now_ms)
    "$@" >/dev/null
    t1=$(now_ms)
    printf '%-22s %10s %12s %10s %12s\n' "$label" "$(chunks)" "$(disk_files)" \
        "$(leader_rss_mib)" "$((t1 - t0))"
}
ratio() { echo "scale=4; $2 / $1" | bc -l; }

printf '%-22s %10s %12s %10s %12s\n' "" "chunks" "chunk files" "meta MiB" "read ms"
python3 "$top/tests/bats/appender.py" --expect 0 "$appends" >"$work/expected"
t0=$(now_ms)
python3 "$top/tests/bats/appender.py" "$mnt/log" 0 "$appends"
echo "appends: $appends x 128 B in $(( $(now_ms) - t0 )) ms" >&2
read_log() { tessera cat /log | cmp - "$work/expected"; }
a1=$(measure "appends before" read_log)
echo "$a1"
t0=$(now_ms)
tessera admin compact /log >/dev/null 2>&1
echo "append compaction: $(( $(now_ms) - t0 )) ms" >&2
a2=$(measure "appends after" read_log)
echo "$a2"

tessera mkdir /small
"$build/tests/bench/small_files" "$TESSERA_CONF" create /small "$files" 4096 8 >&2
verify() { "$build/tests/bench/small_files" "$TESSERA_CONF" verify /small "$files" 4096 8; }
s1=$(measure "small files before" verify)
echo "$s1"
t0=$(now_ms)
tessera admin compact /small >/dev/null 2>&1
echo "packing: $(( $(now_ms) - t0 )) ms" >&2
s2=$(measure "small files after" verify)
echo "$s2"

# Ratios after/before (chunks are cluster-wide, so the small-file rows
# include the compacted log's one chunk).
row() { read -r -a x <<<"$1"; echo "${x[@]: -4}"; }
read -r ac1 ad1 am1 at1 <<<"$(row "$a1")"
read -r ac2 ad2 am2 at2 <<<"$(row "$a2")"
read -r sc1 sd1 sm1 st1 <<<"$(row "$s1")"
read -r sc2 sd2 sm2 st2 <<<"$(row "$s2")"
printf 'appends: chunks x%s, chunk files x%s, read time x%s\n' "$(ratio "$ac1" "$ac2")" \
    "$(ratio "$ad1" "$ad2")" "$(ratio "$at1" "$at2")"
printf 'small files: chunks x%s, chunk files x%s, read time x%s, meta memory %s -> %s MiB\n' \
    "$(ratio "$sc1" "$sc2")" "$(ratio "$sd1" "$sd2")" "$(ratio "$st1" "$st2")" "$sm1" "$sm2"
