# Sourced by the build scripts (controlplane, coredns, helm): one `go build` with a progress line
# every 20 s, so a person can follow a cold build. The caller defines `say` and `die`.
#
#   go_build NAME MODULE_DIR PACKAGE EXE LOG [LDFLAGS]
# builds PACKAGE of the module in MODULE_DIR into EXE (through EXE.tmp), its output in LOG.
go_build() {
  local name=$1 moddir=$2 pkg=$3 exe=$4 log=$5 ldflags=${6:--s -w}
  local start=$SECONDS pid
  # nice: a cold build takes minutes and the machine's cores are shared.
  (cd "$moddir" && CGO_ENABLED=0 nice go build -trimpath -ldflags "$ldflags" -o "$exe.tmp" "$pkg") >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (((SECONDS - start) % 20 < 2)) && ((SECONDS - start >= 20)); then
      say "  still building $name ... $((SECONDS - start))s"
    fi
  done
  if ! wait "$pid"; then
    tail -n 30 "$log" >&2
    die "building $name failed (full log: $log)"
  fi
  mv "$exe.tmp" "$exe"
  say "built $name in $((SECONDS - start))s"
}
