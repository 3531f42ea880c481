# The /dashboard page embedded into a library. src/http/CMakeLists.txt includes this file with one line
# after the http target exists:
#   include(dashboard/dashboard.cmake)
# which compiles the assets into riptide_performance_http. Another target (a test) can get its own copy
# with riptide_perf_add_dashboard_assets(<target>).
set(RIPTIDE_PERF_DASHBOARD_DIR ${CMAKE_CURRENT_LIST_DIR})

# Chart.js comes from Debian's libjs-chart.js (v3, UMD build: defines the global `Chart`).
find_file(RIPTIDE_PERF_CHARTJS chart.min.js PATHS /usr/share/javascript/chart.js NO_DEFAULT_PATH)
if(NOT RIPTIDE_PERF_CHARTJS)
  message(FATAL_ERROR "Chart.js not found in /usr/share/javascript/chart.js: install Debian's libjs-chart.js "
                      "(scripts/install-deps --build does)")
endif()

function(riptide_perf_add_dashboard_assets target)
  set(dir ${RIPTIDE_PERF_DASHBOARD_DIR})
  set(assets
    "/dashboard=${dir}/index.html"
    "/dashboard/dashboard.js=${dir}/dashboard.js"
    "/dashboard/dashboard.css=${dir}/dashboard.css"
    "/dashboard/chart.min.js=${RIPTIDE_PERF_CHARTJS}")
  set(files "")
  foreach(entry IN LISTS assets)
    string(REGEX REPLACE "^[^=]*=" "" file "${entry}")
    list(APPEND files "${file}")
  endforeach()
  set(output ${CMAKE_CURRENT_BINARY_DIR}/${target}_dashboard_assets.cpp)
  string(REPLACE ";" "|" assets_arg "${assets}")  # a list separator that survives the command line
  add_custom_command(OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} "-DOUTPUT=${output}" "-DASSETS=${assets_arg}" -P ${dir}/embed_assets.cmake
    DEPENDS ${files} ${dir}/embed_assets.cmake
    COMMENT "Embedding the dashboard assets into ${target}"
    VERBATIM)
  target_sources(${target} PRIVATE ${output} ${dir}/dashboard_assets.cpp)
  set_property(TARGET ${target} PROPERTY RIPTIDE_PERF_HAS_DASHBOARD ON)
endfunction()

if(TARGET riptide_performance_http)
  riptide_perf_add_dashboard_assets(riptide_performance_http)
endif()
