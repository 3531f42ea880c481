#include "riptide/performance/memory/process_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

namespace riptide::performance {
namespace {

constexpr std::string_view kWhitespace = " \t\r\n";

std::string_view trim(std::string_view text) noexcept {
  const auto first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

std::optional<std::uint64_t> parse_u64(std::string_view text) noexcept {
  if (text.empty()) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> checked_multiply(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    return std::nullopt;
  }
  return product;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) {
      break;
    }
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    const auto start = line.find_first_not_of(kWhitespace);
    if (start == std::string_view::npos) {
      break;
    }
    line.remove_prefix(start);
    const auto end = line.find_first_of(kWhitespace);
    fields.push_back(line.substr(0, end));
    if (end == std::string_view::npos) {
      break;
    }
    line.remove_prefix(end);
  }
  return fields;
}

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {};
  }
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

/// Reads a small kernel-generated file from offset 0 into `buffer`. Positional reads keep one open
/// descriptor safe to share between threads, and skip an open()/close() pair per sample.
template <std::size_t N>
std::optional<std::string_view> pread_text(int fd, std::array<char, N>& buffer) noexcept {
  if (fd < 0) {
    return std::nullopt;
  }
  std::size_t filled = 0;
  while (filled < buffer.size()) {
    const ssize_t got = ::pread(fd, buffer.data() + filled, buffer.size() - filled, static_cast<off_t>(filled));
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::nullopt;
    }
    if (got == 0) {
      break;
    }
    filled += static_cast<std::size_t>(got);
  }
  if (filled == buffer.size()) {
    return std::nullopt;  // larger than expected: rather no value than a truncated one
  }
  return std::string_view(buffer.data(), filled);
}

int open_read_only(const std::filesystem::path& path) noexcept {
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

/// `path` as seen below a mount whose hierarchy root is `root` (mountinfo field 4).
std::filesystem::path join_below_mount(const std::filesystem::path& mount, std::string_view root,
                                       std::string_view path) {
  if (root != "/" && path.substr(0, root.size()) == root) {
    path.remove_prefix(root.size());
  }
  while (!path.empty() && path.front() == '/') {
    path.remove_prefix(1);
  }
  return path.empty() ? mount : mount / std::filesystem::path(path);
}

bool regular_file_exists(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

}  // namespace

std::optional<StatmFigures> parse_statm(std::string_view text, std::uint64_t page_size) noexcept {
  const auto line = trim(text.substr(0, text.find('\n')));
  const auto first_end = line.find(' ');
  if (first_end == std::string_view::npos || page_size == 0) {
    return std::nullopt;
  }
  const auto rest = line.substr(first_end + 1);
  const auto second = rest.substr(0, rest.find(' '));
  const auto size_pages = parse_u64(line.substr(0, first_end));
  const auto resident_pages = parse_u64(second);
  if (!size_pages || !resident_pages) {
    return std::nullopt;
  }
  const auto virtual_bytes = checked_multiply(*size_pages, page_size);
  const auto rss_bytes = checked_multiply(*resident_pages, page_size);
  if (!virtual_bytes || !rss_bytes) {
    return std::nullopt;
  }
  return StatmFigures{*virtual_bytes, *rss_bytes};
}

std::optional<std::uint64_t> parse_status_kb_field(std::string_view status_text, std::string_view key) noexcept {
  while (!status_text.empty()) {
    const auto end = status_text.find('\n');
    const auto line = status_text.substr(0, end);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      auto value = trim(line.substr(key.size() + 1));
      if (value.size() < 3 || value.substr(value.size() - 3) != " kB") {
        return std::nullopt;
      }
      const auto kib = parse_u64(trim(value.substr(0, value.size() - 3)));
      return kib ? checked_multiply(*kib, 1024) : std::nullopt;
    }
    if (end == std::string_view::npos) {
      break;
    }
    status_text.remove_prefix(end + 1);
  }
  return std::nullopt;
}

CgroupMembership parse_proc_cgroup(std::string_view text) {
  CgroupMembership result;
  for (const auto line : split_lines(text)) {
    // "hierarchy-id:controller-list:path"; the path itself may contain ':'.
    const auto first = line.find(':');
    if (first == std::string_view::npos) {
      continue;
    }
    const auto second = line.find(':', first + 1);
    if (second == std::string_view::npos) {
      continue;
    }
    const auto id = line.substr(0, first);
    const auto controllers = line.substr(first + 1, second - first - 1);
    const auto path = line.substr(second + 1);
    if (path.empty() || path.front() != '/') {
      continue;
    }
    if (id == "0" && controllers.empty()) {
      result.unified_path = std::string(path);
      continue;
    }
    std::string_view list = controllers;
    while (!list.empty()) {
      const auto comma = list.find(',');
      if (list.substr(0, comma) == "memory") {
        result.memory_path = std::string(path);
        break;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      list.remove_prefix(comma + 1);
    }
  }
  return result;
}

CgroupMounts parse_mountinfo(std::string_view text) {
  CgroupMounts result;
  for (const auto line : split_lines(text)) {
    // "id parent major:minor root mount-point options [optional fields...] - fstype source super-options"
    const auto fields = split_fields(line);
    std::size_t separator = 0;
    for (std::size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        separator = i;
        break;
      }
    }
    if (separator == 0 || separator + 3 > fields.size()) {
      continue;
    }
    const auto fstype = fields[separator + 1];
    const auto root = fields[3];
    const auto mount_point = fields[4];
    if (fstype == "cgroup2" && !result.unified) {
      result.unified = std::filesystem::path(mount_point);
      result.unified_root = std::string(root);
    } else if (fstype == "cgroup" && !result.memory_v1) {
      std::string_view options = fields[separator + 3];
      while (!options.empty()) {
        const auto comma = options.find(',');
        if (options.substr(0, comma) == "memory") {
          result.memory_v1 = std::filesystem::path(mount_point);
          result.memory_v1_root = std::string(root);
          break;
        }
        if (comma == std::string_view::npos) {
          break;
        }
        options.remove_prefix(comma + 1);
      }
    }
  }
  return result;
}

