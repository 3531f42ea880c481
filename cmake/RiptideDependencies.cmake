# Finds every third-party dependency (all from Debian packages; see scripts/install-deps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(tomlplusplus REQUIRED)
# Only prometheus-cpp::core is linked (metric families and the text serializer); the package config
# also looks for civetweb and curl because Debian builds the pull and push parts, which stay unused.
find_package(prometheus-cpp CONFIG REQUIRED)

if(RIPTIDE_PERF_JEMALLOC)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
endif()
if(RIPTIDE_PERF_MEMORY_PROFILING)
  pkg_check_modules(LIBDW REQUIRED IMPORTED_TARGET libdw)
  find_package(ZLIB REQUIRED)
  find_path(PROTOZERO_INCLUDE_DIR protozero/pbf_writer.hpp REQUIRED)
endif()
if(RIPTIDE_PERF_REDIS)
  pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
endif()
if(RIPTIDE_PERF_HTTP)
  find_package(Boost 1.74 REQUIRED)
endif()
