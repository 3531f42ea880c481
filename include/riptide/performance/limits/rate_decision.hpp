#pragma once
// The answer of every rate limiter (local GCRA, keyed, distributed): enough to admit or refuse a request
// and to fill the usual RateLimit-* / Retry-After response headers.

#include <chrono>
#include <cstdint>

namespace riptide::performance {

struct RateDecision {
  /// Never, for a request larger than the burst: waiting cannot help it.
  static constexpr std::chrono::nanoseconds kNever = std::chrono::nanoseconds::max();

  bool allowed = false;                    ///< admit the request (cells were consumed) or refuse it (none were)
  std::uint64_t limit = 0;                 ///< burst capacity: the most cells ever admitted at once
  std::uint64_t remaining = 0;             ///< further single cells admissible right now after this decision
  std::chrono::nanoseconds retry_after{};  ///< when refused: wait this long before the same request fits
  std::chrono::nanoseconds reset_after{};  ///< until the limiter is back to a full burst if left alone

  explicit operator bool() const noexcept { return allowed; }
};

}  // namespace riptide::performance
