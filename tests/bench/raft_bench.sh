#!/usr/bin/env bash
# Benchmark of the replicated metadata service, in one run:
#   1. metadata operations per second (create, stat, rename of FILES files
#      from THREADS threads, tests/bench/meta_ops.c) against a single server
#      (`--metas 1`) and against a 3-server Raft group, on the same machine,
#      both with fsync on;
#   2. failover time of the 3-server group: the leader is killed with
#      kill -9 and the clock runs until the next write (a mkdir from the
#      CLI, which follows redirects and retries with backoff) is
#      acknowledged; KILLS times, median and max.  The killed server is
#      restarted before the next round, so each kill hits a full group.
#   tests/bench/raft_bench.sh [FILES] [BUILD_DIR]
#   environment: THREADS (8), KILLS (20)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
files=${1:-10000}
build=${2:-$top/build}
threads=${THREADS:-8}
kills=${KILLS:-20}
export PATH="$build:$PATH"
for tool in tessera tessera-meta tests/bench/meta_ops; do
    [ -x "$build/$tool" ] || { echo "raft_bench: $build/$tool missing (make check TESTS= builds it)" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "raft_bench: jq is required" >&2; exit 2; }
work=$(mktemp -d /var/tmp/tessera-rbench.XXXXXX)
cluster=
cleanup() {
    [ -z "$cluster" ] || tessera local down --dir "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# up METAS: a fresh cluster with METAS metadata servers, one chunkserver
# (metadata operations never touch chunks) and no mount.
up() {
    cluster=$work/metas$1
    tessera local up --dir "$cluster" --metas "$1" --chunkservers 1 --no-mount >/dev/null
    export TESSERA_CONF=$cluster/client.conf
}
down() {
    tessera local down --dir "$cluster" >/dev/null
    cluster=
}
meta_list() { sed -nE 's/^meta *= *//p' "$cluster/client.conf"; }

leader() {
    tessera admin raft status --json 2>/dev/null |
        jq -r '.servers[] | select(.role == "leader") | .id' | head -n 1
}
# Every member answers and all have applied the same log.
group_settled() {
    local s
    s=$(tessera admin raft status --json 2>/dev/null) || return 1
    [ "$(jq '[.servers[] | select(.role == "unreachable")] | length' <<<"$s")" -eq 0 ] &&
        [ "$(jq '[.servers[] | select(.role == "leader")] | length' <<<"$s")" -eq 1 ] &&
        [ "$(jq '[.servers[].applied] | unique | length' <<<"$s")" -eq 1 ]
}
wait_for() {   # SECONDS COMMAND...
    local deadline=$(( $(now_ms) + $1 * 1000 )); shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "raft_bench: timed out waiting for $*" >&2; return 1; }
        sleep 0.1
    done
}

declare -A ops
for metas in 1 3; do
    up "$metas"
    [ "$metas" -eq 1 ] || wait_for 20 group_settled
    while read -r phase rate; do
        ops[$metas,$phase]=$rate
    done < <("$build/tests/bench/meta_ops" --meta "$(meta_list)" --files "$files" --threads "$threads")
    [ "$metas" -eq 3 ] || down
done

# Failover, on the 3-server group still running.
tessera mkdir /failover
times=()
for k in $(seq 1 "$kills"); do
    wait_for 30 group_settled
    l=$(leader)
    pid=$(cat "$cluster/$l/pid")
    t0=$(now_ms)
    kill -9 "$pid"
    tessera mkdir "/failover/k$k"
    t1=$(now_ms)
    times+=($((t1 - t0)))
    # the killed server is gone before it is restarted (same port, same data)
    wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
    tessera local up --dir "$cluster" >/dev/null
done
[ "$(tessera ls /failover | wc -l)" -eq "$kills" ] || { echo "raft_bench: a failover write is missing" >&2; exit 1; }
read -r median max < <(printf '%s\n' "${times[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[NR] }')

echo "metadata operations per second ($files files, $threads threads, fsync on):"
printf '  %-8s %12s %12s %8s\n' op "1 server" "3 (Raft)" ratio
for phase in create stat rename; do
    printf '  %-8s %12s %12s %8s\n' "$phase" "${ops[1,$phase]}" "${ops[3,$phase]}" \
        "$(awk -v a="${ops[3,$phase]}" -v b="${ops[1,$phase]}" 'BEGIN { printf "%.2f", a / b }')"
done
echo "failover (leader kill -9 -> next acknowledged write), $kills kills: median ${median} ms, max ${max} ms"
echo "  all (ms): ${times[*]}"
