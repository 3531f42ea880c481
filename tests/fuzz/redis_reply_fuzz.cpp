// libFuzzer target: arbitrary bytes as a Redis server's answer.
//  1. hiredis' own reader (the one RedisClient uses) parses the bytes, fed in two chunks; every reply it
//     produces goes through detail::convert_hiredis_reply, which must copy the tree exactly.
//  2. A loopback fake server answers RedisCache::get and RedisRateLimiter::check_n with the same bytes,
//     through a real RedisClient (sockets, pool, retry, breaker), so the code that interprets replies in
//     the cache and the distributed limiter sees them exactly as it would from a hostile server. The
//     answers must match what the reader says the server sent: a hit only for {string, integer}, a Redis
//     decision only for four integers.
// Harness restriction: a multi-bulk header declaring more than kMaxElements items is skipped. hiredis 0.14
// callocs the declared element count before the items arrive ("*999999999\r\n" asks for 8 GB); that is a
// property of the trusted-server assumption documented in docs/SECURITY.md, not something the library
// can bound.
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../../src/redis/hiredis_reply.hpp"
#include "riptide/performance/cache/redis_cache.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/limits/redis_rate_limiter.hpp"
#include "riptide/performance/redis/redis_client.hpp"

namespace rp = riptide::performance;

namespace {

constexpr long long kMaxElements = 1 << 16;
constexpr int kMaxReplies = 256;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "redis_reply_fuzz: %s\n", what);
  std::abort();
}

// True when some '*' is followed by a number above kMaxElements (see the harness restriction above).
bool declares_huge_array(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != '*') continue;
    long long n = 0;
    for (std::size_t j = i + 1; j < bytes.size() && bytes[j] >= '0' && bytes[j] <= '9'; ++j) {
      n = n * 10 + (bytes[j] - '0');
      if (n > kMaxElements) return true;
    }
  }
  return false;
}

void check_same(const redisReply* raw, const rp::RedisReply& converted, int depth) {
  if (depth > 64) finding("nesting deeper than hiredis allows");
  using Type = rp::RedisReply::Type;
  switch (raw->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: {
      const Type want = raw->type == REDIS_REPLY_STRING   ? Type::string
                        : raw->type == REDIS_REPLY_STATUS ? Type::status
                                                          : Type::error;
      const bool empty_error = want == Type::error && raw->len == 0;
      if (converted.type() != want ||
          (empty_error ? converted.text().empty() : converted.text() != std::string_view(raw->str, raw->len))) {
        finding("string/status/error reply not copied exactly (or an empty error left without a message)");
      }
      break;
    }
    case REDIS_REPLY_INTEGER:
      if (converted.integer() != raw->integer) finding("integer reply not copied");
      break;
    case REDIS_REPLY_NIL:
      if (!converted.is_nil()) finding("nil reply not nil");
      break;
    case REDIS_REPLY_ARRAY:
      if (converted.type() != Type::array || converted.elements().size() != raw->elements) {
        finding("array reply not copied");
      }
      for (std::size_t i = 0; i < raw->elements; ++i) check_same(raw->element[i], converted.elements()[i], depth + 1);
      break;
    default:
      if (!converted.is_error()) finding("unknown reply type not reported as an error");
  }
  // expect() keeps the reply when the type matches and never turns a success into another success.
  const auto same = converted.expect(converted.type());
  if (same.type() != converted.type()) finding("expect(own type) changed the type");
  const auto other = converted.expect(converted.type() == Type::integer ? Type::string : Type::integer);
  if (converted.ok() && other.type() != Type::error) finding("expect(wrong type) did not give an error");
}

// What the reader makes of `bytes`: the first reply (converted) and whether the bytes are exactly one
// complete reply with nothing after it.
struct ReaderVerdict {
  std::optional<rp::RedisReply> first;
  bool exactly_one = false;
};

