#include "riptide/performance/timing/cpu_profiler.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <thread>

#include <unistd.h>

#include "riptide/performance/core/features.hpp"

#if RIPTIDE_PERF_HAS_BOTTLENECK_ANALYSIS
#include <gperftools/profiler.h>
#endif

namespace riptide::performance {

const char* to_string(CpuProfileResult::Status status) noexcept {
  switch (status) {
    case CpuProfileResult::Status::ok:
      return "ok";
    case CpuProfileResult::Status::busy:
      return "busy";
    case CpuProfileResult::Status::unavailable:
      return "unavailable";
    case CpuProfileResult::Status::failed:
      return "failed";
  }
  return "unknown";
}

bool CpuProfiler::available() noexcept {
  return RIPTIDE_PERF_HAS_BOTTLENECK_ANALYSIS != 0;
}

#if RIPTIDE_PERF_HAS_BOTTLENECK_ANALYSIS
namespace {

std::atomic<bool> g_profiling{false};

// Clears the busy flag however profile() leaves.
struct BusyGuard {
  ~BusyGuard() { g_profiling.store(false, std::memory_order_release); }
};

}  // namespace

CpuProfileResult CpuProfiler::profile(std::chrono::nanoseconds duration,
                                      const std::filesystem::path& directory) noexcept {
  CpuProfileResult result;
  bool expected = false;
  if (!g_profiling.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
    result.status = CpuProfileResult::Status::busy;
    result.reason = "a CPU profile is already being taken; only one runs at a time";
    return result;
  }
  const BusyGuard guard;
  try {
    std::error_code ec;
    std::filesystem::path dir = directory.empty() ? std::filesystem::temp_directory_path(ec) : directory;
    if (ec) {
      dir = "/tmp";
    }
    std::string pattern = (dir / "riptide-cpu-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) {
      result.status = CpuProfileResult::Status::failed;
      result.reason = "cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno);
      return result;
    }
    ::close(fd);
    const std::filesystem::path file = pattern;
    struct FileRemover {
      const std::filesystem::path& path;
      ~FileRemover() {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
      }
    } remover{file};

    if (ProfilerStart(file.c_str()) == 0) {
      result.status = CpuProfileResult::Status::failed;
      result.reason =
          "gperftools refused to start (already profiling, e.g. CPUPROFILE is set, or the file is unwritable)";
      return result;
    }
    const auto started = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(duration);
    ProfilerStop();
    result.duration = std::chrono::steady_clock::now() - started;

    std::ifstream in(file, std::ios::binary);
    if (!in) {
      result.status = CpuProfileResult::Status::failed;
      result.reason = "cannot read the profile file " + file.string();
      return result;
    }
    result.profile.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (result.profile.empty()) {
      result.status = CpuProfileResult::Status::failed;
      result.reason = "gperftools wrote an empty profile";
      return result;
    }
    result.status = CpuProfileResult::Status::ok;
  } catch (const std::exception& e) {
    result.status = CpuProfileResult::Status::failed;
    result.profile.clear();
    result.reason = std::string("CPU profile failed: ") + e.what();
  }
  return result;
}
#else
CpuProfileResult CpuProfiler::profile(std::chrono::nanoseconds, const std::filesystem::path&) noexcept {
  CpuProfileResult result;
  result.status = CpuProfileResult::Status::unavailable;
  result.reason = "built without RIPTIDE_PERF_BOTTLENECK_ANALYSIS (gperftools CPU profiler)";
  return result;
}
#endif

}  // namespace riptide::performance
