#include "riptide/performance/timing/cpu_profiler.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <link.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unwind.h>

#include "riptide/performance/core/features.hpp"

// _dl_find_object (glibc 2.35) is what lets libgcc's unwinder find unwind tables without the loader's lock.
#if RIPTIDE_PERF_HAS_BOTTLENECK_ANALYSIS && defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) && \
    defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define RIPTIDE_PERF_CPU_SAMPLER 1
#else
#define RIPTIDE_PERF_CPU_SAMPLER 0
#endif

namespace riptide::performance {

const char* to_string(CpuProfileResult::Status status) noexcept {
  switch (status) {
    case CpuProfileResult::Status::ok:
      return "ok";
    case CpuProfileResult::Status::busy:
      return "busy";
    case CpuProfileResult::Status::unavailable:
      return "unavailable";
    case CpuProfileResult::Status::failed:
      return "failed";
  }
  return "unknown";
}

namespace {

std::atomic<bool> g_profiling{false};  // one profile at a time

#if RIPTIDE_PERF_CPU_SAMPLER
// Whether the dynamic string table of a loaded object (the names of every symbol it imports or exports)
// contains `name`.
bool dynamic_strings_contain(const dl_phdr_info& object, std::string_view name) noexcept {
  for (ElfW(Half) i = 0; i < object.dlpi_phnum; ++i) {
    if (object.dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
    const char* strings = nullptr;
    std::size_t size = 0;
    for (const auto* entry = reinterpret_cast<const ElfW(Dyn)*>(object.dlpi_addr + object.dlpi_phdr[i].p_vaddr);
         entry->d_tag != DT_NULL; ++entry) {
      if (entry->d_tag == DT_STRTAB) {
        // The loader relocates the entry in place on x86-64 and AArch64; an offset means it did not.
        ElfW(Addr) address = entry->d_un.d_ptr;
        if (address < object.dlpi_addr) address += object.dlpi_addr;
        strings = reinterpret_cast<const char*>(address);
      }
      if (entry->d_tag == DT_STRSZ) size = entry->d_un.d_val;
    }
    if (strings != nullptr && size > 0 && ::memmem(strings, size, name.data(), name.size()) != nullptr) return true;
  }
  return false;
}

// Whether the loaded libgcc_s finds unwind tables with _dl_find_object (GCC 12 and later) rather than
// dl_iterate_phdr, which takes the loader's lock.
bool unwinder_avoids_loader_lock() noexcept {
  std::optional<bool> uses_find_object;  // empty: libgcc_s is not loaded
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "libgcc_s.so") == nullptr) return 0;
        *static_cast<std::optional<bool>*>(data) = dynamic_strings_contain(*info, "_dl_find_object");
        return 1;
      },
      &uses_find_object);
  return uses_find_object.value_or(false);
}
#endif

}  // namespace

bool CpuProfiler::available() noexcept {
#if RIPTIDE_PERF_CPU_SAMPLER
  static const bool lock_free = unwinder_avoids_loader_lock();
  return lock_free;
#else
  return false;
#endif
}

bool CpuProfiler::running() noexcept {
  return g_profiling.load(std::memory_order_acquire);
}

