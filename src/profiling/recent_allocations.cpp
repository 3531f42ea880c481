#include "riptide/performance/profiling/recent_allocations.hpp"

#include <time.h>

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"

#if RIPTIDE_PERF_HAS_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace riptide::performance {
namespace {

ProfilingError parse_error(std::string message) {
  return {ProfilingErrorKind::parse, "experimental.prof_recent.alloc_dump: " + std::move(message), {}, 0};
}

ProfilingError unavailable(std::string message) {
  return {ProfilingErrorKind::unavailable, std::move(message),
          "run with jemalloc's heap profiler on (MALLOC_CONF=prof:true,prof_active:true or "
          "RIPTIDE_PERF_ENABLE_HEAP_PROFILING())",
          0};
}

std::optional<std::chrono::nanoseconds> time_of(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end() || !it->is_number_unsigned()) return std::nullopt;
  return std::chrono::nanoseconds(it->get<std::uint64_t>());
}

}  // namespace

ProfilingResult<RecentAllocations> parse_recent_allocations(std::string_view json) {
  const auto document = nlohmann::json::parse(json, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    return parse_error("not a JSON object (" + std::to_string(json.size()) + " bytes)");
  }
  const auto list = document.find("recent_alloc");
  if (list == document.end() || !list->is_array()) {
    return parse_error(
        "no \"recent_alloc\" array; expected {\"sample_interval\", \"recent_alloc_max\", \"recent_alloc\": [...]}");
  }
  RecentAllocations result;
  result.sample_interval = document.value("sample_interval", std::uint64_t{0});
  if (const auto max = document.find("recent_alloc_max"); max != document.end() && max->is_number_integer()) {
    result.capacity = max->get<std::int64_t>() > 0 ? static_cast<std::uint64_t>(max->get<std::int64_t>()) : 0;
  }
  result.records.reserve(list->size());
  for (const auto& record : *list) {
    if (!record.is_object()) continue;
    const auto allocated_at = time_of(record, "alloc_time");
    const auto trace = record.find("alloc_trace");
    if (!allocated_at || trace == record.end() || !trace->is_array()) continue;
    RecentAllocation allocation;
    allocation.allocated_at = *allocated_at;
    allocation.size = record.value("usize", record.value("size", std::uint64_t{0}));
    for (const auto& address : *trace) {
      if (address.is_string()) {
        allocation.frames.push_back(std::strtoull(address.get_ref<const std::string&>().c_str(), nullptr, 16));
      }
    }
    if (allocation.frames.empty()) continue;
    if (record.value("released", false)) allocation.freed_at = time_of(record, "dalloc_time");
    result.records.push_back(std::move(allocation));
  }
  return result;
}

ProfilingResult<bool> ensure_recent_allocations_recorded() {
#if RIPTIDE_PERF_HAS_JEMALLOC
  if (!HeapProfilingControl::available()) return unavailable("jemalloc's heap profiler is not running");
  ssize_t current = 0;
  std::size_t size = sizeof(current);
  if (mallctl("experimental.prof_recent.alloc_max", &current, &size, nullptr, 0) != 0) {
    return unavailable("this jemalloc has no experimental.prof_recent (5.3 or later has it)");
  }
  if (current != 0) return true;
  ssize_t wanted = kRecentAllocationCapacity;
  if (mallctl("experimental.prof_recent.alloc_max", nullptr, nullptr, &wanted, sizeof(wanted)) != 0) {
    return unavailable("experimental.prof_recent.alloc_max could not be set");
  }
  return false;
#else
  return unavailable("the library was built without jemalloc");
#endif
}

ProfilingResult<RecentAllocations> read_recent_allocations() {
#if RIPTIDE_PERF_HAS_JEMALLOC
  if (!HeapProfilingControl::available()) return unavailable("jemalloc's heap profiler is not running");
  std::string json;
  using WriteCallback = void (*)(void*, const char*);
  WriteCallback callback = [](void* opaque, const char* text) { static_cast<std::string*>(opaque)->append(text); };
  // The ctl takes {write_cb, cbopaque} as one value.
  struct {
    WriteCallback write;
    void* opaque;
  } arguments{callback, &json};
  if (mallctl("experimental.prof_recent.alloc_dump", nullptr, nullptr, &arguments, sizeof(arguments)) != 0) {
    return unavailable("experimental.prof_recent.alloc_dump failed (this jemalloc may not have it)");
  }
  return parse_recent_allocations(json);
#else
  return unavailable("the library was built without jemalloc");
#endif
}

std::chrono::nanoseconds recent_allocation_clock_now() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

}  // namespace riptide::performance
