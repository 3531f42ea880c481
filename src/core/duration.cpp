#include "riptide/performance/core/duration.hpp"

#include <array>
#include <cmath>
#include <cstdint>

namespace riptide::performance {
namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t nanoseconds;
};

// "ms" before "m" so the longer suffix wins.
constexpr std::array<Unit, 4> kUnits{{
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
}};

constexpr double kMaxNanoseconds = 366.0 * 24 * 3600 * 1e9;

DurationParseError error(std::string_view text, std::string_view what) {
  std::string message = "invalid duration '";
  message += text;
  message += "': ";
  message += what;
  message += "; expected ";
  message += kDurationAcceptedForm;
  return DurationParseError{std::move(message)};
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

}  // namespace

std::variant<std::chrono::nanoseconds, DurationParseError> parse_duration(std::string_view text) {
  if (text.empty()) {
    return error(text, "it is empty");
  }
  if (text.size() > 64) {
    return error(text.substr(0, 64), "it is longer than 64 characters");
  }
  double total = 0.0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t number_start = pos;
    bool seen_digit = false;
    bool seen_point = false;
    while (pos < text.size() && (is_digit(text[pos]) || text[pos] == '.')) {
      if (text[pos] == '.') {
        if (seen_point) {
          return error(text, "a number has two decimal points");
        }
        seen_point = true;
      } else {
        seen_digit = true;
      }
      ++pos;
    }
    if (!seen_digit) {
      return error(text,
                   pos < text.size() ? "a unit or sign appears where a number should be" : "it ends without a number");
    }
    const std::string number(text.substr(number_start, pos - number_start));
    const Unit* unit = nullptr;
    for (const auto& candidate : kUnits) {
      if (text.substr(pos, candidate.suffix.size()) == candidate.suffix) {
        unit = &candidate;
        break;
      }
    }
    if (unit == nullptr) {
      return error(text, pos < text.size() ? "unknown unit" : "a number has no unit");
    }
    pos += unit->suffix.size();
    total += std::strtod(number.c_str(), nullptr) * static_cast<double>(unit->nanoseconds);
    if (total > kMaxNanoseconds) {
      return error(text, "it is longer than 366 days");
    }
  }
  return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(total))};
}

std::string format_duration(std::chrono::nanoseconds duration) {
  if (duration.count() <= 0) {
    return "0s";
  }
  std::int64_t remaining = duration.count();
  std::string text;
  for (auto it = kUnits.rbegin(); it != kUnits.rend(); ++it) {
    const std::int64_t whole = remaining / it->nanoseconds;
    if (whole > 0) {
      text += std::to_string(whole);
      text += it->suffix;
      remaining -= whole * it->nanoseconds;
    }
  }
  if (remaining > 0) {
    // Below a millisecond: keep it exact rather than silently rounding it away.
    text += std::to_string(static_cast<double>(remaining) / 1e6);
    while (!text.empty() && text.back() == '0') {
      text.pop_back();
    }
    text += "ms";
  }
  return text.empty() ? "0s" : text;
}

}  // namespace riptide::performance