#if RIPTIDE_PERF_CPU_SAMPLER
namespace {

constexpr long kSamplingPeriodUs = 1'000'000 / CpuProfiler::kSamplesPerSecond;
// The handler's own frames and the signal trampoline precede the interrupted frame in the walk.
constexpr unsigned kHandlerFramesBudget = 16;
// 32,768 stacks (~17 MB) hold a minute of two fully busy cores sampled at 100 Hz several times over.
constexpr std::size_t kMaxSamples = 32'768;

struct Sample {
  std::uint32_t depth;
  std::uintptr_t frames[CpuProfiler::kMaxFrames];  // the interrupted instruction, then return addresses
};

// Filled by the SIGPROF handler on whichever thread it interrupts; read by profile() only after sampling
// stopped and every handler has left.
struct SampleBuffer {
  std::unique_ptr<Sample[]> slots;
  std::size_t capacity = 0;
  std::atomic<std::size_t> claimed{0};
  std::atomic<std::uint64_t> dropped{0};
};

std::atomic<SampleBuffer*> g_buffer{nullptr};  // set only while sampling
std::atomic<int> g_handlers_inside{0};

std::uintptr_t interrupted_instruction(const void* signal_context) noexcept {
  const auto* context = static_cast<const ucontext_t*>(signal_context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(context->uc_mcontext.gregs[REG_RIP]);
#else
  return static_cast<std::uintptr_t>(context->uc_mcontext.pc);
#endif
}

struct StackWalk {
  Sample* sample = nullptr;
  std::uintptr_t interrupted = 0;
  bool reached_interrupted_frame = false;
  unsigned frames_visited = 0;
};

_Unwind_Reason_Code collect_frame(_Unwind_Context* context, void* argument) {
  auto* walk = static_cast<StackWalk*>(argument);
  if (++walk->frames_visited > CpuProfiler::kMaxFrames + kHandlerFramesBudget) return _URC_END_OF_STACK;
  const auto address = static_cast<std::uintptr_t>(_Unwind_GetIP(context));
  if (address == 0) return _URC_END_OF_STACK;  // the outermost frame's caller
  if (!walk->reached_interrupted_frame) {
    // libgcc reports a signal frame at the exact interrupted instruction, which frames[0] already holds.
    walk->reached_interrupted_frame = address == walk->interrupted;
    return _URC_NO_REASON;
  }
  Sample& sample = *walk->sample;
  if (sample.depth >= CpuProfiler::kMaxFrames) return _URC_END_OF_STACK;
  sample.frames[sample.depth++] = address;
  return _URC_NO_REASON;
}

// Async-signal-safe: atomics, stores into preallocated memory and libgcc's unwinder (no locks, no
// allocation on glibc 2.35+).
void record_sample(SampleBuffer& buffer, const void* signal_context) noexcept {
  const std::size_t slot = buffer.claimed.fetch_add(1, std::memory_order_relaxed);
  if (slot >= buffer.capacity) {
    buffer.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Sample& sample = buffer.slots[slot];
  sample.frames[0] = interrupted_instruction(signal_context);
  sample.depth = 1;
  StackWalk walk{.sample = &sample, .interrupted = sample.frames[0]};
  _Unwind_Backtrace(collect_frame, &walk);
}

void on_sigprof(int, siginfo_t*, void* signal_context) {
  const int saved_errno = errno;
  // Sequentially consistent with stop_sampling(): either it sees this handler inside, or this handler
  // sees the buffer gone.
  g_handlers_inside.fetch_add(1);
  if (SampleBuffer* buffer = g_buffer.load(); buffer != nullptr) record_sample(*buffer, signal_context);
  g_handlers_inside.fetch_sub(1);
  errno = saved_errno;
}

bool is_our_handler(const struct sigaction& action) {
  return (action.sa_flags & SA_SIGINFO) != 0 && action.sa_sigaction == on_sigprof;
}

// Installs the handler unless another one owns SIGPROF; empty on success, else why not.
std::string install_handler() {
  struct sigaction current {};
  if (::sigaction(SIGPROF, nullptr, &current) != 0)
    return std::string("cannot read SIGPROF's handler: ") + std::strerror(errno);
  if (is_our_handler(current)) return {};
  const bool unclaimed =
      (current.sa_flags & SA_SIGINFO) == 0 && (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN);
  if (!unclaimed) {
    return "SIGPROF already has a handler in this process (another CPU profiler, e.g. gperftools started by "
           "CPUPROFILE); stop it to take profiles here";
  }
  struct sigaction action {};
  action.sa_sigaction = on_sigprof;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGPROF, &action, nullptr) != 0)
    return std::string("cannot install a SIGPROF handler: ") + std::strerror(errno);
  return {};
}

// Empty when ITIMER_PROF is free, else why it is not ours to use.
std::string check_timer_free() {
  itimerval current{};
  if (::getitimer(ITIMER_PROF, &current) != 0) return std::string("cannot read ITIMER_PROF: ") + std::strerror(errno);
  const bool armed = current.it_value.tv_sec != 0 || current.it_value.tv_usec != 0 || current.it_interval.tv_sec != 0 ||
                     current.it_interval.tv_usec != 0;
  if (armed) return "ITIMER_PROF is already armed in this process (another CPU profiler is sampling)";
  return {};
}

bool set_timer(long period_us) {
  itimerval timer{};
  timer.it_interval.tv_usec = period_us;
  timer.it_value.tv_usec = period_us;
  return ::setitimer(ITIMER_PROF, &timer, nullptr) == 0;
}

void stop_sampling() {
  (void)set_timer(0);
  g_buffer.store(nullptr);
  // A handler already inside finishes its stack walk (bounded, never blocks) before the buffer is read.
  while (g_handlers_inside.load() != 0) std::this_thread::yield();
}

std::size_t buffer_capacity(std::chrono::nanoseconds duration) {
  const auto seconds = static_cast<std::size_t>(std::chrono::ceil<std::chrono::seconds>(duration).count());
  const std::size_t cores = std::max(1U, std::thread::hardware_concurrency());
  return std::min(kMaxSamples, (seconds + 1) * CpuProfiler::kSamplesPerSecond * cores);
}

void append_word(std::string& out, std::uintptr_t word) {
  out.append(reinterpret_cast<const char*>(&word), sizeof word);
}

// The legacy CPU-profile format: header words 0, 3, 0, period (µs), 0; per distinct stack its count,
// depth and addresses; the trailer 0, 1, 0; then the text of /proc/self/maps, which pprof needs to map
// addresses to binaries.
std::string write_legacy_profile(const Sample* samples, std::size_t count) {
  std::unordered_map<std::string_view, std::uint64_t> stacks;
  for (std::size_t i = 0; i < count; ++i) {
    const Sample& sample = samples[i];
    ++stacks[std::string_view(reinterpret_cast<const char*>(sample.frames), sample.depth * sizeof(std::uintptr_t))];
  }
  std::string out;
  for (const std::uintptr_t word : {0UL, 3UL, 0UL, static_cast<std::uintptr_t>(kSamplingPeriodUs), 0UL})
    append_word(out, word);
  for (const auto& [frames, times] : stacks) {
    append_word(out, times);
    append_word(out, frames.size() / sizeof(std::uintptr_t));
    out.append(frames);
  }
  for (const std::uintptr_t word : {0UL, 1UL, 0UL}) append_word(out, word);
  std::ifstream maps("/proc/self/maps");
  out.append(std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>());
  return out;
}

// A no-op walk outside any signal handler, so the unwinder's one-time set-up never runs inside one.
void warm_up_unwinder() {
  _Unwind_Backtrace([](_Unwind_Context*, void*) { return _URC_END_OF_STACK; }, nullptr);
}

// Clears the busy flag however profile() leaves.
struct BusyGuard {
  ~BusyGuard() { g_profiling.store(false, std::memory_order_release); }
};

}  // namespace

