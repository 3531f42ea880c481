// The real thing: a host in a memory cgroup with a 256 MiB limit allocates until the kernel's OOM killer
// ends it, and a complete capture (heap profile, snapshot, leak report) is on disk afterwards, written
// when the cgroup's working set crossed 0.6 of the limit; Google's pprof reads its heap profile.
//
// The test makes a cgroup with a limit and removes it afterwards: cgroup v1, a child of its own memory
// cgroup; cgroup v2, a child of its own when the memory controller is delegated to it, else a sibling
// below a parent that has the memory controller in its cgroup.subtree_control. Where that is impossible (not root, no
// memory controller, v2 without delegation) it skips with the exact reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "riptide/performance/memory/capture_store.hpp"
#include "riptide/performance/memory/process_stats.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace rp = riptide::performance;
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

constexpr std::uint64_t kLimitBytes = 256ull << 20;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Writes `value` to a cgroup control file; the errno text when the kernel refuses.
std::string write_control(const fs::path& path, const std::string& value) {
  std::ofstream out(path);
  out << value << std::flush;
  return out ? std::string{} : path.string() + ": " + std::strerror(errno);
}

// "<key> <n>" of a flat keyed file (memory.events, memory.oom_control); empty when absent.
std::optional<std::uint64_t> keyed_value(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  std::string name;
  std::uint64_t value = 0;
  while (lines >> name >> value) {
    if (name == key) return value;
  }
  return std::nullopt;
}

fs::path join_below(const fs::path& mount, const std::string& mount_root, std::string path) {
  if (mount_root != "/" && path.starts_with(mount_root)) path.erase(0, mount_root.size());
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  return path.empty() ? mount : mount / path;
}

// A child memory cgroup with a limit, removed when the test ends (after the host is gone).
class LimitedCgroup {
 public:
  // Empty `skip_reason()` when the cgroup exists and is limited.
  LimitedCgroup() {
    if (::geteuid() != 0) {
      skip_ = "creating a memory cgroup needs root (euid " + std::to_string(::geteuid()) + ")";
      return;
    }
    const auto membership = rp::parse_proc_cgroup(read_text("/proc/self/cgroup"));
    const auto mounts = rp::parse_mountinfo(read_text("/proc/self/mountinfo"));
    const std::string name = "riptide-oom-test-" + std::to_string(::getpid());
    if (membership.memory_path && mounts.memory_v1) {
      const fs::path own = join_below(*mounts.memory_v1, mounts.memory_v1_root.value_or("/"), *membership.memory_path);
      if (!make(own / name)) return;
      version_ = 1;
      if (const auto problem = write_control(dir_ / "memory.limit_in_bytes", std::to_string(kLimitBytes));
          !problem.empty()) {
        skip_ = "cannot set the limit: " + problem;
        return;
      }
      // With swap accounting, memory+swap must be limited too, or the host would swap instead of dying.
      if (fs::exists(dir_ / "memory.memsw.limit_in_bytes")) {
        (void)write_control(dir_ / "memory.memsw.limit_in_bytes", std::to_string(kLimitBytes));
      }
      return;
    }
    if (membership.unified_path && mounts.unified) {
      const fs::path mount = *mounts.unified;
      const fs::path own = join_below(mount, mounts.unified_root.value_or("/"), *membership.unified_path);
      // A v2 cgroup that holds processes cannot enable controllers for children ("no internal processes"):
      // a child of our own cgroup works only when the memory controller is already delegated to it; else
      // a sibling does, below a parent that gives us the memory controller.
      fs::path parent;
      if (read_text(own / "cgroup.subtree_control").find("memory") != std::string::npos) {
        parent = own;
      } else if (own != mount &&
                 read_text(own.parent_path() / "cgroup.subtree_control").find("memory") != std::string::npos) {
        parent = own.parent_path();
      } else {
        skip_ = "cgroup v2 without delegation: the memory controller is neither in " +
                (own / "cgroup.subtree_control").string() + " nor in its parent's (a v2 cgroup that holds " +
                "processes cannot enable it for children)";
        return;
      }
      if (!make(parent / name)) return;
      version_ = 2;
      if (const auto problem = write_control(dir_ / "memory.max", std::to_string(kLimitBytes)); !problem.empty()) {
        skip_ = "cannot set the limit: " + problem;
        return;
      }
      if (fs::exists(dir_ / "memory.swap.max")) (void)write_control(dir_ / "memory.swap.max", "0");
      return;
    }
    skip_ =
        "no memory cgroup: /proc/self/cgroup and /proc/self/mountinfo show neither a cgroup v1 memory "
        "controller nor a cgroup2 mount";
  }

  ~LimitedCgroup() {
    if (dir_.empty()) return;
    // The killed host's memory is uncharged asynchronously: the directory may be busy for a moment.
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (::rmdir(dir_.c_str()) == 0 || errno == ENOENT) return;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "could not remove the test's cgroup " << dir_ << ": " << std::strerror(errno);
  }
  LimitedCgroup(const LimitedCgroup&) = delete;
  LimitedCgroup& operator=(const LimitedCgroup&) = delete;

