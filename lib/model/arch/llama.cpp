// Llama (1, 2, 3) and Mixtral, which is a llama whose feed-forward is a mixture of experts
// (llama.expert_count > 0): RMSNorm, attention with normal (adjacent-pair) rope, SwiGLU.
#include "model/architecture.hpp"
#include "model/forward.hpp"
#include "model/loader.hpp"

namespace vramfit::model {
namespace {

ModelInfo read_info(const gguf::File &file) {
  ModelInfo info = read_transformer_info(file, "llama");
  if (file.get_or<int64_t>("llama.expert_count", 0) > 0) read_expert_info(file, info);
  return info;
}

ModelWeights read_weights(const gguf::File &file, ModelInfo &info) {
  // MoE layers (Mixtral) when the file has experts; biases when present.
  return TensorReader(file, info).transformer(/*qk_norm=*/false);
}

}  // namespace

extern const Architecture llama_architecture{"llama", read_info, read_weights, transformer_forward,
                                             /*rope_neox=*/false};

}  // namespace vramfit::model
