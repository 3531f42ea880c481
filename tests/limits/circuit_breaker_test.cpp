// Every breaker transition on a driven clock, the sliding window, slow calls, manual states, events,
// execute(), and the bounded registry.
#include "riptide/performance/limits/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/limits/circuit_breaker_registry.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;
using State = rp::CircuitState;

namespace {

rp::CircuitBreakerConfig small_config() {
  rp::CircuitBreakerConfig config;
  config.failure_rate_threshold = 0.5;
  config.sliding_window_size = 10;
  config.minimum_number_of_calls = 10;
  config.wait_duration_in_open_state = 30s;
  config.permitted_calls_in_half_open = 3;
  config.slow_call_duration = 1s;
  config.slow_call_rate_threshold = 1.0;
  return config;
}

void record(rp::CircuitBreaker& breaker, int successes, int failures, std::chrono::nanoseconds duration = 1ms) {
  for (int i = 0; i < successes; ++i) breaker.on_success(duration);
  for (int i = 0; i < failures; ++i) breaker.on_error(duration);
}

TEST(CircuitBreaker, StaysClosedBelowTheMinimumNumberOfCalls) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("api", small_config(), clock);
  record(breaker, 0, 9);
  EXPECT_EQ(breaker.state(), State::closed);
  EXPECT_FALSE(breaker.snapshot().failure_rate.has_value());
  EXPECT_TRUE(breaker.try_acquire_permission());
}

TEST(CircuitBreaker, ClosedToOpenAtTheFailureRateThreshold) {
  rp::ManualClock clock;
  rp::CircuitBreaker below("below", small_config(), clock);
  record(below, 6, 4);
  EXPECT_EQ(below.state(), State::closed);
  EXPECT_DOUBLE_EQ(*below.snapshot().failure_rate, 0.4);

  rp::CircuitBreaker at("at", small_config(), clock);
  record(at, 5, 5);
  EXPECT_EQ(at.state(), State::open);
  EXPECT_FALSE(at.try_acquire_permission());
  EXPECT_EQ(at.snapshot().not_permitted_total, 1u);
}

TEST(CircuitBreaker, OldOutcomesLeaveTheCountBasedWindow) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("api", small_config(), clock);
  record(breaker, 0, 4);  // 4 failures ...
  record(breaker, 6, 0);  // ... in a full window of 10: 40%
  EXPECT_EQ(breaker.state(), State::closed);
  record(breaker, 4, 0);  // the failures slid out
  EXPECT_DOUBLE_EQ(*breaker.snapshot().failure_rate, 0.0);
  record(breaker, 0, 4);  // 4 of the last 10
  EXPECT_EQ(breaker.state(), State::closed);
  record(breaker, 0, 1);  // 5 of the last 10
  EXPECT_EQ(breaker.state(), State::open);
}

TEST(CircuitBreaker, OpenToHalfOpenAfterTheWaitThenHalfOpenToClosed) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("api", small_config(), clock);
  record(breaker, 0, 10);
  ASSERT_EQ(breaker.state(), State::open);
  clock.advance(30s - 1ns);
  EXPECT_FALSE(breaker.try_acquire_permission());
  EXPECT_EQ(breaker.state(), State::open);
  clock.advance(1ns);
  EXPECT_TRUE(breaker.try_acquire_permission());  // the first trial
  EXPECT_EQ(breaker.state(), State::half_open);
  EXPECT_TRUE(breaker.try_acquire_permission());
  EXPECT_TRUE(breaker.try_acquire_permission());
  EXPECT_FALSE(breaker.try_acquire_permission()) << "only 3 trial calls are permitted";
  record(breaker, 2, 0);
  EXPECT_EQ(breaker.state(), State::half_open);
  record(breaker, 1, 0);
  EXPECT_EQ(breaker.state(), State::closed);
  EXPECT_TRUE(breaker.try_acquire_permission());
  EXPECT_EQ(breaker.snapshot().buffered_calls, 0u);  // a fresh window after the transition
}

TEST(CircuitBreaker, HalfOpenToOpenWhenTrialsFail) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("api", small_config(), clock);
  record(breaker, 0, 10);
  clock.advance(30s);
  ASSERT_TRUE(breaker.try_acquire_permission());
  ASSERT_TRUE(breaker.try_acquire_permission());
  ASSERT_TRUE(breaker.try_acquire_permission());
  record(breaker, 1, 2);  // 67% >= 50%
  EXPECT_EQ(breaker.state(), State::open);
  EXPECT_FALSE(breaker.try_acquire_permission());
  clock.advance(30s);
  EXPECT_TRUE(breaker.try_acquire_permission());
  EXPECT_EQ(breaker.state(), State::half_open);
}

