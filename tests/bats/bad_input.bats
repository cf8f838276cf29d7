#!/usr/bin/env bats
# Bad input of every kind against real daemons: each gets a 4xx with a
# message, nothing crashes, and the servers keep serving.  run-all.sh runs this
# file a second time against the sanitizer build.

load helpers

setup() {
    start_cluster
    CS=$(server_address cs-1)
    META=$(meta_address)
    BODY_FILE=$BATS_TEST_TMPDIR/body
}
teardown() {
    stop_cluster
    assert_no_sanitizer_reports
}

# http_status METHOD URL [curl args...] -> prints the status, body in $BODY_FILE
http_status() {
    local method=$1 url=$2
    shift 2
    rm -f "$BODY_FILE"
    curl -s -o "$BODY_FILE" -w '%{http_code}' -X "$method" "$@" "$url"
}

# send raw bytes over TCP and print the first line of the answer (if any)
raw_send() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=3)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
try:
    s.shutdown(socket.SHUT_WR)
    data = s.recv(4096)
    print(data.split(b"\r\n")[0].decode("latin-1") if data else "(closed)")
except Exception as e:
    print("(error %s)" % e)
PY
}

# flip_byte FILE OFFSET: inverts one byte in place
flip_byte() {
    python3 -c 'import sys
f = open(sys.argv[1], "r+b"); off = int(sys.argv[2])
f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xFF]))' "$1" "$2"
}

servers_alive() {
    curl -sf "http://$CS/health" >/dev/null && curl -sf "http://$META/health" >/dev/null
}

@test "chunkserver: unknown chunk id is 404 with a JSON message" {
    code=$(http_status GET "http://$CS/v1/chunk/0123456789abcdef0123456789abcdef")
    [ "$code" = 404 ]
    [ "$(jq -r .error "$BODY_FILE")" = ENOENT ]
    [ -n "$(jq -r .message "$BODY_FILE")" ]
}

@test "chunkserver: path traversal and malformed ids are rejected with 4xx" {
    for id in "../../etc/passwd" "..%2F..%2Fetc%2Fpasswd" "%2e%2e" "0123" "zz23456789abcdef0123456789abcdef" \
              "0123456789abcdef0123456789abcdef0" "0123456789abcdef0123456789abcde/"; do
        code=$(http_status GET "http://$CS/v1/chunk/$id" --path-as-is)
        [[ "$code" == 4* ]] || { echo "GET id '$id' answered $code"; false; }
        code=$(http_status PUT "http://$CS/v1/chunk/$id" --path-as-is --data-binary "x")
        [[ "$code" == 4* ]] || { echo "PUT id '$id' answered $code"; false; }
    done
    # nothing was written outside the data directories
    [ ! -e "$CLUSTER/passwd" ]
    servers_alive
}

@test "chunkserver: a truncated upload leaves no chunk behind" {
    id=00112233445566778899aabbccddeeff
    raw_send "$CS" "PUT /v1/chunk/$id HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nonly a few bytes"
    code=$(http_status GET "http://$CS/v1/chunk/$id")
    [ "$code" = 404 ]
    [ -z "$(find "$CLUSTER" -name "$id*")" ] || wait_until 5 bash -c "[ -z \"\$(find '$CLUSTER' -name '$id*')\" ]"
    servers_alive
}

@test "chunkserver: a read with a bad Range is a 416, a PUT without length a 4xx" {
    head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/f"
    id=ffeeddccbbaa99887766554433221100
    code=$(http_status PUT "http://$CS/v1/chunk/$id" --data-binary "@$BATS_TEST_TMPDIR/f")
    [ "$code" = 201 ]
    code=$(http_status GET "http://$CS/v1/chunk/$id" -H "Range: bytes=200000-300000")
    [ "$code" = 416 ]
    code=$(http_status GET "http://$CS/v1/chunk/$id" -H "Range: bytes=oops")
    [[ "$code" == 4* ]]
    code=$(http_status GET "http://$CS/v1/chunk/$id" -H "Range: bytes=10-19")
    [ "$code" = 206 ]
    cmp <(head -c 20 "$BATS_TEST_TMPDIR/f" | tail -c 10) "$BODY_FILE"
    code=$(http_status PUT "http://$CS/v1/chunk/00000000000000000000000000000001" -H "Transfer-Encoding: chunked" --data-binary "abc")
    [[ "$code" == 4* ]]
    servers_alive
}

