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
say "building CoreDNS $version -> $exe"
# shellcheck source=../go-build.sh
. "$here/../go-build.sh"
go_build "CoreDNS $version" "$here" . "$exe" "$out/build.log"
echo "$exe"
