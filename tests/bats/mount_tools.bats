#!/usr/bin/env bats
# Real tools on the FUSE mount (cp -a, diff -r, rsync, tar, sha256sum, sort,
# sed -i, git), two mounts of one cluster, the random exerciser, and a
# chunkserver killed during a large read and a large write.

load helpers

FSOPS=$BATS_TEST_DIRNAME/fsops.py

setup() { start_mounted_cluster; }
teardown() { stop_cluster; }

# A source tree: the kernel's UAPI headers (~800 entries, many small files).
TREE=/usr/include/linux

@test "cp -a of a source tree in, diff -r back; tar c | tar x round trip" {
    cp -a "$TREE" "$MNT/tree"
    diff -r "$TREE" "$MNT/tree"
    # modes, times and symlinks came along
    [ "$(cd "$TREE" && find . -printf '%y %m %TY%Tm%Td%TH%TM%TS %p\n' | sort | md5sum)" = \
      "$(cd "$MNT/tree" && find . -printf '%y %m %TY%Tm%Td%TH%TM%TS %p\n' | sort | md5sum)" ]
    mkdir "$MNT/untar"
    tar -C "$TREE" -cf - . | tar -C "$MNT/untar" -xf -
    diff -r "$TREE" "$MNT/untar"
    tar -C "$MNT/untar" -cf - . | tar -C "$BATS_TEST_TMPDIR" --one-top-level=back -xf -
    diff -r "$TREE" "$BATS_TEST_TMPDIR/back"
}

@test "rsync -a in, then rsync -a --checksum again copies nothing" {
    rsync -a "$TREE/" "$MNT/r/"
    diff -r "$TREE" "$MNT/r"
    run rsync -a --checksum --itemize-changes "$TREE/" "$MNT/r/"
    [ "$status" -eq 0 ]
    [ -z "$output" ] || { echo "rsync copied again: $output"; false; }
}

