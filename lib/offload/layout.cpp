#include "offload/layout.hpp"

#include <charconv>

namespace vramfit::offload {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Order of a layer's tensors in the forward pass; the attention over the KV cache sits at 5.
int32_t attention_order(std::string_view rest) {
  if (starts_with(rest, "attn_norm")) return 0;
  if (starts_with(rest, "attn_output")) return 6;
  if (starts_with(rest, "attn_q")) return 2;
  if (starts_with(rest, "attn_k")) return 3;
  if (starts_with(rest, "attn_v")) return 4;
  return 1;
}

int32_t ffn_order(std::string_view rest) {
  if (starts_with(rest, "ffn_norm")) return 7;
  if (starts_with(rest, "ffn_down")) return 10;
  if (starts_with(rest, "ffn_up")) return 9;
  return 8;  // ffn_gate and the rest
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
      bool ffn = starts_with(rest, "ffn_");
      f.role = ffn ? Role::ffn : Role::attention;
      f.order = ffn ? ffn_order(rest) : attention_order(rest);
      f.is_norm = starts_with(rest, "attn_norm") || starts_with(rest, "ffn_norm");
      return f;
    }
  }
  if (starts_with(name, "token_embd."))
    f.role = Role::token_embd;
  else if (starts_with(name, "output_norm."))
    f.role = Role::output_norm, f.is_norm = true;
  else if (starts_with(name, "output."))
    f.role = Role::output;
  return f;
}

}  // namespace vramfit::offload
