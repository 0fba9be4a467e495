// The sampler chain: turns a row of logits into the next token.
//
// The stages run in llama.cpp's common-sampler order, each one off at its neutral value:
//   penalties -> top-k -> typical-p -> top-p -> min-p -> temperature -> seeded random draw.
// With temperature <= 0 the chain is greedy: the penalties apply, then the argmax is taken.
//
// The draw uses std::mt19937 seeded with `seed` and a portable inverse-CDF draw (not
// std::discrete_distribution, whose results differ between standard libraries), so the same
// seed and the same logits give the same tokens on every platform. Unlike llama.cpp, the seed
// 0xFFFFFFFF is an ordinary seed, not "pick a random one".
//
// Thread-safety: a Sampler holds mutable state (random engine, recent tokens); use one per
// thread or guard it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "vramfit/export.hpp"

namespace vramfit {

struct SamplerParams {
  float temperature = 0.8f;      // <= 0: greedy (argmax)
  int32_t top_k = 40;            // <= 0: off
  float top_p = 0.95f;           // 1: off
  float min_p = 0.05f;           // 0: off
  float typical_p = 1.0f;        // 1: off
  float repeat_penalty = 1.0f;   // 1: off (llama.cpp's: divide positive logits, multiply negative)
  float frequency_penalty = 0.0f, presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;   // window of recent tokens the penalties look at (0: off)
  uint64_t seed = 0xFFFFFFFF;    // same seed, same output
};

class VRAMFIT_API Sampler {
 public:
  // Throws Error(invalid_argument) naming the field when a parameter is out of range
  // (NaN anywhere, top_p/typical_p outside (0, 1], min_p outside [0, 1], repeat_penalty <= 0,
  // penalty_last_n < 0).
  explicit Sampler(const SamplerParams &params = {});
  Sampler(Sampler &&) noexcept;
  Sampler &operator=(Sampler &&) noexcept;
  ~Sampler();

  // Applies the chain to `logits` (one per vocabulary entry; not modified) and draws a token.
  // Does not record it: call accept() with the token you keep. Throws Error(invalid_argument)
  // for empty logits, a NaN logit, or when every logit is -inf.
  int32_t sample(std::span<const float> logits);
  // Records a token (prompt or generated) in the penalty window.
  void accept(int32_t token);
  // Forgets the recorded tokens and re-seeds the random engine: the next draws repeat the first.
  void reset();
  const SamplerParams &params() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vramfit
