#include "riptide/performance/redis/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

#include "hiredis_reply.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/logger.hpp"

namespace riptide::performance {
namespace {

constexpr const char* kAcceptedUrl =
    "redis://host[:port][/db] with host a name, IPv4 or [IPv6] address, port 1-65535, db 0-15";

[[noreturn]] void bad_url(std::string_view url, std::string_view key, std::string_view source, std::string problem) {
  throw ConfigError(
      ConfigError::Details{std::string(source), std::string(key), std::string(url), std::move(problem), kAcceptedUrl});
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

timeval to_timeval(double milliseconds) {
  const auto micros = static_cast<long long>(std::max(milliseconds, 1.0) * 1000.0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(micros / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(micros % 1'000'000);
  return tv;
}

// hiredis writes with write(2), so a peer that died between commands raises SIGPIPE, whose default
// action kills the host. Blocking it on this thread for the duration of the call and swallowing a
// SIGPIPE we caused keeps the host's own signal disposition untouched.
class SigpipeGuard {
 public:
  SigpipeGuard() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{};
        while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t previous_;
  bool was_pending_ = false;
};

}  // namespace

namespace detail {

RedisReply convert_hiredis_reply(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      return RedisReply::make_string(std::string(reply->str, reply->len));
    case REDIS_REPLY_STATUS:
      return RedisReply::make_status(std::string(reply->str, reply->len));
    case REDIS_REPLY_ERROR:
      // A bare "-\r\n" is legal RESP; callers report text() as the reason, which must not be empty.
      return RedisReply::make_error(reply->len == 0 ? std::string("redis: error reply without a message")
                                                    : std::string(reply->str, reply->len));
    case REDIS_REPLY_INTEGER:
      return RedisReply::make_integer(reply->integer);
    case REDIS_REPLY_NIL:
      return RedisReply::make_nil();
    case REDIS_REPLY_ARRAY: {
      std::vector<RedisReply> elements;
      elements.reserve(reply->elements);
      for (std::size_t i = 0; i < reply->elements; ++i) elements.push_back(convert_hiredis_reply(reply->element[i]));
      return RedisReply::make_array(std::move(elements));
    }
    default:
      return RedisReply::make_error("unsupported reply type " + std::to_string(reply->type));
  }
}

}  // namespace detail

RedisEndpoint parse_redis_url(std::string_view url, std::string_view key, std::string_view source) {
  constexpr std::string_view kScheme = "redis://";
  if (url.empty()) bad_url(url, key, source, "is empty");
  if (url.substr(0, kScheme.size()) != kScheme) {
    const auto colon = url.find("://");
    bad_url(url, key, source,
            colon == std::string_view::npos ? "has no redis:// scheme"
                                            : "scheme '" + std::string(url.substr(0, colon)) + "' is not supported");
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("@?#") != std::string_view::npos) {
    bad_url(url, key, source, "credentials, query strings and fragments are not supported");
  }
  RedisEndpoint endpoint;
  std::string_view authority = rest.substr(0, rest.find('/'));
  const std::string_view path = rest.size() > authority.size() ? rest.substr(authority.size() + 1) : std::string_view{};
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, key, source, "IPv6 address has no closing ']'");
    endpoint.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(url, key, source, "unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) bad_url(url, key, source, "port is empty");
    }
  } else {
    const auto colon = authority.find(':');
    endpoint.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) bad_url(url, key, source, "port is empty");
    }
  }
  if (endpoint.host.empty()) bad_url(url, key, source, "host is empty");
  if (!port_text.empty()) {
    std::uint32_t port = 0;
    if (!parse_number(port_text, port) || port == 0 || port > 65535) {
      bad_url(url, key, source, "port '" + std::string(port_text) + "' is not a number from 1 to 65535");
    }
    endpoint.port = static_cast<std::uint16_t>(port);
  }
  if (!path.empty()) {
    if (!parse_number(path, endpoint.db) || endpoint.db > 15) {
      bad_url(url, key, source, "database '" + std::string(path) + "' is not a number from 0 to 15");
    }
  }
  return endpoint;
}

