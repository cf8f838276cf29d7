#!/usr/bin/env bats
# Small files through the mount: data kept inline in the metadata (no chunk
# upload) and creates made ahead of the server (an O_TRUNC create answered
# at once, made on the server with its data at close).  Each behaviour is
# checked where a user would see it break: bytes, names, attributes, other
# mounts, failover of the metadata leader, restarts, and the request count.

load helpers

setup() { start_mounted_cluster; }
teardown() {
    stop_cluster
    assert_no_sanitizer_reports
}

status_json() { "$TESSERA" admin status --json; }
inline_chunks() { status_json | jq .inline_chunks; }
stored_chunks() { status_json | jq .chunks; }
chunk_files() { find "$CLUSTER"/cs-*/data/chunks -name '*.chunk' 2>/dev/null | wc -l; }

# requests COUNT_FILE LOG: the count of metadata requests a mount logged at exit
requests_logged() { sed -nE 's/.* ([0-9]+) metadata requests made.*/\1/p' "$1" | tail -n 1; }

@test "small files are kept inline: no chunk on any chunkserver, the same bytes on every mount, after a leader failover and a full restart" {
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src"
    python3 - "$src" <<'PY'
import os, sys
for i in range(50):
    with open(os.path.join(sys.argv[1], "f%02d" % i), "wb") as f:
        f.write(os.urandom(i * 1000 + 1))      # 1 B .. 49 KB
PY
    cp -r "$src" "$MNT/small"
    diff -r "$src" "$MNT/small"
    [ "$(inline_chunks)" -eq 50 ]
    [ "$(stored_chunks)" -eq 0 ]
    [ "$(chunk_files)" -eq 0 ]
    run "$TESSERA" admin fsck /small
    [ "$status" -eq 0 ]
    [[ "$output" == *"50 inline chunks"* ]]
    [[ "$output" == *"healthy"* ]]
    # The CLI reads them from the layout alone and says where they are.
    "$TESSERA" cat /small/f49 | cmp - "$src/f49"
    run "$TESSERA" admin chunks /small/f49
    [[ "$output" == *"(inline: kept in the metadata)"* ]]
    [ "$("$TESSERA" admin chunks /small/f49 --json | jq '.chunks[0].inline')" = true ]
    mount_extra "$BATS_TEST_TMPDIR/m2"
    diff -r "$src" "$BATS_TEST_TMPDIR/m2/small"

    # The metadata leader dies: the followers have every byte.
    local leader
    leader=$("$TESSERA" admin raft status --json | jq -r '.servers[] | select(.role == "leader") | .id')
    kill -9 "$(daemon_pid "$leader")"
    wait_until 30 "$TESSERA" stat /small/f00
    diff -r "$src" "$MNT/small"
    echo "after failover" >"$MNT/new"
    [ "$(cat "$BATS_TEST_TMPDIR/m2/new")" = "after failover" ]

    # Every server restarted: log replay (and snapshots) bring them back.
    fusermount3 -u "$BATS_TEST_TMPDIR/m2"
    "$TESSERA" local down --dir "$CLUSTER"
    "$TESSERA" local up --dir "$CLUSTER" >/dev/null
    wait_until 30 "$TESSERA" stat /new
    diff -r "$src" "$MNT/small"
    [ "$(cat "$MNT/new")" = "after failover" ]
}

@test "inline data past the limits: a file growing by appends moves on to chunks; overwrites, truncates and holes stay exact" {
    local exp=$BATS_TEST_TMPDIR/exp
    # 24 appends of 64 KiB: the first 16 end within 1 MiB (inline), the
    # rest are uploaded as chunks.
    python3 - "$MNT/log" "$exp" <<'PY'
import os, sys
data = os.urandom(24 * 65536)
for i in range(24):
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, data[i * 65536:(i + 1) * 65536])
    os.close(fd)
open(sys.argv[2], "wb").write(data)
PY
    cmp "$MNT/log" "$exp"
    [ "$(inline_chunks)" -eq 16 ]
    [ "$(stored_chunks)" -eq 8 ]
    # A write bigger than 64 KiB is never inline.
    head -c 70000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
    cp "$BATS_TEST_TMPDIR/big" "$MNT/big"
    [ "$(stored_chunks)" -eq 9 ]
    cmp "$MNT/big" "$BATS_TEST_TMPDIR/big"

    # Copy-on-write over inline data, a hole, shrink and grow.
    python3 - "$MNT/cow" <<'PY'
