#include "riptide/performance/manager/memory_capture_monitor.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/manager/memory_bodies.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#endif

namespace riptide::performance {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

std::unique_ptr<CaptureStore> make_store(const ProfilingConfig& profiling) {
  if (profiling.capture_dir.empty()) return nullptr;
  try {
    return std::make_unique<CaptureStore>(profiling.capture_dir,
                                          CaptureStoreLimits{.max_captures = profiling.capture_max_files,
                                                             .min_free_bytes = profiling.capture_min_free_mb * kMiB,
                                                             .max_capture_bytes = profiling.capture_max_mb * kMiB});
  } catch (const Error& error) {
    throw ConfigError({.source = "PerformanceManager",
                       .key = "profiling.capture_dir",
                       .value = profiling.capture_dir,
                       .problem = error.what(),
                       .accepted = "a directory this process can create and write, or empty (no captures)"});
  }
}

CaptureThresholds thresholds_of(const Config& config) {
  CaptureThresholds thresholds;
  thresholds.rss_alert_bytes = config.targets.memory_alert_mb * kMiB;
  thresholds.cgroup_share = config.profiling.capture_cgroup_share;
  thresholds.min_interval = seconds_to_duration(config.profiling.capture_min_interval_sec);
  return thresholds;
}

nlohmann::json optional_bytes(const std::optional<std::uint64_t>& bytes) {
  return bytes ? nlohmann::json(*bytes) : nlohmann::json(nullptr);
}

// The figures the trigger saw, for the manifest: what a reader needs to judge the capture.
nlohmann::json figures_of(const std::optional<CaptureReading>& reading, const CaptureTrigger& trigger) {
  nlohmann::json memory = nlohmann::json::object();
  memory["rss_bytes"] = reading ? optional_bytes(reading->rss_bytes) : nlohmann::json(nullptr);
  memory["rss_alert_bytes"] = optional_bytes(trigger.thresholds().rss_alert_bytes);
  if (reading && reading->cgroup) {
    const CgroupMemoryReading& cgroup = *reading->cgroup;
    memory["cgroup"] = {{"version", cgroup.version},
                        {"usage_bytes", cgroup.usage_bytes},
                        {"inactive_file_bytes", cgroup.inactive_file_bytes},
                        {"working_set_bytes", cgroup.working_set_bytes()},
                        {"max_bytes", optional_bytes(cgroup.max_bytes)},
                        {"high_bytes", optional_bytes(cgroup.high_bytes)},
                        {"share", trigger.thresholds().cgroup_share},
                        {"threshold_bytes", optional_bytes(trigger.cgroup_threshold_bytes(cgroup))}};
  } else {
    memory["cgroup"] = nullptr;
  }
  return memory;
}

}  // namespace

void to_json(nlohmann::json& out, const CaptureStatus& status) {
  out = nlohmann::json::object();
  out["enabled"] = status.enabled;
  out["directory"] = status.enabled ? nlohmann::json(status.directory) : nlohmann::json(nullptr);
  out["max_captures"] = status.max_captures;
  out["rss_alert_bytes"] = optional_bytes(status.rss_alert_bytes);
  out["cgroup_share"] = status.cgroup_share;
  out["cgroup_available"] = status.cgroup_available;
  out["cgroup_unavailable_reason"] =
      status.cgroup_available ? nlohmann::json(nullptr) : nlohmann::json(status.cgroup_unavailable_reason);
  out["cgroup_threshold_bytes"] = optional_bytes(status.cgroup_threshold_bytes);
  out["armed"] = status.armed;
  out["written"] = status.written;
  out["skipped"] = status.skipped;
  out["failed"] = status.failed;
  out["last_problem"] = status.last_problem.empty() ? nlohmann::json(nullptr) : nlohmann::json(status.last_problem);
}

