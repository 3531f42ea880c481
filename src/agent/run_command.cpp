#include "riptide/performance/agent/run_command.hpp"

#include <charconv>
#include <string_view>

#include "riptide/performance/core/error.hpp"

namespace riptide::performance {
namespace {

[[noreturn]] void refuse(const std::string& option, const std::string& value, const std::string& problem,
                         const std::string& accepted) {
  throw ConfigError({"riptide-run", option, value, problem, accepted});
}

std::uint16_t parse_port(const std::string& text) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value > 65535) {
    refuse("--port", text, "is not a port", "an integer from 0 to 65535 (0 picks a free port)");
  }
  return static_cast<std::uint16_t>(value);
}

// "--name VALUE" or "--name=VALUE": the value, advancing `index` past it.
std::string option_value(const std::vector<std::string>& arguments, std::size_t& index, std::string_view name) {
  const std::string& argument = arguments[index];
  if (argument.size() > name.size() && argument[name.size()] == '=') return argument.substr(name.size() + 1);
  if (index + 1 >= arguments.size())
    refuse(std::string{name}, "", "needs a value", "e.g. " + std::string{name} + " 3000");
  return arguments[++index];
}

bool names(const std::string& argument, std::string_view name) {
  return argument == name ||
         (argument.size() > name.size() && argument.compare(0, name.size(), name) == 0 && argument[name.size()] == '=');
}

}  // namespace

const char* run_command_usage() noexcept {
  return "usage: riptide-run [--port N] [--bind ADDR] [--config FILE] [--] PROGRAM [ARGS...]\n"
         "Runs PROGRAM with the riptide-performance agent: memory, leaks, allocation sites, pprof profiles,\n"
         "Prometheus metrics and the dashboard at http://ADDR:N/ while it runs. No rebuild needed.\n"
         "  --port N       the endpoints' port (default 3000, http.port; 0 picks a free one)\n"
         "  --bind ADDR    the address to listen on (default 127.0.0.1, http.bind)\n"
         "  --config FILE  a performance.toml (RIPTIDE_PERF_CONFIG); RIPTIDE_PERF_* variables apply too\n"
         "The program's exit status is riptide-run's.\n";
}

RunCommand parse_run_command(const std::vector<std::string>& arguments) {
  RunCommand command;
  std::size_t index = 0;
  for (; index < arguments.size(); ++index) {
    const std::string& argument = arguments[index];
    if (argument == "--") {
      ++index;
      break;
    }
    if (argument == "--help" || argument == "-h") {
      command.help = true;
      return command;
    }
    if (names(argument, "--port")) {
      command.port = parse_port(option_value(arguments, index, "--port"));
    } else if (names(argument, "--bind")) {
      command.bind = option_value(arguments, index, "--bind");
      if (command.bind->empty()) refuse("--bind", "", "is empty", "an IP address, e.g. 127.0.0.1 or ::1");
    } else if (names(argument, "--config")) {
      command.config = option_value(arguments, index, "--config");
      if (command.config->empty()) refuse("--config", "", "is empty", "the path of a performance.toml");
    } else if (argument.size() > 1 && argument[0] == '-') {
      refuse(argument, "", "is not an option of riptide-run",
             "--port N, --bind ADDR, --config FILE, --help; put -- before a program whose name starts with -");
    } else {
      break;
    }
  }
  command.program.assign(arguments.begin() + static_cast<std::ptrdiff_t>(index), arguments.end());
  if (command.program.empty()) refuse("PROGRAM", "", "is missing", "the program to run and its arguments");
  return command;
}

std::vector<std::pair<std::string, std::string>> agent_environment(const RunCommand& command,
                                                                   const std::string& agent_library,
                                                                   const char* (*current)(const char* name)) {
  std::vector<std::pair<std::string, std::string>> variables;
  std::string preload = std::string{kSystemJemalloc} + ":" + agent_library;
  if (const char* existing = current("LD_PRELOAD"); existing != nullptr && *existing != '\0') {
    preload += std::string{":"} + existing;
  }
  variables.emplace_back("LD_PRELOAD", preload);
  std::string malloc_conf = kAgentMallocConf;
  if (const char* existing = current("MALLOC_CONF"); existing != nullptr && *existing != '\0') {
    malloc_conf += std::string{","} + existing;
  }
  variables.emplace_back("MALLOC_CONF", malloc_conf);
  if (command.port) variables.emplace_back("RIPTIDE_PERF_HTTP_PORT", std::to_string(*command.port));
  if (command.bind) variables.emplace_back("RIPTIDE_PERF_HTTP_BIND", *command.bind);
  if (command.config) variables.emplace_back("RIPTIDE_PERF_CONFIG", *command.config);
  return variables;
}

}  // namespace riptide::performance
