#!/bin/sh
# Word count, reduce side (also usable as the combiner): input is sorted by
# word, so equal words are adjacent; prints "word<TAB>sum" per word.
exec awk -F'\t' '
    $1 != word { if (NR > 1) print word "\t" sum; word = $1; sum = 0 }
    { sum += $2 }
    END { if (NR > 0) print word "\t" sum }'
