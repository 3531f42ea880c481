#include "riptide/performance/core/duration.hpp"

#include <gtest/gtest.h>

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

std::chrono::nanoseconds parsed(std::string_view text) {
  auto result = rp::parse_duration(text);
  EXPECT_TRUE(std::holds_alternative<std::chrono::nanoseconds>(result)) << text;
  return std::holds_alternative<std::chrono::nanoseconds>(result) ? std::get<std::chrono::nanoseconds>(result)
                                                                  : std::chrono::nanoseconds{-1};
}

std::string refused(std::string_view text) {
  auto result = rp::parse_duration(text);
  EXPECT_TRUE(std::holds_alternative<rp::DurationParseError>(result)) << text;
  return std::holds_alternative<rp::DurationParseError>(result) ? std::get<rp::DurationParseError>(result).message
                                                                : std::string{};
}

}  // namespace

TEST(ParseDuration, AcceptsEveryUnitAndSequences) {
  EXPECT_EQ(parsed("250ms"), 250ms);
  EXPECT_EQ(parsed("30s"), 30s);
  EXPECT_EQ(parsed("5m"), 5min);
  EXPECT_EQ(parsed("1h"), 1h);
  EXPECT_EQ(parsed("1h30m"), 90min);
  EXPECT_EQ(parsed("1m30s500ms"), 90500ms);
  EXPECT_EQ(parsed("1.5s"), 1500ms);
  EXPECT_EQ(parsed("0s"), 0s);
}

TEST(ParseDuration, RefusesBadTextWithReasonAndAcceptedForm) {
  for (const char* bad : {"", "10", "h", "-5s", "5 s", "5x", "1.2.3s", "5sec", "s5", "1h 30m", "+1s", "999999h"}) {
    const std::string message = refused(bad);
    EXPECT_NE(message.find("invalid duration"), std::string::npos) << bad;
    EXPECT_NE(message.find("units ms, s, m, h"), std::string::npos) << bad;
  }
  EXPECT_NE(refused("10").find("no unit"), std::string::npos);
  EXPECT_NE(refused("5x").find("unknown unit"), std::string::npos);
  EXPECT_NE(refused("999999h").find("366 days"), std::string::npos);
}

TEST(FormatDuration, RoundTripsThroughTheParser) {
  EXPECT_EQ(rp::format_duration(90min), "1h30m");
  EXPECT_EQ(rp::format_duration(1500ms), "1s500ms");
  EXPECT_EQ(rp::format_duration(0s), "0s");
  for (auto d : {std::chrono::nanoseconds{1h}, std::chrono::nanoseconds{61s}, std::chrono::nanoseconds{1ms}}) {
    EXPECT_EQ(parsed(rp::format_duration(d)), d);
  }
}
