#include "offload/cost_model.hpp"

#include <algorithm>
#include <map>

#include "offload/memory_model.hpp"

namespace vramfit::offload {

namespace {

// Stage costs from the machine profile: rooflines and crossings.
class StageCoster {
 public:
  StageCoster(const MachineProfile &m, uint32_t n_batch)
      : bandwidth_{m.host_read_bandwidth, m.device_read_bandwidth},
        flops_{m.host_flops, m.device_flops},
        link_(m.host_to_device_bandwidth),
        latency_(m.transfer_latency_s),
        n_batch_(n_batch) {}

  // A stage reading `bytes` once per batch (weights, KV cache) and doing `flops` per token,
  // whose input is `input_bytes` per token.
  Stage make(Stage::Kind kind, int32_t index, double bytes, double flops, double input_bytes) const {
    Stage s;
    s.kind = kind;
    s.index = index;
    for (int d = 0; d < 2; ++d) {
      s.tg_s[d] = std::max(bytes / bandwidth_[d], flops / flops_[d]);
      s.pp_s[d] = std::max(bytes / bandwidth_[d] / n_batch_, flops / flops_[d]);
    }
    s.tg_cross_s = latency_ + input_bytes / link_;
    s.pp_cross_s = latency_ / n_batch_ + input_bytes / link_;
    return s;
  }

 private:
  double bandwidth_[2];
  double flops_[2];
  double link_;
  double latency_;
  double n_batch_;
};

// f32 activations per token a layer stage of this order reads (see classify's orders).
double stage_input_floats(const ModelShape &m, int32_t order) {
  const double q_dim = double(m.n_head) * m.head_dim;
  if (order == 5) return q_dim + 2.0 * m.n_embd_kv();  // q, k, v into the attention
  if (order == 6) return q_dim;                        // attention output into attn_output
  if (order == 10) return m.n_ff;                      // hb into ffn_down
  return m.n_embd;
}

constexpr int32_t kAttentionOrder = 5;

}  // namespace

Location stage_location(const Placement &placement, const Stage &stage) noexcept {
  switch (stage.kind) {
    case Stage::Kind::tensor:
      return placement.tensor[static_cast<size_t>(stage.index)];
    case Stage::Kind::attention:
      return placement.kv[static_cast<size_t>(stage.index)];
    default:
      return Location::host;
  }
}

namespace {

void add_stages(Layout &layout, const ModelShape &model, const PlanRequest &request, uint32_t n_ctx,
                const std::vector<std::multimap<int32_t, int32_t>> &by_layer, int32_t output_norm) {
  const StageCoster coster(request.machine, request.n_batch);
  const auto &tensors = model.tensors;
  auto weight_stage = [&](int32_t t, double input_floats) {
    const auto &x = tensors[static_cast<size_t>(t)];
    return coster.make(Stage::Kind::tensor, t, double(x.bytes), 2.0 * double(x.n_elements), 4.0 * input_floats);
  };
  const double kv_bytes_read = n_ctx / 2.0 * 2.0 * double(kv_row_bytes(model, request.kv_type));
  const double attention_flops = 4.0 * model.n_head * model.head_dim * (n_ctx / 2.0);

  auto &stages = layout.stages;
  stages.push_back(Stage{Stage::Kind::source, -1, {0, 0}, {0, 0}, 0, 0});
  if (layout.token_embd >= 0) {  // the lookup reads one row per token, batch or not
    const auto &e = tensors[static_cast<size_t>(layout.token_embd)];
    const double row = e.n_elements > 0 ? double(e.bytes) * double(e.row_length) / double(e.n_elements) : 0;
    Stage lookup = coster.make(Stage::Kind::tensor, layout.token_embd, row, 0, sizeof(int32_t));
    for (int d = 0; d < 2; ++d) lookup.pp_s[d] = lookup.tg_s[d];
    stages.push_back(lookup);
  }
  for (uint32_t l = 0; l < model.n_layer; ++l) {
    bool attention_done = false;
    auto add_attention = [&] {
      stages.push_back(coster.make(Stage::Kind::attention, static_cast<int32_t>(l), kv_bytes_read, attention_flops,
                                   4.0 * stage_input_floats(model, kAttentionOrder)));
      attention_done = true;
    };
    for (auto [order, t] : by_layer[l]) {
      if (order > kAttentionOrder && !attention_done) add_attention();
      stages.push_back(weight_stage(t, stage_input_floats(model, order)));
    }
    if (!attention_done) add_attention();
  }
  if (output_norm >= 0) stages.push_back(weight_stage(output_norm, model.n_embd));
  if (layout.output_tensor >= 0) stages.push_back(weight_stage(layout.output_tensor, model.n_embd));
  stages.push_back(coster.make(Stage::Kind::sink, -1, 0, 0, 4.0 * model.n_vocab));
  stages.back().tg_s[0] = stages.back().tg_s[1] = stages.back().pp_s[0] = stages.back().pp_s[1] = 0;
}

void add_groups(Layout &layout, const ModelShape &model, const PlanRequest &request, uint32_t n_ctx,
                const std::vector<std::multimap<int32_t, int32_t>> &by_layer, int32_t output_norm) {
  const auto &tensors = model.tensors;
  const bool kv_follows = request.policy.kv_placement == KvPlacement::follow_layer;
  const uint64_t kv_tensor = arena_bytes(uint64_t{n_ctx} * kv_row_bytes(model, request.kv_type));
  std::vector<Group> groups;
  auto add_tensor = [&](Group &g, int32_t t) {
    g.tensors.push_back(t);
    g.weight_bytes += arena_bytes(tensors[static_cast<size_t>(t)].bytes);
    g.holds_output = g.holds_output || t == layout.output_tensor;
  };
  for (uint32_t l = 0; l < model.n_layer; ++l) {
    const auto layer = static_cast<int32_t>(l);
    Group attention{"blk." + std::to_string(l) + " attention", layer, {}, {}, {}, 0, false};
    Group ffn{"blk." + std::to_string(l) + " ffn", layer, {}, {}, {}, 0, false};
    for (auto [order, t] : by_layer[l])
      add_tensor(layout.facts[static_cast<size_t>(t)].role == Role::ffn ? ffn : attention, t);
    if (kv_follows) {
      attention.kv_layers.push_back(layer);
      attention.kv_bytes += 2 * kv_tensor;  // K and V
    }
    for (Group *g : {&attention, &ffn})
      if (!g->tensors.empty() || !g->kv_layers.empty()) groups.push_back(std::move(*g));
  }
  Group output{"output", -1, {}, {}, {}, 0, false};
  if (output_norm >= 0) add_tensor(output, output_norm);
  if (layout.output_tensor >= 0) add_tensor(output, layout.output_tensor);
  if (!output.tensors.empty()) groups.push_back(std::move(output));
  if (layout.token_embd >= 0 && layout.token_embd != layout.output_tensor) {
    Group embd{"token_embd", -1, {}, {}, {}, 0, false};
    add_tensor(embd, layout.token_embd);
    groups.push_back(std::move(embd));
  }

  // Stage ids of each group, for local_time().
  std::vector<int32_t> group_of_tensor(tensors.size(), -1), group_of_kv(model.n_layer, -1);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (int32_t t : groups[g].tensors) group_of_tensor[static_cast<size_t>(t)] = static_cast<int32_t>(g);
    for (int32_t l : groups[g].kv_layers) group_of_kv[static_cast<size_t>(l)] = static_cast<int32_t>(g);
  }
  for (size_t s = 0; s < layout.stages.size(); ++s) {
    const Stage &st = layout.stages[s];
    int32_t g = st.kind == Stage::Kind::tensor      ? group_of_tensor[static_cast<size_t>(st.index)]
                : st.kind == Stage::Kind::attention ? group_of_kv[static_cast<size_t>(st.index)]
                                                    : -1;
    if (g >= 0) groups[static_cast<size_t>(g)].stages.push_back(static_cast<int32_t>(s));
  }
  layout.groups = std::move(groups);
}

}  // namespace

