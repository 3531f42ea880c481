#include "riptide/performance/memory/capture_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/time_format.hpp"

namespace riptide::performance {
namespace {

std::string errno_text(int error) {
  return std::strerror(error);
}

// Closes a descriptor when it leaves scope (every early return and exception path).
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  /// Closes now and reports close()'s error (a delayed write error shows there).
  int close() noexcept {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

void write_fully(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t wrote = ::write(fd, data.data(), data.size());
    if (wrote < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + path.string() + ": " + errno_text(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(wrote));
  }
}

void write_synced_file(const std::filesystem::path& path, std::string_view data) {
  FileDescriptor file(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (file.get() < 0) throw Error("cannot create " + path.string() + ": " + errno_text(errno));
  write_fully(file.get(), data, path);
  if (::fsync(file.get()) != 0) throw Error("cannot fsync " + path.string() + ": " + errno_text(errno));
  if (file.close() != 0) throw Error("cannot close " + path.string() + ": " + errno_text(errno));
}

void sync_directory(const std::filesystem::path& path) {
  FileDescriptor dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
    throw Error("cannot fsync directory " + path.string() + ": " + errno_text(errno));
  }
}

std::string compact_utc(std::chrono::system_clock::time_point time) {
  // 20250114T093012.345Z: sorts as the time does, and is a plain name on every file system.
  const auto since_epoch = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(since_epoch / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[40];
  std::snprintf(text, sizeof text, "%04d%02d%02dT%02d%02d%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(since_epoch % 1000));
  return text;
}

// Zero-padded so that names of one millisecond still sort in the order they were written.
std::string sequence_text(std::uint64_t sequence) {
  char text[24];
  std::snprintf(text, sizeof text, "%06llu", static_cast<unsigned long long>(sequence));
  return text;
}

std::string mib_text(std::uint64_t bytes) {
  char text[48];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

std::optional<MemoryCapture> read_manifest(const std::filesystem::path& directory) {
  std::ifstream in(directory / CaptureStore::kManifest, std::ios::binary);
  if (!in) return std::nullopt;
  const nlohmann::json manifest = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object()) return std::nullopt;
  try {
    MemoryCapture capture;
    capture.name = directory.filename().string();
    capture.time = std::chrono::system_clock::time_point{
        std::chrono::milliseconds{manifest.at("time_unix_ms").get<std::int64_t>()}};
    capture.trigger = manifest.at("trigger").get<std::string>();
    capture.reason = manifest.at("reason").get<std::string>();
    capture.bytes = manifest.at("data_bytes").get<std::uint64_t>();
    for (const auto& file : manifest.at("files")) {
      capture.files.push_back({file.at("name").get<std::string>(), file.at("bytes").get<std::uint64_t>()});
    }
    std::error_code error;
    const auto manifest_bytes = std::filesystem::file_size(directory / CaptureStore::kManifest, error);
    if (error) return std::nullopt;
    capture.files.push_back({std::string(CaptureStore::kManifest), manifest_bytes});
    capture.bytes += manifest_bytes;
    return capture;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // not one of ours, or damaged: not listed, never served
  }
}

}  // namespace

bool is_plain_capture_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

void to_json(nlohmann::json& out, const MemoryCapture& capture) {
  out = nlohmann::json::object();
  out["name"] = capture.name;
  out["time"] = format_rfc3339_utc_millis(capture.time);
  out["trigger"] = capture.trigger;
  out["reason"] = capture.reason;
  out["bytes"] = capture.bytes;
  auto& files = out["files"] = nlohmann::json::array();
  for (const auto& file : capture.files) files.push_back({{"name", file.name}, {"bytes", file.bytes}});
}

CaptureStore::CaptureStore(std::filesystem::path directory, CaptureStoreLimits limits)
    : directory_(std::move(directory)), limits_(limits) {
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error) throw Error("cannot create the capture directory " + directory_.string() + ": " + error.message());
  if (!std::filesystem::is_directory(directory_, error)) {
    throw Error("the capture directory " + directory_.string() + " is not a directory");
  }
  if (::access(directory_.c_str(), W_OK | X_OK) != 0) {
    throw Error("the capture directory " + directory_.string() + " is not writable: " + errno_text(errno));
  }
}

std::optional<std::uint64_t> CaptureStore::free_bytes() const noexcept {
  struct statvfs info {};
  if (::statvfs(directory_.c_str(), &info) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(info.f_bavail) * static_cast<std::uint64_t>(info.f_frsize);
}

std::string CaptureStore::next_name(std::chrono::system_clock::time_point time) {
  return "capture-" + compact_utc(time) + "-" + std::to_string(::getpid()) + "-" + sequence_text(++sequence_);
}

void CaptureStore::remove_partials() const noexcept {
  std::error_code error;
  for (std::filesystem::directory_iterator it(directory_, error), end; !error && it != end; it.increment(error)) {
    if (it->path().filename().string().starts_with(kPartialPrefix)) {
      std::error_code ignored;
      std::filesystem::remove_all(it->path(), ignored);
    }
  }
}

CaptureOutcome CaptureStore::write(const CaptureContents& contents) {
  CaptureOutcome outcome;
  const std::string name = next_name(contents.time);

  nlohmann::json manifest = contents.manifest_extra.is_object() ? contents.manifest_extra : nlohmann::json::object();
  manifest["name"] = name;
  manifest["time"] = format_rfc3339_utc_millis(contents.time);
  manifest["time_unix_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(contents.time.time_since_epoch()).count();
  manifest["trigger"] = contents.trigger;
  manifest["reason"] = contents.reason;
  MemoryCapture capture;
  capture.name = name;
  capture.time = contents.time;
  capture.trigger = contents.trigger;
  capture.reason = contents.reason;
  for (const auto& [file, data] : contents.files) {
    capture.files.push_back({file, data.size()});
    capture.bytes += data.size();
  }
  // The manifest lists the data files; its own size is added to the listing from the disk (scan()).
  auto files = nlohmann::json::array();
  for (const auto& file : capture.files) files.push_back({{"name", file.name}, {"bytes", file.bytes}});
  manifest["files"] = std::move(files);
  manifest["data_bytes"] = capture.bytes;
  const std::string manifest_text = manifest.dump(2) + "\n";
  capture.files.push_back({std::string(kManifest), manifest_text.size()});
  capture.bytes += manifest_text.size();

  if (capture.bytes > limits_.max_capture_bytes) {
    outcome.reason = "the capture would take " + mib_text(capture.bytes) + ", more than profiling.capture_max_mb (" +
                     mib_text(limits_.max_capture_bytes) + ")";
    return outcome;
  }
  const auto available = free_bytes();
  if (!available) {
    outcome.reason = "cannot tell the free space of " + directory_.string() + " (statvfs: " + errno_text(errno) + ")";
    return outcome;
  }
  if (*available < capture.bytes || *available - capture.bytes < limits_.min_free_bytes) {
    outcome.reason = "only " + mib_text(*available) + " free on the file system of " + directory_.string() +
                     "; a capture of " + mib_text(capture.bytes) +
                     " would leave less than profiling.capture_min_free_mb (" + mib_text(limits_.min_free_bytes) + ")";
    return outcome;
  }

  remove_partials();  // left by a process killed while writing
  const auto partial = directory_ / (std::string(kPartialPrefix) + name);
  const auto final_path = directory_ / name;
  try {
    if (::mkdir(partial.c_str(), 0750) != 0) {
      throw Error("cannot create " + partial.string() + ": " + errno_text(errno));
    }
    for (const auto& [file, data] : contents.files) {
      if (!is_plain_capture_name(file) || file == kManifest) {
        throw Error("capture file name '" + file + "' is not a plain name (letters, digits, -_.)");
      }
      write_synced_file(partial / file, data);
    }
    write_synced_file(partial / kManifest, manifest_text);
    sync_directory(partial);
    if (::rename(partial.c_str(), final_path.c_str()) != 0) {
      throw Error("cannot rename " + partial.string() + " to " + final_path.string() + ": " + errno_text(errno));
    }
    sync_directory(directory_);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(partial, ignored);
    throw;
  }
  outcome.performed = true;
  outcome.capture = capture;

  // The ring: oldest first by name (the UTC time leads the name).
  std::vector<MemoryCapture> all = scan();
  while (all.size() > limits_.max_captures) {
    std::error_code error;
    std::filesystem::remove_all(directory_ / all.front().name, error);
    if (!error) outcome.removed.push_back(all.front().name);
    all.erase(all.begin());
  }
  return outcome;
}

std::vector<MemoryCapture> CaptureStore::scan() const {
  std::vector<MemoryCapture> captures;
  std::error_code error;
  for (std::filesystem::directory_iterator it(directory_, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with("capture-") || !is_plain_capture_name(name)) continue;
    std::error_code kind_error;
    if (!it->is_directory(kind_error)) continue;
    if (auto capture = read_manifest(it->path())) captures.push_back(std::move(*capture));
  }
  std::sort(captures.begin(), captures.end(),
            [](const MemoryCapture& a, const MemoryCapture& b) { return a.name < b.name; });
  return captures;
}

std::string CaptureStore::read(std::string_view name, std::string_view file) const {
  if (!is_plain_capture_name(name) || !is_plain_capture_name(file)) {
    throw Error("capture names and file names are plain names (letters, digits, -_.), got '" + std::string(name) + "/" +
                std::string(file) + "'");
  }
  const auto path = directory_ / std::string(name) / std::string(file);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string() + ": " + errno_text(errno));
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

}  // namespace riptide::performance