MemoryCaptureMonitor::MemoryCaptureMonitor(const Config& config, MemoryProfiler& profiler, std::string session_id,
                                           const Clock& clock, std::shared_ptr<PeriodicScheduler> scheduler,
                                           std::function<PerformanceTargets()> targets,
                                           const std::filesystem::path& cgroup_root)
    : config_(config),
      profiler_(profiler),
      session_id_(std::move(session_id)),
      clock_(clock),
      targets_(std::move(targets)),
      store_(make_store(config.profiling)),
      cgroup_(cgroup_root),
      trigger_(thresholds_of(config)),
      published_(std::make_shared<const std::vector<MemoryCapture>>()),
      worker_(
          std::move(scheduler), "riptide-captures",
          std::max(seconds_to_duration(config.monitoring.sample_interval_sec),
                   std::chrono::nanoseconds{std::chrono::milliseconds{10}}),
          [this] { check(); }, PeriodicWorker::FirstRun::immediately) {
  status_.enabled = store_ != nullptr;
  status_.directory = config.profiling.capture_dir;
  status_.max_captures = config.profiling.capture_max_files;
  status_.rss_alert_bytes = trigger_.thresholds().rss_alert_bytes;
  status_.cgroup_share = config.profiling.capture_cgroup_share;
  status_.cgroup_available = cgroup_.available();
  status_.cgroup_unavailable_reason = cgroup_.unavailable_reason();
  if (store_) publish_list();  // captures of earlier processes (the point of writing them)
}

MemoryCaptureMonitor::~MemoryCaptureMonitor() {
  worker_.stop();
}

void MemoryCaptureMonitor::start() {
  if (store_) worker_.start();
}

void MemoryCaptureMonitor::stop() noexcept {
  worker_.stop();
}

void MemoryCaptureMonitor::check() {
  if (!store_) return;
  const CaptureReading reading = read_memory(CgroupFailure::log_once);
  const std::lock_guard capture(capture_mutex_);
  trigger_.set_rss_alert_bytes(targets_().memory_alert_mb * kMiB);
  const std::optional<CaptureCause> cause = trigger_.observe(reading);
  {
    const std::lock_guard lock(status_mutex_);
    status_.rss_alert_bytes = trigger_.thresholds().rss_alert_bytes;
    status_.cgroup_threshold_bytes =
        reading.cgroup ? trigger_.cgroup_threshold_bytes(*reading.cgroup) : std::optional<std::uint64_t>{};
    status_.armed = trigger_.armed();
  }
  if (!cause) return;
  try {
    (void)write_locked(Cause{cause->trigger, cause->reason}, reading);
  } catch (const std::exception& error) {
    // The periodic job must not throw: the failure is counted, logged once and shown in the status.
    note_problem_locked(std::string("memory capture failed: ") + error.what(), true);
  }
}

CaptureOutcome MemoryCaptureMonitor::capture_now(const std::string& reason) {
  if (!store_) {
    return CaptureOutcome{.performed = false,
                          .reason = "captures are off: set profiling.capture_dir to a writable directory",
                          .capture = std::nullopt,
                          .removed = {}};
  }
  const CaptureReading reading = read_memory(CgroupFailure::ignore);
  const std::lock_guard capture(capture_mutex_);
  try {
    return write_locked(Cause{"manual", reason.empty() ? std::string("capture_now()") : reason}, reading);
  } catch (const std::exception& error) {
    note_problem_locked(std::string("memory capture failed: ") + error.what(), true);
    throw;
  }
}

CaptureReading MemoryCaptureMonitor::read_memory(CgroupFailure on_failure) {
  CaptureReading reading;
  reading.time = clock_.steady_now();
  reading.rss_bytes = profiler_.latest_snapshot()->rss_bytes;
  if (!cgroup_.available()) return reading;
  try {
    reading.cgroup = cgroup_.read();
    if (on_failure == CgroupFailure::log_once) cgroup_error_logged_ = false;
  } catch (const Error& error) {
    // A cgroup file that cannot be read or parsed costs the cgroup threshold, not the RSS one.
    if (on_failure == CgroupFailure::log_once && !cgroup_error_logged_) {
      logger()->warn("memory captures: cgroup reading failed: {}", error.what());
      cgroup_error_logged_ = true;
    }
  }
  return reading;
}