  [[nodiscard]] const std::string& skip_reason() const { return skip_; }
  [[nodiscard]] const fs::path& dir() const { return dir_; }
  [[nodiscard]] int version() const { return version_; }
  /// The OOM kills the kernel counted in this cgroup (v1 memory.oom_control, v2 memory.events).
  [[nodiscard]] std::optional<std::uint64_t> oom_kills() const {
    return keyed_value(read_text(dir_ / (version_ == 1 ? "memory.oom_control" : "memory.events")), "oom_kill");
  }

 private:
  bool make(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      skip_ = "cannot create the cgroup " + dir.string() + ": " + std::strerror(errno);
      return false;
    }
    dir_ = dir;
    return true;
  }

  std::string skip_;
  fs::path dir_;
  int version_ = 0;
};

}  // namespace

TEST(MemoryCaptureOom, AHostInALimitedCgroupLeavesAReadableCaptureBeforeTheOomKillerEndsIt) {
#ifndef RIPTIDE_PERF_TEST_OOM_HOST
  GTEST_SKIP() << "the host needs jemalloc's heap profiler: this build has RIPTIDE_PERF_JEMALLOC=OFF (asan/tsan "
                  "presets)";
#else
  riptide::test::TempDir captures{"riptide-oom-captures"};
  const LimitedCgroup cgroup;
  if (!cgroup.skip_reason().empty()) GTEST_SKIP() << cgroup.skip_reason();

  riptide::test::ChildProcess host;  // destroyed (killed, reaped) before the cgroup is removed
  host.start({RIPTIDE_PERF_TEST_OOM_HOST, (cgroup.dir() / "cgroup.procs").string(), captures.path().string(), "0.6"});
  ASSERT_TRUE(host.wait_for_output("CGROUP", 0, 20s)) << host.output();
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (host.running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(100ms);
  if (host.running()) {
    host.kill();
    FAIL() << "the host was not killed within 120 s; its output:\n" << host.output();
  }
  const int status = host.wait();
  const std::string output = host.output();
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "\n"
                                   << output;
  EXPECT_EQ(WTERMSIG(status), SIGKILL) << output;
  EXPECT_THAT(output, HasSubstr("CGROUP " + std::to_string(cgroup.version()) + " " + cgroup.dir().string()))
      << "the host's reader found the cgroup it joined";
  if (const auto kills = cgroup.oom_kills()) {
    EXPECT_GE(*kills, 1U) << "the kernel's OOM killer, not someone else";
  }

  const rp::CaptureStore store(captures.path(), {});
  const std::vector<rp::MemoryCapture> list = store.scan();
  ASSERT_EQ(list.size(), 1U) << "one crossing, one capture; host output:\n" << output;
  const rp::MemoryCapture& capture = list.front();
  EXPECT_EQ(capture.trigger, "cgroup_share");
  EXPECT_THAT(capture.reason, HasSubstr(">= 0.6 x memory limit (256.0 MiB)"));
  std::vector<std::string> files;
  for (const auto& file : capture.files) {
    files.push_back(file.name);
    EXPECT_EQ(fs::file_size(captures.path() / capture.name / file.name), file.bytes) << file.name;
  }
  EXPECT_THAT(
      files, ::testing::ElementsAre("heap.pb.gz", "snapshot.json", "leaks.json", "fragmentation.json", "capture.json"));

  const json manifest = json::parse(store.read(capture.name, "capture.json"));
  EXPECT_EQ(manifest["memory"]["cgroup"]["version"], cgroup.version());
  EXPECT_EQ(manifest["memory"]["cgroup"]["max_bytes"], kLimitBytes);
  EXPECT_GE(manifest["memory"]["cgroup"]["working_set_bytes"].get<std::uint64_t>(),
            manifest["memory"]["cgroup"]["threshold_bytes"].get<std::uint64_t>());
  const json snapshot = json::parse(store.read(capture.name, "snapshot.json"));
  EXPECT_GT(snapshot["rss_bytes"].get<std::uint64_t>(), 100ull << 20) << "taken when the host was large";
  const json leaks = json::parse(store.read(capture.name, "leaks.json"));
  EXPECT_TRUE(leaks.is_object());

  const char* pprof = std::getenv("RIPTIDE_PERF_TEST_PPROF");
  if (pprof == nullptr || !fs::exists(pprof)) GTEST_SKIP() << "pprof not built";
  const auto top = riptide::test::run_command("PPROF_TMPDIR=" + captures.path().string() + " " + pprof +
                                              " -top -sample_index=inuse_space " +
                                              (captures.path() / capture.name / "heap.pb.gz").string() + " 2>&1");
  EXPECT_EQ(top.status, 0) << top.output;
  EXPECT_THAT(top.output, HasSubstr("allocate_steadily")) << "the site that filled the cgroup";
#endif
}
