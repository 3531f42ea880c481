#include "riptide/performance/cache/cache_stats.hpp"

#include <nlohmann/json.hpp>

namespace riptide::performance {

const char* to_string(CacheRemovalCause cause) noexcept {
  switch (cause) {
    case CacheRemovalCause::size:
      return "size";
    case CacheRemovalCause::rejected:
      return "rejected";
    case CacheRemovalCause::expired:
      return "expired";
    case CacheRemovalCause::explicit_:
      return "explicit";
    case CacheRemovalCause::replaced:
      return "replaced";
  }
  return "unknown";
}

double CacheStats::hit_ratio() const noexcept {
  if (requests == 0) return l1.hit_ratio();
  const std::uint64_t served = l1.hits + (l2 ? l2->hits : 0);
  return static_cast<double>(served) / static_cast<double>(requests);
}

nlohmann::json to_json(const CacheStats& stats) {
  const auto& l1 = stats.l1;
  nlohmann::json out{
      {"hit_ratio", stats.hit_ratio()},
      {"requests", stats.requests},
      {"loads", stats.loads},
      {"load_failures", stats.load_failures},
      {"coalesced_loads", stats.coalesced_loads},
      {"l1",
       {{"hits", l1.hits},
        {"misses", l1.misses},
        {"hit_ratio", l1.hit_ratio()},
        {"evictions", l1.evictions},
        {"rejected_admissions", l1.rejected_admissions},
        {"expirations", l1.expirations},
        {"entries", l1.entries},
        {"weight", l1.weight},
        {"max_weight", l1.max_weight},
        {"window_max_weight", l1.window_max_weight},
        {"shards", l1.shards}}},
      {"l2", nullptr},
  };
  if (stats.l2) {
    const auto& l2 = *stats.l2;
    out["l2"] = {
        {"hits", l2.hits},     {"misses", l2.misses},       {"hit_ratio", l2.hit_ratio()},      {"writes", l2.writes},
        {"errors", l2.errors}, {"available", l2.available}, {"breaker_opens", l2.breaker_opens}};
  }
  return out;
}

namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

std::string escape_label(const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return escaped;
}

template <typename T>
void sample(std::string& out, const char* name, const std::string& labels, T value) {
  out += name;
  out += '{';
  out += labels;
  out += "} ";
  if constexpr (std::is_floating_point_v<T>) {
    out += nlohmann::json(value).dump();
  } else {
    out += std::to_string(value);
  }
  out += '\n';
}

}  // namespace

std::string to_prometheus(const CacheStats& stats, const std::string& cache) {
  const std::string c = "cache=\"" + escape_label(cache) + "\"";
  const std::string l1 = c + ",layer=\"l1\"";
  const std::string l2 = c + ",layer=\"l2\"";
  std::string out;
  family(out, "riptide_cache_hits_total", "counter", "Cache lookups that found a live entry.");
  sample(out, "riptide_cache_hits_total", l1, stats.l1.hits);
  if (stats.l2) sample(out, "riptide_cache_hits_total", l2, stats.l2->hits);
  family(out, "riptide_cache_misses_total", "counter", "Cache lookups that found nothing.");
  sample(out, "riptide_cache_misses_total", l1, stats.l1.misses);
  if (stats.l2) sample(out, "riptide_cache_misses_total", l2, stats.l2->misses);
  family(out, "riptide_cache_evictions_total", "counter", "Entries removed to respect the weight bound.");
  sample(out, "riptide_cache_evictions_total", l1, stats.l1.evictions);
  family(out, "riptide_cache_rejected_admissions_total", "counter",
         "New entries refused by the TinyLFU admission filter.");
  sample(out, "riptide_cache_rejected_admissions_total", l1, stats.l1.rejected_admissions);
  family(out, "riptide_cache_expirations_total", "counter", "Entries removed because their TTL passed.");
  sample(out, "riptide_cache_expirations_total", l1, stats.l1.expirations);
  family(out, "riptide_cache_entries", "gauge", "Entries resident in the in-process cache.");
  sample(out, "riptide_cache_entries", l1, stats.l1.entries);
  family(out, "riptide_cache_weight", "gauge", "Sum of resident entry weights (bytes when weighed by size).");
  sample(out, "riptide_cache_weight", l1, stats.l1.weight);
  family(out, "riptide_cache_max_weight", "gauge", "Configured bound on the sum of weights.");
  sample(out, "riptide_cache_max_weight", l1, stats.l1.max_weight);
  family(out, "riptide_cache_hit_ratio", "gauge", "Share of requests served from the cache since start.");
  sample(out, "riptide_cache_hit_ratio", c, stats.hit_ratio());
  family(out, "riptide_cache_loads_total", "counter", "Loader calls made on misses by get_or_load.");
  sample(out, "riptide_cache_loads_total", c, stats.loads);
  family(out, "riptide_cache_load_failures_total", "counter", "Loader calls that threw or returned nothing.");
  sample(out, "riptide_cache_load_failures_total", c, stats.load_failures);
  if (stats.l2) {
    family(out, "riptide_cache_errors_total", "counter", "Redis calls without a usable answer.");
    sample(out, "riptide_cache_errors_total", l2, stats.l2->errors);
    family(out, "riptide_cache_l2_available", "gauge", "1 while the Redis layer accepts calls (breaker closed).");
    sample(out, "riptide_cache_l2_available", c, stats.l2->available ? 1 : 0);
  }
  return out;
}

}  // namespace riptide::performance
