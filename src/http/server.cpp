// The only translation unit of the library that includes Boost.Beast/Asio (each costs ~13 s and 0.8 GB
// to compile). Structure: an acceptor on its own strand, one Session per connection on a strand, one
// timer per session whose meaning follows the session's phase (idle, reading, writing, closing), and a
// small pool for routes marked blocking so a purge or a CPU profile never stalls other connections.
//
// Connection cap with eviction. Every session publishes, in one atomic word, how evictable it is and
// since when (Session::publish). When a connection arrives and every slot is taken, the acceptor picks
// a victim under sessions_mutex (Impl::pick_victim_locked), marks it (Impl::evicting), admits the
// newcomer, and asks the victim to close by dispatching onto the victim's own strand (Session::evict):
// only that strand touches the victim's socket. The word is only a hint: the victim's strand re-checks
// its phase, and one that completed a request since it was picked finishes that response, then closes.
#include <utility>  // g++ 12 in C++20 mode needs this before Asio

#include "riptide/performance/http/server.hpp"

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/fork_safety.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/core/prometheus_writer.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace riptide::performance::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Bytes read-ahead beyond the limits before a pipelining client is refused.
constexpr std::size_t kBufferSlack = 16 * 1024;
// After the last response on a connection, read and discard at most this much while closing politely.
constexpr std::size_t kDrainLimit = 64 * 1024;
constexpr auto kDrainTime = std::chrono::seconds{1};
constexpr auto kAcceptBackoff = std::chrono::milliseconds{100};
// First read of an idle connection; a typical scrape or curl request fits.
constexpr std::size_t kFirstRead = 4096;

ConfigError bad_option(std::string key, std::string value, std::string problem, std::string accepted) {
  return ConfigError(
      {"http::ServerOptions", std::move(key), std::move(value), std::move(problem), std::move(accepted)});
}

void add_standard_headers(Response& response) {
  response.set_header("Cache-Control", "no-store");
  response.set_header("X-Content-Type-Options", "nosniff");
}

Response transport_error(int status, std::string_view code, std::string_view message) {
  Response response = error_response(status, code, message);
  add_standard_headers(response);
  response.close = true;
  return response;
}

std::string refusal_bytes() {
  Response response =
      transport_error(503, "too_many_connections", "the server is at its connection limit; retry shortly");
  std::string out = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n";
  for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
  out += "Connection: close\r\nContent-Length: " + std::to_string(response.body.size()) + "\r\n\r\n";
  out += response.body;
  return out;
}

}  // namespace

class Session;

// The transport's counters. Shared with the /metrics writer the server registers with its router, which
// may run after the server is gone (the router outlives it).
struct TransportCounters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> evicted{0};
  std::atomic<std::uint64_t> active{0};  // written under Impl::sessions_mutex: equals sessions.size()
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> bad_requests{0};

  [[nodiscard]] ServerStats snapshot() const noexcept {
    ServerStats stats;
    stats.connections_accepted = accepted.load();
    stats.connections_refused = refused.load();
    stats.connections_evicted = evicted.load();
    stats.connections_active = active.load();
    stats.requests = requests.load();
    stats.timeouts = timeouts.load();
    stats.bad_requests = bad_requests.load();
    return stats;
  }
};

// How a session may be treated when a connection arrives at the cap, highest evicted first. Published
// by the session's strand in the top bits of one atomic word, with the time the session entered that
// state in the low bits, so the acceptor reads a consistent pair without taking the session's strand.
//
// "Oldest" is the longest in its current state, not the oldest connection: for a connection still owing
// a complete request, since that request started (its first byte; for a connection that has sent
// nothing, since it was accepted); for an idle keep-alive connection, since its last response was
// written; for a draining one, since it began draining. Accept time would pick a long-lived keep-alive
// client (a Prometheus scraper reusing one connection for hours) that happens to be sending its next
// request over a slowloris that connected a minute ago; time in the current state picks the connection
// that has made no progress for the longest, which is also the one nearest to being closed by its read
// or idle timeout anyway, so evicting it costs the least.
enum class Evictable : std::uint64_t {
  no = 0,                // a request is being handled or its response written: never evicted
  draining = 1,          // last response written, half-closed, reading what the client still sends
  idle = 2,              // keep-alive, waiting for the next request after at least one response
  awaiting_request = 3,  // sent nothing yet, or a request not completely received: header (slowloris) or body
  gone = 4,              // socket closed, object not destroyed yet: holds no file descriptor
};
constexpr int kEvictableShift = 60;
constexpr std::uint64_t kSinceMask = (std::uint64_t{1} << kEvictableShift) - 1;  // ~36 years of nanoseconds

