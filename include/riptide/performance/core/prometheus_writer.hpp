#pragma once
// A writer for the Prometheus text exposition format 0.0.4 (what `promtool check metrics` validates).
// It enforces the conventions instead of trusting callers: one HELP and TYPE per family, the `riptide_`
// prefix, valid metric and label names, `_total` on counters, label values escaped. Transport-free: the
// memory, cache and limits families all write through it, and the HTTP server only serves the text.

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

namespace riptide::performance {

enum class MetricType { counter, gauge, untyped };

struct Label {
  std::string_view name;   ///< [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"
  std::string_view value;  ///< any UTF-8 text; escaped on output
};

class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string prefix = "riptide_");

  /// Starts family `prefix + name`. Counters must end in "_total" and names should carry base units
  /// (_bytes, _seconds). Throws std::invalid_argument on a bad or repeated name.
  void family(std::string_view name, MetricType type, std::string_view help);

  /// One sample of the current family. Throws std::logic_error when no family was started.
  void sample(double value, std::initializer_list<Label> labels = {});
  /// Integer counters and sizes are written exactly.
  void sample(std::uint64_t value, std::initializer_list<Label> labels = {});

  /// Appends families a host already wrote in the text format (e.g. another metrics library's output).
  /// Their names join the repeated-name check.
  void append_exposition(std::string_view exposition);

  /// The text written so far.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

  /// The content type scrapers expect for this format.
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void write_labels(std::initializer_list<Label> labels);

  std::string prefix_;
  std::string text_;
  std::string current_;
  std::set<std::string, std::less<>> families_;
};

/// Escapes a label value (backslash, double quote, newline).
[[nodiscard]] std::string escape_label_value(std::string_view value);

}  // namespace riptide::performance
