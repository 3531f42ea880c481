#include "riptide/performance/profiling/heap_profile.hpp"

#include <charconv>
#include <cmath>
#include <optional>

// The heap_v2 parser and jeprof's unbiasing, with no other dependency, so the libFuzzer target can build it
// alone with sanitizers.

namespace riptide::performance {

double unbias_factor(std::uint64_t objects, std::uint64_t bytes, std::uint64_t period) noexcept {
  if (objects == 0 || period == 0) {
    return 1.0;
  }
  const double average = static_cast<double>(bytes) / static_cast<double>(objects);
  const double probability = -std::expm1(-average / static_cast<double>(period));  // 1 - e^(-s/R), exact for tiny s
  if (!(probability > 0.0)) {
    return 1.0;
  }
  return 1.0 / probability;
}

namespace {

// Variance of an unbiased byte estimate from k samples of average size s: each stands for s/p bytes and is
// drawn with probability p = 1 - e^(-s/R).
double estimate_variance(std::uint64_t objects, std::uint64_t bytes, std::uint64_t period) noexcept {
  if (objects == 0 || period == 0) return 0;
  const double k = static_cast<double>(objects);
  const double s = static_cast<double>(bytes) / k;
  const double p = -std::expm1(-s / static_cast<double>(period));
  return p > 0 ? k * s * s * (1 - p) / (p * p) : 0;
}

}  // namespace

UnbiasedCounts unbias(const HeapCounts& counts, std::uint64_t period) noexcept {
  UnbiasedCounts result;
  const double live = unbias_factor(counts.live_objects, counts.live_bytes, period);
  const double alloc = unbias_factor(counts.alloc_objects, counts.alloc_bytes, period);
  result.live_objects = static_cast<double>(counts.live_objects) * live;
  result.live_bytes = static_cast<double>(counts.live_bytes) * live;
  result.alloc_objects = static_cast<double>(counts.alloc_objects) * alloc;
  result.alloc_bytes = static_cast<double>(counts.alloc_bytes) * alloc;
  result.live_bytes_variance = estimate_variance(counts.live_objects, counts.live_bytes, period);
  result.alloc_bytes_variance = estimate_variance(counts.alloc_objects, counts.alloc_bytes, period);
  result.sampled_live_objects = counts.live_objects;
  result.sampled_alloc_objects = counts.alloc_objects;
  return result;
}

namespace {

// A line-oriented reader that reports errors with the 1-based line number and what it expected.
class DumpParser {
 public:
  explicit DumpParser(std::string_view text) : text_(text) {}

  ProfilingResult<HeapProfile> parse() {
    HeapProfile profile;
    if (!next_line()) {
      return fail("expected the header \"heap_v2/<sample period>\"", "an empty dump");
    }
    constexpr std::string_view kHeader = "heap_v2/";
    if (!line_.starts_with(kHeader)) {
      return fail("expected the header \"heap_v2/<sample period>\"", quote(line_));
    }
    std::string_view rest = line_.substr(kHeader.size());
    if (!parse_u64(rest, profile.sample_period) || !trim(rest).empty()) {
      return fail("expected a decimal sample period after \"heap_v2/\"", quote(line_));
    }
    if (!next_line() || !parse_counts_line(profile.totals, true)) {
      return error_ ? std::move(*error_)
                    : fail_value("expected the totals line \"  t*: <objs>: <bytes> [...]\"", "end of dump");
    }
    // Stacks, each "@ 0x..." followed by its t*: line and optional per-thread lines, until MAPPED_LIBRARIES.
    HeapStack* current = nullptr;
    bool counts_seen = true;
    while (next_line()) {
      std::string_view trimmed = trim(line_);
      if (trimmed.empty()) {
        continue;
      }
      if (trimmed.starts_with("t")) {
        if (trimmed.starts_with("t*:")) {
          if (current == nullptr || counts_seen) {
            return fail("expected a stack line \"@ 0x...\" before a \"t*:\" line", quote(line_));
          }
          if (!parse_counts_line(current->sampled, true)) {
            return std::move(*error_);
          }
          counts_seen = true;
          continue;
        }
        if (!counts_seen) {
          return fail("expected the stack's \"t*:\" totals line before per-thread lines", quote(line_));
        }
        HeapCounts ignored;
        if (!parse_counts_line(ignored, false)) {
          return std::move(*error_);
        }
        continue;
      }
      if (trimmed.starts_with("@")) {
        if (!counts_seen) {
          return fail("expected the previous stack's \"t*:\" line", quote(line_));
        }
        profile.stacks.emplace_back();
        current = &profile.stacks.back();
        if (!parse_stack(trimmed.substr(1), current->frames)) {
          return std::move(*error_);
        }
        counts_seen = false;
        continue;
      }
      if (trimmed == "MAPPED_LIBRARIES:") {
        if (!counts_seen) {
          return fail("expected the previous stack's \"t*:\" line", quote(line_));
        }
        return parse_mappings(std::move(profile));
      }
      return fail("expected \"@ <addresses>\", a \"t<N>:\" counts line or \"MAPPED_LIBRARIES:\"", quote(line_));
    }
    if (!counts_seen) {
      return fail_value("expected the last stack's \"t*:\" line", "end of dump");
    }
    return profile;  // MAPPED_LIBRARIES is optional (hand-written and truncated-by-design dumps)
  }

