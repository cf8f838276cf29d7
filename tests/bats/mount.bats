#!/usr/bin/env bats
# The FUSE mount, operation by operation, with the error cases: a real
# cluster mounted by `tessera local up` at $MNT, driven by ordinary
# commands and by tests/bats/fsops.py for the calls the shell lacks.

load helpers

FSOPS=$BATS_TEST_DIRNAME/fsops.py

setup() { start_mounted_cluster; }
teardown() { stop_cluster; }

err() { python3 "$FSOPS" errno "$@"; }

@test "local up mounts DIR/mnt, status shows it, up again keeps it, down unmounts, --no-mount skips" {
    run "$TESSERA" local status --dir "$CLUSTER"
    [[ "$output" == *"$MNT mounted"* ]] || { echo "$output"; false; }
    grep -q 'fuse.tessera' <(awk -v m="$MNT" '$2 == m' /proc/self/mounts)
    [ -s "$CLUSTER/mount.log" ]
    pid=$(cat "$CLUSTER/mount.pid")
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ]
    [[ "$output" == *"already mounted"* ]]
    [ "$(cat "$CLUSTER/mount.pid")" = "$pid" ]
    echo data >"$MNT/kept"
    run "$TESSERA" local down --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"unmounted $MNT"* ]]
    ! is_mounted "$MNT"
    ! kill -0 "$pid" 2>/dev/null
    run "$TESSERA" local up --dir "$CLUSTER" --no-mount
    [ "$status" -eq 0 ]
    ! is_mounted "$MNT"
    [ "$("$TESSERA" cat /kept)" = data ]
    run "$TESSERA" local status --dir "$CLUSTER"
    [[ "$output" == *"not mounted"* ]]
    "$TESSERA" local up --dir "$CLUSTER" >/dev/null
    is_mounted "$MNT"
    [ "$(cat "$MNT/kept")" = data ]
}

@test "a mount whose daemon was killed is cleared and remounted by local up" {
    pid=$(cat "$CLUSTER/mount.pid")
    kill -9 "$pid"
    wait_until 10 bash -c "! kill -0 $pid"
    run "$TESSERA" local status --dir "$CLUSTER"
    [[ "$output" == *dead* ]] || { echo "$output"; false; }
    run "$TESSERA" local up --dir "$CLUSTER"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    echo again >"$MNT/x"
    [ "$(cat "$MNT/x")" = again ]
}

@test "tessera-mount: usage errors, and an unreachable cluster fails clearly without mounting" {
    run "$BUILD/tessera-mount"
    [ "$status" -ne 0 ]
    [[ "$output" == *"expected CONF and MOUNTPOINT"* ]]
    run "$BUILD/tessera-mount" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"attr_timeout"* ]]
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "meta = 127.0.0.1:$port" >"$BATS_TEST_TMPDIR/bad.conf"
    mkdir -p "$BATS_TEST_TMPDIR/m2"
    track_mount "$BATS_TEST_TMPDIR/m2"
    run timeout 60 "$BUILD/tessera-mount" "$BATS_TEST_TMPDIR/bad.conf" "$BATS_TEST_TMPDIR/m2"
    [ "$status" -ne 0 ]
    [[ "$output" == *"cannot reach the metadata service"* ]] || { echo "$output"; false; }
    ! is_mounted "$BATS_TEST_TMPDIR/m2"
    echo "bogus_key = 1" >>"$BATS_TEST_TMPDIR/bad.conf"
    run "$BUILD/tessera-mount" "$BATS_TEST_TMPDIR/bad.conf" "$BATS_TEST_TMPDIR/m2"
    [ "$status" -ne 0 ]
    [[ "$output" == *"bogus_key"* ]]
    run "$BUILD/tessera-mount" -o no_such_option "$CLUSTER/client.conf" "$BATS_TEST_TMPDIR/m2"
    [ "$status" -ne 0 ]
    ! is_mounted "$BATS_TEST_TMPDIR/m2"
}

@test "mount -t fuse.tessera (the mount.fuse3 helper convention) mounts, fusermount3 -u unmounts" {
    m2=$BATS_TEST_TMPDIR/m2
    mkdir -p "$m2"
    track_mount "$m2"
    # What `mount -t fuse.tessera CONF DIR -o OPTS` runs (mount(8) resets
    # PATH to the system's, where an installed `tessera` lives).
    run mount.fuse3 "$CLUSTER/client.conf" "$m2" -t tessera -o "log=$BATS_TEST_TMPDIR/m2.log,attr_timeout=0.5"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    is_mounted "$m2"
    echo via-helper >"$m2/h"
    [ "$(cat "$MNT/h")" = via-helper ]
    fusermount3 -u "$m2"
    ! is_mounted "$m2"
    grep -q 'attr_timeout 0.5 s' "$BATS_TEST_TMPDIR/m2.log"
}

