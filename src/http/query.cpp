#include "riptide/performance/http/query.hpp"

#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/http/http_error.hpp"

#include <charconv>

namespace riptide::performance::http {
namespace {

constexpr std::size_t kMaxParameters = 32;

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: '+' is a space, %XX a byte; anything else malformed is refused.
std::string decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      const int high = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (high < 0 || low < 0) {
        throw HttpError(400, "invalid_query",
                        "malformed percent-encoding in the query string; accepted: %XX with two hex digits");
      }
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string bounds_text(std::chrono::nanoseconds min, std::chrono::nanoseconds max) {
  return "from " + format_duration(min) + " to " + format_duration(max);
}

}  // namespace

Query Query::parse(std::string_view query) {
  Query result;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;  // "a=1&&b=2" and a trailing '&' are harmless
    const auto eq = part.find('=');
    std::string name = decode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string{} : decode(part.substr(eq + 1));
    if (name.empty()) {
      throw HttpError(400, "invalid_query", "query parameter without a name; accepted: name=value pairs joined by &");
    }
    if (result.get(name)) {
      throw HttpError::bad_parameter(name, value, "given more than once", "each parameter at most once");
    }
    if (result.parameters_.size() == kMaxParameters) {
      throw HttpError(400, "invalid_query", "more than 32 query parameters");
    }
    result.parameters_.emplace_back(std::move(name), std::move(value));
  }
  return result;
}

void Query::allow_only(std::initializer_list<std::string_view> accepted) const {
  for (const auto& [name, value] : parameters_) {
    bool known = false;
    for (const auto candidate : accepted) known = known || candidate == name;
    if (!known) {
      std::string list;
      for (const auto candidate : accepted) {
        if (!list.empty()) list += ", ";
        list += candidate;
      }
      throw HttpError::bad_parameter(name, value, "unknown parameter",
                                     list.empty() ? "no query parameters" : "only " + list);
    }
  }
}

std::optional<std::string_view> Query::get(std::string_view name) const noexcept {
  for (const auto& [key, value] : parameters_) {
    if (key == name) return std::string_view{value};
  }
  return std::nullopt;
}

std::chrono::nanoseconds Query::duration(std::string_view name, std::chrono::nanoseconds fallback,
                                         std::chrono::nanoseconds min, std::chrono::nanoseconds max) const {
  const auto text = get(name);
  if (!text) return fallback;
  auto parsed = parse_duration(*text);
  if (auto* problem = std::get_if<DurationParseError>(&parsed)) {
    throw HttpError::bad_parameter(name, *text, problem->message,
                                   std::string{kDurationAcceptedForm} + ", " + bounds_text(min, max));
  }
  const auto value = std::get<std::chrono::nanoseconds>(parsed);
  if (value < min || value > max) {
    throw HttpError::bad_parameter(name, *text, "out of range", bounds_text(min, max));
  }
  return value;
}

std::int64_t Query::integer(std::string_view name, std::int64_t fallback, std::int64_t min, std::int64_t max) const {
  const auto text = get(name);
  if (!text) return fallback;
  const std::string accepted = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  std::int64_t value = 0;
  const char* first = text->data();
  const char* last = first + text->size();
  // from_chars would accept a leading '-'; the grammar here is digits only.
  const bool digits_only = !text->empty() && text->find_first_not_of("0123456789") == std::string_view::npos;
  const auto [end, error] = std::from_chars(first, last, value);
  if (!digits_only || error != std::errc{} || end != last) {
    throw HttpError::bad_parameter(name, *text, "not a whole number", accepted);
  }
  if (value < min || value > max) throw HttpError::bad_parameter(name, *text, "out of range", accepted);
  return value;
}

}  // namespace riptide::performance::http
