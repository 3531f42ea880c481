// performance.toml: reading (with positions for every error) and writing the effective configuration.
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config_schema.hpp"
#include "riptide/performance/core/duration.hpp"

namespace riptide::performance {
namespace detail {
namespace {

constexpr std::string_view kTomlSyntax = "TOML v1.0.0 syntax (https://toml.io/en/v1.0.0)";
constexpr std::size_t kMaxWritten = 200;  // longer values are cut in messages

std::string position(std::string_view source_name, const toml::source_position& where) {
  return std::string(source_name) + ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
}

// Byte offset of the first character of each line, so a position maps to bytes by scanning one line only.
std::vector<std::size_t> line_starts(std::string_view text) {
  std::vector<std::size_t> starts{0};
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      starts.push_back(i + 1);
    }
  }
  return starts;
}

// toml++ counts columns in code points; continuation bytes of UTF-8 do not advance the column.
std::size_t byte_offset(std::string_view text, const std::vector<std::size_t>& starts,
                        const toml::source_position& where) {
  if (where.line == 0 || where.line > starts.size() || where.column == 0) {
    return std::string_view::npos;
  }
  std::uint32_t column = 1;
  for (std::size_t i = starts[where.line - 1]; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) == 0x80) {
      continue;
    }
    if (column == where.column) {
      return i;
    }
    if (c == '\n') {
      return std::string_view::npos;
    }
    ++column;
  }
  return column == where.column ? text.size() : std::string_view::npos;
}

std::string clip(std::string_view text) {
  if (text.size() <= kMaxWritten) {
    return std::string(text);
  }
  return std::string(text.substr(0, kMaxWritten)) + "...";
}

// The value exactly as the file spells it ("1_500", "\"30s\"", "[1, 2]").
std::string written(std::string_view text, const std::vector<std::size_t>& starts, const toml::source_region& region) {
  const std::size_t begin = byte_offset(text, starts, region.begin);
  const std::size_t end = byte_offset(text, starts, region.end);
  if (begin == std::string_view::npos || end == std::string_view::npos || end < begin) {
    return {};
  }
  return clip(text.substr(begin, end - begin));
}

std::string_view trim(std::string_view s) {
  const std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) {
    return {};
  }
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// toml++ reports where parsing stopped, not which key it was reading; the line tells us that.
std::pair<std::string, std::string> key_and_value_at(std::string_view text, std::uint32_t line_number) {
  std::string section;
  std::uint32_t line_no = 1;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = trim(text.substr(start, end - start));
    const bool header = !line.empty() && line.front() == '[';
    if (line_no == line_number) {
      if (header) {
        return {"(table header)", clip(line)};
      }
      const std::size_t eq = line.find('=');
      const std::string_view key = trim(line.substr(0, eq));
      const bool key_like =
          eq != std::string_view::npos && !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
          });
      if (key_like) {
        return {section.empty() ? std::string(key) : section + "." + std::string(key), clip(trim(line.substr(eq + 1)))};
      }
      return {"(document)", clip(line)};
    }
    if (header) {
      std::string_view inner = line;
      while (!inner.empty() && inner.front() == '[') {
        inner.remove_prefix(1);
      }
      section = std::string(trim(inner.substr(0, inner.find(']'))));
    }
    if (end == text.size()) {
      break;
    }
    start = end + 1;
    ++line_no;
  }
  return {"(document)", ""};
}

std::string type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string expected_type(const Field& field) {
  switch (field.kind) {
    case FieldKind::kBool:
      return "a boolean";
    case FieldKind::kUnsigned:
      return "an integer";
    case FieldKind::kNumber:
      return field.unit == FieldUnit::kNone ? "a number" : "a number or a duration string";
    case FieldKind::kString:
      return "a string";
  }
  return {};
}

