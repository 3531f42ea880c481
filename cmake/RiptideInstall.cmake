# Installs the libraries, headers, a CMake config package (find_package(riptide_performance CONFIG))
# and a pkg-config file (riptide_performance.pc).
include(CMakePackageConfigHelpers)

set(RIPTIDE_PERF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/riptide_performance)
get_property(riptide_perf_installed_targets GLOBAL PROPERTY RIPTIDE_PERF_AREA_TARGETS)

install(TARGETS riptide_performance ${riptide_perf_installed_targets}
  EXPORT riptide_performance-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/riptide/performance/core/features.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/riptide/performance/core)
install(EXPORT riptide_performance-targets
  NAMESPACE riptide::
  DESTINATION ${RIPTIDE_PERF_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/riptide_performance-config.cmake.in
  ${PROJECT_BINARY_DIR}/riptide_performance-config.cmake
  INSTALL_DESTINATION ${RIPTIDE_PERF_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/riptide_performance-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/riptide_performance-config.cmake
  ${PROJECT_BINARY_DIR}/riptide_performance-config-version.cmake
  DESTINATION ${RIPTIDE_PERF_CMAKE_DIR})

# pkg-config: the libraries in link order (dependents first), then their dependencies.
set(RIPTIDE_PERF_PC_LIBS "")
list(REVERSE riptide_perf_installed_targets)
foreach(target IN LISTS riptide_perf_installed_targets)
  string(APPEND RIPTIDE_PERF_PC_LIBS " -l${target}")
endforeach()
set(RIPTIDE_PERF_PC_REQUIRES "nlohmann_json spdlog tomlplusplus prometheus-cpp-core")
foreach(pair "RIPTIDE_PERF_JEMALLOC;jemalloc" "RIPTIDE_PERF_MEMORY_PROFILING;libdw zlib"
             "RIPTIDE_PERF_REDIS;hiredis")
  list(GET pair 0 option_name)
  list(GET pair 1 modules)
  if(${option_name})
    string(APPEND RIPTIDE_PERF_PC_REQUIRES " ${modules}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/riptide_performance.pc.in
  ${PROJECT_BINARY_DIR}/riptide_performance.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/riptide_performance.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
