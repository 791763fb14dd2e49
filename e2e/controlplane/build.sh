#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd) from Go modules into a cache outside the repository. Each binary is built
# only when it is missing. Prints the directory holding the binaries on its last line.
#
#   K8S_VERSION   Kubernetes release to build (default 1.35.4, the one pinned in go.mod)
#   VK_CACHE      cache root (default ~/.cache/vk-serverless)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pinned=1.35.4
version=${K8S_VERSION:-$pinned}
version=${version#v}
cache=${VK_CACHE:-$HOME/.cache/vk-serverless}
out="$cache/k8s-v$version/bin"
mkdir -p "$out"

say() { printf '[controlplane] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "Go is not installed; install Go >= 1.24 (https://go.dev/doc/install) and retry"
command -v jq >/dev/null || die "jq is missing: apt-get install -y jq"

if ! [[ $version =~ ^1\.([0-9]+)\.([0-9]+)$ ]]; then
  die "K8S_VERSION must look like 1.35.4, got '$version'"
fi
minor=${BASH_REMATCH[1]}
staging="0.${version#1.}"

# The module that builds Kubernetes: the committed one for the pinned release, a generated
# one (same recipe) in the cache for any other release.
module_for_version() {
  if [ "$version" = "$pinned" ]; then
    echo "$here"
    return
  fi
  local dir="$cache/k8s-v$version/src"
  if [ ! -f "$dir/.complete" ]; then
    say "generating a Go module for Kubernetes v$version in $dir"
    rm -rf "$dir" && mkdir -p "$dir"
    (
      cd "$dir"
      go mod init vk-e2e/controlplane >/dev/null 2>&1
      local gomod
      gomod=$(go mod download -json "k8s.io/kubernetes@v$version" | jq -r .GoMod)
      [ -f "$gomod" ] || die "the Go module proxy has no k8s.io/kubernetes@v$version"
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 v'"$staging"'#p' "$gomod" >>go.mod
      go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@v$version" \
        "k8s.io/kubernetes/cmd/kube-controller-manager@v$version" \
        "k8s.io/kubernetes/cmd/kube-scheduler@v$version" \
        "k8s.io/kubernetes/cmd/kubectl@v$version" >/dev/null 2>&1
    ) || die "could not generate the module for Kubernetes v$version"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# shellcheck source=../go-build.sh
. "$here/../go-build.sh"

build_one() {
  local name=$1 moddir=$2 pkg=$3 ldflags=$4
  if [ -x "$out/$name" ]; then
    return
  fi
  say "building $name (Kubernetes v$version) -> $out/$name"
  go_build "$name" "$moddir" "$pkg" "$out/$name" "$cache/k8s-v$version/build-$name.log" "$ldflags"
}

total_start=$SECONDS
moddir=$(module_for_version)
commit=$(printf 'v%s' "$version" | sha1sum | cut -c1-40)
ldflags="-s -w"
for pkgvar in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkgvar.gitVersion=v$version -X $pkgvar.gitMajor=1 -X $pkgvar.gitMinor=$minor"
  ldflags+=" -X $pkgvar.gitTreeState=clean -X $pkgvar.gitCommit=$commit -X $pkgvar.buildDate=1970-01-01T00:00:00Z"
done

build_one etcd "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build_one "$cmd" "$moddir" "k8s.io/kubernetes/cmd/$cmd" "$ldflags"
done
if ((SECONDS - total_start > 5)); then
  say "control plane v$version ready in $((SECONDS - total_start))s"
fi
echo "$out"
