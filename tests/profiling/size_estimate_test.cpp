// The heap profile's size estimates and their error bars against the truth, across object sizes and threads.
//
// For each object size (16 B .. 1 MiB, and a 1500-byte std::string body) and each number of allocating
// threads (1, 3, 8), one function of this file allocates a known number of objects and keeps them; one profile
// is captured; the function's site (aggregate_by_site) must estimate the bytes it holds within ±25%, its stated
// one-sigma error sqrt(live_bytes_variance) must explain the difference (|z| <= 5), and over every case the mean
// of z² must be near 1 (the error bars are neither too narrow nor too wide). The grid is repeated over a few
// rounds with fresh allocations so the last check rests on enough cases.
//
// What "truth" is: size-class bytes, the sum of malloc_usable_size() over the live objects, not the bytes
// requested. jemalloc samples and counts each allocation by its usable size (the size class it occupies:
// 1536 B for the 1501 bytes of a 1500-character string), so the profile estimates what the objects occupy.
// Against requested bytes the 1500-byte case would read 2.3% high for a reason that has nothing to do with
// sampling; the table shows both.
//
// What the dump's counts are: jemalloc 5.3 with opt.prof_unbias (on by default) keeps the unbiased sums
// itself (each sample weighted by 1/p for its size class) and writes curobjs/curbytes chosen so that jeprof's
// correction (and the library's unbias()) recovers exactly those sums. For a site whose objects share one
// size class, curobjs is the number of samples and curbytes their size-class bytes, as without prof_unbias.
//
// Sampling runs every 64 KiB on average (lg_prof_sample:16) so the grid stays small: about 16 MiB per case
// for small objects, 128 MiB for the 1 MiB objects (whose pages are never touched beyond the first).
#include <gtest/gtest.h>

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:16,prof_accum:false");

namespace rp = riptide::performance;

// --- The allocating code. Global functions (frames in riptide::performance are the library's own), never
// inlined, one per object size, so each size is its own site (function, file, line). Blocks are chained
// through their first bytes: the leak functions allocate nothing but the objects counted.

struct Held {
  void* head = nullptr;
  std::uint64_t objects = 0;
  std::uint64_t requested_bytes = 0;
  std::uint64_t class_bytes = 0;  // malloc_usable_size: the size class jemalloc counts
  std::vector<std::string> strings;

  void push(void* block, std::size_t size) {
    *static_cast<void**>(block) = head;
    head = block;
    ++objects;
    requested_bytes += size;
    class_bytes += ::malloc_usable_size(block);
  }
  void release() {
    while (head != nullptr) {
      void* next = *static_cast<void**>(head);
      ::operator delete(head);
      head = next;
    }
    strings.clear();
    strings.shrink_to_fit();
  }
};

[[gnu::noinline]] void leak_16_byte_objects(Held& held, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) held.push(::operator new(16), 16);
}
[[gnu::noinline]] void leak_48_byte_objects(Held& held, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) held.push(::operator new(48), 48);
}
[[gnu::noinline]] void leak_256_byte_objects(Held& held, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) held.push(::operator new(256), 256);
}
// The body is allocated by libstdc++ (an out-of-line constructor in libstdc++.so, or its inlined copy): the
// whole leak must still be charged to this line, not to a standard library frame. `strings` has its capacity
// already (reserved by the caller), so this line allocates the bodies only.
[[gnu::noinline]] void leak_1500_byte_strings(Held& held, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) held.strings.push_back(std::string(1500, 'x'));
}
[[gnu::noinline]] void leak_4096_byte_buffers(Held& held, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) held.push(::operator new(4096), 4096);
}
[[gnu::noinline]] void leak_64_kib_blocks(Held& held, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) held.push(::operator new(65536), 65536);
}
[[gnu::noinline]] void leak_1_mib_blocks(Held& held, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) held.push(::operator new(1 << 20), 1 << 20);
}

