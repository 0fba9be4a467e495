// Quantization mixes: what llama.cpp's file types ("Q4_K_M", ...) mean tensor by tensor.
//
// A mix has a default type and rules that give some tensors more bits (llama.cpp's
// llama_tensor_get_type, for the llama architecture): output.weight gets Q6_K; half of the
// attn_v / ffn_down layers (use_more_bits) get Q6_K in Q4_K_M and Q5_K_M; Q2_K uses Q3_K/Q4_K for
// attn_v, attn_output and ffn_down; and so on. A pure function of names and shapes, so the
// planner can predict a file's size before it is written.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "vramfit/types.hpp"

namespace vramfit::quant {

struct Mix {
  std::string_view name;  // "Q4_K_M"
  GgmlType default_type;  // Q4_K
  uint32_t file_type;     // general.file_type (llama_ftype): 15 for Q4_K_M
};

// The mixes `vramfit quantize` writes: F32, F16, Q4_0, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q4_K_S,
// Q4_K_M, Q5_K_M, Q6_K, MXFP4_MOE (gpt-oss: MXFP4 experts, Q8_0 for every other matrix).
std::span<const Mix> mixes() noexcept;
std::optional<Mix> find_mix(std::string_view name) noexcept;  // case-insensitive

// What the rules need to know about the model.
struct ModelShape {
  int n_layers = 0;       // llama.block_count
  int n_gqa = 1;          // n_head / n_head_kv
  bool has_output = true;  // false when output reuses token_embd (tied): token_embd then gets
                           // output's type
  bool llama_70b = false;  // llama.cpp's LLM_TYPE_70B (80 layers, grouped KV heads): its small
                           // attn_v gets Q5_K instead of Q3_K/Q4_K
};

// What the rules need to know about one tensor.
struct TensorShape {
  std::string_view name;  // "blk.3.attn_v.weight"
  int n_dims = 2;
  int64_t ne0 = 0;        // row length
};

// Whether llama.cpp quantizes this tensor at all: weights ("*weight") of 2+ dims, except norms
// and MoE routers (ffn_gate_inp). Others (1-D norms, biases, sinks) keep their type.
bool is_quantizable(const TensorShape &tensor) noexcept;

// The type `mix` gives a quantizable tensor. Rows that do not fit the chosen type's block fall
// back as in llama.cpp, to the nearest type vramfit implements (IQ4_NL -> Q4_0, Q5_0/Q5_1 ->
// Q8_0, Q6_K -> Q8_0), and to F16 when even 32 does not divide the row.
GgmlType tensor_type(const Mix &mix, const ModelShape &model, const TensorShape &tensor) noexcept;

}  // namespace vramfit::quant
