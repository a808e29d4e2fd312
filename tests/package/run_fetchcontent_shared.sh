#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One build of the library from source serves two checks (building it is what costs):
#  1. FetchContent: tests/package/fetchcontent pulls the checkout in (SOURCE_DIR, no network) as
#     a shared library without TLS (BUILD_SHARED_LIBS=ON, ASYNCIO_WITH_TLS=OFF), with
#     asyncio-inspect, warnings as errors (so the suite also compiles the code without TLS);
#     its consumer is built and run.
#  2. The shared package: that build installed into a scratch prefix has libasyncio.so.0 (the
#     SONAME), exports only asyncio's own symbols, needs no OpenSSL; a consumer builds against it
#     with find_package and runs, and the installed asyncio-inspect runs (found through its
#     RPATH, no LD_LIBRARY_PATH).
#   run_fetchcontent_shared.sh SOURCE_DIR WORKDIR CXX
set -euo pipefail
src=$1 work=$2 cxx=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}  # one job per core
set -x
cmake -S "$here/fetchcontent" -B "$work/build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
  -DASYNCIO_SOURCE_DIR="$src" -DBUILD_SHARED_LIBS=ON -DASYNCIO_WITH_TLS=OFF -DASYNCIO_BUILD_TOOLS=ON -DASYNCIO_WERROR=ON
cmake --build "$work/build" --target consumer asyncio-inspect
"$work/build/consumer"

cmake --install "$work/build" --prefix "$work/prefix"
lib=$(find "$work/prefix" -name 'libasyncio.so.0.*' -type f)
readelf -d "$lib" | grep -q 'SONAME.*\[libasyncio\.so\.0\]'
if readelf -d "$lib" | grep 'NEEDED.*libssl'; then exit 1; fi  # built without TLS
set +x
exported=$(nm -D --defined-only -C "$lib" | cut -d' ' -f3-)
# refuse WHAT NAMES: fails listing NAMES (the exported symbols found wrong), if there are any.
refuse() {
  if [[ -n $2 ]]; then
    echo "libasyncio.so exports $1:"
    echo "$2" | head -20
    exit 1
  fi
}
# Every exported name is asyncio's: its functions and variables, and their type information,
# vtables, guards and thunks (cmake/asyncio.map).
refuse "names that are not asyncio's" "$(grep -Ev '^((typeinfo( name)?|vtable|VTT|construction vtable|guard variable|TLS (init|wrapper) function) for |(non-virtual |virtual |covariant return )thunk to )?asyncio::|^asyncio_diagnostics_installed$' <<<"$exported" || true)"
# What only the sources declare stays inside (-fvisibility=hidden; cmake/shared.cmake): the OS
# layer, the transports, the child watcher.
refuse "names only its sources declare" "$(grep -E '^((typeinfo( name)?|vtable) for )?asyncio::detail::(os|SocketTransport|PipeTransport|ChildWatcher|SubprocessTransportImpl)::' <<<"$exported" || true)"
set -x
"$here/run_find_package.sh" "$work/prefix" "$work/consumer" "$cxx"
readelf -d "$work/consumer/consumer" | grep -q 'NEEDED.*libasyncio\.so\.0'
# It prints its usage (and exits 2) once it has loaded: a missing library would stop it before.
out=$(env -u LD_LIBRARY_PATH "$work/prefix/bin/asyncio-inspect" --help 2>&1 || true)
echo "$out"
grep -q 'usage: asyncio-inspect' <<<"$out"