std::optional<std::uint64_t> parse_cgroup_memory_value(std::string_view text) noexcept {
  const auto value = trim(text);
  if (value == "max") {
    return std::nullopt;
  }
  const auto number = parse_u64(value);
  // cgroup v1 writes PAGE_COUNTER_MAX x page size (about 2^63) for "no limit".
  constexpr std::uint64_t kNoLimitV1 = std::uint64_t{1} << 62;
  if (!number || *number >= kNoLimitV1) {
    return std::nullopt;
  }
  return number;
}

ProcessStats::ProcessStats() : proc_self_("/proc/self") {
  const auto membership = parse_proc_cgroup(read_whole_file(proc_self_ / "cgroup"));
  const auto mounts = parse_mountinfo(read_whole_file(proc_self_ / "mountinfo"));
  // Without a cgroup namespace the path names the cgroup as the host sees it; inside a container the
  // mount usually shows only our own cgroup at its root, so fall back to the mount point itself.
  const auto find_directory = [](const std::filesystem::path& mount, const std::string& root, const std::string& path,
                                 const char* probe_file) -> std::optional<std::filesystem::path> {
    const auto joined = join_below_mount(mount, root, path);
    if (regular_file_exists(joined / probe_file)) {
      return joined;
    }
    if (regular_file_exists(mount / probe_file)) {
      return mount;
    }
    return std::nullopt;
  };
  if (membership.unified_path && mounts.unified) {
    cgroup_directory_ =
        find_directory(*mounts.unified, mounts.unified_root.value_or("/"), *membership.unified_path, "memory.max");
    if (cgroup_directory_) {
      cgroup_version_ = 2;
    }
  }
  if (!cgroup_directory_ && membership.memory_path && mounts.memory_v1) {
    cgroup_directory_ = find_directory(*mounts.memory_v1, mounts.memory_v1_root.value_or("/"), *membership.memory_path,
                                       "memory.limit_in_bytes");
    if (cgroup_directory_) {
      cgroup_version_ = 1;
    }
  }
  open_files();
}

ProcessStats::ProcessStats(std::filesystem::path proc_self, std::optional<std::filesystem::path> cgroup_directory,
                           int cgroup_version)
    : proc_self_(std::move(proc_self)),
      cgroup_directory_(std::move(cgroup_directory)),
      cgroup_version_(cgroup_version) {
  open_files();
}

ProcessStats::~ProcessStats() {
  close_fd(statm_fd_);
  close_fd(status_fd_);
  close_fd(cgroup_limit_fd_);
  close_fd(cgroup_usage_fd_);
}

void ProcessStats::open_files() {
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) {
    page_size_ = static_cast<std::uint64_t>(page);
  }
  statm_fd_ = open_read_only(proc_self_ / "statm");
  status_fd_ = open_read_only(proc_self_ / "status");
  if (cgroup_directory_) {
    const bool v2 = cgroup_version_ == 2;
    cgroup_limit_fd_ = open_read_only(*cgroup_directory_ / (v2 ? "memory.max" : "memory.limit_in_bytes"));
    cgroup_usage_fd_ = open_read_only(*cgroup_directory_ / (v2 ? "memory.current" : "memory.usage_in_bytes"));
  }
}

ProcessMemory ProcessStats::read_statm() const noexcept {
  ProcessMemory result;
  std::array<char, 256> buffer;
  if (const auto text = pread_text(statm_fd_, buffer)) {
    if (const auto figures = parse_statm(*text, page_size_)) {
      result.rss_bytes = figures->rss_bytes;
      result.virtual_bytes = figures->virtual_bytes;
    }
  }
  return result;
}

ProcessMemory ProcessStats::read() const noexcept {
  ProcessMemory result = read_statm();
  {
    std::array<char, 8192> buffer;
    if (const auto text = pread_text(status_fd_, buffer)) {
      result.peak_rss_bytes = parse_status_kb_field(*text, "VmHWM");
    }
  }
  if (cgroup_limit_fd_ >= 0 || cgroup_usage_fd_ >= 0) {
    result.cgroup_version = cgroup_version_;
    std::array<char, 64> buffer;
    if (const auto text = pread_text(cgroup_limit_fd_, buffer)) {
      result.cgroup_limit_bytes = parse_cgroup_memory_value(*text);
    }
    if (const auto text = pread_text(cgroup_usage_fd_, buffer)) {
      const auto usage = trim(*text);
      // "max" is meaningless for usage; only a number counts.
      result.cgroup_usage_bytes = usage == "max" ? std::nullopt : parse_cgroup_memory_value(usage);
    }
  }
  return result;
}

}  // namespace riptide::performance
