#!/bin/sh
# Inverted index, reduce side: "word<TAB>file1,file2,…" with each file once.
exec awk -F'\t' '
    $1 != word { if (NR > 1) print word "\t" files; word = $1; files = ""; delete seen }
    !($2 in seen) { seen[$2] = 1; files = files (files == "" ? "" : ",") $2 }
    END { if (NR > 0) print word "\t" files }'
