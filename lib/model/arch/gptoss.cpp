// gpt-oss (OpenAI's gpt-oss-20b / -120b): every layer is attention then a mixture of experts.
// Attention has biases on Q, K, V and O, a learned sink logit per head, NeoX rope with YaRN
// scaling, and a sliding window (attention.sliding_window keys) on layers 0, 2, 4, ...; the FFN
// input norm is called post_attention_norm. The router has a bias; a token takes the k experts of
// highest logit, weighted by a softmax over those k logits; each expert is a SwiGLU with biases
// whose gate and up are clamped (alpha 1.702, limit 7).
#include "common/error.hpp"
#include "model/architecture.hpp"
#include "model/forward.hpp"
#include "model/loader.hpp"

namespace vramfit::model {
namespace {

constexpr int32_t kSwaPattern = 2;  // windowed, full, windowed, full, ... (llama.cpp's swa pattern 2)

ModelInfo read_info(const gguf::File &file) {
  ModelInfo info = read_transformer_info(file, "gpt-oss", /*require_n_ff=*/false);
  read_expert_info(file, info);
  const int64_t window = file.get_or<int64_t>("gpt-oss.attention.sliding_window", 0);
  if (window < 0 || window > INT32_MAX)
    detail::fail(ErrorCode::format, "{}: metadata 'gpt-oss.attention.sliding_window' = {} is not a window size",
                 file.name(), window);
  info.n_swa = static_cast<int32_t>(window);
  info.n_swa_pattern = window > 0 ? kSwaPattern : 0;
  return info;
}

ModelWeights read_weights(const gguf::File &file, ModelInfo &info) {
  TensorReader reader(file, info);
  ModelWeights w;
  reader.embeddings_and_output(w);
  for (int32_t l = 0; l < info.n_layer; ++l) {
    LayerWeights &layer = w.layers.emplace_back();
    layer.attn = reader.attention(l, /*qk_norm=*/false);
    if (!layer.attn.sinks || !layer.attn.bq || !layer.attn.bk || !layer.attn.bv || !layer.attn.bo)
      detail::fail(ErrorCode::format, "{}: gpt-oss layer {} lacks its attention sinks or biases ('{}', '{}')",
                   file.name(), l, layer_tensor(l, "attn_sinks"), layer_tensor(l, "attn_q", "bias"));
    layer.moe = reader.moe(l, "post_attention_norm");
  }
  return w;
}

void forward(Forward &f) {
  f.embed();
  for (int32_t l = 0; l < f.n_layer(); ++l) {
    f.attention(l, f.info().attention_window(l));
    f.moe_ffn(l, Gating::top_k_softmax, ClampedSwiglu{});
  }
  f.output();
}

}  // namespace

extern const Architecture gptoss_architecture{"gpt-oss", read_info, read_weights, forward, /*rope_neox=*/true};

}  // namespace vramfit::model
