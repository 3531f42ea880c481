// Ranges of every key and the relations between keys, reported against where each value came from.
#include <cmath>
#include <string>

#include "config_schema.hpp"

namespace riptide::performance {
namespace detail {
namespace {

constexpr double kMaxSnapshots = 1'000'000;            // ~100 MB of history at ~100 bytes per snapshot
constexpr double kMaxSiteHistoryPoints = 100'000'000;  // ~800 MB of leak history at 8 bytes per point

class Checker {
 public:
  Checker(const Config& config, const Origins& origins, std::string_view fallback)
      : config_(config), origins_(origins), fallback_(fallback) {}

  void ranges() const {
    for (const Field& field : fields()) {
      if (field.is_alias()) {
        continue;
      }
      if (auto problem = value_problem(field, read(config_, field))) {
        const Origin o = origin(field.dotted());
        throw make_error(o.source, field.dotted(), o.written, *problem,
                         accepted_form(field, o.layer == kLayerEnvironment));
      }
    }
  }

  void relations() const {
    const auto& t = config_.targets;
    const auto& m = config_.monitoring;
    const auto& l = config_.limits;
    at_least("targets.p50_latency_ms", "targets.p95_latency_ms", t.p95_latency_ms >= t.p50_latency_ms);
    at_least("targets.max_memory_mb", "targets.memory_alert_mb", t.memory_alert_mb >= t.max_memory_mb);
    at_least("monitoring.sample_interval_sec", "monitoring.history_sec", m.history_sec >= m.sample_interval_sec);
    at_least("monitoring.sample_interval_sec", "monitoring.long_history_interval_sec",
             m.long_history_interval_sec >= m.sample_interval_sec);
    if (m.long_history_sec != 0 && m.long_history_sec < m.long_history_interval_sec) {
      fail("monitoring.long_history_interval_sec", "monitoring.long_history_sec",
           "must be at most monitoring.long_history_sec", "must be 0 or at least monitoring.long_history_interval_sec",
           "monitoring.long_history_sec = 0 (no downsampled history) or >= monitoring.long_history_interval_sec");
    }
    bounded_count("monitoring.sample_interval_sec", "monitoring.history_sec", m.history_sec / m.sample_interval_sec);
    if (m.long_history_sec != 0) {
      bounded_count("monitoring.long_history_interval_sec", "monitoring.long_history_sec",
                    m.long_history_sec / m.long_history_interval_sec);
    }
    const auto& p = config_.profiling;
    at_least("profiling.leak_min_observations", "profiling.max_history_per_site",
             p.max_history_per_site >= p.leak_min_observations);
    bounded_count("profiling.max_tracked_sites", "profiling.max_history_per_site",
                  static_cast<double>(p.max_tracked_sites) * p.max_history_per_site, kMaxSiteHistoryPoints, " x ");
    at_least("limits.circuit_breaker_min_calls", "limits.circuit_breaker_window",
             l.circuit_breaker_window >= l.circuit_breaker_min_calls);
    if (l.distributed && config_.redis.url.empty()) {
      fail("redis.url", "limits.distributed", "is empty, but limits.distributed needs it",
           "needs a Redis server in redis.url", "limits.distributed = false, or a redis.url");
    }
  }

 private:
  Origin origin(const std::string& dotted) const {
    if (const auto it = origins_.find(dotted); it != origins_.end()) {
      return it->second;
    }
    return Origin{std::string(fallback_), 0, to_toml_literal(read(config_, *find_field(dotted)))};
  }

  std::string describe(const std::string& dotted) const {
    const Origin o = origin(dotted);
    return dotted + " (" + o.written + ", from " + o.source + ")";
  }

  // `high` must be >= `low`.
  void at_least(const std::string& low, const std::string& high, bool holds) const {
    if (!holds) {
      fail(low, high, "must be at most " + high, "must be at least " + low, high + " >= " + low);
    }
  }

  void bounded_count(const std::string& interval, const std::string& span, double count, double limit = kMaxSnapshots,
                     const char* op = " / ") const {
    if (count > limit) {
      const std::string problem = "keeps " + message_number(std::ceil(count)) + " points with " + interval + " and " +
                                  span + ", more than " + message_number(limit);
      fail(interval, span, problem, problem, span + op + interval + " at most " + message_number(limit));
    }
  }

  // Blames the key set by the later layer (file < environment < code); on a tie the second key, `b`. The
  // problem then names the other key with its value and source: "(5000, from defaults)".
  [[noreturn]] void fail(const std::string& a, const std::string& b, const std::string& problem_of_a,
                         const std::string& problem_of_b, const std::string& accepted) const {
    const Origin oa = origin(a);
    const Origin ob = origin(b);
    const bool blame_a = oa.layer > ob.layer;
    const std::string& blamed = blame_a ? a : b;
    const Origin& o = blame_a ? oa : ob;
    const std::string problem = (blame_a ? problem_of_a : problem_of_b);
    const std::string other = describe(blame_a ? b : a);
    // Messages name the other key once: append its value and source to its first mention.
    std::string with_other = problem;
    const std::string other_key = blame_a ? b : a;
    if (const std::size_t at = with_other.find(other_key); at != std::string::npos) {
      with_other.replace(at, other_key.size(), other);
    } else {
      with_other += " (" + other + ")";
    }
    throw make_error(o.source, blamed, o.written, with_other, accepted);
  }

  const Config& config_;
  const Origins& origins_;
  std::string_view fallback_;
};

}  // namespace

void validate(const Config& config, const Origins& origins, std::string_view fallback_source) {
  const Checker checker(config, origins, fallback_source);
  checker.ranges();
  checker.relations();
}

}  // namespace detail

void Config::validate(std::string_view source) const {
  detail::validate(*this, {}, source);
}

}  // namespace riptide::performance
