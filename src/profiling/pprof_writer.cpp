#include "riptide/performance/profiling/pprof_writer.hpp"

#include <zlib.h>

#include <chrono>
#include <cmath>
#include <map>
#include <protozero/pbf_writer.hpp>
#include <stdexcept>
#include <unordered_map>

#include "pprof_encoder.hpp"
#include "riptide/performance/profiling/symbol_lookup.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {
namespace {

// Field numbers of perftools.profiles.Profile (pprof's proto/profile.proto).
namespace profile_field {
constexpr protozero::pbf_tag_type kSampleType = 1, kSample = 2, kMapping = 3, kLocation = 4, kFunction = 5,
                                  kStringTable = 6, kTimeNanos = 9, kDurationNanos = 10, kPeriodType = 11, kPeriod = 12,
                                  kDefaultSampleType = 14;
}
namespace value_type_field {
constexpr protozero::pbf_tag_type kType = 1, kUnit = 2;
}
namespace sample_field {
constexpr protozero::pbf_tag_type kLocationId = 1, kValue = 2;
}
namespace mapping_field {
constexpr protozero::pbf_tag_type kId = 1, kMemoryStart = 2, kMemoryLimit = 3, kFileOffset = 4, kFilename = 5,
                                  kBuildId = 6, kHasFunctions = 7, kHasFilenames = 8, kHasLineNumbers = 9;
}
namespace location_field {
constexpr protozero::pbf_tag_type kId = 1, kMappingId = 2, kAddress = 3, kLine = 4;
}
namespace line_field {
constexpr protozero::pbf_tag_type kFunctionId = 1, kLine = 2;
}
namespace function_field {
constexpr protozero::pbf_tag_type kId = 1, kName = 2, kSystemName = 3, kFilename = 4;
}

class StringTable {
 public:
  StringTable() { index(""); }  // entry 0 must be the empty string
  std::int64_t index(const std::string& text) {
    const auto [it, inserted] = ids_.try_emplace(text, static_cast<std::int64_t>(strings_.size()));
    if (inserted) {
      strings_.push_back(text);
    }
    return it->second;
  }
  [[nodiscard]] const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string, std::int64_t> ids_;
  std::vector<std::string> strings_;
};

std::int64_t rounded(double value) {
  return static_cast<std::int64_t>(std::llround(value));
}

}  // namespace

std::string gzip_compress(std::string_view data) {
  z_stream stream{};
  constexpr int kGzipWindowBits = 15 + 16;  // +16 selects the gzip wrapper
  constexpr int kMemLevel = 8;
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("zlib deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&stream, static_cast<uLong>(data.size())) + 32);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) {
    throw std::runtime_error("zlib deflate did not finish");
  }
  return out;
}

