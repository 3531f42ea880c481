#include "riptide/performance/profiling/heap_profile_delta.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "pprof_encoder.hpp"

namespace riptide::performance {
namespace {

struct FramesHash {
  std::size_t operator()(const std::vector<std::uint64_t>& frames) const noexcept {
    std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a over the addresses
    for (const std::uint64_t frame : frames) {
      hash = (hash ^ frame) * 0x100000001b3ULL;
    }
    return static_cast<std::size_t>(hash);
  }
};

std::int64_t rounded(double value) {
  return static_cast<std::int64_t>(std::llround(value));
}

bool rounds_to_zero(const HeapStackChange& change) {
  return rounded(change.live_objects) == 0 && rounded(change.live_bytes) == 0 && rounded(change.alloc_objects) == 0 &&
         rounded(change.alloc_bytes) == 0;
}

}  // namespace

double HeapProfileDelta::live_bytes_change() const noexcept {
  double sum = 0;
  for (const auto& stack : stacks) sum += stack.live_bytes;
  return sum;
}

HeapProfileDelta diff_heap_profiles(const HeapProfile& base, const HeapProfile& later) {
  HeapProfileDelta delta;
  delta.sample_period = later.sample_period;
  delta.base_captured_at = base.captured_at;
  delta.captured_at = later.captured_at;
  std::unordered_map<std::vector<std::uint64_t>, std::size_t, FramesHash> index;
  index.reserve(later.stacks.size() + base.stacks.size() / 8);
  // Each profile's own period unbiases its counts, so the two sides stay comparable even if the sampling
  // interval was reset between them.
  const auto add = [&](const HeapProfile& profile, double sign) {
    for (const auto& stack : profile.stacks) {
      const UnbiasedCounts counts = unbias(stack.sampled, profile.sample_period);
      const auto [it, inserted] = index.try_emplace(stack.frames, delta.stacks.size());
      if (inserted) {
        delta.stacks.push_back(HeapStackChange{.frames = stack.frames});
      }
      HeapStackChange& change = delta.stacks[it->second];
      change.live_objects += sign * counts.live_objects;
      change.live_bytes += sign * counts.live_bytes;
      change.alloc_objects += sign * counts.alloc_objects;
      change.alloc_bytes += sign * counts.alloc_bytes;
    }
  };
  add(later, +1.0);
  add(base, -1.0);
  std::erase_if(delta.stacks, rounds_to_zero);

  delta.mappings = later.mappings;
  for (const auto& region : base.mappings) {
    const bool kept = std::any_of(later.mappings.begin(), later.mappings.end(), [&](const MappedRegion& other) {
      return other.start == region.start && other.path == region.path;
    });
    if (!kept) delta.mappings.push_back(region);  // a module unloaded in between: its frees still need names
  }
  std::sort(delta.mappings.begin(), delta.mappings.end(),
            [](const MappedRegion& a, const MappedRegion& b) { return a.start < b.start; });
  return delta;
}

ProfilingResult<HeapProfileDelta> capture_heap_profile_delta(std::chrono::nanoseconds duration,
                                                             const std::string& dump_directory, std::stop_token stop) {
  if (duration < std::chrono::nanoseconds{0}) {
    return ProfilingError{ProfilingErrorKind::invalid_argument, "a heap profile delta needs a duration of at least 0",
                          "pass a duration from 0 on", 0};
  }
  auto base = capture_heap_profile(dump_directory);
  if (!base) return base.error();
  {
    // Waits for the duration, or less when the caller (a stopping server) asks to stop.
    std::mutex mutex;
    std::condition_variable_any woken;
    std::unique_lock lock(mutex);
    (void)woken.wait_for(lock, stop, duration, [] { return false; });
  }
  if (stop.stop_requested()) {
    return ProfilingError{ProfilingErrorKind::interrupted,
                          "the heap profile delta was interrupted during its wait: the caller is stopping",
                          {},
                          0};
  }
  auto later = capture_heap_profile(dump_directory);
  if (!later) return later.error();
  return diff_heap_profiles(base.value(), later.value());
}

std::string write_pprof_heap_delta(const HeapProfileDelta& delta, Symbolizer& symbolizer, const PprofOptions& options) {
  std::vector<detail::PprofHeapSample> samples;
  samples.reserve(delta.stacks.size());
  for (const auto& stack : delta.stacks) {
    samples.push_back({.frames = &stack.frames,
                       .values = {rounded(stack.alloc_objects), rounded(stack.alloc_bytes), rounded(stack.live_objects),
                                  rounded(stack.live_bytes)}});
  }
  const auto span =
      std::max(std::chrono::nanoseconds{0},
               std::chrono::duration_cast<std::chrono::nanoseconds>(delta.captured_at - delta.base_captured_at));
  return detail::encode_pprof_heap(samples,
                                   {.sample_period = delta.sample_period,
                                    .time = delta.base_captured_at,
                                    .duration = span,
                                    .mappings = &delta.mappings},
                                   symbolizer, options);
}

}  // namespace riptide::performance
