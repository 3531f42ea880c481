#include "riptide/performance/profiling/site_attribution.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {
namespace {

std::string_view basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string hex(std::uint64_t address) {
  std::array<char, 2 + 16 + 1> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "0x%llx", static_cast<unsigned long long>(address));
  return buffer.data();
}

bool starts_with_any(std::string_view text, const std::vector<std::string>& prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return text.starts_with(p); });
}

SiteLocation site_of(const SymbolizedFrame& frame, const std::string& function, const std::string& file,
                     std::uint32_t line) {
  SiteLocation site;
  site.function = function;
  site.display_name = frame.has_symbol ? readable_function_name(function) : function;
  site.file = file;
  site.line = line;
  site.module = frame.module;
  site.address = frame.address;
  site.has_symbol = frame.has_symbol;
  return site;
}

}  // namespace

const AttributionRules& AttributionRules::defaults() {
  // Never destroyed: the library's threads may attribute a stack while the process exits (a host or the
  // agent stopping monitoring from an atexit handler), after function-local statics were destroyed.
  static const auto* rules = new AttributionRules{
      .function_prefixes = {"std::", "__gnu_cxx::", "__cxxabiv1::", "__cxa_", "operator new", "operator delete", "je_",
                            "__libc_", "riptide::performance::"},
      .function_names = {"malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign", "valloc",
                         "pvalloc", "strdup", "strndup", "reallocarray", "mallocx", "rallocx", "xallocx", "sdallocx",
                         "dallocx"},
      .path_parts = {"/include/c++/", "/libstdc++-v3/", "/jemalloc/"},
      .module_prefixes = {"libstdc++", "libc.so", "libc-", "libjemalloc", "libgcc_s", "ld-linux", "libdw", "libelf"},
  };
  return *rules;
}

bool AttributionRules::is_runtime_function(std::string_view readable_name) const {
  return starts_with_any(readable_name, function_prefixes) ||
         std::find(function_names.begin(), function_names.end(), readable_name) != function_names.end();
}

bool AttributionRules::is_runtime_path(std::string_view file) const {
  return std::any_of(path_parts.begin(), path_parts.end(),
                     [&](const std::string& part) { return file.find(part) != std::string_view::npos; });
}

bool AttributionRules::is_runtime_module(std::string_view module_path) const {
  return starts_with_any(basename_of(module_path), module_prefixes);
}

std::string SiteLocation::location() const {
  if (has_symbol && !file.empty() && line > 0) {
    return display_name + " (" + file + ":" + std::to_string(line) + ")";
  }
  if (!module.empty()) return display_name + " (" + std::string(basename_of(module)) + ")";
  return display_name;
}

std::string SiteLocation::key() const {
  if (!has_symbol) return module + '\n' + hex(address);
  return function + '\n' + file + '\n' + std::to_string(line);
}

SiteAttributor::SiteAttributor(Symbolizer& symbolizer, const AttributionRules& rules)
    : symbolizer_(symbolizer), rules_(rules) {}

const SiteAttributor::Verdict& SiteAttributor::verdict_of(std::uint64_t address) {
  if (const auto found = verdicts_.find(address); found != verdicts_.end()) return found->second;
  Verdict verdict;
  const auto frame = symbolizer_.resolve(address);
  if (!frame->module.empty() && rules_.is_runtime_module(frame->module)) {
    // runtime
  } else if (!frame->has_symbol) {
    verdict = {false, site_of(*frame, frame->function, frame->file, frame->line)};
  } else if (frame->inline_chain.empty()) {
    if (!rules_.is_runtime_function(readable_function_name(frame->function)) && !rules_.is_runtime_path(frame->file)) {
      verdict = {false, site_of(*frame, frame->function, frame->file, frame->line)};
    }
  } else {
    // Innermost source frame first; each outer one carries the line of its call to the inner. A user
    // function's line inside a runtime header is not the user's line: keep looking outwards.
    for (const auto& source : frame->inline_chain) {
      if (rules_.is_runtime_function(readable_function_name(source.function)) || rules_.is_runtime_path(source.file)) {
        continue;
      }
      verdict = {false, site_of(*frame, source.function, source.file, source.line)};
      break;
    }
  }
  return verdicts_.emplace(address, std::move(verdict)).first->second;
}

SiteLocation SiteAttributor::operator()(std::span<const std::uint64_t> frames) {
  for (const std::uint64_t address : frames) {
    const Verdict& verdict = verdict_of(address);
    if (!verdict.runtime) return verdict.site;
  }
  if (frames.empty()) return {};
  // Nothing but runtime code: charge the outermost frame so nothing is lost, named after its out-of-line
  // function and the line in it (not the runtime header inlined there).
  const auto outermost = symbolizer_.resolve(frames.back());
  if (outermost->inline_chain.empty()) {
    return site_of(*outermost, outermost->function, outermost->file, outermost->line);
  }
  const SourceFrame& own = outermost->inline_chain.back();
  const bool runtime_line = rules_.is_runtime_path(own.file);
  return site_of(*outermost, outermost->function, runtime_line ? std::string{} : own.file, runtime_line ? 0 : own.line);
}

std::vector<std::string> describe_stack(std::span<const std::uint64_t> frames, Symbolizer& symbolizer,
                                        std::size_t max_lines, const AttributionRules& rules) {
  std::vector<std::string> lines;
  bool leading_runtime = true;  // the first frame's inlined runtime entries, until its own code
  for (const std::uint64_t address : frames) {
    const auto frame = symbolizer.resolve(address);
    if (!frame->has_symbol || frame->inline_chain.empty()) {
      if (lines.size() >= max_lines) break;
      lines.push_back(frame->location());
      continue;
    }
    const bool first_frame = lines.empty() && leading_runtime;
    const auto own_code =
        std::find_if(frame->inline_chain.begin(), frame->inline_chain.end(), [&](const SourceFrame& s) {
          return !rules.is_runtime_function(readable_function_name(s.function)) && !rules.is_runtime_path(s.file);
        });
    const auto from = first_frame && own_code != frame->inline_chain.end() ? own_code : frame->inline_chain.begin();
    leading_runtime = false;
    for (auto source_it = from; source_it != frame->inline_chain.end(); ++source_it) {
      const SourceFrame& source = *source_it;
      if (lines.size() >= max_lines) return lines;
      std::string line = readable_function_name(source.function);
      if (!source.file.empty() && source.line > 0) {
        line += " (" + source.file + ":" + std::to_string(source.line) + ")";
      } else if (!frame->module.empty()) {
        line += " (" + std::string(basename_of(frame->module)) + ")";
      }
      lines.push_back(std::move(line));
    }
  }
  return lines;
}

SiteLocation attribute_stack(std::span<const std::uint64_t> frames, Symbolizer& symbolizer,
                             const AttributionRules& rules) {
  SiteAttributor attributor(symbolizer, rules);
  return attributor(frames);
}

}  // namespace riptide::performance
