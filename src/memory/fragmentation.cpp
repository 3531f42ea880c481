#include "riptide/performance/memory/fragmentation.hpp"

#include <algorithm>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/prometheus_writer.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"

namespace riptide::performance {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
// A cause is worth a recommendation when it holds this much, and at least a tenth of the memory the OS
// charges: less is not worth a setting that trades speed for it.
constexpr std::uint64_t kWorthBytes = 32 * kMiB;
constexpr std::uint64_t kShareDivisor = 10;  // a tenth of RSS
constexpr double kPoorUtilization = 0.5;
// jemalloc's default: 4 arenas per CPU.
constexpr unsigned kDefaultArenasPerCpu = 4;

std::string mebibytes(std::uint64_t bytes) {
  const double mib = static_cast<double>(bytes) / static_cast<double>(kMiB);
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", mib);
  return text;
}

std::string percent(double share) {
  return std::to_string(static_cast<int>(share * 100.0 + 0.5)) + "%";
}

bool worth(std::uint64_t bytes, std::uint64_t basis) {
  return bytes >= kWorthBytes && bytes >= basis / kShareDivisor;
}

std::vector<SizeClassUtilization> small_classes(const MemorySnapshot& snapshot) {
  std::vector<SizeClassUtilization> classes;
  if (!snapshot.size_classes) return classes;
  for (const SizeClassStats& stats : *snapshot.size_classes) {
    if (stats.large || stats.slabs == 0) continue;
    SizeClassUtilization c;
    c.size = stats.size;
    c.live_objects = stats.current;
    c.slabs = stats.slabs;
    c.regions_per_slab = stats.regions_per_slab;
    c.slab_bytes = stats.slabs * stats.slab_size;
    c.live_bytes = stats.current * stats.size;
    c.wasted_bytes = c.slab_bytes > c.live_bytes ? c.slab_bytes - c.live_bytes : 0;
    const std::uint64_t capacity = stats.slabs * stats.regions_per_slab;
    c.utilization =
        capacity > 0 ? std::min(1.0, static_cast<double>(stats.current) / static_cast<double>(capacity)) : 1.0;
    classes.push_back(c);
  }
  return classes;
}

void advise_on_dirty_pages(FragmentationReport& report, const AllocatorTuning& tuning, std::uint64_t basis) {
  if (!worth(report.dirty_bytes, basis)) return;
  const std::string held = mebibytes(report.dirty_bytes) + " of freed pages are still resident";
  report.recommendations.push_back(
      {"POST /metrics/memory/gc",
       held + " (jemalloc keeps them for reuse until they decay): a purge returns them to the OS now",
       report.dirty_bytes});
  if (tuning.background_thread.has_value() && !*tuning.background_thread) {
    report.recommendations.push_back(
        {"background_thread:true",
         held + ", and no background thread purges them: without one, an arena decays its pages only when the "
                "program allocates or frees in it, so a quiet arena keeps them",
         report.dirty_bytes});
  }
  if (tuning.dirty_decay_ms.has_value() && (*tuning.dirty_decay_ms < 0 || *tuning.dirty_decay_ms > 1000)) {
    report.recommendations.push_back(
        {"dirty_decay_ms:1000",
         held + "; dirty_decay_ms is " + std::to_string(*tuning.dirty_decay_ms) +
             " ms: 1000 returns freed pages after about a second (more page faults if the program reuses them)",
         report.dirty_bytes});
  }
}

void advise_on_muzzy_pages(FragmentationReport& report, const AllocatorTuning& tuning, std::uint64_t basis) {
  if (!worth(report.muzzy_bytes, basis)) return;
  if (tuning.muzzy_decay_ms.has_value() && *tuning.muzzy_decay_ms == 0) return;
  report.recommendations.push_back(
      {"muzzy_decay_ms:0",
       mebibytes(report.muzzy_bytes) +
           " of pages are advised free (MADV_FREE) and count in RSS until the kernel needs them: muzzy_decay_ms:0 "
           "returns them at once",
       report.muzzy_bytes});
}

void advise_on_partly_used_slabs(FragmentationReport& report, const AllocatorTuning& tuning, std::uint64_t basis) {
  if (report.worst_classes.empty() || !worth(report.small_wasted_bytes, basis)) return;
  const SizeClassUtilization& worst = report.worst_classes.front();
  if (worst.utilization >= kPoorUtilization) return;
  report.recommendations.push_back(
      {"objects of " + std::to_string(worst.size) + " B",
       std::to_string(worst.slabs) + " slabs of the " + std::to_string(worst.size) + " B class are " +
           percent(worst.utilization) + " used, holding " + mebibytes(worst.wasted_bytes) +
           " of free slots: objects freed from a large population leave their slabs partly used, and a slab "
           "goes back to the OS only when it is empty, so a purge does not help. Keep long-lived objects of "
           "this size apart from short-lived ones (a pool, or an arena of their own), or free them in the "
           "order they were allocated",
       worst.wasted_bytes});
  const unsigned expected_arenas = kDefaultArenasPerCpu * std::max(1U, tuning.cpus);
  if (tuning.arenas.has_value() && *tuning.arenas > std::max(1U, tuning.cpus)) {
    report.recommendations.push_back(
        {"narenas:" + std::to_string(std::max(1U, tuning.cpus)),
         std::to_string(*tuning.arenas) + " arenas (jemalloc's default is " + std::to_string(expected_arenas) +
             " here) each keep their own partly used slabs of every class; fewer arenas share them, at some "
             "cost in contention between threads",
         report.small_wasted_bytes});
  }
}

}  // namespace

