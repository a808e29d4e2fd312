# SPDX-License-Identifier: MIT
# `cmake --install` puts headers, the library, a CMake package and a pkg-config file in place
# (GNUInstallDirs layout), so that
#   find_package(asyncio) + target_link_libraries(app asyncio::asyncio)   or
#   c++ -std=c++20 app.cpp $(pkg-config --cflags --libs asyncio)
# works; `cpack -G DEB` packs the same files as libasyncio-dev. tests/package/ checks all of it.
include(CMakePackageConfigHelpers)

install(TARGETS asyncio EXPORT asyncioTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/asyncio DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/asyncio/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/asyncio)
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})  # MIT: the notice goes with the copies

get_target_property(_asyncio_type asyncio TYPE)
set(ASYNCIO_SHARED_BOOL FALSE)
if(_asyncio_type STREQUAL "SHARED_LIBRARY")
  set(ASYNCIO_SHARED_BOOL TRUE)
endif()
set(ASYNCIO_HAS_TLS_BOOL FALSE)
if(ASYNCIO_WITH_TLS)
  set(ASYNCIO_HAS_TLS_BOOL TRUE)
endif()

set(_cfgdir ${CMAKE_INSTALL_LIBDIR}/cmake/asyncio)
install(EXPORT asyncioTargets NAMESPACE asyncio:: DESTINATION ${_cfgdir})
configure_package_config_file(cmake/asyncioConfig.cmake.in
  ${PROJECT_BINARY_DIR}/asyncioConfig.cmake INSTALL_DESTINATION ${_cfgdir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/asyncioConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/asyncioConfig.cmake
              ${PROJECT_BINARY_DIR}/asyncioConfigVersion.cmake DESTINATION ${_cfgdir})

# asyncio.pc. A static libasyncio.a needs OpenSSL on the program's link line, so -lssl -lcrypto
# go in Libs; a shared library links OpenSSL itself (Libs.private, for `pkg-config --static`).
set(_pcdir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH ASYNCIO_PC_TO_PREFIX /prefix/${_pcdir} /prefix)
string(REGEX REPLACE "/$" "" ASYNCIO_PC_TO_PREFIX "${ASYNCIO_PC_TO_PREFIX}")
set(ASYNCIO_PC_LIBS "")
set(ASYNCIO_PC_LIBS_PRIVATE "")
if(ASYNCIO_WITH_TLS)
  if(ASYNCIO_SHARED_BOOL)
    set(ASYNCIO_PC_LIBS_PRIVATE "-lssl -lcrypto")
  else()
    set(ASYNCIO_PC_LIBS "-lssl -lcrypto")
  endif()
endif()
configure_file(cmake/asyncio.pc.in ${PROJECT_BINARY_DIR}/asyncio.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/asyncio.pc DESTINATION ${_pcdir})

# The Debian package, from the same install: `cpack -G DEB --config <build>/CPackConfig.cmake`.
# Only for a top-level build (CPack writes its configuration into the top binary folder).
if(PROJECT_IS_TOP_LEVEL)
  set(CPACK_PACKAGE_NAME libasyncio-dev)
  set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
  set(CPACK_PACKAGE_CONTACT "asyncio for C++ maintainers")
  set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # libasyncio-dev_<version>_<arch>.deb
  set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
  # Written out, not computed by dpkg-shlibdeps: a C++20 library built on Debian 12 (libstdc++
  # of g++ 12); OpenSSL only with TLS: its -dev package for a static library (programs link
  # -lssl -lcrypto themselves), its runtime for the shared one.
  set(_depends "libc6 (>= 2.34), libgcc-s1, libstdc++6 (>= 12)")
  if(ASYNCIO_WITH_TLS AND ASYNCIO_SHARED_BOOL)
    string(APPEND _depends ", libssl3 (>= 3.0.0)")
  elseif(ASYNCIO_WITH_TLS)
    string(APPEND _depends ", libssl-dev (>= 3.0.0)")
  endif()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_depends}")
  include(CPack)
endif()
