#pragma once
// A jemalloc heap profile (`prof.dump`, format heap_v2): capture, parse, unbias and group by allocation site.
// One parser; the leak detector, the allocation analyzer, the pprof writer and the folded-stack printer all
// read the same HeapProfile value.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "riptide/performance/profiling/profiling_error.hpp"
#include "riptide/performance/profiling/site_attribution.hpp"

namespace riptide::performance {

class Symbolizer;

/// The four counters jemalloc keeps per stack, as written in the dump (sampled, not yet unbiased).
struct HeapCounts {
  std::uint64_t live_objects = 0;   ///< sampled objects allocated here and not yet freed (curobjs)
  std::uint64_t live_bytes = 0;     ///< their bytes (curbytes)
  std::uint64_t alloc_objects = 0;  ///< sampled objects ever allocated here (accumobjs; 0 without prof_accum)
  std::uint64_t alloc_bytes = 0;    ///< their bytes (accumbytes; 0 without prof_accum)
};

/// One distinct stack trace and its sampled counts.
struct HeapStack {
  std::vector<std::uint64_t> frames;  ///< return addresses, innermost first (first frames are in jemalloc)
  HeapCounts sampled;                 ///< the `t*:` line for this stack
};

/// One line of MAPPED_LIBRARIES (the process's /proc/self/maps at dump time).
struct MappedRegion {
  std::uint64_t start = 0;   ///< first address of the mapping
  std::uint64_t limit = 0;   ///< one past the last address
  std::uint64_t offset = 0;  ///< file offset of `start`
  std::string permissions;   ///< e.g. "r-xp"
  std::string path;          ///< backing file; empty for anonymous memory
  [[nodiscard]] bool executable() const { return permissions.size() >= 3 && permissions[2] == 'x'; }
};

struct HeapProfile {
  std::uint64_t sample_period = 0;     ///< R: mean bytes between samples (2^lg_prof_sample), from "heap_v2/<R>"
  HeapCounts totals;                   ///< the header's `t*:` line (sampled)
  std::vector<HeapStack> stacks;       ///< every stack in the dump, in dump order
  std::vector<MappedRegion> mappings;  ///< from MAPPED_LIBRARIES (may be empty in hand-written dumps)
  std::chrono::system_clock::time_point captured_at{};  ///< wall time of the dump (set by capture)
};

/// Counts scaled back to estimates of the true totals.
struct UnbiasedCounts {
  double live_objects = 0;   ///< estimated objects in use
  double live_bytes = 0;     ///< estimated bytes in use
  double alloc_objects = 0;  ///< estimated objects ever allocated (prof_accum)
  double alloc_bytes = 0;    ///< estimated bytes ever allocated (prof_accum)
  /// Variance of live_bytes from sampling: each of k samples of average size s stands for s/p bytes and is
  /// drawn with probability p = 1-exp(-s/R), so var = k s^2 (1-p)/p^2 (sums over stacks and sites add up).
  /// Its square root is the one-sigma error of live_bytes: ~live_bytes/sqrt(k) for objects much smaller than
  /// R, 0 for objects much larger (always sampled).
  double live_bytes_variance = 0;
  double alloc_bytes_variance = 0;          ///< the same for alloc_bytes
  std::uint64_t sampled_live_objects = 0;   ///< raw sample count behind live_*: error is about 1/sqrt of it
  std::uint64_t sampled_alloc_objects = 0;  ///< raw sample count behind alloc_*
};

/// jeprof's correction: an object of average size s is sampled with probability 1-exp(-s/R), so each count is
/// multiplied by 1/(1-exp(-(bytes/objects)/R)). Returns 1 when objects is 0 or period is 0.
[[nodiscard]] double unbias_factor(std::uint64_t objects, std::uint64_t bytes, std::uint64_t period) noexcept;
[[nodiscard]] UnbiasedCounts unbias(const HeapCounts& counts, std::uint64_t period) noexcept;

/// Parses heap_v2 text. Never throws; a malformed dump gives a parse error naming the 1-based line and what
/// was expected there. Per-thread `t<N>:` lines are validated and ignored.
[[nodiscard]] ProfilingResult<HeapProfile> parse_heap_profile(std::string_view text);

/// Runs prof.dump into a file in a fresh private directory (mkdtemp under `dump_directory`, else $TMPDIR,
/// else /tmp), reads and deletes it, and parses it. Blocks allocation sampling briefly; call it off the
/// request path. Returns `unavailable` with the fix when profiling is not enabled.
[[nodiscard]] ProfilingResult<HeapProfile> capture_heap_profile(const std::string& dump_directory = {});

/// The raw text of a dump (capture without parsing), for tools and benchmarks.
[[nodiscard]] ProfilingResult<std::string> capture_heap_dump_text(const std::string& dump_directory = {});

/// Frames kept per allocation site, from the allocating call outwards (reports show at most this many).
inline constexpr std::size_t kMaxSiteStackFrames = 32;

/// All stacks attributed to the same source line (site_attribution.hpp), summed after unbiasing each stack. Stacks the
/// library owns (self_heap.hpp's rule) are left out: they are the library's footprint, not the host's sites.
struct HeapSite {
  std::uint64_t id = 0;              ///< hash of location.key(): the same source line gives the same id
  SiteLocation location;             ///< the program's own line that allocated (site_attribution.hpp)
  std::uint64_t address = 0;         ///< return address of the frame holding `location` (heaviest stack's)
  std::vector<std::uint64_t> stack;  ///< frames of the heaviest contributing stack, from `address` out (at most
                                     ///< kMaxSiteStackFrames)
  UnbiasedCounts counts;             ///< sum over the site's stacks
};

/// Groups a profile by allocation site. Uses `symbolizer` to recognise allocator frames (cached per address).
[[nodiscard]] std::vector<HeapSite> aggregate_by_site(const HeapProfile& profile, Symbolizer& symbolizer);

/// Index of the first frame of `frames` that is not allocator machinery (frames.size() when all are).
[[nodiscard]] std::size_t first_caller_frame(const std::vector<std::uint64_t>& frames, Symbolizer& symbolizer);

}  // namespace riptide::performance
