#include "riptide/performance/memory/cgroup_memory.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/memory/process_stats.hpp"

namespace riptide::performance {
namespace {

constexpr std::string_view kWhitespace = " \t\r\n";
// cgroup v1 writes PAGE_COUNTER_MAX x page size (9223372036854771712 with 4 KiB pages) for "no limit";
// no machine has 2^62 bytes, so anything from there up means the same.
constexpr std::uint64_t kNoLimitFrom = std::uint64_t{1} << 62;

std::string_view trim(std::string_view text) noexcept {
  const auto first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kWhitespace) - first + 1);
}

// The text as it can be shown in a message: trimmed, at most 64 characters, control characters escaped.
std::string shown(std::string_view text) {
  text = trim(text);
  if (text.empty()) return "nothing";
  std::string out = "'";
  for (const char c : text.substr(0, 64)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += c == '\n' ? "\\n" : "?";
    } else {
      out += c;
    }
  }
  if (text.size() > 64) out += "...";
  return out + "'";
}

std::optional<std::uint64_t> parse_decimal(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string read_small_file(const std::filesystem::path& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path.string() + ": " + std::strerror(errno);
    return {};
  }
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

bool is_file(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

// An absolute path of the running system, taken below `root` ("/" leaves it unchanged).
std::filesystem::path below_root(const std::filesystem::path& root, const std::filesystem::path& absolute) {
  return root / absolute.relative_path();
}

// `cgroup_path` (from /proc/self/cgroup) below a mount of the hierarchy whose root is `mount_root`
// (mountinfo's fourth field: a container with its own cgroup namespace sees only part of it).
std::filesystem::path join_below_mount(const std::filesystem::path& mount, std::string_view mount_root,
                                       std::string_view cgroup_path) {
  if (mount_root != "/" && cgroup_path.substr(0, mount_root.size()) == mount_root) {
    cgroup_path.remove_prefix(mount_root.size());
  }
  while (!cgroup_path.empty() && cgroup_path.front() == '/') cgroup_path.remove_prefix(1);
  return cgroup_path.empty() ? mount : mount / std::filesystem::path(cgroup_path);
}

// The process's cgroup directory for one version: below the mount when it exists there, else the mount
// itself (a container without a cgroup namespace sees its own cgroup at the mount point).
std::optional<std::filesystem::path> cgroup_directory(const std::filesystem::path& mount, std::string_view mount_root,
                                                      std::string_view cgroup_path, const char* probe) {
  const auto joined = join_below_mount(mount, mount_root, cgroup_path);
  if (is_file(joined / probe)) return joined;
  if (is_file(mount / probe)) return mount;
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> parse_cgroup_limit(std::string_view text, std::string_view file) {
  const auto value = trim(text);
  if (value == "max") return std::nullopt;
  const auto number = parse_decimal(value);
  if (!number) {
    throw Error(std::string(file) + " holds " + shown(text) +
                ", not a limit (accepted: a decimal number of bytes, or 'max' for no limit)");
  }
  if (*number >= kNoLimitFrom) return std::nullopt;
  return number;
}

std::uint64_t parse_cgroup_usage(std::string_view text, std::string_view file) {
  const auto number = parse_decimal(trim(text));
  if (!number) {
    throw Error(std::string(file) + " holds " + shown(text) + ", not a usage (accepted: a decimal number of bytes)");
  }
  return *number;
}

std::optional<std::uint64_t> parse_memory_stat_value(std::string_view text, std::string_view key,
                                                     std::string_view file) {
  while (!text.empty()) {
    const auto end = text.find('\n');
    const auto line = text.substr(0, end);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      const auto value = parse_decimal(trim(line.substr(key.size() + 1)));
      if (!value) {
        throw Error(std::string(file) + ": line " + shown(line) + " has no byte count (accepted: '" + std::string(key) +
                    " <decimal number>')");
      }
      return value;
    }
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> CgroupMemoryReading::effective_limit_bytes() const noexcept {
  if (max_bytes && high_bytes) return std::min(*max_bytes, *high_bytes);
  return max_bytes ? max_bytes : high_bytes;
}

CgroupMemoryReader::CgroupMemoryReader(std::filesystem::path root) : root_(std::move(root)) {
  std::string error;
  const auto proc_cgroup = below_root(root_, "/proc/self/cgroup");
  const std::string membership_text = read_small_file(proc_cgroup, &error);
  if (!error.empty()) {
    reason_ = error;
    return;
  }
  const auto mountinfo = below_root(root_, "/proc/self/mountinfo");
  const std::string mounts_text = read_small_file(mountinfo, &error);
  if (!error.empty()) {
    reason_ = error;
    return;
  }
  const CgroupMembership membership = parse_proc_cgroup(membership_text);
  const CgroupMounts mounts = parse_mountinfo(mounts_text);
  if (!membership.unified_path && !membership.memory_path) {
    reason_ = proc_cgroup.string() +
              " has neither a cgroup v2 line ('0::<path>') nor a cgroup v1 line naming the memory controller";
    return;
  }
  std::filesystem::path mount;
  // v2 first; on a hybrid system (v1 memory controller, cgroup2 mounted beside it) the v2 cgroup has no
  // memory.max and the v1 controller is the one that limits.
  if (membership.unified_path && mounts.unified) {
    mount = below_root(root_, *mounts.unified);
    if (auto dir = cgroup_directory(mount, mounts.unified_root.value_or("/"), *membership.unified_path, "memory.max")) {
      directory_ = *dir;
      version_ = 2;
    }
  }
  if (version_ == 0 && membership.memory_path && mounts.memory_v1) {
    mount = below_root(root_, *mounts.memory_v1);
    if (auto dir = cgroup_directory(mount, mounts.memory_v1_root.value_or("/"), *membership.memory_path,
                                    "memory.limit_in_bytes")) {
      directory_ = *dir;
      version_ = 1;
    }
  }
  if (version_ == 0) {
    if (!mounts.unified && !mounts.memory_v1) {
      reason_ = mountinfo.string() + " lists no cgroup2 mount and no cgroup v1 mount with the memory controller";
    } else {
      reason_ = "no memory controller in the process's cgroup (" +
                (membership.unified_path ? "v2 " + *membership.unified_path + " has no memory.max"
                                         : std::string("no cgroup v2 line")) +
                (membership.memory_path ? "; v1 " + *membership.memory_path + " has no memory.limit_in_bytes"
                                        : std::string("; no cgroup v1 memory line")) +
                ")";
    }
    return;
  }
  // The limits that apply are ours and every ancestor's up to the mount (v1 reports the lowest in
  // memory.stat's hierarchical_memory_limit, so only v2 walks up).
  usage_.path = directory_ / (version_ == 2 ? "memory.current" : "memory.usage_in_bytes");
  stat_.path = directory_ / "memory.stat";
  if (version_ == 1) {
    max_files_.push_back({directory_ / "memory.limit_in_bytes"});
  } else {
    for (auto dir = directory_;; dir = dir.parent_path()) {
      if (is_file(dir / "memory.max")) max_files_.push_back({dir / "memory.max"});
      if (is_file(dir / "memory.high")) high_files_.push_back({dir / "memory.high"});
      if (dir == mount || dir == dir.parent_path() || dir.string().size() <= mount.string().size()) break;
    }
  }
  open_files();
}

CgroupMemoryReader::~CgroupMemoryReader() {
  for (OpenFile* file : {&usage_, &stat_}) {
    if (file->fd >= 0) ::close(file->fd);
  }
  for (auto* files : {&max_files_, &high_files_}) {
    for (OpenFile& file : *files) {
      if (file.fd >= 0) ::close(file.fd);
    }
  }
}

void CgroupMemoryReader::open_files() {
  // Opened once: a periodic reading then costs one pread per file, no open/close.
  const auto open_one = [](OpenFile& file) { file.fd = ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC); };
  open_one(usage_);
  open_one(stat_);
  for (OpenFile& file : max_files_) open_one(file);
  for (OpenFile& file : high_files_) open_one(file);
}

std::string CgroupMemoryReader::read_file(const OpenFile& file, std::size_t max_bytes) const {
  if (file.fd < 0) throw Error("cannot open " + file.path.string());
  std::string text(max_bytes, '\0');
  std::size_t filled = 0;
  while (filled < text.size()) {
    const ssize_t got = ::pread(file.fd, text.data() + filled, text.size() - filled, static_cast<off_t>(filled));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot read " + file.path.string() + ": " + std::strerror(errno));
    }
    if (got == 0) break;
    filled += static_cast<std::size_t>(got);
  }
  if (filled == text.size()) {
    throw Error(file.path.string() + " is larger than " + std::to_string(max_bytes) + " bytes: not a cgroup file");
  }
  text.resize(filled);
  return text;
}

CgroupMemoryReading CgroupMemoryReader::read() const {
  if (version_ == 0) throw Error("no memory cgroup to read: " + reason_);
  constexpr std::size_t kValueBytes = 64;
  constexpr std::size_t kStatBytes = 64 * 1024;
  CgroupMemoryReading reading;
  reading.version = version_;
  const auto lowest = [](std::optional<std::uint64_t> current, std::optional<std::uint64_t> next) {
    if (!next) return current;
    return current ? std::min(*current, *next) : next;
  };
  for (const OpenFile& file : max_files_) {
    reading.max_bytes = lowest(reading.max_bytes, parse_cgroup_limit(read_file(file, kValueBytes), file.path.string()));
  }
  for (const OpenFile& file : high_files_) {
    reading.high_bytes =
        lowest(reading.high_bytes, parse_cgroup_limit(read_file(file, kValueBytes), file.path.string()));
  }
  reading.usage_bytes = parse_cgroup_usage(read_file(usage_, kValueBytes), usage_.path.string());
  // memory.stat is optional: without it the working set is the whole usage.
  if (stat_.fd >= 0) {
    const std::string stat = read_file(stat_, kStatBytes);
    const std::string name = stat_.path.string();
    if (version_ == 1) {
      reading.inactive_file_bytes = parse_memory_stat_value(stat, "total_inactive_file", name).value_or(0);
      if (const auto hierarchical = parse_memory_stat_value(stat, "hierarchical_memory_limit", name)) {
        reading.max_bytes = lowest(reading.max_bytes, *hierarchical < kNoLimitFrom ? hierarchical : std::nullopt);
      }
    } else {
      reading.inactive_file_bytes = parse_memory_stat_value(stat, "inactive_file", name).value_or(0);
    }
  }
  return reading;
}

}  // namespace riptide::performance
