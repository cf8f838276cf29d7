#!/usr/bin/env bash
# Benchmark: time to restore full replication after chunkservers die.
# Starts SERVERS chunkservers (64 MiB chunks, suspect after 2 s, down after
# 4 s, repair_bytes_per_sec=BUDGET), writes SIZE_MIB, kills KILL servers
# at once and reports, from the leader's own measurement (admin status
# "repair"), the time from the repair start (servers declared down) until
# no chunk was left with a single replica (only when KILL >= 2) and until
# every chunk had 3 live replicas, with the repair rate in MiB/s.  All
# chunkservers share this machine's disk, so the rate is a floor.
#   tests/bench/repair_bench.sh [SIZE_MIB] [SERVERS] [KILL] [BUDGET] [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
size_mib=${1:-1024}
servers=${2:-4}
kill_n=${3:-1}
budget=${4:-1G}
build=${5:-$top/build}
export PATH="$build:$PATH"
[ "$((servers - kill_n))" -ge 3 ] || { echo "need SERVERS - KILL >= 3" >&2; exit 2; }
work=$(mktemp -d /var/tmp/tessera-bench.XXXXXX)
cluster=$work/cluster
cleanup() {
    tessera local down --dir "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

tessera local up --dir "$cluster" --chunkservers "$servers" --no-mount --heartbeat-timeout 2000 \
    --set-meta down_after_ms=4000 --set-meta "repair_bytes_per_sec=$budget" >/dev/null
export TESSERA_CONF=$cluster/client.conf
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/src"
tessera put "$work/src" /bench.bin
sleep 3     # every replica reported

lost=0
for i in $(seq 2 $((kill_n + 1))); do
    n=$(find "$cluster/cs-$i/data/chunks" -name '*.chunk' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    lost=$((lost + n))
    kill -9 "$(cat "$cluster/cs-$i/pid")"
done
t0=$(date +%s%N)
deadline=$((t0 / 1000000 + 600000))
while :; do
    st=$(tessera admin status --json)
    if [ "$(jq '.repair.last_full_restore_ms' <<<"$st")" -ge 0 ] &&
       [ "$(jq '.repair.episode_active' <<<"$st")" = false ]; then
        break
    fi
    [ "$(( $(date +%s%N) / 1000000 ))" -lt "$deadline" ] || { echo "bench: no restore in 600 s" >&2; exit 1; }
    sleep 0.2
done
t1=$(date +%s%N)
tessera get /bench.bin "$work/back"
cmp "$work/src" "$work/back" || { echo "bench: read back differs!" >&2; exit 1; }
r=$(jq '.repair' <<<"$st")
printf 'file %d MiB, %d chunkservers, %d killed (%.0f MiB of replicas lost), budget %s\n' \
    "$size_mib" "$servers" "$kill_n" "$(echo "$lost / 1048576" | bc -l)" "$budget"
printf 'kill -> full replication: %.1f s (of which detection 4 s)\n' \
    "$(echo "($t1 - $t0) / 1000000000" | bc -l)"
printf 'repair episode: single-replica chunks restored in %s ms, full replication in %s ms\n' \
    "$(jq '.last_single_replica_restore_ms' <<<"$r")" "$(jq '.last_full_restore_ms' <<<"$r")"
printf 'repaired %.0f MiB at %.1f MiB/s\n' "$(jq '.last_restore_bytes / 1048576' <<<"$r")" \
    "$(jq '.last_restore_mib_per_sec' <<<"$r")"
