#include "offload/cost_model.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "offload/memory_model.hpp"

namespace vramfit::offload {

namespace {

// Read and flop rates of one stage, [host, device].
struct Rates {
  double tg_read[2];  // bytes/s one token reads at
  double flops[2];    // flop/s
};

// Stage costs from the machine profile: rooflines and crossings. The host side of a weight
// stage uses the kernels' measured speed for its type where known (MachineProfile::host_kernels):
// one token reads at min(bandwidth, mat-vec rate), a batch computes at the type's matmul rate.
class StageCoster {
 public:
  StageCoster(const MachineProfile &m, uint32_t n_batch)
      : machine_(m),
        link_(m.host_to_device_bandwidth),
        latency_(m.transfer_latency_s),
        n_batch_(n_batch) {}

  Rates roofline() const {
    return {{machine_.host_read_bandwidth, machine_.device_read_bandwidth},
            {machine_.host_flops, machine_.device_flops}};
  }
  Rates weight_rates(GgmlType type) const {
    Rates r = roofline();
    const auto known = machine_.host_kernels.find(type);
    if (known == machine_.host_kernels.end()) return r;
    r.tg_read[0] = std::min(r.tg_read[0], known->second.matvec_bytes_per_s);
    r.flops[0] = known->second.matmul_flops;
    return r;
  }
  Rates attention_rates() const {
    Rates r = roofline();
    if (machine_.host_attention_flops > 0) r.flops[0] = machine_.host_attention_flops;
    return r;
  }

  // A stage reading `tg_bytes` per generated token and `pp_bytes` once per prompt batch (weights,
  // KV cache) and doing `flops` per token, whose input is `input_bytes` per token. A batch reads
  // at the plain bandwidth: its time is the compute's unless the batch is tiny.
  Stage make(Stage::Kind kind, int32_t index, double tg_bytes, double pp_bytes, double flops, double input_bytes,
             const Rates &r) const {
    const double bandwidth[2] = {machine_.host_read_bandwidth, machine_.device_read_bandwidth};
    Stage s;
    s.kind = kind;
    s.index = index;
    for (int d = 0; d < 2; ++d) {
      s.tg_s[d] = std::max(tg_bytes / r.tg_read[d], flops / r.flops[d]);
      s.pp_s[d] = std::max(pp_bytes / bandwidth[d] / n_batch_, flops / r.flops[d]);
      s.flop_rate[d] = r.flops[d];
    }
    s.tg_cross_s = latency_ + input_bytes / link_;
    s.pp_cross_s = latency_ / n_batch_ + input_bytes / link_;
    s.pp_bytes = pp_bytes;
    s.flops = flops;
    s.input_bytes = input_bytes;
    return s;
  }
  Stage make(Stage::Kind kind, int32_t index, double bytes, double flops, double input_bytes) const {
    return make(kind, index, bytes, bytes, flops, input_bytes, roofline());
  }
  // The output head: a prompt batch computes the logits of its last token only, one mat-vec.
  void last_token_only(Stage &s) const {
    s.last_token_only = true;
    for (int d = 0; d < 2; ++d) s.pp_s[d] = s.tg_s[d] / n_batch_;
  }

