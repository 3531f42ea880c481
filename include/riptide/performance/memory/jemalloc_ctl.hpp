#pragma once
// A thin, typed wrapper over jemalloc's mallctl interface, shared by the memory tracker and the heap
// profiler. In a build without jemalloc every call reports "not available" instead of failing to link.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riptide::performance {

/// Whether jemalloc is usable in this process, and why not when it is not.
struct JemallocAvailability {
  bool compiled_in = false;    ///< the library was built with RIPTIDE_PERF_JEMALLOC
  bool serves_malloc = false;  ///< malloc() in this process really goes to jemalloc
  std::string reason;          ///< empty when usable; otherwise what is missing and how to fix it
};

class JemallocCtl {
 public:
  /// A mallctl name translated once to its numeric path; reading through it costs ~10 ns instead of
  /// 25-300 ns by name. `index_position`/`with_index` fill in "<i>" components (bins.<j>, arenas.<i>).
  class Mib {
   public:
    Mib() = default;
    [[nodiscard]] bool valid() const noexcept { return length_ > 0; }
    [[nodiscard]] Mib with_index(std::size_t position, std::size_t value) const noexcept;

   private:
    friend class JemallocCtl;
    static constexpr std::size_t kMaxDepth = 8;
    std::size_t components_[kMaxDepth] = {};
    std::size_t length_ = 0;
  };

  /// Probes once (thread.allocated must move across a malloc) and caches the answer.
  [[nodiscard]] static const JemallocAvailability& availability();
  [[nodiscard]] static bool usable() { return availability().serves_malloc; }

  /// Translates `name`; an invalid Mib when jemalloc is not usable or the name does not exist.
  [[nodiscard]] static Mib mib(const char* name) noexcept;

  [[nodiscard]] static std::optional<std::uint64_t> read_u64(const Mib& mib) noexcept;
  [[nodiscard]] static std::optional<std::uint64_t> read_u64(const char* name) noexcept;
  [[nodiscard]] static std::optional<std::uint32_t> read_u32(const Mib& mib) noexcept;
  [[nodiscard]] static std::optional<std::uint32_t> read_u32(const char* name) noexcept;
  [[nodiscard]] static std::optional<std::size_t> read_size(const Mib& mib) noexcept;
  [[nodiscard]] static std::optional<std::size_t> read_size(const char* name) noexcept;
  [[nodiscard]] static std::optional<bool> read_bool(const char* name) noexcept;
  [[nodiscard]] static std::optional<std::string> read_string(const char* name) noexcept;

  /// Writes return 0 on success or the errno-style code mallctl gave (ENOENT when unavailable).
  [[nodiscard]] static int write_bool(const char* name, bool value) noexcept;
  [[nodiscard]] static int write_size(const char* name, std::size_t value) noexcept;
  [[nodiscard]] static int write_string(const char* name, const char* value) noexcept;
  [[nodiscard]] static int write_pointer(const char* name, void* value) noexcept;
  /// Runs a void control such as "thread.tcache.flush" or "arena.4096.purge".
  [[nodiscard]] static int run(const char* name) noexcept;

  /// Advances `epoch` so stats.* reflect now. Locks all of jemalloc: call from background threads only.
  static bool refresh_epoch() noexcept;
};

}  // namespace riptide::performance
