#pragma once
// The value every Redis command returns. Commands never throw: a server error, a dropped connection, an
// open breaker and a reply of the wrong type all come back as values that say what happened.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riptide::performance {

class RedisReply {
 public:
  enum class Type {
    nil,          ///< key absent (bulk nil or nil multi-bulk)
    integer,      ///< :<n>
    string,       ///< bulk string (binary-safe)
    status,       ///< +OK and similar simple strings
    array,        ///< multi-bulk; elements() holds the items
    error,        ///< -ERR from the server, or a reply type the caller did not expect
    unavailable,  ///< no answer: connect/IO failure, timeout, pool exhausted or breaker open
  };

  /// A default reply is nil, so a container of replies needs no special value.
  RedisReply() = default;

  [[nodiscard]] static RedisReply make_nil() { return RedisReply(Type::nil); }
  [[nodiscard]] static RedisReply make_integer(std::int64_t value) {
    RedisReply reply(Type::integer);
    reply.integer_ = value;
    return reply;
  }
  [[nodiscard]] static RedisReply make_string(std::string value) { return RedisReply(Type::string, std::move(value)); }
  [[nodiscard]] static RedisReply make_status(std::string value) { return RedisReply(Type::status, std::move(value)); }
  [[nodiscard]] static RedisReply make_array(std::vector<RedisReply> elements) {
    RedisReply reply(Type::array);
    reply.elements_ = std::move(elements);
    return reply;
  }
  [[nodiscard]] static RedisReply make_error(std::string message) {
    return RedisReply(Type::error, std::move(message));
  }
  [[nodiscard]] static RedisReply make_unavailable(std::string reason) {
    return RedisReply(Type::unavailable, std::move(reason));
  }

  [[nodiscard]] Type type() const noexcept { return type_; }
  [[nodiscard]] bool is_nil() const noexcept { return type_ == Type::nil; }
  [[nodiscard]] bool is_error() const noexcept { return type_ == Type::error; }
  [[nodiscard]] bool is_unavailable() const noexcept { return type_ == Type::unavailable; }
  /// The server answered with something other than an error.
  [[nodiscard]] bool ok() const noexcept { return type_ != Type::error && type_ != Type::unavailable; }

  /// The integer of an integer reply.
  [[nodiscard]] std::optional<std::int64_t> integer() const noexcept {
    return type_ == Type::integer ? std::optional<std::int64_t>(integer_) : std::nullopt;
  }
  /// Bytes of a string or status reply; the message of an error or unavailable reply; empty otherwise.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  /// Items of an array reply; empty otherwise.
  [[nodiscard]] const std::vector<RedisReply>& elements() const noexcept { return elements_; }

  /// This reply when it has type `expected` (errors and unavailable pass through unchanged so their
  /// message survives); otherwise an error reply naming both types.
  [[nodiscard]] RedisReply expect(Type expected) const {
    if (type_ == expected || !ok()) return *this;
    return make_error("expected a " + std::string(type_name(expected)) + " reply, got " +
                      std::string(type_name(type_)));
  }

  [[nodiscard]] static std::string_view type_name(Type type) noexcept {
    switch (type) {
      case Type::nil:
        return "nil";
      case Type::integer:
        return "integer";
      case Type::string:
        return "string";
      case Type::status:
        return "status";
      case Type::array:
        return "array";
      case Type::error:
        return "error";
      case Type::unavailable:
        return "unavailable";
    }
    return "unknown";
  }

 private:
  explicit RedisReply(Type type, std::string text = {}) : type_(type), text_(std::move(text)) {}

  Type type_ = Type::nil;
  std::int64_t integer_ = 0;
  std::string text_;
  std::vector<RedisReply> elements_;
};

}  // namespace riptide::performance
