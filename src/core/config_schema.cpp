#include "config_schema.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "riptide/performance/core/duration.hpp"

namespace riptide::performance::detail {
namespace {

bool is_control(char c) {
  return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters.
bool is_host_name(std::string_view text) {
  if (text.empty() || text.size() > 253) {
    return false;
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t dot = std::min(text.find('.', start), text.size());
    const std::string_view label = text.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; })) {
      return false;
    }
    start = dot + 1;
  }
  return true;
}

bool is_ip_address(std::string_view text) {
  const std::string s(text);
  unsigned char buffer[16];
  return inet_pton(AF_INET, s.c_str(), buffer) == 1 || inet_pton(AF_INET6, s.c_str(), buffer) == 1;
}

std::optional<std::string> check_bind(std::string_view text) {
  if (text.empty()) {
    return "must not be empty";
  }
  // What the server can listen on without a name lookup: the same set http::Server::start accepts.
  if (!is_ip_address(text) && text != "localhost") {
    return "is not an IPv4 or IPv6 address or localhost";
  }
  return std::nullopt;
}

// RFC 6750 b64token, the form a bearer token takes in an Authorization header.
std::optional<std::string> check_token(std::string_view text) {
  if (text.size() > 4096) {
    return "is longer than 4096 characters";
  }
  const std::size_t body_end = text.find_last_not_of('=') + 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok =
        i >= body_end ? c == '=' : (is_alnum(c) || std::string_view("-._~+/").find(c) != std::string_view::npos);
    if (!ok || (i == 0 && c == '=')) {
      return "contains a character a bearer token cannot carry";
    }
  }
  return std::nullopt;
}

// redis://[[user]:password@]host[:port][/db]
std::optional<std::string> check_redis_url(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  constexpr std::string_view kScheme = "redis://";
  if (text.substr(0, kScheme.size()) != kScheme) {
    return "does not start with redis://";
  }
  std::string_view rest = text.substr(kScheme.size());
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    rest = rest.substr(at + 1);
  }
  std::string_view db;
  if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!all_digits(db) || db.size() > 5) {
      return "has a database number that is not an integer from 0 to 99999";
    }
  }
  std::string_view host = rest;
  if (!host.empty() && host.front() == '[') {  // [::1]:6379
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) {
      return "has an IPv6 host without its closing ']'";
    }
    const std::string_view port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() &&
        (port.front() != ':' || !all_digits(port.substr(1)) || port.size() > 6 ||
         std::stoul(std::string(port.substr(1))) == 0 || std::stoul(std::string(port.substr(1))) > 65535)) {
      return "has a port that is not an integer from 1 to 65535";
    }
    if (!is_ip_address(host)) {
      return "has a host that is not an IPv6 address inside [ ]";
    }
    return std::nullopt;
  }
  if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (!all_digits(port) || port.size() > 5 || std::stoul(std::string(port)) == 0 ||
        std::stoul(std::string(port)) > 65535) {
      return "has a port that is not an integer from 1 to 65535";
    }
  }
  if (!is_ip_address(host) && !is_host_name(host)) {
    return "has no valid host";
  }
  return std::nullopt;
}

std::optional<std::string> check_key_prefix(std::string_view text) {
  if (text.size() > 128) {
    return "is longer than 128 bytes";
  }
  if (std::any_of(text.begin(), text.end(), [](char c) { return is_control(c) || c == ' '; })) {
    return "contains a space or a control character";
  }
  return std::nullopt;
}

std::optional<std::string> check_path(std::string_view text) {
  if (text.size() > 4096) {
    return "is longer than 4096 bytes";
  }
  if (std::any_of(text.begin(), text.end(), is_control)) {
    return "contains a control character";
  }
  return std::nullopt;
}