AllocatorTuning AllocatorTuning::read() {
  AllocatorTuning tuning;
  tuning.cpus = std::max(1U, std::thread::hardware_concurrency());
  if (!JemallocCtl::usable()) return tuning;
  // ssize_t values: read as 64-bit words (two's complement), as mallctl writes them.
  if (const auto dirty = JemallocCtl::read_u64("opt.dirty_decay_ms")) {
    tuning.dirty_decay_ms = static_cast<std::int64_t>(*dirty);
  }
  if (const auto muzzy = JemallocCtl::read_u64("opt.muzzy_decay_ms")) {
    tuning.muzzy_decay_ms = static_cast<std::int64_t>(*muzzy);
  }
  tuning.background_thread = JemallocCtl::read_bool("background_thread");
  tuning.arenas = JemallocCtl::read_u32("arenas.narenas");
  return tuning;
}

FragmentationReport assess_fragmentation(const MemorySnapshot& snapshot, const AllocatorTuning& tuning) {
  FragmentationReport report;
  if (snapshot.allocator != "jemalloc" || !snapshot.resident_bytes || !snapshot.active_bytes || !snapshot.heap_bytes ||
      !snapshot.metadata_bytes) {
    report.reason = "needs jemalloc's statistics (allocator: " + snapshot.allocator +
                    "); run with jemalloc as the allocator and profiling.jemalloc_stats on";
    return report;
  }
  report.available = true;
  report.rss_bytes = snapshot.rss_bytes;
  report.resident_bytes = *snapshot.resident_bytes;
  report.active_bytes = *snapshot.active_bytes;
  report.allocated_bytes = *snapshot.heap_bytes;
  report.metadata_bytes = *snapshot.metadata_bytes;
  report.dirty_bytes = snapshot.dirty_bytes.value_or(0);
  report.muzzy_bytes = snapshot.muzzy_bytes.value_or(0);
  report.retained_bytes = snapshot.retained_bytes.value_or(0);
  report.page_free_bytes =
      report.active_bytes > report.allocated_bytes ? report.active_bytes - report.allocated_bytes : 0;
  if (snapshot.rss_bytes) {
    report.outside_allocator_bytes =
        static_cast<std::int64_t>(*snapshot.rss_bytes) - static_cast<std::int64_t>(report.resident_bytes);
  }
  report.fragmentation_ratio =
      report.resident_bytes > 0
          ? std::clamp(1.0 - static_cast<double>(report.allocated_bytes) / static_cast<double>(report.resident_bytes),
                       0.0, 1.0)
          : 0.0;
  std::vector<SizeClassUtilization> classes = small_classes(snapshot);
  for (const auto& c : classes) report.small_wasted_bytes += c.wasted_bytes;
  std::sort(classes.begin(), classes.end(), [](const SizeClassUtilization& a, const SizeClassUtilization& b) {
    return a.wasted_bytes > b.wasted_bytes;
  });
  if (classes.size() > FragmentationReport::kWorstClasses) classes.resize(FragmentationReport::kWorstClasses);
  report.worst_classes = std::move(classes);
  const std::uint64_t basis = snapshot.rss_bytes.value_or(report.resident_bytes);
  advise_on_dirty_pages(report, tuning, basis);
  advise_on_muzzy_pages(report, tuning, basis);
  advise_on_partly_used_slabs(report, tuning, basis);
  return report;
}