@test "oversized headers and garbage requests get 4xx or a closed connection, never a crash" {
    { printf 'X-Big: '; head -c 200000 /dev/zero | tr '\0' a; echo; } >"$BATS_TEST_TMPDIR/bighdr"
    for target in "$CS" "$META"; do
        code=$(http_status GET "http://$target/health" -H "@$BATS_TEST_TMPDIR/bighdr")
        [[ "$code" == 4* || "$code" == 000 ]] || { echo "$target: oversized header answered $code"; false; }
        out=$(raw_send "$target" "GARBAGE\r\n\r\n")
        [[ "$out" == *" 4"* || "$out" == "(closed)" ]] || { echo "$target: garbage answered '$out'"; false; }
        out=$(raw_send "$target" "GET /health HTTP/1.1\r\nHost")
        # an unfinished request gets no answer (the server waits for the rest
        # until its idle timeout), an error, or a close; never a 2xx
        [[ "$out" == *" 4"* || "$out" == "(closed)" || "$out" == "(error timed out)" ]] || { echo "$target: truncated request answered '$out'"; false; }
    done
    servers_alive
}

@test "metadata: malformed JSON, missing fields, wrong types, bad names are 4xx with a message" {
    for body in '{' 'null' '[]' '{"parent":"x","name":"a"}' '{"name":"a"}' '{"parent":1}' \
                '{"parent":1,"name":""}' '{"parent":1,"name":"a/b"}' '{"parent":1,"name":".."}' \
                '{"parent":-5,"name":"a"}' '{"parent":999999,"name":"a"}'; do
        code=$(http_status POST "http://$META/v1/ns/mkdir" -H 'Content-Type: application/json' --data-binary "$body")
        [[ "$code" == 4* ]] || { echo "mkdir $body answered $code"; false; }
        [ -n "$(jq -r .message "$BODY_FILE")" ]
    done
    long=$(head -c 300 /dev/zero | tr '\0' n)
    code=$(http_status POST "http://$META/v1/ns/mkdir" --data-binary "{\"parent\":1,\"name\":\"$long\",\"mode\":493,\"uid\":0,\"gid\":0}")
    [ "$code" = 414 ]
    [ "$(jq -r .error "$BODY_FILE")" = ENAMETOOLONG ]
    code=$(http_status POST "http://$META/v1/file/commit" --data-binary '{"ino":1,"offset":0,"length":10,"extents":[{"file_offset":0,"length":10,"chunk":"../../x","chunk_offset":0}],"chunks":[]}')
    [[ "$code" == 4* ]]
    code=$(http_status POST "http://$META/v1/no/such/endpoint" --data-binary '{}')
    [ "$code" = 404 ]
    servers_alive
    # the namespace is unharmed
    run "$TESSERA" ls /
    [ "$status" -eq 0 ]
}

# An empty file /f (its inode in $ino) and a chunk id ($id) with the
# SHA-256 of "abc" ($sha), for commits of inline data.
empty_file_and_chunk() {
    "$TESSERA" put /dev/null /f
    ino=$("$TESSERA" stat /f | awk '$1 == "Inode:" { print $2 }')
    [ -n "$ino" ]
    id=00112233445566778899aabbccddeeff
    sha=$(printf abc | sha256sum | cut -d' ' -f1)
}

