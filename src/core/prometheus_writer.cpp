#include "riptide/performance/core/prometheus_writer.hpp"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>

#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "riptide/performance/core/prometheus_collectable.hpp"

namespace riptide::performance {
namespace {

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) noexcept {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

prometheus::MetricType to_prometheus(MetricType type) noexcept {
  switch (type) {
    case MetricType::counter:
      return prometheus::MetricType::Counter;
    case MetricType::gauge:
      return prometheus::MetricType::Gauge;
    case MetricType::untyped:
      break;
  }
  return prometheus::MetricType::Untyped;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

struct PrometheusWriter::Impl {
  std::string prefix;
  std::vector<prometheus::MetricFamily> families;
  // Whether families.back() takes samples; append_exposition() closes it, as the text it adds
  // ends the family before it.
  bool open = false;
  std::string exposition;
  std::set<std::string, std::less<>> names;
  mutable std::string text;
  mutable bool rendered = true;

  void add(double value, std::initializer_list<Label> labels);
};

struct detail::PrometheusWriterAccess {
  static PrometheusWriter::Impl& impl(PrometheusWriter& writer) noexcept { return *writer.impl_; }
};

PrometheusWriter::PrometheusWriter(std::string prefix) : impl_(std::make_unique<Impl>()) {
  impl_->prefix = std::move(prefix);
}

PrometheusWriter::~PrometheusWriter() = default;
PrometheusWriter::PrometheusWriter(PrometheusWriter&&) noexcept = default;
PrometheusWriter& PrometheusWriter::operator=(PrometheusWriter&&) noexcept = default;

void PrometheusWriter::append_exposition(std::string_view exposition) {
  constexpr std::string_view kTypeLine = "# TYPE ";
  std::size_t line_start = 0;
  while (line_start < exposition.size()) {
    std::size_t line_end = exposition.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = exposition.size();
    const std::string_view line = exposition.substr(line_start, line_end - line_start);
    if (line.starts_with(kTypeLine)) {
      const std::string_view rest = line.substr(kTypeLine.size());
      const std::string name(rest.substr(0, rest.find(' ')));
      if (!impl_->names.insert(name).second) {
        throw std::invalid_argument("prometheus: family '" + name + "' written twice");
      }
    }
    line_start = line_end + 1;
  }
  impl_->exposition.append(exposition);
  if (!exposition.empty() && exposition.back() != '\n') impl_->exposition.push_back('\n');
  impl_->open = false;
  impl_->rendered = false;
}

void PrometheusWriter::family(std::string_view name, MetricType type, std::string_view help) {
  std::string full = impl_->prefix;
  full += name;
  if (!valid_metric_name(full)) throw std::invalid_argument("prometheus: invalid metric name '" + full + "'");
  if (type == MetricType::counter && !full.ends_with("_total")) {
    throw std::invalid_argument("prometheus: counter '" + full + "' must end in _total");
  }
  if (type != MetricType::counter && full.ends_with("_total")) {
    throw std::invalid_argument("prometheus: only counters end in _total: '" + full + "'");
  }
  if (!impl_->names.insert(full).second) {
    throw std::invalid_argument("prometheus: family '" + full + "' written twice");
  }
  prometheus::MetricFamily family;
  family.name = std::move(full);
  // The serializer writes HELP verbatim, so a newline in it would end the comment line and leave the
  // rest as an unparsable line: the text is stored escaped. An exposer the families are handed to
  // serializes them the same way.
  family.help = escape_help(help);
  family.type = to_prometheus(type);
  impl_->families.push_back(std::move(family));
  impl_->open = true;
  impl_->rendered = false;
}

void PrometheusWriter::Impl::add(double value, std::initializer_list<Label> labels) {
  if (!open) throw std::logic_error("prometheus: sample before family()");
  prometheus::ClientMetric metric;
  metric.label.reserve(labels.size());
  for (const auto& label : labels) {
    if (!valid_label_name(label.name)) {
      throw std::invalid_argument("prometheus: invalid label name '" + std::string{label.name} + "'");
    }
    // Label values are stored raw: the serializer escapes them.
    metric.label.push_back({std::string{label.name}, std::string{label.value}});
  }
  auto& family = families.back();
  switch (family.type) {
    case prometheus::MetricType::Counter:
      metric.counter.value = value;
      break;
    case prometheus::MetricType::Gauge:
      metric.gauge.value = value;
      break;
    default:
      metric.untyped.value = value;
      break;
  }
  family.metric.push_back(std::move(metric));
  rendered = false;
}

void PrometheusWriter::sample(double value, std::initializer_list<Label> labels) {
  impl_->add(value, labels);
}

void PrometheusWriter::sample(std::uint64_t value, std::initializer_list<Label> labels) {
  // Exact up to 2^53; see the declaration.
  impl_->add(static_cast<double>(value), labels);
}

const std::string& PrometheusWriter::text() const {
  if (!impl_->rendered) {
    impl_->text = prometheus::TextSerializer().Serialize(impl_->families);
    impl_->text += impl_->exposition;
    impl_->rendered = true;
  }
  return impl_->text;
}

std::vector<prometheus::MetricFamily> metric_families(PrometheusWriter&& writer) {
  auto& impl = detail::PrometheusWriterAccess::impl(writer);
  if (!impl.exposition.empty()) {
    throw std::logic_error("prometheus: text added with append_exposition() has no metric family form");
  }
  std::vector<prometheus::MetricFamily> families = std::move(impl.families);
  impl.families.clear();
  impl.names.clear();
  impl.open = false;
  impl.rendered = false;
  return families;
}

}  // namespace riptide::performance