 private:
  const MachineProfile &machine_;
  double link_;
  double latency_;
  double n_batch_;
};

constexpr int32_t kAttentionOrder = 5;
constexpr int32_t kAttentionOutputOrder = 6;
constexpr int32_t kFfnDownOrder = 11;

// f32 activations per token a layer stage reads (see classify's orders). The experts take the
// normed hidden state (n_embd; the router's k choices and weights are negligible) and give
// n_embd back; ffn_down_exps reads the k selected experts' hidden states.
double stage_input_floats(const ModelShape &m, const TensorFacts &f) {
  const double q_dim = double(m.n_head) * m.head_dim;
  if (f.order == kAttentionOrder) return q_dim + 2.0 * m.n_embd_kv();  // q, k, v into the attention
  if (f.order == kAttentionOutputOrder) return q_dim;                  // attention output into attn_output
  if (f.order == kFfnDownOrder)                                        // hb into ffn_down
    return f.role == Role::experts ? double(m.n_expert_used) * m.n_ff_exp : double(m.n_ff);
  return m.n_embd;
}

// An expert tensor costs what a token (or a batch) is expected to read of it: decode reads the k
// of N experts a token selects; a batch of n tokens, each choosing its k independently, touches
// each expert with probability 1 - (1 - k/N)^n and reads each touched expert once.
struct TensorReads {
  double tg_bytes = 0, pp_bytes = 0, flops = 0;
};

TensorReads tensor_reads(const ModelShape &m, const ModelShape::Tensor &t, Role role, uint32_t n_batch) {
  const double bytes = double(t.bytes), flops = 2.0 * double(t.n_elements);
  if (role != Role::experts) return {bytes, bytes, flops};
  const double k_over_n = m.expert_fraction();
  const double touched = 1.0 - std::pow(1.0 - k_over_n, double(n_batch));
  return {k_over_n * bytes, touched * bytes, k_over_n * flops};
}

double embedding_row_bytes(const ModelShape::Tensor &e) {
  return e.n_elements > 0 ? double(e.bytes) * double(e.row_length) / double(e.n_elements) : 0;
}

// Keys one generated token attends to on average, the cache half full (a window caps it).
double visible_keys(const ModelShape &model, uint32_t n_ctx, uint32_t layer) {
  const uint32_t window = model.attention_window(layer);
  return window > 0 ? std::min(n_ctx / 2.0, double(window)) : n_ctx / 2.0;
}

}  // namespace

double tensor_bytes_per_token(const ModelShape &model, const Layout &layout, size_t t) {
  const ModelShape::Tensor &x = model.tensors[t];
  const auto i = static_cast<int32_t>(t);
  if (i == layout.token_embd && i != layout.output_tensor) return embedding_row_bytes(x);
  return tensor_reads(model, x, layout.facts[t].role, 1).tg_bytes;
}

// K and V of the keys a token attends to, the cache half full: a windowed layer reads at most
// its window.
double kv_bytes_per_token(const ModelShape &model, KvType type, uint32_t n_ctx, uint32_t layer) {
  return visible_keys(model, n_ctx, layer) * 2.0 * double(kv_row_bytes(model, type));
}

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
    const auto i = static_cast<size_t>(t);
    const TensorReads r = tensor_reads(model, tensors[i], layout.facts[i].role, request.n_batch);
    Stage s = coster.make(Stage::Kind::tensor, t, r.tg_bytes, r.pp_bytes, r.flops, 4.0 * input_floats,
                          coster.weight_rates(tensors[i].type));
    s.streamable = layout.facts[i].layer >= 0;  // layer tensors: not the embeddings or the output head
    s.stream_bytes = double(tensors[i].bytes);
    return s;
  };

  auto &stages = layout.stages;
  stages.push_back(coster.make(Stage::Kind::source, -1, 0, 0, 0));
  stages.back().tg_cross_s = stages.back().pp_cross_s = 0;
  if (layout.token_embd >= 0) {  // the lookup reads one row per token, batch or not
    const double row = embedding_row_bytes(tensors[static_cast<size_t>(layout.token_embd)]);
    Stage lookup = coster.make(Stage::Kind::tensor, layout.token_embd, row, 0, sizeof(int32_t));
    for (int d = 0; d < 2; ++d) lookup.pp_s[d] = lookup.tg_s[d];
    lookup.pp_bytes = 0;
    lookup.bytes_per_token = row;
    stages.push_back(lookup);
  }
  for (uint32_t l = 0; l < model.n_layer; ++l) {
    bool attention_done = false;
    auto add_attention = [&] {
      const double kv_bytes_read = kv_bytes_per_token(model, request.kv_type, n_ctx, l);
      const double attention_flops = 4.0 * model.n_head * model.head_dim * visible_keys(model, n_ctx, l);
      Stage s = coster.make(Stage::Kind::attention, static_cast<int32_t>(l), kv_bytes_read, kv_bytes_read,
                            attention_flops, 4.0 * stage_input_floats(model, {Role::attention, -1, kAttentionOrder}),
                            coster.attention_rates());
      s.streamable = true;  // through a device copy of the layer's KV: its new rows go back per token
      s.stream_bytes_per_token = 2.0 * double(kv_row_bytes(model, request.kv_type));
      stages.push_back(s);
      attention_done = true;
    };
    for (auto [order, t] : by_layer[l]) {
      if (order > kAttentionOrder && !attention_done) add_attention();
      stages.push_back(weight_stage(t, stage_input_floats(model, layout.facts[static_cast<size_t>(t)])));
    }
    if (!attention_done) add_attention();
  }
  if (output_norm >= 0) stages.push_back(weight_stage(output_norm, model.n_embd));
  if (layout.output_tensor >= 0) {
    stages.push_back(weight_stage(layout.output_tensor, model.n_embd));
    coster.last_token_only(stages.back());
  }
  stages.push_back(coster.make(Stage::Kind::sink, -1, 0, 0, 4.0 * model.n_vocab));
  stages.back().tg_s[0] = stages.back().tg_s[1] = stages.back().pp_s[0] = stages.back().pp_s[1] = 0;
}

Group make_group(std::string name, int32_t layer, Role role) {
  Group g;
  g.name = std::move(name);
  g.layer = layer;
  g.role = role;
  return g;
}