struct Server::Impl {
  Impl(Router& router_in, ServerOptions options_in)
      : router(router_in),
        options(std::move(options_in)),
        ioc(static_cast<int>(options.threads)),
        blocking_pool(options.blocking_threads),
        work(asio::make_work_guard(ioc)),
        acceptor(asio::make_strand(ioc)),
        refusal(refusal_bytes()),
        fork_registration(detail::ForkStage::lock_data,
                          {lock_sessions_for_fork, unlock_sessions_after_fork, let_go_of_sockets_in_child, this}) {}

  // Around fork(): the registry must not change while the child's copy is made, and a child that does not
  // exec must not keep the parent's listening socket and client connections open (the parent's close of a
  // connection would not reach the client while a child still holds it).
  static void lock_sessions_for_fork(void* self) { static_cast<Impl*>(self)->sessions_mutex.lock(); }
  static void unlock_sessions_after_fork(void* self) { static_cast<Impl*>(self)->sessions_mutex.unlock(); }
  static void let_go_of_sockets_in_child(void* self) noexcept;

  void accept_next();
  void on_accept(const error_code& ec, tcp::socket socket);
  // The session to close to make room at the cap, or null when every session has a request in progress.
  Session* pick_victim_locked();  // requires sessions_mutex
  [[nodiscard]] std::uint64_t now_ns() const noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
  }
  void refuse(tcp::socket socket);
  void run_io_thread() noexcept;
  void register_session(Session* session, const std::shared_ptr<Session>& shared);
  void unregister_session(Session* session) noexcept;

  Router& router;
  ServerOptions options;
  std::stop_source stop_source;
  std::atomic<bool> stopping{false};
  std::string bound_address;
  std::uint16_t bound_port = 0;

  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::shared_ptr<TransportCounters> counters = std::make_shared<TransportCounters>();
  std::atomic<std::uint64_t> refusals_in_flight{0};

  // Registry of live sessions so stop() can reach them. Declared before the io_context: the context's
  // destructor destroys pending handlers, which destroy sessions, which unregister here.
  std::mutex sessions_mutex;
  std::condition_variable sessions_gone;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  // Sessions picked for eviction and not destroyed yet (a subset of `sessions`, under sessions_mutex):
  // they no longer hold a slot, so at most max_connections + evicting.size() sessions live at once, and
  // an evicting session is gone within one handler on its strand (or after the one response it was
  // already computing when picked).
  std::unordered_set<Session*> evicting;

  asio::io_context ioc;
  asio::thread_pool blocking_pool;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  tcp::acceptor acceptor;
  std::string refusal;
  std::vector<std::thread> threads;
  bool stopped = false;
  // The process that started the threads; in a fork() child they do not exist (see fork_safety.hpp).
  std::uint64_t fork_generation = riptide::performance::fork_generation();
  bool sockets_released_in_child = false;
  detail::ForkRegistration fork_registration;  // last: unregistered before anything it touches is destroyed
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server::Impl& server, tcp::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(server.options.header_limit_bytes + server.options.body_limit_bytes + kBufferSlack),
        evictable_(pack(Evictable::awaiting_request, server.now_ns())) {}

  ~Session() { server_.unregister_session(this); }

  /// Only for the fork child handler, where no other thread runs.
  [[nodiscard]] int native_handle_in_child() noexcept { return socket_.native_handle(); }

  void start() {
    error_code ignored;
    const auto peer = socket_.remote_endpoint(ignored);
    if (!ignored) remote_address_ = peer.address().to_string();  // once: a syscall per request shows in wrk
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); });
  }

  // The acceptor's view (any thread, under sessions_mutex): how evictable, and since when.
  [[nodiscard]] std::pair<Evictable, std::uint64_t> evictable() const noexcept {
    const std::uint64_t word = evictable_.load(std::memory_order_relaxed);
    return {static_cast<Evictable>(word >> kEvictableShift), word & kSinceMask};
  }

  // Closes this connection to make room for a new one; the acceptor picked it (see Impl::on_accept).
  void evict() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->on_evict(); });
  }

  void request_stop() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->stop_requested_ = true;
      // Connections idle or half-way through a request are closed; a response being computed or
      // written is finished first (and closes the connection afterwards).
      if (self->phase_ == Phase::idle || self->phase_ == Phase::reading) self->close_now();
    });
  }

 private:
  enum class Phase { idle, reading, handling, writing, closing, closed };

  static std::uint64_t pack(Evictable what, std::uint64_t since_ns) noexcept {
    return static_cast<std::uint64_t>(what) << kEvictableShift | (since_ns & kSinceMask);
  }
  // Relaxed: the word only guides the acceptor's choice; on_evict() decides on the strand.
  void publish(Evictable what) noexcept { evictable_.store(pack(what, server_.now_ns()), std::memory_order_relaxed); }

  // On the strand. A connection still waiting for (the rest of) a request, idle or draining is closed
  // now, without an answer: a slowloris gets no 408 and keeps no slot. One that completed a request
  // after it was picked finishes that response, announced and followed by a close.
  void on_evict() {
    switch (phase_) {
      case Phase::reading:
        // When the read timeout fired first (its 408 not written yet), the timeout already counted it.
        if (!timed_out_) ++server_.counters->evicted;
        close_now();
        break;
      case Phase::idle:
      case Phase::closing:
        ++server_.counters->evicted;
        close_now();
        break;
      case Phase::handling:
      case Phase::writing:
        ++server_.counters->evicted;
        evicted_ = true;  // send() closes after this response
        close_after_write_ = true;
        break;
      case Phase::closed:
        break;
    }
  }

  [[nodiscard]] const std::string& remote_address() const noexcept { return remote_address_; }

  void arm_timer(std::chrono::steady_clock::duration timeout) {
    const std::uint64_t generation = ++timer_generation_;
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), generation](const error_code& ec) {
      if (!ec && generation == self->timer_generation_) self->on_timeout();
    });
  }

  void disarm_timer() {
    ++timer_generation_;
    timer_.cancel();
  }

  void on_timeout() {
    switch (phase_) {
      case Phase::idle:
        ++server_.counters->timeouts;
        close_now();
        break;
      case Phase::reading:
        // Cancel the read; on_read sees timed_out_ and answers 408 before closing.
        ++server_.counters->timeouts;
        timed_out_ = true;
        socket_.cancel();
        break;
      case Phase::writing:
        ++server_.counters->timeouts;
        close_now();
        break;
      case Phase::closing:
        close_now();
        break;
      case Phase::handling:
      case Phase::closed:
        break;
    }
  }

  void wait_for_request() {
    if (stop_requested_ || evicted_) return close_now();
    if (buffer_.size() > 0) return read_request();  // a pipelined request is already buffered
    phase_ = Phase::idle;
    // A fresh connection stays awaiting_request since its accept (constructor).
    if (answered_) publish(Evictable::idle);
    arm_timer(server_.options.idle_timeout);
    // Wait for the next request by reading its first bytes into the parser's buffer: cheaper than a
    // readiness wait followed by a second read, and the read timeout starts only once bytes arrived.
    socket_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = shared_from_this()](const error_code& ec, std::size_t n) {
                              if (self->phase_ != Phase::idle) return;
                              if (ec) return self->close_now();
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  void read_request() {
    phase_ = Phase::reading;
    publish(Evictable::awaiting_request);
    timed_out_ = false;
    parser_.emplace();
    parser_->header_limit(server_.options.header_limit_bytes);
    parser_->body_limit(server_.options.body_limit_bytes);
    arm_timer(server_.options.read_timeout);
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(const error_code& ec) {
    disarm_timer();
    if (phase_ != Phase::reading) return;
    if (timed_out_) {
      return send(transport_error(408, "request_timeout", "the request did not arrive completely in time"));
    }
    if (ec == bhttp::error::end_of_stream) return close_now();
    if (ec) {
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        ++server_.counters->bad_requests;
        return send(transport_error(
            431, "header_too_large",
            "request header larger than " + std::to_string(server_.options.header_limit_bytes) + " bytes"));
      }
      if (ec == bhttp::error::body_limit) {
        ++server_.counters->bad_requests;
        return send(
            transport_error(413, "payload_too_large",
                            "request body larger than " + std::to_string(server_.options.body_limit_bytes) + " bytes"));
      }
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
          ec != bhttp::error::partial_message) {
        ++server_.counters->bad_requests;
        return send(transport_error(400, "bad_request", "malformed HTTP request: " + ec.message()));
      }
      return close_now();  // peer reset, partial message at EOF, cancelled by stop()
    }

    publish(Evictable::no);
    auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    Request request;
    request.method = std::string{message.method_string()};
    request.target = std::string{message.target()};
    request.headers.reserve(8);
    for (const auto& field : message) {
      request.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
    }
    request.body = std::move(message.body());
    request.remote_address = remote_address();
    request.stop = server_.stop_source.get_token();
    parser_.reset();

    if (server_.router.is_blocking(request)) {
      phase_ = Phase::handling;
      asio::post(server_.blocking_pool, [self = shared_from_this(), request = std::move(request)]() mutable {
        Response response = self->server_.router.handle(request);
        asio::post(self->socket_.get_executor(),
                   [self, response = std::move(response)]() mutable { self->send(std::move(response)); });
      });
      return;
    }
    send(server_.router.handle(request));
  }

  void send(Response response) {
    if (phase_ == Phase::closed) return;
    publish(Evictable::no);
    ++server_.counters->requests;
    // `stopping` as well as this session's flag: stop() wakes long handlers before it reaches each session,
    // so a response finished in between must already announce the close that follows it.
    close_after_write_ = response.close || !keep_alive_ || stop_requested_ || evicted_ || server_.stopping.load();
    response_.emplace();
    response_->version(11);
    response_->result(static_cast<unsigned>(response.status));
    if (!response.content_type.empty()) response_->set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) response_->set(name, value);
    response_->body() = std::move(response.body);
    response_->keep_alive(!close_after_write_);
    response_->prepare_payload();
    phase_ = Phase::writing;
    arm_timer(server_.options.write_timeout);
    bhttp::async_write(socket_, *response_,
                       [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(const error_code& ec) {
    disarm_timer();
    response_.reset();
    if (phase_ != Phase::writing) return;
    if (ec) return close_now();
    answered_ = true;
    if (close_after_write_) return close_politely();
    wait_for_request();
  }

  // Half-close, then read what the client still sends for a moment: closing a socket with unread input
  // makes the kernel send a reset that can destroy the response before the client reads it.
  void close_politely() {
    phase_ = Phase::closing;
    publish(Evictable::draining);
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    arm_timer(kDrainTime);
    drain();
  }

  void drain() {
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > kDrainLimit || self->phase_ != Phase::closing) return self->close_now();
      self->drain();
    });
  }

  void close_now() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    publish(Evictable::gone);
    disarm_timer();
    error_code ignored;
    socket_.close(ignored);
  }

  Server::Impl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  std::array<char, 4096> scratch_{};
  std::string remote_address_;
  std::size_t drained_ = 0;
  std::uint64_t timer_generation_ = 0;
  Phase phase_ = Phase::idle;
  bool timed_out_ = false;
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  bool stop_requested_ = false;
  bool evicted_ = false;                  // picked to make room while a request was in progress: close after it
  bool answered_ = false;                 // at least one response written: idle means idle keep-alive
  std::atomic<std::uint64_t> evictable_;  // pack(Evictable, since); written on the strand only
};

