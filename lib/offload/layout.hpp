// How a llama-style model's tensors line up for planning: what each tensor is, the order the
// forward pass visits them (stages), and the groups the planner moves as a unit.
//
// A group is also a block the executor runs on one device, so every placement keeps each group
// on one side: a layer's attention (attn_norm, attn_q/k/v/output and their biases, attn_q_norm,
// attn_k_norm, attn_sinks, and its KV cache when that follows the layer); its feed-forward (ffn_norm
// with ffn_gate/up/down, or in a MoE layer ffn_norm or gpt-oss's post_attention_norm with the router
// ffn_gate_inp and its bias); its experts
// (ffn_{gate,up,down}_exps together); the output head (output_norm + output).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vramfit/offload.hpp"

namespace vramfit::offload {

enum class Role : uint8_t {
  token_embd,  // embedding table (also the output projection when output.weight is absent)
  output_norm,
  output,
  attention,  // blk.N.attn_* and anything else in a layer that is not ffn_*
  ffn,        // blk.N.ffn_* but the experts: ffn_norm (post_attention_norm), dense ffn_gate/up/down, the router ffn_gate_inp
  experts,    // blk.N.ffn_{gate,up,down}_exps (3-D, one slice per expert) and their biases
  global,     // other non-layer tensors (rope_freqs): needed by every device that runs a layer
};

struct TensorFacts {
  Role role = Role::global;
  int32_t layer = -1;
  int32_t order = 0;  // execution order inside its layer (see classify)
};

TensorFacts classify(std::string_view name);
// An output.weight of its own: token_embd is then only looked up (else it is the output projection).
bool has_output_tensor(const ModelShape &model);

// Throws Error(code) when the expert counts make no sense (used > count, used without count...).
void check_expert_counts(const ModelShape &model, ErrorCode code, std::string_view who);

// Where each tensor and each layer's KV cache lives.
struct Placement {
  std::vector<Location> tensor;  // parallel to ModelShape::tensors
  std::vector<Location> kv;      // one per layer
};

// One step of one token's forward pass. Source and sink stand for the caller's host memory
// (token ids in, logits out), so the first and last crossings are counted too.
struct Stage {
  enum class Kind : uint8_t { source, tensor, attention, sink };
  Kind kind = Kind::tensor;
  int32_t index = -1;       // tensor index (tensor), layer (attention)
  double tg_s[2] = {0, 0};  // seconds per generated token, [host, device]
  double pp_s[2] = {0, 0};  // seconds per prompt token at n_batch, [host, device]
  // Seconds per token to bring this stage's input (f32 activations, or token ids) across when
  // the previous stage ran on the other side: one transfer latency (per batch for pp) + bytes/link.
  double tg_cross_s = 0;
  double pp_cross_s = 0;
  // Raw quantities, to cost a prompt batch of any size and a streamed one (prompt_seconds()).
  double pp_bytes = 0;         // read once per batch (weights, KV cache)
  double bytes_per_token = 0;  // read per token whatever the batch (the embedding row)
  double flops = 0;            // per token
  double flop_rate[2] = {0, 0};  // flop/s it computes at, [host, device] (the host's kernel speed for its type)
  bool last_token_only = false;  // the output head: a prompt batch computes its last token's logits only
  double input_bytes = 0;      // per token, when the previous stage ran on the other side
  // Streamed (a host-placed stage run on the device for a long prompt): bytes copied to the
  // device once per batch (the weights) and per token (a host layer's new K and V rows).
  bool streamable = false;
  double stream_bytes = 0;
  double stream_bytes_per_token = 0;
};

// Tensors (and the KV caches that follow them) that every strategy places together.
struct Group {
  std::string name;  // "blk.3 attention", "blk.3 ffn", "blk.3 experts", "output", "token_embd"
  int32_t layer = -1;
  Role role = Role::global;  // attention, ffn, experts, output (the head) or token_embd
  std::vector<int32_t> tensors;
  std::vector<int32_t> kv_layers;
  std::vector<int32_t> stages;  // sorted stage ids of those tensors and caches
  uint64_t weight_bytes = 0;    // arena bytes of the tensors
  uint64_t kv_bytes = 0;        // arena bytes of the KV caches (K and V)
  bool holds_output = false;    // computes the logits
};

struct Layout {
  std::vector<TensorFacts> facts;  // parallel to ModelShape::tensors
  std::vector<Stage> stages;       // execution order, source first, sink last
  std::vector<Group> groups;       // per layer attention, ffn, experts; then output, then token_embd
  int32_t output_tensor = -1;      // output.weight, or token_embd when tied; -1 when absent
  int32_t token_embd = -1;
};

}  // namespace vramfit::offload
