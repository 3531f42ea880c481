#pragma once
// Private to the redis area (and the fuzz target that feeds it hiredis' own reader): the conversion of a
// hiredis reply tree into a RedisReply, kept out of redis_client.cpp's anonymous namespace so that
// tests/fuzz/redis_reply_fuzz.cpp exercises the same code as RedisClient::command.

#include <hiredis/hiredis.h>

#include "riptide/performance/redis/redis_reply.hpp"

namespace riptide::performance::detail {

/// Deep copy of `reply` (never null); unknown reply types become error replies naming the type.
[[nodiscard]] RedisReply convert_hiredis_reply(const redisReply* reply);

}  // namespace riptide::performance::detail
