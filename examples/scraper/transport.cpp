// The example's only Boost.Beast translation unit: origin server and keep-alive fetch client.
#include <utility>  // g++ 12 in C++20 mode needs it before Asio

#include "scraper/transport.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <deque>
#include <stdexcept>
#include <thread>
#include <vector>

namespace riptide::example {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// ---------------------------------------------------------------------------------------------------
// Origin server

struct OriginServer::Impl {
  const Site& site;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::unique_ptr<std::atomic<std::uint64_t>[]> per_host_requests;
  std::atomic<std::uint64_t> served{0};
  std::atomic<bool> stopped{false};

  explicit Impl(const Site& s)
      : site(s), per_host_requests(new std::atomic<std::uint64_t>[s.options().hosts.size() + 1]) {
    for (std::size_t i = 0; i <= s.options().hosts.size(); ++i) per_host_requests[i] = 0;
  }

  void accept();
};

namespace {

class OriginSession : public std::enable_shared_from_this<OriginSession> {
 public:
  OriginSession(tcp::socket socket, OriginServer::Impl& server)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), server_(server) {}

  void run() { read(); }

 private:
  void read() {
    request_ = {};
    // Idle keep-alive connections are closed after a while so stop() never waits on a quiet client.
    stream_.expires_after(std::chrono::seconds{30});
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        self->close();
        return;
      }
      self->answer();
    });
  }

  void answer() {
    const std::string host{request_[http::field::host]};
    const auto index = server_.site.host_index(host);
    const std::size_t counter = index ? *index : server_.site.options().hosts.size();
    const std::uint64_t number = server_.per_host_requests[counter].fetch_add(1, std::memory_order_relaxed);
    const auto target = request_.target();
    SiteResponse answer = server_.site.serve(host, std::string_view{target.data(), target.size()}, number);

    response_ = {};
    response_.version(request_.version());
    response_.result(answer.status);
    response_.set(http::field::server, "riptide-example-origin");
    response_.set(http::field::content_type, answer.content_type);
    response_.keep_alive(request_.keep_alive());
    response_.body() = std::move(answer.body);
    response_.prepare_payload();

    if (answer.delay.count() > 0) {
      timer_.expires_after(answer.delay);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        self->write();
      });
    } else {
      write();
    }
  }

  void write() {
    stream_.expires_after(std::chrono::seconds{10});
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->server_.served.fetch_add(1, std::memory_order_relaxed);
      if (ec || !self->response_.keep_alive()) {
        self->close();
        return;
      }
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  OriginServer::Impl& server_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

void OriginServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopped.load()) return;
    } else {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<OriginSession>(std::move(socket), *this)->run();
    }
    accept();
  });
}

OriginServer::OriginServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OriginServer::~OriginServer() {
  stop();
}

std::unique_ptr<OriginServer> OriginServer::start(const Site& site, const std::string& bind, std::uint16_t port,
                                                  unsigned threads) {
  auto impl = std::make_unique<Impl>(site);
  const tcp::endpoint endpoint{asio::ip::make_address(bind), port};
  impl->acceptor.open(endpoint.protocol());
  impl->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl->acceptor.bind(endpoint);
  impl->acceptor.listen(asio::socket_base::max_listen_connections);
  impl->accept();
  for (unsigned i = 0; i < std::max(1U, threads); ++i) {
    impl->threads.emplace_back([raw = impl.get()] { raw->ioc.run(); });
  }
  return std::unique_ptr<OriginServer>(new OriginServer(std::move(impl)));
}

std::uint16_t OriginServer::port() const noexcept {
  beast::error_code ec;
  const auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

std::uint64_t OriginServer::requests_served() const noexcept {
  return impl_->served.load();
}

void OriginServer::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  // Stopping the io_context abandons open sessions; their sockets close when the context is destroyed.
  impl_->ioc.stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

// ---------------------------------------------------------------------------------------------------
// Fetch client

struct FetchClient::Impl {
  asio::io_context ioc;
  tcp::endpoint endpoint;
  std::chrono::milliseconds timeout;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::uint64_t connections = 0;

  // Runs one request on a connection; async operations with tcp_stream's expiry give a real timeout,
  // which synchronous Beast calls do not have.
  beast::error_code exchange(const Url& url, http::response<http::string_body>& response) {
    beast::error_code result;
    http::request<http::empty_body> request{http::verb::get, url.target, 11};
    request.set(http::field::host, url.host);
    request.set(http::field::user_agent, "riptide-example-scraper");
    request.keep_alive(true);

    stream->expires_after(timeout);
    http::async_write(*stream, request, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        result = ec;
        return;
      }
      stream->expires_after(timeout);
      http::async_read(*stream, buffer, response, [&](beast::error_code ec2, std::size_t) { result = ec2; });
    });
    ioc.restart();
    ioc.run();
    return result;
  }

  beast::error_code connect() {
    stream.emplace(ioc);
    buffer.clear();
    beast::error_code result;
    stream->expires_after(timeout);
    stream->async_connect(endpoint, [&](beast::error_code ec) { result = ec; });
    ioc.restart();
    ioc.run();
    if (!result) {
      stream->socket().set_option(tcp::no_delay(true));
      ++connections;
    } else {
      stream.reset();
    }
    return result;
  }
};

FetchClient::FetchClient(std::string origin_address, std::uint16_t origin_port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = tcp::endpoint{asio::ip::make_address(origin_address), origin_port};
  impl_->timeout = timeout;
}

FetchClient::~FetchClient() = default;

FetchResult FetchClient::get(const Url& url) {
  FetchResult result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = impl_->stream.has_value();
    if (!reused) {
      if (const auto ec = impl_->connect()) {
        result.error = "connect: " + ec.message();
        return result;
      }
    }
    http::response<http::string_body> response;
    const auto ec = impl_->exchange(url, response);
    if (!ec) {
      result.status = response.result_int();
      result.body = std::move(response.body());
      result.reused_connection = reused;
      if (!response.keep_alive()) impl_->stream.reset();
      return result;
    }
    impl_->stream.reset();
    result.error = ec.message();
    // A kept-alive connection may have been closed by the server in between: retry once on a new one.
    if (!reused) break;
  }
  return result;
}

std::uint64_t FetchClient::connections_opened() const noexcept {
  return impl_->connections;
}

}  // namespace riptide::example
