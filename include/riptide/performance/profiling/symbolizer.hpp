#pragma once
// Turns code addresses of this process into demangled function names and file:line, with libdw (the
// elfutils DWARF reader; dladdr gives no file:line). Results are cached per address, so a warm lookup is a
// hash-map probe. Thread-safe: libdw itself is not, so lookups of uncached addresses are serialized.

#include <cstdint>
#include <memory>
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

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  /// Symbolizes a return address (the call instruction at address-1 gives the line). The reference stays
  /// valid for the symbolizer's lifetime. Never throws; unknown addresses give a frame with the hex address.
  [[nodiscard]] const SymbolizedFrame& resolve(std::uint64_t address);

  /// Number of cached addresses (each costs ~200 bytes; bounded by the code actually seen in stacks).
  [[nodiscard]] std::size_t cache_size() const;

  /// Drops the cache and the module list (after dlopen/dlclose, or for cold-cache benchmarks).
  void clear();

  /// A process-wide instance shared by the leak detector, the analyzer and the pprof writer.
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
