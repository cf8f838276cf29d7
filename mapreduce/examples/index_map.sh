#!/bin/sh
# Inverted index, map side: "word<TAB>file" for each distinct word of each
# line (the file comes from mapreduce_map_input_file, set for every map).
exec awk -v f="${mapreduce_map_input_file:-?}" '{
    for (i = 1; i <= NF; i++) {
        w = tolower($i); gsub(/[^a-z0-9]/, "", w)
        if (w != "" && !(w in seen)) { seen[w] = 1; print w "\t" f }
    }
    delete seen
}'
