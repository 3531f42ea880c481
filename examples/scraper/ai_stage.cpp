#include "scraper/ai_stage.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "scraper/site.hpp"

namespace riptide::example {
namespace {

constexpr std::size_t kDim = 256;

// Fixed pseudo-random weights, built once; scaled so activations stay in tanh's useful range.
const std::vector<float>& weights() {
  static const std::vector<float> w = [] {
    std::vector<float> v(kDim * kDim);
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = (static_cast<float>(mix64(i) >> 40) / static_cast<float>(1 << 24) - 0.5f) * (2.0f / 16.0f);
    }
    return v;
  }();
  return w;
}

bool is_stop_word(std::string_view w) {
  return w.size() <= 3;
}

}  // namespace

AiSummary run_ai_stage(std::string_view text, unsigned layers) {
  std::array<float, kDim> x{};
  std::unordered_map<std::string_view, unsigned> counts;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(start, end - start);
    start = end + 1;
    if (word.empty()) continue;
    std::uint64_t h = 1469598103934665603ULL;
    for (const char c : word) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    x[h % kDim] += 1.0f;
    if (!is_stop_word(word)) ++counts[word];
  }
  float norm = 0.0f;
  for (const float v : x) norm += v * v;
  norm = norm > 0.0f ? 1.0f / std::sqrt(norm) : 0.0f;
  for (float& v : x) v *= norm;

  const auto& w = weights();
  std::array<float, kDim> y{};
  for (unsigned layer = 0; layer < layers; ++layer) {
    for (std::size_t r = 0; r < kDim; ++r) {
      float acc = 0.0f;
      const float* row = &w[r * kDim];
      for (std::size_t c = 0; c < kDim; ++c) acc += row[c] * x[c];
      y[r] = std::tanh(acc * 4.0f);
    }
    x = y;
  }

  AiSummary summary;
  std::copy_n(x.begin(), summary.embedding.size(), summary.embedding.begin());
  for (const float v : x) summary.score += v;
  std::vector<std::pair<std::string_view, unsigned>> ranked(counts.begin(), counts.end());
  const std::size_t top = std::min<std::size_t>(5, ranked.size());
  std::partial_sort(
      ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(top), ranked.end(),
      [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  for (std::size_t i = 0; i < top; ++i) summary.keywords.emplace_back(ranked[i].first);
  return summary;
}

}  // namespace riptide::example
