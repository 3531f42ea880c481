#pragma once
// The directory of memory captures: a bounded ring of capture directories, each written atomically.
//
//   <capture_dir>/capture-20250114T093012.345Z-4711-1/
//       heap.pb.gz       the heap profile as GET /debug/pprof/heap serves it (gzipped protobuf)
//       snapshot.json    the body of GET /metrics/memory/snapshot
//       leaks.json       the body of GET /metrics/memory/leaks (or its error body)
//       capture.json     the manifest: name, time, reason, trigger, figures, files and their sizes
//
// A capture is written into ".partial-<name>" in the same directory (every file fsynced, then the
// directory), renamed to its name and the parent directory fsynced: a reader sees a whole capture or
// none, and a process killed while writing leaves only a ".partial-" directory, which the next write
// removes. Names sort by time (UTC, then pid and a sequence number), so the oldest is removed first when
// the ring holds more than its bound. Before writing, the capture's size is compared with its bound and
// with the file system's free space (statvfs): a capture that would leave less than the free-space bound
// is skipped, never written in part.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace riptide::performance {

/// One file of a capture.
struct CaptureFile {
  std::string name;         ///< "heap.pb.gz", "snapshot.json", ...
  std::uint64_t bytes = 0;  ///< its size on disk
};

/// One capture on disk, as its manifest describes it.
struct MemoryCapture {
  std::string name;                            ///< the directory's name: capture-<UTC time>-<pid>-<n>
  std::chrono::system_clock::time_point time;  ///< when it was taken
  std::string trigger;                         ///< "memory_alert", "cgroup_share" or "manual"
  std::string reason;                          ///< a sentence with the figures that triggered it
  std::uint64_t bytes = 0;                     ///< all files, the manifest included
  std::vector<CaptureFile> files;              ///< the manifest last
};

/// ADL JSON: {name, time (RFC 3339), trigger, reason, bytes, files: [{name, bytes}]}.
void to_json(nlohmann::json& out, const MemoryCapture& capture);

/// What a capture writes: its files' contents, in order.
struct CaptureContents {
  std::string trigger;
  std::string reason;
  std::chrono::system_clock::time_point time;
  std::vector<std::pair<std::string, std::string>> files;  ///< name, contents (the manifest is added)
  /// Extra manifest fields (figures at the time, why a file is missing, ...): an object or null.
  nlohmann::json manifest_extra;
};

/// The result of CaptureStore::write: `performed` with the capture, or skipped with the reason.
struct CaptureOutcome {
  bool performed = false;
  std::string reason;                    ///< why it was skipped (empty when performed)
  std::optional<MemoryCapture> capture;  ///< set when performed
  std::vector<std::string> removed;      ///< older captures removed to keep the ring's bound
};

struct CaptureStoreLimits {
  std::uint32_t max_captures = 5;                  ///< captures kept; the oldest go first
  std::uint64_t min_free_bytes = 256ull << 20;     ///< free space a capture must leave on the file system
  std::uint64_t max_capture_bytes = 256ull << 20;  ///< bound on one capture's size
};

class CaptureStore {
 public:
  inline static constexpr std::string_view kManifest = "capture.json";
  inline static constexpr std::string_view kPartialPrefix = ".partial-";

  /// Creates `directory` (and its parents) when missing. Throws riptide::performance::Error naming the
  /// directory and the cause when it cannot be created or is not a writable directory.
  CaptureStore(std::filesystem::path directory, CaptureStoreLimits limits);

  /// Writes one capture atomically, then removes the oldest beyond the bound. Skips (performed false,
  /// with the reason) when the capture exceeds max_capture_bytes or would leave less than min_free_bytes
  /// free. Throws Error when a write fails; nothing of that capture is left behind then.
  [[nodiscard]] CaptureOutcome write(const CaptureContents& contents);

  /// Every complete capture in the directory (those with a readable manifest), oldest first.
  [[nodiscard]] std::vector<MemoryCapture> scan() const;

  /// The contents of `file` of capture `name`. Both must be plain names (no '/', not "." or ".."): the
  /// caller checks them against scan() first. Throws Error when the file cannot be read.
  [[nodiscard]] std::string read(std::string_view name, std::string_view file) const;

  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] const CaptureStoreLimits& limits() const noexcept { return limits_; }

  /// Free bytes for an unprivileged writer on the directory's file system; empty when statvfs fails.
  [[nodiscard]] std::optional<std::uint64_t> free_bytes() const noexcept;

 private:
  [[nodiscard]] std::string next_name(std::chrono::system_clock::time_point time);
  void remove_partials() const noexcept;

  std::filesystem::path directory_;
  CaptureStoreLimits limits_;
  std::uint64_t sequence_ = 0;
};

/// True for a name a capture or one of its files can have: 1 to 128 characters of letters, digits and
/// "-_.", not starting with '.'. What the HTTP download route accepts before it looks anything up.
[[nodiscard]] bool is_plain_capture_name(std::string_view name) noexcept;

}  // namespace riptide::performance
