#!/usr/bin/env bash
# Quickstart: install what is needed, build, start a local cluster (metadata
# service and 3 chunkservers on loopback, data under ./tessera-local), mount
# it at ./tessera-local/mnt, use it with ordinary tools and the CLI, and print
# the cluster status.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash packaging/install-deps.sh
echo "== building =="
bash packaging/build.sh "$top/build"
export PATH="$top/build:$PATH"
echo "== starting a local cluster in $top/tessera-local =="
tessera local up --dir "$top/tessera-local" --chunkservers 3
export TESSERA_CONF="$top/tessera-local/client.conf"
sample=$(mktemp /tmp/tessera-sample.XXXXXX)
trap 'rm -f "$sample" "$sample.back"' EXIT
head -c $((100 * 1024 * 1024)) /dev/urandom >"$sample"
echo "== tessera put (100 MiB) =="
tessera mkdir -p /demo
tessera put "$sample" /demo/sample.bin
tessera ls -l /demo
echo "== tessera get =="
tessera get /demo/sample.bin "$sample.back"
cmp "$sample" "$sample.back" && echo "read back: identical ($(stat -c %s "$sample.back") bytes)"
mnt="$top/tessera-local/mnt"
echo "== the same file through the mount at $mnt =="
ls -l "$mnt/demo"
sha256sum "$sample" "$mnt/demo/sample.bin"
echo "== ordinary tools on the mount =="
mkdir -p "$mnt/demo/notes"
echo "hello from $(hostname)" >"$mnt/demo/notes/hello.txt"
cp -a "$top/README.md" "$mnt/demo/notes/"
ls -l "$mnt/demo/notes"
cat "$mnt/demo/notes/hello.txt"
echo "== chunks of /demo/sample.bin =="
tessera admin chunks /demo/sample.bin
echo "== cluster status =="
tessera admin status
cat <<TXT

The cluster keeps running. Use it with:
  export PATH="$top/build:\$PATH" TESSERA_CONF="$top/tessera-local/client.conf"
  tessera ls /
  ls $mnt
Stop it (unmounts first) with:
  tessera local down --dir "$top/tessera-local"
TXT