@test "files and directories: create, read, write, mkdir, readdir, rmdir, unlink, with their errors" {
    cd "$MNT"
    echo hello >f
    [ "$(cat f)" = hello ]
    [ "$(stat -c %s f)" = 6 ]
    mkdir -p a/b/c
    touch a/b/c/x a/y
    [ "$(ls a | tr '\n' ' ')" = "b y " ]
    [ "$(find a | sort | tr '\n' ' ')" = "a a/b a/b/c a/b/c/x a/y " ]
    # ls -l uses readdirplus; every entry comes with its attributes
    [ "$(ls -la a | wc -l)" -eq 5 ]
    [ "$(err mkdir a)" = EEXIST ]
    [ "$(err rmdir a)" = ENOTEMPTY ]
    [ "$(err rmdir a/y)" = ENOTDIR ]
    [ "$(err unlink a)" = EISDIR ]
    [ "$(err unlink nope)" = ENOENT ]
    [ "$(err open-read nope)" = ENOENT ]
    [ "$(err open-dir-write a)" = EISDIR ]
    [ "$(err mkdir f/sub)" = ENOTDIR ]
    [ "$(err open-excl f)" = EEXIST ]
    [ "$(err open-excl newfile)" = OK ]
    rm a/b/c/x
    rmdir a/b/c
    [ ! -e a/b/c ]
    rm -r a
    [ ! -e a ]
    # directory nlink follows subdirectories
    mkdir -p n/s1 n/s2
    [ "$(stat -c %h n)" = 4 ]
    # names: 255 bytes fine, 256 ENAMETOOLONG
    long=$(printf 'x%.0s' $(seq 255))
    touch "$long"
    [ -e "$long" ]
    [ "$(err create "${long}y")" = ENAMETOOLONG ]
    [ "$(err mkdir "${long}y")" = ENAMETOOLONG ]
}

@test "rename: replace, NOREPLACE, EXCHANGE, directories, into itself, type mismatches" {
    cd "$MNT"
    echo 1 >a; echo 2 >b
    mv a b
    [ ! -e a ] && [ "$(cat b)" = 1 ]
    echo 3 >c
    [ "$(err rename2 c b noreplace)" = EEXIST ]
    [ "$(cat b)" = 1 ] && [ "$(cat c)" = 3 ]
    [ "$(err rename2 c b exchange)" = OK ]
    [ "$(cat b)" = 3 ] && [ "$(cat c)" = 1 ]
    [ "$(err rename2 c missing exchange)" = ENOENT ]
    mkdir -p d1/inner d2
    echo in >d1/inner/f
    mv d1 d2/
    [ "$(cat d2/d1/inner/f)" = in ]
    [ "$(stat -c %h d2)" = 3 ]
    [ "$(err rename d2 d2/d1/inner/d2)" = EINVAL ]
    mkdir emptydir full
    touch full/x
    [ "$(err rename b emptydir)" = EISDIR ]
    [ "$(err rename emptydir b)" = ENOTDIR ]
    [ "$(err rename emptydir full)" = ENOTEMPTY ]
    [ "$(err rename full emptydir)" = OK ]
    [ -e emptydir/x ] && [ ! -e full ]
    [ "$(err rename nothing x)" = ENOENT ]
}

@test "symlinks, readlink and hard links keep nlink right" {
    cd "$MNT"
    echo target >t
    ln -s t s
    ln -s /no/such/place dangling
    [ "$(readlink s)" = t ]
    [ "$(cat s)" = target ]
    [ "$(readlink dangling)" = /no/such/place ]
    [ "$(stat -c %F s)" = "symbolic link" ]
    [ "$(err symlink t s)" = EEXIST ]
    ln t h1
    ln h1 h2
    [ "$(stat -c %h t)" = 3 ]
    [ "$(stat -c %i t)" = "$(stat -c %i h2)" ]
    echo changed >h2
    [ "$(cat t)" = changed ]
    rm h1
    [ "$(stat -c %h t)" = 2 ]
    rm t
    [ "$(stat -c %h h2)" = 1 ]
    [ "$(cat h2)" = changed ]
    mkdir dir
    [ "$(err link dir dirlink)" = EPERM ]
}

