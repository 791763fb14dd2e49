#!/usr/bin/env bash
# Checks (and on Debian installs) what the scripts need besides Go and Rust.
set -euo pipefail
say() { printf '[prereqs] %s\n' "$*" >&2; }
missing=()
# mvn, java, javac: the fabric8 client the Jenkins test execs with (e2e/fabric8); nsenter: exec
# into a running sandbox; setpriv: a container's user and capabilities; python3's venv: the
# Python SDKs the tests drive.
for tool in jq openssl curl python3 setsid nsenter setpriv ip bwrap mvn java javac; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]}"
    pkgs=()
    for t in "${missing[@]}"; do
      case $t in setsid | nsenter | setpriv) pkgs+=(util-linux) ;; ip) pkgs+=(iproute2) ;; bwrap) pkgs+=(bubblewrap) ;;
        mvn) pkgs+=(maven) ;; java | javac) pkgs+=(default-jdk-headless) ;; *) pkgs+=("$t") ;; esac
    done
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    say "missing: ${missing[*]}; install them (Debian/Ubuntu: apt-get install ${missing[*]})"
    exit 1
  fi
fi
command -v go >/dev/null || { say "Go >= 1.24 is required to build the control plane: https://go.dev/doc/install"; exit 1; }
command -v cargo >/dev/null || { say "Rust (cargo) >= 1.89 is required: https://rustup.rs"; exit 1; }