// A connection over the cap: answered with a fixed 503, half-closed and drained briefly, never served.
class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(Server::Impl& server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()) {
    ++server_.refusals_in_flight;
  }
  ~Refusal() { --server_.refusals_in_flight; }

  void start() {
    timer_.expires_after(kDrainTime);
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec) {
        error_code ignored;
        self->socket_.close(ignored);
      }
    });
    asio::async_write(socket_, asio::buffer(server_.refusal),
                      [self = shared_from_this()](const error_code& ec, std::size_t) {
                        if (ec) return self->finish();
                        error_code ignored;
                        self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
                        self->drain();
                      });
  }

 private:
  void drain() {
    socket_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](const error_code& ec, std::size_t) {
      if (ec) return self->finish();
      self->drain();
    });
  }
  void finish() {
    error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

  Server::Impl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::array<char, 1024> scratch_{};
};

// Runs in the child between fork() and its return, the only thread there: closes the child's copies of
// the descriptors (the parent's stay open) without telling Asio, whose threads are gone; the Impl is kept,
// never used again, until the child exits (see Server::~Server).
void Server::Impl::let_go_of_sockets_in_child(void* self) noexcept {
  auto& impl = *static_cast<Impl*>(self);
  if (!impl.sockets_released_in_child) {
    impl.sockets_released_in_child = true;
    (void)::close(impl.acceptor.native_handle());
    for (const auto& [session, weak] : impl.sessions) (void)::close(session->native_handle_in_child());
  }
  impl.sessions_mutex.unlock();
}