CpuProfileResult CpuProfiler::profile(std::chrono::nanoseconds duration) noexcept {
  CpuProfileResult result;
  bool expected = false;
  if (!g_profiling.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
    result.status = CpuProfileResult::Status::busy;
    result.reason = "a CPU profile is already being taken; only one runs at a time";
    return result;
  }
  const BusyGuard guard;
  if (!available()) {
    result.status = CpuProfileResult::Status::unavailable;
    result.reason =
        "CPU profiles need an unwinder that does not take the loader's lock: this process's libgcc_s does not use "
        "_dl_find_object (it does from GCC 12 with glibc 2.35+), so sampling could deadlock the process";
    return result;
  }
  try {
    if (result.reason = check_timer_free(); !result.reason.empty()) return result;
    if (result.reason = install_handler(); !result.reason.empty()) return result;
    SampleBuffer buffer;
    buffer.capacity = buffer_capacity(duration);
    buffer.slots = std::make_unique_for_overwrite<Sample[]>(buffer.capacity);
    warm_up_unwinder();

    g_buffer.store(&buffer);
    if (!set_timer(kSamplingPeriodUs)) {
      result.reason = std::string("cannot arm ITIMER_PROF: ") + std::strerror(errno);
      stop_sampling();
      return result;
    }
    const auto started = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(duration);
    stop_sampling();
    result.duration = std::chrono::steady_clock::now() - started;

    result.samples = std::min(buffer.claimed.load(), buffer.capacity);
    result.dropped_samples = buffer.dropped.load();
    result.profile = write_legacy_profile(buffer.slots.get(), result.samples);
    result.status = CpuProfileResult::Status::ok;
  } catch (const std::exception& e) {
    stop_sampling();
    result.status = CpuProfileResult::Status::failed;
    result.profile.clear();
    result.reason = std::string("CPU profile failed: ") + e.what();
  }
  return result;
}
#else
CpuProfileResult CpuProfiler::profile(std::chrono::nanoseconds) noexcept {
  CpuProfileResult result;
  result.status = CpuProfileResult::Status::unavailable;
  result.reason = RIPTIDE_PERF_HAS_BOTTLENECK_ANALYSIS
                      ? "CPU profiles need Linux on x86-64 or AArch64 with glibc 2.35 or later (a lock-free unwinder)"
                      : "built without RIPTIDE_PERF_BOTTLENECK_ANALYSIS";
  return result;
}
#endif

}  // namespace riptide::performance
