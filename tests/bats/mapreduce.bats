#!/usr/bin/env bats
# MapReduce on a real local cluster (4 chunkservers, 4 MiB chunks): word
# count against `tr | sort | uniq -c`, the line-at-a-chunk-boundary rule,
# data locality, kill -9 of a chunkserver in the map and in the reduce
# phase, a failing mapper, an existing output directory, map-only jobs, the
# combiner, and the shipped examples.  One cluster and one ~88 MiB input
# serve the whole file (setup_file) to keep it within a few minutes.

load helpers

EX=$TOP/mapreduce/examples
WC_FILES="$EX/wordcount_map.sh $EX/wordcount_reduce.sh"

setup_file() {
    BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR start_cluster --chunk-size 4M --chunkservers 4
    export CLUSTER
    # 22 splits of 4 MiB: lines of 1-14 words from a 3000-word vocabulary.
    awk 'BEGIN { srand(42); while (n < 92000000) { k = 1 + int(rand() * 14); l = "";
                 for (i = 0; i < k; i++) l = l (i ? " " : "") "w" int(rand() * rand() * 3000);
                 print l; n += length(l) + 1 } }' >"$BATS_FILE_TMPDIR/text"
    "$TESSERA" mkdir /in
    "$TESSERA" put "$BATS_FILE_TMPDIR/text" /in/text
    LC_ALL=C tr -s ' ' '\n' <"$BATS_FILE_TMPDIR/text" | LC_ALL=C sort | LC_ALL=C uniq -c |
        awk '{ print $2 "\t" $1 }' | LC_ALL=C sort >"$BATS_FILE_TMPDIR/expected"
}

teardown_file() {
    BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR stop_cluster
}

setup() {
    # A test that killed a chunkserver restarts it for the next one.
    "$TESSERA" local up --dir "$CLUSTER" >/dev/null
    wait_until 20 bash -c "[ \"\$(\"$TESSERA\" admin status --json | jq '[.servers[] | select(.state==\"up\")] | length')\" -eq 4 ]"
}

teardown() { cleanup_tracked; }

# wordcount OUT [mr run options...]
wordcount() {
    local out=$1; shift
    "$TESSERA" mr run --quiet --input /in --output "$out" --files $WC_FILES \
        --mapper 'sh wordcount_map.sh' --reducer 'sh wordcount_reduce.sh' "$@"
}

# The output of a job as sorted lines.
job_output() {
    "$TESSERA" cat $("$TESSERA" ls "$1" | grep part- | sed "s#^#$1/#") | LC_ALL=C sort
}

status_json() { "$TESSERA" mr status "$1" --json; }

@test "word count over 22 splits equals tr | sort | uniq -c, mostly data-local" {
    run wordcount /wc --combiner 'sh wordcount_reduce.sh' --reducers 3 --name wc
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"succeeded"* ]]
    job_output /wc | cmp - "$BATS_FILE_TMPDIR/expected"
    "$TESSERA" stat /wc/_SUCCESS
    [ "$("$TESSERA" ls /wc | grep -c part-)" -eq 3 ]
    ! "$TESSERA" ls /wc | grep -q _temporary
    st=$(status_json wc)
    [ "$(jq .maps.total <<<"$st")" -ge 20 ]
    [ "$(jq -r .state <<<"$st")" = succeeded ]
    jq -e '.data_local_fraction >= 0.9' <<<"$st" || { echo "$st"; false; }
    [ "$(jq .bytes.read_local <<<"$st")" -gt "$(jq .bytes.read_remote <<<"$st")" ]
    run "$TESSERA" mr status wc
    [[ "$output" == *"data-local:"* ]]
    run "$TESSERA" mr status
    [[ "$output" == *"wc"*"succeeded"* ]]
    run "$TESSERA" mr logs wc m-00000
    [ "$status" -eq 0 ]
    [[ "$output" == *"attempt 1"*"succeeded"* ]]
}

