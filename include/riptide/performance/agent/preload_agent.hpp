#pragma once
// The agent that libriptide_agent.so starts in a program it was preloaded into: a PerformanceManager
// configured from the environment (RIPTIDE_PERF_* and RIPTIDE_PERF_CONFIG, validated like everywhere),
// monitoring started and every endpoint served. It never takes the program down: anything that stops it
// (a bad setting, a taken port, an allocator that is not jemalloc) is said once on stderr and the program
// runs on unmonitored.

#include <cstdint>
#include <memory>
#include <string>

namespace riptide::performance {

class PerformanceManager;
namespace http {
class ServedEndpoints;
}

class PreloadAgent {
 public:
  /// Starts monitoring and serving for this process, named `program` in what it prints. Null after one
  /// line on stderr (the logger's) when it cannot; never throws.
  [[nodiscard]] static std::unique_ptr<PreloadAgent> start(const std::string& program) noexcept;
  /// Stops serving and monitoring in the process that started the agent. In a child forked without
  /// exec the agent's threads do not exist: nothing is stopped or freed there.
  ~PreloadAgent();
  PreloadAgent(const PreloadAgent&) = delete;
  PreloadAgent& operator=(const PreloadAgent&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept;

 private:
  PreloadAgent() = default;
  std::shared_ptr<PerformanceManager> manager_;
  std::unique_ptr<http::ServedEndpoints> endpoints_;
  std::uint64_t fork_generation_ = 0;
};

}  // namespace riptide::performance
