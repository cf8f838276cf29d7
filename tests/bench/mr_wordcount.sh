#!/usr/bin/env bash
# Benchmark: word count over SIZE_MIB (default 1024) of generated text with
# `tessera mr run` on a local 3-chunkserver cluster (64 MiB chunks, so one
# map per 64 MiB split; mapper, combiner and reducer from
# mapreduce/examples/), and in the same run the local baseline
# `LC_ALL=C tr -s ' ' '\n' < file | sort | uniq -c` on the local disk.
# Prints both times, their ratio, the data-local fraction of the maps and
# the bytes the shuffle moved (in total and between servers); checks that
# both results agree.
#   tests/bench/mr_wordcount.sh [SIZE_MIB] [BUILD_DIR] [REDUCERS]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
size_mib=${1:-1024}
build=${2:-$top/build}
reducers=${3:-4}
export PATH="$build:$PATH"
ex=$top/mapreduce/examples
work=$(mktemp -d /var/tmp/tessera-mrbench.XXXXXX)
cluster=$work/cluster
cleanup() {
    tessera local down --dir "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

echo "generating ${size_mib} MiB of text..." >&2
awk -v max=$((size_mib * 1024 * 1024)) 'BEGIN { srand(7); while (n < max) { k = 1 + int(rand() * 14); l = "";
     for (i = 0; i < k; i++) l = l (i ? " " : "") "w" int(rand() * rand() * 50000);
     print l; n += length(l) + 1 } }' | head -c $((size_mib * 1024 * 1024)) >"$work/text"

tessera local up --dir "$cluster" --chunkservers 3 >/dev/null
export TESSERA_CONF=$cluster/client.conf
tessera put "$work/text" /text

echo "local: tr | sort | uniq -c ..." >&2
t0=$(now)
LC_ALL=C tr -s ' ' '\n' <"$work/text" | LC_ALL=C sort | LC_ALL=C uniq -c >"$work/local.out"
t1=$(now)
local_s=$(secs "$t0" "$t1")

echo "tessera mr run ..." >&2
t0=$(now)
tessera mr run --quiet --input /text --output /wc --name bench --reducers "$reducers" \
    --files "$ex/wordcount_map.sh" "$ex/wordcount_reduce.sh" \
    --mapper 'sh wordcount_map.sh' --combiner 'sh wordcount_reduce.sh' \
    --reducer 'sh wordcount_reduce.sh' >/dev/null
t1=$(now)
mr_s=$(secs "$t0" "$t1")

# Same counts both ways?
awk '{ print $2 "\t" $1 }' "$work/local.out" | LC_ALL=C sort >"$work/a"
tessera cat $(tessera ls /wc | grep part- | sed 's#^#/wc/#') | LC_ALL=C sort >"$work/b"
cmp -s "$work/a" "$work/b" || { echo "bench: results differ!" >&2; exit 1; }

st=$(tessera mr status bench --json)
j() { jq -r "$1" <<<"$st"; }
printf '%-34s %s\n' "input" "${size_mib} MiB, $(j .maps.total) maps, $reducers reduces, 3 chunkservers x 2 slots, $(nproc) cores"
printf '%-34s %8s s\n' "local tr | sort | uniq -c" "$local_s"
printf '%-34s %8s s\n' "tessera mr run (wall)" "$mr_s"
printf '%-34s %8s\n' "ratio (mr / local)" "$(python3 -c "print('%.2f' % ($mr_s / $local_s))")"
printf '%-34s %8s\n' "data-local maps" "$(j .data_local_maps)/$(j .maps.total) ($(python3 -c "print('%.0f%%' % (100 * $(j .data_local_fraction)))"))"
printf '%-34s %8s MiB local, %s MiB remote\n' "map input read" "$(( $(j .bytes.read_local) >> 20 ))" "$(( $(j .bytes.read_remote) >> 20 ))"
printf '%-34s %8s bytes (%s between servers)\n' "shuffle (after combiner)" "$(j .bytes.shuffle)" "$(j .bytes.shuffle_remote)"
