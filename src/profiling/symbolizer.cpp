#include "riptide/performance/profiling/symbolizer.hpp"

#include "dwfl_callbacks.hpp"

#include <cxxabi.h>
#include <elfutils/libdwfl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  return SymbolizerLimits{config.symbolizer_cache_max_bytes, config.symbolizer_dwarf_max_bytes};
}

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
  struct Entry {
    std::uint64_t address = 0;
    std::shared_ptr<const SymbolizedFrame> frame;
    std::uint64_t bytes = 0;
    std::uint8_t cls = 0;
  };
  using Lru = std::list<Entry>;  // most recently used first

  mutable std::mutex mutex;
  SymbolizerLimits limits;
  Dwfl* dwfl = nullptr;
  std::chrono::steady_clock::time_point last_report{};
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

  // (Re)reads /proc/self/maps so modules loaded since (dlopen) are known.
  void report_modules() {
    close();
    last_report = std::chrono::steady_clock::now();
    ++sessions;
    metered([&] {
      dwfl = dwfl_begin(&local_process_dwfl_callbacks());
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

  Dwfl_Module* module_for(Dwarf_Addr address) {
    if (dwfl == nullptr) {
      report_modules();
    }
    Dwfl_Module* module = dwfl != nullptr ? metered([&] { return dwfl_addrmodule(dwfl, address); }) : nullptr;
    constexpr auto kMinRefreshInterval = std::chrono::seconds(1);
    if (module == nullptr && std::chrono::steady_clock::now() - last_report >= kMinRefreshInterval) {
      report_modules();
      module = dwfl != nullptr ? metered([&] { return dwfl_addrmodule(dwfl, address); }) : nullptr;
    }
    return module;
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
  };

  std::optional<Symbol> symbol_of(Dwarf_Addr pc, Dwfl_Module** module_out) {
    Dwfl_Module* module = module_for(pc);
    *module_out = module;
    if (module == nullptr) {
      return std::nullopt;
    }
    Symbol symbol;
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
    if (const auto symbol = symbol_of(pc, &module)) {
      frame->module = symbol->module;
      if (symbol->mangled != nullptr) {
        frame->function = demangle(symbol->mangled);
        frame->has_symbol = true;
      }
      entry.cls = class_of(*frame, symbol->mangled);
      int line_number = 0;
      const char* file = metered([&]() -> const char* {
        Dwfl_Line* line = dwfl_module_getsrc(module, pc);
        return line != nullptr ? dwfl_lineinfo(line, nullptr, &line_number, nullptr, nullptr, nullptr) : nullptr;
      });
      if (file != nullptr) {
        frame->file = file;
        frame->line = line_number > 0 ? static_cast<std::uint32_t>(line_number) : 0;
      }
    } else {
      entry.cls = class_of(*frame, nullptr);
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
    std::uint8_t cls = kFrameOther;
    if (const auto symbol = symbol_of(pc, &module)) {
      SymbolizedFrame frame;
      frame.module = symbol->module;
      if (symbol->mangled != nullptr) {
        frame.has_symbol = true;
        frame.function = symbol->mangled;  // C names and the module rules need no demangling
      }
      cls = classify_symbol(symbol->mangled, frame.module);
      if (is_allocator_frame(frame)) cls |= kFrameAllocator;
    }
    note_dwarf_bound();
    return cls;
  }

  static std::uint64_t entry_bytes(const SymbolizedFrame& frame) {
    // LRU list node, index node and bucket, the shared frame with its control block, and the strings.
    constexpr std::uint64_t kFixed = heap_block(2 * sizeof(void*) + sizeof(Entry)) +
                                     heap_block(sizeof(void*) + sizeof(std::uint64_t) + sizeof(Lru::iterator)) +
                                     sizeof(void*) + heap_block(sizeof(SymbolizedFrame) + 2 * sizeof(void*));
    return kFixed + string_heap(frame.function) + string_heap(frame.file) + string_heap(frame.module);
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
  if (const auto cls = impl_->classes.find(address)) {
    return *cls;
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
  return cls;
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
  impl_->limits = limits;
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