 private:
  bool next_line() {
    if (position_ >= text_.size()) {
      return false;
    }
    const auto end = text_.find('\n', position_);
    if (end == std::string_view::npos) {
      line_ = text_.substr(position_);
      position_ = text_.size();
    } else {
      line_ = text_.substr(position_, end - position_);
      position_ = end + 1;
    }
    if (!line_.empty() && line_.back() == '\r') {
      line_.remove_suffix(1);
    }
    ++line_number_;
    return true;
  }

  static std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
      text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
      text.remove_suffix(1);
    }
    return text;
  }

  static std::string quote(std::string_view text) {
    constexpr std::size_t kMaxShown = 80;
    std::string shown;
    for (const char c : text.substr(0, kMaxShown)) {
      shown += (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) ? '?' : c;
    }
    return "\"" + shown + (text.size() > kMaxShown ? "...\"" : "\"");
  }

  static bool parse_u64(std::string_view& text, std::uint64_t& value, int base = 10) {
    const auto* begin = text.data();
    const auto* end = text.data() + text.size();
    const auto [next, ec] = std::from_chars(begin, end, value, base);
    if (ec != std::errc{} || next == begin) {
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(next - begin));
    return true;
  }

  static bool consume(std::string_view& text, std::string_view token) {
    text = trim(text);
    if (!text.starts_with(token)) {
      return false;
    }
    text.remove_prefix(token.size());
    return true;
  }

  // "t*: A: B [C: D]" (or "t<N>: ..." when !totals); brackets optional.
  bool parse_counts_line(HeapCounts& counts, bool totals) {
    std::string_view rest = trim(line_);
    if (totals) {
      if (!consume(rest, "t*:")) {
        set_error("expected a \"t*: <objs>: <bytes> [<objs>: <bytes>]\" line", quote(line_));
        return false;
      }
    } else {
      std::uint64_t thread = 0;
      if (!consume(rest, "t") || !parse_u64(rest, thread) || !consume(rest, ":")) {
        set_error("expected a per-thread line \"t<N>: <objs>: <bytes> [<objs>: <bytes>]\"", quote(line_));
        return false;
      }
    }
    rest = trim(rest);
    if (!parse_u64(rest, counts.live_objects) || !consume(rest, ":") ||
        !(rest = trim(rest), parse_u64(rest, counts.live_bytes))) {
      set_error("expected \"<in-use objects>: <in-use bytes>\" as decimal numbers", quote(line_));
      return false;
    }
    rest = trim(rest);
    if (rest.empty()) {
      return true;
    }
    if (!consume(rest, "[") || !(rest = trim(rest), parse_u64(rest, counts.alloc_objects)) || !consume(rest, ":") ||
        !(rest = trim(rest), parse_u64(rest, counts.alloc_bytes)) || !consume(rest, "]") || !trim(rest).empty()) {
      set_error("expected \"[<allocated objects>: <allocated bytes>]\" after the in-use counts", quote(line_));
      return false;
    }
    return true;
  }

