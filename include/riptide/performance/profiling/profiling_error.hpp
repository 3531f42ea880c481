#pragma once
// How a heap-profiling operation failed, as a value: profiling queries never throw into the caller, and
// "not available" always comes with the reason and the fix.

#include <cstddef>
#include <string>
#include <utility>
#include <variant>

namespace riptide::performance {

enum class ProfilingErrorKind {
  unavailable,       ///< jemalloc or its profiler is not present/enabled in this process
  dump_failed,       ///< prof.dump refused (mallctl error code in the message)
  io,                ///< the private temporary file could not be created, read or removed
  parse,             ///< the heap dump text is not valid heap_v2
  invalid_argument,  ///< a caller-supplied value was out of range
  interrupted,       ///< the caller asked to stop while the operation waited (a server shutting down)
};

struct ProfilingError {
  ProfilingErrorKind kind = ProfilingErrorKind::unavailable;  ///< what class of failure, for callers to branch on
  std::string message;   ///< human-readable: what failed, with the value or line involved
  std::string fix;       ///< what to do about it (empty when there is nothing the caller can do)
  std::size_t line = 0;  ///< 1-based line of a parse error in the dump text; 0 for other kinds

  /// message, then " (fix: ...)" when a fix is known.
  [[nodiscard]] std::string to_string() const { return fix.empty() ? message : message + " (fix: " + fix + ")"; }
};

/// A value or a ProfilingError (std::expected is C++23).
template <typename T>
class ProfilingResult {
 public:
  ProfilingResult(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  ProfilingResult(ProfilingError error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  /// Precondition: ok().
  [[nodiscard]] T& value() & { return std::get<0>(state_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(state_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(state_)); }
  /// Precondition: !ok().
  [[nodiscard]] const ProfilingError& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, ProfilingError> state_;
};

}  // namespace riptide::performance
