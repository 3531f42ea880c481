#pragma once
// Turns code addresses of this process into demangled function names and file:line, with libdw (the
// elfutils DWARF reader; dladdr gives no file:line). Thread-safe: libdw itself is not, so lookups of
// uncached addresses are serialized.
//
// Its memory is bounded (docs/profiling.md, "The library's own memory"):
//   - symbolized frames are cached per address up to SymbolizerLimits::max_cache_bytes (estimated bytes of
//     the entries and their strings); beyond it the least recently used frames are evicted;
//   - frame classes (allocator / library / cache container, see classify()) are cached per address in a
//     set-associative table that takes at most a quarter of the same budget; a full set drops its least
//     recently used entry;
//   - libdw's own state (symbol tables, line tables, CU trees, decompressed debug sections it keeps for the
//     session) is measured as the heap growth inside libdw calls (jemalloc's per-thread counters); once it
//     exceeds SymbolizerLimits::max_dwarf_bytes the Dwfl session is ended (freeing all of it) at the end of
//     the batch of lookups (trim()) and started afresh by the next lookup.
// Every eviction, drop and rebuild is counted (stats()).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace riptide::performance {

struct SymbolizedFrame {
  std::uint64_t address = 0;  ///< the return address as recorded in the stack trace
  std::string function;       ///< demangled name; "0x<address>" when no symbol covers the address
  std::string file;           ///< source file from DWARF line info; empty without debug info
  std::uint32_t line = 0;     ///< source line; 0 without debug info
  std::string module;         ///< path of the ELF object (executable or shared library) holding the address
  bool has_symbol = false;    ///< function came from the symbol table, not the raw address

  /// "function (file:line)", "function (module)" without line info, or "0x..." when nothing is known.
  [[nodiscard]] std::string location() const;
};

/// What a code address belongs to, as bits (classify()).
enum FrameClass : std::uint8_t {
  kFrameOther = 0,
  /// Allocator machinery: skipped when naming an allocation site (see is_allocator_frame).
  kFrameAllocator = 1,
  /// riptide-performance itself: a function in namespace riptide::performance (by its mangled name, so
  /// templates and lambdas count too) other than the cache containers, or code in libdw/libelf (used only by
  /// the symbolizer).
  kFrameLibrary = 2,
  /// The cache containers whose contents are the host's values: riptide::performance::TinyLfuCache,
  /// TieredCache and RedisCache (their member functions, nested types and lambdas), and TinyLfuCache's
  /// components in riptide::performance::cache_detail (its shard, node table, sketch, grace periods).
  kFrameCacheContainer = 4,
  /// Code in libdw/libelf (also kFrameLibrary): the symbolizer's DWARF reader.
  kFrameDwarfReader = 8,
};

/// Classes of a function from its mangled name and its module path (either may be empty). Pure; exposed
/// for tests and docs.
[[nodiscard]] std::uint8_t classify_symbol(const char* mangled_name, const std::string& module_path);

struct SymbolizerLimits {
  std::uint64_t max_cache_bytes =
      4 << 20;  ///< symbolized frames + frame classes (profiling.symbolizer_cache_max_bytes)
  std::uint64_t max_dwarf_bytes =
      4 << 20;  ///< libdw's parsed DWARF before a rebuild (profiling.symbolizer_dwarf_max_bytes)
  bool operator==(const SymbolizerLimits&) const = default;
};

struct SymbolizerStats {
  std::uint64_t cached_frames = 0;           ///< symbolized frames held now
  std::uint64_t cache_bytes = 0;             ///< their estimated heap bytes (entries, strings, index)
  std::uint64_t evicted_frames = 0;          ///< frames evicted by max_cache_bytes so far
  std::uint64_t classified_addresses = 0;    ///< addresses in the frame-class table now
  std::uint64_t class_table_bytes = 0;       ///< heap bytes of that table
  std::uint64_t dropped_classes = 0;         ///< class entries dropped by the table's bound so far
  std::uint64_t lookups = 0;                 ///< libdw lookups (cache misses) so far
  double lookup_cpu_seconds = 0;             ///< CPU time of those lookups (the calling threads' CPU clocks)
  std::optional<std::uint64_t> dwarf_bytes;  ///< heap held by libdw in this session; empty without jemalloc
  std::uint64_t dwfl_sessions = 0;           ///< Dwfl sessions started (module scans) so far
  std::uint64_t dwarf_rebuilds = 0;          ///< of those, restarts forced by max_dwarf_bytes
  SymbolizerLimits limits;                   ///< the bounds in force
};

struct ProfilingConfig;
/// The [profiling] keys symbolizer_cache_max_bytes and symbolizer_dwarf_max_bytes.
[[nodiscard]] SymbolizerLimits symbolizer_limits(const ProfilingConfig& config) noexcept;

class Symbolizer {
 public:
  explicit Symbolizer(SymbolizerLimits limits = {});
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  /// Symbolizes a return address (the call instruction at address-1 gives the line). The frame is shared
  /// with the cache (and stays valid after an eviction). Never throws; unknown addresses give a frame with
  /// the hex address.
  [[nodiscard]] std::shared_ptr<const SymbolizedFrame> resolve(std::uint64_t address);

  /// The FrameClass bits of a return address, cached per address. A miss costs a symbol-table lookup (no
  /// line table, no demangled name kept): heap-profile stacks are classified without filling the frame cache.
  [[nodiscard]] std::uint8_t classify(std::uint64_t address);

  /// Number of cached symbolized frames.
  [[nodiscard]] std::size_t cache_size() const;
  [[nodiscard]] SymbolizerStats stats() const;
  [[nodiscard]] SymbolizerLimits limits() const;
  /// New bounds; applied at once (evicting, dropping or rebuilding as needed).
  void set_limits(const SymbolizerLimits& limits);

  /// Ends the Dwfl session when libdw's state is over max_dwarf_bytes. Library code calls it at the end of
  /// each batch of lookups (an observation, a report, a pprof export); without it the session ends at the
  /// first lookup 1 s after the bound was crossed.
  void trim();

  /// Drops both caches and the Dwfl session (after dlopen/dlclose, or for cold-cache benchmarks).
  void clear();

  /// A process-wide instance shared by the leak detector, the analyzer and the pprof writer. Its limits are
  /// those of the last LeakDetector/AllocationAnalyzer constructed to use it (from [profiling]).
  [[nodiscard]] static Symbolizer& shared();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Whether a frame belongs to the allocator machinery rather than to the code that asked for memory:
/// jemalloc itself, malloc/calloc/realloc/aligned_alloc/posix_memalign, operator new/new[], libstdc++
/// allocator templates, and riptide::performance's own functions (with libdw/libelf, used only by the
/// symbolizer). Leading frames for which this is true are
/// skipped so a site is named after the caller.
[[nodiscard]] bool is_allocator_frame(const SymbolizedFrame& frame);

}  // namespace riptide::performance
