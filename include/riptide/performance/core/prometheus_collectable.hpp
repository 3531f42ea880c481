#pragma once
// Hands the library's Prometheus families to a host that already runs prometheus-cpp, so the endpoint
// that serves the host's registry carries every riptide family next to the host's own metrics:
//
//   auto riptide = std::make_shared<riptide::performance::FunctionCollectable>(
//       [&](riptide::performance::PrometheusWriter& out) { write_prometheus(out, cache.stats()); });
//   exposer.RegisterCollectable(registry);  // the host's own metrics, as before
//   exposer.RegisterCollectable(riptide);   // every riptide family, on the same /metrics
//
// prometheus::Registry (1.0.1) takes no collectables of its own; the exposer (and the push gateway)
// collect a list of them, concatenated in registration order. They hold std::weak_ptr, so the host keeps
// `riptide` alive for as long as it should be scraped: an expired one is silently skipped.
//
// This header includes prometheus-cpp (core only) and is meant for such hosts alone; they link
// prometheus-cpp::core themselves. The families are built against the prometheus-cpp this library was
// compiled with, so the host must use that same version (the Debian package on the supported systems).

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "riptide/performance/core/prometheus_writer.hpp"

namespace riptide::performance {

/// The families `writer` holds, moved out (the writer is left empty). Throws std::logic_error when the
/// writer also holds text added with append_exposition(): raw text has no metric family form, so its
/// source should be registered with the exposer directly. Help texts are already escaped for the text
/// format (backslash, newline), since prometheus-cpp's TextSerializer writes them verbatim.
[[nodiscard]] std::vector<prometheus::MetricFamily> metric_families(PrometheusWriter&& writer);

/// A prometheus-cpp Collectable that runs `write` on a fresh PrometheusWriter at every Collect() (every
/// scrape) and returns the families it wrote, so the figures are as current as the scrape. The naming
/// rules still apply: a bad or repeated name throws, and Collect() lets that (and whatever `write` throws)
/// propagate, as a collector's exception fails /metrics. Neither prometheus-cpp's exposer nor civetweb
/// catches it on the serving thread, which ends the process, so the names are worth one test in the
/// host. `write` runs on the thread that collects (the exposer's), possibly for two exposers at once,
/// so it must be thread-safe.
class FunctionCollectable final : public prometheus::Collectable {
 public:
  using Write = std::function<void(PrometheusWriter&)>;

  explicit FunctionCollectable(Write write, std::string prefix = "riptide_")
      : write_(std::move(write)), prefix_(std::move(prefix)) {}

  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override {
    PrometheusWriter out(prefix_);
    if (write_) write_(out);
    return metric_families(std::move(out));
  }

 private:
  Write write_;
  std::string prefix_;
};

}  // namespace riptide::performance
