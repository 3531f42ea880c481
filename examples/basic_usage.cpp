// The README's Quick Start. Grows with the library: for now it prints the effective configuration
// (defaults < performance.toml < RIPTIDE_PERF_* variables), the build's features and whether jemalloc serves
// this process.
#include <riptide/performance.hpp>

#include <iostream>

int main() {
  namespace rp = riptide::performance;
  rp::Config config;
  try {
    config = rp::Config::load();
  } catch (const rp::ConfigError& e) {
    std::cerr << "configuration error: " << e.what() << "\n";
    return 2;
  }
  std::cout << config.to_toml() << "\n";

  const auto& jemalloc = rp::JemallocCtl::availability();
  std::cout << "riptide-performance " << RIPTIDE_PERF_VERSION << "\n"
            << "session: " << rp::make_uuid_v4() << "\n"
            << "allocator: " << (jemalloc.serves_malloc ? "jemalloc" : "glibc") << "\n";
  if (!jemalloc.reason.empty()) {
    std::cout << "note: " << jemalloc.reason << "\n";
  }
  return 0;
}
