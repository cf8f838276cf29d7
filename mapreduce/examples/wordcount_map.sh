#!/bin/sh
# Word count, map side: one "word<TAB>1" line per word (words are runs of
# non-blank characters, as `tr -s ' ' '\n'` cuts them).
exec awk '{ for (i = 1; i <= NF; i++) print $i "\t1" }'