TEST(CircuitBreaker, ReleasedTrialPermitsCanBeUsedAgain) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("api", small_config(), clock);
  record(breaker, 0, 10);
  clock.advance(30s);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(breaker.try_acquire_permission());
  EXPECT_FALSE(breaker.try_acquire_permission());
  breaker.release_permission();
  EXPECT_TRUE(breaker.try_acquire_permission());
}

TEST(CircuitBreaker, SlowCallsOpenTheBreakerWhenTheirThresholdIsBelowOne) {
  rp::ManualClock clock;
  auto config = small_config();
  config.slow_call_rate_threshold = 0.5;
  rp::CircuitBreaker breaker("slow", config, clock);
  record(breaker, 5, 0, 2s);  // successful but slow
  record(breaker, 4, 0, 10ms);
  EXPECT_EQ(breaker.state(), State::closed);
  record(breaker, 1, 0, 1s);  // exactly the slow duration counts as slow: 6/10
  EXPECT_EQ(breaker.state(), State::open);

  rp::CircuitBreaker never("never", small_config(), clock);  // threshold 1.0
  record(never, 10, 0, 5s);
  EXPECT_EQ(never.state(), State::closed);
  EXPECT_DOUBLE_EQ(*never.snapshot().slow_call_rate, 1.0);
}

TEST(CircuitBreaker, ForcedOpenAndDisabledIgnoreOutcomes) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("api", small_config(), clock);
  breaker.transition_to_forced_open();
  EXPECT_EQ(breaker.state(), State::forced_open);
  clock.advance(1h);
  EXPECT_FALSE(breaker.try_acquire_permission());
  record(breaker, 10, 0);
  EXPECT_EQ(breaker.state(), State::forced_open);

  breaker.transition_to_disabled();
  record(breaker, 0, 100);
  EXPECT_EQ(breaker.state(), State::disabled);
  EXPECT_TRUE(breaker.try_acquire_permission());

  breaker.transition_to_closed();
  EXPECT_EQ(breaker.state(), State::closed);
  breaker.transition_to_open();
  EXPECT_EQ(breaker.state(), State::open);
  breaker.reset();
  EXPECT_EQ(breaker.state(), State::closed);
  EXPECT_EQ(breaker.snapshot().failed_total, 100u);  // totals survive transitions
}

TEST(CircuitBreaker, EveryTransitionIsPublishedAndCounted) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("events", small_config(), clock);
  std::vector<std::pair<State, State>> seen;
  breaker.set_listener([&](const rp::CircuitStateTransition& t) {
    EXPECT_EQ(t.name, "events");
    seen.emplace_back(t.from, t.to);
  });
  record(breaker, 0, 10);  // CLOSED -> OPEN
  clock.advance(30s);
  ASSERT_TRUE(breaker.try_acquire_permission());  // OPEN -> HALF_OPEN
  record(breaker, 0, 3);                          // HALF_OPEN -> OPEN
  clock.advance(30s);
  ASSERT_TRUE(breaker.try_acquire_permission());  // OPEN -> HALF_OPEN
  record(breaker, 3, 0);                          // HALF_OPEN -> CLOSED
  breaker.transition_to_forced_open();            // CLOSED -> FORCED_OPEN
  breaker.transition_to_disabled();               // FORCED_OPEN -> DISABLED
  breaker.transition_to_closed();                 // DISABLED -> CLOSED
  const std::vector<std::pair<State, State>> expected{
      {State::closed, State::open},          {State::open, State::half_open},   {State::half_open, State::open},
      {State::open, State::half_open},       {State::half_open, State::closed}, {State::closed, State::forced_open},
      {State::forced_open, State::disabled}, {State::disabled, State::closed}};
  EXPECT_EQ(seen, expected);
  const auto snapshot = breaker.snapshot();
  EXPECT_EQ(snapshot.transitions_total, 8u);
  EXPECT_EQ(snapshot.entered_total[static_cast<std::size_t>(State::open)], 2u);
  EXPECT_EQ(snapshot.entered_total[static_cast<std::size_t>(State::half_open)], 2u);
  EXPECT_EQ(snapshot.entered_total[static_cast<std::size_t>(State::closed)], 3u);  // construction included
}

TEST(CircuitBreaker, ExecuteTimesRecordsAndRefuses) {
  rp::ManualClock clock;
  rp::CircuitBreaker breaker("exec", small_config(), clock);
  EXPECT_EQ(breaker.execute([] { return 42; }), std::optional<int>(42));
  EXPECT_TRUE(breaker.execute([] {}));
  for (int i = 0; i < 8; ++i) {  // with the 2 successes: 80% of 10 calls
    EXPECT_THROW(breaker.execute([]() -> int { throw std::runtime_error("down"); }), std::runtime_error);
  }
  EXPECT_EQ(breaker.state(), State::open);
  bool called = false;
  EXPECT_EQ(breaker.execute([&] {
    called = true;
    return 1;
  }),
            std::nullopt);
  EXPECT_FALSE(called);
  EXPECT_FALSE(breaker.execute([] {}));
  const auto snapshot = breaker.snapshot();
  EXPECT_EQ(snapshot.successful_total, 2u);
  EXPECT_EQ(snapshot.failed_total, 8u);
  EXPECT_EQ(snapshot.not_permitted_total, 2u);
}