void add_groups(Layout &layout, const ModelShape &model, const PlanRequest &request, uint32_t n_ctx,
                const std::vector<std::multimap<int32_t, int32_t>> &by_layer, int32_t output_norm) {
  const auto &tensors = model.tensors;
  const bool kv_follows = request.policy.kv_placement == KvPlacement::follow_layer;
  std::vector<Group> groups;
  auto add_tensor = [&](Group &g, int32_t t) {
    g.tensors.push_back(t);
    g.weight_bytes += arena_bytes(tensors[static_cast<size_t>(t)].bytes);
    g.holds_output = g.holds_output || t == layout.output_tensor;
  };
  for (uint32_t l = 0; l < model.n_layer; ++l) {
    const auto layer = static_cast<int32_t>(l);
    const std::string blk = "blk." + std::to_string(l);
    Group attention = make_group(blk + " attention", layer, Role::attention);
    Group ffn = make_group(blk + " ffn", layer, Role::ffn);
    Group experts = make_group(blk + " experts", layer, Role::experts);
    for (auto [order, t] : by_layer[l]) {
      const Role role = layout.facts[static_cast<size_t>(t)].role;
      add_tensor(role == Role::ffn ? ffn : role == Role::experts ? experts : attention, t);
    }
    if (kv_follows) {
      attention.kv_layers.push_back(layer);
      // K and V of every context
      attention.kv_bytes +=
          request.n_contexts * 2 * arena_bytes(kv_layer_bytes(model, request.kv_type, l, n_ctx, request.n_batch));
    }
    for (Group *g : {&attention, &ffn, &experts})
      if (!g->tensors.empty() || !g->kv_layers.empty()) groups.push_back(std::move(*g));
  }
  Group output = make_group("output", -1, Role::output);
  if (output_norm >= 0) add_tensor(output, output_norm);
  if (layout.output_tensor >= 0) add_tensor(output, layout.output_tensor);
  if (!output.tensors.empty()) groups.push_back(std::move(output));
  if (layout.token_embd >= 0 && layout.token_embd != layout.output_tensor) {
    Group embd = make_group("token_embd", -1, Role::token_embd);
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

double prompt_seconds(const Layout &layout, const Placement &placement, const MachineProfile &m, double n,
                      bool streamed) {
  const double bandwidth[2] = {m.host_read_bandwidth, m.device_read_bandwidth};
  const double link = m.host_to_device_bandwidth;
  double seconds = 0;
  int previous = 0;  // the source: the caller's host memory
  for (const Stage &s : layout.stages) {
    int d = stage_location(placement, s) == Location::device ? 1 : 0;
    double t = 0;
    if (streamed && d == 0 && s.streamable) {
      d = 1;
      t = std::max({(s.stream_bytes + n * s.stream_bytes_per_token) / link, n * s.flops / s.flop_rate[1],
                    s.pp_bytes / bandwidth[1]});
    } else if (s.last_token_only) {
      t = s.tg_s[d];
    } else {
      t = std::max(s.pp_bytes / bandwidth[d], n * s.flops / s.flop_rate[d]) + n * s.bytes_per_token / bandwidth[d];
    }
    if (s.kind == Stage::Kind::sink) d = 0;
    if (d != previous) t += m.transfer_latency_s + n * s.input_bytes / link;
    seconds += t;
    previous = d;
  }
  return seconds;
}

uint32_t stream_min_batch(const Layout &layout, const Placement &placement, const MachineProfile &m,
                          uint32_t n_batch) {
  auto pays = [&](uint32_t n) {
    return prompt_seconds(layout, placement, m, n, true) < prompt_seconds(layout, placement, m, n, false);
  };
  if (n_batch == 0 || !pays(n_batch)) return 0;
  uint32_t lo = 0, hi = n_batch;  // pays(hi); the advantage grows with n (weights copied once per batch)
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    (pays(mid) ? hi : lo) = mid;
  }
  return hi;
}

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

namespace vramfit {

WeightCounts count_weights(const ModelShape &model) {
  using offload::Role;
  const bool untied = offload::has_output_tensor(model);  // token_embd is only looked up
  WeightCounts c;
  for (const ModelShape::Tensor &t : model.tensors) {
    const Role role = offload::classify(t.name).role;
    const double params = double(t.n_elements), bytes = double(t.bytes);
    c.params += static_cast<uint64_t>(t.n_elements);
    c.bytes += t.bytes;
    if (role == Role::experts) {
      c.expert_params += static_cast<uint64_t>(t.n_elements);
      c.expert_bytes += t.bytes;
      c.active_params += model.expert_fraction() * params;
      c.active_bytes += model.expert_fraction() * bytes;
    } else if (role == Role::token_embd && untied && t.row_length > 0 && t.n_elements > 0) {
      const double rows = params / double(t.row_length);
      c.active_params += params / rows;
      c.active_bytes += bytes / rows;
    } else {
      c.active_params += params;
      c.active_bytes += bytes;
    }
  }
  return c;
}

}  // namespace vramfit
