// Llama-shaped ModelShapes built in memory, so planner tests need no file.
#pragma once

#include <optional>
#include <string>

#include "vramfit/offload.hpp"

namespace vramfit::test {

struct LlamaDims {
  uint32_t n_layer = 1, n_embd = 64, n_head = 4, n_head_kv = 4, n_ff = 128, n_vocab = 100;
  bool tied = false;  // no output.weight: token_embd is the output projection
  bool rope_freqs = false;
};

// Bytes of n elements of a type: whole blocks (the shapes keep rows multiple of 256 for K-quants).
inline uint64_t tensor_bytes(GgmlType type, int64_t n) {
  auto t = type_traits(static_cast<uint32_t>(type));
  return static_cast<uint64_t>(n) / t->block_size * t->type_size;
}

inline void add(ModelShape &m, std::string name, GgmlType type, int64_t ne0, int64_t ne1 = 1) {
  m.tensors.push_back(ModelShape::Tensor{std::move(name), type, ne0 * ne1, ne0, tensor_bytes(type, ne0 * ne1)});
}

// `matrix` is the type of the 2-D weights (`ffn`: of the feed-forward ones, when given); norms
// are F32 as in real files.
inline ModelShape llama_shape(const LlamaDims &d, GgmlType matrix = GgmlType::F32,
                              std::optional<GgmlType> ffn = std::nullopt) {
  const GgmlType ffn_matrix = ffn.value_or(matrix);
  ModelShape m;
  m.n_layer = d.n_layer;
  m.n_embd = d.n_embd;
  m.n_head = d.n_head;
  m.n_head_kv = d.n_head_kv;
  m.head_dim = d.n_embd / d.n_head;
  m.n_ff = d.n_ff;
  m.n_vocab = d.n_vocab;
  const int64_t kv = int64_t{m.n_head_kv} * m.head_dim;
  add(m, "token_embd.weight", matrix, d.n_embd, d.n_vocab);
  if (d.rope_freqs) add(m, "rope_freqs.weight", GgmlType::F32, m.head_dim / 2);
  for (uint32_t l = 0; l < d.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(m, b + "attn_norm.weight", GgmlType::F32, d.n_embd);
    add(m, b + "attn_q.weight", matrix, d.n_embd, d.n_embd);
    add(m, b + "attn_k.weight", matrix, d.n_embd, kv);
    add(m, b + "attn_v.weight", matrix, d.n_embd, kv);
    add(m, b + "attn_output.weight", matrix, d.n_embd, d.n_embd);
    add(m, b + "ffn_norm.weight", GgmlType::F32, d.n_embd);
    add(m, b + "ffn_gate.weight", ffn_matrix, d.n_embd, d.n_ff);
    add(m, b + "ffn_up.weight", ffn_matrix, d.n_embd, d.n_ff);
    add(m, b + "ffn_down.weight", ffn_matrix, d.n_ff, d.n_embd);
  }
  add(m, "output_norm.weight", GgmlType::F32, d.n_embd);
  if (!d.tied) add(m, "output.weight", matrix, d.n_embd, d.n_vocab);
  return m;
}

// A mixture-of-experts shape as qwen3moe (q/k norms) or Mixtral (llama with experts) lays it
// out: per layer the attention, ffn_norm + the F32 router ffn_gate_inp [n_embd, n_expert], and
// the 3-D experts ffn_{gate,up}_exps [n_embd, n_ff_exp, n_expert], ffn_down_exps [n_ff_exp,
// n_embd, n_expert].
struct MoeDims {
  uint32_t n_layer = 2, n_embd = 256, n_head = 4, n_head_kv = 2, head_dim = 64, n_ff_exp = 256, n_expert = 8,
           n_expert_used = 2, n_vocab = 512;
  bool qk_norm = true;  // qwen3moe's attn_q_norm / attn_k_norm
  bool biases = false;  // qwen2-style q/k/v biases
  bool tied = false;
};

inline ModelShape moe_shape(const MoeDims &d, GgmlType matrix = GgmlType::F32,
                            std::optional<GgmlType> experts = std::nullopt) {
  const GgmlType expert_type = experts.value_or(matrix);
  ModelShape m;
  m.architecture = d.qk_norm ? "qwen3moe" : "llama";
  m.n_layer = d.n_layer;
  m.n_embd = d.n_embd;
  m.n_head = d.n_head;
  m.n_head_kv = d.n_head_kv;
  m.head_dim = d.head_dim;
  m.n_vocab = d.n_vocab;
  m.n_expert = d.n_expert;
  m.n_expert_used = d.n_expert_used;
  m.n_ff_exp = d.n_ff_exp;
  const int64_t q = int64_t{d.n_head} * d.head_dim, kv = int64_t{d.n_head_kv} * d.head_dim;
  add(m, "token_embd.weight", matrix, d.n_embd, d.n_vocab);
  for (uint32_t l = 0; l < d.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(m, b + "attn_norm.weight", GgmlType::F32, d.n_embd);
    add(m, b + "attn_q.weight", matrix, d.n_embd, q);
    add(m, b + "attn_k.weight", matrix, d.n_embd, kv);
    add(m, b + "attn_v.weight", matrix, d.n_embd, kv);
    if (d.biases)
      for (const char *name : {"attn_q.bias", "attn_k.bias", "attn_v.bias"})
        add(m, b + name, GgmlType::F32, name[5] == 'q' ? q : kv);
    if (d.qk_norm) {
      add(m, b + "attn_q_norm.weight", GgmlType::F32, d.head_dim);
      add(m, b + "attn_k_norm.weight", GgmlType::F32, d.head_dim);
    }
    add(m, b + "attn_output.weight", matrix, q, d.n_embd);
    add(m, b + "ffn_norm.weight", GgmlType::F32, d.n_embd);
    add(m, b + "ffn_gate_inp.weight", GgmlType::F32, d.n_embd, d.n_expert);
    add(m, b + "ffn_gate_exps.weight", expert_type, d.n_embd, int64_t{d.n_ff_exp} * d.n_expert);
    add(m, b + "ffn_up_exps.weight", expert_type, d.n_embd, int64_t{d.n_ff_exp} * d.n_expert);
    add(m, b + "ffn_down_exps.weight", expert_type, d.n_ff_exp, int64_t{d.n_embd} * d.n_expert);
  }
  add(m, "output_norm.weight", GgmlType::F32, d.n_embd);
  if (!d.tied) add(m, "output.weight", matrix, d.n_embd, d.n_vocab);
  return m;
}

// A machine with round numbers (bandwidth-bound everywhere: huge flop rates) and no device
// memory limit of its own.
inline MachineProfile round_machine() {
  MachineProfile m;
  m.host_read_bandwidth = 1e9;
  m.device_read_bandwidth = 1e10;
  m.host_to_device_bandwidth = 1e9;
  m.transfer_latency_s = 0;
  m.host_flops = 1e18;
  m.device_flops = 1e18;
  m.device_memory_bytes = 0;
  m.device_fixed_overhead_bytes = 1000;
  return m;
}

}  // namespace vramfit::test
