#include "riptide/performance/profiling/heap_profile.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/self_heap.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {

namespace {

std::string temp_base(const std::string& dump_directory) {
  if (!dump_directory.empty()) {
    return dump_directory;
  }
  const char* tmpdir = std::getenv("TMPDIR");
  return (tmpdir != nullptr && *tmpdir != '\0') ? std::string(tmpdir) : std::string("/tmp");
}

ProfilingError io_error(const std::string& what, const std::string& path, int code) {
  return ProfilingError{ProfilingErrorKind::io, what + " " + path + ": " + std::strerror(code),
                        "set profiling.dump_directory to a writable directory (a tmpfs is best)", 0};
}

}  // namespace

ProfilingResult<std::string> capture_heap_dump_text(const std::string& dump_directory) {
  if (!HeapProfilingControl::available()) {
    return HeapProfilingControl::unavailable_error();
  }
  try {
    // A private directory (mode 0700) so no other user can read or pre-create the dump file.
    std::string directory = temp_base(dump_directory) + "/riptide-heap-XXXXXX";
    if (mkdtemp(directory.data()) == nullptr) {
      return io_error("cannot create a private directory under", temp_base(dump_directory), errno);
    }
    const std::string path = directory + "/heap.prof";
    const int code = JemallocCtl::write_string("prof.dump", path.c_str());
    if (code != 0) {
      ::unlink(path.c_str());
      ::rmdir(directory.c_str());
      // jemalloc reports any write failure (disk full, quota, I/O error) as EFAULT: name the likely causes.
      return ProfilingError{ProfilingErrorKind::dump_failed,
                            "mallctl(\"prof.dump\") failed writing " + path + ": " + std::strerror(code),
                            "check free space and quota under " + temp_base(dump_directory) +
                                " or set profiling.dump_directory to a writable directory (a tmpfs is best)",
                            0};
    }
    std::string text;
    {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        const int open_errno = errno;
        ::unlink(path.c_str());
        ::rmdir(directory.c_str());
        return io_error("cannot read the heap dump", path, open_errno);
      }
      std::ostringstream buffer;
      buffer << in.rdbuf();
      text = std::move(buffer).str();
    }
    ::unlink(path.c_str());
    ::rmdir(directory.c_str());
    return text;
  } catch (const std::exception& e) {
    return ProfilingError{ProfilingErrorKind::io, std::string("heap dump capture failed: ") + e.what(), {}, 0};
  }
}

ProfilingResult<HeapProfile> capture_heap_profile(const std::string& dump_directory) {
  auto text = capture_heap_dump_text(dump_directory);
  if (!text) {
    return text.error();
  }
  auto profile = parse_heap_profile(text.value());
  if (profile) {
    profile.value().captured_at = std::chrono::system_clock::now();
  }
  return profile;
}

std::size_t first_caller_frame(const std::vector<std::uint64_t>& frames, Symbolizer& symbolizer) {
  std::size_t index = 0;
  while (index < frames.size() && (symbolizer.classify(frames[index]) & kFrameAllocator) != 0) {
    ++index;
  }
  return index;
}

std::vector<HeapSite> aggregate_by_site(const HeapProfile& profile, Symbolizer& symbolizer) {
  SiteAttributor attribute(symbolizer);
  std::unordered_map<std::string, std::size_t> index_of;
  std::vector<HeapSite> sites;
  std::vector<double> heaviest;  // weight of the stack kept as each site's representative
  index_of.reserve(profile.stacks.size());
  for (const auto& stack : profile.stacks) {
    // The library's own allocations (its threads, its JSON and symbolizer work) are its footprint
    // (self_heap.hpp), not the host's: they never rank among the host's sites or leak suspects.
    if (stack.frames.empty() || owner_of_stack(stack.frames, symbolizer) == StackOwner::library) {
      continue;
    }
    SiteLocation location = attribute(stack.frames);
    // This stack's own frame that holds the site: stacks of one site reach its line through different
    // return addresses (a string body and a map node allocated on one line), so the first stack's
    // address is not in the others.
    const std::uint64_t holder_address = location.address;
    std::string key = location.key();
    const auto [it, inserted] = index_of.try_emplace(std::move(key), sites.size());
    if (inserted) {
      HeapSite site;
      site.id = std::hash<std::string>{}(it->first);
      site.location = std::move(location);
      sites.push_back(std::move(site));
      heaviest.push_back(-1.0);
    }
    HeapSite& site = sites[it->second];
    const auto counts = unbias(stack.sampled, profile.sample_period);
    site.counts.live_objects += counts.live_objects;
    site.counts.live_bytes += counts.live_bytes;
    site.counts.alloc_objects += counts.alloc_objects;
    site.counts.alloc_bytes += counts.alloc_bytes;
    site.counts.live_bytes_variance += counts.live_bytes_variance;
    site.counts.alloc_bytes_variance += counts.alloc_bytes_variance;
    site.counts.sampled_live_objects += counts.sampled_live_objects;
    site.counts.sampled_alloc_objects += counts.sampled_alloc_objects;
    const double weight = counts.live_bytes + counts.alloc_bytes;
    if (weight > heaviest[it->second]) {
      heaviest[it->second] = weight;
      // The kept stack starts at the frame that holds the site (the allocator's frames are noise).
      const auto holder = std::find(stack.frames.begin(), stack.frames.end(), holder_address);
      const auto from = holder != stack.frames.end() ? holder : stack.frames.begin();
      const auto kept = std::min<std::size_t>(static_cast<std::size_t>(stack.frames.end() - from), kMaxSiteStackFrames);
      site.address = *from;
      site.stack.assign(from, from + static_cast<std::ptrdiff_t>(kept));
    }
  }
  return sites;
}

}  // namespace riptide::performance
