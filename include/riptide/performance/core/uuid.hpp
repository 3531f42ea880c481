#pragma once
// UUID version 4 session ids ("550e8400-e29b-41d4-a716-446655440000").

#include <string>
#include <string_view>

namespace riptide::performance {

/// A fresh random (version 4, variant 1) UUID in lower-case canonical text form.
[[nodiscard]] std::string make_uuid_v4();

/// True when `text` is a canonical version-4 UUID (either case).
[[nodiscard]] bool is_uuid_v4(std::string_view text) noexcept;

}  // namespace riptide::performance