namespace detail {

std::string encode_pprof_heap(const std::vector<PprofHeapSample>& samples, const PprofHeapHeader& header,
                              Symbolizer& symbolizer, const PprofOptions& options) {
  static const std::vector<MappedRegion> kNoMappings;
  const std::vector<MappedRegion>& regions = header.mappings != nullptr ? *header.mappings : kNoMappings;
  StringTable strings;
  std::string buffer;
  protozero::pbf_writer writer(buffer);

  const auto value_type = [&](protozero::pbf_tag_type tag, const char* type, const char* unit) {
    protozero::pbf_writer nested(writer, tag);
    nested.add_int64(value_type_field::kType, strings.index(type));
    nested.add_int64(value_type_field::kUnit, strings.index(unit));
  };
  value_type(profile_field::kSampleType, "alloc_objects", "count");
  value_type(profile_field::kSampleType, "alloc_space", "bytes");
  value_type(profile_field::kSampleType, "inuse_objects", "count");
  value_type(profile_field::kSampleType, "inuse_space", "bytes");

  // Mappings: file-backed executable regions; ids start at 1, in address order as /proc/self/maps lists them.
  // They are written after the locations, whose names decide the mapping's has_* flags.
  struct MappingRef {
    std::uint64_t id, start, limit;
    const MappedRegion* region;
    bool all_named = true, all_files = true, all_lines = true;
  };
  std::vector<MappingRef> mappings;
  for (const auto& region : regions) {
    if (!region.executable() || region.path.empty() || region.path.front() == '[') {
      continue;
    }
    mappings.push_back({mappings.size() + 1, region.start, region.limit, &region});
  }
  const auto mapping_of = [&](std::uint64_t address) -> MappingRef* {
    for (auto& mapping : mappings) {
      if (address >= mapping.start && address < mapping.limit) {
        return &mapping;
      }
    }
    return nullptr;
  };

  std::unordered_map<std::uint64_t, std::uint64_t> location_ids;              // address -> id
  std::map<std::pair<std::string, std::string>, std::uint64_t> function_ids;  // (name, file) -> id
  std::string locations_buffer;
  std::string functions_buffer;
  protozero::pbf_writer locations(locations_buffer);
  protozero::pbf_writer functions(functions_buffer);

  const auto location_id = [&](std::uint64_t return_address) {
    const auto [it, inserted] = location_ids.try_emplace(return_address, location_ids.size() + 1);
    if (!inserted) {
      return it->second;
    }
    // Stack frames are return addresses; pprof's locations are the calls themselves (the proto's "a non-leaf
    // address may be in the middle of a call instruction", as Go writes them): addr2line on a location, or
    // the symbol endpoint, then names the caller's line rather than the one after the call.
    const std::uint64_t call_site = return_address > 0 ? return_address - 1 : 0;
    MappingRef* mapping = mapping_of(call_site);
    protozero::pbf_writer location(locations, profile_field::kLocation);
    location.add_uint64(location_field::kId, it->second);
    if (mapping != nullptr) {
      location.add_uint64(location_field::kMappingId, mapping->id);
    }
    location.add_uint64(location_field::kAddress, call_site);
    const auto frame = options.symbolize ? symbolizer.resolve(return_address) : nullptr;
    if (frame == nullptr || !frame->has_symbol) {
      // No Line: pprof symbolizes the address itself (from the binary, or remotely), which it only does for
      // mappings not marked as having functions.
      if (mapping != nullptr) {
        mapping->all_named = false;
      }
      return it->second;
    }
    if (mapping != nullptr) {
      mapping->all_files = mapping->all_files && !frame->file.empty();
      mapping->all_lines = mapping->all_lines && frame->line != 0;
    }
    const auto [fit, new_function] = function_ids.try_emplace({frame->function, frame->file}, function_ids.size() + 1);
    if (new_function) {
      protozero::pbf_writer function(functions, profile_field::kFunction);
      function.add_uint64(function_field::kId, fit->second);
      function.add_int64(function_field::kName, strings.index(frame->function));
      function.add_int64(function_field::kSystemName, strings.index(frame->function));
      function.add_int64(function_field::kFilename, strings.index(frame->file));
    }
    {
      protozero::pbf_writer line(location, location_field::kLine);
      line.add_uint64(line_field::kFunctionId, fit->second);
      line.add_int64(line_field::kLine, frame->line);
    }
    return it->second;
  };

  std::vector<std::uint64_t> ids;
  for (const auto& sample : samples) {
    const auto& frames = *sample.frames;
    if (frames.empty()) {
      continue;
    }
    std::size_t first = options.skip_allocator_frames ? first_caller_frame(frames, symbolizer) : 0;
    if (first == frames.size()) {
      first = frames.size() - 1;
    }
    ids.clear();
    for (std::size_t i = first; i < frames.size(); ++i) {
      ids.push_back(location_id(frames[i]));
    }
    protozero::pbf_writer sample_writer(writer, profile_field::kSample);
    sample_writer.add_packed_uint64(sample_field::kLocationId, ids.begin(), ids.end());
    sample_writer.add_packed_int64(sample_field::kValue, sample.values.begin(), sample.values.end());
  }
  symbolizer.trim();

  const auto objects = loaded_objects();
  for (const auto& mapping : mappings) {
    const MappedRegion& region = *mapping.region;
    protozero::pbf_writer nested(writer, profile_field::kMapping);
    nested.add_uint64(mapping_field::kId, mapping.id);
    nested.add_uint64(mapping_field::kMemoryStart, region.start);
    nested.add_uint64(mapping_field::kMemoryLimit, region.limit);
    nested.add_uint64(mapping_field::kFileOffset, region.offset);
    nested.add_int64(mapping_field::kFilename, strings.index(region.path));
    if (const auto build_id = build_id_of_mapping(objects, region.start, region.limit, region.path);
        !build_id.empty()) {
      nested.add_int64(mapping_field::kBuildId, strings.index(build_id));
    }
    // pprof symbolizes a mapping (locally, or with -symbolize=remote) only while none of these is set, and
    // then every location in it: so they are set only when every location here has a name.
    const bool named = options.symbolize && mapping.all_named;
    nested.add_bool(mapping_field::kHasFunctions, named);
    nested.add_bool(mapping_field::kHasFilenames, named && mapping.all_files);
    nested.add_bool(mapping_field::kHasLineNumbers, named && mapping.all_lines);
  }
  buffer.append(locations_buffer);  // repeated fields may appear in any order on the wire
  buffer.append(functions_buffer);

  writer.add_int64(profile_field::kTimeNanos,
                   std::chrono::duration_cast<std::chrono::nanoseconds>(header.time.time_since_epoch()).count());
  if (header.duration > std::chrono::nanoseconds{0}) {
    writer.add_int64(profile_field::kDurationNanos, header.duration.count());
  }
  value_type(profile_field::kPeriodType, "space", "bytes");
  writer.add_int64(profile_field::kPeriod, static_cast<std::int64_t>(header.sample_period));
  writer.add_int64(
      profile_field::kDefaultSampleType,
      strings.index(options.default_sample == PprofDefaultSample::alloc_space ? "alloc_space" : "inuse_space"));
  for (const auto& text : strings.strings()) {
    writer.add_string(profile_field::kStringTable, text);
  }
  return options.gzip ? gzip_compress(buffer) : buffer;
}

}  // namespace detail