@test "inline data as attachments (JSON, NUL, bytes): no NUL, bytes past the end, both forms, wrong hash, an endpoint that takes none are 4xx and change nothing" {
    empty_file_and_chunk
    att_commit() {   # att_commit INLINE_CHUNK_JSON ATTACHED_BYTES [NUL: 0 leaves it out] -> status
        local body=$BATS_TEST_TMPDIR/att-body
        printf '{"ino":%s,"offset":0,"length":3,"extents":[{"file_offset":0,"length":3,"chunk":"%s","chunk_offset":0}],"chunks":[],"inline_chunks":[%s]}' \
            "$ino" "$id" "$1" >"$body"
        [ "${3:-1}" = 0 ] || printf '\0' >>"$body"
        printf '%s' "$2" >>"$body"
        http_status POST "http://$META/v1/file/commit" \
            -H "Content-Type: application/x-tessera-json-att" --data-binary @"$body"
    }
    for c in '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":0}|ab|1' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":1}|abc|1' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":18446744073709551615}|abc|1' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":"0"}|abc|1' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":0,"inline":"YWJj"}|abc|1' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":0}|abc|0'; do
        IFS='|' read -r chunk bytes nul <<<"$c"
        code=$(att_commit "$chunk" "$bytes" "$nul")
        [ "$code" = 400 ] || { echo "commit $c answered $code"; cat "$BODY_FILE"; false; }
        [ -n "$(jq -r .message "$BODY_FILE")" ]
    done
    code=$(att_commit '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":0}' abc 0)
    [[ "$(jq -r .message "$BODY_FILE")" == *"no NUL"* ]]
    code=$(att_commit '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":1}' abc)
    [[ "$(jq -r .message "$BODY_FILE")" == *"inline_at"* ]]
    # the bytes named must be the ones hashed
    code=$(att_commit '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":0}' xabc)
    [ "$(jq -r .error "$BODY_FILE")" = ECORRUPT ]
    # an endpoint without attachments refuses the type, even with good JSON
    printf '{"parent":1,"name":"f"}\0' >"$BATS_TEST_TMPDIR/lookup"
    code=$(http_status POST "http://$META/v1/ns/lookup" \
        -H "Content-Type: application/x-tessera-json-att" --data-binary @"$BATS_TEST_TMPDIR/lookup")
    [ "$code" = 400 ]
    [[ "$(jq -r .message "$BODY_FILE")" == *"takes a JSON body"* ]]
    [ "$("$TESSERA" stat /f | awk '$1 == "Size:" { print $2 }')" -eq 0 ]
    # the good one, with the bytes after others
    code=$(att_commit '{"id":"'$id'","length":3,"sha256":"'$sha'","inline_at":2}' xyabc)
    [ "$code" = 200 ] || { cat "$BODY_FILE"; false; }
    [ "$("$TESSERA" cat /f)" = abc ]
    # the layout answers the bytes attached when asked, in base64 otherwise
    code=$(http_status POST "http://$META/v1/file/layout" -D "$BATS_TEST_TMPDIR/headers" \
        --data-binary '{"ino":'$ino',"attachments":true}')
    [ "$code" = 200 ]
    grep -qi '^content-type: application/x-tessera-json-att' "$BATS_TEST_TMPDIR/headers"
    python3 - "$BODY_FILE" <<'PY'
import json, sys
body = open(sys.argv[1], "rb").read()
text, att = body.split(b"\0", 1)
x = json.loads(text)["extents"][0]
assert "inline" not in x, x
assert att[x["inline_at"]:x["inline_at"] + x["chunk_length"]] == b"abc", (x, att)
PY
    code=$(http_status POST "http://$META/v1/file/layout" --data-binary '{"ino":'$ino'}')
    [ "$(jq -r '.extents[0].inline' "$BODY_FILE")" = YWJj ]
    servers_alive
}

