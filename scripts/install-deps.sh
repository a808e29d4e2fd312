#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the build, tests, examples and benchmarks need from Debian 12's packages.
# Idempotent: packages already present are skipped, and apt-get runs only when something is missing.
# Flags: --bench (peers of bench/run_core.sh), --docs (python3-matplotlib for tools/trace_to_png.py).
set -euo pipefail

PACKAGES=(
  g++ clang-14 cmake ninja-build make pkg-config   # compilers and build tools (pkg-config: tests/package)
  libclang-rt-14-dev                               # clang 14 sanitizer runtimes and libFuzzer
  libgtest-dev libgmock-dev googletest             # tests
  libbenchmark-dev                                 # micro-benchmarks
  libssl-dev openssl                               # TLS (and test certificates)
  python3 curl ca-certificates                     # interop tests and scripts
  doxygen                                          # the API reference (`docs` target, docs_reference test)
  netbase                                          # /etc/services: service names such as "http" (DNS tests)
)
for arg in "$@"; do
  case $arg in
    --bench) PACKAGES+=(libboost-dev python3-uvloop) ;;   # peers for bench/run_core.sh
    --docs) PACKAGES+=(python3-matplotlib) ;;             # tools/trace_to_png.py (docs/img timelines)
  esac
done

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
