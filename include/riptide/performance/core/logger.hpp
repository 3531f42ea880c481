#pragma once
// The library's logger: an spdlog logger named "riptide.performance". A host may hand in its own logger
// (any sinks, any level) and every component logs through it from then on.

#include <memory>

namespace spdlog {
class logger;
}

namespace riptide::performance {

inline constexpr const char* kLoggerName = "riptide.performance";

/// The current logger; never null. By default a colour stderr logger at level info.
[[nodiscard]] std::shared_ptr<spdlog::logger> logger();

/// Replaces the library's logger. Passing nullptr restores the default.
void set_logger(std::shared_ptr<spdlog::logger> replacement);

}  // namespace riptide::performance
