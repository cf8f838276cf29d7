#!/usr/bin/env bats
# The mount's fast paths keep their semantics: a directory's attributes
# after a change this mount made are those of the change (they come with
# the server's answer instead of a getattr).  What a small-file create
# costs in requests is checked by mount_small.bats.

load helpers

setup() { start_mounted_cluster; }
teardown() { stop_cluster; }

mtime_ns() { python3 -c 'import os, sys; print(os.lstat(sys.argv[1]).st_mtime_ns)' "$1"; }
ctime_ns() { python3 -c 'import os, sys; print(os.lstat(sys.argv[1]).st_ctime_ns)' "$1"; }

@test "a directory's attributes after create, mkdir, unlink, rmdir, rename and xattrs in it are the new ones" {
    mkdir "$MNT/d" "$MNT/e"
    m0=$(mtime_ns "$MNT/d")
    echo x >"$MNT/d/f"
    m1=$(mtime_ns "$MNT/d")
    [ "$m1" -gt "$m0" ]
    mkdir "$MNT/d/sub"
    [ "$(stat -c %h "$MNT/d")" -eq 3 ]
    m2=$(mtime_ns "$MNT/d")
    [ "$m2" -gt "$m1" ]
    rmdir "$MNT/d/sub"
    [ "$(stat -c %h "$MNT/d")" -eq 2 ]
    # rename reports no directory attributes: both sides are asked again
    e0=$(mtime_ns "$MNT/e")
    m3=$(mtime_ns "$MNT/d")
    mv "$MNT/d/f" "$MNT/e/f"
    [ "$(mtime_ns "$MNT/d")" -gt "$m3" ]
    [ "$(mtime_ns "$MNT/e")" -gt "$e0" ]
    # a moved directory's ctime changes too, right after a create in it
    mkdir "$MNT/d/mv"
    echo y >"$MNT/d/mv/g"
    c0=$(ctime_ns "$MNT/d/mv")
    mv "$MNT/d/mv" "$MNT/e/mv"
    [ "$(ctime_ns "$MNT/e/mv")" -gt "$c0" ]
    # an xattr changes the ctime of a directory just created in
    echo z >"$MNT/e/h"
    c1=$(ctime_ns "$MNT/e")
    python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.k", b"v")' "$MNT/e"
    [ "$(ctime_ns "$MNT/e")" -gt "$c1" ]
    # another mount sees the same
    mount_extra "$BATS_TEST_TMPDIR/m2"
    [ "$(mtime_ns "$BATS_TEST_TMPDIR/m2/e")" = "$(mtime_ns "$MNT/e")" ]
    [ "$(stat -c %h "$BATS_TEST_TMPDIR/m2/d")" -eq 2 ]
    assert_no_sanitizer_reports
}