@test "chmod, chown, utimensat with UTIME_NOW and UTIME_OMIT, and ctime" {
    cd "$MNT"
    echo x >f
    chmod 0751 f
    [ "$(stat -c %a f)" = 751 ]
    chown 1234:5678 f
    [ "$(stat -c %u:%g f)" = 1234:5678 ]
    touch -d '2001-02-03 04:05:06.123456789 UTC' f
    [ "$(stat -c %X f)" = 981173106 ] && [ "$(stat -c %Y f)" = 981173106 ]
    [[ "$(stat -c %y f)" == *"04:05:06.123456789"* ]]
    # only mtime (atime UTIME_OMIT)
    touch -m -d '2010-01-01 00:00:00 UTC' f
    [ "$(stat -c %Y f)" = 1262304000 ] && [ "$(stat -c %X f)" = 981173106 ]
    # only atime to now (mtime UTIME_OMIT)
    before=$(date +%s)
    touch -a f
    [ "$(stat -c %X f)" -ge "$before" ] && [ "$(stat -c %Y f)" = 1262304000 ]
    # ctime moves on a change
    c1=$(stat -c %Z f)
    sleep 1.1
    chmod 600 f
    [ "$(stat -c %Z f)" -gt "$c1" ]
}

@test "truncate and ftruncate: shrink, grow with holes that read as zeros; O_TRUNC, O_APPEND" {
    cd "$MNT"
    head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/src"
    cp "$BATS_TEST_TMPDIR/src" f
    truncate -s 1000 f
    [ "$(stat -c %s f)" = 1000 ]
    cmp f <(head -c 1000 "$BATS_TEST_TMPDIR/src")
    truncate -s 5000 f
    [ "$(stat -c %s f)" = 5000 ]
    cmp <(tail -c 4000 f) <(head -c 4000 /dev/zero)
    # ftruncate on an open descriptor, then write past the end: a hole
    python3 -c '
import os
fd = os.open("f", os.O_RDWR)
os.ftruncate(fd, 10)
os.pwrite(fd, b"END", 1 << 20)
os.close(fd)'
    [ "$(stat -c %s f)" = $(( (1 << 20) + 3 )) ]
    cmp <(head -c 10 f) <(head -c 10 "$BATS_TEST_TMPDIR/src")
    cmp <(tail -c +11 f | head -c $(( (1 << 20) - 10 ))) <(head -c $(( (1 << 20) - 10 )) /dev/zero)
    [ "$(tail -c 3 f)" = END ]
    # O_TRUNC
    echo short >f
    [ "$(cat f)" = short ]
    # O_APPEND, also from two descriptors
    echo one >g
    echo two >>g
    exec 5>>g
    echo three >&5
    echo four >>g
    echo five >&5
    exec 5>&-
    [ "$(cat g | tr '\n' ' ')" = "one two three four five " ]
    [ "$(err truncate nope 10)" = ENOENT ]
}