void to_json(nlohmann::json& json, const FragmentationReport& report) {
  json = nlohmann::json::object();
  json["available"] = report.available;
  if (!report.available) {
    json["reason"] = report.reason;
    return;
  }
  json["rss_bytes"] = report.rss_bytes ? nlohmann::json(*report.rss_bytes) : nlohmann::json(nullptr);
  json["reconciliation"] = {
      {"allocated_bytes", report.allocated_bytes},
      {"page_free_bytes", report.page_free_bytes},
      {"dirty_bytes", report.dirty_bytes},
      {"muzzy_bytes", report.muzzy_bytes},
      {"metadata_bytes", report.metadata_bytes},
      {"active_bytes", report.active_bytes},
      {"resident_bytes", report.resident_bytes},
      {"outside_allocator_bytes",
       report.outside_allocator_bytes ? nlohmann::json(*report.outside_allocator_bytes) : nlohmann::json(nullptr)},
      {"retained_bytes", report.retained_bytes},
  };
  json["small_wasted_bytes"] = report.small_wasted_bytes;
  json["fragmentation_ratio"] = report.fragmentation_ratio;
  auto& worst = json["worst_size_classes"] = nlohmann::json::array();
  for (const auto& c : report.worst_classes) {
    worst.push_back({{"size", c.size},
                     {"live_objects", c.live_objects},
                     {"slabs", c.slabs},
                     {"regions_per_slab", c.regions_per_slab},
                     {"slab_bytes", c.slab_bytes},
                     {"live_bytes", c.live_bytes},
                     {"wasted_bytes", c.wasted_bytes},
                     {"utilization", c.utilization}});
  }
  auto& advice = json["recommendations"] = nlohmann::json::array();
  for (const auto& a : report.recommendations) {
    advice.push_back({{"setting", a.setting}, {"reason", a.reason}, {"up_to_bytes", a.up_to_bytes}});
  }
}

void write_prometheus(PrometheusWriter& out, const FragmentationReport& report) {
  if (!report.available) return;
  out.family("memory_fragmentation_ratio", MetricType::gauge,
             "1 - allocated / resident: share of jemalloc's resident memory not holding the program's objects.");
  out.sample(report.fragmentation_ratio);
  out.family("memory_page_free_bytes", MetricType::gauge,
             "Free space inside jemalloc's active pages (active - allocated): partly used slabs, size-class rounding.");
  out.sample(report.page_free_bytes);
  if (report.outside_allocator_bytes) {
    out.family("memory_outside_allocator_bytes", MetricType::gauge,
               "RSS not resident in jemalloc's mappings: code, stacks, other libraries' memory.");
    out.sample(static_cast<double>(*report.outside_allocator_bytes));
  }
  out.family("jemalloc_dirty_bytes", MetricType::gauge,
             "Freed pages jemalloc keeps for reuse, still resident until they decay or a purge.");
  out.sample(report.dirty_bytes);
  out.family("jemalloc_muzzy_bytes", MetricType::gauge,
             "Pages advised free (MADV_FREE): in RSS until the kernel reclaims them.");
  out.sample(report.muzzy_bytes);
  if (report.worst_classes.empty()) return;
  out.family("size_class_wasted_bytes", MetricType::gauge,
             "Free slots in the slabs of the small size classes that waste the most (slab bytes - live bytes).");
  for (const auto& c : report.worst_classes) out.sample(c.wasted_bytes, {{"size", std::to_string(c.size)}});
  out.family("size_class_utilization", MetricType::gauge,
             "Share of the slots in use in the slabs of those size classes (live objects / slab capacity).");
  for (const auto& c : report.worst_classes) out.sample(c.utilization, {{"size", std::to_string(c.size)}});
}

}  // namespace riptide::performance
