# Tests of the example scraper's building blocks, the dashboard assets, and scraper_demo end to end.

# tests/ is configured before examples/: add the scraper's libraries here when examples are built (the
# examples' own add_subdirectory then finds them and returns).
if(RIPTIDE_PERF_BUILD_EXAMPLES AND NOT TARGET riptide_example_transport)
  add_subdirectory(${PROJECT_SOURCE_DIR}/examples/scraper ${PROJECT_BINARY_DIR}/examples/scraper)
endif()

if(TARGET riptide_example_transport)
  riptide_perf_add_test(example_site_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/example_site_test.cpp
    LIBS riptide_example_transport
    LABELS examples)
endif()

# The dashboard assets: linked from the http library when it embeds them, otherwise compiled in here.
riptide_perf_add_test(dashboard_assets_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/dashboard_assets_test.cpp
  LIBS riptide::performance_core nlohmann_json::nlohmann_json
  LABELS examples http)
if(TARGET riptide_performance_http)
  get_target_property(http_has_dashboard riptide_performance_http RIPTIDE_PERF_HAS_DASHBOARD)
endif()
if(http_has_dashboard)
  target_link_libraries(dashboard_assets_test PRIVATE riptide::performance_http)
else()
  include(${PROJECT_SOURCE_DIR}/src/http/dashboard/dashboard.cmake)
  riptide_perf_add_dashboard_assets(dashboard_assets_test)
endif()

# scraper_demo end to end (endpoints, headless Chromium on /dashboard, reports). The demo target is
# defined later (examples/ is configured after tests/); generator expressions resolve it at generation.
if(TARGET riptide_example_transport AND RIPTIDE_PERF_BUILD_EXAMPLES AND TARGET riptide_performance_http
   AND TARGET riptide_performance_manager AND TARGET riptide_performance_cache AND TARGET riptide_performance_limits
   AND TARGET riptide_performance_profiling)  # the same conditions as the scraper_demo target (examples/)
  riptide_perf_add_test(scraper_demo_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/scraper_demo_test.cpp
    LIBS riptide_example_transport nlohmann_json::nlohmann_json riptide::performance_core  # core: features.hpp
         riptide_perf_test_support
    LABELS examples slow
    TIMEOUT 300)
  add_dependencies(scraper_demo_test scraper_demo)
  set_property(TEST scraper_demo_test APPEND PROPERTY ENVIRONMENT "RIPTIDE_PERF_TEST_SCRAPER_DEMO=$<TARGET_FILE:scraper_demo>")
endif()
