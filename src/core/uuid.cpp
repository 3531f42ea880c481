#include "riptide/performance/core/uuid.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <mutex>
#include <random>

namespace riptide::performance {
namespace {

std::array<std::uint8_t, 16> random_bytes() {
  // One seeded engine per process; ids are made rarely, so a lock is cheaper than per-thread seeding.
  static std::mutex mutex;
  static std::mt19937_64 engine{[] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
    return std::mt19937_64{seed};
  }()};
  std::array<std::uint8_t, 16> bytes{};
  const std::lock_guard lock(mutex);
  for (std::size_t i = 0; i < bytes.size(); i += 8) {
    std::uint64_t word = engine();
    for (std::size_t j = 0; j < 8; ++j) {
      bytes[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
    }
  }
  return bytes;
}

constexpr std::array<std::size_t, 4> kDashPositions{8, 13, 18, 23};

bool is_dash_position(std::size_t index) noexcept {
  for (const auto position : kDashPositions) {
    if (index == position) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string make_uuid_v4() {
  auto bytes = random_bytes();
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0FU) | 0x40U);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3FU) | 0x80U);  // variant 1 (RFC 4122)
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      text.push_back('-');
    }
    text.push_back(kHex[bytes[i] >> 4U]);
    text.push_back(kHex[bytes[i] & 0x0FU]);
  }
  return text;
}

bool is_uuid_v4(std::string_view text) noexcept {
  if (text.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (is_dash_position(i)) {
      if (c != '-') {
        return false;
      }
    } else if (std::isxdigit(static_cast<unsigned char>(c)) == 0) {
      return false;
    }
  }
  const char variant = static_cast<char>(std::tolower(static_cast<unsigned char>(text[19])));
  return text[14] == '4' && (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

}  // namespace riptide::performance
