#!/usr/bin/env bash
# Builds helm, the chart tests' client, from its Go module into a cache outside the repository,
# once. The release is the one pinned in go.mod. Prints the path of the binary on its last line.
#
#   VK_CACHE   cache root (default ~/.cache/vk-serverless)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VK_CACHE:-$HOME/.cache/vk-serverless}

say() { printf '[helm] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 (https://go.dev/doc/install) and retry"

version=$(awk '$1 == "helm.sh/helm/v4" { print $2 }' "$here/go.mod" | head -n1)
[ -n "$version" ] || die "no helm.sh/helm/v4 requirement in $here/go.mod"
recipe=$(cat "$here/go.mod" "$here/go.sum" | sha1sum | cut -c1-8)
out="$cache/helm-$version-$recipe"
exe="$out/helm"
if [ -x "$exe" ]; then
  echo "$exe"
  exit 0
fi
mkdir -p "$out"
say "building helm $version -> $exe"
# shellcheck source=../go-build.sh
. "$here/../go-build.sh"
go_build "helm $version" "$here" helm.sh/helm/v4/cmd/helm "$exe" "$out/build.log"
echo "$exe"
