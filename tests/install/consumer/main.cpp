// A program outside the project that uses the installed package.
#include <riptide/performance.hpp>

#include <iostream>

int main() {
  namespace rp = riptide::performance;
  std::cout << "riptide-performance " << RIPTIDE_PERF_VERSION << " session " << rp::make_uuid_v4() << '\n';
  return 0;
}