struct RedisClient::Connection {
  explicit Connection(redisContext* c, std::uint64_t g) : context(c), generation(g) {}
  ~Connection() { redisFree(context); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  redisContext* context;
  std::uint64_t generation;
};

RedisClient::RedisClient(RedisConfig config, RedisBreakerOptions breaker, const Clock& clock)
    : config_(std::move(config)),
      endpoint_(parse_redis_url(config_.url)),
      breaker_options_(breaker),
      clock_(clock),
      current_open_duration_(breaker.open_duration) {
  if (config_.pool_size == 0) {
    throw ConfigError(ConfigError::Details{"code", "redis.pool_size", "0", "must be at least 1", "1 to 1024"});
  }
  if (breaker_options_.failure_threshold == 0) breaker_options_.failure_threshold = 1;
  fork_registration_ = detail::hold_across_fork(pool_mutex_, detail::ForkStage::lock_data);
}

RedisClient::~RedisClient() = default;

std::string RedisClient::key(std::string_view key) const {
  std::string full;
  full.reserve(config_.key_prefix.size() + key.size());
  full.append(config_.key_prefix).append(key);
  return full;
}

bool RedisClient::available() const noexcept {
  if (!open_.load(std::memory_order_acquire)) return true;
  const std::lock_guard lock(breaker_mutex_);
  return !trial_in_flight_ && clock_.steady_now() >= open_until_;
}

RedisClientStats RedisClient::stats() const noexcept {
  RedisClientStats s;
  s.commands = commands_.load(std::memory_order_relaxed);
  s.failures = failures_.load(std::memory_order_relaxed);
  s.server_errors = server_errors_.load(std::memory_order_relaxed);
  s.rejected_by_breaker = rejected_.load(std::memory_order_relaxed);
  s.connections_opened = connections_opened_.load(std::memory_order_relaxed);
  s.breaker_opens = breaker_opens_.load(std::memory_order_relaxed);
  s.breaker_open = open_.load(std::memory_order_acquire);
  return s;
}

std::string RedisClient::last_error() const {
  const std::lock_guard lock(breaker_mutex_);
  return last_error_;
}

RedisClient::Admission RedisClient::admit() noexcept {
  if (!open_.load(std::memory_order_acquire)) return Admission::allowed;
  const std::lock_guard lock(breaker_mutex_);
  if (!open_.load(std::memory_order_relaxed)) return Admission::allowed;
  if (trial_in_flight_ || clock_.steady_now() < open_until_) return Admission::refused;
  trial_in_flight_ = true;
  return Admission::trial;
}

void RedisClient::on_success(Admission admission) noexcept {
  if (admission == Admission::allowed && consecutive_failures_.load(std::memory_order_relaxed) == 0) return;
  const std::lock_guard lock(breaker_mutex_);
  consecutive_failures_.store(0, std::memory_order_relaxed);
  if (admission == Admission::trial) {
    trial_in_flight_ = false;
    open_.store(false, std::memory_order_release);
    current_open_duration_ = breaker_options_.open_duration;
    logger()->info("redis {}:{}: reachable again, breaker closed", endpoint_.host, endpoint_.port);
  }
}

void RedisClient::on_failure(Admission admission, const std::string& reason) noexcept {
  drop_idle();
  const std::lock_guard lock(breaker_mutex_);
  last_error_ = reason;
  ++consecutive_failures_;
  const auto now = clock_.steady_now();
  if (admission == Admission::trial) {
    trial_in_flight_ = false;
    current_open_duration_ = std::min(current_open_duration_ * 2, breaker_options_.max_open_duration);
    open_until_ = now + current_open_duration_;
    logger()->warn("redis {}:{}: trial call failed ({}); breaker stays open for {} ms", endpoint_.host, endpoint_.port,
                   reason, current_open_duration_.count());
    return;
  }
  if (!open_.load(std::memory_order_relaxed) && consecutive_failures_ >= breaker_options_.failure_threshold) {
    current_open_duration_ = breaker_options_.open_duration;
    open_until_ = now + current_open_duration_;
    open_.store(true, std::memory_order_release);
    breaker_opens_.fetch_add(1, std::memory_order_relaxed);
    logger()->warn("redis {}:{}: {} consecutive failures (last: {}); breaker open, calls refused for {} ms",
                   endpoint_.host, endpoint_.port, consecutive_failures_.load(), reason,
                   current_open_duration_.count());
  }
}

std::unique_ptr<RedisClient::Connection> RedisClient::connect(std::string& error) noexcept {
  std::uint64_t generation = 0;
  {
    const std::lock_guard lock(pool_mutex_);
    generation = generation_;
  }
  redisContext* context =
      redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, to_timeval(config_.connect_timeout_ms));
  if (context == nullptr) {
    error = "redis: cannot allocate a connection context";
    return nullptr;
  }
  if (context->err != 0) {
    error = "connect to redis " + endpoint_.host + ":" + std::to_string(endpoint_.port) + " failed: " + context->errstr;
    redisFree(context);
    return nullptr;
  }
  (void)mark_close_on_exec(context->fd);  // hiredis opens its socket without SOCK_CLOEXEC
  redisSetTimeout(context, to_timeval(config_.command_timeout_ms));
  redisEnableKeepAlive(context);
  auto connection = std::make_unique<Connection>(context, generation);
  if (endpoint_.db != 0) {
    const std::string db = std::to_string(endpoint_.db);
    const char* argv[] = {"SELECT", db.c_str()};
    const std::size_t lengths[] = {6, db.size()};
    SigpipeGuard guard;
    auto* reply = static_cast<redisReply*>(redisCommandArgv(context, 2, argv, lengths));
    const bool selected = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
    error = reply == nullptr ? std::string(context->errstr)
            : selected       ? std::string()
                             : "SELECT " + db + " refused: " + std::string(reply->str, reply->len);
    if (reply != nullptr) freeReplyObject(reply);
    if (!selected) return nullptr;
  }
  connections_opened_.fetch_add(1, std::memory_order_relaxed);
  return connection;
}

