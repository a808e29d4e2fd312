#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes the Debian package from a build tree (cpack -G DEB), checks its name and dependencies,
# unpacks it into a scratch folder (dpkg-deb -x: nothing is installed into the system) and builds
# and runs tests/package/consumer against the unpacked /usr.
#   run_deb.sh BUILD_DIR WORKDIR CXX HAS_TLS(0|1) SHARED(0|1)
set -euo pipefail
build=$1 work=$2 cxx=$3 has_tls=$4 shared=$5
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
set -x
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work"
deb=$(ls "$work"/libasyncio-dev_*.deb)
dpkg-deb -f "$deb" Package Version Depends
depends=$(dpkg-deb -f "$deb" Depends)
# OpenSSL only with TLS: its -dev package for the static library, its runtime for the shared one.
if [[ $has_tls == 1 && $shared == 1 ]]; then
  grep -q 'libssl3' <<<"$depends"
elif [[ $has_tls == 1 ]]; then
  grep -q 'libssl-dev' <<<"$depends"
else
  if grep 'libssl' <<<"$depends"; then exit 1; fi
fi
dpkg-deb -x "$deb" "$work/root"
test -f "$work/root/usr/include/asyncio/version.hpp"
test -x "$work/root/usr/bin/asyncio-inspect"
"$here/run_find_package.sh" "$work/root/usr" "$work/consumer" "$cxx"
