#!/usr/bin/env bash
# Builds AWS's session-manager-plugin (the client `aws ecs execute-command` runs) for the ECS
# exec conformance test, from its Go module at the commit pinned in go.mod, into a cache outside
# the repository, once. Prints the path of the binary on its last line.
#
#   VK_CACHE   cache root (default ~/.cache/vk-serverless)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VK_CACHE:-$HOME/.cache/vk-serverless}

say() { printf '[ssm-plugin] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 (https://go.dev/doc/install) and retry"

version=$(awk '$1 == "github.com/aws/session-manager-plugin" { print $2 }' "$here/go.mod" | head -n1)
[ -n "$version" ] || die "no github.com/aws/session-manager-plugin requirement in $here/go.mod"
recipe=$(cat "$here/go.mod" "$here/go.sum" | sha1sum | cut -c1-8)
out="$cache/session-manager-plugin-${version##*-}-$recipe"
exe="$out/session-manager-plugin"
if [ -x "$exe" ]; then
  echo "$exe"
  exit 0
fi
mkdir -p "$out"
say "building session-manager-plugin $version -> $exe"
# shellcheck source=../go-build.sh
. "$here/../go-build.sh"
go_build "session-manager-plugin" "$here" github.com/aws/session-manager-plugin/src/sessionmanagerplugin-main "$exe" "$out/build.log"
echo "$exe"
