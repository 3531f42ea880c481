#include "riptide/performance/profiling/self_heap.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {
namespace {

constexpr std::uint8_t kOwned = kFrameLibrary | kFrameCacheContainer;

// The call site charged with a library stack: its innermost riptide::performance frame (else its innermost
// libdw/libelf frame).
std::uint64_t holder_of(const std::vector<std::uint64_t>& frames, Symbolizer& symbolizer) {
  std::uint64_t dwarf_reader = 0;
  for (const auto address : frames) {
    const std::uint8_t cls = symbolizer.classify(address);
    if ((cls & kFrameLibrary) == 0) continue;
    if ((cls & kFrameDwarfReader) == 0) return address;
    if (dwarf_reader == 0) dwarf_reader = address;
  }
  return dwarf_reader;
}

}  // namespace

StackOwner owner_of_stack(const std::vector<std::uint64_t>& frames, Symbolizer& symbolizer) {
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    const std::uint8_t cls = symbolizer.classify(*it);
    if ((cls & kOwned) == 0) continue;
    return (cls & kFrameCacheContainer) != 0 ? StackOwner::cache_container : StackOwner::library;
  }
  return StackOwner::host;
}

SelfHeapEstimate estimate_self_heap(const HeapProfile& profile, Symbolizer& symbolizer) {
  SelfHeapEstimate estimate;
  estimate.sample_interval_bytes = profile.sample_period;
  estimate.captured_at = profile.captured_at;
  double bytes = 0;
  double variance = 0;
  double cache_bytes = 0;
  std::unordered_map<std::uint64_t, double> holders;
  for (const auto& stack : profile.stacks) {
    if (stack.sampled.live_objects == 0 || stack.frames.empty()) continue;
    const StackOwner owner = owner_of_stack(stack.frames, symbolizer);
    if (owner == StackOwner::host) continue;
    const UnbiasedCounts counts = unbias(stack.sampled, profile.sample_period);
    const double live = counts.live_bytes;
    if (owner == StackOwner::cache_container) {
      cache_bytes += live;
      continue;
    }
    bytes += live;
    variance += counts.live_bytes_variance;
    estimate.sampled_objects += stack.sampled.live_objects;
    ++estimate.library_stacks;
    holders[holder_of(stack.frames, symbolizer)] += live;
  }
  estimate.bytes = static_cast<std::uint64_t>(std::llround(bytes));
  estimate.error_bytes = static_cast<std::uint64_t>(std::llround(std::sqrt(variance)));
  estimate.cache_container_bytes = static_cast<std::uint64_t>(std::llround(cache_bytes));
  std::vector<SelfHeapEstimate::Holder> ranked;
  ranked.reserve(holders.size());
  for (const auto& [address, held] : holders) {
    ranked.push_back({address, static_cast<std::uint64_t>(std::llround(held))});
  }
  const auto n = std::min(SelfHeapEstimate::kTopHolders, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(n), ranked.end(),
                    [](const auto& a, const auto& b) { return a.bytes > b.bytes; });
  ranked.resize(n);
  estimate.top_holders = std::move(ranked);
  return estimate;
}

}  // namespace riptide::performance
