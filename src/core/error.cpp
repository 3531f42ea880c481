#include "riptide/performance/core/error.hpp"

#include <utility>

namespace riptide::performance {
namespace {

std::string compose_message(const ConfigError::Details& d) {
  std::string message = d.source.empty() ? std::string("configuration") : d.source;
  message += ": ";
  message += d.key;
  if (!d.value.empty()) {
    message += " = ";
    message += d.value;
  }
  message += ": ";
  message += d.problem;
  if (!d.accepted.empty()) {
    message += " (accepted: ";
    message += d.accepted;
    message += ")";
  }
  return message;
}

}  // namespace

ConfigError::ConfigError(Details details) : Error(compose_message(details)), details_(std::move(details)) {}

}  // namespace riptide::performance