// A node converted to the field's type, or what is wrong with it.
std::variant<Value, std::string> convert(const Field& field, const toml::node& node) {
  const std::string wrong_type = "is " + type_name(node.type()) + ", not " + expected_type(field);
  switch (field.kind) {
    case FieldKind::kBool:
      if (const auto* b = node.as_boolean()) {
        return Value{b->get()};
      }
      return wrong_type;
    case FieldKind::kUnsigned:
      if (const auto* i = node.as_integer()) {
        if (i->get() < 0) {
          return "must be at least " + message_number(field.min);
        }
        return Value{static_cast<std::uint64_t>(i->get())};
      }
      return wrong_type;
    case FieldKind::kNumber:
      if (const auto* i = node.as_integer()) {
        return Value{static_cast<double>(i->get())};
      }
      if (const auto* f = node.as_floating_point()) {
        return Value{f->get()};
      }
      if (const auto* s = node.as_string(); s != nullptr && field.unit != FieldUnit::kNone) {
        const auto parsed = parse_duration(s->get());
        if (const auto* error = std::get_if<DurationParseError>(&parsed)) {
          const std::string& message = error->message;
          return "is not a duration: " + message.substr(0, message.find("; expected"));
        }
        const double ns = static_cast<double>(std::get<std::chrono::nanoseconds>(parsed).count());
        return Value{field.unit == FieldUnit::kSeconds ? ns / 1e9 : ns / 1e6};
      }
      return wrong_type;
    case FieldKind::kString:
      if (const auto* s = node.as_string()) {
        return Value{s->get()};
      }
      return wrong_type;
  }
  return wrong_type;
}

std::vector<std::string> dotted_names(std::string_view section) {
  std::vector<std::string> names;
  for (const Field& f : fields()) {
    if (section.empty() || f.section == section) {
      names.push_back(section.empty() ? f.dotted() : std::string(f.name));
    }
  }
  return names;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += out.empty() ? "" : ", ";
    out += item;
  }
  return out;
}

struct Step {
  toml::source_position where;
  std::function<void()> run;
};

class TomlReader {
 public:
  TomlReader(Config& config, std::string_view text, std::string_view source_name, Origins* origins)
      : config_(config), text_(text), source_(source_name), origins_(origins) {}

