// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (per-head q/k RMSNorm before NeoX
// rope) and in every layer a mixture of experts: softmax over the router logits, the top k
// (expert_used_count) experts, their weights renormalised to sum 1.
#include "model/architecture.hpp"
#include "model/forward.hpp"
#include "model/loader.hpp"

namespace vramfit::model {
namespace {

ModelInfo read_info(const gguf::File &file) {
  ModelInfo info = read_transformer_info(file, "qwen3moe", /*require_n_ff=*/false);
  read_expert_info(file, info);
  return info;
}

ModelWeights read_weights(const gguf::File &file, ModelInfo &info) {
  return TensorReader(file, info).transformer(/*qk_norm=*/true);
}

}  // namespace

extern const Architecture qwen3moe_architecture{"qwen3moe", read_info, read_weights, transformer_forward,
                                                /*rope_neox=*/true};

}  // namespace vramfit::model
