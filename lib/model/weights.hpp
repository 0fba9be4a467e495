// The weights of a transformer as the forward pass sees them: views (model::Weight) grouped by the
// block that reads them. Every architecture fills the same structs; what a block has (biases, q/k
// norms, sinks, experts) is what the file has.
//
// In the loaded Model the views point into the memory map and have no device (device == nullptr
// means "host memory of the model"); the executor points the ones the plan puts on the device at
// their device copies, and a Context labels the rest with its CPU device.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "model/device.hpp"

namespace vramfit::model {

struct Architecture;

// Attention: x += Wo * attention(rope(norm_q(Wq xn + bq)), rope(norm_k(Wk xn + bk)), Wv xn + bv) + bo.
struct AttentionWeights {
  Weight norm, wq, wk, wv, wo;
  std::optional<Weight> bq, bk, bv, bo;  // qwen2, gpt-oss
  std::optional<Weight> q_norm, k_norm;  // qwen3: RMSNorm of each head of q and k, [head_dim]
  std::optional<Weight> sinks;           // gpt-oss: one logit per head, [n_head]
};

// Dense SwiGLU feed-forward: x += W_down (silu(W_gate xn) * (W_up xn)).
struct FfnWeights {
  Weight norm, gate, up, down;
};

// Mixture of experts: the router picks k of n_expert experts per token; each is a SwiGLU whose
// three matrices are slices of 3-D tensors ([n_expert] matrices of [rows][ne0], contiguous).
struct MoeWeights {
  Weight norm;
  Weight router;                      // [n_expert][n_embd], F32
  std::optional<Weight> router_bias;  // gpt-oss: [n_expert], added to the router logits
  Weight gate_exps, up_exps, down_exps;  // ne1 = rows of one expert * n_expert
  // gpt-oss: one bias row per expert ([n_expert][n_ff_exp], [n_expert][n_embd]), F32.
  std::optional<Weight> gate_bias, up_bias, down_bias;
  int64_t n_expert = 0;

  // Expert e's matrix of one of the 3-D tensors: a view of its rows (on the tensor's device).
  static Weight expert(const Weight &all, int64_t n_expert, int64_t e);
};

struct LayerWeights {
  AttentionWeights attn;
  std::optional<FfnWeights> ffn;  // exactly one of ffn and moe
  std::optional<MoeWeights> moe;
};

// A block: weights the forward pass runs together on one device (see for_each_block).
struct Block {
  std::string_view kind;  // "attention", "feed-forward", "router", "experts", "embeddings", "output head"
  int32_t layer = -1;
  std::vector<const Weight *> weights;
};

struct ModelWeights {
  const Architecture *arch = nullptr;
  Weight token_embd;   // [n_vocab][n_embd]
  Weight output_norm;  // [n_embd]
  Weight output;       // [n_vocab][n_embd]; token_embd's view when tied
  std::optional<Weight> rope_freqs;  // [n_rot/2] Llama-3 frequency factors
  // The map's view of rope_freqs when the executor uploaded it: for blocks that run on the host.
  std::optional<Weight> rope_freqs_host;
  std::vector<LayerWeights> layers;

  // Every weight once (a tied output is not counted twice), rope_freqs_host excluded.
  template <class F>
  void for_each(F &&f) const {
    for (const Block &b : blocks())
      for (const Weight *w : b.weights) f(*w);
    if (rope_freqs) f(*rope_freqs);
  }
  // The same, mutable; a tied output appears twice (same name, same data).
  std::vector<Weight *> all_mutable();

  // The blocks in forward order: embeddings, per layer attention then feed-forward (dense) or
  // router then experts (MoE), then the output head (without a tied token_embd).
  std::vector<Block> blocks() const;
};

// Throws Error(unsupported) naming the weights unless each block's weights share one device, as
// the forward pass needs.
void check_placement(const ModelWeights &w);

}  // namespace vramfit::model
