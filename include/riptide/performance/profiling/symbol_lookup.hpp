#pragma once
// What pprof asks a running process about its own code, answered from here so that transports only read
// and serialize:
//   - the symbol protocol of Go's net/http/pprof (`pprof -symbolize=remote`): a request is code addresses
//     in hex separated by '+', the answer names each address the process can name;
//   - the GNU build IDs of the loaded ELF objects, which identify a profile's mappings (pprof looks
//     binaries up by build ID in $PPROF_BINARY_PATH and symbol servers).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riptide::performance {

class Symbolizer;

/// Bounds of one symbol request. pprof sends, in one request, every address of a mapping it could not
/// name (one per location, about 15 bytes each), so the defaults allow a few thousand.
struct SymbolRequestLimits {
  std::size_t max_bytes = 64 * 1024;  ///< the request text (POST body or GET query), in bytes
  std::size_t max_addresses = 4096;   ///< addresses in one request
};

/// Why a symbol request was refused.
enum class SymbolRequestProblem {
  none,       ///< parsed: `addresses` holds the request
  malformed,  ///< not hex addresses separated by '+'
  too_large,  ///< beyond SymbolRequestLimits
};

struct SymbolRequest {
  std::vector<std::uint64_t> addresses;  ///< in request order, duplicates kept
  SymbolRequestProblem problem = SymbolRequestProblem::none;
  std::string message;  ///< when refused: what was wrong (a short echo of the input) and what is accepted
};

/// Parses "0x4005d0+0x4006a0": addresses of 1 to 16 hex digits after "0x" (or "0X"), separated by '+'.
/// Whitespace around the whole text is ignored (a body may end in a newline); empty text is a request for
/// nothing. Never throws.
[[nodiscard]] SymbolRequest parse_symbol_request(std::string_view text, const SymbolRequestLimits& limits = {});

/// The answer of Go's Symbol handler: "num_symbols: 1\n" (pprof only checks that the process has symbols),
/// then "0x<address> <function>\n" for each address that has a symbol, in request order, and nothing for
/// the others. An address is taken as pprof sends it: the address of an instruction, here a location's
/// address of a profile this library wrote, which is a call site (return address - 1, see
/// write_pprof_heap_profile). So the function named is the one holding that instruction; it is looked up as
/// `symbolizer.resolve(address + 1)`, the return address the symbolizer expects. Calls trim() afterwards.
[[nodiscard]] std::string answer_symbol_request(const std::vector<std::uint64_t>& addresses, Symbolizer& symbolizer);

/// One object the dynamic loader has mapped (the executable, each shared library, the vDSO).
struct LoadedObject {
  std::string path;  ///< as the loader names it; the executable's is resolved from /proc/self/exe
  std::vector<std::pair<std::uint64_t, std::uint64_t>> segments;  ///< PT_LOAD ranges [start, limit) in memory
  std::string build_id;                 ///< NT_GNU_BUILD_ID as lowercase hex; empty when the object has none
  std::uint64_t device = 0, inode = 0;  ///< of `path` (0 when it cannot be stat'ed)
};

/// Every object loaded now (dl_iterate_phdr), with its build ID read from its PT_NOTE segments in memory.
[[nodiscard]] std::vector<LoadedObject> loaded_objects();

/// The build ID of the object loaded over [start, limit) from the file `path` (a mapping of
/// /proc/self/maps); empty when no loaded object is that file at those addresses, or it has no build ID.
/// The file must be the same one (device and inode), so a profile of another process, or written by hand,
/// never gets the build ID of whatever this process has at those addresses.
[[nodiscard]] std::string build_id_of_mapping(const std::vector<LoadedObject>& objects, std::uint64_t start,
                                              std::uint64_t limit, const std::string& path);

}  // namespace riptide::performance
