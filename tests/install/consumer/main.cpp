// A program outside the project that uses the installed package, as a host that also runs prometheus-cpp.
#include <riptide/performance.hpp>
#include <riptide/performance/core/prometheus_collectable.hpp>

#include <iostream>

int main() {
  namespace rp = riptide::performance;
  // The Prometheus families go through prometheus-cpp: this links only if the package brings it along.
  const rp::FunctionCollectable collectable([](rp::PrometheusWriter& out) {
    out.family("consumer_runs_total", rp::MetricType::counter, "Runs of the consumer.");
    out.sample(std::uint64_t{1});
  });
  const auto families = collectable.Collect();
  if (families.size() != 1 || families[0].name != "riptide_consumer_runs_total") return 1;
  rp::PrometheusWriter out;
  out.family("consumer_up", rp::MetricType::gauge, "1 while the consumer runs.");
  out.sample(1.0);
  if (out.text().find("riptide_consumer_up 1\n") == std::string::npos) return 1;

  std::cout << "riptide-performance " << RIPTIDE_PERF_VERSION << " session " << rp::make_uuid_v4() << '\n';
  return 0;
}
