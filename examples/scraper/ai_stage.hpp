#pragma once
// The scraper's CPU-bound "ai" stage: a stand-in for model inference on the extracted text. It
// tokenises, builds a hashed bag-of-words vector and runs it through a few fixed dense layers, so its
// cost scales with text length and `layers` like a small real model, and its output is deterministic.

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace riptide::example {

struct AiSummary {
  std::vector<std::string> keywords;  ///< most frequent non-stop words, most frequent first
  std::array<float, 8> embedding{};   ///< first components of the final layer (for checksums)
  double score = 0.0;                 ///< a scalar "relevance" from the last layer
};

/// Runs the stage on `text`; `layers` dense 256x256 layers (default 4, ~0.3 ms on this machine).
[[nodiscard]] AiSummary run_ai_stage(std::string_view text, unsigned layers = 4);

}  // namespace riptide::example
