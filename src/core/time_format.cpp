#include "riptide/performance/core/time_format.hpp"

#include <array>
#include <cstdio>
#include <ctime>

namespace riptide::performance {
namespace {

std::tm to_utc_tm(std::chrono::system_clock::time_point time, std::chrono::milliseconds& millis) {
  const auto since_epoch = std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch());
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  millis = since_epoch - seconds;
  const std::time_t as_time_t = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&as_time_t, &utc);
  return utc;
}

}  // namespace

std::string format_rfc3339_utc(std::chrono::system_clock::time_point time) {
  std::chrono::milliseconds millis{};
  const std::tm utc = to_utc_tm(time, millis);
  std::array<char, 32> text{};
  const auto length = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return {text.data(), length};
}

std::string format_rfc3339_utc_millis(std::chrono::system_clock::time_point time) {
  std::chrono::milliseconds millis{};
  const std::tm utc = to_utc_tm(time, millis);
  std::array<char, 32> date{};
  const auto length = std::strftime(date.data(), date.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  std::array<char, 48> text{};
  const int written = std::snprintf(text.data(), text.size(), "%.*s.%03dZ", static_cast<int>(length), date.data(),
                                    static_cast<int>(millis.count()));
  return {text.data(), static_cast<std::size_t>(written)};
}

}  // namespace riptide::performance
