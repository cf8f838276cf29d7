#!/usr/bin/env python3
"""Random read/write/truncate exerciser for a mounted Tessera (or any) directory.

    mount_exerciser.py DIR SEED OPS [FILES]

Runs OPS random operations with a fixed SEED on FILES files in DIR through
several descriptors per file (pwrite at any offset -- inside, at the end,
past the end leaving a hole --, pread, ftruncate shrinking and growing,
O_APPEND writes, fsync, close and reopen), keeping an in-memory model of
every file, and compares EVERY read, every fstat size, and at the end each
whole file read back through a fresh descriptor, with the model.  Exits 1
at the first difference, naming the operation number and what differed.
"""
import os
import random
import sys

MAX_SIZE = 6 << 20


def fail(msg):
    print("mount_exerciser: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) < 4:
        fail("usage: mount_exerciser.py DIR SEED OPS [FILES]")
    top, seed, nops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    nfiles = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    rnd = random.Random(seed)
    paths = [os.path.join(top, "ex-%d-%d" % (seed, i)) for i in range(nfiles)]
    model = [bytearray() for _ in range(nfiles)]
    fds = [[os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)] for p in paths]
    counts = {}

    def size_hint(cur):
        # Mostly small writes near existing data, sometimes big ones or far away.
        r = rnd.random()
        if r < 0.6:
            return rnd.randint(1, 4096)
        if r < 0.9:
            return rnd.randint(4096, 256 << 10)
        return rnd.randint(256 << 10, 2 << 20)

    for op in range(nops):
        i = rnd.randrange(nfiles)
        m = model[i]
        fd = rnd.choice(fds[i])
        r = rnd.random()
        if r < 0.30:
            kind = "write"
            n = size_hint(len(m))
            where = rnd.random()
            if where < 0.4:
                off = len(m)                                   # append (stream)
            elif where < 0.85:
                off = rnd.randint(0, max(0, len(m)))          # overwrite inside
            else:
                off = len(m) + rnd.randint(1, 1 << 20)        # hole
            if off + n > MAX_SIZE:
                off = rnd.randint(0, max(0, MAX_SIZE - n))
            data = rnd.randbytes(n)
            if os.pwrite(fd, data, off) != n:
                fail("op %d: short pwrite" % op)
            if off > len(m):
                m.extend(b"\0" * (off - len(m)))
            m[off:off + n] = data
        elif r < 0.35:
            kind = "append"
            n = rnd.randint(1, 8192)
            data = rnd.randbytes(n)
            afd = os.open(paths[i], os.O_WRONLY | os.O_APPEND)
            os.write(afd, data)
            os.close(afd)
            m.extend(data)
        elif r < 0.70:
            kind = "read"
            if len(m) == 0 or rnd.random() < 0.1:
                off = rnd.randint(0, len(m) + 100)
            else:
                off = rnd.randint(0, len(m) - 1)
            n = rnd.randint(1, 512 << 10)
            got = os.pread(fd, n, off)
            want = bytes(m[off:off + n])
            if got != want:
                first = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                             min(len(got), len(want)))
                fail("op %d: read of file %d at %d+%d: got %d bytes, want %d, first difference "
                     "at byte %d" % (op, i, off, n, len(got), len(want), off + first))
        elif r < 0.78:
            kind = "truncate"
            if rnd.random() < 0.5:
                new = rnd.randint(0, len(m))
            else:
                new = len(m) + rnd.randint(0, 1 << 20)
            new = min(new, MAX_SIZE)
            os.ftruncate(fd, new)
            if new < len(m):
                del m[new:]
            else:
                m.extend(b"\0" * (new - len(m)))
        elif r < 0.84:
            kind = "fstat"
            st = os.fstat(fd)
            if st.st_size != len(m):
                fail("op %d: fstat of file %d: size %d, want %d" % (op, i, st.st_size, len(m)))
        elif r < 0.88:
            kind = "fsync"
            os.fsync(fd)
        elif r < 0.95:
            kind = "reopen"
            if len(fds[i]) > 1 or rnd.random() < 0.5:
                os.close(fd)
                fds[i].remove(fd)
            if len(fds[i]) < 3:
                fds[i].append(os.open(paths[i], os.O_RDWR))
        else:
            kind = "stat"
            st = os.stat(paths[i])
            if st.st_size != len(m):
                fail("op %d: stat of file %d: size %d, want %d" % (op, i, st.st_size, len(m)))
        counts[kind] = counts.get(kind, 0) + 1

    for i in range(nfiles):
        for fd in fds[i]:
            os.close(fd)
    for i in range(nfiles):
        with open(paths[i], "rb") as f:
            got = f.read()
        if got != bytes(model[i]):
            fail("final content of file %d differs (%d bytes, want %d)" % (i, len(got), len(model[i])))
    print("mount_exerciser: seed %d: %d operations passed (%s)" % (
        seed, nops, ", ".join("%s %d" % kv for kv in sorted(counts.items()))))


if __name__ == "__main__":
    main()