import os, sys
p = sys.argv[1]
model = bytearray(os.urandom(5000))
open(p, "wb").write(model)
with open(p, "r+b") as f:
    f.seek(1000); f.write(b"X" * 100); model[1000:1100] = b"X" * 100
    f.seek(9000); f.write(b"tail"); model += bytes(9000 - len(model)) + b"tail"
with open(p, "rb") as f:
    assert f.read() == bytes(model), "after overwrite and hole"
os.truncate(p, 3000); model = model[:3000]
os.truncate(p, 6000); model += bytes(3000)
with open(p, "rb") as f:
    assert f.read() == bytes(model), "after truncates"
PY
    mount_extra "$BATS_TEST_TMPDIR/m2"
    cmp "$MNT/cow" "$BATS_TEST_TMPDIR/m2/cow"
    [ "$(stat -c %s "$BATS_TEST_TMPDIR/m2/cow")" -eq 6000 ]
}

@test "a file created with O_TRUNC costs two metadata requests (lookup, create with its data); O_EXCL and create_ahead=0 three" {
    local m2=$BATS_TEST_TMPDIR/m2 m3=$BATS_TEST_TMPDIR/m3
    mount_extra "$m2" -o "log=$BATS_TEST_TMPDIR/m2.log"
    mount_extra "$m3" -o "log=$BATS_TEST_TMPDIR/m3.log,create_ahead=0"
    mkdir "$MNT/a" "$MNT/b" "$MNT/x"
    writer='import os, sys
flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if sys.argv[2] == "excl" else os.O_TRUNC)
for i in range(200):
    fd = os.open(os.path.join(sys.argv[1], "f%03d" % i), flags, 0o644)
    os.write(fd, b"x" * 4096)
    os.close(fd)'
    python3 -c "$writer" "$m2/a" trunc
    python3 -c "$writer" "$m3/b" trunc
    fusermount3 -u "$m3"
    wait_until 10 grep -q "metadata requests made" "$BATS_TEST_TMPDIR/m3.log"
    local n2 n3 nx
    n3=$(requests_logged "$BATS_TEST_TMPDIR/m3.log")
    # O_EXCL on m2 after its first count: written to another log below.
    fusermount3 -u "$m2"
    wait_until 10 grep -q "metadata requests made" "$BATS_TEST_TMPDIR/m2.log"
    n2=$(requests_logged "$BATS_TEST_TMPDIR/m2.log")
    mount_extra "$m2" -o "log=$BATS_TEST_TMPDIR/m2x.log"
    python3 -c "$writer" "$m2/x" excl
    fusermount3 -u "$m2"
    wait_until 10 grep -q "metadata requests made" "$BATS_TEST_TMPDIR/m2x.log"
    nx=$(requests_logged "$BATS_TEST_TMPDIR/m2x.log")
    echo "metadata requests for 200 files: O_TRUNC $n2, create_ahead=0 $n3, O_EXCL $nx"
    # 2 per file, 4 reservations of 64 numbers, the mount's start
    [ "$n2" -ge 400 ] && [ "$n2" -le 420 ]
    [ "$n3" -ge 600 ] && [ "$n3" -le 620 ]
    [ "$nx" -ge 600 ] && [ "$nx" -le 620 ]
    for d in a b x; do
        [ "$(ls "$MNT/$d" | wc -l)" -eq 200 ]
        [ "$(cat "$MNT/$d"/* | wc -c)" -eq $((200 * 4096)) ]
    done
}

