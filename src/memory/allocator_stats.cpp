#include "riptide/performance/memory/allocator_stats.hpp"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include "riptide/performance/memory/jemalloc_ctl.hpp"

// The sanitizer runtimes export these; GCC ships no header for them. Weak, so that a build without a
// sanitizer links and sees null pointers.
extern "C" {
__attribute__((weak)) std::size_t __sanitizer_get_current_allocated_bytes();
__attribute__((weak)) std::size_t __sanitizer_get_heap_size();
__attribute__((weak)) std::size_t __sanitizer_get_free_bytes();
}

namespace riptide::performance {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr AllocatorKind kSanitizerKind = AllocatorKind::asan;
#elif defined(__SANITIZE_THREAD__)
constexpr AllocatorKind kSanitizerKind = AllocatorKind::tsan;
#else
constexpr AllocatorKind kSanitizerKind = AllocatorKind::unknown;
#endif

bool sanitizer_allocator_present() noexcept {
  return kSanitizerKind != AllocatorKind::unknown && __sanitizer_get_current_allocated_bytes != nullptr &&
         __sanitizer_get_heap_size != nullptr;
}

std::uint64_t glibc_in_use(const struct mallinfo2& info) noexcept {
  return info.uordblks + info.hblkhd;
}

AllocatorKind probe() {
  if (JemallocCtl::usable()) {
    return AllocatorKind::jemalloc;
  }
  if (sanitizer_allocator_present()) {
    return kSanitizerKind;
  }
  // glibc serves malloc when its own in-use counter moves by at least the probe's size.
  constexpr std::size_t kProbeBytes = 4096;
  const auto before = glibc_in_use(::mallinfo2());
  void* volatile block = std::malloc(kProbeBytes);
  if (block == nullptr) {
    return AllocatorKind::unknown;
  }
  std::memset(block, 1, kProbeBytes);
  const auto after = glibc_in_use(::mallinfo2());
  std::free(block);
  return after >= before + kProbeBytes ? AllocatorKind::glibc : AllocatorKind::unknown;
}

}  // namespace

std::string_view allocator_name(AllocatorKind kind) noexcept {
  switch (kind) {
    case AllocatorKind::jemalloc:
      return "jemalloc";
    case AllocatorKind::glibc:
      return "glibc";
    case AllocatorKind::asan:
      return "asan";
    case AllocatorKind::tsan:
      return "tsan";
    case AllocatorKind::unknown:
      break;
  }
  return "unknown";
}

AllocatorKind detect_allocator() {
  static const AllocatorKind cached = probe();
  return cached;
}

std::optional<FallbackHeapStats> read_fallback_heap_stats() noexcept {
  FallbackHeapStats stats;
  stats.allocator = detect_allocator();
  switch (stats.allocator) {
    case AllocatorKind::glibc: {
      // mallinfo2 walks every arena under its lock: fine at sampling rate, not per request.
      const struct mallinfo2 info = ::mallinfo2();
      stats.heap_bytes = glibc_in_use(info);
      stats.mapped_bytes = info.arena + info.hblkhd;
      stats.free_bytes = info.fordblks;
      stats.mmapped_bytes = info.hblkhd;
      stats.releasable_bytes = info.keepcost;
      return stats;
    }
    case AllocatorKind::asan:
    case AllocatorKind::tsan:
      if (!sanitizer_allocator_present()) {
        return std::nullopt;
      }
      stats.heap_bytes = __sanitizer_get_current_allocated_bytes();
      stats.mapped_bytes = __sanitizer_get_heap_size();
      if (__sanitizer_get_free_bytes != nullptr) {
        stats.free_bytes = __sanitizer_get_free_bytes();
      }
      return stats;
    case AllocatorKind::jemalloc:
    case AllocatorKind::unknown:
      break;
  }
  return std::nullopt;
}

}  // namespace riptide::performance