Layout build_layout(const ModelShape &model, const PlanRequest &request, uint32_t n_ctx) {
  Layout layout;
  std::vector<std::multimap<int32_t, int32_t>> by_layer(model.n_layer);  // order -> tensor
  int32_t output = -1, output_norm = -1;
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    TensorFacts f = classify(model.tensors[i].name);
    if (f.layer >= static_cast<int32_t>(model.n_layer)) f = TensorFacts{};  // a stray blk.N: global
    layout.facts.push_back(f);
    const auto t = static_cast<int32_t>(i);
    if (f.layer >= 0)
      by_layer[static_cast<size_t>(f.layer)].emplace(f.order, t);
    else if (f.role == Role::token_embd)
      layout.token_embd = t;
    else if (f.role == Role::output)
      output = t;
    else if (f.role == Role::output_norm)
      output_norm = t;
  }
  layout.output_tensor = output >= 0 ? output : layout.token_embd;  // tied embeddings
  add_stages(layout, model, request, n_ctx, by_layer, output_norm);
  add_groups(layout, model, request, n_ctx, by_layer, output_norm);
  return layout;
}

namespace {

Times stage_time(const Stage &s, Location at) {
  const int d = at == Location::device ? 1 : 0;
  return {s.tg_s[d], s.pp_s[d]};
}

void add(Times &sum, Times t) {
  sum.tg += t.tg;
  sum.pp += t.pp;
}

// Crossing into stage i (from stage i-1), zero when both run on the same side.
Times crossing_into(const Layout &layout, const Placement &p, size_t i) {
  const Stage &s = layout.stages[i];
  if (stage_location(p, s) == stage_location(p, layout.stages[i - 1])) return {};
  return {s.tg_cross_s, s.pp_cross_s};
}

}  // namespace

Times total_time(const Layout &layout, const Placement &placement) {
  Times sum;
  for (size_t i = 0; i < layout.stages.size(); ++i) {
    add(sum, stage_time(layout.stages[i], stage_location(placement, layout.stages[i])));
    if (i > 0) add(sum, crossing_into(layout, placement, i));
  }
  return sum;
}

Times local_time(const Layout &layout, const Placement &placement, std::span<const int32_t> stage_ids) {
  Times sum;
  size_t last_boundary = 0;  // boundaries counted so far (ids are sorted), 0 = none yet
  for (int32_t id : stage_ids) {
    const auto i = static_cast<size_t>(id);
    add(sum, stage_time(layout.stages[i], stage_location(placement, layout.stages[i])));
    for (size_t b : {i, i + 1})  // boundary b lies between stages b-1 and b
      if (b > last_boundary && b < layout.stages.size()) {
        add(sum, crossing_into(layout, placement, b));
        last_boundary = b;
      }
  }
  return sum;
}

}  // namespace vramfit::offload
