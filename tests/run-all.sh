#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the Debian packages it
# needs, builds twice (optimized, and with AddressSanitizer + UBSan), runs the
# C unit tests under the sanitizers, the end-to-end bats tests against real
# daemons and a real mount, and the bad-input and small-file tests again
# under the sanitizers.
# The last line is "N passed, M failed", counting unit tests and bats tests.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash packaging/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

echo "== build (optimized) =="
bash packaging/build.sh "$top/build" || { echo "0 passed, 1 failed"; exit 1; }
echo "== build (sanitizers) =="
bash packaging/build.sh "$top/build-asan" --enable-sanitizers --enable-debug || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
logdir=$(mktemp -d /tmp/tessera-tests.XXXXXX)
# LeakSanitizer needs ptrace, which some sandboxes forbid; leaks are checked
# where it works (TESSERA_LSAN=1).
export ASAN_OPTIONS="detect_leaks=${TESSERA_LSAN:-0}:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== unit tests (sanitizers) =="
for t in build-asan/tests/unit/test_*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    name=$(basename "$t")
    out="$logdir/$name.out"
    timeout 600 "$t" >"$out" 2>"$logdir/$name.err"
    rc=$?
    if [ "$rc" -eq 77 ] && [ -x "build/tests/unit/$name" ]; then
        # exit 77: the test cannot run under the sanitizers (e.g. it measures
        # memory); run it from the optimized build instead.
        timeout 600 "build/tests/unit/$name" >"$out" 2>"$logdir/$name.err"
        rc=$?
    fi
    line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")
        f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")
        # A crash after the summary still counts as a failure.
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    else
        p=0; f=1; line="$name: crashed or timed out (exit $rc)"
    fi
    echo "$line"
    if [ "$f" -ne 0 ]; then
        grep -E 'FAIL|not ok|ERROR|runtime error' "$logdir/$name.err" | head -n 20
        tail -n 20 "$logdir/$name.err"
    fi
    passed=$((passed + p)); failed=$((failed + f))
done

run_bats() {  # run_bats BUILD_DIR FILES...
    local build=$1; shift
    local tap="$logdir/bats.$(basename "$build").$RANDOM.tap"
    TESSERA_BUILD="$top/$build" timeout 3000 bats --tap "$@" >"$tap" 2>&1
    cat "$tap"
    local p f
    p=$(grep -cE '^ok [0-9]+' "$tap")
    f=$(grep -cE '^not ok [0-9]+' "$tap")
    local planned
    planned=$(sed -nE 's/^1\.\.([0-9]+)$/\1/p' "$tap" | head -n 1)
    # Tests that never reported (bats itself died) count as failures.
    if [ -n "$planned" ] && [ $((p + f)) -lt "$planned" ]; then f=$((planned - p)); fi
    [ -z "$planned" ] && [ $((p + f)) -eq 0 ] && f=1
    passed=$((passed + p)); failed=$((failed + f))
}

echo "== end-to-end tests (bats) =="
mapfile -t bats_files < <(ls tests/bats/*.bats 2>/dev/null)
if [ ${#bats_files[@]} -gt 0 ]; then
    run_bats build "${bats_files[@]}"
fi
if [ -f tests/bats/bad_input.bats ]; then
    # Bad input, and the mount's creates ahead of the server and inline
    # data (threads, buffers changing hands), again under the sanitizers.
    echo "== bad input and small files under sanitizers =="
    run_bats build-asan tests/bats/bad_input.bats tests/bats/mount_small.bats
fi

rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
