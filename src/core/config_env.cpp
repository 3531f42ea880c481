// RIPTIDE_PERF_* environment variables: one per key (RIPTIDE_PERF_<SECTION>_<KEY>) plus short names
// (RIPTIDE_PERF_P50_LATENCY_MS, ...).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "config_schema.hpp"
#include "riptide/performance/core/duration.hpp"

extern char** environ;  // POSIX; declared by no standard header in C++

namespace riptide::performance {
namespace detail {
namespace {

struct Target {
  const Field* field;  // the key the variable names (an alias field for RIPTIDE_PERF_MONITORING_METRICS_PORT)
  std::string dotted;  // the dotted key reported in messages
};

std::optional<Target> target_of_variable(std::string_view name) {
  for (const Field& f : fields()) {
    if (f.env_name() == name) {
      return Target{&f, f.dotted()};
    }
  }
  for (const EnvAlias& alias : env_aliases()) {
    if (alias.variable == name) {
      return Target{find_field(alias.dotted), std::string(alias.dotted)};
    }
  }
  return std::nullopt;
}

std::vector<std::string> variable_names() {
  std::vector<std::string> names{std::string(kConfigVariable)};
  for (const EnvAlias& alias : env_aliases()) {
    names.emplace_back(alias.variable);
  }
  for (const Field& f : fields()) {
    names.push_back(f.env_name());
  }
  return names;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; });
  return out;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Variable text converted to the field's type, or what is wrong with it. Strict: no spaces, signs or hex.
std::variant<Value, std::string> parse_text(const Field& field, const std::string& text) {
  if (text.empty() && field.kind != FieldKind::kString) {
    return std::string("is empty");
  }
  switch (field.kind) {
    case FieldKind::kBool: {
      const std::string l = lower(text);
      if (l == "true" || l == "1") {
        return Value{true};
      }
      if (l == "false" || l == "0") {
        return Value{false};
      }
      return std::string("is not a boolean");
    }
    case FieldKind::kUnsigned: {
      if (text.front() == '-' && all_digits(std::string_view(text).substr(1))) {
        return "must be at least " + message_number(field.min);
      }
      if (!all_digits(text)) {
        return std::string("is not an integer");
      }
      std::uint64_t value = 0;
      const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
      if (result.ec == std::errc::result_out_of_range) {
        return "must be at most " + message_number(field.max);
      }
      return Value{value};
    }
    case FieldKind::kNumber: {
      double value = 0;
      const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
      if (result.ec == std::errc() && result.ptr == text.data() + text.size()) {
        return Value{value};
      }
      if (result.ec == std::errc::result_out_of_range) {
        return "must be at most " + message_number(field.max);
      }
      if (field.unit == FieldUnit::kNone) {
        return std::string("is not a number");
      }
      const auto parsed = parse_duration(text);
      if (std::holds_alternative<DurationParseError>(parsed)) {
        return std::string("is neither a number nor a duration");
      }
      const double ns = static_cast<double>(std::get<std::chrono::nanoseconds>(parsed).count());
      return Value{field.unit == FieldUnit::kSeconds ? ns / 1e9 : ns / 1e6};
    }
    case FieldKind::kString:
      return Value{text};
  }
  return std::string("is not accepted");
}

struct Seen {
  std::string variable;
  std::string written;
  Value value;
};

}  // namespace

void apply_environment(Config& config, const std::map<std::string, std::string>& environment, Origins* origins) {
  std::map<std::string, Seen> seen;  // real dotted key -> the variable that set it
  for (const auto& [name, text] : environment) {
    if (name.rfind(kEnvPrefix, 0) != 0 || name == kConfigVariable || is_reserved_variable(name)) {
      continue;
    }
    const auto target = target_of_variable(name);
    if (!target) {
      throw make_error(name, name, text, "unknown variable; did you mean '" + closest(name, variable_names()) + "'?",
                       "RIPTIDE_PERF_<SECTION>_<KEY> for a key of performance.toml (e.g. "
                       "RIPTIDE_PERF_CACHE_MAX_SIZE_MB), one of the spec's names (RIPTIDE_PERF_P50_LATENCY_MS, "
                       "RIPTIDE_PERF_METRICS_PORT, ...) or RIPTIDE_PERF_CONFIG; docs/configuration.md lists them");
    }
    const Field& field = target_of(*target->field);
    auto parsed = parse_text(field, text);
    if (const auto* problem = std::get_if<std::string>(&parsed)) {
      throw make_error(name, target->dotted, text, *problem, accepted_form(field, true));
    }
    Value value = std::get<Value>(std::move(parsed));
    if (auto problem = value_problem(field, value)) {
      throw make_error(name, target->dotted, text, *problem, accepted_form(field, true));
    }
    // Two names for one key (RIPTIDE_PERF_METRICS_PORT and RIPTIDE_PERF_HTTP_PORT) must agree.
    if (const auto earlier = seen.find(field.dotted()); earlier != seen.end() && earlier->second.value != value) {
      throw make_error(
          name, target->dotted, text,
          "conflicts with " + earlier->second.variable + "=" + earlier->second.written + "; both set " + field.dotted(),
          "only one of the two variables, or both with the same value");
    }
    seen[field.dotted()] = Seen{name, text, value};
    assign(config, field, value);
    if (origins != nullptr) {
      (*origins)[field.dotted()] = Origin{name, kLayerEnvironment, text};
    }
  }
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> variables;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t eq = text.find('=');
    if (eq != std::string_view::npos && text.substr(0, kEnvPrefix.size()) == kEnvPrefix) {
      variables.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
    }
  }
  return variables;
}

}  // namespace detail

void Config::apply_environment(const std::map<std::string, std::string>& environment) {
  detail::apply_environment(*this, environment, nullptr);
}

void Config::apply_process_environment() {
  detail::apply_environment(*this, detail::process_environment(), nullptr);
}

}  // namespace riptide::performance
