#include "riptide/performance/profiling/symbolizer.hpp"

#include "dwfl_callbacks.hpp"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <link.h>
#include <time.h>
#include <unistd.h>

#include <limits.h>
#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <list>
#include <mutex>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"

#if RIPTIDE_PERF_HAS_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace riptide::performance {
namespace {

std::string hex_address(std::uint64_t address) {
  std::array<char, 2 + 16 + 1> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "0x%llx", static_cast<unsigned long long>(address));
  return buffer.data();
}

std::string demangle(const char* name) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status == 0 && demangled != nullptr) {
    std::string result(demangled);
    std::free(demangled);
    return result;
  }
  std::free(demangled);
  return name;
}

std::string_view basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// --- readable_function_name: a small rewriter over the demangler's output. It never needs to understand
// the whole C++ grammar: it walks bracket groups, and any group it cannot close makes the caller fall back
// to the trimmed input.

constexpr std::size_t kMaxTemplateArgsChars = 30;
constexpr std::size_t kMaxFallbackChars = 120;
constexpr std::string_view kEllipsis = "\u2026";

bool is_identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '.';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n')) text.remove_suffix(1);
  return text;
}

// Length of the operator symbol after the keyword "operator" at `at` (which points just past it), so its
// '<', '>', '(' or '[' are not taken for brackets. 0 for a conversion operator or operator new/delete,
// whose names are ordinary words.
std::size_t operator_symbol_length(std::string_view text, std::size_t at) {
  const std::string_view rest = text.substr(at);
  if (rest.starts_with("()") || rest.starts_with("[]")) return 2;
  std::size_t length = 0;
  constexpr std::string_view kSymbolChars = "<>=!+-*/%^&|~,";
  while (length < rest.size() && kSymbolChars.find(rest[length]) != std::string_view::npos) ++length;
  return length;
}

// Whether "operator" ends at `end` in `text` as a whole word.
bool operator_keyword_ends_at(std::string_view text, std::size_t end) {
  constexpr std::string_view kKeyword = "operator";
  if (end < kKeyword.size() || text.substr(end - kKeyword.size(), kKeyword.size()) != kKeyword) return false;
  const std::size_t begin = end - kKeyword.size();
  return begin == 0 || !is_identifier_char(text[begin - 1]);
}

// Index of the bracket closing the one at `open`, skipping nested groups and operator symbols; npos when
// the text ends first or a different bracket closes.
std::size_t matching_bracket(std::string_view text, std::size_t open) {
  std::string stack;
  for (std::size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (c == 'r' && operator_keyword_ends_at(text, i + 1)) {
      i += operator_symbol_length(text, i + 1);
      continue;
    }
    switch (c) {
      case '<':
        stack.push_back('>');
        break;
      case '(':
        stack.push_back(')');
        break;
      case '[':
        stack.push_back(']');
        break;
      case '{':
        stack.push_back('}');
        break;
      case '>':
      case ')':
      case ']':
      case '}':
        if (stack.empty() || stack.back() != c) return std::string_view::npos;
        stack.pop_back();
        if (stack.empty()) return i;
        break;
      default:
        break;
    }
  }
  return std::string_view::npos;
}