  void read() {
    line_starts_ = line_starts(text_);
    toml::table document;
    try {
      document = toml::parse(text_, std::string_view(source_));
    } catch (const toml::parse_error& e) {
      auto [key, value] = key_and_value_at(text_, e.source().begin.line);
      throw make_error(position(source_, e.source().begin), std::move(key), std::move(value),
                       std::string(e.description()), std::string(kTomlSyntax));
    }
    // toml++ keeps keys sorted; steps run in file order so the first error reported is the first in the file.
    std::vector<Step> steps;
    for (auto&& entry : document) {
      plan_section(entry.first, entry.second, steps);
    }
    std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) {
      return a.where.line != b.where.line ? a.where.line < b.where.line : a.where.column < b.where.column;
    });
    for (const Step& step : steps) {
      step.run();
    }
  }

 private:
  struct Set {
    const Field* field;
    Value value;
    std::string source;
    std::string written;
  };

  void plan_section(const toml::key& key, const toml::node& node, std::vector<Step>& steps) {
    const std::string name(key.str());
    const auto& known = sections();
    const bool is_section = std::find(known.begin(), known.end(), name) != known.end();
    if (!node.is_table()) {
      steps.push_back({key.source().begin, [this, &key, &node, name, is_section] {
                         if (is_section) {
                           throw make_error(position(source_, node.source().begin), name,
                                            written(text_, line_starts_, node.source()),
                                            "is " + type_name(node.type()) + ", not a table", "a [" + name + "] table");
                         }
                         unknown_top_level_key(key, node);
                       }});
      return;
    }
    if (!is_section) {
      steps.push_back({key.source().begin, [this, &key, name] {
                         std::vector<std::string> section_names(sections().begin(), sections().end());
                         throw make_error(position(source_, key.source().begin), name, "",
                                          "unknown section; did you mean '" + closest(name, section_names) + "'?",
                                          "one of the sections " + join(section_names));
                       }});
      return;
    }
    for (auto&& entry : *node.as_table()) {
      const toml::key& child_key = entry.first;
      const toml::node& child = entry.second;
      steps.push_back(
          {child_key.source().begin, [this, name, &child_key, &child] { apply_key(name, child_key, child); }});
    }
  }

  // A key outside every section, most often a key whose [section] line is missing.
  [[noreturn]] void unknown_top_level_key(const toml::key& key, const toml::node& node) {
    const std::string name(key.str());
    std::string suggestion;
    std::size_t best = static_cast<std::size_t>(-1);
    for (const Field& f : fields()) {
      const std::size_t d = edit_distance(name, f.name);
      if (d < best) {
        best = d;
        suggestion = f.dotted();
      }
    }
    throw make_error(position(source_, key.source().begin), name, written(text_, line_starts_, node.source()),
                     "unknown key outside any section; did you mean '" + suggestion + "'?",
                     "keys inside the sections [targets] [monitoring] [profiling] [cache] [limits] [http] [redis]");
  }

  void apply_key(const std::string& section, const toml::key& key, const toml::node& node) {
    const std::string name(key.str());
    const Field* field = find_field(section, name);
    if (field == nullptr) {
      unknown_key(section, key, node);
    }
    const std::string where = position(source_, node.source().begin);
    const std::string as_written = written(text_, line_starts_, node.source());
    auto converted = convert(*field, node);
    if (const auto* problem = std::get_if<std::string>(&converted)) {
      throw make_error(where, field->dotted(), as_written, *problem, accepted_form(*field));
    }
    Value value = std::get<Value>(std::move(converted));
    if (auto problem = value_problem(*field, value)) {
      throw make_error(where, field->dotted(), as_written, *problem, accepted_form(*field));
    }
    const Field& target = target_of(*field);
    // monitoring.metrics_port (the original name of the port key) and http.port are one setting; two different values
    // are a mistake.
    if (const auto earlier = sets_.find(target.dotted()); earlier != sets_.end() && earlier->second.value != value) {
      throw make_error(where, field->dotted(), as_written,
                       "conflicts with " + earlier->second.field->dotted() + " = " + earlier->second.written + " at " +
                           earlier->second.source + "; both set the HTTP port",
                       "only one of monitoring.metrics_port and http.port, or both with the same value");
    }
    sets_[target.dotted()] = Set{field, value, where, as_written};
    assign(config_, target, value);
    if (origins_ != nullptr) {
      (*origins_)[target.dotted()] = Origin{where, kLayerFile, as_written};
    }
  }

  [[noreturn]] void unknown_key(const std::string& section, const toml::key& key, const toml::node& node) {
    const std::string name(key.str());
    // The right key in the wrong section is the likeliest mistake; otherwise the nearest key of this section.
    std::string suggestion;
    for (const Field& f : fields()) {
      if (f.name == name) {
        suggestion = f.dotted();
        break;
      }
    }
    const auto names = dotted_names(section);
    if (suggestion.empty()) {
      suggestion = section + "." + closest(name, names);
    }
    throw make_error(position(source_, key.source().begin), section + "." + name,
                     written(text_, line_starts_, node.source()), "unknown key; did you mean '" + suggestion + "'?",
                     "a key of [" + section + "]: " + join(names));
  }

  Config& config_;
  std::string_view text_;
  std::string source_;
  Origins* origins_;
  std::map<std::string, Set> sets_;
  std::vector<std::size_t> line_starts_;
};

}  // namespace

void apply_toml(Config& config, std::string_view toml_text, std::string_view source_name, Origins* origins) {
  TomlReader(config, toml_text, source_name, origins).read();
}

}  // namespace detail

Config Config::from_toml(std::string_view toml_text, std::string_view source_name) {
  Config config;
  detail::Origins origins;
  detail::apply_toml(config, toml_text, source_name, &origins);
  detail::validate(config, origins, "defaults");
  return config;
}

void Config::apply_toml(std::string_view toml_text, std::string_view source_name) {
  detail::apply_toml(*this, toml_text, source_name, nullptr);
}

std::string Config::to_toml() const {
  std::string out = "# Effective riptide-performance configuration (defaults < file < environment < code)\n";
  std::string_view section;
  for (const detail::Field& field : detail::fields()) {
    if (field.is_alias()) {
      continue;  // written once, under its real key
    }
    if (field.section != section) {
      section = field.section;
      out += "\n[";
      out += section;
      out += "]\n";
    }
    detail::Value value = detail::read(*this, field);
    if (field.section == "http" && field.name == "token" && !std::get<std::string>(value).empty()) {
      value = std::string("<redacted>");
    } else if (field.section == "redis" && field.name == "url") {
      value = detail::mask_url_password(std::get<std::string>(value), "<redacted>");  // logs see this text
    }
    out += field.name;
    out += " = ";
    out += detail::to_toml_literal(value);
    out += '\n';
  }
  return out;
}

}  // namespace riptide::performance