  bool parse_stack(std::string_view rest, std::vector<std::uint64_t>& frames) {
    rest = trim(rest);
    while (!rest.empty()) {
      if (!rest.starts_with("0x") && !rest.starts_with("0X")) {
        set_error("expected a hexadecimal address \"0x...\" in the stack line", quote(line_));
        return false;
      }
      rest.remove_prefix(2);
      std::uint64_t address = 0;
      if (!parse_u64(rest, address, 16) || (!rest.empty() && rest.front() != ' ' && rest.front() != '\t')) {
        set_error("expected a hexadecimal address \"0x...\" in the stack line", quote(line_));
        return false;
      }
      frames.push_back(address);
      rest = trim(rest);
    }
    if (frames.empty()) {
      set_error("expected at least one address after \"@\"", quote(line_));
      return false;
    }
    return true;
  }

  // "start-limit perms offset dev inode [path]", the /proc/<pid>/maps line format.
  ProfilingResult<HeapProfile> parse_mappings(HeapProfile profile) {
    while (next_line()) {
      std::string_view rest = trim(line_);
      if (rest.empty()) {
        continue;
      }
      MappedRegion region;
      std::uint64_t ignored = 0;
      if (!parse_u64(rest, region.start, 16) || !consume(rest, "-") || !parse_u64(rest, region.limit, 16)) {
        return fail("expected a mapping \"<start>-<end> <perms> <offset> <dev> <inode> [path]\"", quote(line_));
      }
      rest = trim(rest);
      const auto space = rest.find(' ');
      if (space == std::string_view::npos || space != 4) {
        return fail("expected 4 permission characters such as \"r-xp\" after the address range", quote(line_));
      }
      region.permissions = std::string(rest.substr(0, 4));
      rest = trim(rest.substr(4));
      if (!parse_u64(rest, region.offset, 16)) {
        return fail("expected a hexadecimal file offset after the permissions", quote(line_));
      }
      rest = trim(rest);
      // device "fe:00"
      if (!parse_u64(rest, ignored, 16) || !consume(rest, ":") || !parse_u64(rest, ignored, 16)) {
        return fail("expected a device \"<major>:<minor>\" after the offset", quote(line_));
      }
      rest = trim(rest);
      if (!parse_u64(rest, ignored)) {
        return fail("expected a decimal inode after the device", quote(line_));
      }
      region.path = std::string(trim(rest));
      if (region.limit < region.start) {
        return fail("expected the mapping's end address to be at or after its start", quote(line_));
      }
      profile.mappings.push_back(std::move(region));
    }
    return profile;
  }

  void set_error(const std::string& expected, const std::string& found) {
    error_ = ProfilingError{ProfilingErrorKind::parse,
                            "heap dump line " + std::to_string(line_number_) + ": " + expected + ", found " + found,
                            {},
                            line_number_};
  }
  ProfilingError fail(const std::string& expected, const std::string& found) {
    set_error(expected, found);
    return *error_;
  }
  ProfilingError fail_value(const std::string& expected, const std::string& found) {
    ++line_number_;  // the missing line would come after the last one read
    return fail(expected, found);
  }

  std::string_view text_;
  std::size_t position_ = 0;
  std::string_view line_;
  std::size_t line_number_ = 0;
  std::optional<ProfilingError> error_;
};

}  // namespace

ProfilingResult<HeapProfile> parse_heap_profile(std::string_view text) {
  try {
    return DumpParser(text).parse();
  } catch (const std::exception& e) {  // only std::bad_alloc is possible
    return ProfilingError{ProfilingErrorKind::parse, std::string("heap dump could not be parsed: ") + e.what(), {}, 0};
  }
}

}  // namespace riptide::performance