@test "a line straddling a chunk boundary is counted exactly once" {
    # Filler up to just before 4 MiB, a marker line across the boundary,
    # another line starting exactly at the 8 MiB boundary, then more.
    f=$BATS_TEST_TMPDIR/edge
    head -c $((4194304 - 10)) /dev/zero | tr '\0' 'a' | fold -w 99 >"$f"
    printf 'xyz STRADDLE crosses the boundary\n' >>"$f"
    size=$(stat -c %s "$f")
    head -c $((8388608 - size - 1)) /dev/zero | tr '\0' 'b' | fold -w 99 | head -c $((8388608 - size - 1)) >>"$f"
    printf '\nATBOUNDARY starts at 8 MiB\nlast line without newline' >>"$f"
    [ "$(head -c 8388608 "$f" | tail -c 1 | od -An -c | tr -d ' ')" = '\n' ]
    "$TESSERA" mkdir /edge
    "$TESSERA" put "$f" /edge/f
    run "$TESSERA" mr run --quiet --input /edge --output /edge-out --files $WC_FILES \
        --mapper 'sh wordcount_map.sh' --reducer 'sh wordcount_reduce.sh' --reducers 2
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    got=$(job_output /edge-out)
    grep -qx "STRADDLE	1" <<<"$got"
    grep -qx "ATBOUNDARY	1" <<<"$got"
    grep -qx "newline	1" <<<"$got"
    want=$(LC_ALL=C tr -s ' ' '\n' <"$f" | LC_ALL=C sort | LC_ALL=C uniq -c | awk '{ print $2 "\t" $1 }' | LC_ALL=C sort)
    [ "$got" = "$want" ]
}

# Waits until the job named $1 is in phase $2 with at least $3 tasks of
# kind $4 ("maps"/"reduces") running; prints a server running one.
wait_running_server() {
    local name=$1 phase=$2 kind=$3 prefix=$4 deadline=$((SECONDS + 90)) st
    while [ $SECONDS -lt $deadline ]; do
        st=$("$TESSERA" mr status "$name" --json 2>/dev/null) || { sleep 0.3; continue; }
        if [ "$(jq -r .phase <<<"$st")" = "$phase" ] && [ "$(jq ".$kind.running" <<<"$st")" -ge 1 ]; then
            jq -r --arg p "$prefix" '[.tasks[] | select(.state == "running" and (.task | startswith($p)))][0].server' <<<"$st"
            return 0
        fi
        sleep 0.3
    done
    return 1
}

@test "kill -9 of a chunkserver during the map phase: the job still gives the exact result" {
    wordcount /wc-kill-map --reducers 2 --name killmap >"$BATS_TEST_TMPDIR/out" 2>&1 &
    job=$!
    track_pid "$job"
    victim=$(wait_running_server killmap map maps m-)
    [ -n "$victim" ] && [ "$victim" != null ]
    kill -9 "$(daemon_pid "$victim")"
    wait "$job" || { cat "$BATS_TEST_TMPDIR/out"; false; }
    job_output /wc-kill-map | cmp - "$BATS_FILE_TMPDIR/expected"
    st=$(status_json killmap)
    [ "$(jq -r .state <<<"$st")" = succeeded ]
}

@test "kill -9 of a chunkserver during the reduce phase: lost map output is recomputed, result exact" {
    wordcount /wc-kill-reduce --reducers 3 --name killreduce \
        --combiner 'sh wordcount_reduce.sh' \
        --reducer 'sleep 4; sh wordcount_reduce.sh' >"$BATS_TEST_TMPDIR/out" 2>&1 &
    job=$!
    track_pid "$job"
    victim=$(wait_running_server killreduce reduce reduces r-)
    [ -n "$victim" ] && [ "$victim" != null ]
    kill -9 "$(daemon_pid "$victim")"
    wait "$job" || { cat "$BATS_TEST_TMPDIR/out"; false; }
    job_output /wc-kill-reduce | cmp - "$BATS_FILE_TMPDIR/expected"
    st=$(status_json killreduce)
    # Maps ran again: some task needed more than one attempt.
    [ "$(jq '[.tasks[] | select(.attempts > 1)] | length' <<<"$st")" -ge 1 ]
}

@test "a failing mapper fails the job with its stderr, and leaves no _SUCCESS or part file" {
    run "$TESSERA" mr run --quiet --input /in/text --output /fail --max-attempts 2 \
        --mapper 'echo "mapper exploded on bad input" >&2; exit 3' --reducer cat
    [ "$status" -ne 0 ]
    [[ "$output" == *"mapper exploded on bad input"* ]] || { echo "$output"; false; }
    [[ "$output" == *"status 3"* ]]
    [[ "$output" == *"failed 2 times"* ]]
    run "$TESSERA" ls /fail
    [[ "$output" != *"_SUCCESS"* ]]
    [[ "$output" != *"part-"* ]]
    st=$("$TESSERA" mr status --json | jq '[.[] | select(.output == "/fail")][0]')
    [ "$(jq -r .state <<<"$st")" = failed ]
}

