// The README's Quick Start: create a manager with the default targets (overridden
// by ./performance.toml and RIPTIDE_PERF_* variables), monitor some work, read metrics, stop for a report.
#include <riptide/performance.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

int main() {
  namespace rp = riptide::performance;
  using namespace std::chrono_literals;

  // Create performance manager with default targets
  auto manager = rp::PerformanceManager::create();

  // Start monitoring
  manager->start_monitoring();

  // Your application code here: a stand-in that "scrapes" 40 pages, timing its stages.
  for (int page = 0; page < 40; ++page) {
    const auto started = std::chrono::steady_clock::now();
    {
      auto fetch = manager->time_stage("fetch");
      std::this_thread::sleep_for(3ms);
    }
    {
      auto parse = manager->time_stage("parse");
      std::this_thread::sleep_for(1ms);
    }
    {
      auto ai = manager->time_stage("ai");
      std::this_thread::sleep_for(1ms);
    }
    manager->record_request(std::chrono::steady_clock::now() - started);
  }

  // Get current metrics
  const rp::Metrics metrics = manager->get_metrics();
  std::printf("Memory usage: %.2f MB\n", metrics.memory_rss_mb.value_or(0.0));
  std::printf("Throughput: %.1f pages/sec\n", metrics.throughput_pps);

  // Stop monitoring and generate report
  const rp::PerformanceReport report = manager->stop_monitoring();
  const nlohmann::json json = report;  // every result type converts the same way
  std::cout << "Performance report: " << json.dump(2) << "\n";
  return 0;
}
