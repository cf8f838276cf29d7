#!/bin/sh
# Distributed grep, map only (run with --reducers 0): prints the lines that
# match the extended regular expression given as $1, prefixed with the
# input file name, like `grep -H`.
pattern=${1:?usage: grep_map.sh REGEX}
exec awk -v re="$pattern" -v f="${mapreduce_map_input_file:-}" '$0 ~ re { print f ":" $0 }'
