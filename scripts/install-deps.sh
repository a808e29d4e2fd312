#!/usr/bin/env bash
# Installs what the build, tests, examples and benchmarks need from Debian 12's packages.
# Idempotent: packages already present are skipped, and apt-get runs only when something is missing.
set -euo pipefail

PACKAGES=(
  g++ clang-14 cmake ninja-build make pkg-config   # compilers and build tools
  libgtest-dev libgmock-dev googletest             # tests
  libbenchmark-dev                                 # micro-benchmarks
  python3 curl ca-certificates                     # interop tests and scripts
)
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(libboost-dev python3-uvloop)          # peers for bench/run_core.sh
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
