#include "riptide/performance/core/logger.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace riptide::performance {
namespace {

std::shared_ptr<spdlog::logger> make_default_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto created = std::make_shared<spdlog::logger>(kLoggerName, std::move(sink));
  created->set_level(spdlog::level::info);
  return created;
}

struct LoggerSlot {
  std::mutex mutex;
  std::shared_ptr<spdlog::logger> current = make_default_logger();
};

LoggerSlot& slot() {
  static LoggerSlot instance;
  return instance;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  auto& s = slot();
  const std::lock_guard lock(s.mutex);
  return s.current;
}

void set_logger(std::shared_ptr<spdlog::logger> replacement) {
  auto& s = slot();
  const std::lock_guard lock(s.mutex);
  s.current = replacement ? std::move(replacement) : make_default_logger();
}

}  // namespace riptide::performance