@test "an output directory that already exists is refused" {
    "$TESSERA" mkdir /exists
    run wordcount /exists
    [ "$status" -ne 0 ]
    [[ "$output" == *"/exists already exists"* ]]
    run "$TESSERA" ls /exists
    [ -z "$output" ]
    run "$TESSERA" mr run --input /no/such --output /x --mapper cat --reducer cat
    [ "$status" -ne 0 ]
    [[ "$output" == *"/no/such"* ]]
}

@test "--reducers 0 writes map output directly (grep example)" {
    run "$TESSERA" mr run --quiet --input /in --output /grep --reducers 0 \
        --files "$EX/grep_map.sh" --mapper "sh grep_map.sh '(^| )w1234( |$)'"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    nmaps=$(jq .maps.total <<<"$("$TESSERA" mr status --json | jq '[.[] | select(.output == "/grep")][0]')")
    [ "$("$TESSERA" ls /grep | grep -c part-)" -eq "$nmaps" ]
    got=$(job_output /grep)
    want=$(grep -E '(^| )w1234( |$)' "$BATS_FILE_TMPDIR/text" | sed 's#^#/in/text:#' | LC_ALL=C sort)
    [ -n "$want" ]
    [ "$got" = "$want" ]
}

@test "--combiner shrinks the shuffle and keeps the result" {
    head -c 6000000 "$BATS_FILE_TMPDIR/text" >"$BATS_TEST_TMPDIR/small"
    "$TESSERA" mkdir /small
    "$TESSERA" put "$BATS_TEST_TMPDIR/small" /small/t
    for c in plain comb; do
        extra=()
        [ $c = comb ] && extra=(--combiner 'sh wordcount_reduce.sh')
        "$TESSERA" mr run --quiet --input /small --output /small-$c --name small-$c --files $WC_FILES \
            --mapper 'sh wordcount_map.sh' --reducer 'sh wordcount_reduce.sh' "${extra[@]}"
    done
    [ "$(job_output /small-plain)" = "$(job_output /small-comb)" ]
    plain=$(status_json small-plain | jq .bytes.shuffle)
    comb=$(status_json small-comb | jq .bytes.shuffle)
    [ "$comb" -gt 0 ]
    [ $((comb * 10)) -lt "$plain" ] || { echo "shuffle: $comb with combiner, $plain without"; false; }
}

@test "inverted index example, mr kill, and --help of every mr command" {
    "$TESSERA" mkdir /docs
    printf 'The cat sat\non the mat\n' >"$BATS_TEST_TMPDIR/a"
    printf 'the dog\nand the cat\n' >"$BATS_TEST_TMPDIR/b"
    "$TESSERA" put "$BATS_TEST_TMPDIR/a" /docs/a
    "$TESSERA" put "$BATS_TEST_TMPDIR/b" /docs/b
    run "$TESSERA" mr run --quiet --input /docs --output /index --files "$EX/index_map.sh" \
        "$EX/index_reduce.sh" --mapper 'sh index_map.sh' --reducer 'sh index_reduce.sh'
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    got=$(job_output /index)
    grep -qx 'cat	/docs/a,/docs/b' <<<"$got" || grep -qx 'cat	/docs/b,/docs/a' <<<"$got"
    grep -qx 'dog	/docs/b' <<<"$got"
    grep -qx 'mat	/docs/a' <<<"$got"

    # kill: a job whose mappers hang is stopped, leaving no output.
    "$TESSERA" mr run --quiet --input /docs --output /hang --name hang --mapper 'sleep 600' \
        --reducer cat >"$BATS_TEST_TMPDIR/hang.out" 2>&1 &
    job=$!
    track_pid "$job"
    wait_until 30 bash -c "\"$TESSERA\" mr status hang --json | jq -e '.maps.running >= 1'"
    run "$TESSERA" mr kill hang
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    ! wait "$job"
    [ "$(status_json hang | jq -r .state)" = killed ]
    run "$TESSERA" ls /hang
    [[ "$output" != *"part-"* && "$output" != *"_SUCCESS"* ]]

    for cmd in "mr" "mr run" "mr status" "mr kill" "mr logs"; do
        run "$TESSERA" $cmd --help
        [ "$status" -eq 0 ] || { echo "tessera $cmd --help exited $status"; false; }
        [[ "$output" == *[Uu]sage* ]]
    done
}
