#pragma once
// The library's own heap, estimated from a sampled heap profile (docs/profiling.md, "The library's own
// memory"): which in-use bytes riptide-performance itself holds, so a host can see what watching costs.
//
// The rule, per sample stack of the profile (frames classified by Symbolizer::classify, cached per
// address): walk from the outermost frame (the thread's entry) inward to the first frame that belongs to
// riptide-performance, i.e. a function in namespace riptide::performance or code in libdw/libelf.
//   - it is a library frame (kFrameLibrary): the stack's unbiased in-use bytes are the library's;
//   - it is a cache-container frame (kFrameCacheContainer: TinyLfuCache, TieredCache, RedisCache): the bytes
//     are the host's values held in the library's cache, not counted;
//   - there is none: host memory, not counted.
// So the library's own threads (sampler, leak detector, HTTP server) and every library call the host
// makes (manager, router, detector, symbolizer) count, whatever they call inside; a host call into a cache
// container does not, whatever the container calls inside.
//
// The estimate is the sum of jeprof-unbiased bytes (factor 1/(1-e^(-s/R)) per stack), so it carries the
// profiler's sampling error: error_bytes is one standard deviation, sqrt(sum over stacks of
// k * s^2 * (1-p)/p^2) with k samples of average size s and p = 1-e^(-s/R); for small objects that is
// about bytes/sqrt(samples).

#include <chrono>
#include <cstdint>
#include <vector>

#include "riptide/performance/profiling/heap_profile.hpp"

namespace riptide::performance {

class Symbolizer;

/// Who a sample stack's bytes belong to under the rule above.
enum class StackOwner { host, library, cache_container };

/// The rule above for one stack (frames innermost first, as in HeapStack).
[[nodiscard]] StackOwner owner_of_stack(const std::vector<std::uint64_t>& frames, Symbolizer& symbolizer);

struct SelfHeapEstimate {
  std::uint64_t bytes = 0;                  ///< estimated in-use heap bytes held by the library
  std::uint64_t error_bytes = 0;            ///< one standard deviation of the sampling error of `bytes`
  std::uint64_t sampled_objects = 0;        ///< samples behind `bytes` (relative error ~1/sqrt of it)
  std::uint64_t library_stacks = 0;         ///< sample stacks counted
  std::uint64_t cache_container_bytes = 0;  ///< estimated bytes of host values in the cache containers (not counted)
  std::uint64_t sample_interval_bytes = 0;  ///< R of the profile
  std::chrono::system_clock::time_point captured_at{};  ///< when the profile was dumped

  /// The library call sites holding the most (innermost riptide::performance frame of each stack, or the
  /// libdw/libelf frame when the stack has none), heaviest first, at most kTopHolders.
  struct Holder {
    std::uint64_t address = 0;  ///< return address of that frame (Symbolizer::resolve names it)
    std::uint64_t bytes = 0;    ///< estimated in-use bytes
  };
  static constexpr std::size_t kTopHolders = 10;
  std::vector<Holder> top_holders;
};

/// Applies the rule to every stack of `profile`. Cost: one cached class lookup per frame walked.
[[nodiscard]] SelfHeapEstimate estimate_self_heap(const HeapProfile& profile, Symbolizer& symbolizer);

}  // namespace riptide::performance