// Splits a bracket group's content at its top-level commas.
std::optional<std::vector<std::string_view>> split_arguments(std::string_view content) {
  std::vector<std::string_view> arguments;
  std::size_t start = 0;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const char c = content[i];
    if (c == 'r' && operator_keyword_ends_at(content, i + 1)) {
      i += operator_symbol_length(content, i + 1);
    } else if (c == '<' || c == '(' || c == '[' || c == '{') {
      const std::size_t close = matching_bracket(content, i);
      if (close == std::string_view::npos) return std::nullopt;
      i = close;
    } else if (c == ',') {
      arguments.push_back(trim(content.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (!trim(content).empty()) arguments.push_back(trim(content.substr(start)));
  return arguments;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// A template's name and its (already rewritten) arguments, as the standard alias when there is one.
std::optional<std::string> standard_alias(std::string_view name, const std::vector<std::string>& arguments) {
  if (arguments.size() != 1) return std::nullopt;
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 13> kTemplates = {{
      {"std::basic_string", "string"},
      {"std::basic_string_view", "string_view"},
      {"std::basic_ostream", "ostream"},
      {"std::basic_istream", "istream"},
      {"std::basic_iostream", "iostream"},
      {"std::basic_ostringstream", "ostringstream"},
      {"std::basic_istringstream", "istringstream"},
      {"std::basic_stringstream", "stringstream"},
      {"std::basic_ofstream", "ofstream"},
      {"std::basic_ifstream", "ifstream"},
      {"std::basic_fstream", "fstream"},
      {"std::basic_streambuf", "streambuf"},
      {"std::basic_stringbuf", "stringbuf"},
  }};
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kCharacters = {
      {{"char", ""}, {"wchar_t", "w"}, {"char8_t", "u8"}, {"char16_t", "u16"}, {"char32_t", "u32"}}};
  for (const auto& [template_name, alias] : kTemplates) {
    if (name != template_name) continue;
    for (const auto& [character, prefix] : kCharacters) {
      if (arguments.front() != character) continue;
      const bool wide_only = !prefix.empty() && prefix != "w";
      if (wide_only && alias != "string" && alias != "string_view") return std::nullopt;
      return "std::" + std::string(prefix) + std::string(alias);
    }
  }
  return std::nullopt;
}

// Trailing template arguments that are the standard defaults (std::allocator<T>, std::less<K>...).
bool is_default_argument(std::string_view argument) {
  for (const std::string_view prefix :
       {"std::allocator<", "std::less<", "std::equal_to<", "std::hash<", "std::char_traits<", "std::default_delete<"}) {
    if (argument.starts_with(prefix)) return true;
  }
  return false;
}

class NameRewriter {
 public:
  // Rewrites `text`. With `in_name` set, parameter lists are dropped (the text is a function's name);
  // otherwise it is a type, where a parenthesized list is part of the type (std::function<void (int)>).
  static std::optional<std::string> rewrite(std::string_view text, bool in_name, std::size_t* last_template = nullptr) {
    std::string out;
    std::size_t name_begin = 0;  // where the qualified name being written starts in `out`
    std::size_t template_at = std::string::npos;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c == 'r' && operator_keyword_ends_at(text, i + 1)) {
        const std::size_t symbol = operator_symbol_length(text, i + 1);
        out.push_back(c);
        out.append(text.substr(i + 1, symbol));
        i += symbol;
        template_at = std::string::npos;
        continue;
      }
      if (c == '<' || c == '(' || c == '[' || c == '{') {
        const std::size_t close = matching_bracket(text, i);
        if (close == std::string_view::npos) return std::nullopt;
        const std::string_view content = text.substr(i + 1, close - i - 1);
        if (c == '<') {
          // "operator< <int>": the space before a template list is the demangler's, not a separator.
          while (!out.empty() && out.back() == ' ') out.pop_back();
          const std::size_t before = out.size();
          const auto appended = append_template(out, name_begin, content);
          if (!appended) return std::nullopt;
          template_at = *appended ? before : std::string::npos;  // an alias replaced the name: no list
          i = close;
          continue;
        }
        if (c == '(') {
          if (content == "anonymous namespace") {
            out.append("(anonymous namespace)");
          } else if (!in_name) {
            const auto inner = rewrite_list(content);
            if (!inner) return std::nullopt;
            out.append("(").append(*inner).append(")");
          }
          name_begin = out.size();
        } else if (c == '[') {
          if (!content.starts_with("abi:") && !content.starts_with("clone ")) {
            out.append("[").append(content).append("]");
          }
        } else if (!append_braced(out, content)) {
          return std::nullopt;
        }
        template_at = std::string::npos;
        i = close;
        continue;
      }
      if (c == '>' || c == ')' || c == ']' || c == '}') return std::nullopt;  // closes nothing
      if (!is_identifier_char(c) && c != ':' && c != '~') name_begin = out.size() + 1;
      if (c != ' ') template_at = std::string::npos;
      out.push_back(c);
    }
    // The list's own text is already normalized, so its distance from the end survives the replacement.
    const std::size_t tail = template_at == std::string::npos ? 0 : out.size() - template_at;
    replace_all(out, "std::__cxx11::", "std::");
    if (last_template != nullptr) *last_template = template_at == std::string::npos ? template_at : out.size() - tail;
    return out;
  }

 private:
  static std::optional<std::string> rewrite_list(std::string_view content) {
    const auto arguments = split_arguments(content);
    if (!arguments) return std::nullopt;
    std::string out;
    for (const auto argument : *arguments) {
      const auto rewritten = rewrite(argument, false);
      if (!rewritten) return std::nullopt;
      if (!out.empty()) out.append(", ");
      out.append(*rewritten);
    }
    return out;
  }

  // Appends "<arguments>" and gives true, or replaces the name with its alias and gives false; empty when
  // the content does not parse.
  static std::optional<bool> append_template(std::string& out, std::size_t name_begin, std::string_view content) {
    const auto split = split_arguments(content);
    if (!split) return std::nullopt;
    std::vector<std::string> arguments;
    for (const auto argument : *split) {
      auto rewritten = rewrite(argument, false);
      if (!rewritten) return std::nullopt;
      arguments.push_back(std::move(*rewritten));
    }
    while (arguments.size() > 1 && is_default_argument(arguments.back())) arguments.pop_back();
    std::string name = out.substr(std::min(name_begin, out.size()));
    replace_all(name, "std::__cxx11::", "std::");
    if (const auto alias = standard_alias(name, arguments)) {
      out.resize(std::min(name_begin, out.size()));
      out.append(*alias);
      return false;
    }
    std::string joined;
    for (const auto& argument : arguments) {
      if (!joined.empty()) joined.append(", ");
      joined.append(argument);
    }
    out.append("<").append(joined.size() > kMaxTemplateArgsChars ? std::string(kEllipsis) : joined).append(">");
    return true;
  }

  // "{lambda(int)#1}" keeps a short signature; "{unnamed type#1}" and the like stay as they are.
  static bool append_braced(std::string& out, std::string_view content) {
    if (content.starts_with("lambda(")) {
      const std::size_t open = std::string_view("lambda").size();
      const std::size_t close = matching_bracket(content, open);
      if (close == std::string_view::npos) return false;
      auto parameters = rewrite_list(content.substr(open + 1, close - open - 1));
      if (!parameters) return false;
      if (parameters->size() > kMaxTemplateArgsChars) *parameters = std::string(kEllipsis);
      out.append("{lambda(").append(*parameters).append(")").append(content.substr(close + 1)).append("}");
      return true;
    }
    out.append("{").append(content).append("}");
    return true;
  }
};

std::string fallback_name(std::string_view text) {
  text = trim(text);
  if (text.size() <= kMaxFallbackChars) return std::string(text);
  std::size_t cut = kMaxFallbackChars - kEllipsis.size();
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 char
  return std::string(text.substr(0, cut)) + std::string(kEllipsis);
}

// Where the function's parameter list starts: the last top-level parenthesized group (not "(anonymous
// namespace)"), or npos for a name without one (a C function, "vtable for X").
std::optional<std::size_t> parameter_list_start(std::string_view text) {
  std::size_t found = std::string_view::npos;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == 'r' && operator_keyword_ends_at(text, i + 1)) {
      i += operator_symbol_length(text, i + 1);
    } else if (c == '<' || c == '(' || c == '[' || c == '{') {
      const std::size_t close = matching_bracket(text, i);
      if (close == std::string_view::npos) return std::nullopt;
      // A group followed by "::" is an enclosing function's ("f()::{lambda()#1}", "f()::local"), not this
      // name's parameter list.
      if (c == '(' && text.substr(i + 1, close - i - 1) != "anonymous namespace" &&
          !trim(text.substr(close + 1)).starts_with("::")) {
        found = i;
      } else if (c == '(' && trim(text.substr(close + 1)).starts_with("::")) {
        found = std::string_view::npos;
      }
      i = close;
    } else if (c == '>' || c == ')' || c == ']' || c == '}') {
      return std::nullopt;
    }
  }
  return found;
}

