// The memory model: exact bytes of everything a plan puts in a memory.
//
// Every device reservation is rounded as model::Arena rounds it (round_up(max(bytes, 1), 256)),
// so the plan's device total is what the arena will have handed out, byte for byte.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "vramfit/offload.hpp"

namespace vramfit::offload {

// Bytes one arena reservation of `bytes` consumes.
uint64_t arena_bytes(uint64_t bytes) noexcept;

// Positions one layer's K (or V) cache holds: n_ctx, or for a layer with a sliding window of w
// keys, w - 1 + n_batch (a batch's first query still sees w - 1 earlier keys) when that is less.
// The forward pass slides such a cache (model::Workspace::slide_kv) to keep its keys in it.
uint64_t kv_rows(uint64_t window, uint64_t n_ctx, uint64_t n_batch) noexcept;
// Bytes of layer il's K (or V) cache.
uint64_t kv_layer_bytes(const ModelShape &model, KvType type, uint32_t il, uint32_t n_ctx, uint32_t n_batch);

// Bytes of one cache position of K (or V): n_embd_kv elements of the KV type.
// Throws Error(invalid_argument) for q8_0 when n_embd_kv is not a multiple of its block (32).
uint64_t kv_row_bytes(const ModelShape &model, KvType type);

// The f32 activation buffers of one device that runs part of the forward pass, as llama2.c's
// RunState but for a batch of tokens. model::Workspace carves exactly these out of one
// reservation, each rounded up to activation_alignment bytes, so the plan's scratch is what the
// executor allocates. Attention scores are not among them: each backend's attention keeps its
// own bounded workspace (CPU: per thread; CUDA: online softmax).
struct ActivationDims {
  int64_t n_embd = 0;
  int64_t n_q = 0;     // n_head * head_dim
  int64_t n_kv = 0;    // n_head_kv * head_dim
  int64_t n_ff = 0;    // the feed-forward width: one expert's in a MoE model (it has no dense layer)
  int64_t n_vocab = 0;
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
};
enum class Activation : int {
  x,        // residual stream [n_batch][n_embd]
  xb,       // normed input, projection outputs [n_batch][max(n_embd, n_q)]
  q, k, v,  // [n_batch][n_q], [n_batch][n_kv] x2
  attn,     // attention output [n_batch][n_q]
  gate, up, // [n_batch][n_ff]
  router,   // router logits [n_batch][n_expert]
  moe_in,   // one expert's tokens, gathered [n_batch][n_embd]
  moe_out,  // their down projection [n_batch][n_embd]
  slots,    // each token's k expert outputs, weighted [n_expert_used][n_batch][n_embd]
  logits,   // [logits_rows][n_vocab], only on the device holding the output head
  count
};
inline constexpr uint64_t activation_alignment = 64;  // a cache line: SIMD loads of a row align
inline constexpr int64_t logits_rows = 32;            // output rows computed per matmul at most

ActivationDims activation_dims(const ModelShape &model);
// Floats of each buffer for a batch of n_batch tokens.
std::array<uint64_t, static_cast<size_t>(Activation::count)> activation_floats(const ActivationDims &dims,
                                                                                int64_t n_batch, bool holds_output);
// Bytes of the one reservation holding them all.
uint64_t activation_bytes(const ActivationDims &dims, int64_t n_batch, bool holds_output);

// Scratch of a device that runs part of the forward pass: activation_bytes() at n_batch (n_ctx
// no longer matters: no backend stores n_ctx attention scores per token).
uint64_t scratch_bytes(const ModelShape &model, uint32_t n_ctx, uint32_t n_batch, bool holds_output);

// The largest activation that crosses between host and device in one batch: the hidden state,
// or q, k and v going to a KV cache placed apart from its layer.
uint64_t staging_bytes(const ModelShape &model, uint32_t n_batch);

}  // namespace vramfit::offload
