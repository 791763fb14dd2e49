#!/usr/bin/env bash
# Builds gitlab-job (this module's main: a job's stages run in a GitLab Runner job pod as the
# runner's Kubernetes executor runs them, with client-go) into a cache outside the repository,
# once. Prints the path of the binary on its last line.
#
#   VK_CACHE   cache root (default ~/.cache/vk-serverless)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VK_CACHE:-$HOME/.cache/vk-serverless}

say() { printf '[gitlab-job] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 (https://go.dev/doc/install) and retry"

recipe=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha1sum | cut -c1-8)
out="$cache/gitlab-job-$recipe"
exe="$out/gitlab-job"
if [ -x "$exe" ]; then
  echo "$exe"
  exit 0
fi
mkdir -p "$out"
say "building gitlab-job (client-go $(awk '$1 == "k8s.io/client-go" { print $2 }' "$here/go.mod")) -> $exe"
# shellcheck source=../go-build.sh
. "$here/../go-build.sh"
go_build gitlab-job "$here" . "$exe" "$out/build.log"
echo "$exe"