// Where the function's name starts once a leading return type ("void ", "std::string const& ") is skipped:
// after the last top-level space before the parameter list that is not inside "operator new", a conversion
// operator's "operator T" or before a template list.
std::size_t name_start(std::string_view text, std::size_t end) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < end; ++i) {
    const char c = text[i];
    if (c == 'r' && operator_keyword_ends_at(text, i + 1)) {
      // Everything after the keyword belongs to the operator's name (a conversion's type has spaces).
      return start;
    }
    if (c == '<' || c == '(' || c == '[' || c == '{') {
      const std::size_t close = matching_bracket(text, i);
      if (close == std::string_view::npos || close >= end) return start;
      i = close;
    } else if (c == ' ' && i + 1 < end && text[i + 1] != '<' && text[i + 1] != '[') {
      start = i + 1;
    }
  }
  return start;
}

}  // namespace

std::string readable_function_name(std::string_view demangled) {
  try {
    const std::string_view text = trim(demangled);
    const auto parameters = parameter_list_start(text);
    if (!parameters) return fallback_name(text);
    const bool is_function = *parameters != std::string_view::npos;
    const std::size_t end = is_function ? *parameters : text.size();
    const std::size_t start = is_function ? name_start(text, end) : 0;
    std::size_t last_template = std::string::npos;
    auto name = NameRewriter::rewrite(trim(text.substr(start, end - start)), true, &last_template);
    if (!name) return fallback_name(text);
    // The function's own template arguments are mostly deduced from the parameters dropped above.
    if (is_function && last_template != std::string::npos) name->resize(last_template);
    const std::string_view result = trim(*name);
    return result.empty() ? fallback_name(text) : std::string(result);
  } catch (...) {  // std::bad_alloc
    return {};
  }
}

namespace {

// C symbols of the allocator and the C library's allocating functions.
constexpr std::array<std::string_view, 16> kAllocatorNames = {
    "malloc",  "calloc",  "realloc", "free",    "posix_memalign", "aligned_alloc", "memalign", "valloc",
    "pvalloc", "mallocx", "rallocx", "xallocx", "__libc_malloc",  "strdup",        "strndup",  "reallocarray"};

bool is_symbolizer_module(std::string_view path) {
  const auto module = basename_of(path);
  return module.starts_with("libdw") || module.starts_with("libelf");
}

bool is_allocator_module(std::string_view path) {
  return basename_of(path).starts_with("libjemalloc") || is_symbolizer_module(path);
}

// After "_Z": an optional local-entity "Z", then a nested name "N" with its qualifiers; returns where the
// first component of the nested name starts, or npos for a name that is not nested.
std::size_t nested_name_start(std::string_view mangled) {
  if (!mangled.starts_with("_Z")) return std::string_view::npos;
  std::size_t at = 2;
  if (at < mangled.size() && mangled[at] == 'Z') ++at;  // _ZZ<encoding>E<entity>: a lambda or local class
  if (at >= mangled.size() || mangled[at] != 'N') return std::string_view::npos;
  ++at;
  while (at < mangled.size() && (mangled[at] == 'r' || mangled[at] == 'V' || mangled[at] == 'K')) ++at;
  if (at < mangled.size() && (mangled[at] == 'R' || mangled[at] == 'O')) ++at;
  return at;
}

// Rough heap cost of one allocation of `size` bytes (jemalloc's small classes are 16-byte multiples here).
constexpr std::uint64_t heap_block(std::uint64_t size) {
  return (size + 15) & ~std::uint64_t{15};
}

std::uint64_t string_heap(const std::string& text) {
  return text.capacity() > 15 ? heap_block(text.capacity() + 1) : 0;  // libstdc++ keeps 15 chars inline
}

// Net bytes this thread has allocated so far (jemalloc's per-thread counters): the difference across a
// libdw call is what libdw kept. Empty when jemalloc does not serve malloc.
std::optional<std::int64_t> thread_net_allocated() {
#if RIPTIDE_PERF_HAS_JEMALLOC
  thread_local std::uint64_t* allocated = nullptr;
  thread_local std::uint64_t* deallocated = nullptr;
  thread_local bool probed = false;
  if (!probed) {
    probed = true;
    if (JemallocCtl::usable()) {
      std::size_t size = sizeof(allocated);
      if (mallctl("thread.allocatedp", &allocated, &size, nullptr, 0) != 0) allocated = nullptr;
      size = sizeof(deallocated);
      if (mallctl("thread.deallocatedp", &deallocated, &size, nullptr, 0) != 0) deallocated = nullptr;
    }
  }
  if (allocated == nullptr || deallocated == nullptr) return std::nullopt;
  return static_cast<std::int64_t>(*allocated) - static_cast<std::int64_t>(*deallocated);
#else
  return std::nullopt;
#endif
}

// CPU time of the calling thread, for the cost of lookups (a miss costs microseconds to milliseconds).
double thread_cpu_seconds() {
  timespec now{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) != 0) return 0;
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// The dynamic loader's counters of objects loaded and unloaded so far (dl_iterate_phdr hands them to its
// callback): a change means the Dwfl session's picture of the process is stale. One call takes the loader's
// lock briefly and visits one object (~40 ns). Empty if the C library does not provide them.
struct ModuleSetGeneration {
  unsigned long long adds = 0;
  unsigned long long subs = 0;
  bool operator==(const ModuleSetGeneration&) const = default;
};

std::optional<ModuleSetGeneration> module_set_generation() noexcept {
  struct Result {
    ModuleSetGeneration generation;
    bool known = false;
  } result;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t size, void* data) -> int {
        auto* out = static_cast<Result*>(data);
        if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
          out->generation = {info->dlpi_adds, info->dlpi_subs};
          out->known = true;
        }
        return 1;  // the counters are the same in every callback: one is enough
      },
      &result);
  if (!result.known) return std::nullopt;
  return result.generation;
}

// The loaded ELF object one of whose PT_LOAD segments maps an address, per the dynamic loader.
struct LoadedObject {
  std::uint64_t low = 0;   // lowest PT_LOAD start, page-aligned down
  std::uint64_t high = 0;  // highest PT_LOAD end
  std::string path;        // as the loader names it; the executable's own path for the main program
};

