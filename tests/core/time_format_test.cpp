#include "riptide/performance/core/time_format.hpp"

#include <gtest/gtest.h>

namespace rp = riptide::performance;
using namespace std::chrono_literals;

TEST(TimeFormat, Rfc3339Utc) {
  const std::chrono::system_clock::time_point t{std::chrono::seconds{1760178600}};  // 2025-10-11T10:30:00Z
  EXPECT_EQ(rp::format_rfc3339_utc(t), "2025-10-11T10:30:00Z");
  EXPECT_EQ(rp::format_rfc3339_utc(t + 999ms), "2025-10-11T10:30:00Z");
  EXPECT_EQ(rp::format_rfc3339_utc_millis(t + 125ms), "2025-10-11T10:30:00.125Z");
  EXPECT_EQ(rp::format_rfc3339_utc(std::chrono::system_clock::time_point{}), "1970-01-01T00:00:00Z");
}
