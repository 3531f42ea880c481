#pragma once
// Exports a HeapProfile in Google's pprof format (profile.proto, gzipped), readable by `pprof`, Pyroscope
// and other collectors; and, with RIPTIDE_PERF_FLAMEGRAPH, as folded stacks for flame graph tools.

#include <string>
#include <string_view>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"

namespace riptide::performance {

class Symbolizer;

struct PprofOptions {
  bool gzip = true;                   ///< pprof expects gzip; false gives the raw protobuf (for protoc --decode)
  bool skip_allocator_frames = true;  ///< drop leading jemalloc/operator new frames so leaves are the callers
};

/// Serializes with sample types alloc_objects/count, alloc_space/bytes, inuse_objects/count,
/// inuse_space/bytes (unbiased), period_type space/bytes with period = R, default sample type inuse_space,
/// functions with names and file:line, locations with addresses, and mappings from MAPPED_LIBRARIES.
[[nodiscard]] std::string write_pprof_heap_profile(const HeapProfile& profile, Symbolizer& symbolizer,
                                                   const PprofOptions& options = {});

/// gzip (RFC 1952) of `data` with zlib.
[[nodiscard]] std::string gzip_compress(std::string_view data);

#if RIPTIDE_PERF_HAS_FLAMEGRAPH
enum class FoldedValue { inuse_bytes, alloc_bytes, inuse_objects, alloc_objects };
/// One line per stack, "outermost;...;leaf <value>" with unbiased values, for flamegraph.pl / speedscope.
[[nodiscard]] std::string write_folded_stacks(const HeapProfile& profile, Symbolizer& symbolizer,
                                              FoldedValue value = FoldedValue::inuse_bytes);
#endif

}  // namespace riptide::performance