std::optional<LoadedObject> loaded_object_at(std::uint64_t address) {
  struct Search {
    std::uint64_t address = 0;
    bool found = false;
    std::uint64_t low = 0;
    std::uint64_t high = 0;
    std::array<char, PATH_MAX> name{};  // no allocation while the loader's lock is held
  } search;
  search.address = address;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto* out = static_cast<Search*>(data);
        bool maps = false;
        std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
        std::uint64_t high = 0;
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& segment = info->dlpi_phdr[i];
          if (segment.p_type != PT_LOAD) continue;
          const std::uint64_t start = info->dlpi_addr + segment.p_vaddr;
          const std::uint64_t end = start + segment.p_memsz;
          low = std::min(low, start);
          high = std::max(high, end);
          if (out->address >= start && out->address < end) maps = true;
        }
        if (!maps) return 0;
        out->found = true;
        out->low = low & ~std::uint64_t{4095};
        out->high = high;
        if (info->dlpi_name != nullptr) std::snprintf(out->name.data(), out->name.size(), "%s", info->dlpi_name);
        return 1;
      },
      &search);
  if (!search.found) return std::nullopt;
  LoadedObject object{search.low, search.high, search.name.data()};
  if (object.path.empty()) {  // the main program
    std::array<char, PATH_MAX> exe{};
    const ssize_t length = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
    if (length > 0) object.path.assign(exe.data(), static_cast<std::size_t>(length));
  }
  return object;
}

// Whether a module of the Dwfl session is the loaded object (libdwfl attributes an address in the gap
// above a module, and anything above the highest one, to that module: checking its range is not enough).
bool is_same_object(Dwfl_Module* module, const LoadedObject& object) {
  Dwarf_Addr start = 0;
  Dwarf_Addr end = 0;
  dwfl_module_info(module, nullptr, &start, &end, nullptr, nullptr, nullptr, nullptr);
  return start >= object.low && start < object.high;
}

// A function's name from its DIE (an inlined instance or its out-of-line definition): the mangled linkage
// name of the DIE or of what it refers to (abstract origin, specification), demangled, else its plain name.
std::string die_function_name(Dwarf_Die* die) {
  Dwarf_Attribute attribute;
  for (const int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    if (dwarf_attr_integrate(die, name, &attribute) != nullptr) {
      if (const char* mangled = dwarf_formstring(&attribute)) return demangle(mangled);
    }
  }
  if (dwarf_attr_integrate(die, DW_AT_name, &attribute) != nullptr) {
    if (const char* plain = dwarf_formstring(&attribute)) return plain;
  }
  return {};
}

// Address -> FrameClass bits: a 4-way set-associative table (keys and classes in two arrays, 9 bytes a
// slot) that starts small, doubles while under its byte bound, and once at the bound replaces the least
// recently used entry of a full set. Slot 0 of a set is its most recently used.
class ClassTable {
 public:
  static constexpr std::size_t kWays = 4;
  static constexpr std::size_t kInitialSlots = 1024;
  static constexpr std::uint64_t kSlotBytes = sizeof(std::uint64_t) + sizeof(std::uint8_t);

  void set_max_bytes(std::uint64_t bytes) {
    std::size_t slots = kWays;
    while (slots * 2 * kSlotBytes <= bytes) slots *= 2;
    max_slots_ = slots;
    if (keys_.size() > max_slots_) {
      dropped_ += used_;
      keys_.clear();
      keys_.shrink_to_fit();
      classes_.clear();
      classes_.shrink_to_fit();
      used_ = 0;
    }
  }

  std::optional<std::uint8_t> find(std::uint64_t address) {
    if (keys_.empty() || address == 0) return std::nullopt;
    const std::size_t base = set_of(address, keys_.size());
    for (std::size_t way = 0; way < kWays; ++way) {
      if (keys_[base + way] == address) {
        const std::uint8_t cls = classes_[base + way];
        promote(base, way);
        return cls;
      }
    }
    return std::nullopt;
  }

  void insert(std::uint64_t address, std::uint8_t cls) {
    if (address == 0) return;  // 0 marks an empty slot
    if (keys_.empty()) grow(std::min(kInitialSlots, max_slots_));
    if ((used_ + 1) * 4 > keys_.size() * 3 && keys_.size() * 2 <= max_slots_) grow(keys_.size() * 2);
    std::size_t base = set_of(address, keys_.size());
    std::size_t way = free_way(base);
    if (way == kWays && keys_.size() * 2 <= max_slots_) {
      grow(keys_.size() * 2);  // below the bound a full set is a reason to grow, not to forget
      base = set_of(address, keys_.size());
      way = free_way(base);
    }
    if (way == kWays) {
      way = kWays - 1;
      ++dropped_;  // at the bound: the set's least recently used entry goes
    } else {
      ++used_;
    }
    keys_[base + way] = address;
    classes_[base + way] = cls;
    promote(base, way);
  }

  // Forgets the entries whose class has any of `bits`.
  void erase_with(std::uint8_t bits) {
    for (std::size_t base = 0; base < keys_.size(); base += kWays) {
      std::size_t kept = 0;  // compacts the set, keeping the order of use
      for (std::size_t w = 0; w < kWays; ++w) {
        if (keys_[base + w] == 0) continue;
        if ((classes_[base + w] & bits) != 0) {
          --used_;
          continue;
        }
        keys_[base + kept] = keys_[base + w];
        classes_[base + kept] = classes_[base + w];
        ++kept;
      }
      for (std::size_t w = kept; w < kWays; ++w) keys_[base + w] = 0;
    }
  }

  void clear() {
    keys_.clear();
    keys_.shrink_to_fit();
    classes_.clear();
    classes_.shrink_to_fit();
    used_ = 0;
  }

  [[nodiscard]] std::size_t size() const { return used_; }
  [[nodiscard]] std::uint64_t bytes() const {
    return keys_.empty() ? 0 : heap_block(keys_.size() * sizeof(std::uint64_t)) + heap_block(classes_.size());
  }
  [[nodiscard]] std::uint64_t dropped() const { return dropped_; }

