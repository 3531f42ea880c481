#pragma once
// Returning free memory to the operating system, the action behind POST /metrics/memory/gc: jemalloc flushes
// the calling thread's cache and purges every arena's dirty and muzzy pages; under glibc malloc, malloc_trim.
// Other allocators cannot be asked, which the result says instead of pretending.
//   rp::MemoryRelease r = manager->release_memory();   // r.freed_bytes(), r.steps
//   nlohmann::json j = r;

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace riptide::performance {

class MemoryTracker;

/// The figures a release can change, read before and after it (jemalloc epoch refreshed).
struct MemoryReading {
  std::optional<std::uint64_t> rss;
  std::optional<std::uint64_t> resident;  ///< jemalloc stats.resident
  std::optional<std::uint64_t> mapped;    ///< jemalloc stats.mapped
  std::optional<std::uint64_t> heap;      ///< bytes the application holds
  /// RSS, else jemalloc's resident bytes: what a release is judged by.
  [[nodiscard]] std::optional<std::uint64_t> memory() const { return rss ? rss : resident; }
};

struct MemoryRelease {
  bool performed = false;  ///< false: the allocator offers no way to release memory (`reason` says which)
  std::string reason;      ///< empty when performed
  std::chrono::system_clock::time_point timestamp{};
  MemoryReading before;
  MemoryReading after;
  std::vector<std::string> steps;  ///< what was asked of the allocator, with failures named
  std::chrono::nanoseconds duration{};
  /// The drop in resident memory (0 when it did not drop; retained virtual memory is never unmapped).
  [[nodiscard]] std::uint64_t freed_bytes() const;
};

/// Why this process's allocator cannot be asked to release memory; empty when it can (jemalloc, glibc).
[[nodiscard]] std::string memory_release_unavailable_reason(const MemoryTracker& tracker);

/// Asks the process's allocator to return free pages, with readings from `tracker` around it. Not a hot
/// path: a purge walks every arena. Thread-safe.
[[nodiscard]] MemoryRelease release_free_memory(MemoryTracker& tracker);

/// {triggered, memory_before, memory_after, freed_bytes, duration_ms, duration_seconds, memory_basis,
///  before{rss_bytes, resident_bytes, mapped_bytes, heap_bytes}, after{...}, steps, note}
void to_json(nlohmann::json& json, const MemoryRelease& release);

}  // namespace riptide::performance
