#include "model/weights.hpp"

#include "common/error.hpp"

namespace vramfit::model {

Weight MoeWeights::expert(const Weight &all, int64_t n_expert, int64_t e) {
  Weight w = all;
  w.ne1 = all.ne1 / n_expert;
  const uint64_t bytes = row_bytes(all.type, all.ne0) * static_cast<uint64_t>(w.ne1);
  w.data = static_cast<const std::byte *>(all.data) + bytes * static_cast<uint64_t>(e);
  return w;
}

namespace {

void add_optional(std::vector<Weight *> &out, std::optional<Weight> &w) {
  if (w) out.push_back(&*w);
}
void add_optional(std::vector<const Weight *> &out, const std::optional<Weight> &w) {
  if (w) out.push_back(&*w);
}

std::vector<const Weight *> attention_weights(const AttentionWeights &a) {
  std::vector<const Weight *> out{&a.norm, &a.wq, &a.wk, &a.wv, &a.wo};
  for (const auto *w : {&a.bq, &a.bk, &a.bv, &a.bo, &a.q_norm, &a.k_norm, &a.sinks}) add_optional(out, *w);
  return out;
}

std::vector<const Weight *> router_weights(const MoeWeights &m) {
  std::vector<const Weight *> out{&m.norm, &m.router};
  add_optional(out, m.router_bias);
  return out;
}

std::vector<const Weight *> expert_weights(const MoeWeights &m) {
  std::vector<const Weight *> out{&m.gate_exps, &m.up_exps, &m.down_exps};
  for (const auto *w : {&m.gate_bias, &m.up_bias, &m.down_bias}) add_optional(out, *w);
  return out;
}

}  // namespace

std::vector<Block> ModelWeights::blocks() const {
  std::vector<Block> out;
  out.push_back({"embeddings", -1, {&token_embd}});
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerWeights &l = layers[i];
    const auto layer = static_cast<int32_t>(i);
    out.push_back({"attention", layer, attention_weights(l.attn)});
    if (l.ffn) out.push_back({"feed-forward", layer, {&l.ffn->norm, &l.ffn->gate, &l.ffn->up, &l.ffn->down}});
    if (l.moe) out.push_back({"router", layer, router_weights(*l.moe)});
    if (l.moe) out.push_back({"experts", layer, expert_weights(*l.moe)});
  }
  Block head{"output head", -1, {&output_norm}};
  if (output.data != token_embd.data) head.weights.push_back(&output);
  out.push_back(std::move(head));
  return out;
}

std::vector<Weight *> ModelWeights::all_mutable() {
  std::vector<Weight *> out{&token_embd, &output_norm, &output};
  if (rope_freqs) out.push_back(&*rope_freqs);
  for (LayerWeights &l : layers) {
    AttentionWeights &a = l.attn;
    for (Weight *w : {&a.norm, &a.wq, &a.wk, &a.wv, &a.wo}) out.push_back(w);
    for (auto *w : {&a.bq, &a.bk, &a.bv, &a.bo, &a.q_norm, &a.k_norm, &a.sinks}) add_optional(out, *w);
    if (l.ffn)
      for (Weight *w : {&l.ffn->norm, &l.ffn->gate, &l.ffn->up, &l.ffn->down}) out.push_back(w);
    if (l.moe) {
      MoeWeights &m = *l.moe;
      for (Weight *w : {&m.norm, &m.router, &m.gate_exps, &m.up_exps, &m.down_exps}) out.push_back(w);
      for (auto *w : {&m.router_bias, &m.gate_bias, &m.up_bias, &m.down_bias}) add_optional(out, *w);
    }
  }
  return out;
}

void check_placement(const ModelWeights &w) {
  for (const Block &b : w.blocks()) {
    const Weight &first = *b.weights.front();
    for (const Weight *other : b.weights)
      if (!other->device || other->device != first.device)
        detail::fail(ErrorCode::unsupported,
                     "weights '{}' and '{}' belong to one block ({}) but are not placed on the same device",
                     first.name, other->name, b.kind);
  }
  // The output head reads token_embd when tied: then it is one block with the embeddings.
  if (w.output.data == w.token_embd.data && w.output_norm.device != w.token_embd.device)
    detail::fail(ErrorCode::unsupported, "the tied output head ('{}') and '{}' are not on the same device",
                 w.output_norm.name, w.token_embd.name);
}

}  // namespace vramfit::model