 private:
  static std::size_t set_of(std::uint64_t address, std::size_t slots) {
    const std::size_t sets = slots / kWays;
    const auto bits = static_cast<unsigned>(std::countr_zero(sets));
    const std::uint64_t hash = address * 0x9E3779B97F4A7C15ULL;
    return bits == 0 ? 0 : static_cast<std::size_t>(hash >> (64 - bits)) * kWays;
  }

  [[nodiscard]] std::size_t free_way(std::size_t base) const {
    for (std::size_t w = 0; w < kWays; ++w) {
      if (keys_[base + w] == 0) return w;
    }
    return kWays;
  }

  void promote(std::size_t base, std::size_t way) {
    const std::uint64_t key = keys_[base + way];
    const std::uint8_t cls = classes_[base + way];
    for (std::size_t w = way; w > 0; --w) {
      keys_[base + w] = keys_[base + w - 1];
      classes_[base + w] = classes_[base + w - 1];
    }
    keys_[base] = key;
    classes_[base] = cls;
  }

  void grow(std::size_t slots) {
    std::vector<std::uint64_t> old_keys = std::move(keys_);
    std::vector<std::uint8_t> old_classes = std::move(classes_);
    keys_.assign(slots, 0);
    classes_.assign(slots, 0);
    used_ = 0;
    // Oldest first, so each set ends with its most recently used entries in front.
    for (std::size_t base = 0; base < old_keys.size(); base += kWays) {
      for (std::size_t w = kWays; w-- > 0;) {
        if (old_keys[base + w] != 0) insert(old_keys[base + w], old_classes[base + w]);
      }
    }
  }

  std::vector<std::uint64_t> keys_;
  std::vector<std::uint8_t> classes_;
  std::size_t used_ = 0;
  std::size_t max_slots_ = kInitialSlots;
  std::uint64_t dropped_ = 0;
};

}  // namespace

std::uint8_t classify_symbol(const char* mangled_name, const std::string& module_path) {
  std::uint8_t cls = kFrameOther;
  if (is_allocator_module(module_path)) cls |= kFrameAllocator;
  if (is_symbolizer_module(module_path)) cls |= kFrameLibrary | kFrameDwarfReader;
  if (mangled_name == nullptr) return cls;
  const std::string_view name = mangled_name;
  for (const auto exact : kAllocatorNames) {
    if (name == exact) return cls | kFrameAllocator;
  }
  if (name.starts_with("je_") || name.starts_with("__libc_") || name.starts_with("_Znw") || name.starts_with("_Zna")) {
    return cls | kFrameAllocator;
  }
  const std::size_t nested = nested_name_start(name);
  if (name.starts_with("_ZSt") || name.starts_with("_ZZSt")) return cls | kFrameAllocator;  // std::f
  if (nested == std::string_view::npos) return cls;
  const std::string_view scope = name.substr(nested);
  if (scope.starts_with("St") || scope.starts_with("9__gnu_cxx")) return cls | kFrameAllocator;
  constexpr std::string_view kNamespace = "7riptide11performance";
  if (!scope.starts_with(kNamespace)) return cls;
  std::string_view component = scope.substr(kNamespace.size());
  if (component.starts_with("L")) component.remove_prefix(1);  // internal linkage
  // cache_detail holds TinyLfuCache's components (shard, node table, sketch, grace periods): their frames are
  // the container's, like TinyLfuCache's own member functions.
  for (const std::string_view container : {"12TinyLfuCache", "12cache_detail", "11TieredCache", "10RedisCache"}) {
    if (component.starts_with(container)) return cls | kFrameAllocator | kFrameCacheContainer;
  }
  return cls | kFrameAllocator | kFrameLibrary;
}

SymbolizerLimits symbolizer_limits(const ProfilingConfig& config) noexcept {
  return SymbolizerLimits{config.symbolizer_cache_max_bytes, config.symbolizer_dwarf_max_bytes, config.debuginfod};
}

std::string SymbolizedFrame::location() const {
  if (!has_symbol) {
    if (module.empty()) return function.empty() ? function : function + " (in no loaded module)";
    return function + " (" + std::string(basename_of(module)) + ")";
  }
  if (!file.empty() && line > 0) {
    return function + " (" + file + ":" + std::to_string(line) + ")";
  }
  return module.empty() ? function : function + " (" + std::string(basename_of(module)) + ")";
}

struct Symbolizer::Impl {
  struct Entry {
    std::uint64_t address = 0;
    std::shared_ptr<const SymbolizedFrame> frame;
    std::uint64_t bytes = 0;
    std::uint8_t cls = 0;
  };
  using Lru = std::list<Entry>;  // most recently used first

  // A class-table bit of its own: the address was in no loaded object when it was classified, so a later
  // dlopen may give it one. Never returned by classify().
  static constexpr std::uint8_t kNoModule = 0x80;

  mutable std::mutex mutex;
  SymbolizerLimits limits;
  Dwfl* dwfl = nullptr;
  std::chrono::steady_clock::time_point last_report{};
  // The loader's counters when the caches were last checked, and when the Dwfl session read the modules.
  std::optional<ModuleSetGeneration> cache_generation;
  std::optional<ModuleSetGeneration> session_generation;
  Lru lru;
  std::unordered_map<std::uint64_t, Lru::iterator> index;
  std::uint64_t cache_bytes = 0;
  std::uint64_t evicted = 0;
  ClassTable classes;
  std::uint64_t lookups = 0;
  double lookup_cpu_seconds = 0;
  std::int64_t dwarf_bytes = 0;
  bool dwarf_measured = false;
  std::uint64_t sessions = 0;
  std::uint64_t rebuilds = 0;

  explicit Impl(SymbolizerLimits l) : limits(l) { classes.set_max_bytes(class_budget()); }
  ~Impl() { close(); }

  [[nodiscard]] std::uint64_t class_budget() const { return limits.max_cache_bytes / 4; }
  [[nodiscard]] std::uint64_t frame_budget() const { return limits.max_cache_bytes - class_budget(); }

