# Sourced by benchmark scripts: `bench_env BUILD_DIR` puts BUILD_DIR (default
# the tree's build/) first in PATH and makes a fresh $WORK under /var/tmp
# with $CLUSTER inside it; on exit the cluster is stopped and $WORK removed.
bench_env() {
    TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    export PATH="${1:-$TOP/build}:$PATH"
    WORK=$(mktemp -d /var/tmp/tessera-bench.XXXXXX)
    CLUSTER=$WORK/cluster
    trap bench_cleanup EXIT
}

bench_cleanup() {
    tessera local down --dir "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