@test "a file created ahead: this mount sees it at once, other mounts at close or within a second, and every operation on it before close works" {
    local m2=$BATS_TEST_TMPDIR/m2
    mount_extra "$m2"
    mkdir "$MNT/d"
    python3 - "$MNT/d" "$m2/d" <<'PY'
import errno, os, stat, sys, time
a, b = sys.argv[1], sys.argv[2]
def fresh(path):
    # the other mount caches names and attributes for 1 s: ask by listing
    return os.path.basename(path) in os.listdir(os.path.dirname(path))

# Held open: this mount sees name, size and mode at once.
fd = os.open(os.path.join(a, "held"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
os.write(fd, b"12345")
st = os.stat(os.path.join(a, "held"))
assert st.st_size == 5 and stat.S_IMODE(st.st_mode) == 0o640, st
# ... and the other mount within a second or so, open or not.
deadline = time.time() + 10
while not fresh(os.path.join(b, "held")):
    assert time.time() < deadline, "never showed on the other mount"
    time.sleep(0.05)
os.write(fd, b"678")
os.close(fd)
assert open(os.path.join(b, "held"), "rb").read() == b"12345678"

# Operations before the first close, each as on a local disk.
def ahead(name, data=b"abc"):
    fd = os.open(os.path.join(a, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    return fd
fd = ahead("ren")
os.rename(os.path.join(a, "ren"), os.path.join(a, "renamed"))
os.write(fd, b"def"); os.close(fd)
assert not os.path.exists(os.path.join(a, "ren"))
assert open(os.path.join(b, "renamed"), "rb").read() == b"abcdef"

fd = ahead("gone")
os.unlink(os.path.join(a, "gone"))
os.write(fd, b"more"); os.close(fd)
assert not os.path.exists(os.path.join(a, "gone")) and not fresh(os.path.join(b, "gone"))

fd = ahead("linked")
os.link(os.path.join(a, "linked"), os.path.join(a, "hard"))
os.close(fd)
assert os.stat(os.path.join(b, "hard")).st_nlink == 2
assert open(os.path.join(b, "hard"), "rb").read() == b"abc"

fd = ahead("attrs")
os.setxattr(os.path.join(a, "attrs"), "user.k", b"v")
os.chmod(os.path.join(a, "attrs"), 0o600)
os.utime(os.path.join(a, "attrs"), ns=(10**18, 10**18))
os.close(fd)
st = os.stat(os.path.join(b, "attrs"))
assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_mtime_ns == 10**18, st
assert os.getxattr(os.path.join(b, "attrs"), "user.k") == b"v"

fd = ahead("readback", b"x" * 10000)
os.lseek(fd, 0, os.SEEK_SET)
assert os.read(fd, 20000) == b"x" * 10000
os.close(fd)

# A directory holding a file created ahead is not empty.
os.mkdir(os.path.join(a, "sub"))
fd = ahead("sub/inner")
try:
    os.rmdir(os.path.join(a, "sub"))
    raise AssertionError("rmdir of a non-empty directory succeeded")
except OSError as e:
    assert e.errno == errno.ENOTEMPTY, e
os.close(fd)
assert sorted(os.listdir(os.path.join(b, "sub"))) == ["inner"]
print("ok")
PY
}

@test "O_EXCL stays exclusive across mounts; a name another mount took before the close is replaced, as O_TRUNC would have emptied it" {
    local m2=$BATS_TEST_TMPDIR/m2
    mount_extra "$m2"
    python3 - "$MNT" "$m2" <<'PY'
import errno, os, sys
a, b = sys.argv[1], sys.argv[2]
fd = os.open(os.path.join(a, "lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
try:
    os.open(os.path.join(b, "lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    raise AssertionError("a second O_EXCL create succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, e
os.close(fd)

# Mount a creates "race" ahead; mount b creates it for real meanwhile.
fa = os.open(os.path.join(a, "race"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
fb = os.open(os.path.join(b, "race"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fb, b"from b"); os.close(fb)
os.write(fa, b"from a"); os.close(fa)
names = os.listdir(a)
assert names.count("race") == 1, names
assert open(os.path.join(a, "race"), "rb").read() == b"from a"

# A directory took the name meanwhile: the close reports it, nothing is lost
# of the directory, and the mount forgets the file.
fa = os.open(os.path.join(a, "taken"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.mkdir(os.path.join(b, "taken"))
os.write(fa, b"data")
try:
    os.close(fa)
    raise AssertionError("close succeeded over a directory")
except OSError as e:
    assert e.errno == errno.EISDIR, e
assert os.path.isdir(os.path.join(b, "taken"))
PY
    [ "$("$TESSERA" cat /race)" = "from a" ]
    grep -q "was never made on the server" "$CLUSTER/mount.log"
    wait_until 10 test -d "$MNT/taken"     # once the name cached for the file expires
    run "$TESSERA" admin fsck /
    [ "$status" -eq 0 ]
}

@test "files created ahead survive unmount: every file closed before fusermount3 -u is on the server" {
    mkdir "$MNT/u"
    python3 - "$MNT/u" <<'PY'
import os, sys
for i in range(100):
    with open(os.path.join(sys.argv[1], "f%03d" % i), "w") as f:
        f.write("%d\n" % i)
PY
    fusermount3 -u "$MNT"
    [ "$("$TESSERA" ls /u | wc -l)" -eq 100 ]
    [ "$("$TESSERA" cat /u/f099)" = "99" ]
}
