// Qwen2 / Qwen2.5 (dense): llama's block with biases on Q, K and V, and NeoX rope (the two halves
// of each head rotate together).
#include "model/architecture.hpp"
#include "model/forward.hpp"
#include "model/loader.hpp"

namespace vramfit::model {
namespace {

ModelInfo read_info(const gguf::File &file) { return read_transformer_info(file, "qwen2"); }

ModelWeights read_weights(const gguf::File &file, ModelInfo &info) {
  // The Q/K/V biases are read when present.
  return TensorReader(file, info).transformer(/*qk_norm=*/false);
}

}  // namespace

extern const Architecture qwen2_architecture{"qwen2", read_info, read_weights, transformer_forward,
                                             /*rope_neox=*/true};

}  // namespace vramfit::model
