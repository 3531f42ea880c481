#include "riptide/performance/timing/target_checker.hpp"

#include <cmath>
#include <cstdio>

namespace riptide::performance {
namespace {

std::string format_number(double value) {
  char buffer[64];
  if (std::nearbyint(value) == value && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f", value);
  }
  return buffer;
}

std::string format_measured(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  return buffer;
}

std::string format_percent_of(double ratio) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.0f%%", std::floor(ratio * 100.0));
  return buffer;
}

// `what` reads as the subject ("p50 latency"), `unit` follows numbers (" ms", "%").
TargetCheck check_ceiling(const char* key, const char* what, const char* unit, std::optional<double> measured,
                          double limit) {
  TargetCheck check{key, TargetState::not_measured, measured, limit, {}};
  const std::string target_text = format_number(limit) + unit;
  if (!measured) {
    check.message = std::string(what) + " not measured yet (target " + target_text + ")";
    return check;
  }
  const std::string value_text = format_measured(*measured) + unit;
  if (*measured > limit) {
    check.state = TargetState::violated;
    check.message = std::string(what) + " is " + value_text + ", above the target of " + target_text;
  } else if (limit > 0 && *measured >= TargetChecker::kWarningRatio * limit) {
    check.state = TargetState::warning;
    check.message = std::string(what) + " is " + value_text + ", " + format_percent_of(*measured / limit) +
                    " of the target of " + target_text;
  } else {
    check.state = TargetState::met;
    check.message = std::string(what) + " is " + value_text + ", within the target of " + target_text;
  }
  return check;
}

TargetCheck check_floor(const char* key, const char* what, const char* unit, std::optional<double> measured,
                        double floor) {
  TargetCheck check{key, TargetState::not_measured, measured, floor, {}};
  const std::string target_text = format_number(floor) + unit;
  if (!measured) {
    check.message = std::string(what) + " not measured yet (target at least " + target_text + ")";
    return check;
  }
  const std::string value_text = format_measured(*measured) + unit;
  if (*measured < floor) {
    check.state = TargetState::violated;
    check.message = std::string(what) + " is " + value_text + ", below the target of " + target_text;
  } else if (floor > 0 && floor >= TargetChecker::kWarningRatio * *measured) {
    check.state = TargetState::warning;
    char above[32];
    std::snprintf(above, sizeof above, "%.0f%%", std::floor((*measured / floor - 1.0) * 100.0));
    check.message = std::string(what) + " is " + value_text + ", only " + above + " above the target of " + target_text;
  } else {
    check.state = TargetState::met;
    check.message = std::string(what) + " is " + value_text + ", meeting the target of " + target_text;
  }
  return check;
}

}  // namespace

const char* to_string(TargetState state) noexcept {
  switch (state) {
    case TargetState::met:
      return "met";
    case TargetState::warning:
      return "warning";
    case TargetState::violated:
      return "violated";
    case TargetState::not_measured:
      return "not_measured";
  }
  return "unknown";
}

TargetStatus TargetChecker::check(const TargetMeasurements& m) const {
  TargetStatus status;
  status.checks.push_back(check_ceiling("p50_latency_ms", "p50 latency", " ms", m.p50_latency_ms,
                                        static_cast<double>(targets_.p50_latency_ms)));
  status.checks.push_back(check_ceiling("p95_latency_ms", "p95 latency", " ms", m.p95_latency_ms,
                                        static_cast<double>(targets_.p95_latency_ms)));
  TargetCheck memory = check_ceiling("max_memory_mb", "memory (RSS)", " MB", m.memory_rss_mb,
                                     static_cast<double>(targets_.max_memory_mb));
  if (m.memory_rss_mb && *m.memory_rss_mb > static_cast<double>(targets_.memory_alert_mb)) {
    status.memory_alert = true;
    memory.message +=
        " and the alert threshold of " + format_number(static_cast<double>(targets_.memory_alert_mb)) + " MB";
  }
  status.checks.push_back(std::move(memory));
  status.checks.push_back(
      check_floor("min_throughput_pps", "throughput", " pages/s", m.throughput_pps, targets_.min_throughput_pps));
  status.checks.push_back(check_ceiling("max_ai_overhead_percent", "AI overhead", "%", m.ai_overhead_percent,
                                        targets_.max_ai_overhead_percent));
  for (const auto& check : status.checks) {
    if (check.state == TargetState::violated) {
      status.violations.push_back(check.message);
    } else if (check.state == TargetState::warning) {
      status.warnings.push_back(check.message);
    }
  }
  status.all_targets_met = status.violations.empty();
  return status;
}

}  // namespace riptide::performance