// A fork() child has copies of the parent's sockets: a command sent on one would interleave with the
// parent's on the same Redis connection. The child closes its copies (redisFree sends nothing) and opens
// its own; connections lent to parent threads at the fork never come back, so the count starts afresh.
void RedisClient::forget_inherited_connections_locked() noexcept {
  pool_fork_generation_ = fork_generation();
  ++generation_;
  idle_.clear();
  open_connections_ = 0;
}

std::unique_ptr<RedisClient::Connection> RedisClient::acquire(std::string& error, bool& fresh) noexcept {
  std::unique_lock lock(pool_mutex_);
  if (pool_fork_generation_ != fork_generation()) forget_inherited_connections_locked();
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::microseconds(static_cast<long long>(std::max(config_.command_timeout_ms, 1.0) * 1000.0));
  for (;;) {
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      fresh = false;
      return connection;
    }
    if (open_connections_ < config_.pool_size) {
      ++open_connections_;
      fresh = true;
      lock.unlock();
      auto connection = connect(error);
      if (!connection) {
        lock.lock();
        --open_connections_;
        pool_cv_.notify_one();
      }
      return connection;
    }
    if (pool_cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_connections_ >= config_.pool_size) {
      error = "redis pool exhausted: all " + std::to_string(config_.pool_size) + " connections busy for " +
              std::to_string(static_cast<long long>(config_.command_timeout_ms)) + " ms";
      return nullptr;
    }
  }
}

void RedisClient::release(std::unique_ptr<Connection> connection, bool healthy) noexcept {
  std::unique_ptr<Connection> doomed;
  {
    const std::lock_guard lock(pool_mutex_);
    if (healthy && connection->generation == generation_) {
      idle_.push_back(std::move(connection));
    } else {
      --open_connections_;
      doomed = std::move(connection);
    }
  }
  pool_cv_.notify_one();
}

void RedisClient::drop_idle() noexcept {
  std::vector<std::unique_ptr<Connection>> doomed;
  {
    const std::lock_guard lock(pool_mutex_);
    ++generation_;
    open_connections_ -= static_cast<std::uint32_t>(idle_.size());
    doomed.swap(idle_);
  }
  pool_cv_.notify_all();
}

RedisReply RedisClient::command(std::span<const std::string_view> argv) noexcept {
  commands_.fetch_add(1, std::memory_order_relaxed);
  try {
    if (argv.empty()) return RedisReply::make_error("empty command");
    const Admission admission = admit();
    if (admission == Admission::refused) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return RedisReply::make_unavailable("redis breaker open: " + last_error());
    }
    std::string error;
    redisReply* reply = nullptr;
    std::unique_ptr<Connection> connection;
    std::vector<const char*> pointers(argv.size());
    std::vector<std::size_t> lengths(argv.size());
    for (std::size_t i = 0; i < argv.size(); ++i) {
      pointers[i] = argv[i].data();
      lengths[i] = argv[i].size();
    }
    // A pooled connection can have died while idle (server restarted, idle timeout): the command then
    // fails before the server saw it, so it is tried once more on a fresh connection. Timeouts are not
    // retried (the server may be executing it).
    for (int attempt = 0; attempt < 2 && reply == nullptr; ++attempt) {
      bool fresh = false;
      connection = acquire(error, fresh);
      if (!connection) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        on_failure(admission, error);
        return RedisReply::make_unavailable(std::move(error));
      }
      {
        SigpipeGuard guard;
        reply = static_cast<redisReply*>(
            redisCommandArgv(connection->context, static_cast<int>(argv.size()), pointers.data(), lengths.data()));
      }
      if (reply != nullptr) break;
      const redisContext* context = connection->context;
      const bool timed_out = context->err == REDIS_ERR_IO && (std::strstr(context->errstr, "temporarily") != nullptr);
      error = "redis " + endpoint_.host + ":" + std::to_string(endpoint_.port) + ": " +
              (timed_out ? "command timed out after " +
                               std::to_string(static_cast<long long>(config_.command_timeout_ms)) + " ms"
               : context->err != 0 ? std::string(context->errstr)
                                   : std::string("connection lost"));
      release(std::move(connection), false);
      drop_idle();
      if (fresh || timed_out) break;
    }
    if (reply == nullptr) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      on_failure(admission, error);
      return RedisReply::make_unavailable(std::move(error));
    }
    RedisReply result = detail::convert_hiredis_reply(reply);
    freeReplyObject(reply);
    release(std::move(connection), true);
    if (result.is_error()) server_errors_.fetch_add(1, std::memory_order_relaxed);
    on_success(admission);
    return result;
  } catch (const std::exception& e) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return RedisReply::make_unavailable(std::string("redis client: ") + e.what());
  } catch (...) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return RedisReply::make_unavailable("redis client: unknown exception");
  }
}

}  // namespace riptide::performance
