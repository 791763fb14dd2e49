#!/usr/bin/env bash
# Supply-chain check of the dependency tree against deny.toml: licenses, banned and duplicate
# crates, and sources (crates.io only). Installs cargo-deny from crates.io into a cache outside
# the repository, once.
#
# The advisories check (RustSec) is not run by default: it needs the advisory database, fetched
# from GitHub, and this is meant to run where only package registries are reachable.
#
#   e2e/deny.sh [cargo deny check args...]   default: licenses bans sources
#   VK_CACHE   cache root (default ~/.cache/vk-serverless)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${VK_CACHE:-$HOME/.cache/vk-serverless}
version=0.20.2
dir="$cache/cargo-deny-$version"
exe="$dir/bin/cargo-deny"

say() { printf '[deny] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v cargo >/dev/null || die "Rust (cargo) is required: https://rustup.rs"

if [ ! -x "$exe" ]; then
  say "installing cargo-deny $version -> $exe (once; a few minutes)"
  mkdir -p "$dir"
  # Its own target directory, removed afterwards: the build is large and needed only once.
  CARGO_TARGET_DIR="$dir/build" cargo install cargo-deny --version "=$version" --locked \
    --root "$dir" --quiet >"$dir/install.log" 2>&1 ||
    die "cargo install cargo-deny failed; see $dir/install.log"
  rm -rf "$dir/build"
fi

[ $# -gt 0 ] || set -- licenses bans sources
cd "$root"
# cargo deny reads the whole graph (all platforms) from `cargo metadata`, which needs every
# locked crate downloaded, not only those this machine builds: fetch them from the registry.
cargo fetch --quiet
say "checking the dependency tree against deny.toml: $*"
# --offline: nothing beyond the registry is contacted, unless the advisories are asked for
# (`e2e/deny.sh advisories` fetches the database from GitHub).
offline=(--offline)
for check in "$@"; do
  case $check in advisories | all) offline=() ;; esac
done
"$exe" "${offline[@]}" check "$@"
