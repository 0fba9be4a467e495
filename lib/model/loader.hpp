// Reading a transformer from a GGUF file: hyper-parameters under "<architecture>.", and weight
// views checked for shape and type. The architecture files (lib/model/arch/) compose these.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/weights.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/model.hpp"

namespace vramfit::model {

// The hyper-parameters every llama-like transformer has (context, widths, heads, rope, norm eps),
// read from "<arch>.*" keys. Error(format) names a missing or invalid key. With require_n_ff
// false, feed_forward_length may be absent (a model whose every layer is MoE).
ModelInfo read_transformer_info(const gguf::File &file, std::string_view arch, bool require_n_ff = true);
// expert_count, expert_used_count and expert_feed_forward_length (n_ff when absent, as Mixtral).
void read_expert_info(const gguf::File &file, ModelInfo &info);

// Finds the weights of a file, checking every shape against ModelInfo: Error(format) names a
// missing or mis-shaped tensor, Error(unsupported) a type the kernels do not implement.
class TensorReader {
 public:
  // Reads n_vocab from token_embd.weight into info.
  TensorReader(const gguf::File &file, ModelInfo &info);

  // A llama-like transformer: token_embd, output_norm, output (token_embd's view when absent:
  // tied), rope_freqs, and per layer attention (attn_norm, attn_q/k/v/output, their biases when
  // present, q/k norms when qk_norm, sinks when present) and a feed-forward: MoE when
  // info.n_expert > 0, else dense.
  ModelWeights transformer(bool qk_norm);
  void embeddings_and_output(ModelWeights &w);
  AttentionWeights attention(int32_t layer, bool qk_norm);
  FfnWeights dense_ffn(int32_t layer);
  // The router, its bias and the experts' biases when present; `norm` names the FFN input norm
  // (gpt-oss calls it post_attention_norm).
  MoeWeights moe(int32_t layer, std::string_view norm = "ffn_norm");
  // Sums every weight's bytes and parameters (all and per token) into info.
  void count(const ModelWeights &w);

 private:
  Weight matrix(const std::string &name, int64_t n_in, int64_t n_out, int64_t n_expert = 1);
  Weight vector(const std::string &name, int64_t n);
  std::optional<Weight> optional_vector(const std::string &name, int64_t n);
  std::optional<Weight> optional_f32_matrix(const std::string &name, int64_t n_in, int64_t n_out);

  const gguf::File &file_;
  ModelInfo &info_;
};

// "blk.3.attn_q.weight" from (3, "attn_q").
std::string layer_tensor(int32_t layer, std::string_view name, std::string_view suffix = "weight");

}  // namespace vramfit::model
