// libFuzzer target for the heap_v2 dump parser: any input must give a profile or a parse error with a line
// number, never a crash, a hang or undefined behaviour; a parsed profile must unbias to finite values.
//   build/<clang-dir>/tests/fuzz/heap_dump_fuzz -max_total_time=300 <scratch-dir> tests/fuzz/corpus/heap_dump
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "riptide/performance/profiling/heap_profile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto result = riptide::performance::parse_heap_profile(text);
  if (!result.ok()) {
    const auto& error = result.error();
    if (error.kind != riptide::performance::ProfilingErrorKind::parse || error.message.empty()) {
      std::abort();
    }
    return 0;
  }
  const auto& profile = result.value();
  for (const auto& stack : profile.stacks) {
    if (stack.frames.empty()) {
      std::abort();
    }
    const auto counts = riptide::performance::unbias(stack.sampled, profile.sample_period);
    if (!std::isfinite(counts.live_bytes) || !std::isfinite(counts.alloc_bytes) || counts.live_bytes < 0) {
      std::abort();
    }
  }
  for (const auto& region : profile.mappings) {
    if (region.limit < region.start) {
      std::abort();
    }
  }
  return 0;
}
