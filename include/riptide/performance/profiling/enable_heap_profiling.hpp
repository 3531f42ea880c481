#pragma once
// Turns on jemalloc's heap profiler for the process, from the host's source code.
//
// Put RIPTIDE_PERF_ENABLE_HEAP_PROFILING() once, at namespace scope, in the file that defines main().
// It defines the `malloc_conf` symbol that jemalloc reads before the first allocation. The definition must
// be in the executable itself: in a static library it is only honoured if its object file is pulled into
// the link, which nothing guarantees, so the library does not do it for you.
//
// The alternative that needs no rebuild is the environment (it is read as well; later settings win):
//   MALLOC_CONF=prof:true,prof_active:true,lg_prof_sample:19,prof_accum:true ./my_service
//
// prof:true        the profiler exists (cannot be switched on after start)
// prof_active:true sampling runs from the start (HeapProfilingControl::set_active toggles it)
// lg_prof_sample   mean sampling interval 2^19 = 512 KiB: < 1% overhead on allocation-heavy code
// prof_accum:true  keep cumulative counts, so top allocation sites include freed allocations
//
// Debian's jemalloc is built without a symbol prefix, so the symbol is `malloc_conf`.

#define RIPTIDE_PERF_HEAP_PROFILING_CONF "prof:true,prof_active:true,lg_prof_sample:19,prof_accum:true"

/// Use at namespace scope in the file with main(). Expands to a definition, so use it once per program.
#define RIPTIDE_PERF_ENABLE_HEAP_PROFILING()                  \
  extern "C" {                                                \
  extern const char* malloc_conf;                             \
  const char* malloc_conf = RIPTIDE_PERF_HEAP_PROFILING_CONF; \
  }                                                           \
  static_assert(true, "")

/// Same, with a caller-chosen jemalloc option string (e.g. a lower lg_prof_sample in tests).
#define RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH(conf) \
  extern "C" {                                        \
  extern const char* malloc_conf;                     \
  const char* malloc_conf = conf;                     \
  }                                                   \
  static_assert(true, "")