void Server::Impl::register_session(Session* session, const std::shared_ptr<Session>& shared) {
  const std::lock_guard lock(sessions_mutex);
  sessions.emplace(session, shared);
  counters->active.store(sessions.size());
}

void Server::Impl::unregister_session(Session* session) noexcept {
  const std::lock_guard lock(sessions_mutex);
  sessions.erase(session);
  evicting.erase(session);
  counters->active.store(sessions.size());
  if (sessions.empty()) sessions_gone.notify_all();
}

// A linear scan, only when the server is full: a few microseconds at the default cap of 256. (At caps in
// the hundreds of thousands an ordered index per class would be worth its upkeep on every request.)
Session* Server::Impl::pick_victim_locked() {
  Session* victim = nullptr;
  auto best = Evictable::no;
  std::uint64_t best_since = 0;
  for (const auto& [session, weak] : sessions) {
    if (evicting.contains(session)) continue;
    // A session whose last owner let go is in its destructor, blocked on sessions_mutex before it
    // unregisters: its members are still alive, and it is leaving anyway.
    const auto [what, since] = weak.expired() ? std::pair{Evictable::gone, std::uint64_t{0}} : session->evictable();
    if (what == Evictable::no) continue;
    if (victim == nullptr || what > best || (what == best && since < best_since)) {
      victim = session;
      best = what;
      best_since = since;
    }
  }
  return victim;
}

