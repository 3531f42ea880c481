#pragma once
// The memory limit of the process's cgroup and how close the cgroup is to it: what decides when the
// kernel's OOM killer strikes. Both cgroup versions:
//   v1: memory.limit_in_bytes, memory.usage_in_bytes, memory.stat (total_inactive_file,
//       hierarchical_memory_limit: the lowest limit of the cgroup and its ancestors)
//   v2: memory.max, memory.high, memory.current, memory.stat (inactive_file); the limits of every
//       ancestor up to the mount are read too, since the lowest one is the one that applies.
// The cgroup is found from /proc/self/cgroup (v2: the "0::" line; v1: the line naming the memory
// controller) and the mount points in /proc/self/mountinfo. Every path is taken below a root directory,
// "/" in production and a directory of fake files in tests.
//
// The parsers are pure functions of a file's text. Malformed contents throw riptide::performance::Error
// naming the file, what it held and what is accepted; "max" and v1's "no limit" (9223372036854771712,
// anything from 2^62 up) mean no limit and read as an empty optional.
//
//   rp::CgroupMemoryReader cgroup;                 // discovers once
//   if (cgroup.available()) {
//     rp::CgroupMemoryReading now = cgroup.read();  // throws Error when a file is malformed
//     if (now.effective_limit_bytes()) ... now.working_set_bytes() ...
//   }

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riptide::performance {

/// A limit file (memory.max, memory.high, memory.limit_in_bytes): bytes, or empty for "no limit".
[[nodiscard]] std::optional<std::uint64_t> parse_cgroup_limit(std::string_view text, std::string_view file);
/// A usage file (memory.current, memory.usage_in_bytes): bytes.
[[nodiscard]] std::uint64_t parse_cgroup_usage(std::string_view text, std::string_view file);
/// The value of the "<key> <bytes>" line of a memory.stat text; empty when the key is absent.
[[nodiscard]] std::optional<std::uint64_t> parse_memory_stat_value(std::string_view text, std::string_view key,
                                                                   std::string_view file);

/// One reading of the cgroup's memory. Limits are empty when unlimited.
struct CgroupMemoryReading {
  int version = 0;                          ///< 1 or 2
  std::optional<std::uint64_t> max_bytes;   ///< the lowest memory.max / limit_in_bytes up the hierarchy
  std::optional<std::uint64_t> high_bytes;  ///< v2: the lowest memory.high up the hierarchy (v1: empty)
  std::uint64_t usage_bytes = 0;            ///< memory.current / usage_in_bytes (page cache included)
  std::uint64_t inactive_file_bytes = 0;    ///< page cache the kernel reclaims first (0 when not reported)

  /// Usage without the inactive page cache: what the kernel cannot simply drop before it kills (the
  /// "working set" container runtimes report). Page cache from writing files would otherwise make any
  /// cgroup that writes look full.
  [[nodiscard]] std::uint64_t working_set_bytes() const noexcept {
    return usage_bytes > inactive_file_bytes ? usage_bytes - inactive_file_bytes : 0;
  }
  /// The limit a capture threshold is a share of: the lower of memory.max and memory.high (above
  /// memory.high the kernel throttles the cgroup hard, so that is where a capture must already be done);
  /// empty when neither is set.
  [[nodiscard]] std::optional<std::uint64_t> effective_limit_bytes() const noexcept;
};

class CgroupMemoryReader {
 public:
  /// Finds the process's memory cgroup below `root` (proc/self/cgroup, proc/self/mountinfo and the mount
  /// points it names, each taken below `root`). Never throws: when no memory cgroup is found,
  /// available() is false and unavailable_reason() says why.
  explicit CgroupMemoryReader(std::filesystem::path root = "/");
  ~CgroupMemoryReader();
  CgroupMemoryReader(const CgroupMemoryReader&) = delete;
  CgroupMemoryReader& operator=(const CgroupMemoryReader&) = delete;

  [[nodiscard]] bool available() const noexcept { return version_ != 0; }
  [[nodiscard]] const std::string& unavailable_reason() const noexcept { return reason_; }
  [[nodiscard]] int version() const noexcept { return version_; }
  /// The process's cgroup directory (below the root given to the constructor); empty when unavailable.
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }

  /// Reads the files now (positional reads of descriptors opened once). Thread-safe. Throws Error when
  /// unavailable, when a file cannot be read or when its contents are malformed.
  [[nodiscard]] CgroupMemoryReading read() const;

 private:
  struct OpenFile {
    std::filesystem::path path;
    int fd = -1;
  };
  void open_files();
  [[nodiscard]] std::string read_file(const OpenFile& file, std::size_t max_bytes) const;

  std::filesystem::path root_;
  std::filesystem::path directory_;
  int version_ = 0;
  std::string reason_;
  OpenFile usage_;
  OpenFile stat_;
  std::vector<OpenFile> max_files_;   // ours first, then each ancestor's that exists
  std::vector<OpenFile> high_files_;  // v2 only
};

}  // namespace riptide::performance
