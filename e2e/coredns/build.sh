#!/usr/bin/env bash
# Builds CoreDNS, the test cluster's DNS server, from Go modules into a cache outside the
# repository, once. The release is the one pinned in go.mod; the plugins are those main.go
# imports. Prints the path of the binary on its last line.
#
#   VK_CACHE   cache root (default ~/.cache/vk-serverless)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VK_CACHE:-$HOME/.cache/vk-serverless}

say() { printf '[coredns] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 (https://go.dev/doc/install) and retry"

version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/coredns/coredns") print $(i + 1) }' "$here/go.mod")
[ -n "$version" ] || die "no github.com/coredns/coredns requirement in $here/go.mod"
# The plugin set is part of the binary: a changed main.go or go.sum gets a directory of its own.
recipe=$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha1sum | cut -c1-8)
out="$cache/coredns-$version-$recipe"
exe="$out/coredns"
if [ -x "$exe" ]; then
  echo "$exe"
  exit 0
fi
mkdir -p "$out"
log="$out/build.log"
start=$SECONDS
say "building CoreDNS $version -> $exe"
# nice: a cold build takes minutes and the machine's cores are shared.
(cd "$here" && CGO_ENABLED=0 nice go build -trimpath -ldflags "-s -w" -o "$exe.tmp" .) >"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 2
  if (((SECONDS - start) % 20 < 2)) && ((SECONDS - start >= 20)); then
    say "  still building CoreDNS ... $((SECONDS - start))s"
  fi
done
if ! wait "$pid"; then
  tail -n 30 "$log" >&2
  die "building CoreDNS failed (full log: $log)"
fi
mv "$exe.tmp" "$exe"
say "built CoreDNS $version in $((SECONDS - start))s"
echo "$exe"
