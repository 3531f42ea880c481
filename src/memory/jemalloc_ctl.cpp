#include "riptide/performance/memory/jemalloc_ctl.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "riptide/performance/core/features.hpp"

#if RIPTIDE_PERF_HAS_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace riptide::performance {
namespace {

#if RIPTIDE_PERF_HAS_JEMALLOC
template <typename T>
std::optional<T> read_by_name(const char* name) noexcept {
  T value{};
  std::size_t size = sizeof(value);
  if (mallctl(name, &value, &size, nullptr, 0) != 0 || size != sizeof(value)) {
    return std::nullopt;
  }
  return value;
}

// Through a translated name (invalid when length is 0: jemalloc unusable or the name unknown).
template <typename T>
std::optional<T> read_by_mib(const std::size_t* components, std::size_t length) noexcept {
  if (length == 0) return std::nullopt;
  T value{};
  std::size_t size = sizeof(value);
  if (mallctlbymib(components, length, &value, &size, nullptr, 0) != 0 || size != sizeof(value)) {
    return std::nullopt;
  }
  return value;
}

template <typename T>
int write_by_name(const char* name, T value) noexcept {
  return mallctl(name, nullptr, nullptr, &value, sizeof(value));
}

JemallocAvailability probe() {
  JemallocAvailability result;
  result.compiled_in = true;
  const auto before = read_by_name<std::uint64_t>("thread.allocated");
  if (!before) {
    result.reason =
        "jemalloc is linked into the library but mallctl(\"thread.allocated\") failed; link jemalloc into the "
        "executable (target_link_libraries(<exe> riptide::performance)) so it replaces malloc";
    return result;
  }
  // If malloc went to another allocator, jemalloc's per-thread counter would not move.
  constexpr std::size_t kProbeBytes = 4096;
  void* volatile block = std::malloc(kProbeBytes);
  std::memset(block, 1, kProbeBytes);
  const auto after = read_by_name<std::uint64_t>("thread.allocated");
  std::free(block);
  if (after && *after >= *before + kProbeBytes) {
    result.serves_malloc = true;
  } else {
    result.reason =
        "jemalloc is present but malloc() in this process is served by another allocator; link the executable "
        "against riptide::performance (or -ljemalloc) and do not LD_PRELOAD another allocator";
  }
  return result;
}
#else
JemallocAvailability probe() {
  JemallocAvailability result;
  result.reason =
      "built without jemalloc (RIPTIDE_PERF_JEMALLOC=OFF, e.g. a sanitizer preset); figures come from glibc "
      "malloc; rebuild with -DRIPTIDE_PERF_JEMALLOC=ON for jemalloc statistics";
  return result;
}
#endif

}  // namespace

JemallocCtl::Mib JemallocCtl::Mib::with_index(std::size_t position, std::size_t value) const noexcept {
  Mib copy = *this;
  if (position < copy.length_) {
    copy.components_[position] = value;
  }
  return copy;
}

const JemallocAvailability& JemallocCtl::availability() {
  // Never destroyed: read by the library's threads, which may still run while the process exits.
  static const auto* cached = new JemallocAvailability(probe());
  return *cached;
}

#if RIPTIDE_PERF_HAS_JEMALLOC

JemallocCtl::Mib JemallocCtl::mib(const char* name) noexcept {
  Mib result;
  if (!usable()) {
    return result;
  }
  std::size_t length = Mib::kMaxDepth;
  if (mallctlnametomib(name, result.components_, &length) == 0) {
    result.length_ = length;
  }
  return result;
}

std::optional<std::uint64_t> JemallocCtl::read_u64(const Mib& mib) noexcept {
  return read_by_mib<std::uint64_t>(mib.components_, mib.length_);
}
std::optional<std::uint32_t> JemallocCtl::read_u32(const Mib& mib) noexcept {
  return read_by_mib<std::uint32_t>(mib.components_, mib.length_);
}
std::optional<std::size_t> JemallocCtl::read_size(const Mib& mib) noexcept {
  return read_by_mib<std::size_t>(mib.components_, mib.length_);
}

std::optional<std::uint64_t> JemallocCtl::read_u64(const char* name) noexcept {
  return usable() ? read_by_name<std::uint64_t>(name) : std::nullopt;
}
std::optional<std::uint32_t> JemallocCtl::read_u32(const char* name) noexcept {
  return usable() ? read_by_name<std::uint32_t>(name) : std::nullopt;
}
std::optional<std::size_t> JemallocCtl::read_size(const char* name) noexcept {
  return usable() ? read_by_name<std::size_t>(name) : std::nullopt;
}
std::optional<bool> JemallocCtl::read_bool(const char* name) noexcept {
  return usable() ? read_by_name<bool>(name) : std::nullopt;
}
std::optional<std::string> JemallocCtl::read_string(const char* name) noexcept {
  if (!usable()) {
    return std::nullopt;
  }
  const auto text = read_by_name<const char*>(name);
  if (!text || *text == nullptr) {
    return std::nullopt;
  }
  return std::string(*text);
}

int JemallocCtl::write_bool(const char* name, bool value) noexcept {
  return usable() ? write_by_name(name, value) : ENOENT;
}
int JemallocCtl::write_size(const char* name, std::size_t value) noexcept {
  return usable() ? write_by_name(name, value) : ENOENT;
}
int JemallocCtl::write_string(const char* name, const char* value) noexcept {
  return usable() ? write_by_name(name, value) : ENOENT;
}
int JemallocCtl::write_pointer(const char* name, void* value) noexcept {
  return usable() ? write_by_name(name, value) : ENOENT;
}
int JemallocCtl::run(const char* name) noexcept {
  return usable() ? mallctl(name, nullptr, nullptr, nullptr, 0) : ENOENT;
}

bool JemallocCtl::refresh_epoch() noexcept {
  if (!usable()) {
    return false;
  }
  std::uint64_t epoch = 1;
  std::size_t size = sizeof(epoch);
  return mallctl("epoch", &epoch, &size, &epoch, size) == 0;
}

#else  // without jemalloc: every query says "not available"

JemallocCtl::Mib JemallocCtl::mib(const char*) noexcept {
  return {};
}
std::optional<std::uint64_t> JemallocCtl::read_u64(const Mib&) noexcept {
  return std::nullopt;
}
std::optional<std::uint32_t> JemallocCtl::read_u32(const Mib&) noexcept {
  return std::nullopt;
}
std::optional<std::size_t> JemallocCtl::read_size(const Mib&) noexcept {
  return std::nullopt;
}
std::optional<std::uint64_t> JemallocCtl::read_u64(const char*) noexcept {
  return std::nullopt;
}
std::optional<std::uint32_t> JemallocCtl::read_u32(const char*) noexcept {
  return std::nullopt;
}
std::optional<std::size_t> JemallocCtl::read_size(const char*) noexcept {
  return std::nullopt;
}
std::optional<bool> JemallocCtl::read_bool(const char*) noexcept {
  return std::nullopt;
}
std::optional<std::string> JemallocCtl::read_string(const char*) noexcept {
  return std::nullopt;
}
int JemallocCtl::write_bool(const char*, bool) noexcept {
  return ENOENT;
}
int JemallocCtl::write_size(const char*, std::size_t) noexcept {
  return ENOENT;
}
int JemallocCtl::write_string(const char*, const char*) noexcept {
  return ENOENT;
}
int JemallocCtl::write_pointer(const char*, void*) noexcept {
  return ENOENT;
}
int JemallocCtl::run(const char*) noexcept {
  return ENOENT;
}
bool JemallocCtl::refresh_epoch() noexcept {
  return false;
}

#endif

}  // namespace riptide::performance
