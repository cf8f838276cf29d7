#!/usr/bin/env bash
# Benchmark: write and read 1 GiB through `tessera put` / `tessera get` on a
# local 3-chunkserver cluster and, in the same run, with plain file copies on
# the local disk; prints both throughputs and their ratio.  Note that the
# cluster writes every byte three times (3 replicas) to the same disk here.
#   tests/bench/put_get.sh [SIZE_MIB] [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
size_mib=${1:-1024}
build=${2:-$top/build}
export PATH="$build:$PATH"
work=$(mktemp -d /var/tmp/tessera-bench.XXXXXX)
cluster=$work/cluster
cleanup() {
    tessera local down --dir "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
rate() { python3 -c "import sys; print('%.1f' % ($size_mib / (float(sys.argv[2]) - float(sys.argv[1]))))" "$1" "$2"; }

tessera local up --dir "$cluster" --chunkservers 3 >/dev/null
export TESSERA_CONF=$cluster/client.conf
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/src"
sync

t0=$(now); cp "$work/src" "$work/local-copy"; sync; t1=$(now)
local_write=$(rate "$t0" "$t1")
t0=$(now); tessera put "$work/src" /bench.bin; t1=$(now)
tess_write=$(rate "$t0" "$t1")

sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(now); cp "$work/local-copy" "$work/local-read"; t1=$(now)
local_read=$(rate "$t0" "$t1")
rm -f "$work/local-read"
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(now); tessera get /bench.bin "$work/tess-read"; t1=$(now)
tess_read=$(rate "$t0" "$t1")
cmp "$work/src" "$work/tess-read" || { echo "bench: read back differs!" >&2; exit 1; }

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
printf '%-28s %10s %10s %8s\n' "${size_mib} MiB" "local" "tessera" "ratio"
printf '%-28s %7s MiB/s %7s MiB/s %8s\n' "write (put vs cp+sync)" "$local_write" "$tess_write" "$(ratio "$tess_write" "$local_write")"
printf '%-28s %7s MiB/s %7s MiB/s %8s\n' "read (get vs cp, cold)" "$local_read" "$tess_read" "$(ratio "$tess_read" "$local_read")"