namespace {

struct SizeCase {
  const char* function;   // the site's function, as readable_function_name() gives it (no parameters)
  std::size_t requested;  // bytes asked for (a string asks for its characters plus the terminator)
  bool string_bodies;     // leak_1500_byte_strings: bodies held in Held::strings
  void (*leak)(Held&, std::size_t);
};

const std::vector<SizeCase>& size_cases() {
  static const std::vector<SizeCase> cases = {
      {"leak_16_byte_objects", 16, false, leak_16_byte_objects},
      {"leak_48_byte_objects", 48, false, leak_48_byte_objects},
      {"leak_256_byte_objects", 256, false, leak_256_byte_objects},
      {"leak_1500_byte_strings", 1501, true, leak_1500_byte_strings},
      {"leak_4096_byte_buffers", 4096, false, leak_4096_byte_buffers},
      {"leak_64_kib_blocks", 65536, false, leak_64_kib_blocks},
      {"leak_1_mib_blocks", 1 << 20, false, leak_1_mib_blocks},
  };
  return cases;
}

constexpr int kThreadCounts[] = {1, 3, 8};
constexpr int kRounds = 3;

// Samples aimed for per case. With n samples of small objects the relative one-sigma error is 1/sqrt(n); the
// ±25% bound must hold in every random case of every run (45 per run: 5 sizes below R, 3 thread counts, 3
// rounds), so it has to sit far out in the tail: a test that fails by chance is a flaky test. At 400 samples
// it is 5 sigma: 6e-7 per case, 3e-5 of runs (at 256 samples, 4 sigma, it would fail 0.3% of runs; at 150
// samples 9%).
constexpr double kTargetSamples = 400;
// Objects of R bytes and more are sampled nearly surely (1 - e^-16 for 1 MiB at R = 64 KiB): their estimate is
// almost exact whatever their number, so fewer of them keep the memory down.
constexpr std::size_t kMaxLargeObjects = 128;

// The size class jemalloc gives a request (the string's body is probed through a real string).
std::size_t class_size(const SizeCase& size_case) {
  if (size_case.string_bodies) {
    const std::string probe(1500, 'x');
    return ::malloc_usable_size(const_cast<char*>(probe.data()));
  }
  void* block = ::operator new(size_case.requested);
  const std::size_t usable = ::malloc_usable_size(block);
  ::operator delete(block);
  return usable;
}

struct Outcome {
  std::string function;
  std::size_t requested = 0;
  std::size_t size_class = 0;
  int threads = 0;
  std::uint64_t objects = 0;
  std::uint64_t samples = 0;
  double requested_bytes = 0;
  double truth = 0;  // size-class bytes
  double estimate = 0;
  double sigma = 0;
  bool found = false;
  std::string location;
  std::vector<std::string> runtime_sites;  // sites named after standard-library code, with their bytes

