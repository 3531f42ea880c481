#pragma once
// Where an allocation happened, as the person reading a report needs it: the first source frame of a
// stack that is the program's own code, with the file:line in that function.
//
// A stack is walked from the allocating call outwards. Each return address stands for one or more source
// frames: code inlined into a function appears at the inlined callee's line (new_allocator.h:137 inside
// the user's function), so the symbolizer's inline chain is walked too, innermost first; the line of each
// outer frame is where it called the inner one. The first source frame that is not runtime code gives the
// site: its function, and its line (for a frame that inlined a runtime callee, the line of that call).
// Runtime code is recognised by three lists, like pprof's drop_frames: function name prefixes, source
// path parts and module names (AttributionRules). A stack with no frame outside them is charged to its
// outermost frame so nothing is lost.
//
// Sites are identified by that location (function, file, line), not by a code address: a user function
// whose string bodies and map nodes are allocated through different library paths on one line is one
// site, and so is a line reached by several inlined copies.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace riptide::performance {

class Symbolizer;

struct AttributionRules {
  /// Readable function names (readable_function_name(): no return type, std aliases restored) that start
  /// with one of these are runtime code.
  std::vector<std::string> function_prefixes;
  /// Readable function names that are runtime code when equal to one of these (the C allocation
  /// functions: a prefix would also take the program's own malloc_wrapper or free_list_push).
  std::vector<std::string> function_names;
  /// Source files whose path contains one of these are runtime code (the C++ library's headers).
  std::vector<std::string> path_parts;
  /// Modules whose file name starts with one of these are runtime code (for frames without symbols).
  std::vector<std::string> module_prefixes;

  /// The C++ standard library, GNU extensions, the C library's and the allocators' entry points, the C++
  /// ABI runtime and riptide-performance's own functions (a cache container allocating for the host is
  /// charged to the host's call).
  [[nodiscard]] static const AttributionRules& defaults();
  [[nodiscard]] bool is_runtime_function(std::string_view readable_name) const;
  [[nodiscard]] bool is_runtime_path(std::string_view file) const;
  [[nodiscard]] bool is_runtime_module(std::string_view module_path) const;
};

struct SiteLocation {
  std::string function;       ///< the attributed function's full demangled name ("0x…" without a symbol)
  std::string display_name;   ///< its readable form (readable_function_name)
  std::string file;           ///< source file of `line`; empty without debug info
  std::uint32_t line = 0;     ///< the line in `function` (of the call, when runtime code was inlined there)
  std::string module;         ///< path of the ELF object holding the frame; empty when none does
  std::uint64_t address = 0;  ///< return address of the stack frame the site was found in
  bool has_symbol = false;

  /// "display_name (file:line)", "display_name (module)" without line information, or the address.
  [[nodiscard]] std::string location() const;
  /// What sites are grouped by: function, file and line (module and address when there is no symbol).
  [[nodiscard]] std::string key() const;
};

/// Attributes the stacks of one profile. Remembers each return address's verdict (runtime, or the site it
/// holds), so a profile's thousands of stacks cost one symbolizer lookup and one name check per distinct
/// address. Not thread-safe; one per profile read.
class SiteAttributor {
 public:
  explicit SiteAttributor(Symbolizer& symbolizer, const AttributionRules& rules = AttributionRules::defaults());
  /// The site of one stack (frames innermost first, allocator frames included). Never throws for unknown
  /// addresses.
  [[nodiscard]] SiteLocation operator()(std::span<const std::uint64_t> frames);

 private:
  struct Verdict {
    bool runtime = true;
    SiteLocation site;  // when not runtime
  };
  const Verdict& verdict_of(std::uint64_t address);

  Symbolizer& symbolizer_;
  const AttributionRules& rules_;
  std::unordered_map<std::uint64_t, Verdict> verdicts_;
};

/// A stack as a person reads it, from its first frame outwards: each return address expanded into its
/// inline chain (innermost first), each line "readable name (file:line)" with the line in that function
/// ("0x… (module)" without a symbol); at most `max_lines` lines. The runtime code inlined at the top of the
/// first frame is left out (the stack starts at the site's own line). The drill-down of a leak or a site.
[[nodiscard]] std::vector<std::string> describe_stack(std::span<const std::uint64_t> frames, Symbolizer& symbolizer,
                                                      std::size_t max_lines,
                                                      const AttributionRules& rules = AttributionRules::defaults());

/// One stack's site, without memory between calls (tests, single reports).
[[nodiscard]] SiteLocation attribute_stack(std::span<const std::uint64_t> frames, Symbolizer& symbolizer,
                                           const AttributionRules& rules = AttributionRules::defaults());

}  // namespace riptide::performance
