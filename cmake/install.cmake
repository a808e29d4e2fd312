# SPDX-License-Identifier: MIT
# `cmake --install` puts headers, the library and a CMake package in place, so that
#   find_package(asyncio) + target_link_libraries(app asyncio::asyncio) works.
include(CMakePackageConfigHelpers)

install(TARGETS asyncio EXPORT asyncioTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/asyncio DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})  # MIT: the notice goes with the copies

set(_cfgdir ${CMAKE_INSTALL_LIBDIR}/cmake/asyncio)
install(EXPORT asyncioTargets NAMESPACE asyncio:: DESTINATION ${_cfgdir})
configure_package_config_file(cmake/asyncioConfig.cmake.in
  ${PROJECT_BINARY_DIR}/asyncioConfig.cmake INSTALL_DESTINATION ${_cfgdir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/asyncioConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/asyncioConfig.cmake
              ${PROJECT_BINARY_DIR}/asyncioConfigVersion.cmake DESTINATION ${_cfgdir})
