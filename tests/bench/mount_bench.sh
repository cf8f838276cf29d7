#!/usr/bin/env bash
# Benchmark of the FUSE mount against a local-disk directory, in the same run:
#   sequential write and read of SIZE MiB (MB/s), creating 10,000 4 KiB files
#   in 100 directories (files/s), stat of all of them (entries/s), reading
#   them back (files/s), the same creates from 8 writers at once (files/s:
#   many jobs or threads writing small files), 5,000 open-append-close cycles of 128 bytes to one
#   file (appends/s), cp -r of a source tree (s).
# Prints each figure for both and the ratio Tessera / local (for the copy
# time: local / Tessera, so that higher is better everywhere).  The cluster
# writes every byte 3 times to the same disk here.
#   tests/bench/mount_bench.sh [SIZE_MIB] [BUILD_DIR]
#   environment: FILES (10000), APPENDS (5000), TREE (/usr/include)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
size_mib=${1:-1024}
build=${2:-$top/build}
files=${FILES:-10000}
appends=${APPENDS:-5000}
tree=${TREE:-/usr/include}
export PATH="$build:$PATH"
work=$(mktemp -d /var/tmp/tessera-mbench.XXXXXX)
cluster=$work/cluster
cleanup() {
    tessera local down --dir "$cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

tessera local up --dir "$cluster" --chunkservers 3 >/dev/null
mnt=$cluster/mnt
local_dir=$work/local
mkdir -p "$local_dir"
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/src"
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }
per_s() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

# Each measurement prints one number for the directory given.
seq_write() {
    local t0 t1
    t0=$(now); dd if="$work/src" of="$1/big" bs=1M conv=fsync status=none; t1=$(now)
    per_s "$size_mib" "$(elapsed "$t0" "$t1")"
}
seq_read() {
    local t0 t1
    drop
    t0=$(now); dd if="$1/big" of=/dev/null bs=1M status=none; t1=$(now)
    per_s "$size_mib" "$(elapsed "$t0" "$t1")"
}
small_files() {   # DIR PHASE: create | stat | read | pcreate (8 writers, under DIR/par)
    python3 - "$1" "$2" "$files" <<'PY'
import os, sys, time
top, phase, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
dirs = 100
data = os.urandom(4096)
t = time.time()
if phase == "pcreate":
    writers = 8
    top = os.path.join(top, "par")
    os.mkdir(top)
    for d in range(dirs):
        os.mkdir(os.path.join(top, "d%03d" % d))
    pids = []
    for w in range(writers):
        pid = os.fork()
        if pid == 0:
            try:
                for i in range(w, n, writers):
                    with open(os.path.join(top, "d%03d" % (i % dirs), "f%05d" % i), "wb") as f:
                        f.write(data)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        assert st == 0, st
    assert sum(len(os.listdir(os.path.join(top, "d%03d" % d))) for d in range(dirs)) == n
elif phase == "create":
    for d in range(dirs):
        os.mkdir(os.path.join(top, "d%03d" % d))
    for i in range(n):
        with open(os.path.join(top, "d%03d" % (i % dirs), "f%05d" % i), "wb") as f:
            f.write(data)
        # close commits: the file is durable and visible to other clients
elif phase == "stat":
    count = 0
    for d in range(dirs):
        p = os.path.join(top, "d%03d" % d)
        for e in os.scandir(p):
            e.stat(follow_symlinks=False)
            count += 1
    assert count == n, count
else:
    for i in range(n):
        with open(os.path.join(top, "d%03d" % (i % dirs), "f%05d" % i), "rb") as f:
            assert len(f.read()) == 4096
print("%.1f" % (n / (time.time() - t)))
PY
}
appends_bench() {
    python3 - "$1" "$appends" <<'PY'
import os, sys, time
path, n = os.path.join(sys.argv[1], "log"), int(sys.argv[2])
rec = b"x" * 127 + b"\n"
t = time.time()
for i in range(n):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, rec)
    os.close(fd)
assert os.path.getsize(path) == n * 128
print("%.1f" % (n / (time.time() - t)))
PY
}
copy_tree() {
    local t0 t1
    drop
    t0=$(now); cp -r "$tree" "$1/tree"; sync; t1=$(now)
    python3 -c "import sys; print('%.2f' % float(sys.argv[1]))" "$(elapsed "$t0" "$t1")"
}

declare -A L T
for target in local tessera; do
    if [ "$target" = local ]; then d=$local_dir; else d=$mnt; fi
    r_w=$(seq_write "$d"); r_r=$(seq_read "$d")
    r_c=$(small_files "$d" create); drop; r_s=$(small_files "$d" stat); drop; r_rd=$(small_files "$d" read)
    r_pc=$(small_files "$d" pcreate)
    r_a=$(appends_bench "$d"); r_t=$(copy_tree "$d")
    if [ "$target" = local ]; then
        L=([w]=$r_w [r]=$r_r [c]=$r_c [s]=$r_s [rd]=$r_rd [pc]=$r_pc [a]=$r_a [t]=$r_t)
    else
        T=([w]=$r_w [r]=$r_r [c]=$r_c [s]=$r_s [rd]=$r_rd [pc]=$r_pc [a]=$r_a [t]=$r_t)
    fi
done
cmp "$work/src" "$mnt/big" || { echo "bench: the big file differs on the mount!" >&2; exit 1; }
diff -r --no-dereference "$tree" "$mnt/tree" >/dev/null || { echo "bench: the copied tree differs!" >&2; exit 1; }

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
printf '%-44s %12s %12s %7s\n' "measure" "local disk" "tessera" "ratio"
row() { printf '%-44s %12s %12s %7s\n' "$1" "$2" "$3" "$4"; }
row "sequential write ${size_mib} MiB (MB/s)" "${L[w]}" "${T[w]}" "$(ratio "${T[w]}" "${L[w]}")"
row "sequential read ${size_mib} MiB, cold (MB/s)" "${L[r]}" "${T[r]}" "$(ratio "${T[r]}" "${L[r]}")"
row "create $files x 4 KiB in 100 dirs (files/s)" "${L[c]}" "${T[c]}" "$(ratio "${T[c]}" "${L[c]}")"
row "stat all of them, cold (entries/s)" "${L[s]}" "${T[s]}" "$(ratio "${T[s]}" "${L[s]}")"
row "read them back, cold (files/s)" "${L[rd]}" "${T[rd]}" "$(ratio "${T[rd]}" "${L[rd]}")"
row "the same creates from 8 writers (files/s)" "${L[pc]}" "${T[pc]}" "$(ratio "${T[pc]}" "${L[pc]}")"
row "$appends open-append-close of 128 B (appends/s)" "${L[a]}" "${T[a]}" "$(ratio "${T[a]}" "${L[a]}")"
row "cp -r $tree (s; ratio local/tessera)" "${L[t]}" "${T[t]}" "$(ratio "${L[t]}" "${T[t]}")"