std::string write_pprof_heap_profile(const HeapProfile& profile, Symbolizer& symbolizer, const PprofOptions& options) {
  std::vector<detail::PprofHeapSample> samples;
  samples.reserve(profile.stacks.size());
  for (const auto& stack : profile.stacks) {
    const auto counts = unbias(stack.sampled, profile.sample_period);
    samples.push_back({.frames = &stack.frames,
                       .values = {rounded(counts.alloc_objects), rounded(counts.alloc_bytes),
                                  rounded(counts.live_objects), rounded(counts.live_bytes)}});
  }
  return detail::encode_pprof_heap(
      samples, {.sample_period = profile.sample_period, .time = profile.captured_at, .mappings = &profile.mappings},
      symbolizer, options);
}

#if RIPTIDE_PERF_HAS_FLAMEGRAPH
std::string write_folded_stacks(const HeapProfile& profile, Symbolizer& symbolizer, FoldedValue value) {
  std::map<std::string, double> folded;
  std::string line;
  for (const auto& stack : profile.stacks) {
    if (stack.frames.empty()) {
      continue;
    }
    std::size_t first = first_caller_frame(stack.frames, symbolizer);
    if (first == stack.frames.size()) {
      first = stack.frames.size() - 1;
    }
    const auto counts = unbias(stack.sampled, profile.sample_period);
    double amount = 0;
    switch (value) {
      case FoldedValue::inuse_bytes:
        amount = counts.live_bytes;
        break;
      case FoldedValue::alloc_bytes:
        amount = counts.alloc_bytes;
        break;
      case FoldedValue::inuse_objects:
        amount = counts.live_objects;
        break;
      case FoldedValue::alloc_objects:
        amount = counts.alloc_objects;
        break;
    }
    if (!(amount > 0)) {
      continue;
    }
    line.clear();
    for (std::size_t i = stack.frames.size(); i-- > first;) {
      std::string name = symbolizer.resolve(stack.frames[i])->function;
      for (char& c : name) {
        if (c == ';' || c == '\n') {
          c = ':';  // ';' separates frames and ' ' precedes the value in the folded format
        }
      }
      if (!line.empty()) {
        line += ';';
      }
      line += name;
    }
    folded[line] += amount;
  }
  symbolizer.trim();
  std::string out;
  for (const auto& [stack, amount] : folded) {
    out += stack;
    out += ' ';
    out += std::to_string(static_cast<std::uint64_t>(std::llround(amount)));
    out += '\n';
  }
  return out;
}
#endif

}  // namespace riptide::performance
