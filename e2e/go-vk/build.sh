#!/usr/bin/env bash
# Builds the reference Go virtual-kubelet for `e2e/bench pod-startup --against go-vk`: this
# module's main (the library's nodeutil node with a mock provider, client QPS/burst raised) at
# the virtual-kubelet release pinned in go.mod, into a cache outside the repository, once.
# Prints the path of the binary on its last line.
#
#   VK_CACHE   cache root (default ~/.cache/vk-serverless)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VK_CACHE:-$HOME/.cache/vk-serverless}

say() { printf '[go-vk] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 (https://go.dev/doc/install) and retry"

version=$(awk '$1 == "github.com/virtual-kubelet/virtual-kubelet" { print $2 }' "$here/go.mod" | head -n1)
[ -n "$version" ] || die "no github.com/virtual-kubelet/virtual-kubelet requirement in $here/go.mod"
recipe=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha1sum | cut -c1-8)
out="$cache/go-vk-$version-$recipe"
exe="$out/go-vk"
if [ -x "$exe" ]; then
  echo "$exe"
  exit 0
fi
mkdir -p "$out"
say "building the Go virtual-kubelet $version -> $exe"
# shellcheck source=../go-build.sh
. "$here/../go-build.sh"
go_build "go-vk $version" "$here" . "$exe" "$out/build.log"
echo "$exe"
