// Limits hot paths (budgets: global check <= 15 ns, keyed <= 60 ns): GCRA checks on the real
// clock, keyed checks over many clients, permit acquire/release and a circuit-breaker call.
// Part of bottleneck_benchmark (benchmark_main comes from CMake).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "riptide/performance/limits/circuit_breaker.hpp"
#include "riptide/performance/limits/concurrency_limiter.hpp"
#include "riptide/performance/limits/gcra_limiter.hpp"
#include "riptide/performance/limits/keyed_rate_limiter.hpp"

namespace rp = riptide::performance;

namespace {

// A rate high enough that checks are admitted (the CAS path), with a burst that lets the coarse clock in.
const rp::RateQuota kAdmitting = rp::RateQuota::per_second(1e8, 10'000'000);

void BM_GcraCheck_Global(benchmark::State& state) {
  static rp::GcraLimiter limiter(kAdmitting);
  std::uint64_t allowed = 0;
  for (auto _ : state) {
    const auto decision = limiter.check();
    allowed += decision.allowed ? 1 : 0;
    benchmark::DoNotOptimize(decision);
  }
  state.counters["admitted_share"] = static_cast<double>(allowed) / static_cast<double>(state.iterations());
  state.counters["coarse_clock"] = limiter.uses_coarse_clock() ? 1 : 0;
}
BENCHMARK(BM_GcraCheck_Global);
BENCHMARK(BM_GcraCheck_Global)->Threads(2);

// The default global quota of the original configuration (50/s, burst 50): nearly every check is a refusal.
void BM_GcraCheck_GlobalRefusing(benchmark::State& state) {
  rp::GcraLimiter limiter(rp::RateQuota::per_second(50, 50));
  for (auto _ : state) benchmark::DoNotOptimize(limiter.check());
}
BENCHMARK(BM_GcraCheck_GlobalRefusing);

// The same limiter forced onto the precise clock (what a small-burst, high-rate quota gets).
void BM_GcraCheck_GlobalPreciseClock(benchmark::State& state) {
  rp::GcraLimiter limiter(kAdmitting, rp::system_clock(), rp::ClockPrecision::precise);
  for (auto _ : state) benchmark::DoNotOptimize(limiter.check());
}
BENCHMARK(BM_GcraCheck_GlobalPreciseClock);

std::vector<std::string> make_keys(std::size_t count) {
  std::vector<std::string> keys;
  keys.reserve(count);
  for (std::size_t i = 0; i < count; ++i) keys.push_back("client-" + std::to_string(i));
  return keys;
}

// Keyed check over `range(0)` distinct clients already in the table (default per-client quota).
void BM_KeyedCheck(benchmark::State& state) {
  const auto keys = make_keys(static_cast<std::size_t>(state.range(0)));
  rp::KeyedRateLimiterOptions options;
  options.default_quota = rp::RateQuota::per_second(10, 10);
  options.max_keys = 100'000;
  rp::KeyedRateLimiter limiter(options);
  for (const auto& key : keys) (void)limiter.check(key);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.check(keys[i]));
    if (++i == keys.size()) i = 0;
  }
}
BENCHMARK(BM_KeyedCheck)->Arg(1)->Arg(1000)->Arg(50'000);

// A flood: every check is a new client evicting another (table 100 k, 1 M distinct ids).
void BM_KeyedCheck_Flood(benchmark::State& state) {
  const auto keys = make_keys(1'000'000);
  rp::KeyedRateLimiterOptions options;
  options.max_keys = 100'000;
  rp::KeyedRateLimiter limiter(options);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.check(keys[i]));
    if (++i == keys.size()) i = 0;
  }
}
BENCHMARK(BM_KeyedCheck_Flood);

void BM_PermitAcquireRelease(benchmark::State& state) {
  static rp::ConcurrencyLimiter limiter(100);
  for (auto _ : state) {
    rp::Permit permit = limiter.try_acquire();
    benchmark::DoNotOptimize(permit.held());
  }
}
BENCHMARK(BM_PermitAcquireRelease);
BENCHMARK(BM_PermitAcquireRelease)->Threads(2);

// try_acquire_permission + on_success with a measured duration: what record_success() costs per call.
void BM_BreakerCall(benchmark::State& state) {
  static rp::CircuitBreaker breaker("bench", rp::CircuitBreakerConfig{});
  for (auto _ : state) {
    if (breaker.try_acquire_permission()) breaker.on_success(std::chrono::microseconds{50});
  }
}
BENCHMARK(BM_BreakerCall);
BENCHMARK(BM_BreakerCall)->Threads(2);

// execute(): permission, two clock reads for the duration, the call and the outcome.
void BM_BreakerExecute(benchmark::State& state) {
  rp::CircuitBreaker breaker("bench-execute", rp::CircuitBreakerConfig{});
  int value = 0;
  for (auto _ : state) benchmark::DoNotOptimize(breaker.execute([&] { return ++value; }));
}
BENCHMARK(BM_BreakerExecute);

}  // namespace