void Server::Impl::accept_next() {
  acceptor.async_accept(asio::make_strand(ioc),
                        [this](const error_code& ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void Server::Impl::on_accept(const error_code& ec, tcp::socket socket) {
  if (stopping.load()) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // EMFILE and friends: back off instead of spinning, keep serving the connections already open.
    logger()->warn("http: accept failed: {}", ec.message());
    auto timer = std::make_shared<asio::steady_timer>(acceptor.get_executor(), kAcceptBackoff);
    timer->async_wait([this, timer](const error_code&) {
      if (!stopping.load()) accept_next();
    });
    return;
  }
  error_code ignored;
  (void)mark_close_on_exec(socket.native_handle());  // Asio opens sockets without SOCK_CLOEXEC
  socket.set_option(tcp::no_delay(true), ignored);
  // Only this strand adds sessions, so a slot found free here is still free at register_session().
  bool admit = true;
  std::shared_ptr<Session> victim;
  {
    const std::lock_guard lock(sessions_mutex);
    if (sessions.size() - evicting.size() >= options.max_connections) {
      Session* picked = pick_victim_locked();
      if (picked == nullptr) {
        admit = false;  // every slot has a request in progress
      } else {
        evicting.insert(picked);           // its slot is the newcomer's from now on
        victim = sessions[picked].lock();  // null when it is already being destroyed
      }
    }
  }
  // Closing the victim's socket here would race with its strand: its own strand does it.
  if (victim) victim->evict();
  if (!admit) {
    ++counters->refused;
    if (refusals_in_flight.load() < options.max_connections) {
      std::make_shared<Refusal>(*this, std::move(socket))->start();
    } else {
      socket.close(ignored);  // under a flood even the polite refusal is bounded
    }
  } else {
    ++counters->accepted;
    auto session = std::make_shared<Session>(*this, std::move(socket));
    register_session(session.get(), session);
    session->start();
  }
  accept_next();
}

void Server::Impl::run_io_thread() noexcept {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& error) {
      // Handlers are written not to throw; if one does, log it and keep the server alive.
      try {
        logger()->error("http: exception escaped a handler: {}", error.what());
      } catch (...) {
      }
    } catch (...) {
      try {
        logger()->error("http: unknown exception escaped a handler");
      } catch (...) {
      }
    }
  }
}

