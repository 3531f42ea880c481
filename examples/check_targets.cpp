// Custom performance targets, and checking them (the README's cookbook). The requests below
// are deliberately slower than the custom p50 target so that the check has something to report.
#include <riptide/performance.hpp>

#include <chrono>
#include <iostream>

int main() {
  namespace rp = riptide::performance;
  using namespace std::chrono_literals;

  rp::PerformanceTargets targets;
  targets.p50_latency_ms = 1000;           // 1s
  targets.p95_latency_ms = 3000;           // 3s
  targets.max_memory_mb = 400;             // 400MB
  targets.memory_alert_mb = 450;           // Alert at 450MB
  targets.min_throughput_pps = 100.0;      // 100 pages/sec
  targets.max_ai_overhead_percent = 20.0;  // 20% max AI impact

  auto manager = rp::PerformanceManager::with_targets(targets);
  manager->start_monitoring();

  // 100 pages: most take 1.2 s (above the 1 s p50 target), every tenth 2.8 s (93% of the p95 target).
  for (int page = 0; page < 100; ++page) {
    manager->record_request(page % 10 == 9 ? 2800ms : 1200ms);
    manager->record_stage("ai", 100ms);
  }

  // Check if performance targets are being met
  const rp::TargetStatus status = manager->check_targets();

  if (!status.all_targets_met) {
    std::cout << "Performance violations:\n";
    for (const auto& violation : status.violations) {
      std::cout << "  - " << violation << "\n";
    }
  }

  if (!status.warnings.empty()) {
    std::cout << "Warnings:\n";
    for (const auto& warning : status.warnings) {
      std::cout << "  - " << warning << "\n";
    }
  }

  (void)manager->stop_monitoring();
  return 0;
}
