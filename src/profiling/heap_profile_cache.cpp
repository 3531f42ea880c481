#include "riptide/performance/profiling/heap_profile_cache.hpp"

#include <algorithm>
#include <utility>

namespace riptide::performance {

std::chrono::nanoseconds shared_profile_max_age(const ProfilingConfig& config) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(std::max(config.leak_detection_interval_sec, 1.0)));
}

HeapProfileCache::HeapProfileCache(std::string dump_directory, const Clock& clock)
    : dump_directory_(std::move(dump_directory)), clock_(clock) {}

ProfilingResult<HeapProfileCache::Profile> HeapProfileCache::get(std::chrono::nanoseconds max_age) {
  const auto young_enough = [&]() -> Profile {
    const std::lock_guard lock(published_mutex_);
    if (latest_ && clock_.steady_now() - captured_at_ < max_age) return latest_;
    return nullptr;
  };
  if (Profile profile = young_enough()) return profile;
  const std::lock_guard capture(capture_mutex_);
  if (Profile profile = young_enough()) return profile;  // another caller captured while we waited
  return capture_locked();
}

ProfilingResult<HeapProfileCache::Profile> HeapProfileCache::refresh() {
  const std::lock_guard capture(capture_mutex_);
  return capture_locked();
}

ProfilingResult<HeapProfileCache::Profile> HeapProfileCache::capture_locked() {
  auto captured = capture_heap_profile(dump_directory_);
  if (!captured) return captured.error();
  auto profile = std::make_shared<const HeapProfile>(std::move(captured).value());
  const std::lock_guard lock(published_mutex_);
  latest_ = profile;
  captured_at_ = clock_.steady_now();
  ++captures_;
  return Profile{std::move(profile)};
}

HeapProfileCache::Profile HeapProfileCache::latest() const {
  const std::lock_guard lock(published_mutex_);
  return latest_;
}

std::optional<std::chrono::nanoseconds> HeapProfileCache::age() const {
  const std::lock_guard lock(published_mutex_);
  if (!latest_) return std::nullopt;
  return clock_.steady_now() - captured_at_;
}

std::uint64_t HeapProfileCache::captures() const {
  const std::lock_guard lock(published_mutex_);
  return captures_;
}

}  // namespace riptide::performance
