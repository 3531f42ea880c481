#pragma once
// Skips a test that needs jemalloc serving malloc (exact counters, the heap profiler), with the library's own
// reason: the asan and tsan presets build without jemalloc, and such tests assert nothing there.

#include <gtest/gtest.h>

#include "riptide/performance/memory/jemalloc_ctl.hpp"

#define SKIP_UNLESS_JEMALLOC()                                                                         \
  if (!::riptide::performance::JemallocCtl::availability().serves_malloc)                              \
  GTEST_SKIP() << "needs jemalloc as the process allocator (the asan/tsan presets build without it): " \
               << ::riptide::performance::JemallocCtl::availability().reason
