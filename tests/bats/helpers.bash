# Shared helpers for the end-to-end tests: start a real local cluster in the
# test's temp dir, wait for conditions with deadlines, and clean up exactly the
# processes the test started (by the PIDs the cluster recorded), even when the
# test failed.

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BUILD=${TESSERA_BUILD:-$TOP/build}
TESSERA=$BUILD/tessera
export PATH="$BUILD:$PATH"

# start_cluster [tessera local up options...]: 3 chunkservers, 16 MiB chunks,
# failure detection in 3 s unless overridden; no mount (tests of the CLI
# and the daemons need none).
start_cluster() {
    start_cluster_common --no-mount "$@"
}

# start_mounted_cluster [options...]: the same, mounted by `tessera local up`
# at $MNT (= $CLUSTER/mnt).
start_mounted_cluster() {
    start_cluster_common "$@" || return 1
    MNT=$CLUSTER/mnt
    track_mount "$MNT"
    is_mounted "$MNT" || { echo "local up did not mount $MNT" >&2; return 1; }
}

start_cluster_common() {
    CLUSTER=$BATS_TEST_TMPDIR/cluster
    run "$TESSERA" local up --dir "$CLUSTER" --chunkservers 3 --chunk-size 16M \
        --heartbeat-timeout 3000 "$@"
    if [ "$status" -ne 0 ]; then
        echo "tessera local up failed: $output" >&2
        return 1
    fi
    export TESSERA_CONF=$CLUSTER/client.conf
}

# public_dir: an empty directory every user can reach (the test's own temp
# dir is private to root), removed by teardown.
public_dir() {
    local d
    d=$(mktemp -d /tmp/tessera-bats.XXXXXX)
    chmod 755 "$d"
    echo "$d" >>"$BATS_TEST_TMPDIR/tracked.dirs"
    echo "$d"
}

# mount_extra DIR [-o options]: one more mount of the test's cluster, by
# hand, unmounted by teardown whatever happens.
mount_extra() {
    local dir=$1; shift
    mkdir -p "$dir"
    track_mount "$dir"
    "$BUILD/tessera-mount" "$@" "$CLUSTER/client.conf" "$dir"
}

# The PIDs this test's cluster recorded, one per line.
cluster_pids() {
    local f
    for f in "$CLUSTER"/*/pid; do
        [ -f "$f" ] && cat "$f"
    done
}

# Processes and mounts a test starts by hand are recorded so teardown can
# remove exactly them even when the test failed halfway.
track_pid() { echo "$1" >>"$BATS_TEST_TMPDIR/tracked.pids"; }
track_mount() { echo "$1" >>"$BATS_TEST_TMPDIR/tracked.mounts"; }
# From the mount table, so a mount whose daemon died (ENOTCONN on stat)
# still counts.
is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

cleanup_tracked() {
    local p m
    if [ -f "$BATS_TEST_TMPDIR/tracked.pids" ]; then
        for p in $(cat "$BATS_TEST_TMPDIR/tracked.pids"); do
            kill -9 "$p" 2>/dev/null || true
        done
        rm -f "$BATS_TEST_TMPDIR/tracked.pids"
    fi
    if [ -f "$BATS_TEST_TMPDIR/tracked.mounts" ]; then
        while read -r m; do
            is_mounted "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
        done <"$BATS_TEST_TMPDIR/tracked.mounts"
        rm -f "$BATS_TEST_TMPDIR/tracked.mounts"
    fi
    if [ -f "$BATS_TEST_TMPDIR/tracked.dirs" ]; then
        while read -r m; do
            is_mounted "$m" || rmdir "$m" 2>/dev/null || true
        done <"$BATS_TEST_TMPDIR/tracked.dirs"
        rm -f "$BATS_TEST_TMPDIR/tracked.dirs"
    fi
}

stop_cluster() {
    cleanup_tracked
    [ -n "${CLUSTER:-}" ] && [ -d "$CLUSTER" ] || return 0
    local pids
    pids=$(cluster_pids)
    timeout 30 "$TESSERA" local down --dir "$CLUSTER" >/dev/null 2>&1 || true
    # A mount `local down` could not remove must not outlive the test.
    if is_mounted "$CLUSTER/mnt"; then
        fusermount3 -uz "$CLUSTER/mnt" 2>/dev/null || umount -l "$CLUSTER/mnt" 2>/dev/null || true
    fi
    # Whatever `local down` could not stop, stop by PID (only our daemons).
    local p
    for p in $pids; do
        if kill -0 "$p" 2>/dev/null && grep -q tessera "/proc/$p/cmdline" 2>/dev/null; then
            kill -9 "$p" 2>/dev/null || true
        fi
    done
}

# wait_until SECONDS COMMAND...: polls every 100 ms until COMMAND succeeds.
wait_until() {
    local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
    shift
    while ! "$@" >/dev/null 2>&1; do
        if [ "$(( $(date +%s%N) / 1000000 ))" -ge "$deadline" ]; then
            echo "timed out waiting for: $*" >&2
            return 1
        fi
        sleep 0.1
    done
}

daemon_pid() { cat "$CLUSTER/$1/pid"; }

# address of a daemon from the cluster status ("cs-2" -> "127.0.0.1:PORT")
server_address() {
    "$TESSERA" admin status --json | jq -r --arg id "$1" '.servers[] | select(.id == $id) | .address'
}

server_state() {
    "$TESSERA" admin status --json | jq -r --arg id "$1" '.servers[] | select(.id == $id) | .state'
}

# the metadata server that answers clients: the Raft leader of a group
# (followers answer 421), else the only one
meta_address() {
    local a
    a=$("$TESSERA" admin raft status --json 2>/dev/null |
        jq -r '.servers[] | select(.role == "leader") | .address' 2>/dev/null | head -n 1)
    [ -n "$a" ] || a=$(sed -nE 's/^meta *= *([^,]*).*/\1/p' "$CLUSTER/client.conf")
    echo "$a"
}

# Fails the test when a daemon's log shows a sanitizer report.
assert_no_sanitizer_reports() {
    if grep -rlE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$CLUSTER" 2>/dev/null; then
        grep -rhE -A20 'ERROR: AddressSanitizer|runtime error:' "$CLUSTER" | head -n 60 >&2
        return 1
    fi
}
