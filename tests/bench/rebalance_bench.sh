#!/usr/bin/env bash
# Benchmark: rebalance throughput when a 4th chunkserver joins 3.
# Starts 3 chunkservers (CHUNK-sized chunks, repair budget BUDGET, which is
# also each chunkserver's background_bytes_per_sec, 8 copies in and out per
# server), writes SIZE_MIB, adds cs-4 and runs `tessera
# admin rebalance`, and reports the bytes moved against the ideal (1/4 of
# the replica bytes for equal weights), the time and the rate, each
# server's bytes against its share, and as a baseline in the same run the
# rate of a plain local copy of the same number of bytes (cp + sync) on the
# same disk: every chunkserver shares this machine's disk, so that is the
# ceiling a rebalance (read + write + checksums + HTTP) can approach.
#   tests/bench/rebalance_bench.sh [SIZE_MIB] [CHUNK] [BUDGET] [BUILD_DIR]
set -euo pipefail
. "$(dirname "$0")/bench_env.bash"
size_mib=${1:-1024}
chunk=${2:-16M}
budget=${3:-1G}
bench_env "${4:-}"
work=$WORK
cluster=$CLUSTER

mib() { echo $(( $1 / 1048576 )); }
disk_bytes() {
    find "$cluster/$1/data/chunks" -name '*.chunk' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

tessera local up --dir "$cluster" --chunkservers 3 --no-mount --chunk-size "$chunk" \
    --heartbeat-timeout 2000 --set-meta "repair_bytes_per_sec=$budget" \
    --set-meta repair_max_copies=8 --set-chunk max_copies_in=8 --set-chunk max_copies_out=8 \
    --set-chunk "background_bytes_per_sec=$budget" \
    >/dev/null
export TESSERA_CONF=$cluster/client.conf
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/src"
tessera put "$work/src" /bench.bin
sleep 2     # every replica reported
tessera local up --dir "$cluster" --chunkservers 4 --no-mount >/dev/null
sleep 2

plan=$(tessera admin rebalance --dry-run --json)
total=$(jq .total_bytes <<<"$plan")
planned=$(jq .bytes_to_move <<<"$plan")
ideal=$((total / 4))
t0=$(date +%s%N)
out=$(tessera admin rebalance --json)
t1=$(date +%s%N)
moved=$(jq .status.bytes_copied <<<"$out")
ms=$(( (t1 - t0) / 1000000 ))
tessera get /bench.bin "$work/back"
cmp "$work/src" "$work/back" || { echo "bench: read back differs!" >&2; exit 1; }

# baseline: a local copy of the same number of bytes on the same disk
head -c "$moved" "$work/src" >"$work/base.in" 2>/dev/null || true
sync
b0=$(date +%s%N)
cp "$work/base.in" "$work/base.out"
sync
b1=$(date +%s%N)
bms=$(( (b1 - b0) / 1000000 ))

printf 'file %d MiB in %s chunks, 3 -> 4 chunkservers, budget %s\n' "$size_mib" "$chunk" "$budget"
printf 'moved %d MiB (planned %d MiB), ideal %d MiB (1/4 of %d MiB of replicas): ratio %.3f\n' \
    "$(mib "$moved")" "$(mib "$planned")" "$(mib "$ideal")" "$(mib "$total")" \
    "$(echo "$moved / $ideal" | bc -l)"
rate=$(echo "$moved / 1048576 / ($ms / 1000)" | bc -l)
base=$(echo "$moved / 1048576 / ($bms / 1000)" | bc -l)
printf 'rebalance: %.1f s, %.1f MiB/s; local cp+sync of the same bytes: %.1f s, %.1f MiB/s; ratio %.2f\n' \
    "$(echo "$ms / 1000" | bc -l)" "$rate" "$(echo "$bms / 1000" | bc -l)" "$base" \
    "$(echo "$rate / $base" | bc -l)"
for s in cs-1 cs-2 cs-3 cs-4; do
    b=$(disk_bytes "$s")
    printf '%s: %d MiB (share %d MiB, %+.1f%%)\n' "$s" "$(mib "$b")" "$(mib "$ideal")" \
        "$(echo "($b - $ideal) * 100 / $ideal" | bc -l)"
done
