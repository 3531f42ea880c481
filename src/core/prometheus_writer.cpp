#include "riptide/performance/core/prometheus_writer.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

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

const char* type_name(MetricType type) noexcept {
  switch (type) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::untyped:
      break;
  }
  return "untyped";
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

PrometheusWriter::PrometheusWriter(std::string prefix) : prefix_(std::move(prefix)) {}

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
      if (!families_.insert(name).second) {
        throw std::invalid_argument("prometheus: family '" + name + "' written twice");
      }
    }
    line_start = line_end + 1;
  }
  text_.append(exposition);
  if (!exposition.empty() && exposition.back() != '\n') text_.push_back('\n');
  current_.clear();
}

void PrometheusWriter::family(std::string_view name, MetricType type, std::string_view help) {
  std::string full = prefix_;
  full += name;
  if (!valid_metric_name(full)) throw std::invalid_argument("prometheus: invalid metric name '" + full + "'");
  if (type == MetricType::counter && !full.ends_with("_total")) {
    throw std::invalid_argument("prometheus: counter '" + full + "' must end in _total");
  }
  if (type != MetricType::counter && full.ends_with("_total")) {
    throw std::invalid_argument("prometheus: only counters end in _total: '" + full + "'");
  }
  if (!families_.insert(full).second) throw std::invalid_argument("prometheus: family '" + full + "' written twice");
  text_ += "# HELP ";
  text_ += full;
  text_ += ' ';
  text_ += escape_help(help);
  text_ += "\n# TYPE ";
  text_ += full;
  text_ += ' ';
  text_ += type_name(type);
  text_ += '\n';
  current_ = std::move(full);
}

void PrometheusWriter::write_labels(std::initializer_list<Label> labels) {
  if (current_.empty()) throw std::logic_error("prometheus: sample before family()");
  text_ += current_;
  if (labels.size() == 0) return;
  text_ += '{';
  bool first = true;
  for (const auto& label : labels) {
    if (!valid_label_name(label.name)) {
      throw std::invalid_argument("prometheus: invalid label name '" + std::string{label.name} + "'");
    }
    if (!first) text_ += ',';
    first = false;
    text_ += label.name;
    text_ += "=\"";
    text_ += escape_label_value(label.value);
    text_ += '"';
  }
  text_ += '}';
}

void PrometheusWriter::sample(double value, std::initializer_list<Label> labels) {
  write_labels(labels);
  text_ += ' ';
  if (std::isnan(value)) {
    text_ += "NaN";
  } else if (std::isinf(value)) {
    text_ += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    text_.append(buffer, result.ptr);
  }
  text_ += '\n';
}

void PrometheusWriter::sample(std::uint64_t value, std::initializer_list<Label> labels) {
  write_labels(labels);
  text_ += ' ';
  text_ += std::to_string(value);
  text_ += '\n';
}

}  // namespace riptide::performance
