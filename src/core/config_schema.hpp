#pragma once
// The one table that knows every configuration key: its section, name, type, range and accepted form.
// The TOML reader, the environment reader, validation, to_toml() and the tests all walk this table, so a
// key added here is read, checked, printed and tested everywhere at once. Internal to riptide_performance_core.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/error.hpp"

namespace riptide::performance::detail {

/// A pointer to the member a key sets; the alternative says the C++ type.
using FieldRef = std::variant<bool*, std::uint16_t*, std::uint32_t*, std::uint64_t*, double*, std::string*>;

enum class FieldKind { kBool, kUnsigned, kNumber, kString };

/// Numbers of seconds or milliseconds also accept a duration text ("30s", "1h30m").
enum class FieldUnit { kNone, kSeconds, kMilliseconds };

/// Returns what is wrong with a string value, or nothing when it is acceptable.
using StringCheck = std::optional<std::string> (*)(std::string_view);

struct Field {
  std::string_view section;
  std::string_view name;
  FieldRef (*ref)(Config&);
  FieldKind kind;
  double min = 0;              ///< inclusive unless min_exclusive; unsigned ranges fit a double exactly
  double max = 0;              ///< inclusive
  bool min_exclusive = false;  ///< "greater than min"
  FieldUnit unit = FieldUnit::kNone;
  StringCheck check = nullptr;       ///< strings only
  std::string_view string_accepted;  ///< strings only: the accepted form
  std::string_view alias_of;         ///< "http.port" for monitoring.metrics_port; empty for a real field

  [[nodiscard]] std::string dotted() const;
  [[nodiscard]] std::string env_name() const;  ///< RIPTIDE_PERF_<SECTION>_<NAME>
  [[nodiscard]] bool is_alias() const { return !alias_of.empty(); }
};

/// A parsed value before it is checked and stored.
using Value = std::variant<bool, std::uint64_t, double, std::string>;

/// Every key, in the order of the struct (aliases right after the section's real keys).
[[nodiscard]] std::span<const Field> fields();
[[nodiscard]] std::span<const std::string_view> sections();
[[nodiscard]] const Field* find_field(std::string_view section, std::string_view name);
[[nodiscard]] const Field* find_field(std::string_view dotted);
/// The real field behind an alias (itself for a real field).
[[nodiscard]] const Field& target_of(const Field& field);

/// The short variables (RIPTIDE_PERF_P50_LATENCY_MS, ...) and the dotted key each sets.
struct EnvAlias {
  std::string_view variable;
  std::string_view dotted;
};
[[nodiscard]] std::span<const EnvAlias> env_aliases();
inline constexpr std::string_view kEnvPrefix = "RIPTIDE_PERF_";
inline constexpr std::string_view kConfigVariable = "RIPTIDE_PERF_CONFIG";
/// Variables with the prefix that belong to the project's build and tests, not to the configuration.
[[nodiscard]] bool is_reserved_variable(std::string_view name);

/// The accepted form of a key in a TOML file or in an environment variable (booleans differ).
[[nodiscard]] std::string accepted_form(const Field& field, bool from_environment = false);
/// What is wrong with `value` for `field` (range, string form), or nothing.
[[nodiscard]] std::optional<std::string> value_problem(const Field& field, const Value& value);
/// Stores `value` (already checked) into the member of `config` that `field` names.
void assign(Config& config, const Field& field, const Value& value);
[[nodiscard]] Value read(const Config& config, const Field& field);
/// A TOML literal: true, 42, 1.5, "text" (escaped).
[[nodiscard]] std::string to_toml_literal(const Value& value);
/// A float as a TOML literal (always with '.', 'e', inf or nan) and as plain text for messages.
[[nodiscard]] std::string format_number(double value);
[[nodiscard]] std::string message_number(double value);

/// Where each key's current value came from; keys absent from the map hold their defaults.
struct Origin {
  std::string source;   ///< "performance.toml:3:17", "RIPTIDE_PERF_P50_LATENCY_MS", "code"
  int layer = 0;        ///< 0 defaults, 1 file, 2 environment, 3 code
  std::string written;  ///< the value as written there
};
using Origins = std::map<std::string, Origin, std::less<>>;
inline constexpr int kLayerFile = 1;
inline constexpr int kLayerEnvironment = 2;
inline constexpr int kLayerCode = 3;

void apply_toml(Config& config, std::string_view toml_text, std::string_view source_name, Origins* origins);
void apply_environment(Config& config, const std::map<std::string, std::string>& environment, Origins* origins);
/// The RIPTIDE_PERF_* variables of this process (reads environ: not safe against a concurrent setenv).
[[nodiscard]] std::map<std::string, std::string> process_environment();
/// Ranges of every key, then the relations between keys. Keys without an origin are named as coming from
/// `fallback_source`.
void validate(const Config& config, const Origins& origins, std::string_view fallback_source);

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), for "did you mean".
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);
/// The candidate nearest to `word` (first one on ties); empty when there are no candidates.
template <typename Range>
[[nodiscard]] std::string closest(std::string_view word, const Range& candidates) {
  std::string best;
  std::size_t best_distance = static_cast<std::size_t>(-1);
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

/// redis://user:secret@host -> redis://user:<mask>@host (the URL unchanged when it carries no password).
[[nodiscard]] std::string mask_url_password(std::string url, std::string_view mask);

[[nodiscard]] ConfigError make_error(std::string source, std::string key, std::string value, std::string problem,
                                     std::string accepted);

}  // namespace riptide::performance::detail