  // Heap bytes libdw keeps from the calls inside `body`.
  template <typename Body>
  auto metered(Body&& body) {
    const auto before = thread_net_allocated();
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      note_dwarf(before);
    } else {
      auto result = body();
      note_dwarf(before);
      return result;
    }
  }

  void note_dwarf(const std::optional<std::int64_t>& before) {
    if (!before) return;
    if (const auto after = thread_net_allocated()) {
      dwarf_bytes += *after - *before;
      dwarf_measured = true;
    }
  }

  void close() {
    if (dwfl != nullptr) {
      dwfl_end(dwfl);
      dwfl = nullptr;
    }
    dwarf_bytes = 0;
    over_bound_since.reset();
  }

  // Called before every lookup, hit or miss: a dlopen or dlclose since the last call makes the session
  // stale (libdwfl would attribute a new module's addresses to the module below it, or to nothing) and some
  // cached answers wrong. After loads only, the answers for addresses that were in no object go; after an
  // unload, all of them (its addresses may now belong to another object).
  void sync_module_set() {
    const auto now = module_set_generation();
    if (!now || now == cache_generation) return;
    if (!cache_generation || now->subs != cache_generation->subs) {
      drop_frames([](const Entry&) { return true; });
      classes.clear();
    } else {
      drop_frames([](const Entry& entry) { return (entry.cls & kNoModule) != 0; });
      classes.erase_with(kNoModule);
    }
    cache_generation = now;
  }

  template <typename Predicate>
  void drop_frames(Predicate&& drop) {
    for (auto it = lru.begin(); it != lru.end();) {
      if (drop(*it)) {
        cache_bytes -= it->bytes;
        index.erase(it->address);
        it = lru.erase(it);
      } else {
        ++it;
      }
    }
  }

  // (Re)reads /proc/self/maps so modules loaded since (dlopen) are known.
  void report_modules() {
    close();
    last_report = std::chrono::steady_clock::now();
    // Read before the maps: a load in between makes the recorded generation old, so the next lookup
    // reports again rather than trusting a picture that may lack it.
    session_generation = module_set_generation();
    ++sessions;
    metered([&] {
      dwfl = dwfl_begin(limits.debuginfod ? &debuginfod_process_dwfl_callbacks() : &local_process_dwfl_callbacks());
      if (dwfl == nullptr) {
        return;
      }
      dwfl_report_begin(dwfl);
      const int failed = dwfl_linux_proc_report(dwfl, getpid());
      if (dwfl_report_end(dwfl, nullptr, nullptr) != 0 || failed != 0) {
        // Keep what was reported; lookups of unknown addresses fall back to the hex address.
      }
    });
  }

  // The session's module for an address that `object` maps, or null when the session has none that is
  // that object.
  Dwfl_Module* module_for(Dwarf_Addr address, const LoadedObject& object) {
    if (dwfl == nullptr || (session_generation && session_generation != cache_generation)) {
      report_modules();
    }
    Dwfl_Module* module = dwfl != nullptr ? metered([&] { return dwfl_addrmodule(dwfl, address); }) : nullptr;
    if (module != nullptr && is_same_object(module, object)) return module;
    if (!session_generation) {
      // No loader counters to tell whether the session is stale: read the maps again, at most once a second.
      constexpr auto kMinRefreshInterval = std::chrono::seconds(1);
      if (std::chrono::steady_clock::now() - last_report >= kMinRefreshInterval) {
        report_modules();
        module = dwfl != nullptr ? metered([&] { return dwfl_addrmodule(dwfl, address); }) : nullptr;
        if (module != nullptr && is_same_object(module, object)) return module;
      }
    }
    return nullptr;
  }

  // libdw's state over its bound ends the session (freeing it; the frame and class caches stay). Not at
  // once: a batch of lookups (a report, a pprof export) may need more than the bound for a moment (one
  // module's DWARF with compressed debug sections is decompressed whole), and ending the session in the
  // middle would decompress it again for the next address. So the session ends at trim() (the end of a
  // batch) or, for callers that never trim, at the first lookup 1 s after the bound was crossed.
  static constexpr auto kOverBoundGrace = std::chrono::seconds(1);
  std::optional<std::chrono::steady_clock::time_point> over_bound_since;

  [[nodiscard]] bool over_dwarf_bound() const {
    return dwfl != nullptr && dwarf_bytes > static_cast<std::int64_t>(limits.max_dwarf_bytes);
  }

  void end_session_over_bound() {
    if (over_dwarf_bound()) {
      close();
      ++rebuilds;
    }
    over_bound_since.reset();
  }

  void note_dwarf_bound() {
    if (!over_dwarf_bound()) {
      over_bound_since.reset();
    } else if (!over_bound_since) {
      over_bound_since = std::chrono::steady_clock::now();
    }
  }

  void before_lookup() {
    if (over_bound_since && std::chrono::steady_clock::now() - *over_bound_since >= kOverBoundGrace) {
      end_session_over_bound();
    }
  }

  struct Symbol {
    std::string module;
    const char* mangled = nullptr;  // owned by libdw's session
    bool in_object = true;          // false: no loaded object maps the address
  };

  // The module and symbol at pc. The module is the loaded object that maps pc (its path, even when the
  // session has no module for it), or empty with in_object false when none does.
  Symbol symbol_of(Dwarf_Addr pc, Dwfl_Module** module_out) {
    *module_out = nullptr;
    Symbol symbol;
    const auto object = loaded_object_at(pc);
    if (!object) {
      symbol.in_object = false;
      return symbol;
    }
    Dwfl_Module* module = module_for(pc, *object);
    *module_out = module;
    if (module == nullptr) {
      symbol.module = object->path;
      return symbol;
    }
    const char* main_file = nullptr;
    const char* module_name = metered(
        [&] { return dwfl_module_info(module, nullptr, nullptr, nullptr, nullptr, nullptr, &main_file, nullptr); });
    symbol.module = main_file != nullptr ? main_file : (module_name != nullptr ? module_name : "");
    symbol.mangled = metered([&] { return dwfl_module_addrname(module, pc); });
    return symbol;
  }

  std::uint8_t class_of(const SymbolizedFrame& frame, const char* mangled) const {
    std::uint8_t cls = classify_symbol(mangled, frame.module);
    if (is_allocator_frame(frame)) cls |= kFrameAllocator;
    return cls;
  }

  Entry lookup(std::uint64_t address) {
    before_lookup();
    ++lookups;
    auto frame = std::make_shared<SymbolizedFrame>();
    frame->address = address;
    frame->function = hex_address(address);
    Entry entry;
    entry.address = address;
    // A return address points after the call; the call instruction itself is one byte earlier at least.
    const Dwarf_Addr pc = address > 0 ? address - 1 : 0;
    Dwfl_Module* module = nullptr;
    const Symbol symbol = symbol_of(pc, &module);
    frame->module = symbol.module;
    if (module != nullptr) {
      if (symbol.mangled != nullptr) {
        frame->function = demangle(symbol.mangled);
        frame->has_symbol = true;
      }
      entry.cls = class_of(*frame, symbol.mangled);
      int line_number = 0;
      const char* file = metered([&]() -> const char* {
        Dwfl_Line* line = dwfl_module_getsrc(module, pc);
        return line != nullptr ? dwfl_lineinfo(line, nullptr, &line_number, nullptr, nullptr, nullptr) : nullptr;
      });
      if (file != nullptr) {
        frame->file = metered([&] {
          Dwarf_Addr bias = 0;
          return source_path(file, dwfl_module_addrdie(module, pc, &bias));
        });
        frame->line = line_number > 0 ? static_cast<std::uint32_t>(line_number) : 0;
      }
      if (frame->has_symbol) {
        metered([&] { fill_inline_chain(module, pc, *frame); });
      }
    } else {
      entry.cls = class_of(*frame, nullptr);
      if (!symbol.in_object) entry.cls |= kNoModule;
    }
    note_dwarf_bound();
    entry.bytes = entry_bytes(*frame);
    entry.frame = std::move(frame);
    return entry;
  }

  // A class without the line table or a demangled name kept: module and symbol-table lookup only.
  std::uint8_t classify_uncached(std::uint64_t address) {
    before_lookup();
    ++lookups;
    const Dwarf_Addr pc = address > 0 ? address - 1 : 0;
    Dwfl_Module* module = nullptr;
    const Symbol symbol = symbol_of(pc, &module);
    SymbolizedFrame frame;
    frame.module = symbol.module;
    if (symbol.mangled != nullptr) {
      frame.has_symbol = true;
      frame.function = symbol.mangled;  // C names and the module rules need no demangling
    }
    std::uint8_t cls = classify_symbol(symbol.mangled, frame.module);
    if (is_allocator_frame(frame)) cls |= kFrameAllocator;
    if (!symbol.in_object) cls |= kNoModule;
    note_dwarf_bound();
    return cls;
  }

  // A line table's file name as a path a reader can open: names relative to the compilation directory
  // (builds that compile with relative paths, e.g. under ccache's base_dir) are joined with the unit's
  // DW_AT_comp_dir.
  static std::string source_path(const char* file, Dwarf_Die* cu) {
    if (file == nullptr) return {};
    if (file[0] == '/' || cu == nullptr) return file;
    Dwarf_Attribute attribute;
    const char* directory = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attribute));
    if (directory == nullptr || directory[0] != '/') return file;
    return (std::filesystem::path(directory) / file).lexically_normal().string();
  }

  // The source-level frames at pc (SymbolizedFrame::inline_chain). dwarf_getscopes gives the innermost
  // concrete scope but continues with the abstract definition's scopes past an inlined instance, so the
  // concrete chain of instances up to the out-of-line function comes from dwarf_getscopes_die on that
  // innermost scope (as elfutils' addr2line -i does).
  static void fill_inline_chain(Dwfl_Module* module, Dwarf_Addr pc, SymbolizedFrame& frame) {
    frame.inline_chain.clear();
    Dwarf_Addr bias = 0;
    Dwarf_Die* cu = dwfl_module_addrdie(module, pc, &bias);
    std::vector<Dwarf_Die> functions;  // innermost first, up to the out-of-line function
    if (cu != nullptr) {
      Dwarf_Die* scopes = nullptr;
      const int count = dwarf_getscopes(cu, pc - bias, &scopes);
      Dwarf_Die innermost{};
      const bool found = count > 0;
      if (found) innermost = scopes[0];
      std::free(scopes);
      Dwarf_Die* path = nullptr;
      const int depth = found ? dwarf_getscopes_die(&innermost, &path) : 0;
      for (int i = 0; i < depth; ++i) {
        const int tag = dwarf_tag(&path[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram && tag != DW_TAG_entry_point) continue;
        functions.push_back(path[i]);
        if (tag != DW_TAG_inlined_subroutine) break;
      }
      std::free(path);
    }
    if (functions.empty()) {
      frame.inline_chain.push_back({frame.function, frame.file, frame.line});
      return;
    }
    Dwarf_Files* files = nullptr;
    std::size_t file_count = 0;
    if (dwarf_getsrcfiles(cu, &files, &file_count) != 0) files = nullptr;
    frame.inline_chain.reserve(functions.size());
    frame.inline_chain.push_back({die_function_name(&functions[0]), frame.file, frame.line});
    for (std::size_t i = 1; i < functions.size(); ++i) {
      // Where functions[i - 1] was inlined into functions[i].
      SourceFrame caller{die_function_name(&functions[i]), {}, 0};
      Dwarf_Attribute attribute;
      Dwarf_Word value = 0;
      if (files != nullptr &&
          dwarf_formudata(dwarf_attr(&functions[i - 1], DW_AT_call_file, &attribute), &value) == 0) {
        if (const char* file = dwarf_filesrc(files, value, nullptr, nullptr)) caller.file = source_path(file, cu);
      }
      if (dwarf_formudata(dwarf_attr(&functions[i - 1], DW_AT_call_line, &attribute), &value) == 0) {
        caller.line = static_cast<std::uint32_t>(value);
      }
      frame.inline_chain.push_back(std::move(caller));
    }
    for (auto& source : frame.inline_chain) {
      if (source.function.empty()) source.function = frame.function;
    }
    // The out-of-line function is named as the symbol table names it, like `function`.
    if (dwarf_tag(&functions.back()) != DW_TAG_inlined_subroutine) frame.inline_chain.back().function = frame.function;
  }

  static std::uint64_t entry_bytes(const SymbolizedFrame& frame) {
    // LRU list node, index node and bucket, the shared frame with its control block, and the strings.
    constexpr std::uint64_t kFixed = heap_block(2 * sizeof(void*) + sizeof(Entry)) +
                                     heap_block(sizeof(void*) + sizeof(std::uint64_t) + sizeof(Lru::iterator)) +
                                     sizeof(void*) + heap_block(sizeof(SymbolizedFrame) + 2 * sizeof(void*));
    std::uint64_t bytes = kFixed + string_heap(frame.function) + string_heap(frame.file) + string_heap(frame.module);
    if (frame.inline_chain.capacity() > 0) bytes += heap_block(frame.inline_chain.capacity() * sizeof(SourceFrame));
    for (const auto& source : frame.inline_chain) bytes += string_heap(source.function) + string_heap(source.file);
    return bytes;
  }

  std::shared_ptr<const SymbolizedFrame> insert(Entry entry) {
    auto frame = entry.frame;
    cache_bytes += entry.bytes;
    lru.push_front(std::move(entry));
    index.emplace(lru.front().address, lru.begin());
    evict_to(frame_budget());
    return frame;
  }

  void evict_to(std::uint64_t budget) {
    while (cache_bytes > budget && !lru.empty()) {
      const Entry& oldest = lru.back();
      cache_bytes -= oldest.bytes;
      index.erase(oldest.address);
      lru.pop_back();
      ++evicted;
    }
  }
};

