# SPDX-License-Identifier: MIT
# libasyncio.so (BUILD_SHARED_LIBS=ON): a SONAME that names the ABI (libasyncio.so.0 while the
# API is 0.x), the full version on the file, and only the library's own symbols exported.
#
# Which symbols leave the library is decided at link time, by a version script
# (cmake/asyncio.map): the asyncio:: names (with their vtables, type information and guards) are
# exported, everything else - the std:: template instantiations the library makes for itself,
# helpers in unnamed namespaces - stays local. We chose this over -fvisibility=hidden with an
# ASYNCIO_API macro on each public declaration: the public headers are mostly templates and
# inline functions whose every out-of-line callee (many in asyncio::detail) would need the macro,
# a forgotten one is a link error that only a shared build shows, and the headers stay free of
# build plumbing. The cost: the asyncio::detail classes only the sources use (the socket and TLS
# transports, the server core) are exported too. Marking them hidden with a pragma in their
# private headers does not work, as GCC gives a class the visibility of its first declaration
# and some are forward-declared in public headers. tests/package checks that every exported
# name is asyncio's and that consumers and asyncio-inspect link against the .so alone.
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
