#!/usr/bin/env python3
"""Appends 128-byte records to a file, one write + fsync each (every append
becomes its own extent and chunk), or prints the records.

  appender.py PATH START COUNT      append records START..START+COUNT-1
  appender.py --expect START COUNT  print them (the expected content)

Record i is its 6-digit number 21 times, then "a\\n": unique, so a lost or
duplicated record shows in a byte comparison.
"""
import os
import sys


def record(i):
    return (b"%06d" % i) * 21 + b"a\n"


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--expect":
        start, count = int(sys.argv[2]), int(sys.argv[3])
        out = sys.stdout.buffer
        for i in range(start, start + count):
            out.write(record(i))
        return 0
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    path, start, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for i in range(start, start + count):
            if os.write(fd, record(i)) != 128:
                sys.stderr.write("short write at record %d\n" % i)
                return 1
            os.fsync(fd)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