Symbolizer::Symbolizer(SymbolizerLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
Symbolizer::~Symbolizer() = default;

std::shared_ptr<const SymbolizedFrame> Symbolizer::resolve(std::uint64_t address) {
  std::lock_guard lock(impl_->mutex);
  impl_->sync_module_set();
  if (const auto it = impl_->index.find(address); it != impl_->index.end()) {
    impl_->lru.splice(impl_->lru.begin(), impl_->lru, it->second);
    return it->second->frame;
  }
  const double started = thread_cpu_seconds();
  try {
    auto entry = impl_->lookup(address);
    impl_->lookup_cpu_seconds += thread_cpu_seconds() - started;
    return impl_->insert(std::move(entry));
  } catch (...) {  // std::bad_alloc from a string: fall back to the bare address, uncached
    auto frame = std::make_shared<SymbolizedFrame>();
    frame->address = address;
    return frame;
  }
}

std::uint8_t Symbolizer::classify(std::uint64_t address) {
  std::lock_guard lock(impl_->mutex);
  impl_->sync_module_set();
  if (const auto cls = impl_->classes.find(address)) {
    return static_cast<std::uint8_t>(*cls & ~Impl::kNoModule);
  }
  std::uint8_t cls = kFrameOther;
  if (const auto it = impl_->index.find(address); it != impl_->index.end()) {
    cls = it->second->cls;
  } else {
    try {
      const double started = thread_cpu_seconds();
      cls = impl_->classify_uncached(address);
      impl_->lookup_cpu_seconds += thread_cpu_seconds() - started;
    } catch (...) {  // std::bad_alloc: unknown this time, not cached
      return kFrameOther;
    }
  }
  try {
    impl_->classes.insert(address, cls);
  } catch (...) {  // the table could not grow: the answer stands, uncached
  }
  return static_cast<std::uint8_t>(cls & ~Impl::kNoModule);
}

std::size_t Symbolizer::cache_size() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->lru.size();
}