ServerOptions ServerOptions::from_config(const HttpConfig& config) {
  ServerOptions options;
  options.bind = config.bind;
  options.port = config.port;
  options.token = config.token;
  options.threads = config.threads;
  options.max_connections = config.max_connections;
  options.header_limit_bytes = config.header_limit_bytes;
  options.body_limit_bytes = config.body_limit_bytes;
  options.read_timeout = std::chrono::milliseconds{static_cast<std::int64_t>(config.read_timeout_sec * 1000.0)};
  options.idle_timeout = std::chrono::milliseconds{static_cast<std::int64_t>(config.idle_timeout_sec * 1000.0)};
  return options;
}

std::unique_ptr<Server> Server::start(Router& router, ServerOptions options) {
  if (options.threads < 1 || options.threads > HttpConfig::kMaxThreads) {
    throw bad_option("http.threads", std::to_string(options.threads), "out of range",
                     "an integer from 1 to " + std::to_string(HttpConfig::kMaxThreads));
  }
  if (options.blocking_threads < 1 || options.blocking_threads > 64) {
    throw bad_option("http.blocking_threads", std::to_string(options.blocking_threads), "out of range",
                     "an integer from 1 to 64");
  }
  if (options.max_connections < 1 || options.max_connections > 1'000'000) {
    throw bad_option("http.max_connections", std::to_string(options.max_connections), "out of range",
                     "an integer from 1 to 1000000");
  }
  if (options.header_limit_bytes < 256 || options.header_limit_bytes > 1 << 20) {
    throw bad_option("http.header_limit_bytes", std::to_string(options.header_limit_bytes), "out of range",
                     "an integer from 256 to 1048576");
  }
  if (options.body_limit_bytes > 1 << 24) {
    throw bad_option("http.body_limit_bytes", std::to_string(options.body_limit_bytes), "out of range",
                     "an integer from 0 to 16777216");
  }
  for (const auto& [key, value] : {std::pair{"http.read_timeout_sec", options.read_timeout},
                                   std::pair{"http.idle_timeout_sec", options.idle_timeout},
                                   std::pair{"http.write_timeout", options.write_timeout}}) {
    if (value.count() <= 0) {
      throw bad_option(key, std::to_string(value.count()) + " ms", "must be positive", "a positive duration");
    }
  }
  const std::string host = options.bind == "localhost" ? std::string{"127.0.0.1"} : options.bind;
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    throw bad_option("http.bind", options.bind, "not an IP address",
                     "an IPv4 or IPv6 literal such as 127.0.0.1, ::1 or 0.0.0.0, or localhost");
  }

  router.set_access_policy(AccessPolicy{options.token, address.is_loopback()});
  auto impl = std::make_unique<Impl>(router, options);
  const tcp::endpoint endpoint{address, options.port};
  const auto fail = [&](const char* step) {
    throw Error("http: cannot listen on " + host + ":" + std::to_string(options.port) + " (" + step +
                "): " + ec.message() +
                (ec == asio::error::address_in_use
                     ? "; another process holds the port: choose another http.port (0 picks a free one)"
                     : std::string{}));
  };
  impl->acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("open");
  (void)mark_close_on_exec(impl->acceptor.native_handle());
  impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) fail("SO_REUSEADDR");
  impl->acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
  const auto local = impl->acceptor.local_endpoint(ec);
  if (ec) fail("local_endpoint");
  impl->bound_address = local.address().to_string();
  impl->bound_port = local.port();
  router.set_transport_metrics(
      [counters = impl->counters](PrometheusWriter& out) { write_prometheus(out, counters->snapshot()); });

  impl->accept_next();
  Impl* raw = impl.get();
  for (std::uint32_t i = 0; i < options.threads; ++i) raw->threads.emplace_back([raw] { raw->run_io_thread(); });
  logger()->info("http: listening on {}:{} ({} io thread(s), at most {} connections){}", raw->bound_address,
                 raw->bound_port, options.threads, options.max_connections,
                 address.is_loopback() ? "" : "; non-loopback bind: gc and pprof need the bearer token");
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

