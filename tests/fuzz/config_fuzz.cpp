// libFuzzer target for the configuration loader. Input is TOML text; input starting with "ENV\n" is instead
// NAME=VALUE lines fed to apply_environment. The only exception allowed out of the loader is ConfigError,
// and it must name a source, a key and a problem; any other exception, crash or sanitizer report is a finding.
// A configuration that loads must print (to_toml) to text that loads back to the same configuration.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/error.hpp"

namespace rp = riptide::performance;

namespace {

std::map<std::string, std::string> parse_environment(std::string_view text) {
  std::map<std::string, std::string> variables;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    const std::size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      variables[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    }
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return variables;
}

void check_error(const rp::ConfigError& e) {
  if (e.source().empty() || e.key().empty() || e.problem().empty() || std::string_view(e.what()).empty()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  rp::Config config;
  try {
    if (input.substr(0, 4) == "ENV\n") {
      config.apply_environment(parse_environment(input.substr(4)));
      config.validate("environment");
    } else {
      config = rp::Config::from_toml(input, "fuzz.toml");
    }
  } catch (const rp::ConfigError& e) {
    check_error(e);
    return 0;
  }
  // Secrets print redacted, so only configurations without them can round-trip exactly.
  if (config.http.token.empty() && config.redis.url.find('@') == std::string::npos) {
    const rp::Config back = rp::Config::from_toml(config.to_toml(), "to_toml");  // a ConfigError here is a finding
    if (!(back == config)) {
      __builtin_trap();
    }
  }
  return 0;
}
