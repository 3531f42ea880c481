#include "riptide/performance/profiling/symbolizer.hpp"

#include "dwfl_callbacks.hpp"

#include <cxxabi.h>
#include <elfutils/libdwfl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <unordered_map>

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

}  // namespace

std::string SymbolizedFrame::location() const {
  if (!has_symbol) {
    return module.empty() ? function : function + " (" + std::string(basename_of(module)) + ")";
  }
  if (!file.empty() && line > 0) {
    return function + " (" + file + ":" + std::to_string(line) + ")";
  }
  return module.empty() ? function : function + " (" + std::string(basename_of(module)) + ")";
}

struct Symbolizer::Impl {
  std::mutex mutex;
  Dwfl* dwfl = nullptr;
  std::chrono::steady_clock::time_point last_report{};
  std::unordered_map<std::uint64_t, SymbolizedFrame> cache;

  ~Impl() { close(); }

  void close() {
    if (dwfl != nullptr) {
      dwfl_end(dwfl);
      dwfl = nullptr;
    }
  }

  // (Re)reads /proc/self/maps so modules loaded since (dlopen) are known.
  void report_modules() {
    close();
    last_report = std::chrono::steady_clock::now();
    dwfl = dwfl_begin(&local_process_dwfl_callbacks());
    if (dwfl == nullptr) {
      return;
    }
    dwfl_report_begin(dwfl);
    const int failed = dwfl_linux_proc_report(dwfl, getpid());
    if (dwfl_report_end(dwfl, nullptr, nullptr) != 0 || failed != 0) {
      // Keep what was reported; lookups of unknown addresses fall back to the hex address.
    }
  }

  Dwfl_Module* module_for(Dwarf_Addr address) {
    if (dwfl == nullptr) {
      report_modules();
    }
    Dwfl_Module* module = dwfl != nullptr ? dwfl_addrmodule(dwfl, address) : nullptr;
    constexpr auto kMinRefreshInterval = std::chrono::seconds(1);
    if (module == nullptr && std::chrono::steady_clock::now() - last_report >= kMinRefreshInterval) {
      report_modules();
      module = dwfl != nullptr ? dwfl_addrmodule(dwfl, address) : nullptr;
    }
    return module;
  }

  SymbolizedFrame lookup(std::uint64_t address) {
    SymbolizedFrame frame;
    frame.address = address;
    frame.function = hex_address(address);
    // A return address points after the call; the call instruction itself is one byte earlier at least.
    const Dwarf_Addr pc = address > 0 ? address - 1 : 0;
    Dwfl_Module* module = module_for(pc);
    if (module == nullptr) {
      return frame;
    }
    const char* main_file = nullptr;
    const char* module_name =
        dwfl_module_info(module, nullptr, nullptr, nullptr, nullptr, nullptr, &main_file, nullptr);
    frame.module = main_file != nullptr ? main_file : (module_name != nullptr ? module_name : "");
    if (const char* name = dwfl_module_addrname(module, pc); name != nullptr) {
      frame.function = demangle(name);
      frame.has_symbol = true;
    }
    if (Dwfl_Line* line = dwfl_module_getsrc(module, pc); line != nullptr) {
      int line_number = 0;
      if (const char* file = dwfl_lineinfo(line, nullptr, &line_number, nullptr, nullptr, nullptr); file != nullptr) {
        frame.file = file;
        frame.line = line_number > 0 ? static_cast<std::uint32_t>(line_number) : 0;
      }
    }
    return frame;
  }
};

Symbolizer::Symbolizer() : impl_(std::make_unique<Impl>()) {}
Symbolizer::~Symbolizer() = default;

const SymbolizedFrame& Symbolizer::resolve(std::uint64_t address) {
  std::lock_guard lock(impl_->mutex);
  if (const auto it = impl_->cache.find(address); it != impl_->cache.end()) {
    return it->second;
  }
  SymbolizedFrame frame;
  try {
    frame = impl_->lookup(address);
  } catch (...) {  // std::bad_alloc from a string: fall back to the bare address
    frame = SymbolizedFrame{};
    frame.address = address;
  }
  return impl_->cache.emplace(address, std::move(frame)).first->second;
}

std::size_t Symbolizer::cache_size() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->cache.size();
}

void Symbolizer::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->cache.clear();
  impl_->close();
}

Symbolizer& Symbolizer::shared() {
  // Never destroyed: background threads may symbolize during static destruction.
  static auto* instance = new Symbolizer();
  return *instance;
}

bool is_allocator_frame(const SymbolizedFrame& frame) {
  // jemalloc, and libdw/libelf, which allocate only inside this library's symbolizer.
  const auto module = basename_of(frame.module);
  if (module.starts_with("libjemalloc") || module.starts_with("libdw") || module.starts_with("libelf")) {
    return true;
  }
  if (!frame.has_symbol) {
    return false;
  }
  const std::string_view name = frame.function;
  static constexpr std::array<std::string_view, 16> kExact = {
      "malloc",  "calloc",  "realloc", "free",    "posix_memalign", "aligned_alloc", "memalign", "valloc",
      "pvalloc", "mallocx", "rallocx", "xallocx", "__libc_malloc",  "strdup",        "strndup",  "reallocarray"};
  for (const auto exact : kExact) {
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
