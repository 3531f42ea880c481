#include "riptide/performance/core/error.hpp"

#include <gtest/gtest.h>

namespace rp = riptide::performance;

TEST(ConfigError, MessageNamesSourceKeyValueProblemAndAcceptedForm) {
  const rp::ConfigError error({.source = "performance.toml:3:17",
                               .key = "targets.p50_latency_ms",
                               .value = "-5",
                               .problem = "must not be negative",
                               .accepted = "an integer from 1 to 3600000"});
  EXPECT_STREQ(error.what(),
               "performance.toml:3:17: targets.p50_latency_ms = -5: must not be negative "
               "(accepted: an integer from 1 to 3600000)");
  EXPECT_EQ(error.key(), "targets.p50_latency_ms");
  const rp::Error& base = error;
  EXPECT_NE(std::string(base.what()).find("performance.toml:3:17"), std::string::npos);
}
