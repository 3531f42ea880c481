# Warnings, sanitizers and ccache for every target of this project (not for consumers).
find_program(RIPTIDE_PERF_CCACHE ccache)
if(RIPTIDE_PERF_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # Paths relative to the source tree and no build directory in the hash, so that two clones of the
  # project (a developer's tree and CI's fresh clone) share cached objects.
  set(riptide_perf_launcher env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_NOHASHDIR=true ${RIPTIDE_PERF_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${riptide_perf_launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${riptide_perf_launcher})
endif()

if(DEFINED ENV{CI} AND "$ENV{CI}" STREQUAL "true")
  set(RIPTIDE_PERF_WARNINGS_AS_ERRORS ON CACHE BOOL "" FORCE)
endif()

add_library(riptide_perf_warnings INTERFACE)
# -Wno-missing-field-initializers: g++ 12 warns on designated initializers that leave members at their
# default member initializers ({.port = 0}), which is exactly how option structs are meant to be used.
target_compile_options(riptide_perf_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers
  $<$<BOOL:${RIPTIDE_PERF_WARNINGS_AS_ERRORS}>:-Werror>)

if(RIPTIDE_PERF_SANITIZER STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(RIPTIDE_PERF_SANITIZER STREQUAL "thread")
  # -Wno-tsan: g++ 12 warns on every atomic_thread_fence it cannot instrument (Asio/Beast, libstdc++'s atomic
  # shared_ptr); under -Werror that would fail the build, and TSan's reports still run.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer $<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>)
  add_link_options(-fsanitize=thread)
elseif(RIPTIDE_PERF_SANITIZER)
  message(FATAL_ERROR "RIPTIDE_PERF_SANITIZER='${RIPTIDE_PERF_SANITIZER}' (accepted: '', address, thread)")
endif()

# Adds a library of one area with the project's warnings; `area` names the folder under src/.
function(riptide_perf_add_area_library area)
  add_library(riptide_performance_${area} ${ARGN})
  add_library(riptide::performance_${area} ALIAS riptide_performance_${area})
  set_target_properties(riptide_performance_${area} PROPERTIES EXPORT_NAME performance_${area})
  target_include_directories(riptide_performance_${area} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(riptide_performance_${area} PRIVATE $<BUILD_INTERFACE:riptide_perf_warnings>)
  target_compile_features(riptide_performance_${area} PUBLIC cxx_std_20)
  set_property(GLOBAL APPEND PROPERTY RIPTIDE_PERF_AREA_TARGETS riptide_performance_${area})
endfunction()
