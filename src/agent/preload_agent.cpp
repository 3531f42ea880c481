#include "riptide/performance/agent/preload_agent.hpp"

#include <spdlog/spdlog.h>

#include <exception>

#include "riptide/performance/core/fork_safety.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/http/serve.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"

namespace riptide::performance {

std::unique_ptr<PreloadAgent> PreloadAgent::start(const std::string& program) noexcept {
  const auto log = logger();
  try {
    // Without jemalloc serving malloc the agent could serve only timings nobody records: say why and stay
    // out of the way.
    if (const auto& jemalloc = JemallocCtl::availability(); !jemalloc.serves_malloc) {
      log->warn(
          "riptide agent: not monitoring {}: {}. It allocates with its own allocator or without "
          "jemalloc; link riptide-performance into it instead (README, 'Use it from your CMake project').",
          program, jemalloc.reason);
      return nullptr;
    }
    std::unique_ptr<PreloadAgent> agent{new PreloadAgent()};
    agent->fork_generation_ = fork_generation();
    agent->manager_ = PerformanceManager::create();
    agent->manager_->start_monitoring();
    agent->endpoints_ = http::serve(agent->manager_);
    if (agent->endpoints_->serving()) {
      log->info("riptide agent: monitoring {} (pid {}): http://{}:{}/dashboard, /metrics, /debug/pprof/heap", program,
                static_cast<long>(::getpid()), agent->manager_->config().http.bind, agent->port());
    } else {
      log->info("riptide agent: monitoring {} (pid {}); http.enabled is false, so nothing is served", program,
                static_cast<long>(::getpid()));
    }
    return agent;
  } catch (const std::exception& error) {
    log->error("riptide agent: not monitoring {}: {}. The program runs on unmonitored.", program, error.what());
  } catch (...) {
    log->error("riptide agent: not monitoring {}: an unknown error. The program runs on unmonitored.", program);
  }
  return nullptr;
}

PreloadAgent::~PreloadAgent() {
  if (fork_generation() != fork_generation_) {
    // A forked child: the threads these objects own live only in the parent. Keep them, unjoined.
    keep_until_exit(std::shared_ptr<http::ServedEndpoints>(std::move(endpoints_)));
    keep_until_exit(std::move(manager_));
    return;
  }
  // Stop the threads, in the order they depend on each other; no final report (stop_monitoring() would
  // dump and analyze the heap once more while the program exits, for nobody).
  endpoints_.reset();
  manager_.reset();
}

std::uint16_t PreloadAgent::port() const noexcept {
  return endpoints_ ? endpoints_->port() : 0;
}

}  // namespace riptide::performance
