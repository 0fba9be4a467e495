// The blocks the executor runs on one device, found from tensor names alone (independently of
// the planner's own grouping), and a checker that every plan keeps each block on one side:
//   a layer's attention: attn_norm, attn_q/k/v/output (+ .bias), attn_q_norm, attn_k_norm, and
//     its KV cache when that follows the layer;
//   its dense feed-forward: ffn_norm, ffn_gate, ffn_up, ffn_down;  or its MoE router: ffn_norm +
//     ffn_gate_inp (gpt-oss: post_attention_norm + ffn_gate_inp and its bias);  its experts: ffn_gate_exps + ffn_up_exps + ffn_down_exps;
//   the output head: output_norm + output (token_embd when there is no output.weight).
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>

#include "vramfit/offload.hpp"

namespace vramfit::test {

// "3 attention", "3 ffn", "3 experts", "head", or "" for a tensor in no block (token_embd when
// untied, rope_freqs).
inline std::string block_of(const std::string &name, bool tied_output) {
  if (name.starts_with("blk.")) {
    const size_t dot = name.find('.', 4);
    const std::string layer = name.substr(4, dot - 4);
    const std::string rest = name.substr(dot + 1);
    const std::string base = rest.substr(0, rest.find('.'));
    if (base.ends_with("_exps")) return layer + " experts";
    if (base.starts_with("attn_")) return layer + " attention";
    for (const char *ffn : {"ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "ffn_gate_inp", "post_attention_norm"})
      if (base == ffn) return layer + " ffn";
    return "";
  }
  if (name.starts_with("output_norm.") || name.starts_with("output.")) return "head";
  if (tied_output && name.starts_with("token_embd.")) return "head";
  return "";
}

inline bool has_output_weight(const Plan &plan) {
  for (const PlannedTensor &t : plan.tensors)
    if (t.name == "output.weight") return true;
  return false;
}

// Every block on one side; with kv_follows, each layer's KV cache with its attention.
inline void check_blocks(const Plan &plan, bool kv_follows) {
  const bool tied = !has_output_weight(plan);
  std::map<std::string, std::pair<Location, std::string>> seen;  // block -> (side, first tensor)
  for (const PlannedTensor &t : plan.tensors) {
    const std::string block = block_of(t.name, tied);
    if (block.empty()) continue;
    auto [it, first] = seen.emplace(block, std::make_pair(t.location, t.name));
    CHECK_MESSAGE(it->second.first == t.location, "block '" << block << "' split: " << it->second.second << " on "
                                                            << to_string(it->second.first) << ", " << t.name
                                                            << " on " << to_string(t.location));
  }
  if (!kv_follows) return;
  for (const PlannedKvLayer &kv : plan.kv) {
    auto it = seen.find(std::to_string(kv.layer) + " attention");
    if (it != seen.end())
      CHECK_MESSAGE(kv.location == it->second.first, "layer " << kv.layer << ": KV cache apart from its attention");
  }
}

}  // namespace vramfit::test
