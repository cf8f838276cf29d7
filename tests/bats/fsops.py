#!/usr/bin/env python3
"""File-system calls the shell has no command for, for the mount tests.

    fsops.py rename2 SRC DST noreplace|exchange   renameat2(2) with that flag
    fsops.py errno CALL ARGS...                   runs CALL, prints its errno name
                                                  ("OK" on success)
    fsops.py hold PATH READY_FILE GO_FILE         opens PATH, creates READY_FILE,
                                                  waits for GO_FILE, then prints
                                                  the whole file from that descriptor
    fsops.py slowcopy SRC DST READY GO            copies SRC to DST 1 MiB at a time;
                                                  after the first quarter creates
                                                  READY and waits for GO

CALLs of `errno`: open-excl PATH, open-dir-write PATH, mkdir PATH, rmdir PATH,
unlink PATH, rename SRC DST, rename2 SRC DST FLAG, link SRC DST,
symlink TARGET PATH, chmod PATH MODE(octal), chown PATH UID GID, truncate PATH SIZE,
setxattr PATH NAME VALUE [create|replace], getxattr PATH NAME, removexattr PATH NAME,
create PATH.
"""
import ctypes
import errno
import os
import sys
import time

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100

libc = ctypes.CDLL(None, use_errno=True)


def rename2(src, dst, flag):
    flags = {"noreplace": RENAME_NOREPLACE, "exchange": RENAME_EXCHANGE, "none": 0}[flag]
    r = libc.renameat2(AT_FDCWD, src.encode(), AT_FDCWD, dst.encode(), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def call(args):
    c = args[0]
    a = args[1:]
    if c == "open-excl":
        os.close(os.open(a[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elif c == "create":
        os.close(os.open(a[0], os.O_CREAT | os.O_WRONLY, 0o644))
    elif c == "open-dir-write":
        os.close(os.open(a[0], os.O_WRONLY))
    elif c == "open-read":
        os.close(os.open(a[0], os.O_RDONLY))
    elif c == "mkdir":
        os.mkdir(a[0])
    elif c == "rmdir":
        os.rmdir(a[0])
    elif c == "unlink":
        os.unlink(a[0])
    elif c == "rename":
        os.rename(a[0], a[1])
    elif c == "rename2":
        rename2(a[0], a[1], a[2])
    elif c == "link":
        os.link(a[0], a[1])
    elif c == "symlink":
        os.symlink(a[0], a[1])
    elif c == "chmod":
        os.chmod(a[0], int(a[1], 8))
    elif c == "chown":
        os.chown(a[0], int(a[1]), int(a[2]))
    elif c == "truncate":
        os.truncate(a[0], int(a[1]))
    elif c == "setxattr":
        flags = {"": 0, "create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}[a[3] if len(a) > 3 else ""]
        os.setxattr(a[0], a[1], a[2].encode(), flags)
    elif c == "getxattr":
        os.getxattr(a[0], a[1])
    elif c == "removexattr":
        os.removexattr(a[0], a[1])
    else:
        raise SystemExit("fsops: unknown call " + c)


def main():
    cmd = sys.argv[1]
    if cmd == "rename2":
        rename2(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "errno":
        try:
            call(sys.argv[2:])
            print("OK")
        except OSError as e:
            print(errno.errorcode.get(e.errno, str(e.errno)))
    elif cmd == "hold":
        path, ready, go = sys.argv[2:5]
        fd = os.open(path, os.O_RDONLY)
        open(ready, "w").close()
        while not os.path.exists(go):
            time.sleep(0.05)
        out = bytearray()
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            out += b
        os.close(fd)
        sys.stdout.buffer.write(out)
    elif cmd == "slowcopy":
        src, dst, ready, go = sys.argv[2:6]
        size = os.path.getsize(src)
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            done = 0
            signalled = False
            while True:
                b = fi.read(1 << 20)
                if not b:
                    break
                fo.write(b)
                done += len(b)
                if not signalled and done >= size // 4:
                    fo.flush()
                    open(ready, "w").close()
                    while not os.path.exists(go):
                        time.sleep(0.05)
                    signalled = True
    else:
        raise SystemExit("fsops: unknown command " + cmd)


if __name__ == "__main__":
    main()