ReaderVerdict read_all(std::string_view bytes, std::size_t split) {
  ReaderVerdict verdict;
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) finding("redisReaderCreate failed");
  bool failed = false;
  int replies = 0;
  std::size_t fed = 0;
  for (const std::string_view chunk : {bytes.substr(0, split), bytes.substr(split)}) {
    if (failed) break;
    if (!chunk.empty() && redisReaderFeed(reader, chunk.data(), chunk.size()) != REDIS_OK) {
      failed = true;
      break;
    }
    fed += chunk.size();
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
        failed = true;
        break;
      }
      if (raw == nullptr) break;
      auto* reply = static_cast<redisReply*>(raw);
      rp::RedisReply converted = rp::detail::convert_hiredis_reply(reply);
      check_same(reply, converted, 0);
      freeReplyObject(reply);
      if (replies == 0) verdict.first = std::move(converted);
      if (++replies >= kMaxReplies) break;
    }
    if (replies >= kMaxReplies) break;
  }
  // Exactly one reply, every byte consumed and no reply half-read (ridx -1: no task in progress).
  verdict.exactly_one =
      !failed && replies == 1 && fed == bytes.size() && reader->pos == reader->len && reader->ridx == -1;
  redisReaderFree(reader);
  return verdict;
}

// --- the fake server ---------------------------------------------------------------------------------

std::mutex payload_mutex;
std::string payload;     // what the server answers to every command but SCRIPT
bool keep_open = false;  // payload is exactly one reply: the connection stays usable
constexpr std::string_view kSha = "$40\r\n0123456789012345678901234567890123456789\r\n";

// Length of the first complete RESP request (array of bulk strings) in `buffer`, 0 when incomplete;
// `command` gets its first argument.
std::size_t request_length(std::string_view buffer, std::string& command) {
  auto number = [&](std::size_t& pos, long long& out) {
    const auto end = buffer.find("\r\n", pos);
    if (end == std::string_view::npos) return false;
    out = std::atoll(std::string(buffer.substr(pos, end - pos)).c_str());
    pos = end + 2;
    return true;
  };
  std::size_t pos = 1;
  long long count = 0;
  if (buffer.empty() || buffer[0] != '*' || !number(pos, count)) return 0;
  for (long long i = 0; i < count; ++i) {
    if (pos >= buffer.size() || buffer[pos] != '$') return 0;
    ++pos;
    long long length = 0;
    if (!number(pos, length) || buffer.size() < pos + static_cast<std::size_t>(length) + 2) return 0;
    if (i == 0) command.assign(buffer.substr(pos, static_cast<std::size_t>(length)));
    pos += static_cast<std::size_t>(length) + 2;
  }
  return pos;
}

// Answers every complete request in `buffer`; false when the connection is to be closed.
bool answer_requests(int fd, std::string& buffer) {
  for (;;) {
    std::string command;
    const std::size_t length = request_length(buffer, command);
    if (length == 0) return true;
    buffer.erase(0, length);
    std::string answer;
    bool open = true;
    if (command == "SCRIPT") {
      answer = kSha;
    } else {
      const std::lock_guard lock(payload_mutex);
      answer = payload;
      open = keep_open;
    }
    std::size_t written = 0;
    while (written < answer.size()) {
      const ssize_t n = ::send(fd, answer.data() + written, answer.size() - written, MSG_NOSIGNAL);
      if (n <= 0) return false;
      written += static_cast<std::size_t>(n);
    }
    if (!open) return false;
  }
}