@test "overwrites in the middle are copy-on-write: other bytes stay, old chunks lose their reference" {
    cd "$MNT"
    head -c $((40 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/src"
    cp "$BATS_TEST_TMPDIR/src" big
    chunks_before=$("$TESSERA" admin status --json | jq .chunks)
    printf 'PATCH' | dd of=big bs=1 seek=$((20 * 1024 * 1024)) conv=notrunc status=none
    printf 'PATCH' | dd of="$BATS_TEST_TMPDIR/src" bs=1 seek=$((20 * 1024 * 1024)) conv=notrunc status=none
    cmp big "$BATS_TEST_TMPDIR/src"
    # through a fresh mount view too (after close: committed)
    "$TESSERA" get /big "$BATS_TEST_TMPDIR/out"
    cmp "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/src"
    # the patched 16 MiB chunk is now referenced in two pieces plus a new one
    [ "$("$TESSERA" admin chunks /big --json | jq '.chunks | length')" -eq 5 ]
    # overwrite everything: no chunk of the old content stays referenced
    head -c 1000 /dev/urandom >"$BATS_TEST_TMPDIR/small"
    cp "$BATS_TEST_TMPDIR/small" big
    cmp big "$BATS_TEST_TMPDIR/small"
    [ "$("$TESSERA" admin status --json | jq .chunks)" -le $((chunks_before - 2)) ]
}

@test "an unlinked file stays readable through its open descriptor until closed" {
    cd "$MNT"
    head -c $((3 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/src"
    cp "$BATS_TEST_TMPDIR/src" f
    python3 "$FSOPS" hold f "$BATS_TEST_TMPDIR/ready" "$BATS_TEST_TMPDIR/go" >"$BATS_TEST_TMPDIR/out" &
    track_pid $!
    holder=$!
    wait_until 10 test -e "$BATS_TEST_TMPDIR/ready"
    rm f
    [ ! -e f ]
    echo replacement >f2
    mv f2 f
    touch "$BATS_TEST_TMPDIR/go"
    wait "$holder"
    cmp "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/src"
    [ "$(cat f)" = replacement ]
}

@test "xattrs: set, get, list, remove, CREATE/REPLACE, errors; stored in metadata" {
    cd "$MNT"
    echo x >f
    [ "$(err setxattr f user.color blue)" = OK ]
    [ "$(err setxattr f user.color red create)" = EEXIST ]
    [ "$(err setxattr f user.size big replace)" = ENODATA ]
    [ "$(err setxattr f user.color green replace)" = OK ]
    [ "$(python3 -c 'import os; print(os.getxattr("f", "user.color").decode())')" = green ]
    python3 -c 'import os; os.setxattr("f", "user.bin", bytes(range(256)))'
    [ "$(python3 -c 'import os; print(os.getxattr("f", "user.bin") == bytes(range(256)))')" = True ]
    [ "$(python3 -c 'import os; print(",".join(sorted(os.listxattr("f"))))')" = user.bin,user.color ]
    [ "$(err getxattr f user.none)" = ENODATA ]
    [ "$(err removexattr f user.color)" = OK ]
    [ "$(err removexattr f user.color)" = ENODATA ]
    [ "$(err getxattr nope user.x)" = ENOENT ]
    # on directories too, and they survive a remount (metadata, not memory)
    mkdir d
    [ "$(err setxattr d user.tag dirvalue)" = OK ]
    "$TESSERA" local down --dir "$CLUSTER" >/dev/null
    "$TESSERA" local up --dir "$CLUSTER" >/dev/null
    [ "$(python3 -c 'import os; print(os.getxattr("'"$MNT"'/d", "user.tag").decode())')" = dirvalue ]
    [ "$(python3 -c 'import os; print(",".join(os.listxattr("'"$MNT"'/f")))')" = user.bin ]
}

@test "statfs reports the cluster's capacity" {
    run df -B1 --output=size,avail "$MNT"
    [ "$status" -eq 0 ]
    size=$(echo "$output" | tail -n 1 | awk '{print $1}')
    [ "$size" -gt 0 ]
    [ "$(stat -f -c %l "$MNT")" = 255 ]
}

@test "permissions with default_permissions: owner of new files, EACCES, EPERM, sticky and setgid directories" {
    m2=$(public_dir)
    mount_extra "$m2" -o "allow_other,log=$BATS_TEST_TMPDIR/m2.log"
    as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
    chmod 0777 "$m2"
    # a new file belongs to its creator
    as 4001 touch "$m2/mine"
    [ "$(stat -c %u:%g "$m2/mine")" = 4001:4001 ]
    as 4001 mkdir "$m2/mydir"
    # EACCES: another user cannot write into 0755 dir or read a 0600 file
    echo secret >"$m2/secret"
    chmod 600 "$m2/secret"
    run as 4002 cat "$m2/secret"
    [ "$status" -ne 0 ] && [[ "$output" == *"ermission denied"* ]]
    run as 4002 touch "$m2/mydir/intruder"
    [ "$status" -ne 0 ] && [[ "$output" == *"ermission denied"* ]]
    # EPERM: chmod of someone else's file, chown by a non-root user
    run as 4002 chmod 777 "$m2/mine"
    [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
    run as 4001 chown 4002 "$m2/mine"
    [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
    # sticky directory: others' entries cannot be removed or renamed
    mkdir "$m2/tmp"
    chmod 1777 "$m2/tmp"
    as 4001 touch "$m2/tmp/a"
    run as 4002 rm -f "$m2/tmp/a"
    [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
    run as 4002 mv "$m2/tmp/a" "$m2/tmp/b"
    [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
    [ -e "$m2/tmp/a" ]
    as 4001 rm "$m2/tmp/a"
    [ ! -e "$m2/tmp/a" ]
    # setgid directory: new entries take its group, subdirectories the bit
    mkdir "$m2/sg"
    chown 0:777 "$m2/sg"
    chmod 2777 "$m2/sg"
    as 4001 touch "$m2/sg/f"
    as 4001 mkdir "$m2/sg/sub"
    [ "$(stat -c %g "$m2/sg/f")" = 777 ]
    [ "$(stat -c %g "$m2/sg/sub")" = 777 ]
    [ "$(( 0$(stat -c %a "$m2/sg/sub") & 02000 ))" -ne 0 ]
}
