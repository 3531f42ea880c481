// The baseline for scripts/bench-http: the smallest reasonable Boost.Beast HTTP/1.1 server (one io
// thread, async, keep-alive) answering "Hello, world!" to every request. Our /metrics/memory/health is
// measured against it in the same run.
//   http_bare_server [port]     prints "listening on <port>", runs until SIGINT/SIGTERM
#include <utility>  // g++ 12 in C++20 mode needs this before Asio

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}
  void read() {
    request_ = {};
    bhttp::async_read(socket_, buffer_, request_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return;
      self->respond();
    });
  }

 private:
  void respond() {
    response_ = {};
    response_.result(bhttp::status::ok);
    response_.version(11);
    response_.set(bhttp::field::content_type, "text/plain");
    response_.body() = "Hello, world!";
    response_.keep_alive(request_.keep_alive());
    response_.prepare_payload();
    bhttp::async_write(socket_, response_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec || !self->response_.keep_alive()) return;
      self->read();
    });
  }

  tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  bhttp::response<bhttp::string_body> response_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket))->read();
    }
    accept(acceptor);
  });
}

int main(int argc, char** argv) {
  const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
  asio::io_context ioc{1};
  tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), port});
  std::printf("listening on %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](error_code, int) { ioc.stop(); });
  accept(acceptor);
  ioc.run();
  return 0;
}