// Builders keep each table row on one line.
Field make(std::string_view s, std::string_view n, FieldRef (*ref)(Config&), FieldKind kind) {
  Field f{};
  f.section = s;
  f.name = n;
  f.ref = ref;
  f.kind = kind;
  return f;
}
Field flag(std::string_view s, std::string_view n, FieldRef (*ref)(Config&)) {
  return make(s, n, ref, FieldKind::kBool);
}
Field whole(std::string_view s, std::string_view n, FieldRef (*ref)(Config&), double min, double max) {
  Field f = make(s, n, ref, FieldKind::kUnsigned);
  f.min = min;
  f.max = max;
  return f;
}
Field number(std::string_view s, std::string_view n, FieldRef (*ref)(Config&), double min, double max,
             bool min_exclusive = false, FieldUnit unit = FieldUnit::kNone) {
  Field f = make(s, n, ref, FieldKind::kNumber);
  f.min = min;
  f.max = max;
  f.min_exclusive = min_exclusive;
  f.unit = unit;
  return f;
}
Field seconds(std::string_view s, std::string_view n, FieldRef (*ref)(Config&), double min, double max,
              bool min_exclusive = false) {
  return number(s, n, ref, min, max, min_exclusive, FieldUnit::kSeconds);
}
Field millis(std::string_view s, std::string_view n, FieldRef (*ref)(Config&), double min, double max,
             bool min_exclusive = false) {
  return number(s, n, ref, min, max, min_exclusive, FieldUnit::kMilliseconds);
}
Field text(std::string_view s, std::string_view n, FieldRef (*ref)(Config&), StringCheck check,
           std::string_view accepted) {
  Field f = make(s, n, ref, FieldKind::kString);
  f.check = check;
  f.string_accepted = accepted;
  return f;
}

#define RP_KEY(section, name) #section, #name, [](Config & c) -> FieldRef { return &c.section.name; }

constexpr double kDay = 24 * 3600.0;
constexpr double kU32 = 4294967295.0;

