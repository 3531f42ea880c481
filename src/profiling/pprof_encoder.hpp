#pragma once
// The profile.proto encoding shared by the heap profile, its delta and the peak profile: samples of four
// signed values over stacks of return addresses, with the locations, functions and mappings pprof needs.
// Internal to the profiling area.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"

namespace riptide::performance::detail {

/// One stack and its values in the order of the sample types: alloc_objects, alloc_space, inuse_objects,
/// inuse_space.
struct PprofHeapSample {
  const std::vector<std::uint64_t>* frames = nullptr;  ///< return addresses, innermost first; never null
  std::array<std::int64_t, 4> values{};
};

struct PprofHeapHeader {
  std::uint64_t sample_period = 0;                      ///< R, written as period
  std::chrono::system_clock::time_point time{};         ///< time_nanos
  std::chrono::nanoseconds duration{0};                 ///< duration_nanos (0: not written)
  const std::vector<MappedRegion>* mappings = nullptr;  ///< MAPPED_LIBRARIES of the profile
};

/// Gzipped (options.gzip) perftools.profiles.Profile bytes of `samples`.
[[nodiscard]] std::string encode_pprof_heap(const std::vector<PprofHeapSample>& samples, const PprofHeapHeader& header,
                                            Symbolizer& symbolizer, const PprofOptions& options);

}  // namespace riptide::performance::detail
