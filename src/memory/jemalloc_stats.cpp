#include "riptide/performance/memory/jemalloc_stats.hpp"

#include <string>

namespace riptide::performance {
namespace {

// Position of <j> in "stats.arenas.4096.bins.<j>.nmalloc" and of <j> in "arenas.bin.<j>.size".
constexpr std::size_t kStatsClassIndex = 4;
constexpr std::size_t kSizeClassIndex = 2;

enum FigureWidth { kU32, kSize };

// One figure per class ("arenas.bin.<j>.size", ".nregs", ".slab_size"); empty when any read fails.
std::vector<std::uint64_t> read_class_figures(const char* count_name, const char* figure_name, FigureWidth width) {
  std::vector<std::uint64_t> figures;
  const auto count = JemallocCtl::read_u32(count_name);
  const auto mib = JemallocCtl::mib(figure_name);
  if (!count || !mib.valid()) {
    return figures;
  }
  figures.reserve(*count);
  for (std::uint32_t j = 0; j < *count; ++j) {
    const auto indexed = mib.with_index(kSizeClassIndex, j);
    std::optional<std::uint64_t> figure;
    if (width == kU32) {
      if (const auto value = JemallocCtl::read_u32(indexed)) figure = *value;
    } else {
      figure = JemallocCtl::read_size(indexed);
    }
    if (!figure) {
      figures.clear();
      return figures;
    }
    figures.push_back(*figure);
  }
  return figures;
}

std::vector<std::uint64_t> read_class_sizes(const char* count_name, const char* size_name) {
  return read_class_figures(count_name, size_name, kSize);
}

}  // namespace

JemallocStats::JemallocStats() {
  if (!JemallocCtl::usable()) {
    return;
  }
  allocated_ = JemallocCtl::mib("stats.allocated");
  active_ = JemallocCtl::mib("stats.active");
  metadata_ = JemallocCtl::mib("stats.metadata");
  resident_ = JemallocCtl::mib("stats.resident");
  mapped_ = JemallocCtl::mib("stats.mapped");
  retained_ = JemallocCtl::mib("stats.retained");
  tcache_bytes_ = JemallocCtl::mib("stats.arenas.4096.tcache_bytes");
  dirty_pages_ = JemallocCtl::mib("stats.arenas.4096.pdirty");
  muzzy_pages_ = JemallocCtl::mib("stats.arenas.4096.pmuzzy");
  page_size_ = JemallocCtl::read_size("arenas.page").value_or(0);
  bin_slabs_ = JemallocCtl::mib("stats.arenas.4096.bins.0.curslabs");
  bin_sizes_ = read_class_sizes("arenas.nbins", "arenas.bin.0.size");
  large_sizes_ = read_class_sizes("arenas.nlextents", "arenas.lextent.0.size");
  bin_regions_ = read_class_figures("arenas.nbins", "arenas.bin.0.nregs", kU32);
  bin_slab_sizes_ = read_class_figures("arenas.nbins", "arenas.bin.0.slab_size", kSize);
  bin_mibs_ = {
      JemallocCtl::mib("stats.arenas.4096.bins.0.nmalloc"), JemallocCtl::mib("stats.arenas.4096.bins.0.ndalloc"),
      JemallocCtl::mib("stats.arenas.4096.bins.0.nrequests"), JemallocCtl::mib("stats.arenas.4096.bins.0.curregs")};
  large_mibs_ = {JemallocCtl::mib("stats.arenas.4096.lextents.0.nmalloc"),
                 JemallocCtl::mib("stats.arenas.4096.lextents.0.ndalloc"),
                 JemallocCtl::mib("stats.arenas.4096.lextents.0.nrequests"),
                 JemallocCtl::mib("stats.arenas.4096.lextents.0.curlextents")};
  large_nmalloc_ = JemallocCtl::mib("stats.arenas.4096.large.nmalloc");
  available_ = allocated_.valid() && active_.valid() && metadata_.valid() && resident_.valid() && mapped_.valid() &&
               retained_.valid();
}

std::optional<JemallocCounters> JemallocStats::read(bool with_size_classes) const {
  if (!available_) {
    return std::nullopt;
  }
  JemallocCounters counters;
  const auto allocated = JemallocCtl::read_size(allocated_);
  const auto active = JemallocCtl::read_size(active_);
  const auto metadata = JemallocCtl::read_size(metadata_);
  const auto resident = JemallocCtl::read_size(resident_);
  const auto mapped = JemallocCtl::read_size(mapped_);
  const auto retained = JemallocCtl::read_size(retained_);
  if (!allocated || !active || !metadata || !resident || !mapped || !retained) {
    return std::nullopt;
  }
  counters.allocated = *allocated;
  counters.active = *active;
  counters.metadata = *metadata;
  counters.resident = *resident;
  counters.mapped = *mapped;
  counters.retained = *retained;
  if (const auto cached = JemallocCtl::read_size(tcache_bytes_)) {
    counters.tcache_bytes = *cached;
  }
  if (page_size_ > 0) {
    if (const auto dirty = JemallocCtl::read_size(dirty_pages_)) counters.dirty_bytes = *dirty * page_size_;
    if (const auto muzzy = JemallocCtl::read_size(muzzy_pages_)) counters.muzzy_bytes = *muzzy * page_size_;
  }
  if (!with_size_classes) {
    return counters;
  }

  auto classes = std::make_shared<std::vector<SizeClassStats>>();
  classes->reserve(bin_sizes_.size() + 32);
  // `stop_after_nmalloc`: stop once the classes read account for that many allocations (the rest have none).
  const auto read_classes = [&](const std::vector<std::uint64_t>& sizes, const ClassMibs& mibs, bool large,
                                std::optional<std::uint64_t> stop_after_nmalloc) {
    if (!mibs.nmalloc.valid() || !mibs.ndalloc.valid() || !mibs.nrequests.valid() || !mibs.current.valid()) {
      return false;
    }
    std::uint64_t nmalloc_seen = 0;
    for (std::size_t j = 0; j < sizes.size(); ++j) {
      if (stop_after_nmalloc && nmalloc_seen >= *stop_after_nmalloc) {
        break;
      }
      const auto nmalloc = JemallocCtl::read_u64(mibs.nmalloc.with_index(kStatsClassIndex, j));
      if (!nmalloc) {
        return false;
      }
      nmalloc_seen += *nmalloc;
      if (*nmalloc == 0) {
        continue;  // never allocated: no frees, no requests, no current objects either
      }
      const auto ndalloc = JemallocCtl::read_u64(mibs.ndalloc.with_index(kStatsClassIndex, j));
      const auto nrequests = JemallocCtl::read_u64(mibs.nrequests.with_index(kStatsClassIndex, j));
      const auto current = JemallocCtl::read_size(mibs.current.with_index(kStatsClassIndex, j));
      if (!ndalloc || !nrequests || !current) {
        return false;
      }
      counters.allocation_count += *nmalloc;
      counters.deallocation_count += *ndalloc;
      counters.request_count += *nrequests;
      counters.total_allocated_bytes += sizes[j] * *nmalloc;
      counters.total_deallocated_bytes += sizes[j] * *ndalloc;
      SizeClassStats stats{sizes[j], large, *nmalloc, *ndalloc, *nrequests, *current};
      if (!large && j < bin_regions_.size() && j < bin_slab_sizes_.size()) {
        stats.slabs = JemallocCtl::read_size(bin_slabs_.with_index(kStatsClassIndex, j)).value_or(0);
        stats.regions_per_slab = bin_regions_[j];
        stats.slab_size = bin_slab_sizes_[j];
      }
      classes->push_back(stats);
    }
    return true;
  };
  // Both come from the same epoch, so the aggregate equals the sum over the large classes exactly.
  const auto large_nmalloc = JemallocCtl::read_u64(large_nmalloc_);
  if (!read_classes(bin_sizes_, bin_mibs_, false, std::nullopt) ||
      !read_classes(large_sizes_, large_mibs_, true, large_nmalloc)) {
    return std::nullopt;
  }
  counters.size_classes = std::move(classes);
  return counters;
}

}  // namespace riptide::performance
