// The spec's Quick Start in C++. Grows with the library: for now it reports the build's features and
// whether jemalloc serves this process.
#include <riptide/performance.hpp>

#include <iostream>

int main() {
  namespace rp = riptide::performance;
  const auto& jemalloc = rp::JemallocCtl::availability();
  std::cout << "riptide-performance " << RIPTIDE_PERF_VERSION << "\n"
            << "session: " << rp::make_uuid_v4() << "\n"
            << "allocator: " << (jemalloc.serves_malloc ? "jemalloc" : "glibc") << "\n";
  if (!jemalloc.reason.empty()) {
    std::cout << "note: " << jemalloc.reason << "\n";
  }
  return 0;
}
