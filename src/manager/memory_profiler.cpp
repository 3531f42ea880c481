#include "riptide/performance/manager/memory_profiler.hpp"

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/uuid.hpp"

namespace riptide::performance {

MemoryProfiler::MemoryProfiler() : MemoryProfiler(make_uuid_v4()) {}

MemoryProfiler::MemoryProfiler(std::string session_id) : MemoryProfiler(std::move(session_id), Config{}) {}

MemoryProfiler::MemoryProfiler(std::string session_id, const Config& config, const Clock& clock)
    : session_id_(std::move(session_id)), config_(config) {
  if (session_id_.empty()) {
    throw ConfigError({.source = "code",
                       .key = "session_id",
                       .value = "",
                       .problem = "must not be empty",
                       .accepted = "any non-empty text, usually a UUID v4"});
  }
  tracker_ = std::make_unique<MemoryTracker>(MemoryTrackerOptions::from_config(config_), clock);
}

MemoryProfiler::~MemoryProfiler() {
  stop_profiling();
}

void MemoryProfiler::start_profiling() {
  tracker_->start();
}

void MemoryProfiler::stop_profiling() noexcept {
  tracker_->stop();
}

bool MemoryProfiler::is_profiling() const noexcept {
  return tracker_->running();
}

MemorySnapshot MemoryProfiler::get_current_snapshot() {
  return tracker_->take_snapshot(/*refresh_epoch=*/true);
}

}  // namespace riptide::performance
