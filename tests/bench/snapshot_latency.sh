#!/usr/bin/env bash
# Benchmark: client latency while the metadata service writes a snapshot of
# a big namespace (issue #4: snapshots must not freeze the service).
#
# For a single server (--metas 1) and a 3-server Raft group (--metas 3):
#   1. build a namespace of FILES empty files (meta_create);
#   2. measured run: meta_ops --mix (each create followed by a stat) of
#      MEASURE files, with every operation's start and latency recorded,
#      while the servers write a snapshot of the whole namespace:
#      snapshot_every is chosen so that one falls due in the middle of it;
#   both from CLIENTS processes of one thread each: one client with many
#   threads gets requests refused by the session table when one of its
#   requests is overtaken by 256 of its others (a loaded 2-CPU machine
#   does that), which a benchmark of latencies must not mix in;
#   3. the snapshot windows come from the servers' logs (end time and
#      duration of each snapshot, on every server of the group); operations
#      overlapping a window count as "during a snapshot", the others as
#      "outside"; per kind: count, p50, p99, max (ms).
# With OLD_BUILD (a build of the stop-the-world code, e.g. the parent
# commit) the same run is made against its servers, clients from BUILD_DIR.
# The WAL's fsync is off for the whole run: it measures snapshot stalls,
# not the disk.
#   tests/bench/snapshot_latency.sh [FILES] [BUILD_DIR] [OLD_BUILD]
#   environment: MODES ("1 3"), MEASURE (40000), CLIENTS (8)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
files=${1:-1000000}
build=${2:-$top/build}
old=${3:-}
modes=${MODES:-1 3}
measure=${MEASURE:-40000}
clients=${CLIENTS:-8}
for tool in tessera tessera-meta tests/bench/meta_ops tests/bench/meta_create; do
    [ -x "$build/$tool" ] || { echo "snapshot_latency: $build/$tool missing (make check TESTS= builds it)" >&2; exit 2; }
done
[ -z "$old" ] || [ -x "$old/tessera-meta" ] || { echo "snapshot_latency: $old/tessera-meta missing" >&2; exit 2; }
command -v jq >/dev/null || { echo "snapshot_latency: jq is required" >&2; exit 2; }
work=$(mktemp -d /var/tmp/tessera-snapbench.XXXXXX)
cluster= cli=
cleanup() {
    [ -z "$cluster" ] || "$cli" local down --dir "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_for() {   # SECONDS COMMAND...
    local deadline=$(( $(now_ms) + $1 * 1000 )); shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "snapshot_latency: timed out waiting for $*" >&2; return 1; }
        sleep 0.2
    done
}
group_settled() {
    local s
    s=$("$cli" admin raft status --json 2>/dev/null) || return 1
    [ "$(jq '[.servers[] | select(.role == "leader")] | length' <<<"$s")" -eq 1 ] &&
        [ "$(jq '[.servers[].applied] | unique | length' <<<"$s")" -eq 1 ]
}
# Entries in the log per file made by meta_create: the file, and a
# directory per 1,000 files.  The snapshot due in the middle of the
# measured run (MEASURE creates after FILES) is the second one.
every=$(( (files + files / 1000 + measure / 2) / 2 ))

run() {   # run LABEL SERVER_BUILD METAS
    local label=$1 sbuild=$2 metas=$3
    cli=$sbuild/tessera
    cluster=$work/$label-$metas
    echo "== $label servers, --metas $metas: $files files, then $measure creates+stats (snapshot_every=$every)"
    "$cli" local up --dir "$cluster" --metas "$metas" --chunkservers 1 --no-mount \
        --set-meta wal_fsync=false --set-meta snapshot_every="$every" >/dev/null
    export TESSERA_CONF=$cluster/client.conf
    [ "$metas" -eq 1 ] || wait_for 30 group_settled
    local meta
    meta=$(sed -nE 's/^meta *= *//p' "$cluster/client.conf")
    local i pids=() t0
    t0=$(now_ms)
    for i in $(seq 1 "$clients"); do
        "$build/tests/bench/meta_create" --meta "$meta" --files $((files / clients)) \
            --threads 1 --prefix "b$i" >/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    echo "  build: $files files in $(( ($(now_ms) - t0) / 1000 )) s"
    pids=()
    t0=$(now_ms)
    for i in $(seq 1 "$clients"); do
        "$build/tests/bench/meta_ops" --meta "$meta" --files $((measure / clients)) --threads 1 \
            --mix --dir "m$i" --latency "$work/lat.$i" >/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    echo "  measured: $measure creates + $measure stats in $(( ($(now_ms) - t0) / 1000 )) s"
    cat "$work"/lat.* >"$work/lat"
    rm -f "$work"/lat.*
    # let a snapshot still being written finish before reading the logs
    sleep 1
    wait_for 600 bash -c "! grep -hq 'building it in the background' $cluster/meta*/*.log ||
        [ \$(grep -hc 'building it in the background' $cluster/meta*/*.log | paste -sd+ | bc) -eq \
          \$(grep -hc 'written in the background' $cluster/meta*/*.log | paste -sd+ | bc) ]"
    cat "$cluster"/meta*/*.log >"$work/logs"
    python3 - "$work/lat" "$work/logs" "$label" <<'PY'
import re, sys, datetime
lat, logs, label = sys.argv[1], sys.argv[2], sys.argv[3]
def ms(stamp):
    d = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return d.timestamp() * 1000
wins, snaps = [], []
for line in open(logs, errors="replace"):
    m = re.match(r"(\S+Z) .*snapshot at (?:index )?(\d+) written (?:in the background )?in (\d+) ms", line)
    if m:   # this code, and the old single server: end time and duration
        end = ms(m.group(1)); d = int(m.group(3))
        wins.append((end - d, end)); snaps.append((int(m.group(2)), d, end)); continue
    m = re.match(r"(\S+Z) .*raft \S+: snapshot at (\d+) \((\d+) bytes\)", line)
    if m and label == "old":   # the old Raft driver logs only when done
        end = ms(m.group(1))
        wins.append((end, end)); snaps.append((int(m.group(2)), None, end))
ops = []
for line in open(lat):
    kind, start, us = line.split()
    ops.append((kind, float(start), float(us) / 1000))
first = min(o[1] for o in ops); last = max(o[1] + o[2] for o in ops)
print("  snapshots (index, duration ms; every server) during the measured run:")
for idx, d, end in sorted(snaps):
    if first <= end and end - (d or 0) <= last:
        print("    at %d: %s" % (idx, "%d ms" % d if d is not None else "duration not logged (old Raft code)"))
def during(o):
    s, e = o[1], o[1] + o[2]
    return any(s <= b and e >= a for a, b in wins)
def pct(v, p):
    return v[min(len(v) - 1, int(len(v) * p))]
print("  %-7s %-8s %8s %9s %9s %9s" % ("op", "when", "count", "p50 ms", "p99 ms", "max ms"))
for kind in ("create", "stat"):
    for label, sel in (("during", True), ("outside", False)):
        v = sorted(o[2] for o in ops if o[0] == kind and during(o) == sel)
        if v:
            print("  %-7s %-8s %8d %9.2f %9.2f %9.1f" % (kind, label, len(v), pct(v, .5), pct(v, .99), v[-1]))
        else:
            print("  %-7s %-8s %8d" % (kind, label, 0))
PY
    "$cli" local down --dir "$cluster" >/dev/null
    cluster=
    rm -rf "$work/$label-$metas"
}

for metas in $modes; do
    run new "$build" "$metas"
    [ -z "$old" ] || run old "$old" "$metas"
done