SymbolizerStats Symbolizer::stats() const {
  std::lock_guard lock(impl_->mutex);
  SymbolizerStats stats;
  stats.cached_frames = impl_->lru.size();
  stats.cache_bytes = impl_->cache_bytes;
  stats.evicted_frames = impl_->evicted;
  stats.classified_addresses = impl_->classes.size();
  stats.class_table_bytes = impl_->classes.bytes();
  stats.dropped_classes = impl_->classes.dropped();
  stats.lookups = impl_->lookups;
  stats.lookup_cpu_seconds = impl_->lookup_cpu_seconds;
  if (impl_->dwarf_measured)
    stats.dwarf_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(impl_->dwarf_bytes, 0));
  stats.dwfl_sessions = impl_->sessions;
  stats.dwarf_rebuilds = impl_->rebuilds;
  stats.limits = impl_->limits;
  return stats;
}

SymbolizerLimits Symbolizer::limits() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->limits;
}

void Symbolizer::set_limits(const SymbolizerLimits& limits) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->limits == limits) return;
  const bool lookup_changed = impl_->limits.debuginfod != limits.debuginfod;
  impl_->limits = limits;
  if (lookup_changed) impl_->close();  // the next lookup reopens the session with the other callbacks
  impl_->classes.set_max_bytes(impl_->class_budget());
  impl_->evict_to(impl_->frame_budget());
  impl_->end_session_over_bound();
}

void Symbolizer::trim() {
  std::lock_guard lock(impl_->mutex);
  impl_->end_session_over_bound();
}

void Symbolizer::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->lru.clear();
  impl_->index.clear();
  impl_->cache_bytes = 0;
  impl_->classes.clear();
  impl_->close();
}

Symbolizer& Symbolizer::shared() {
  // Never destroyed: background threads may symbolize during static destruction.
  static auto* instance = new Symbolizer();
  return *instance;
}

bool is_allocator_frame(const SymbolizedFrame& frame) {
  // jemalloc, and libdw/libelf, which allocate only inside this library's symbolizer.
  if (is_allocator_module(frame.module)) {
    return true;
  }
  if (!frame.has_symbol) {
    return false;
  }
  const std::string_view name = frame.function;
  for (const auto exact : kAllocatorNames) {
    if (name == exact) {
      return true;
    }
  }
  // operator new/new[] (all overloads), libstdc++ container and string internals that allocate on behalf of
  // their caller, jemalloc's own prefixed entry points, and this library's wrappers.
  static constexpr std::array<std::string_view, 6> kPrefixes = {
      "operator new", "std::", "__gnu_cxx::", "je_", "riptide::performance::", "__libc_"};
  for (const auto prefix : kPrefixes) {
    if (name.starts_with(prefix)) {
      return true;
    }
  }
  return false;
}

}  // namespace riptide::performance