  [[nodiscard]] double relative_error() const { return truth > 0 ? estimate / truth - 1.0 : 0.0; }
  [[nodiscard]] bool has_z() const { return sigma > 0; }
  [[nodiscard]] double z() const { return (estimate - truth) / sigma; }
};

bool is_standard_library_site(const rp::SiteLocation& location) {
  const auto& name = location.display_name;
  return name.starts_with("std::") || name.starts_with("__gnu_cxx::") ||
         name.find("basic_string") != std::string::npos || location.file.find("/bits/") != std::string::npos ||
         location.module.find("libstdc++") != std::string::npos;
}

// The allocating threads live for the whole test and run every multi-threaded case. jemalloc seeds each
// thread's sampling random numbers from the address of its thread-local state, and glibc gives a new thread the
// stack (and thread-local block) of one that exited: threads started afresh for every case would replay the
// previous threads' sampling sequence and, allocating the same objects, draw the very same samples round after
// round, so the rounds would not be independent cases. Threads that stay alive continue their sequences.
class WorkerPool {
 public:
  explicit WorkerPool(int size) {
    for (int i = 0; i < size; ++i) threads_.emplace_back([this, i] { serve(i); });
  }
  ~WorkerPool() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs job(i) on workers 0 .. count-1 at once and waits for all of them.
  void run(int count, const std::function<void(int)>& job) {
    std::unique_lock lock(mutex_);
    job_ = &job;
    active_ = count;
    pending_ = count;
    ++generation_;
    wake_.notify_all();
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void serve(int index) {
    std::uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (stopping_) return;
      if (index >= active_) continue;
      const auto* job = job_;
      lock.unlock();
      (*job)(index);
      lock.lock();
      if (--pending_ == 0) done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int)>* job_ = nullptr;
  int active_ = 0;
  int pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

Outcome run_case(const SizeCase& size_case, int threads, double period, WorkerPool& pool) {
  Outcome outcome;
  outcome.function = size_case.function;
  outcome.requested = size_case.requested;
  outcome.size_class = class_size(size_case);
  outcome.threads = threads;

  const double p = -std::expm1(-static_cast<double>(outcome.size_class) / period);
  const auto total = std::min(static_cast<std::size_t>(std::ceil(kTargetSamples / p)),
                              p > 0.999 ? kMaxLargeObjects : static_cast<std::size_t>(-1));

  std::vector<Held> held(static_cast<std::size_t>(threads));
  const auto work = [&size_case](Held& mine, std::size_t count) {
    if (size_case.string_bodies) mine.strings.reserve(count);
    size_case.leak(mine, count);
  };
  const auto share = [&](int index) {
    const auto n = static_cast<std::size_t>(threads);
    const auto i = static_cast<std::size_t>(index);
    return total / n + (i < total % n ? 1 : 0);
  };
  if (threads == 1) {
    work(held[0], total);  // on the test's own thread
  } else {
    pool.run(threads, [&](int i) { work(held[static_cast<std::size_t>(i)], share(i)); });
  }
  for (auto& mine : held) {
    for (const auto& body : mine.strings) {
      ++mine.objects;
      mine.requested_bytes += body.size() + 1;
      mine.class_bytes += ::malloc_usable_size(const_cast<char*>(body.data()));
    }
    outcome.objects += mine.objects;
    outcome.requested_bytes += static_cast<double>(mine.requested_bytes);
    outcome.truth += static_cast<double>(mine.class_bytes);
  }

  auto profile = rp::capture_heap_profile();
  EXPECT_TRUE(profile.ok()) << (profile ? "" : profile.error().to_string());
  if (profile.ok()) {
    for (const auto& site : rp::aggregate_by_site(profile.value(), rp::Symbolizer::shared())) {
      if (site.location.display_name == size_case.function) {
        EXPECT_FALSE(outcome.found) << "second site for " << size_case.function << ": " << site.location.location();
        outcome.found = true;
        outcome.location = site.location.location();
        outcome.samples = site.counts.sampled_live_objects;
        outcome.estimate = site.counts.live_bytes;
        outcome.sigma = std::sqrt(site.counts.live_bytes_variance);
      } else if (is_standard_library_site(site.location) && site.counts.live_bytes > 0) {
        outcome.runtime_sites.push_back(site.location.location() + ": " +
                                        std::to_string(std::llround(site.counts.live_bytes)) + " B");
      }
    }
  }
  for (auto& mine : held) mine.release();
  // Freed pages go back at once, not after jemalloc's decay: the eight threads' arenas would otherwise keep
  // every case's pages and the peak would be the sum of the cases, not the largest.
  (void)rp::JemallocCtl::run("arena.4096.purge");  // 4096 = MALLCTL_ARENAS_ALL
  return outcome;
}

std::string human(double bytes) {
  char text[32];
  if (bytes >= 1024.0 * 1024.0) {
    std::snprintf(text, sizeof text, "%.2f MiB", bytes / (1024.0 * 1024.0));
  } else {
    std::snprintf(text, sizeof text, "%.1f KiB", bytes / 1024.0);
  }
  return text;
}

}  // namespace

TEST(SizeEstimate, EstimatesAndErrorBarsHoldAcrossSizesAndThreads) {
  if (!RIPTIDE_PERF_HAS_JEMALLOC) {
    GTEST_SKIP() << "built without jemalloc (RIPTIDE_PERF_JEMALLOC=OFF): " << rp::HeapProfilingControl::status().reason;
  }
  const auto status = rp::HeapProfilingControl::status();
  if (!status.available) GTEST_SKIP() << "needs jemalloc's heap profiler: " << status.reason << " / " << status.fix;
  ASSERT_EQ(status.lg_sample, 16u);
  const double period = static_cast<double>(status.sample_interval_bytes);
  std::printf("R = %.0f B\n", period);

  WorkerPool pool(*std::max_element(std::begin(kThreadCounts), std::end(kThreadCounts)));
  std::vector<Outcome> outcomes;
  for (int round = 0; round < kRounds; ++round) {
    for (const auto& size_case : size_cases()) {
      for (const int threads : kThreadCounts) {
        outcomes.push_back(run_case(size_case, threads, period, pool));
      }
    }
  }

  std::printf("%-8s %-7s %7s %8s %8s %12s %12s %8s %10s %6s\n", "size", "class", "threads", "objects", "samples",
              "truth", "estimate", "error", "sigma", "z");
  for (const auto& o : outcomes) {
    char z[16] = "-";
    if (o.has_z()) std::snprintf(z, sizeof z, "%+.2f", o.z());
    std::printf("%-8zu %-7zu %7d %8llu %8llu %12s %12s %+7.2f%% %10s %6s\n", o.requested, o.size_class, o.threads,
                static_cast<unsigned long long>(o.objects), static_cast<unsigned long long>(o.samples),
                human(o.truth).c_str(), human(o.estimate).c_str(), 100.0 * o.relative_error(), human(o.sigma).c_str(),
                z);
  }

  double sum_z2 = 0;
  int with_z = 0;
  std::map<std::size_t, std::pair<double, double>> by_size;  // requested -> (max |error|, max |error| vs requested)
  for (const auto& o : outcomes) {
    SCOPED_TRACE(o.function + " with " + std::to_string(o.threads) + " thread(s)");
    ASSERT_TRUE(o.found) << "no site for " << o.function;
    EXPECT_TRUE(o.location.find("size_estimate_test.cpp:") != std::string::npos) << o.location;
    EXPECT_TRUE(o.runtime_sites.empty()) << "standard library frames took a share: " << o.runtime_sites.front();
    if (o.samples >= 64) {
      EXPECT_LE(std::fabs(o.relative_error()), 0.25)
          << "estimate " << o.estimate << " B, truth " << o.truth << " B, " << o.samples << " samples";
    }
    if (o.has_z()) {
      // 5 sigma: 6e-7 per case, 3e-5 of runs over the 54 informative cases.
      EXPECT_LE(std::fabs(o.z()), 5.0) << "estimate " << o.estimate << " B, truth " << o.truth << " B, sigma "
                                       << o.sigma << " B";
      sum_z2 += o.z() * o.z();
      ++with_z;
    }
    auto& [max_error, max_error_requested] = by_size[o.requested];
    max_error = std::max(max_error, std::fabs(o.relative_error()));
    max_error_requested = std::max(max_error_requested, std::fabs(o.estimate / o.requested_bytes - 1.0));
  }
  for (const auto& [requested, errors] : by_size) {
    std::printf("size %8zu: max |error| %5.2f%% against size-class bytes, %5.2f%% against requested bytes\n", requested,
                100.0 * errors.first, 100.0 * errors.second);
  }
  ASSERT_GT(with_z, 0);
  const double mean_z2 = sum_z2 / with_z;
  std::printf("mean z^2 over %d cases: %.3f\n", with_z, mean_z2);
  // If sqrt(variance) is the true standard deviation, each z² is about chi-square with one degree of freedom
  // and the cases are independent (see WorkerPool), so the mean over n cases has mean 1 and standard deviation
  // sqrt(2/n). The 1 MiB cases add z² ≈ 0: every object is sampled, and their variance stands for the
  // 1-in-70,000 chance (128 e^-16) of a missed one. That leaves 54 informative cases of 63 (7 sizes, 3 thread
  // counts, 3 rounds): expected mean 54/63 = 0.86, standard deviation sqrt(2 * 54) / 63 = 0.17. Chance alone
  // falls below 0.2 with probability 8e-10 (chi-square, 54 degrees of freedom, below 12.6) and above 3 with
  // 4e-15. Error bars off by a factor of 2 (variance 4x too large or too small) put the expected mean at 0.21
  // or 3.4, on the bounds; further off, outside them.
  EXPECT_GE(mean_z2, 0.2);
  EXPECT_LE(mean_z2, 3.0);
}
