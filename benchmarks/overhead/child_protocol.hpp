#pragma once
// How the overhead harness talks to its children, whichever binary they are (overhead_benchmark
// re-executing itself for a library configuration, or an overhead_workload_* binary without the
// library): the same workload flags on the command line, one JSON line of results on stdout, and the
// parent's reading of that line. One protocol, so a configuration's figures mean the same in every binary.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "worker_pool.hpp"

namespace riptide::overhead {

/// The work a child does; every child binary takes these flags.
struct WorkloadSettings {
  std::size_t pages = 6000;  ///< fixed pages of work per child
  unsigned workers = 2;      ///< worker threads (the machine's cores)
  std::uint64_t seed = 42;   ///< the site and the page list
};

/// A non-negative integer flag value; throws std::invalid_argument naming the flag otherwise.
[[nodiscard]] std::uint64_t parse_count(std::string_view flag, std::string_view text);

/// Reads `flag value` into `settings` when it is a workload flag (--pages, --workers, --seed); false when
/// it is not one of them. Throws std::invalid_argument on a bad value.
bool parse_workload_flag(std::string_view flag, std::string_view value, WorkloadSettings& settings);

/// The workload flags that reproduce `settings` in a child.
[[nodiscard]] std::vector<std::string> workload_arguments(const WorkloadSettings& settings);

/// The fields every child reports: the pool's totals, the allocator it ran on and the CPU split.
/// `client_cpu_s` is the scrape client's CPU (0 without one): in production that client is another
/// process, so it is neither the workers' nor the library's.
[[nodiscard]] nlohmann::json result_json(std::string_view config, const PoolTotals& totals, unsigned workers,
                                         double client_cpu_s = 0);

/// Prints the result as one line on stdout and flushes it (the parent reads the last JSON line).
void print_result_line(const nlohmann::json& result);

/// A child to run: its command line and the environment variables to set (a value) or remove (nullopt).
struct ChildCommand {
  std::vector<std::string> argv;  ///< argv[0] is looked up in PATH when it has no slash
  std::vector<std::pair<std::string, std::optional<std::string>>> environment;
};

/// What the parent got back: the child's result line and the child's wall time from fork to exit, which
/// minus the timed `elapsed_s` is its start-up and tear-down.
struct ChildOutcome {
  nlohmann::json result;
  double wall_s = 0;
};

/// Runs the child to its end; nullopt (and why in `diagnostics`) when it fails or prints no result line.
[[nodiscard]] std::optional<ChildOutcome> run_child(const ChildCommand& command, std::string& diagnostics);

}  // namespace riptide::overhead