Server::~Server() {
  stop();
  if (impl_->fork_generation != fork_generation()) {
    // Destroying the Impl in a fork() child would join io and pool threads that are not there.
    impl_->fork_registration = {};
    keep_until_exit(std::shared_ptr<Impl>(std::move(impl_)));
  }
}

void Server::stop() noexcept {
  Impl& impl = *impl_;
  if (impl.stopped) return;
  impl.stopped = true;
  if (impl.fork_generation != fork_generation()) return;  // a child: nothing of the server runs here
  try {
    impl.stopping = true;
    impl.stop_source.request_stop();
    asio::post(impl.acceptor.get_executor(), [&impl] {
      error_code ignored;
      impl.acceptor.close(ignored);
    });
    std::vector<std::shared_ptr<Session>> live;
    {
      const std::lock_guard lock(impl.sessions_mutex);
      for (const auto& [key, weak] : impl.sessions) {
        if (auto session = weak.lock()) live.push_back(std::move(session));
      }
    }
    for (const auto& session : live) session->request_stop();
    live.clear();
    {
      std::unique_lock lock(impl.sessions_mutex);
      impl.sessions_gone.wait_for(lock, impl.options.stop_timeout, [&impl] { return impl.sessions.empty(); });
    }
    impl.blocking_pool.join();
    impl.work.reset();
    impl.ioc.stop();
    for (auto& thread : impl.threads) {
      if (thread.joinable()) thread.join();
    }
    logger()->info("http: stopped {}:{}", impl.bound_address, impl.bound_port);
  } catch (...) {
    // stop() runs from destructors: swallow rather than terminate.
  }
}

std::uint16_t Server::port() const noexcept {
  return impl_->bound_port;
}

const std::string& Server::bind_address() const noexcept {
  return impl_->bound_address;
}

ServerStats Server::stats() const noexcept {
  return impl_->counters->snapshot();
}

void write_prometheus(PrometheusWriter& out, const ServerStats& stats) {
  const auto counter = [&out](const char* name, const char* help, std::uint64_t value) {
    out.family(name, MetricType::counter, help);
    out.sample(value);
  };
  counter("http_connections_accepted_total", "Connections the embedded HTTP server admitted.",
          stats.connections_accepted);
  counter("http_connections_refused_total",
          "Connections refused (503 too_many_connections) because every slot had a request in progress.",
          stats.connections_refused);
  counter("http_connections_evicted_total",
          "Admitted connections closed at the connection cap to make room for a new one (silent, partial "
          "request or idle keep-alive first).",
          stats.connections_evicted);
  out.family("http_connections_active", MetricType::gauge, "Connections the embedded HTTP server holds open now.");
  out.sample(stats.connections_active);
  counter("http_requests_total", "Requests the embedded HTTP server answered (any status).", stats.requests);
  counter("http_timeouts_total", "Connections closed by the read, idle or write timeout.", stats.timeouts);
  counter("http_bad_requests_total", "Requests refused by the HTTP parser (400, 413, 431).", stats.bad_requests);
}

}  // namespace riptide::performance::http
