#pragma once
// An optional figure as JSON: its value, or null when it could not be measured (never a made-up 0). For the
// areas' to_json implementations; include it from .cpp files only (it pulls in all of nlohmann/json).

#include <nlohmann/json.hpp>

#include <optional>

namespace riptide::performance {

template <typename T>
[[nodiscard]] nlohmann::json optional_json(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace riptide::performance
