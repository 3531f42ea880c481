#pragma once
// A writer for the Prometheus text exposition format 0.0.4 (what `promtool check metrics` validates).
// It enforces the conventions instead of trusting callers: one HELP and TYPE per family, the `riptide_`
// prefix, valid metric and label names, `_total` on counters, label values escaped. Transport-free: the
// memory, cache and limits families all write through it, and the HTTP server only serves the text.
//
// The families are held as prometheus-cpp metric families and rendered by its text serializer, so the
// same families can also be handed to a host's prometheus-cpp exposer (core/prometheus_collectable.hpp).
// That library stays out of this header: it is included throughout, by hosts that never use it.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace riptide::performance {

enum class MetricType { counter, gauge, untyped };

struct Label {
  std::string_view name;   ///< [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"
  std::string_view value;  ///< any UTF-8 text; escaped on output
};

namespace detail {
struct PrometheusWriterAccess;
}

class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string prefix = "riptide_");
  ~PrometheusWriter();
  PrometheusWriter(PrometheusWriter&&) noexcept;
  PrometheusWriter& operator=(PrometheusWriter&&) noexcept;
  PrometheusWriter(const PrometheusWriter&) = delete;
  PrometheusWriter& operator=(const PrometheusWriter&) = delete;

  /// Starts family `prefix + name`. Counters must end in "_total" and names should carry base units
  /// (_bytes, _seconds). Throws std::invalid_argument on a bad or repeated name.
  void family(std::string_view name, MetricType type, std::string_view help);

  /// One sample of the current family. Throws std::logic_error when no family was started.
  /// Values are rendered with 16 significant digits (NaN as "Nan", infinities as "+Inf"/"-Inf").
  void sample(double value, std::initializer_list<Label> labels = {});
  /// Integer counters and sizes. Samples are doubles in the Prometheus data model (and in the server's
  /// storage), so a value is exact up to 2^53 (9007199254740992, about 9 PB as a byte count); above that
  /// it is rounded to the nearest double and rendered with 16 significant digits (2^64 - 1 as
  /// 1.844674407370955e+19).
  void sample(std::uint64_t value, std::initializer_list<Label> labels = {});

  /// Appends families a host already wrote in the text format (e.g. another metrics library's output).
  /// Their names join the repeated-name check. The text follows every family of the writer in text(),
  /// whatever the call order, and has no prometheus-cpp family form (metric_families() refuses it).
  void append_exposition(std::string_view exposition);

  /// The text written so far: the families, then any appended exposition. Rendered on the first call
  /// after a change, so it is not safe to call concurrently with itself on one writer.
  [[nodiscard]] const std::string& text() const;

  /// The content type scrapers expect for this format.
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  friend struct detail::PrometheusWriterAccess;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Escapes a label value (backslash, double quote, newline).
[[nodiscard]] std::string escape_label_value(std::string_view value);

}  // namespace riptide::performance