// Ranges: wide enough for any real deployment, narrow enough that a typo (an extra zero group, a value in
// the wrong unit) or a value that would exhaust memory is caught. docs/configuration.md lists them.
const std::vector<Field>& table() {
  // Never destroyed: a reload or validation may run on a library thread while the process exits.
  static const auto* kTable = new std::vector<Field>([] {
    std::vector<Field> t{
        whole(RP_KEY(targets, p50_latency_ms), 1, 3'600'000),
        whole(RP_KEY(targets, p95_latency_ms), 1, 3'600'000),
        whole(RP_KEY(targets, max_memory_mb), 1, 16'777'216),
        whole(RP_KEY(targets, memory_alert_mb), 1, 16'777'216),
        number(RP_KEY(targets, min_throughput_pps), 0, 1e6),
        number(RP_KEY(targets, max_ai_overhead_percent), 0, 100),

        flag(RP_KEY(monitoring, enabled)),
        seconds(RP_KEY(monitoring, sample_interval_sec), 0.01, 3600),
        flag(RP_KEY(monitoring, alert_on_violations)),
        seconds(RP_KEY(monitoring, history_sec), 1, 31 * kDay),
        seconds(RP_KEY(monitoring, long_history_sec), 0, 366 * kDay),
        seconds(RP_KEY(monitoring, long_history_interval_sec), 1, kDay),
        seconds(RP_KEY(monitoring, throughput_window_sec), 1, kDay),

        flag(RP_KEY(profiling, enabled)),
        seconds(RP_KEY(profiling, leak_detection_interval_sec), 1, kDay),
        flag(RP_KEY(profiling, allocation_tracking)),
        flag(RP_KEY(profiling, jemalloc_stats)),
        whole(RP_KEY(profiling, lg_prof_sample), 0, 40),
        whole(RP_KEY(profiling, leak_min_observations), 3, 10'000),
        whole(RP_KEY(profiling, leak_min_bytes), 0, 1099511627776.0),
        number(RP_KEY(profiling, leak_min_growth_bytes_per_sec), 0, 1e12),
        number(RP_KEY(profiling, leak_min_r_squared), 0, 1),
        whole(RP_KEY(profiling, max_tracked_sites), 1, 1'000'000),
        whole(RP_KEY(profiling, max_history_per_site), 3, 10'000),
        number(RP_KEY(profiling, peak_profile_growth), 0, 10),
        number(RP_KEY(profiling, temporary_allocation_ms), 0.001, 3'600'000),
        whole(RP_KEY(profiling, symbolizer_cache_max_bytes), 65536, 1073741824.0),
        whole(RP_KEY(profiling, symbolizer_dwarf_max_bytes), 1048576, 17179869184.0),
        flag(RP_KEY(profiling, debuginfod)),
        text(RP_KEY(profiling, dump_directory), check_path,
             "a directory path (empty: $TMPDIR or /tmp), at most 4096 bytes, no control characters"),
        text(RP_KEY(profiling, capture_dir), check_path,
             "a directory path (empty: no captures), at most 4096 bytes, no control characters; created when "
             "missing, and it must be writable"),
        whole(RP_KEY(profiling, capture_max_files), 1, 1000),
        seconds(RP_KEY(profiling, capture_min_interval_sec), 0, 7 * kDay),
        number(RP_KEY(profiling, capture_cgroup_share), 0, 1, true),
        whole(RP_KEY(profiling, capture_min_free_mb), 0, 16'777'216),
        whole(RP_KEY(profiling, capture_max_mb), 1, 65536),

        flag(RP_KEY(cache, enabled)),
        whole(RP_KEY(cache, max_size_mb), 1, 1'048'576),
        seconds(RP_KEY(cache, ttl_sec), 0, 366 * kDay, true),

        whole(RP_KEY(limits, max_concurrent_requests), 1, 1'000'000),
        number(RP_KEY(limits, rate_limit_per_second), 0, 1e9, true),
        whole(RP_KEY(limits, rate_limit_burst), 1, 1e9),
        number(RP_KEY(limits, per_client_rate_per_second), 0, 1e9, true),
        whole(RP_KEY(limits, per_client_burst), 1, 1e9),
        whole(RP_KEY(limits, max_tracked_clients), 1, 100'000'000),
        number(RP_KEY(limits, circuit_breaker_threshold), 0, 1, true),
        whole(RP_KEY(limits, circuit_breaker_window), 1, 100'000),
        whole(RP_KEY(limits, circuit_breaker_min_calls), 1, 100'000),
        seconds(RP_KEY(limits, circuit_breaker_open_sec), 0, kDay, true),
        whole(RP_KEY(limits, circuit_breaker_half_open_calls), 1, 10'000),
        millis(RP_KEY(limits, slow_call_ms), 0, 3'600'000, true),
        number(RP_KEY(limits, slow_call_rate_threshold), 0, 1, true),
        flag(RP_KEY(limits, distributed)),
        flag(RP_KEY(limits, fail_open)),

        flag(RP_KEY(http, enabled)),
        text(RP_KEY(http, bind), check_bind, "an IPv4 or IPv6 literal such as 127.0.0.1, ::1 or 0.0.0.0, or localhost"),
        whole(RP_KEY(http, port), 0, 65535),
        text(RP_KEY(http, token), check_token,
             "empty, or a bearer token of letters, digits and - . _ ~ + / (trailing = allowed), at most 4096 "
             "characters"),
        whole(RP_KEY(http, threads), 1, HttpConfig::kMaxThreads),
        whole(RP_KEY(http, max_connections), 1, 1'000'000),
        whole(RP_KEY(http, header_limit_bytes), 1024, 1'048'576),
        whole(RP_KEY(http, body_limit_bytes), 0, 16'777'216),
        seconds(RP_KEY(http, read_timeout_sec), 0, 3600, true),
        seconds(RP_KEY(http, idle_timeout_sec), 0, kDay, true),
        seconds(RP_KEY(http, gc_cooldown_sec), 0, kDay),
        whole(RP_KEY(http, cpu_profile_max_sec), 1, 3600),
        whole(RP_KEY(http, max_trend_points), 1, 1'000'000),

        text(RP_KEY(redis, url), check_redis_url, "empty (no Redis), or redis://[[user]:password@]host[:port][/db]"),
        millis(RP_KEY(redis, connect_timeout_ms), 0, 60'000, true),
        millis(RP_KEY(redis, command_timeout_ms), 0, 60'000, true),
        text(RP_KEY(redis, key_prefix), check_key_prefix, "at most 128 bytes without spaces or control characters"),
        whole(RP_KEY(redis, pool_size), 1, 1024),
    };
    // The original name of the HTTP port key; inserted after the monitoring keys so listings follow the file.
    Field metrics_port = whole(
        "monitoring", "metrics_port", [](Config& c) -> FieldRef { return &c.http.port; }, 0, 65535);
    metrics_port.alias_of = "http.port";
    const auto after_monitoring =
        std::find_if(t.begin(), t.end(), [](const Field& f) { return f.section == "profiling"; });
    t.insert(after_monitoring, metrics_port);
    static_assert(kU32 > 1e9, "every unsigned range above fits std::uint32_t");
    return t;
  }());
  return *kTable;
}

#undef RP_KEY

constexpr std::array<std::string_view, 7> kSections{"targets", "monitoring", "profiling", "cache",
                                                    "limits",  "http",       "redis"};

constexpr std::array<EnvAlias, 7> kEnvAliases{{
    {"RIPTIDE_PERF_MAX_MEMORY_MB", "targets.max_memory_mb"},
    {"RIPTIDE_PERF_MEMORY_ALERT_MB", "targets.memory_alert_mb"},
    {"RIPTIDE_PERF_P50_LATENCY_MS", "targets.p50_latency_ms"},
    {"RIPTIDE_PERF_P95_LATENCY_MS", "targets.p95_latency_ms"},
    {"RIPTIDE_PERF_MIN_THROUGHPUT_PPS", "targets.min_throughput_pps"},
    {"RIPTIDE_PERF_METRICS_PORT", "http.port"},
    {"RIPTIDE_PERF_METRICS_INTERVAL_SEC", "monitoring.sample_interval_sec"},
}};

std::string range_text(const Field& field) {
  std::string text = field.min_exclusive ? "greater than " + message_number(field.min) + " and at most "
                                         : "from " + message_number(field.min) + " to ";
  text += message_number(field.max);
  return text;
}

}  // namespace

std::string Field::dotted() const {
  std::string d(section);
  d += '.';
  d += name;
  return d;
}

std::string Field::env_name() const {
  std::string name_upper(kEnvPrefix);
  for (const char c : dotted()) {
    name_upper += c == '.' ? '_' : static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  return name_upper;
}

std::span<const Field> fields() {
  return table();
}

std::span<const std::string_view> sections() {
  return kSections;
}

const Field* find_field(std::string_view section, std::string_view name) {
  for (const Field& f : table()) {
    if (f.section == section && f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

const Field* find_field(std::string_view dotted) {
  const std::size_t dot = dotted.find('.');
  return dot == std::string_view::npos ? nullptr : find_field(dotted.substr(0, dot), dotted.substr(dot + 1));
}

const Field& target_of(const Field& field) {
  return field.is_alias() ? *find_field(field.alias_of) : field;
}

std::span<const EnvAlias> env_aliases() {
  return kEnvAliases;
}

bool is_reserved_variable(std::string_view name) {
  // ctest and scripts/test pass these to test executables, which also load the configuration.
  return name == "RIPTIDE_PERF_SOURCE_DIR" || name == "RIPTIDE_PERF_BINARY_DIR" ||
         name.substr(0, 18) == "RIPTIDE_PERF_TEST_";
}

std::string accepted_form(const Field& field, bool from_environment) {
  switch (field.kind) {
    case FieldKind::kBool:
      return from_environment ? "true, false, 1 or 0" : "true or false";
    case FieldKind::kUnsigned:
      return "an integer " + range_text(field);
    case FieldKind::kNumber: {
      switch (field.unit) {
        case FieldUnit::kNone:
          return "a number " + range_text(field);
        case FieldUnit::kSeconds:
          return "a number of seconds " + range_text(field) + ", or a duration such as 250ms, 30s, 5m or 1h30m";
        case FieldUnit::kMilliseconds:
          return "a number of milliseconds " + range_text(field) + ", or a duration such as 250ms, 30s, 5m or 1h30m";
      }
      break;
    }
    case FieldKind::kString:
      return std::string(field.string_accepted);
  }
  return {};
}

std::optional<std::string> value_problem(const Field& field, const Value& value) {
  double number = 0;
  if (const auto* u = std::get_if<std::uint64_t>(&value)) {
    number = static_cast<double>(*u);
  } else if (const auto* d = std::get_if<double>(&value)) {
    number = *d;
    if (!std::isfinite(number)) {
      return "is not a finite number";
    }
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    return field.check != nullptr ? field.check(*s) : std::nullopt;
  } else {
    return std::nullopt;
  }
  if (field.min_exclusive ? number <= field.min : number < field.min) {
    return (field.min_exclusive ? "must be greater than " : "must be at least ") + message_number(field.min);
  }
  if (number > field.max) {
    return "must be at most " + message_number(field.max);
  }
  return std::nullopt;
}

void assign(Config& config, const Field& field, const Value& value) {
  std::visit(
      [&value](auto* member) {
        using Member = std::remove_pointer_t<decltype(member)>;
        if constexpr (std::is_same_v<Member, bool> || std::is_same_v<Member, std::string>) {
          *member = std::get<Member>(value);
        } else if constexpr (std::is_same_v<Member, double>) {
          *member = std::holds_alternative<double>(value) ? std::get<double>(value)
                                                          : static_cast<double>(std::get<std::uint64_t>(value));
        } else {
          *member = static_cast<Member>(std::get<std::uint64_t>(value));
        }
      },
      field.ref(config));
}

Value read(const Config& config, const Field& field) {
  // The accessor takes a mutable Config so one table serves reads and writes; nothing is written here.
  return std::visit(
      [](auto* member) -> Value {
        using Member = std::remove_pointer_t<decltype(member)>;
        if constexpr (std::is_same_v<Member, bool> || std::is_same_v<Member, std::string> ||
                      std::is_same_v<Member, double>) {
          return *member;
        } else {
          return static_cast<std::uint64_t>(*member);
        }
      },
      field.ref(const_cast<Config&>(config)));
}

std::string message_number(double value) {
  // Whole numbers in plain digits (1000000, not the shorter 1e+06): ranges and values read like the file.
  if (std::isfinite(value) && value == std::trunc(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string format_number(double value) {
  std::string text = message_number(value);
  if (std::isfinite(value) && text.find_first_of(".e") == std::string::npos) {
    text += ".0";  // keeps the TOML type a float, so the text reads back as the same key type
  }
  return text;
}

std::string to_toml_literal(const Value& value) {
  if (const auto* b = std::get_if<bool>(&value)) {
    return *b ? "true" : "false";
  }
  if (const auto* u = std::get_if<std::uint64_t>(&value)) {
    return std::to_string(*u);
  }
  if (const auto* d = std::get_if<double>(&value)) {
    return format_number(*d);
  }
  std::string quoted = "\"";
  for (const char c : std::get<std::string>(value)) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\t':
        quoted += "\\t";
        break;
      case '\r':
        quoted += "\\r";
        break;
      default:
        if (is_control(c)) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          quoted += "\\u00";
          quoted += kHex[(static_cast<unsigned char>(c) >> 4) & 0xF];
          quoted += kHex[static_cast<unsigned char>(c) & 0xF];
        } else {
          quoted += c;
        }
    }
  }
  quoted += '"';
  return quoted;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
  for (std::size_t j = 0; j <= m; ++j) {
    prev[j] = j;
  }
  for (std::size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[m];
}

// Config errors end up in host logs: a secret's value is described, never repeated. The URL's password is
// masked, the rest of the URL kept because it is what helps find the mistake.
std::string displayed_value(std::string_view key, std::string value) {
  if (key == "http.token" && !value.empty()) {
    return "<redacted: " + std::to_string(value.size()) + " characters as written>";
  }
  if (key == "redis.url") return mask_url_password(std::move(value), "***");
  return value;
}

std::string mask_url_password(std::string url, std::string_view mask) {
  const std::size_t scheme = url.find("://");
  const std::size_t at = url.rfind('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const std::size_t colon = url.find(':', scheme + 3);
  if (colon != std::string::npos && colon < at) url.replace(colon + 1, at - colon - 1, mask);
  return url;
}

ConfigError make_error(std::string source, std::string key, std::string value, std::string problem,
                       std::string accepted) {
  value = displayed_value(key, std::move(value));
  return ConfigError(ConfigError::Details{std::move(source), std::move(key), std::move(value), std::move(problem),
                                          std::move(accepted)});
}

}  // namespace riptide::performance::detail
