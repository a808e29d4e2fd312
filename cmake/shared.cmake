# SPDX-License-Identifier: MIT
# libasyncio.so (BUILD_SHARED_LIBS=ON): a SONAME that names the ABI (libasyncio.so.0 while the
# API is 0.x), the full version on the file, and only the library's own symbols exported.
#
# Which symbols leave the library is decided twice:
# - at compile time, by visibility: the library is compiled with -fvisibility=hidden, and every
#   public header opens with `#pragma GCC visibility push(default)` (tests/layers_test.cpp checks
#   that each one does). GCC and clang give a function or class the visibility of its first
#   declaration, so what a public header declares (asyncio::detail included: its templates and
#   inline functions call those) is exported, and what only the sources declare - the OS layer,
#   the socket, pipe and TLS transports, the child watcher, the diagnostics' machinery - is not.
#   No per-declaration macro: the headers stay free of build plumbing and none can be forgotten.
# - at link time, by a version script (cmake/asyncio.map): of those, only asyncio's names; the std::
#   template instantiations the library makes for itself stay local.
# tests/package checks that every exported name is asyncio's, that the OS layer and the
# transports are not exported, and that consumers and asyncio-inspect link against the .so alone.
set_target_properties(asyncio PROPERTIES CXX_VISIBILITY_PRESET hidden)
set_target_properties(asyncio PROPERTIES
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR})
get_target_property(_asyncio_type asyncio TYPE)
if(_asyncio_type STREQUAL "SHARED_LIBRARY")
  set(_map ${PROJECT_SOURCE_DIR}/cmake/asyncio.map)
  target_link_options(asyncio PRIVATE "LINKER:--version-script=${_map}" "LINKER:--no-undefined")
  set_property(TARGET asyncio APPEND PROPERTY LINK_DEPENDS ${_map})
endif()

# Installed programs (asyncio-inspect) find the library next to them: $ORIGIN/../lib/<multiarch>.
file(RELATIVE_PATH _bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set(ASYNCIO_INSTALL_RPATH "$ORIGIN/${_bin_to_lib}")
