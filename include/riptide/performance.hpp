#pragma once
// Umbrella header: everything a host needs from riptide-performance.
// Usage: #include <riptide/performance.hpp>  and  namespace rp = riptide::performance;

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/core/prometheus_writer.hpp"
#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_json.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/allocator_stats.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/memory/jemalloc_stats.hpp"
#include "riptide/performance/memory/memory_json.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/memory/memory_tracker.hpp"
#include "riptide/performance/memory/memory_trend.hpp"
#include "riptide/performance/memory/process_stats.hpp"
#include "riptide/performance/timing/cpu_profiler.hpp"
#include "riptide/performance/timing/latency_histogram.hpp"
#include "riptide/performance/timing/stage_timer.hpp"
#include "riptide/performance/timing/target_checker.hpp"
#include "riptide/performance/timing/throughput.hpp"
#if RIPTIDE_PERF_HAS_REDIS
#include "riptide/performance/redis/redis_client.hpp"
#include "riptide/performance/redis/redis_reply.hpp"
#endif
#if RIPTIDE_PERF_HAS_CACHE
#include "riptide/performance/cache/cache_advisor.hpp"
#include "riptide/performance/cache/cache_stats.hpp"
#include "riptide/performance/cache/tiered_cache.hpp"
#include "riptide/performance/cache/tiny_lfu_cache.hpp"
#if RIPTIDE_PERF_HAS_REDIS
#include "riptide/performance/cache/redis_cache.hpp"
#endif
#endif
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profile_cache.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/profiling_error.hpp"
#include "riptide/performance/profiling/profiling_json.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#endif
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
#include "riptide/performance/limits/circuit_breaker.hpp"
#include "riptide/performance/limits/circuit_breaker_registry.hpp"
#include "riptide/performance/limits/concurrency_limiter.hpp"
#include "riptide/performance/limits/gcra_limiter.hpp"
#include "riptide/performance/limits/keyed_rate_limiter.hpp"
#include "riptide/performance/limits/rate_decision.hpp"
#include "riptide/performance/limits/rate_quota.hpp"
#include "riptide/performance/limits/resource_limits.hpp"
#include "riptide/performance/limits/resource_usage.hpp"
#if RIPTIDE_PERF_HAS_REDIS
#include "riptide/performance/limits/redis_rate_limiter.hpp"
#endif
#endif
#if RIPTIDE_PERF_HAS_HTTP
// The embedded server and its routes; link riptide::performance_http as well (kept separate so hosts that
// mount the routes in their own server need not link Beast's code).
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/prometheus.hpp"
#include "riptide/performance/http/router.hpp"
#include "riptide/performance/http/server.hpp"
#endif
