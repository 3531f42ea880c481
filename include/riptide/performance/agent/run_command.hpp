#pragma once
// riptide-run's command line and the environment it gives the program:
//   riptide-run [--port N] [--bind ADDR] [--config FILE] [--] PROGRAM [ARGS...]
// The options become the library's own settings (RIPTIDE_PERF_HTTP_PORT, RIPTIDE_PERF_HTTP_BIND,
// RIPTIDE_PERF_CONFIG), validated by the agent like every other setting; LD_PRELOAD gets the system's
// jemalloc and the agent in front of what was there, and MALLOC_CONF turns the heap profiler on (the
// user's own MALLOC_CONF follows, so its settings win).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace riptide::performance {

/// jemalloc's options for the agent: the heap profiler on from the start, 512 KiB mean sample interval,
/// cumulative counts for allocation sites (the same as RIPTIDE_PERF_ENABLE_HEAP_PROFILING).
inline constexpr const char* kAgentMallocConf = "prof:true,prof_active:true,lg_prof_sample:19,prof_accum:true";
/// The system's jemalloc, by soname: the dynamic loader finds it in its usual directories.
inline constexpr const char* kSystemJemalloc = "libjemalloc.so.2";

struct RunCommand {
  bool help = false;
  std::optional<std::uint16_t> port;
  std::optional<std::string> bind;
  std::optional<std::string> config;
  std::vector<std::string> program;  ///< the program and its arguments; empty only with help
};

/// Parses riptide-run's arguments (without argv[0]). Throws ConfigError (source "riptide-run") naming the
/// option, the value and what is accepted: an unknown option, a missing value, a port outside 0..65535, or
/// no program.
[[nodiscard]] RunCommand parse_run_command(const std::vector<std::string>& arguments);

/// The usage text printed by --help and after an error.
[[nodiscard]] const char* run_command_usage() noexcept;

/// The variables to set for the program: `current` reads the environment riptide-run was started with
/// (null when unset); `agent_library` is the path of libriptide_agent.so.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> agent_environment(
    const RunCommand& command, const std::string& agent_library, const char* (*current)(const char* name));

}  // namespace riptide::performance
