#pragma once
// Exports a HeapProfile in Google's pprof format (profile.proto, gzipped), readable by `pprof`, Pyroscope
// and other collectors; and, with RIPTIDE_PERF_FLAMEGRAPH, as folded stacks for flame graph tools.

#include <string>
#include <string_view>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"

namespace riptide::performance {

class Symbolizer;

/// The sample type pprof shows unless asked for another (-sample_index): Go's heap profile shows what is in
/// use, its allocs profile what was ever allocated (the same samples either way).
enum class PprofDefaultSample { inuse_space, alloc_space };

struct PprofOptions {
  bool gzip = true;                   ///< pprof expects gzip; false gives the raw protobuf (for protoc --decode)
  bool skip_allocator_frames = true;  ///< drop leading jemalloc/operator new frames so leaves are the callers
  /// false: locations carry addresses only (no functions) and no mapping claims functions, so pprof
  /// symbolizes every location itself: from the binaries, or with -symbolize=remote through the process's
  /// symbol endpoint (symbol_lookup.hpp).
  bool symbolize = true;
  PprofDefaultSample default_sample = PprofDefaultSample::inuse_space;
};

/// Serializes with sample types alloc_objects/count, alloc_space/bytes, inuse_objects/count,
/// inuse_space/bytes (unbiased), period_type space/bytes with period = R, default sample type inuse_space (or
/// alloc_space, options.default_sample).
/// Locations: one per stack address, at the call site (the return address - 1, as pprof and Go expect), with
/// its function (name, file) and line when the symbolizer has a symbol for it, and without any line
/// otherwise. Mappings: the file-backed executable regions of MAPPED_LIBRARIES, each with the GNU build ID
/// of the object loaded there (when this process has that file at those addresses), and has_functions
/// (has_filenames, has_line_numbers) set only when every location in the mapping has a function (a file,
/// a line): pprof symbolizes the other mappings itself.
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
