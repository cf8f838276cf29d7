#!/usr/bin/env bats
# End to end on a real local cluster: 3-way replicated chunks placed by
# hashing, reads that survive a dead chunkserver, metadata that survives
# kill -9, and the CLI's file commands.

load helpers

setup() { start_cluster; }
teardown() { stop_cluster; }

@test "put of a 200 MiB file in 16 MiB chunks: 13 chunks, each on 3 distinct servers, read back identical" {
    head -c $((200 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/big"
    run "$TESSERA" put "$BATS_TEST_TMPDIR/big" /big
    [ "$status" -eq 0 ] || { echo "$output"; false; }

    "$TESSERA" admin chunks /big --json >"$BATS_TEST_TMPDIR/chunks.json"
    [ "$(jq '.chunks | length' "$BATS_TEST_TMPDIR/chunks.json")" -eq 13 ]
    [ "$(jq '.size' "$BATS_TEST_TMPDIR/chunks.json")" -eq $((200 * 1024 * 1024)) ]
    # every chunk lists 3 distinct servers
    [ "$(jq '[.chunks[] | (.replicas | unique | length)] | all(. == 3)' "$BATS_TEST_TMPDIR/chunks.json")" = true ]
    # and the chunk files really are in 3 different data directories
    for id in $(jq -r '.chunks[].id' "$BATS_TEST_TMPDIR/chunks.json"); do
        holders=$(find "$CLUSTER" -name "$id.chunk" -path '*/cs-*' | sed -E 's#.*/(cs-[0-9]+)/.*#\1#' | sort -u | wc -l)
        [ "$holders" -eq 3 ] || { echo "chunk $id is in $holders data dirs"; false; }
        expected=$(jq -r --arg id "$id" '.chunks[] | select(.id == $id) | .replicas | sort | join(" ")' "$BATS_TEST_TMPDIR/chunks.json")
        actual=$(find "$CLUSTER" -name "$id.chunk" -path '*/cs-*' | sed -E 's#.*/(cs-[0-9]+)/.*#\1#' | sort -u | tr '\n' ' ' | sed 's/ $//')
        [ "$expected" = "$actual" ] || { echo "chunk $id: metadata says [$expected], disks say [$actual]"; false; }
    done

    "$TESSERA" get /big "$BATS_TEST_TMPDIR/big.out"
    cmp "$BATS_TEST_TMPDIR/big" "$BATS_TEST_TMPDIR/big.out"
}

@test "a file still reads back correctly after kill -9 of one chunkserver" {
    head -c $((40 * 1024 * 1024 + 12345)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    victim=$(daemon_pid cs-2)
    kill -9 "$victim"
    wait_until 10 bash -c "! kill -0 $victim"
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/f.out"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/f.out"
    # and the metadata server notices the death
    wait_until 15 bash -c "[ \"\$(\"$TESSERA\" admin status --json | jq -r '.servers[] | select(.id==\"cs-2\") | .state')\" = down ]"
    [ "$("$TESSERA" admin status --json | jq '.under_replicated')" -ge 3 ]
}

@test "every acknowledged file survives kill -9 and restart of the metadata server" {
    "$TESSERA" mkdir /d
    for i in 1 2 3 4 5; do
        head -c $((i * 300000)) /dev/urandom >"$BATS_TEST_TMPDIR/f$i"
        "$TESSERA" put "$BATS_TEST_TMPDIR/f$i" "/d/f$i"
    done
    "$TESSERA" mv /d/f5 /d/renamed
    "$TESSERA" rm /d/f4
    meta=$(daemon_pid meta-1)
    kill -9 "$meta"
    wait_until 10 bash -c "! kill -0 $meta"
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(daemon_pid meta-1)" != "$meta" ]
    for i in 1 2 3; do
        "$TESSERA" get "/d/f$i" "$BATS_TEST_TMPDIR/out$i"
        cmp "$BATS_TEST_TMPDIR/f$i" "$BATS_TEST_TMPDIR/out$i"
    done
    "$TESSERA" get /d/renamed "$BATS_TEST_TMPDIR/out5"
    cmp "$BATS_TEST_TMPDIR/f5" "$BATS_TEST_TMPDIR/out5"
    run "$TESSERA" stat /d/f4
    [ "$status" -ne 0 ]
    [[ "$output" == *"o such"* ]]
}

@test "a put with fewer than 3 live chunkservers fails clearly, and succeeds with --replicas 2" {
    victim=$(daemon_pid cs-3)
    kill -9 "$victim"
    wait_until 15 bash -c "[ \"\$(\"$TESSERA\" admin status --json | jq -r '.servers[] | select(.id==\"cs-3\") | .state')\" = down ]"
    head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/small"
    run "$TESSERA" put "$BATS_TEST_TMPDIR/small" /small
    [ "$status" -ne 0 ]
    [[ "$output" == *"3 replicas"* ]]
    [[ "$output" == *"--replicas"* ]]
    run "$TESSERA" stat /small
    [ "$status" -ne 0 ] || [ "$(jq -r .size <<<"$("$TESSERA" stat --json /small 2>/dev/null || echo '{"size":0}')")" -eq 0 ]
    "$TESSERA" put --replicas 2 "$BATS_TEST_TMPDIR/small" /small2
    [ "$("$TESSERA" admin chunks /small2 --json | jq '.chunks[0].replicas | unique | length')" -eq 2 ]
    "$TESSERA" cat /small2 | cmp - "$BATS_TEST_TMPDIR/small"
}

@test "file commands: mkdir, ls, stat, cat, mv, rm, and their errors" {
    "$TESSERA" mkdir -p /a/b/c
    echo hello >"$BATS_TEST_TMPDIR/h"
    "$TESSERA" put "$BATS_TEST_TMPDIR/h" /a/b/c/h.txt
    run "$TESSERA" ls /a/b/c
    [ "$status" -eq 0 ]
    [[ "$output" == *"h.txt"* ]]
    [ "$("$TESSERA" cat /a/b/c/h.txt)" = hello ]
    "$TESSERA" mv /a/b/c/h.txt /a/h2.txt
    run "$TESSERA" cat /a/b/c/h.txt
    [ "$status" -ne 0 ]
    [ "$("$TESSERA" cat /a/h2.txt)" = hello ]
    run "$TESSERA" put "$BATS_TEST_TMPDIR/h" /nodir/x
    [ "$status" -ne 0 ]
    [[ "$output" == *"nodir"* ]]
    run "$TESSERA" rm /a
    [ "$status" -ne 0 ]
    "$TESSERA" rm -r /a
    run "$TESSERA" ls /
    [[ "$output" != *"a"* ]] || [ -z "$(echo "$output" | grep -w a)" ]
    run "$TESSERA" mkdir /x/y/z
    [ "$status" -ne 0 ]
}

@test "--help works for every command" {
    for cmd in "" "ls" "stat" "mkdir" "put" "get" "cat" "rm" "mv" "admin" "admin status" "admin chunks" "local" "local up" "local down" "local status"; do
        run "$TESSERA" $cmd --help
        [ "$status" -eq 0 ] || { echo "tessera $cmd --help exited $status"; false; }
        [[ "$output" == *[Uu]sage* ]] || { echo "tessera $cmd --help: no usage: $output"; false; }
    done
    run tessera-meta --help
    [ "$status" -eq 0 ]
    run tessera-chunk --help
    [ "$status" -eq 0 ]
}

@test "local status, restart of a killed daemon, and growing the cluster" {
    run "$TESSERA" local status --dir "$CLUSTER"
    [ "$status" -eq 0 ]
    [[ "$output" == *"cs-1"* && "$output" == *"meta-1"* ]]
    old=$(daemon_pid cs-1)
    addr=$(server_address cs-1)
    kill -9 "$old"
    wait_until 10 bash -c "! kill -0 $old"
    run "$TESSERA" local up --dir "$CLUSTER" --chunkservers 4
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(daemon_pid cs-1)" != "$old" ]
    [ "$(server_address cs-1)" = "$addr" ]
    wait_until 10 bash -c "[ \"\$(\"$TESSERA\" admin status --json | jq '[.servers[] | select(.state==\"up\")] | length')\" -eq 4 ]"
}

@test "the metadata server runs with one huge-page malloc arena (re-executed, same PID), unless TESSERA_MALLOC_TUNE=0" {
    pid=$(daemon_pid meta-1)
    tr '\0' '\n' </proc/"$pid"/environ | grep -q '^GLIBC_TUNABLES=.*glibc.malloc.hugetlb=1' ||
        { echo "meta-1 ($pid) environment:"; tr '\0' '\n' </proc/"$pid"/environ | grep GLIBC; false; }
    [ "$(readlink /proc/"$pid"/exe)" = "$(readlink -f "$BUILD/tessera-meta")" ]
    # Named after its binary (ps, pgrep, top), not after /proc/self/exe.
    [ "$(cat /proc/"$pid"/comm)" = tessera-meta ] || { echo "comm: $(cat /proc/"$pid"/comm)"; false; }
    # Tuning off: restarted without it, the server is not re-executed.
    kill -9 "$pid"
    wait_until 10 bash -c "! kill -0 $pid"
    run env -u GLIBC_TUNABLES TESSERA_MALLOC_TUNE=0 "$TESSERA" local up --dir "$CLUSTER" --chunkservers 3
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    pid=$(daemon_pid meta-1)
    ! tr '\0' '\n' </proc/"$pid"/environ | grep -q '^GLIBC_TUNABLES='
    "$TESSERA" mkdir /after-restart
}
