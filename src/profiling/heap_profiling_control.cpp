#include "riptide/performance/profiling/heap_profiling_control.hpp"

#include <cerrno>
#include <cstring>

#include "riptide/performance/memory/jemalloc_ctl.hpp"

namespace riptide::performance {
namespace {

std::string mallctl_failure(const char* name, int code) {
  return std::string("mallctl(\"") + name + "\") failed: " + std::strerror(code) + " (" + std::to_string(code) + ")";
}

}  // namespace

HeapProfilingStatus HeapProfilingControl::status() {
  HeapProfilingStatus result;
  const auto& jemalloc = JemallocCtl::availability();
  result.jemalloc = jemalloc.serves_malloc;
  if (!jemalloc.serves_malloc) {
    result.reason = "heap profiling needs jemalloc as the process allocator: " + jemalloc.reason;
    result.fix = jemalloc.compiled_in
                     ? "link the executable against riptide::performance so jemalloc replaces malloc, then " +
                           std::string(kHeapProfilingFix)
                     : "rebuild with -DRIPTIDE_PERF_JEMALLOC=ON (sanitizer builds replace malloc and cannot profile)";
    return result;
  }
  result.compiled_with_prof = JemallocCtl::read_bool("config.prof").value_or(false);
  if (!result.compiled_with_prof) {
    result.reason = "this jemalloc was built without --enable-prof (config.prof is false)";
    result.fix = "use a jemalloc built with profiling (Debian's libjemalloc2 has it)";
    return result;
  }
  result.enabled_at_start = JemallocCtl::read_bool("opt.prof").value_or(false);
  if (!result.enabled_at_start) {
    result.reason = "jemalloc's heap profiler was not enabled at process start (opt.prof is false)";
    result.fix = kHeapProfilingFix;
    return result;
  }
  result.available = true;
  result.active = JemallocCtl::read_bool("prof.active").value_or(false);
  result.accumulating = JemallocCtl::read_bool("opt.prof_accum").value_or(false);
  if (const auto lg = lg_sample()) {
    result.lg_sample = *lg;
    result.sample_interval_bytes = std::uint64_t{1} << *lg;
  }
  return result;
}

bool HeapProfilingControl::available() {
  // opt.prof cannot change after start, so the answer is cached.
  static const bool cached = status().available;
  return cached;
}

ProfilingError HeapProfilingControl::unavailable_error() {
  const auto now = status();
  ProfilingError error;
  error.kind = ProfilingErrorKind::unavailable;
  error.message = now.reason.empty() ? "heap profiling is unavailable" : now.reason;
  error.fix = now.fix;
  return error;
}

std::optional<ProfilingError> HeapProfilingControl::set_active(bool active) {
  if (!available()) {
    return unavailable_error();
  }
  if (const int code = JemallocCtl::write_bool("prof.active", active); code != 0) {
    return ProfilingError{ProfilingErrorKind::dump_failed, mallctl_failure("prof.active", code), {}, 0};
  }
  return std::nullopt;
}

std::optional<ProfilingError> HeapProfilingControl::reset(std::uint32_t lg_sample) {
  constexpr std::uint32_t kMaxLgSample = 62;
  if (lg_sample > kMaxLgSample) {
    return ProfilingError{ProfilingErrorKind::invalid_argument,
                          "lg_prof_sample " + std::to_string(lg_sample) + " is out of range",
                          "use a value from 0 to 62 (19 = 512 KiB is the default)", 0};
  }
  if (!available()) {
    return unavailable_error();
  }
  if (const int code = JemallocCtl::write_size("prof.reset", lg_sample); code != 0) {
    return ProfilingError{ProfilingErrorKind::dump_failed, mallctl_failure("prof.reset", code), {}, 0};
  }
  return std::nullopt;
}

std::optional<std::uint32_t> HeapProfilingControl::lg_sample() {
  const auto value = JemallocCtl::read_size("prof.lg_sample");
  if (!value) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(*value);
}

}  // namespace riptide::performance