@test "sha256sum of a 256 MiB file is the same inside and outside the mount" {
    head -c $((256 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/big"
    cp "$BATS_TEST_TMPDIR/big" "$MNT/big"
    outside=$(sha256sum <"$BATS_TEST_TMPDIR/big" | cut -d' ' -f1)
    inside=$(sha256sum <"$MNT/big" | cut -d' ' -f1)
    [ "$inside" = "$outside" ]
    # and cold: through a second mount that never saw the data
    m2=$BATS_TEST_TMPDIR/m2
    mount_extra "$m2" -o "log=$BATS_TEST_TMPDIR/m2.log"
    [ "$(sha256sum <"$m2/big" | cut -d' ' -f1)" = "$outside" ]
}

@test "sort reads from and writes to the mount; sed -i edits in place" {
    python3 -c '
import random
r = random.Random(7)
with open("'"$MNT"'/words", "w") as f:
    for i in range(400000):
        f.write("%08x %d\n" % (r.getrandbits(32), i))'
    sort "$MNT/words" -o "$MNT/sorted"
    sort "$MNT/words" | cmp - "$MNT/sorted"
    sort -c "$MNT/sorted"
    printf 'alpha\nbeta\ngamma\n' >"$MNT/conf"
    sed -i 's/beta/BETA/' "$MNT/conf"
    [ "$(cat "$MNT/conf" | tr '\n' ' ')" = "alpha BETA gamma " ]
    sed -i '1d' "$MNT/conf"
    [ "$(cat "$MNT/conf" | tr '\n' ' ')" = "BETA gamma " ]
}

@test "git init, add, commit, log, status and checkout inside the mount" {
    cd "$MNT"
    mkdir repo && cd repo
    git init -q
    git config user.email t@example.com
    git config user.name tester
    cp -r "$TREE/netfilter" .
    echo readme >README
    git add .
    git commit -q -m first
    echo more >>README
    git commit -q -am second
    [ "$(git log --oneline | wc -l)" -eq 2 ]
    [ -z "$(git status --porcelain)" ]
    git checkout -q HEAD~1
    [ "$(cat README)" = readme ]
    git fsck --no-progress
}

@test "two mounts of one cluster see each other's closed files" {
    m2=$BATS_TEST_TMPDIR/m2
    mount_extra "$m2" -o "log=$BATS_TEST_TMPDIR/m2.log"
    echo from-one >"$MNT/a"
    [ "$(cat "$m2/a")" = from-one ]
    echo from-two >"$m2/b"
    [ "$(cat "$MNT/b")" = from-two ]
    # a file rewritten and grown on one is seen whole by the next open on
    # the other, even though the other had it cached
    head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/v1"
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/v2"
    cp "$BATS_TEST_TMPDIR/v1" "$MNT/c"
    cmp "$m2/c" "$BATS_TEST_TMPDIR/v1"
    cp "$BATS_TEST_TMPDIR/v2" "$MNT/c"
    cmp "$m2/c" "$BATS_TEST_TMPDIR/v2"
    echo appended >>"$m2/c"
    cat "$BATS_TEST_TMPDIR/v2" <(echo appended) | cmp - "$MNT/c"
    # removals and renames show after the entry timeout (1 s)
    mv "$MNT/a" "$MNT/a2"
    rm "$MNT/b"
    sleep 1.2
    [ ! -e "$m2/a" ] && [ ! -e "$m2/b" ] && [ "$(cat "$m2/a2")" = from-one ]
}

@test "random read/write/truncate exerciser (fixed seeds) agrees with an in-memory model" {
    for seed in 11 12 13; do
        python3 "$BATS_TEST_DIRNAME/mount_exerciser.py" "$MNT" "$seed" 1500 4
    done
}

@test "kill -9 of a chunkserver during a large read and during a large write: both succeed" {
    # Four servers: with one dead, three replicas still have a place.
    "$TESSERA" local up --dir "$CLUSTER" --chunkservers 4 >/dev/null
    head -c $((96 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/src"
    "$TESSERA" put "$BATS_TEST_TMPDIR/src" /r
    # read: the reader has opened the file when cs-2 dies
    python3 "$FSOPS" hold "$MNT/r" "$BATS_TEST_TMPDIR/ready" "$BATS_TEST_TMPDIR/go" >"$BATS_TEST_TMPDIR/read" &
    reader=$!
    track_pid "$reader"
    wait_until 10 test -e "$BATS_TEST_TMPDIR/ready"
    victim=$(daemon_pid cs-2)
    kill -9 "$victim"
    wait_until 10 bash -c "! kill -0 $victim"
    touch "$BATS_TEST_TMPDIR/go"
    wait "$reader"
    cmp "$BATS_TEST_TMPDIR/read" "$BATS_TEST_TMPDIR/src"
    # write: cs-2 back, then cs-3 dies when a quarter is written
    "$TESSERA" local up --dir "$CLUSTER" >/dev/null
    python3 "$FSOPS" slowcopy "$BATS_TEST_TMPDIR/src" "$MNT/w" "$BATS_TEST_TMPDIR/wready" "$BATS_TEST_TMPDIR/wgo" &
    writer=$!
    track_pid "$writer"
    wait_until 10 test -e "$BATS_TEST_TMPDIR/wready"
    victim=$(daemon_pid cs-3)
    kill -9 "$victim"
    wait_until 10 bash -c "! kill -0 $victim"
    touch "$BATS_TEST_TMPDIR/wgo"
    wait "$writer" || { grep -E "WARN|ERROR" "$CLUSTER/mount.log" | tail -n 20; false; }
    cmp "$MNT/w" "$BATS_TEST_TMPDIR/src"
    "$TESSERA" get /w "$BATS_TEST_TMPDIR/w.out"
    cmp "$BATS_TEST_TMPDIR/w.out" "$BATS_TEST_TMPDIR/src"
}