@test "inline data and creates at reserved numbers: bad base64, wrong hash or length, over the limits, unreserved or reused numbers are 4xx and change nothing" {
    empty_file_and_chunk
    ext='"extents":[{"file_offset":0,"length":3,"chunk":"'$id'","chunk_offset":0}]'
    commit() {   # commit INLINE_CHUNK_JSON -> status
        http_status POST "http://$META/v1/file/commit" \
            --data-binary "{\"ino\":$ino,\"offset\":0,\"length\":3,$ext,\"chunks\":[],\"inline_chunks\":[$1]}"
    }
    for c in '{"id":"'$id'","length":3,"sha256":"'$sha'","inline":"YWJj!"}' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'","inline":"YWJjZA=="}' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'"}' \
             '{"id":"'$id'","length":3,"sha256":"'$sha'","inline":42}'; do
        code=$(commit "$c")
        [ "$code" = 400 ] || { echo "commit $c answered $code"; cat "$BODY_FILE"; false; }
        [ -n "$(jq -r .message "$BODY_FILE")" ]
    done
    # the right bytes with another hash: ECORRUPT
    code=$(commit '{"id":"'$id'","length":3,"sha256":"'${sha/a/b}'","inline":"YWJj"}')
    [[ "$code" == 4* || "$code" == 5* ]]
    [ "$(jq -r .error "$BODY_FILE")" = ECORRUPT ]
    # an inline chunk ending past 1 MiB
    code=$(http_status POST "http://$META/v1/file/commit" --data-binary \
        "{\"ino\":$ino,\"offset\":1048575,\"length\":3,\"extents\":[{\"file_offset\":1048575,\"length\":3,\"chunk\":\"$id\",\"chunk_offset\":0}],\"inline_chunks\":[{\"id\":\"$id\",\"length\":3,\"sha256\":\"$sha\",\"inline\":\"YWJj\"}]}")
    [ "$code" = 400 ]
    [[ "$(jq -r .message "$BODY_FILE")" == *"inline limit"* ]]
    [ "$("$TESSERA" stat /f | awk '$1 == "Size:" { print $2 }')" -eq 0 ]
    # ... and the good one works
    code=$(commit '{"id":"'$id'","length":3,"sha256":"'$sha'","inline":"YWJj"}')
    [ "$code" = 200 ]
    [ "$("$TESSERA" cat /f)" = abc ]

    # create_at: a number never reserved, a reserved one used twice, bad data
    code=$(http_status POST "http://$META/v1/file/create_at" --data-binary \
        '{"parent":1,"name":"n","ino":999999,"mode":420,"uid":0,"gid":0}')
    [ "$code" = 400 ]
    [[ "$(jq -r .message "$BODY_FILE")" == *"not a reserved"* ]]
    code=$(http_status POST "http://$META/v1/ns/reserve_inodes" --data-binary '{}')
    [ "$code" = 200 ]
    first=$(jq .first "$BODY_FILE")
    [ "$(jq .count "$BODY_FILE")" -eq 64 ]
    code=$(http_status POST "http://$META/v1/file/create_at" --data-binary \
        '{"parent":1,"name":"n","ino":'$first',"mode":420,"uid":0,"gid":0,"data":{"offset":0,"length":3,"extents":[{"file_offset":0,"length":3,"chunk":"'$id'","chunk_offset":0}]}}')
    [ "$code" = 400 ]          # the extent names a chunk the request does not list
    run "$TESSERA" stat /n
    [ "$status" -ne 0 ]
    for body in '{"parent":1,"name":"n","ino":'$first'}' '{"parent":1,"name":"n","ino":"x","mode":420,"uid":0,"gid":0}' \
                '{"parent":1,"name":"n","ino":'$first',"mode":420,"uid":0,"gid":0,"data":7}'; do
        code=$(http_status POST "http://$META/v1/file/create_at" --data-binary "$body")
        [ "$code" = 400 ] || { echo "create_at $body answered $code"; false; }
    done
    code=$(http_status POST "http://$META/v1/file/create_at" --data-binary \
        '{"parent":1,"name":"n","ino":'$first',"mode":420,"uid":0,"gid":0}')
    [ "$code" = 200 ]
    code=$(http_status POST "http://$META/v1/file/create_at" --data-binary \
        '{"parent":1,"name":"m","ino":'$first',"mode":420,"uid":0,"gid":0}')
    [ "$code" = 400 ]
    code=$(http_status POST "http://$META/v1/file/create_at" --data-binary \
        '{"parent":1,"name":"f","ino":'$((first + 1))',"mode":420,"uid":0,"gid":0}')
    [ "$code" = 409 ]          # EEXIST without "replace"
    [ "$("$TESSERA" cat /f)" = abc ]

    # a build piece with bad data
    code=$(http_status POST "http://$CS/v1/chunk/$id/build" --data-binary \
        '{"chain":["'$CS'"],"pieces":[{"data":"YWJj","length":4}]}')
    [ "$code" = 400 ]
    code=$(http_status POST "http://$CS/v1/chunk/$id/build" --data-binary \
        '{"chain":["'$CS'"],"pieces":[{"data":"@@@@","length":3}]}')
    [ "$code" = 400 ]
    servers_alive
    run "$TESSERA" admin fsck /
    [ "$status" -eq 0 ]
}

