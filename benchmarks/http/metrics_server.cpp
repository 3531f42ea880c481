// The measured side of scripts/bench-http: the library's own server and MemoryMetricsRouter as a host
// runs them (sampler on, heap profiler on with default sampling, one io thread).
//   http_metrics_server [port]     prints "listening on <port>", runs until SIGINT/SIGTERM
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;

int main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts, so sigwait below gets them

  auto profiler = std::make_shared<rp::MemoryProfiler>();
  profiler->start_profiling();
  rp::http::MemoryMetricsRouter router(profiler, "");
  rp::http::ServerOptions options;
  options.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 0);
  auto server = rp::http::Server::start(router, options);
  std::printf("listening on %u\n", static_cast<unsigned>(server->port()));
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  server->stop();
  return 0;
}
