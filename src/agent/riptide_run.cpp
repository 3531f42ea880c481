// riptide-run: runs a program under the riptide-performance agent, without rebuilding it.
//   riptide-run [--port N] [--bind ADDR] [--config FILE] [--] PROGRAM [ARGS...]
// Checks that the agent can serve the program, sets LD_PRELOAD (the system's jemalloc and the agent) and
// MALLOC_CONF (the heap profiler), says where the endpoints will be, and execs the program: its exit status
// is riptide-run's. Errors of riptide-run itself exit with 2 (usage) or 127 (cannot run).
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "riptide/performance/agent/agent_launch.hpp"
#include "riptide/performance/agent/executable_inspection.hpp"
#include "riptide/performance/agent/run_command.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/error.hpp"

namespace {

namespace rp = riptide::performance;

constexpr int kUsageError = 2;
constexpr int kCannotRun = 127;
constexpr const char* kAgentLibraryVariable = "RIPTIDE_AGENT_LIBRARY";
constexpr const char* kAgentLibraryName = "libriptide_agent.so";

const char* environment_value(const char* name) {
  return std::getenv(name);
}

// The agent: RIPTIDE_AGENT_LIBRARY, else next to this program (a build tree), else ../lib from it (an
// installed prefix: bin/riptide-run, lib/libriptide_agent.so).
std::filesystem::path find_agent_library() {
  if (const char* explicit_path = std::getenv(kAgentLibraryVariable); explicit_path != nullptr && *explicit_path) {
    return explicit_path;
  }
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return {};
  for (const auto& candidate :
       {self.parent_path() / kAgentLibraryName, self.parent_path().parent_path() / "lib" / kAgentLibraryName,
        self.parent_path().parent_path() / RIPTIDE_RUN_LIBDIR / kAgentLibraryName}) {
    if (std::filesystem::is_regular_file(candidate, error)) return candidate;
  }
  return {};
}

int fail(const std::string& message, int status) {
  std::fprintf(stderr, "riptide-run: %s\n", message.c_str());
  return status;
}

// Why the agent cannot serve `program`; empty when it can.
std::string refusal(const std::filesystem::path& program) {
  const rp::ExecutableFacts facts = rp::inspect_executable(program);
  if (facts.linkage == rp::ExecutableLinkage::static_binary) {
    return program.string() +
           " is statically linked: the dynamic loader never runs, so LD_PRELOAD cannot load the agent into it. "
           "Link riptide-performance into the program instead (README, 'Use it from your CMake project'), or build it "
           "dynamically linked.";
  }
  if (facts.defines_malloc) {
    return program.string() +
           " defines its own malloc (an allocator linked into the program, such as tcmalloc, mimalloc or a "
           "static jemalloc): it would keep allocating with it and the agent would see none of its memory. "
           "Build it against the system's jemalloc (libjemalloc.so.2) or link riptide-performance into it.";
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  rp::RunCommand command;
  try {
    command = rp::parse_run_command(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const rp::ConfigError& error) {
    std::fprintf(stderr, "%s\n%s", error.what(), rp::run_command_usage());
    return kUsageError;
  }
  if (command.help) {
    std::fputs(rp::run_command_usage(), stdout);
    return 0;
  }
  const char* search_path = std::getenv("PATH");
  const std::filesystem::path program = rp::find_program(command.program.front(), search_path ? search_path : "");
  if (program.empty()) return fail(command.program.front() + ": no such program (searched PATH)", kCannotRun);
  try {
    if (const std::string why = refusal(program); !why.empty()) return fail(why, kCannotRun);
  } catch (const rp::Error& error) {
    return fail(error.what(), kCannotRun);
  }
  const std::filesystem::path agent = find_agent_library();
  if (agent.empty()) {
    return fail(std::string{kAgentLibraryName} + " not found next to riptide-run or in ../lib; set " +
                    kAgentLibraryVariable + " to its path",
                kCannotRun);
  }
  if (void* jemalloc = ::dlopen(rp::kSystemJemalloc, RTLD_LAZY | RTLD_LOCAL); jemalloc == nullptr) {
    return fail(std::string{"the system's jemalloc ("} + rp::kSystemJemalloc +
                    ") cannot be loaded: install Debian's package libjemalloc2 (" + ::dlerror() + ")",
                kCannotRun);
  }
  for (const auto& [name, value] : rp::agent_environment(command, agent.string(), environment_value)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  // riptide-run asks for an agent in this program even when it was started by a monitored one.
  ::unsetenv(rp::kAgentPidVariable);
  // The agent validates the same settings; checking them here turns a mistake into riptide-run's error
  // instead of a line in the program's output, and tells where the endpoints will be.
  rp::Config config;
  try {
    config = rp::Config::load();
  } catch (const rp::ConfigError& error) {
    return fail(error.what(), kUsageError);
  }
  if (!config.http.enabled) {
    std::fprintf(stderr, "riptide-run: %s with the agent; http.enabled is false: nothing will be served\n",
                 program.c_str());
  } else if (config.http.port == 0) {
    std::fprintf(stderr, "riptide-run: %s with the agent; endpoints on %s at a free port (the agent logs it)\n",
                 program.c_str(), config.http.bind.c_str());
  } else {
    std::fprintf(stderr,
                 "riptide-run: %s with the agent; endpoints at http://%s:%u/ (dashboard, /metrics, /debug/pprof)\n",
                 program.c_str(), config.http.bind.c_str(), static_cast<unsigned>(config.http.port));
  }
  std::vector<char*> arguments;
  for (auto& argument : command.program) arguments.push_back(argument.data());
  arguments.push_back(nullptr);
  ::execv(program.c_str(), arguments.data());
  return fail("cannot run " + program.string() + ": " + std::strerror(errno), kCannotRun);
}
