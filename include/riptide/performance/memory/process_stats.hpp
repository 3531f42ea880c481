#pragma once
// Process-level memory figures from the kernel: RSS and virtual size (/proc/self/statm, the cheap path),
// peak RSS (VmHWM in /proc/self/status) and the memory limit and usage of the process's cgroup.
// The parsers take text so that odd or truncated input can be tested; they return an empty optional
// instead of guessing.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace riptide::performance {

/// One reading of the process's memory as the kernel sees it. Every field is empty when its source
/// could not be read or parsed.
struct ProcessMemory {
  std::optional<std::uint64_t> rss_bytes;           ///< resident pages now (statm field 2 x page size)
  std::optional<std::uint64_t> virtual_bytes;       ///< mapped address space (statm field 1 x page size)
  std::optional<std::uint64_t> peak_rss_bytes;      ///< high-water mark of RSS since start (VmHWM)
  std::optional<std::uint64_t> cgroup_limit_bytes;  ///< memory.max of our cgroup; empty when unlimited
  std::optional<std::uint64_t> cgroup_usage_bytes;  ///< memory.current of our cgroup (includes page cache)
  std::optional<int> cgroup_version;                ///< 2 (unified) or 1 (legacy memory controller)
};

/// RSS and virtual size from the text of /proc/self/statm ("size resident shared text lib data dt").
struct StatmFigures {
  std::uint64_t virtual_bytes = 0;  ///< first field x page size
  std::uint64_t rss_bytes = 0;      ///< second field x page size
};
[[nodiscard]] std::optional<StatmFigures> parse_statm(std::string_view text, std::uint64_t page_size) noexcept;

/// A "Key:   <n> kB" line of /proc/self/status, in bytes ("VmHWM", "VmRSS", ...).
[[nodiscard]] std::optional<std::uint64_t> parse_status_kb_field(std::string_view status_text,
                                                                 std::string_view key) noexcept;

/// Where the process sits in the cgroup hierarchy, from the text of /proc/self/cgroup.
struct CgroupMembership {
  std::optional<std::string> unified_path;  ///< path of the "0::<path>" (cgroup v2) line
  std::optional<std::string> memory_path;   ///< path of the "<n>:...memory...:<path>" (v1) line
};
[[nodiscard]] CgroupMembership parse_proc_cgroup(std::string_view text);

/// Mount points of the cgroup file systems, from the text of /proc/self/mountinfo.
struct CgroupMounts {
  std::optional<std::filesystem::path> unified;    ///< cgroup2 mount point
  std::optional<std::string> unified_root;         ///< root of the hierarchy seen at that mount
  std::optional<std::filesystem::path> memory_v1;  ///< cgroup v1 mount carrying the memory controller
  std::optional<std::string> memory_v1_root;       ///< root of the hierarchy seen at that mount
};
[[nodiscard]] CgroupMounts parse_mountinfo(std::string_view text);

/// The value of memory.max / memory.current (v2) or memory.limit_in_bytes / usage_in_bytes (v1).
/// "max" and v1's "no limit" (>= 2^62) are empty, as is anything that is not a single decimal number.
[[nodiscard]] std::optional<std::uint64_t> parse_cgroup_memory_value(std::string_view text) noexcept;

/// Reads the figures above. Construction finds the cgroup directory and opens statm once; read() is
/// thread-safe (positional reads only) and never throws.
class ProcessStats {
 public:
  /// Reads /proc/self and discovers the cgroup directory from /proc/self/cgroup and mountinfo.
  ProcessStats();
  /// Reads `proc_self` (a directory with statm and status) and the memory files of `cgroup_directory`
  /// (`cgroup_version` 2: memory.max/current, 1: memory.limit_in_bytes/usage_in_bytes); for tests.
  ProcessStats(std::filesystem::path proc_self, std::optional<std::filesystem::path> cgroup_directory,
               int cgroup_version);
  ~ProcessStats();
  ProcessStats(const ProcessStats&) = delete;
  ProcessStats& operator=(const ProcessStats&) = delete;

  /// statm, VmHWM and the cgroup files.
  [[nodiscard]] ProcessMemory read() const noexcept;
  /// statm only: the cheapest reading, for callers that want RSS at a high rate.
  [[nodiscard]] ProcessMemory read_statm() const noexcept;

  /// The cgroup directory whose memory files are read, when one was found.
  [[nodiscard]] const std::optional<std::filesystem::path>& cgroup_directory() const noexcept {
    return cgroup_directory_;
  }

 private:
  void open_files();

  std::filesystem::path proc_self_;
  std::optional<std::filesystem::path> cgroup_directory_;
  int cgroup_version_ = 0;
  std::uint64_t page_size_ = 4096;
  int statm_fd_ = -1;
  int status_fd_ = -1;
  int cgroup_limit_fd_ = -1;
  int cgroup_usage_fd_ = -1;
};

}  // namespace riptide::performance
