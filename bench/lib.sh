# SPDX-License-Identifier: MIT
# Shared by the bench/run_*.sh scripts (sourced, not run): log lines, installing missing Debian
# packages, building our benchmark binaries and the C++ peers, running each peer into a log.
# The sourcing script sets SCRIPT (its name, for log lines), BUILD_DIR and LOG_DIR first.

log() { echo "$SCRIPT: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: installs only what is missing, so a second run never touches apt.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# build_cxx_peer SRC BIN [G++ FLAGS...]: a C++ peer (Boost.Asio), rebuilt when SRC or
# bench_common.hpp changes. Not part of the CMake build, so the library never needs Boost.
build_cxx_peer() {
  local src=$1 bin=$2
  shift 2
  if [[ -x $bin && $bin -nt $src && $bin -nt bench/bench_common.hpp ]]; then return 0; fi
  log "building $bin"
  mkdir -p "$(dirname "$bin")"
  # A failed build must not leave the previous binary to be benchmarked as if it were current.
  g++ -std=c++20 -O2 -DNDEBUG -o "$bin" "$src" "$@" || { rm -f "$bin"; return 1; }
}

# build_our_bench TARGET: configures BUILD_DIR with the bench preset the first time, then an
# incremental build, so the numbers are never those of a stale binary.
build_our_bench() {
  if [[ ! -f $BUILD_DIR/build.ninja && ! -f $BUILD_DIR/Makefile ]]; then
    log "configuring $BUILD_DIR (cmake --preset bench)"
    cmake --preset bench -B "$BUILD_DIR" >&2 || return 1
  fi
  log "building $1 in $BUILD_DIR"
  cmake --build "$BUILD_DIR" --target "$1" >&2
}

FAILED=()

# run_peer NAME COMMAND...: keeps the output in $LOG_DIR/NAME.log. A peer that fails is
# reported and left out of the table instead of hiding the others' numbers.
run_peer() {
  local name=$1
  shift
  log "running $name: $*"
  if ! "$@" >"$LOG_DIR/$name.log" 2>&1; then
    log "$name FAILED (see $LOG_DIR/$name.log):"
    tail -n 5 "$LOG_DIR/$name.log" >&2
    FAILED+=("$name")
  fi
}
