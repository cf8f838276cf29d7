#!/usr/bin/env bash
# Builds Tessera out of tree: packaging/build.sh BUILD_DIR [configure args...]
# Regenerates the autotools files when needed.  Prints the build dir's path.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: build.sh BUILD_DIR [configure args]}
shift
if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
    (cd "$top" && autoreconf -fi >/dev/null 2>&1) || { echo "build: autoreconf failed" >&2; exit 1; }
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ]; then
    "$top/configure" "$@" >config.out 2>&1 || { cat config.out >&2; exit 1; }
fi
make -j"$(nproc)" >make.out 2>&1 || { tail -n 60 make.out >&2; echo "build: make failed in $build" >&2; exit 1; }
make -j"$(nproc)" check TESTS= >>make.out 2>&1 || { tail -n 60 make.out >&2; echo "build: building tests failed in $build" >&2; exit 1; }
