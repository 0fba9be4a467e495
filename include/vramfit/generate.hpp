// vramfit::generate — tokenize a prompt, decode it, then sample and stream text until an
// end-of-generation token, a stop string, a token limit or the callback says stop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/context.hpp"
#include "vramfit/export.hpp"

namespace vramfit {

class Sampler;

struct GenerateParams {
  int32_t max_tokens = 128;        // tokens to generate at most (< 0: until the context is full)
  std::vector<std::string> stop;   // stop strings; the text streamed never contains them
  // Receives the text as it is produced, in whole UTF-8 characters; return false to stop.
  std::function<bool(std::string_view piece)> on_piece;
  // When set, runs each Context::decode generate() makes (the prompt, then one per token): it must
  // call `decode` once, e.g. while holding a turn, so that contexts sharing the machine's cores
  // decode one at a time instead of their thread pools fighting (vramfit serve's slots). It may
  // throw instead, to abandon the generation: the exception leaves generate().
  std::function<void(const std::function<void()> &decode)> run_decode;
};

enum class StopReason { eog, stop_string, max_tokens, callback, context_full };

struct GenerateStats {
  int32_t n_prompt = 0;     // prompt tokens decoded
  int32_t n_generated = 0;  // tokens sampled
  double prompt_seconds = 0, generation_seconds = 0;
  double prompt_tok_s = 0, generation_tok_s = 0;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // the generated tokens (prompt excluded; an EOG token excluded)
  std::string text;             // what was streamed
  StopReason stop_reason = StopReason::max_tokens;
  GenerateStats stats;
};

// Decodes `prompt` after what `ctx` already holds (BOS is added when the context is empty and the
// vocab asks for it), then generates. The sampler sees every prompt and generated token.
VRAMFIT_API GenerateResult generate(Context &ctx, Sampler &sampler, std::string_view prompt,
                                    const GenerateParams &params = {});
// The same from tokens (nothing is added to them).
VRAMFIT_API GenerateResult generate(Context &ctx, Sampler &sampler,
                                    std::span<const int32_t> prompt_tokens,
                                    const GenerateParams &params = {});

}  // namespace vramfit
