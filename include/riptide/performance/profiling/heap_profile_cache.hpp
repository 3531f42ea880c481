#pragma once
// One heap profile shared by everything that reads the heap: the leak detector's periodic observation
// publishes it, and the allocation analyzer and GET /debug/pprof/heap reuse it while it is young enough.
// A dump of a big heap costs tens of milliseconds of CPU; polling three endpoints every second must cost
// one dump per interval, not three per second (docs/overhead.md has the figures).
//
//   auto profiles = std::make_shared<rp::HeapProfileCache>();
//   auto profile = profiles->get(std::chrono::seconds{30});   // reused when younger than 30 s
//   if (profile) use(*profile.value());                        // else profile.error().to_string()
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/profiling_error.hpp"

namespace riptide::performance {

/// How old a shared profile may be for the readers that reuse it: the leak interval (the detector
/// refreshes it that often), at least a second so polling never turns into a dump per request.
[[nodiscard]] std::chrono::nanoseconds shared_profile_max_age(const ProfilingConfig& config) noexcept;

class HeapProfileCache {
 public:
  using Profile = std::shared_ptr<const HeapProfile>;

  /// `dump_directory` as for capture_heap_profile; `clock` (steady time) ages the profile and must
  /// outlive the cache.
  explicit HeapProfileCache(std::string dump_directory = {}, const Clock& clock = system_clock());
  HeapProfileCache(const HeapProfileCache&) = delete;
  HeapProfileCache& operator=(const HeapProfileCache&) = delete;

  /// The latest profile when it is younger than `max_age`, else a fresh capture. Captures are
  /// single-flight: callers that find the profile stale at the same time wait for one dump.
  [[nodiscard]] ProfilingResult<Profile> get(std::chrono::nanoseconds max_age);
  /// A fresh capture, published for later get() calls (the leak detector's observation).
  [[nodiscard]] ProfilingResult<Profile> refresh();
  /// The latest published profile without capturing; null before the first capture.
  [[nodiscard]] Profile latest() const;
  /// How old latest() is; nullopt before the first capture.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> age() const;
  /// Heap dumps taken so far (successful ones), for tests and diagnostics.
  [[nodiscard]] std::uint64_t captures() const;

 private:
  [[nodiscard]] ProfilingResult<Profile> capture_locked();

  std::string dump_directory_;
  const Clock& clock_;
  std::mutex capture_mutex_;  // single flight: held for the whole dump
  mutable std::mutex published_mutex_;
  Profile latest_;
  std::chrono::steady_clock::time_point captured_at_{};
  std::uint64_t captures_ = 0;
};

}  // namespace riptide::performance
