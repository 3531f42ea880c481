#pragma once
// The JSON bodies of GET /metrics/memory/snapshot and GET /metrics/memory/leaks, built in one place so
// that a memory capture's snapshot.json and leaks.json are exactly what the endpoints serve.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "riptide/performance/manager/memory_state.hpp"

namespace riptide::performance {

class MemoryProfiler;

/// A fresh snapshot (jemalloc epoch refreshed) with the session id and the library's own heap estimate.
[[nodiscard]] nlohmann::json memory_snapshot_body(MemoryProfiler& profiler, const std::string& session_id);

/// The leak detector's latest report in `state` with the session id; or, when there is none or it is
/// unavailable, the reason (the endpoint answers 503 with it).
struct LeakReportBody {
  std::optional<nlohmann::json> body;  ///< set when a report is available
  std::string unavailable_reason;      ///< set otherwise
};
[[nodiscard]] LeakReportBody leak_report_body(const MemoryState& state, const std::string& session_id);

}  // namespace riptide::performance
