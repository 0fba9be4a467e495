// Qwen3 (dense): q and k are RMS-normalised per head (attn_q_norm, attn_k_norm) before NeoX rope;
// the head size (attention.key_length) may differ from n_embd / n_head.
#include "model/architecture.hpp"
#include "model/forward.hpp"
#include "model/loader.hpp"

namespace vramfit::model {
namespace {

ModelInfo read_info(const gguf::File &file) { return read_transformer_info(file, "qwen3"); }

ModelWeights read_weights(const gguf::File &file, ModelInfo &info) {
  return TensorReader(file, info).transformer(/*qk_norm=*/true);
}

}  // namespace

extern const Architecture qwen3_architecture{"qwen3", read_info, read_weights, transformer_forward,
                                             /*rope_neox=*/true};

}  // namespace vramfit::model
