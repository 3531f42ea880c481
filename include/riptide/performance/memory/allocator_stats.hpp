#pragma once
// Which allocator serves malloc in this process, and the heap figures of the fallbacks used when it is
// not jemalloc: glibc's mallinfo2(), or the sanitizer allocator's own counters in ASan/TSan builds
// (those replace malloc, and glibc's mallinfo2 then reports an untouched arena of zeros).

#include <cstdint>
#include <optional>
#include <string_view>

namespace riptide::performance {

enum class AllocatorKind {
  jemalloc,  ///< jemalloc serves malloc (JemallocCtl::usable())
  glibc,     ///< glibc's ptmalloc serves malloc (mallinfo2 moves with a malloc)
  asan,      ///< AddressSanitizer's allocator (sanitizer build)
  tsan,      ///< ThreadSanitizer's allocator (sanitizer build)
  unknown,   ///< none of the above could be confirmed: no heap figures are reported
};

/// "jemalloc", "glibc", "asan", "tsan" or "unknown": the `allocator` field of every result.
[[nodiscard]] std::string_view allocator_name(AllocatorKind kind) noexcept;

/// Probes once (a malloc must move the allocator's own counter) and caches the answer.
[[nodiscard]] AllocatorKind detect_allocator();

/// Heap figures of a fallback allocator (glibc or a sanitizer); fields it cannot tell stay empty.
struct FallbackHeapStats {
  AllocatorKind allocator = AllocatorKind::unknown;  ///< where the figures come from
  std::optional<std::uint64_t> heap_bytes;           ///< bytes in use by the application (glibc: uordblks + hblkhd)
  std::optional<std::uint64_t> mapped_bytes;         ///< bytes obtained from the OS (glibc: arena + hblkhd)
  std::optional<std::uint64_t> free_bytes;           ///< bytes free inside the allocator (glibc: fordblks)
  std::optional<std::uint64_t> mmapped_bytes;        ///< glibc: bytes in chunks mmapped one by one (hblkhd)
  std::optional<std::uint64_t> releasable_bytes;     ///< glibc: top-most free bytes malloc_trim could return
};

/// The figures of `detect_allocator()` when it is glibc or a sanitizer; empty for jemalloc or unknown.
[[nodiscard]] std::optional<FallbackHeapStats> read_fallback_heap_stats() noexcept;

}  // namespace riptide::performance
