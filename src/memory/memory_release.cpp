#include "riptide/performance/memory/memory_release.hpp"

#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/memory/memory_tracker.hpp"

#include "riptide/performance/core/json_optional.hpp"

#include <nlohmann/json.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace riptide::performance {
namespace {

MemoryReading read_memory(MemoryTracker& tracker) {
  const MemorySnapshot snapshot = tracker.take_snapshot(/*refresh_epoch=*/true);
  return {snapshot.rss_bytes, snapshot.resident_bytes, snapshot.mapped_bytes, snapshot.heap_bytes};
}

std::string step(const char* name) {
  return JemallocCtl::run(name) == 0 ? std::string{name} : std::string{name} + " failed";
}

nlohmann::json reading_json(const MemoryReading& reading) {
  return {{"rss_bytes", optional_json(reading.rss)},
          {"resident_bytes", optional_json(reading.resident)},
          {"mapped_bytes", optional_json(reading.mapped)},
          {"heap_bytes", optional_json(reading.heap)}};
}

}  // namespace

std::uint64_t MemoryRelease::freed_bytes() const {
  const auto memory_before = before.memory();
  const auto memory_after = after.memory();
  return memory_before && memory_after && *memory_before > *memory_after ? *memory_before - *memory_after : 0;
}

std::string memory_release_unavailable_reason(const MemoryTracker& tracker) {
  if (JemallocCtl::usable()) return {};
#if defined(__GLIBC__)
  if (tracker.allocator() == AllocatorKind::glibc) return {};
#endif
  return "returning memory needs jemalloc (or glibc malloc) as the allocator; this process uses " +
         std::string{allocator_name(tracker.allocator())};
}

MemoryRelease release_free_memory(MemoryTracker& tracker) {
  MemoryRelease release;
  release.timestamp = std::chrono::system_clock::now();
  release.reason = memory_release_unavailable_reason(tracker);
  if (!release.reason.empty()) return release;
  const bool jemalloc = JemallocCtl::usable();
  release.performed = true;
  const auto start = std::chrono::steady_clock::now();
  release.before = read_memory(tracker);
  if (jemalloc) {
    release.steps.push_back(step("thread.tcache.flush"));
    release.steps.push_back(step("arena.4096.purge"));  // every arena's dirty and muzzy pages
  } else {
#if defined(__GLIBC__)
    malloc_trim(0);
    release.steps.emplace_back("malloc_trim(0)");
#endif
  }
  release.after = read_memory(tracker);
  release.duration = std::chrono::steady_clock::now() - start;
  return release;
}

void to_json(nlohmann::json& json, const MemoryRelease& release) {
  json = nlohmann::json::object();
  json["triggered"] = release.performed;
  json["memory_before"] = optional_json(release.before.memory());
  json["memory_after"] = optional_json(release.after.memory());
  json["freed_bytes"] = release.freed_bytes();
  json["duration_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(release.duration).count();
  json["duration_seconds"] = std::chrono::duration<double>(release.duration).count();
  json["memory_basis"] = release.before.rss ? "rss_bytes" : "resident_bytes";
  json["before"] = reading_json(release.before);
  json["after"] = reading_json(release.after);
  json["steps"] = release.steps;
  json["note"] = "retained virtual memory is never unmapped; freed_bytes is the drop in resident memory";
  if (!release.performed) json["reason"] = release.reason;
}

}  // namespace riptide::performance