CaptureOutcome MemoryCaptureMonitor::write_locked(const Cause& cause, const std::optional<CaptureReading>& reading) {
  CaptureContents contents;
  contents.trigger = cause.trigger;
  contents.reason = cause.reason;
  contents.time = clock_.system_now();
  nlohmann::json extra = nlohmann::json::object();
  extra["session_id"] = session_id_;
  extra["pid"] = static_cast<std::int64_t>(::getpid());
  extra["memory"] = figures_of(reading, trigger_);
  // An attempt, written or not, starts the interval: a full disk is not retried at every check.
  trigger_.note_capture(reading ? reading->time : clock_.steady_now());

  // The heap profile first: it is the file that matters most, and the JSON bodies below describe the
  // moment right after it.
  std::string heap_problem;
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (!HeapProfilingControl::available()) {
    heap_problem = "heap profiling is off in this process: " + HeapProfilingControl::status().reason +
                   "; fix: " + HeapProfilingControl::status().fix;
  } else if (const auto profiles = profiler_.heap_profiles(); !profiles) {
    heap_problem = "heap profiles are off (profiling.enabled = false)";
  } else {
    auto profile = profiles->refresh();
    if (profile) {
      contents.files.emplace_back("heap.pb.gz", write_pprof_heap_profile(*profile.value(), Symbolizer::shared()));
    } else {
      heap_problem = profile.error().to_string();
    }
  }
#else
  heap_problem = "heap profiles are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON";
#endif
  extra["heap_profile_unavailable_reason"] =
      heap_problem.empty() ? nlohmann::json(nullptr) : nlohmann::json(heap_problem);

  contents.files.emplace_back("snapshot.json", memory_snapshot_body(profiler_, session_id_).dump(2) + "\n");
  const MemoryState state = profiler_.assess(targets_());
  const LeakReportBody leaks = leak_report_body(state, session_id_);
  const nlohmann::json leaks_json =
      leaks.body ? *leaks.body
                 : nlohmann::json{{"error", {{"code", "unavailable"}, {"message", leaks.unavailable_reason}}}};
  contents.files.emplace_back("leaks.json", leaks_json.dump(2) + "\n");
  // Where RSS went at that moment: what a person asks first after an OOM kill of a process whose heap
  // looked small.
  contents.files.emplace_back("fragmentation.json", nlohmann::json(state.fragmentation).dump(2) + "\n");
  contents.manifest_extra = std::move(extra);

  CaptureOutcome outcome = store_->write(contents);
  if (!outcome.performed) {
    note_problem_locked("memory capture skipped: " + outcome.reason, false);
    return outcome;
  }
  logger()->warn("memory capture written: {} ({}; {} bytes)", (store_->directory() / outcome.capture->name).string(),
                 cause.reason, outcome.capture->bytes);
  for (const auto& removed : outcome.removed) {
    logger()->info("memory capture {} removed: profiling.capture_max_files = {}", removed,
                   config_.profiling.capture_max_files);
  }
  {
    const std::lock_guard lock(status_mutex_);
    ++status_.written;
    status_.last_problem.clear();
    status_.armed = trigger_.armed();
  }
  publish_list();
  return outcome;
}

void MemoryCaptureMonitor::note_problem_locked(const std::string& problem, bool failure) {
  bool repeated = false;
  {
    const std::lock_guard lock(status_mutex_);
    ++(failure ? status_.failed : status_.skipped);
    repeated = status_.last_problem == problem;
    status_.last_problem = problem;
    status_.armed = trigger_.armed();
  }
  // Logged once until something changes: a full disk must not fill the log as well.
  if (!repeated) logger()->error("{}", problem);
}

void MemoryCaptureMonitor::publish_list() {
  auto list = std::make_shared<const std::vector<MemoryCapture>>(store_->scan());
  const std::lock_guard lock(published_mutex_);
  published_ = std::move(list);
}

std::shared_ptr<const std::vector<MemoryCapture>> MemoryCaptureMonitor::captures() const {
  const std::lock_guard lock(published_mutex_);
  return published_;
}

CaptureStatus MemoryCaptureMonitor::status() const {
  const std::lock_guard lock(status_mutex_);
  return status_;
}

CaptureFileContents MemoryCaptureMonitor::read_file(const std::string& name, const std::string& file) const {
  CaptureFileContents out;
  const auto list = captures();
  const auto capture = std::find_if(list->begin(), list->end(), [&](const MemoryCapture& c) { return c.name == name; });
  if (capture == list->end()) {
    out.status = CaptureFileContents::Status::unknown_capture;
    out.message = "no capture named '" + name + "'; GET /metrics/memory/captures lists them";
    return out;
  }
  const bool listed =
      std::any_of(capture->files.begin(), capture->files.end(), [&](const CaptureFile& f) { return f.name == file; });
  if (!listed) {
    std::string names;
    for (const auto& f : capture->files) names += (names.empty() ? "" : ", ") + f.name;
    out.status = CaptureFileContents::Status::unknown_file;
    out.message = "capture '" + name + "' has no file '" + file + "'; its files: " + names;
    return out;
  }
  try {
    out.body = store_->read(name, file);
  } catch (const Error& error) {
    out.status = CaptureFileContents::Status::unreadable;
    out.message = error.what();
  }
  return out;
}

}  // namespace riptide::performance
