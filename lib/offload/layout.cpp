#include "offload/layout.hpp"

#include <algorithm>
#include <charconv>

namespace vramfit::offload {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Order of a layer's tensors in the forward pass; the attention over the KV cache sits at
// kAttentionOrder. A bias or a per-head norm shares its matrix's order (it follows that matrix).
int32_t attention_order(std::string_view rest) {
  if (starts_with(rest, "attn_norm")) return 0;
  if (starts_with(rest, "attn_output")) return 6;
  if (starts_with(rest, "attn_q")) return 2;  // attn_q.weight, attn_q.bias, attn_q_norm
  if (starts_with(rest, "attn_k")) return 3;
  if (starts_with(rest, "attn_v")) return 4;
  return 1;
}

// gpt-oss's FFN input norm is post_attention_norm (llama.cpp's name): it belongs to the router's
// block. ffn_gate_inp (the router) is not ffn_gate, and ffn_gate_exps is not either: check it first.
int32_t ffn_order(std::string_view rest) {
  if (starts_with(rest, "ffn_norm") || starts_with(rest, "post_attention_norm")) return 7;
  if (starts_with(rest, "ffn_gate_inp")) return 8;
  if (starts_with(rest, "ffn_down")) return 11;
  if (starts_with(rest, "ffn_up")) return 10;
  return 9;  // ffn_gate, ffn_gate_exps and the rest
}

// ffn_gate_exps.weight, ffn_down_exps.bias...: the tensor's base name ends in _exps.
bool is_expert_tensor(std::string_view rest) {
  return starts_with(rest, "ffn_") && ends_with(rest.substr(0, rest.find('.')), "_exps");
}

}  // namespace

TensorFacts classify(std::string_view name) {
  TensorFacts f;
  if (starts_with(name, "blk.")) {
    std::string_view rest = name.substr(4);
    int32_t layer = -1;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), layer);
    if (ec == std::errc() && end < rest.data() + rest.size() && *end == '.' && layer >= 0) {
      rest = rest.substr(static_cast<size_t>(end - rest.data()) + 1);
      f.layer = layer;
      const bool ffn = starts_with(rest, "ffn_") || starts_with(rest, "post_attention_norm");
      f.role = is_expert_tensor(rest) ? Role::experts : ffn ? Role::ffn : Role::attention;
      f.order = ffn ? ffn_order(rest) : attention_order(rest);
      return f;
    }
  }
  if (starts_with(name, "token_embd."))
    f.role = Role::token_embd;
  else if (starts_with(name, "output_norm."))
    f.role = Role::output_norm;
  else if (starts_with(name, "output."))
    f.role = Role::output;
  return f;
}

bool has_output_tensor(const ModelShape &model) {
  return std::ranges::any_of(model.tensors,
                             [](const ModelShape::Tensor &t) { return classify(t.name).role == Role::output; });
}

}  // namespace vramfit::offload
