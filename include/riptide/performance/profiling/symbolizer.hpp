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
#include <string_view>
#include <vector>

namespace riptide::performance {

/// One source-level frame at a code address: a function and the line executing in it.
struct SourceFrame {
  std::string function;    ///< demangled, fully qualified name with its parameter list
  std::string file;        ///< source file; empty when unknown
  std::uint32_t line = 0;  ///< source line; 0 when unknown
};

struct SymbolizedFrame {
  std::uint64_t address = 0;  ///< the return address as recorded in the stack trace
  std::string function;       ///< demangled name; "0x<address>" when no symbol covers the address
  std::string file;           ///< source file from DWARF line info; empty without debug info
  std::uint32_t line = 0;     ///< source line; 0 without debug info
  std::string module;         ///< path of the ELF object (executable or shared library) holding the address
  bool has_symbol = false;    ///< function came from the symbol table, not the raw address
  /// The source-level frames at the address, innermost first. [0] is the code at the address: the
  /// inlined callee when the code was inlined, with file:line from the line table (the same as file and
  /// line above); each next entry is the function the previous one was inlined into, with the file:line of
  /// that call; the last entry is the out-of-line function (its name equals `function`). So the line
  /// in the caller's own code is at the entry of that caller, not in file:line. Without DWARF for the
  /// address: one entry {function, file, line}. Empty when no symbol covers the address.
  std::vector<SourceFrame> inline_chain;

  /// "function (file:line)", "function (module)" without line info, "0x... (module)" for an address in a
  /// module without a symbol for it, "0x... (in no loaded module)" for an address in no loaded ELF object.
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
  /// The one way the symbolizer may reach the network: debug information missing locally is asked from
  /// the debuginfod servers in DEBUGINFOD_URLS (profiling.debuginfod). Off: local files only.
  bool debuginfod = false;
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
  /// with the cache (and stays valid after an eviction). Never throws; an address without a symbol gives a
  /// frame with the hex address as function and the path of the object that maps it as module, or an empty
  /// module when no loaded object maps it (never a neighbouring module's name).
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

  /// Drops both caches and the Dwfl session (for cold-cache benchmarks). Not needed after dlopen/dlclose:
  /// every call notices a change of the process's set of loaded objects (glibc's dl_iterate_phdr counters)
  /// and starts a new Dwfl session; after a dlopen it drops the frames and classes of addresses that were
  /// in no module, after a dlclose all of them (the addresses may belong to another object now).
  void clear();

  /// A process-wide instance shared by the leak detector, the analyzer and the pprof writer. Its limits are
  /// those of the last LeakDetector/AllocationAnalyzer constructed to use it (from [profiling]).
  [[nodiscard]] static Symbolizer& shared();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A short, readable form of a demangled C++ function name, for reports and dashboards:
///   - the leading return type of a template function is dropped;
///   - standard aliases are restored (std::__cxx11::basic_string<char, std::char_traits<char>,
///     std::allocator<char> > -> std::string, likewise wstring, u8/u16/u32string, string_view, ostream...;
///     std::__cxx11:: -> std::) and trailing default template arguments are dropped (allocator, less,
///     equal_to, hash, char_traits, default_delete: std::vector<std::string, std::allocator<std::string> >
///     -> std::vector<std::string>);
///   - parameter lists are elided (`retain_parsed_documents(unsigned long)` -> `retain_parsed_documents`),
///     also those of enclosing functions of a local entity, and cv/ref/noexcept suffixes and GCC's
///     [clone .cold] / [abi:cxx11] tags go; the function's own template arguments (deduced, mostly) go too;
///   - template argument lists still longer than 30 characters become `<…>`; shorter ones stay
///     (std::vector<int>);
///   - lambdas keep their signature when it is short ({lambda(int)#1}), operators keep their symbol
///     (operator<, operator()), "(anonymous namespace)::" stays.
/// Never throws on malformed input: a name whose brackets do not balance comes back trimmed, cut to 120
/// bytes.
[[nodiscard]] std::string readable_function_name(std::string_view demangled);

/// Whether a frame belongs to the allocator machinery rather than to the code that asked for memory:
/// jemalloc itself, malloc/calloc/realloc/aligned_alloc/posix_memalign, operator new/new[], libstdc++
/// allocator templates, and riptide::performance's own functions (with libdw/libelf, used only by the
/// symbolizer). Leading frames for which this is true are
/// skipped so a site is named after the caller.
[[nodiscard]] bool is_allocator_frame(const SymbolizedFrame& frame);

}  // namespace riptide::performance
