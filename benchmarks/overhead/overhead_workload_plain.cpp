// The overhead harness's workload without the library: what a user's scraper is before it links
// riptide-performance. Built twice from this one source, linked to nothing of the library:
// overhead_workload_plain runs on glibc's malloc, overhead_workload_jemalloc on Debian's libjemalloc
// without profiling. overhead_benchmark runs them as children beside its own configurations:
//
//   overhead_workload_plain --child=plain_glibc --pages 6000 --workers 2 --seed 42
//
// and reads the one JSON line it prints (child_protocol.hpp).
#include <exception>
#include <iostream>
#include <string>

#include "child_protocol.hpp"
#include "scraper/site.hpp"
#include "worker_pool.hpp"
#include "workload.hpp"

namespace ov = riptide::overhead;

int main(int argc, char** argv) {
  ov::WorkloadSettings settings;
  std::string config = "plain";
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view flag = argv[i];
      if (flag.rfind("--child=", 0) == 0) {
        config = std::string{flag.substr(8)};
      } else if (i + 1 < argc && ov::parse_workload_flag(flag, argv[i + 1], settings)) {
        ++i;
      } else {
        std::cerr << "usage: " << argv[0] << " [--child=NAME] [--pages N] [--workers N] [--seed N]\n";
        return 2;
      }
    }
    const riptide::example::Site site{{.seed = settings.seed}};
    const std::vector<ov::PageJob> jobs = ov::make_page_list(site, settings.seed, settings.pages);
    ov::WorkerPool pool{site, jobs, settings.workers, ov::process_page, false};
    ov::print_result_line(ov::result_json(config, pool.join(), settings.workers));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << "\n";
    return 1;
  }
}
