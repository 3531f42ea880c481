#include "riptide/performance/core/logger.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace rp = riptide::performance;

TEST(Logger, DefaultIsNamedAndReplaceable) {
  EXPECT_EQ(rp::logger()->name(), rp::kLoggerName);

  std::ostringstream captured;
  auto host_logger =
      std::make_shared<spdlog::logger>("host", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  rp::set_logger(host_logger);
  rp::logger()->warn("hello from the library");
  host_logger->flush();
  EXPECT_NE(captured.str().find("hello from the library"), std::string::npos);

  rp::set_logger(nullptr);
  EXPECT_EQ(rp::logger()->name(), rp::kLoggerName);
}