// One thread, poll() over the listener and every connection: a thread per connection made ASan's thread
// registry (and the RSS) grow with the number of executions.
void serve(int listener) {
  std::vector<pollfd> fds{{listener, POLLIN, 0}};
  std::vector<std::string> buffers{std::string{}};
  char chunk[4096];
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    for (std::size_t i = fds.size(); i-- > 1;) {
      if (fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, chunk, sizeof chunk);
      bool keep = n > 0;
      if (keep) {
        buffers[i].append(chunk, static_cast<std::size_t>(n));
        keep = answer_requests(fds[i].fd, buffers[i]);
      }
      if (!keep) {
        ::shutdown(fds[i].fd, SHUT_RDWR);
        ::close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
        buffers.erase(buffers.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (fds[0].revents & POLLIN) {
      const int fd = ::accept(listener, nullptr, nullptr);
      if (fd >= 0) {
        fds.push_back({fd, POLLIN, 0});
        buffers.emplace_back();
      }
    }
  }
}

std::uint16_t start_server() {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      ::listen(listener, 64) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    finding("cannot listen on 127.0.0.1");
  }
  std::thread(serve, listener).detach();
  return ntohs(address.sin_port);
}

std::string server_url() {
  static const std::string url = [] {
    rp::set_logger(std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>()));
    return "redis://127.0.0.1:" + std::to_string(start_server());
  }();
  return url;
}

void check_consumers(std::string_view bytes, const ReaderVerdict& verdict) {
  {
    const std::lock_guard lock(payload_mutex);
    payload.assign(bytes);
    keep_open = verdict.exactly_one;
  }
  rp::RedisConfig config;
  config.url = server_url();
  config.command_timeout_ms = 5000;  // never reached: the server answers or closes at once
  config.pool_size = 2;
  auto client = std::make_shared<rp::RedisClient>(config, rp::RedisBreakerOptions{.failure_threshold = 1u << 30});

  rp::RedisCache cache(client);
  const auto got = cache.get("k");
  using Status = rp::RedisCache::GetResult::Status;
  const auto& first = verdict.first;
  const bool hit_shape = first && first->type() == rp::RedisReply::Type::array && first->elements().size() == 2 &&
                         first->elements()[0].type() == rp::RedisReply::Type::string;
  const bool miss_shape = first && first->type() == rp::RedisReply::Type::array && first->elements().size() == 2 &&
                          first->elements()[0].is_nil();
  if (hit_shape != (got.status == Status::hit)) finding("cache hit does not match the reply");
  if (hit_shape && got.value != first->elements()[0].text()) finding("cache value differs from the reply");
  if (miss_shape != (got.status == Status::miss)) finding("cache miss does not match the reply");
  if (got.status == Status::error && got.error.empty()) finding("cache error without a message");
  if (got.ttl && got.ttl->count() < 0) finding("negative ttl");

  // A fresh client so the limiter's conversation does not start with bytes left over from the cache's.
  auto limiter_client =
      std::make_shared<rp::RedisClient>(config, rp::RedisBreakerOptions{.failure_threshold = 1u << 30});
  rp::RedisRateLimiter limiter(limiter_client,
                               rp::RedisRateLimiterOptions{.quota = rp::RateQuota::per_second(100, 10)});
  const auto decision = limiter.check_n(1);
  if (verdict.exactly_one) {
    const bool four_integers = first->type() == rp::RedisReply::Type::array && first->elements().size() == 4 &&
                               first->elements()[0].integer() && first->elements()[1].integer() &&
                               first->elements()[2].integer() && first->elements()[3].integer();
    if (four_integers != (decision.source == rp::RateDecisionSource::redis)) {
      finding("limiter used Redis' answer when it was not four integers, or ignored four integers");
    }
    if (four_integers && decision.decision.allowed != (*first->elements()[0].integer() == 1)) {
      finding("limiter decision differs from the reply");
    }
  }
  if (decision.decision.reset_after.count() < 0) finding("negative reset_after");
  if (decision.decision.retry_after.count() < 0) finding("negative retry_after");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte chooses where the reader's input is split, so incremental feeding is covered.
  const std::size_t split = data[0] % size;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (declares_huge_array(bytes)) return -1;
  const ReaderVerdict verdict = read_all(bytes, split > bytes.size() ? bytes.size() : split);
  check_consumers(bytes, verdict);
  return 0;
}