@test "a chunk with a flipped byte is reported as corrupt by its server and read from another replica" {
    head -c $((3 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
    "$TESSERA" put "$BATS_TEST_TMPDIR/f" /f
    id=$("$TESSERA" admin chunks /f --json | jq -r '.chunks[0].id')
    holder=$("$TESSERA" admin chunks /f --json | jq -r '.chunks[0].replicas[0]')
    file=$(find "$CLUSTER/$holder" -name "$id.chunk")
    [ -n "$file" ]
    flip_byte "$file" $((17 * 65536 + 5))
    addr=$(server_address "$holder")
    code=$(http_status GET "http://$addr/v1/chunk/$id")
    [ "$code" = 500 ]
    [ "$(jq -r .error "$BODY_FILE")" = ECORRUPT ]
    [[ "$(jq -r .message "$BODY_FILE")" == *"block 17"* ]]
    "$TESSERA" get /f "$BATS_TEST_TMPDIR/f.out"
    cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/f.out"
}

@test "a full disk gives a clear ENOSPC, leaves no partial chunk, and the server keeps working" {
    small=$BATS_TEST_TMPDIR/smalldisk
    mkdir -p "$small"
    mount -t tmpfs -o size=4m tmpfs "$small"
    track_mount "$small"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    tessera-chunk --listen "127.0.0.1:$port" --data-dir "$small/data" --id cs-full --meta "$META" \
        --log-file "$CLUSTER/cs-full.log" &
    fullpid=$!
    track_pid "$fullpid"
    wait_until 10 curl -sf "http://127.0.0.1:$port/health"
    head -c $((8 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/big"
    code=$(http_status PUT "http://127.0.0.1:$port/v1/chunk/0badc0de0badc0de0badc0de0badc0de" --data-binary "@$BATS_TEST_TMPDIR/big")
    status_ok=0
    [ "$code" = 507 ] || status_ok=1
    msg=$(jq -r .message "$BODY_FILE" 2>/dev/null || true)
    leftovers=$(find "$small/data" -name '0badc0de*' | wc -l)
    code2=$(http_status PUT "http://127.0.0.1:$port/v1/chunk/0badc0de0badc0de0badc0de0badc0df" --data-binary "small")
    kill "$fullpid"; wait "$fullpid" || true
    umount "$small"
    [ "$status_ok" -eq 0 ] || { echo "full disk answered $code"; false; }
    [[ "$msg" == *"full"* || "$msg" == *"space"* ]] || { echo "message: $msg"; false; }
    [ "$leftovers" -eq 0 ]
    [ "$code2" = 201 ]
}