TEST(CircuitBreaker, ConfigFromLimitsAndValidation) {
  rp::LimitsConfig limits;
  const auto config = rp::CircuitBreakerConfig::from(limits);
  EXPECT_DOUBLE_EQ(config.failure_rate_threshold, 0.5);
  EXPECT_EQ(config.sliding_window_size, 100u);
  EXPECT_EQ(config.minimum_number_of_calls, 10u);
  EXPECT_EQ(config.wait_duration_in_open_state, 30s);
  EXPECT_EQ(config.permitted_calls_in_half_open, 5u);
  EXPECT_EQ(config.slow_call_duration, 10s);
  auto bad = config;
  bad.failure_rate_threshold = 1.5;
  EXPECT_THROW(rp::CircuitBreaker("x", bad), rp::ConfigError);
  bad = config;
  bad.sliding_window_size = 0;
  EXPECT_THROW(bad.validate(), rp::ConfigError);
}

TEST(CircuitBreaker, ConcurrentOutcomesAreAllCounted) {
  rp::ManualClock clock;
  auto config = small_config();
  config.failure_rate_threshold = 1.0;  // never opens on these mixed outcomes
  rp::CircuitBreaker breaker("threads", config, clock);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        if (breaker.try_acquire_permission()) {
          if ((i + t) % 4 == 0) {
            breaker.on_error(1ms);
          } else {
            breaker.on_success(1ms);
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto snapshot = breaker.snapshot();
  EXPECT_EQ(snapshot.successful_total + snapshot.failed_total, 8000u);
  EXPECT_EQ(snapshot.failed_total, 2000u);
  EXPECT_EQ(breaker.state(), State::closed);
}

TEST(CircuitBreakerRegistry, OneBreakerPerServiceWithPerServiceConfig) {
  rp::ManualClock clock;
  rp::CircuitBreakerRegistry registry(small_config(), 8, clock);
  auto a = registry.get("a");
  EXPECT_EQ(a, registry.get("a"));
  EXPECT_NE(a, registry.get("b"));
  EXPECT_EQ(registry.find("c"), nullptr);
  auto strict = small_config();
  strict.minimum_number_of_calls = 2;
  strict.sliding_window_size = 2;
  registry.configure("strict", strict);
  auto s = registry.get("strict");
  EXPECT_EQ(s->config().sliding_window_size, 2u);
  record(*s, 0, 2);
  EXPECT_EQ(s->state(), State::open);
  const auto stats = registry.stats();
  EXPECT_EQ(stats.transitions, 1u);
  EXPECT_EQ(stats.entered[static_cast<std::size_t>(State::open)], 1u);
  const auto snapshots = registry.snapshots();
  ASSERT_EQ(snapshots.size(), 3u);
  EXPECT_EQ(snapshots[2].name, "strict");
  EXPECT_EQ(snapshots[2].state, State::open);
}

TEST(CircuitBreakerRegistry, BoundedEvictingIdleClosedBreakersFirst) {
  rp::ManualClock clock;
  rp::CircuitBreakerRegistry registry(small_config(), 3, clock);
  auto a = registry.get("a");
  clock.advance(1s);
  auto b = registry.get("b");
  clock.advance(1s);
  auto c = registry.get("c");
  clock.advance(1s);
  a->transition_to_forced_open();  // protecting something: must not be evicted
  b->on_success();                 // used recently
  auto d = registry.get("d");      // evicts c: closed and least recently used
  EXPECT_EQ(registry.size(), 3u);
  EXPECT_EQ(registry.find("c"), nullptr);
  EXPECT_NE(registry.find("a"), nullptr);
  EXPECT_NE(registry.find("b"), nullptr);

  b->transition_to_open();
  d->transition_to_forced_open();
  auto e = registry.get("e");  // nothing evictable: the shared overflow breaker
  EXPECT_EQ(e->name(), rp::CircuitBreakerRegistry::kOverflowName);
  EXPECT_EQ(registry.size(), 3u);
  const auto stats = registry.stats();
  EXPECT_EQ(stats.evicted, 1u);
  EXPECT_EQ(stats.overflowed, 1u);
  EXPECT_EQ(stats.created, 4u);
  EXPECT_EQ(registry.snapshots().size(), 4u);  // the overflow breaker shows once used
}

}  // namespace
