// libFuzzer target: the duration grammar (core/duration.hpp) and the query-string parser with its typed
// getters (http/query.hpp), the two parsers every request-driven number goes through.
// Invariants:
//  - parse_duration never throws; a success lies in [0, 366 days] and format_duration of it parses back to
//    the same value (to double precision); a failure has a message that names the accepted form.
//  - Query::parse either throws HttpError 400 with code invalid_query/invalid_parameter and a message, or
//    gives at most 32 parameters with non-empty, distinct names; duration()/integer() on every parameter
//    either return a value inside the bounds asked for or throw a 400 that names the parameter, and the
//    message stays short whatever the value's length (the value is echoed truncated).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/query.hpp"

namespace rp = riptide::performance;
namespace http = riptide::performance::http;
using namespace std::chrono_literals;

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "duration_query_fuzz: %s\n", what);
  std::abort();
}

constexpr std::chrono::nanoseconds kMaxDuration = 366 * 24h;

void check_duration(std::string_view text) {
  const auto parsed = rp::parse_duration(text);
  if (const auto* problem = std::get_if<rp::DurationParseError>(&parsed)) {
    if (problem->message.find(rp::kDurationAcceptedForm) == std::string::npos) finding("error without accepted form");
    if (problem->message.size() > 64 + 300) finding("duration error message echoes too much input");
    return;
  }
  const auto value = std::get<std::chrono::nanoseconds>(parsed);
  if (value < 0ns || value > kMaxDuration) finding("duration outside [0, 366 days]");
  const std::string formatted = rp::format_duration(value);
  const auto again = rp::parse_duration(formatted);
  if (!std::holds_alternative<std::chrono::nanoseconds>(again)) finding("format_duration output does not parse");
  const auto back = std::get<std::chrono::nanoseconds>(again).count();
  // The parser sums doubles: exact below 2^53 ns (104 days), a few ns off above.
  const auto tolerance = std::max<std::int64_t>(1, value.count() >> 50);
  if (std::llabs(back - value.count()) > tolerance) finding("format/parse round trip changed the duration");
}

void check_bad_request(const http::HttpError& e, std::string_view name) {
  if (e.status() != 400) finding("query error that is not a 400");
  if (e.code() != "invalid_query" && e.code() != "invalid_parameter") finding("unexpected error code");
  const std::string_view message = e.what();
  if (message.empty()) finding("error without a message");
  if (!name.empty() && e.code() == "invalid_parameter" && message.find("query parameter") != 0) {
    finding("parameter error does not start by naming the parameter");
  }
  // Name and value are both echoed at most 64 bytes; the rest is fixed text and the accepted form.
  if (message.size() > 1024) finding("error message grows with the input");
}

void check_query(std::string_view text) {
  http::Query query;
  try {
    query = http::Query::parse(text);
  } catch (const http::HttpError& e) {
    check_bad_request(e, {});
    return;
  }
  if (query.parameters().size() > 32) finding("more than 32 parameters accepted");
  std::set<std::string_view> names;
  for (const auto& [name, value] : query.parameters()) {
    if (name.empty()) finding("empty parameter name accepted");
    if (!names.insert(name).second) finding("repeated parameter accepted");
    if (query.get(name) != std::string_view(value)) finding("get() differs from parameters()");
    try {
      const auto d = query.duration(name, 1h, 1s, 168h);
      if (d < 1s || d > 168h) finding("duration outside the bounds asked for");
    } catch (const http::HttpError& e) {
      check_bad_request(e, name);
    }
    try {
      const auto n = query.integer(name, 30, 1, 60);
      if (n < 1 || n > 60) finding("integer outside the bounds asked for");
    } catch (const http::HttpError& e) {
      check_bad_request(e, name);
    }
  }
  try {
    query.allow_only({"duration", "interval", "seconds"});
  } catch (const http::HttpError& e) {
    check_bad_request(e, "?");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_duration(text);
    check_query(text);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
