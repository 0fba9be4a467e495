// Which experts each token of a batch runs through, and with what weight: the router's decision,
// made on the host from the router logits exactly as llama.cpp's build_moe_ffn makes it (a
// different expert is a large error in the logits, not a rounding one).
#pragma once

#include <cstdint>
#include <vector>

namespace vramfit::model {

enum class Gating {
  // qwen3moe, Mixtral: p = softmax over all experts; the top k by p; their p renormalised to sum
  // 1 (the sum clamped below at 2^-14, as llama.cpp does).
  softmax_top_k,
  // gpt-oss: the top k by logit; weights = softmax over those k logits.
  top_k_softmax,
};

// One expert's share of a batch: the tokens that chose it, where each token's weighted output goes
// in the slot buffer ([k][n_tokens] rows: slot * n_tokens + token) and with what weight.
struct ExpertBatch {
  int32_t expert = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> slot_rows;
  std::vector<float> weights;
};

struct Routing {
  int64_t k = 0;
  std::vector<int32_t> selected;  // [n_tokens][k], best first
  std::vector<float> weights;     // [n_tokens][k]
  std::vector<ExpertBatch> by_expert;  // experts some token chose, ascending id
};

// logits: [n_tokens][n_expert] router outputs (bias already added). Ties go to the lower id.
Routing route(Gating gating, const float *logits, int64_t n_tokens, int64_t n_expert, int64_t k);

}  // namespace vramfit::model
