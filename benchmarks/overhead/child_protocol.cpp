#include "child_protocol.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace riptide::overhead {

using Json = nlohmann::json;

std::uint64_t parse_count(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string{flag} + " expects a non-negative integer, got '" + std::string{text} + "'");
  }
  return value;
}

bool parse_workload_flag(std::string_view flag, std::string_view value, WorkloadSettings& settings) {
  if (flag == "--pages") {
    settings.pages = std::max<std::uint64_t>(1, parse_count(flag, value));
  } else if (flag == "--workers") {
    settings.workers = static_cast<unsigned>(std::clamp<std::uint64_t>(parse_count(flag, value), 1, 64));
  } else if (flag == "--seed") {
    settings.seed = parse_count(flag, value);
  } else {
    return false;
  }
  return true;
}

std::vector<std::string> workload_arguments(const WorkloadSettings& settings) {
  return {"--pages", std::to_string(settings.pages), "--workers", std::to_string(settings.workers),
          "--seed",  std::to_string(settings.seed)};
}

Json result_json(std::string_view config, const PoolTotals& totals, unsigned workers, double client_cpu_s) {
  Json allocated = nullptr;
  if (totals.allocated_bytes) allocated = *totals.allocated_bytes;
  return {{"config", config},
          {"allocator", process_allocator()},
          {"pages", totals.pages},
          {"workers", workers},
          {"elapsed_s", totals.elapsed_s},
          {"pages_per_s", static_cast<double>(totals.pages) / totals.elapsed_s},
          {"cpu_s", totals.cpu_s},
          {"worker_cpu_s", totals.worker_cpu_s},
          {"client_cpu_s", client_cpu_s},
          {"background_cpu_s", std::max(0.0, totals.cpu_s - totals.worker_cpu_s - client_cpu_s)},
          {"checksum", totals.checksum},
          {"links", totals.links},
          {"worker_allocated_bytes", allocated},
          {"load_before", totals.load_before},
          {"load_after", totals.load_after}};
}

void print_result_line(const Json& result) {
  std::cout << result.dump() << std::endl;
}

std::optional<ChildOutcome> run_child(const ChildCommand& command, std::string& diagnostics) {
  int out_pipe[2];
  if (pipe(out_pipe) != 0) {
    diagnostics = std::string{"pipe: "} + std::strerror(errno);
    return std::nullopt;
  }
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) {
    diagnostics = std::string{"fork: "} + std::strerror(errno);
    return std::nullopt;
  }
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    close(out_pipe[0]);
    close(out_pipe[1]);
    for (const auto& [name, value] : command.environment) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
    std::vector<char*> argv;
    for (const auto& a : command.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::perror("execvp");
    _exit(127);
  }
  close(out_pipe[1]);
  std::string output;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(out_pipe[0], buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(out_pipe[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // The result is the last line that parses as JSON (libraries may log other lines to stdout).
  std::istringstream lines{output};
  std::optional<Json> result;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() != '{') continue;
    auto parsed = Json::parse(line, nullptr, false);
    if (!parsed.is_discarded()) result = std::move(parsed);
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || !result) {
    diagnostics = "child " + command.argv.front() + " failed (status " + std::to_string(wstatus) + "): " + output;
    return std::nullopt;
  }
  return ChildOutcome{std::move(*result), wall_s};
}

}  // namespace riptide::overhead
