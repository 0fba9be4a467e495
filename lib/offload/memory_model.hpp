// The memory model: exact bytes of everything a plan puts in a memory.
//
// Every device reservation is rounded as model::Arena rounds it (round_up(max(bytes, 1), 256)),
// so the plan's device total is what the arena will have handed out, byte for byte.
#pragma once

#include <cstdint>

#include "vramfit/offload.hpp"

namespace vramfit::offload {

// Bytes one arena reservation of `bytes` consumes.
uint64_t arena_bytes(uint64_t bytes) noexcept;

// Bytes of one cache position of K (or V): n_embd_kv elements of the KV type.
// Throws Error(invalid_argument) for q8_0 when n_embd_kv is not a multiple of its block (32).
uint64_t kv_row_bytes(const ModelShape &model, KvType type);

// Scratch of a device that runs part of the forward pass: f32 activations of one batch, as
// llama2.c's RunState but for n_batch tokens, without flash attention:
//   x, xb (n_embd) + q, attention out (n_head*head_dim) + k, v (n_embd_kv) + hb, hb2 (n_ff)
//   + attention scores (n_head*n_ctx) [+ logits (n_vocab) on the device holding the output].
uint64_t scratch_bytes(const ModelShape &model, uint32_t n_ctx, uint32_t n_batch, bool holds_output);

// The largest activation that crosses between host and device in one batch: the hidden state,
// or q, k and v going to a KV cache placed apart from its layer.
uint64_t staging_bytes(const ModelShape &model, uint32_t n_batch);

}  // namespace vramfit::offload
