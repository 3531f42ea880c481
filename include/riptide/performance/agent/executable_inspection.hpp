#pragma once
// What riptide-run checks in a program before it runs it under the agent: a statically linked program
// ignores LD_PRELOAD, and a program that defines its own malloc (tcmalloc, mimalloc or a jemalloc linked
// in statically) keeps allocating with it, so the agent would see none of its memory.

#include <filesystem>
#include <string>

namespace riptide::performance {

enum class ExecutableLinkage {
  not_elf,        ///< a script (#!) or something else: its interpreter is what runs, and is checked by nobody
  dynamic,        ///< has an ELF interpreter (ld.so): LD_PRELOAD applies
  static_binary,  ///< no interpreter (static or static-pie): LD_PRELOAD is ignored
  unknown,        ///< an ELF this inspection does not read (32-bit, big-endian)
};

struct ExecutableFacts {
  ExecutableLinkage linkage = ExecutableLinkage::unknown;
  /// The program itself defines and exports malloc (found in its dynamic symbol table).
  bool defines_malloc = false;
};

/// Reads the ELF headers and the dynamic symbol table of `path`. Throws Error naming the path when it cannot
/// be read or its headers are truncated or inconsistent.
[[nodiscard]] ExecutableFacts inspect_executable(const std::filesystem::path& path);

/// Where execvp would find `program` (a name without '/' is searched in `search_path`, PATH's format);
/// empty when it is not found or not executable.
[[nodiscard]] std::filesystem::path find_program(const std::string& program, const std::string& search_path);

}  // namespace riptide::performance
