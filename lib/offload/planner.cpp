// The planner: a placement for each strategy, checked against the budget, turned into a Plan.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "common/error.hpp"
#include "offload/cost_model.hpp"
#include "offload/memory_model.hpp"
#include "offload/regex.hpp"
#include "vramfit/offload.hpp"

namespace vramfit::offload {
namespace {

bool is_compute(const Stage &s) { return s.kind == Stage::Kind::tensor || s.kind == Stage::Kind::attention; }

// What decides the device's bytes: resident weights and KV, and which stages run where (the
// scratch, staging and fixed overhead exist only when the device is used).
struct DeviceUse {
  uint64_t weights = 0;  // arena bytes of the tensors on the device
  uint64_t kv = 0;       // arena bytes of the KV caches on the device
  size_t device_stages = 0;
  size_t host_stages = 0;
  bool holds_output = false;
};

// Device memory a plan that streams prompts reserves: two staging slots and one layer's K and V.
struct StreamReserve {
  uint64_t slot_bytes = 0;  // the largest unit streamed: a layer tensor, or one expert's three matrices
  uint64_t kv_bytes = 0;    // arena bytes of one layer's K and V
  uint64_t device_bytes() const noexcept { return 2 * arena_bytes(slot_bytes) + kv_bytes; }
};

StreamReserve stream_reserve(const ModelShape &model, const PlanRequest &request, uint32_t n_ctx) {
  StreamReserve r;
  std::map<int32_t, uint64_t> expert_triple;  // layer -> bytes of one expert of each _exps tensor
  for (const ModelShape::Tensor &t : model.tensors) {
    const TensorFacts f = classify(t.name);
    if (f.layer < 0) continue;
    // One expert's slice of each of the layer's expert tensors (and bias), each 256-byte aligned.
    if (f.role == Role::experts && model.n_expert > 0) expert_triple[f.layer] += arena_bytes(t.bytes / model.n_expert);
    else r.slot_bytes = std::max(r.slot_bytes, t.bytes);
  }
  for (auto [layer, bytes] : expert_triple) r.slot_bytes = std::max(r.slot_bytes, bytes);
  uint64_t largest_kv = 0;  // K (or V) of the layer with the most rows (windowed layers hold fewer)
  for (uint32_t l = 0; l < model.n_layer; ++l)
    largest_kv = std::max(largest_kv, kv_layer_bytes(model, request.kv_type, l, n_ctx, request.n_batch));
  r.kv_bytes = 2 * arena_bytes(largest_kv);
  return r;
}

class Planner {
 public:
  // With `stream`, the device reserves its bytes for streaming prompts (see Plan::Streaming).
  Planner(const ModelShape &model, const PlanRequest &request, uint32_t n_ctx, uint64_t budget,
          std::optional<StreamReserve> stream = std::nullopt)
      : model_(model),
        request_(request),
        n_ctx_(n_ctx),
        budget_(budget),
        stream_(stream),
        layout_(build_layout(model, request, n_ctx)) {
    for (uint32_t l = 0; l < model.n_layer; ++l)
      kv_layer_bytes_.push_back(kv_layer_bytes(model, request.kv_type, l, n_ctx, request.n_batch));
    for (size_t t = 0; t < model.tensors.size(); ++t)
      if (layout_.facts[t].role == Role::global) global_bytes_ += arena_bytes(model.tensors[t].bytes);
  }

  Plan run();

 private:
  // ---- memory ----
  MemoryBreakdown device_memory(const DeviceUse &use) const;
  DeviceUse device_use(const Placement &p) const;
  // The use after moving group g (on the host in `u`) to the device, rope_freqs & co included.
  DeviceUse with_group(const DeviceUse &u, const Group &g) const;
  MemoryBreakdown host_memory(const Placement &p) const;
  uint64_t device_total(const Placement &p) const { return device_memory(device_use(p)).total(); }
  // Each context running at once has its own KV cache and scratch.
  uint64_t n_contexts() const noexcept { return request_.n_contexts; }
  std::string contexts_label() const {
    return n_contexts() > 1 ? fmt::format(" for {} contexts", n_contexts()) : std::string();
  }

  // ---- placements ----
  Placement all_host() const;  // KV forced to the device when the policy says so
  Placement baseline() const;  // all_host() with rope_freqs & co placed
  void move(Placement &p, const Group &g, Location to) const;
  void place_globals(Placement &p) const;    // rope_freqs & co: on the device iff it runs a stage
  Placement whole_layers(uint32_t n) const;  // n > n_layer: the output head too
  Placement best_whole_layers(std::string &chosen_by) const;
  Placement greedy() const;
  double time_saved(Placement &p, const Group &g) const;
  std::vector<std::vector<size_t>> neighbours() const;
  Placement by_rules() const;
  // --cpu-moe / --n-cpu-moe: an expert group every strategy leaves on the host.
  bool forced_to_host(const Group &g) const;
  // manual: the first rule matching each tensor (-1: none).
  std::vector<int32_t> first_matching_rules() const;
  // manual: the side the rules give group g (nullopt: no rule names any of its tensors).
  std::optional<Location> side_by_rules(const Group &g, const std::vector<int32_t> &rule_of) const;
  // Error(invalid_argument): rules send tensors a and b of group g to different sides.
  [[noreturn]] void fail_split(const Group &g, int32_t a, int32_t b, const std::vector<int32_t> &rule_of) const;
  uint64_t smallest_useful_budget() const;

  void plan_streaming(Plan &plan, const Placement &p) const;
  // Seconds per generated plus per prompt token; the prompt streamed when this planner reserves
  // for it and it pays.
  double objective(const Placement &p) const;
  void require_fits(const Placement &p, std::string_view what) const;
  void require_room_for_something() const;
  Plan assemble(const Placement &p, std::string chosen_by) const;
  Plan::TokenReads bytes_read_per_token(const Placement &p) const;

  const ModelShape &model_;
  const PlanRequest &request_;
  uint32_t n_ctx_;
  uint64_t budget_;
  std::optional<StreamReserve> stream_;
  Layout layout_;
  std::vector<uint64_t> kv_layer_bytes_;  // K (or V) of each layer
  uint64_t global_bytes_ = 0;  // arena bytes of rope_freqs & co
};

// ---------------------------------------------------------------- memory

MemoryBreakdown Planner::device_memory(const DeviceUse &use) const {
  MemoryBreakdown m;
  if (use.weights + use.kv == 0 && use.device_stages == 0) return m;  // unused: not even a context
  m.overhead = request_.machine.device_fixed_overhead_bytes;
  if (use.device_stages > 0)
    m.scratch = n_contexts() * arena_bytes(scratch_bytes(model_, n_ctx_, request_.n_batch, use.holds_output));
  // The residual crosses through host staging straight into the device's activations: no device
  // buffer. Streaming prompts needs its slots and KV copy.
  if (use.device_stages > 0 && stream_) m.staging = stream_->device_bytes();
  m.weights = use.weights;
  m.kv = use.kv;
  return m;
}

DeviceUse Planner::device_use(const Placement &p) const {
  DeviceUse use;
  for (size_t t = 0; t < p.tensor.size(); ++t)
    if (p.tensor[t] == Location::device) use.weights += arena_bytes(model_.tensors[t].bytes);
  for (size_t l = 0; l < p.kv.size(); ++l)
    if (p.kv[l] == Location::device) use.kv += n_contexts() * 2 * arena_bytes(kv_layer_bytes_[l]);
  for (const Stage &s : layout_.stages) {
    if (!is_compute(s)) continue;
    (stage_location(p, s) == Location::device ? use.device_stages : use.host_stages)++;
  }
  use.holds_output =
      layout_.output_tensor >= 0 && p.tensor[static_cast<size_t>(layout_.output_tensor)] == Location::device;
  return use;
}

DeviceUse Planner::with_group(const DeviceUse &u, const Group &g) const {
  DeviceUse next = u;
  next.weights += g.weight_bytes + (u.device_stages == 0 ? global_bytes_ : 0);
  next.kv += g.kv_bytes;
  next.device_stages += g.stages.size();
  next.host_stages -= g.stages.size();
  next.holds_output = u.holds_output || g.holds_output;
  return next;
}

MemoryBreakdown Planner::host_memory(const Placement &p) const {
  MemoryBreakdown m;
  for (size_t t = 0; t < p.tensor.size(); ++t)
    if (p.tensor[t] == Location::host) m.weights += model_.tensors[t].bytes;
  for (size_t l = 0; l < p.kv.size(); ++l)
    if (p.kv[l] == Location::host) m.kv += n_contexts() * 2 * kv_layer_bytes_[l];
  const DeviceUse use = device_use(p);
  if (use.host_stages > 0)
    m.scratch = n_contexts() * scratch_bytes(model_, n_ctx_, request_.n_batch, !use.holds_output);
  if (use.host_stages > 0 && use.device_stages > 0) m.staging = n_contexts() * staging_bytes(model_, request_.n_batch);
  return m;
}

// ---------------------------------------------------------------- placements

Placement Planner::all_host() const {
  Placement p;
  p.tensor.assign(model_.tensors.size(), Location::host);
  const bool kv_on_device = request_.policy.kv_placement == KvPlacement::device;
  p.kv.assign(model_.n_layer, kv_on_device ? Location::device : Location::host);
  return p;
}

Placement Planner::baseline() const {
  Placement p = all_host();
  place_globals(p);
  return p;
}

void Planner::move(Placement &p, const Group &g, Location to) const {
  for (int32_t t : g.tensors) p.tensor[static_cast<size_t>(t)] = to;
  for (int32_t l : g.kv_layers) p.kv[static_cast<size_t>(l)] = to;
}

void Planner::place_globals(Placement &p) const {
  const bool device_runs = device_use(p).device_stages > 0;
  for (size_t t = 0; t < p.tensor.size(); ++t)
    if (layout_.facts[t].role == Role::global) p.tensor[t] = device_runs ? Location::device : Location::host;
}

bool Planner::forced_to_host(const Group &g) const {
  const OffloadPolicy &policy = request_.policy;
  return g.role == Role::experts && (policy.cpu_moe || g.layer < policy.n_cpu_moe);
}

Placement Planner::whole_layers(uint32_t n) const {
  Placement p = all_host();
  for (const Group &g : layout_.groups) {
    const bool in_layer = g.layer >= 0 && static_cast<uint32_t>(g.layer) < n;
    if ((in_layer || (n > model_.n_layer && g.holds_output)) && !forced_to_host(g)) move(p, g, Location::device);
  }
  place_globals(p);
  return p;
}

// The fastest prefix of whole layers that fits: as many as fit, unless an extra layer is
// predicted slower (a tiny layer saves less than its transfers cost). Ties go to more layers, so
// more budget never gives fewer device bytes or a slower plan.
Placement Planner::best_whole_layers(std::string &chosen_by) const {
  Placement best = baseline();
  double best_time = objective(best);
  uint32_t best_n = 0;
  for (uint32_t n = 1; n <= model_.n_layer + 1; ++n) {
    Placement p = whole_layers(n);
    if (device_total(p) > budget_) continue;
    const double t = objective(p);
    if (t <= best_time) best = std::move(p), best_time = t, best_n = n;
  }
  chosen_by = "layers (" + std::to_string(best_n) + " of " + std::to_string(model_.n_layer + 1) + ", output head last)";
  return best;
}

// Time saved by moving group g, on the host in p, to the device: its stages' times and the
// crossings at their edges. Only moves of the groups beside those stages change it.
double Planner::time_saved(Placement &p, const Group &g) const {
  const double before = local_time(layout_, p, g.stages).objective();
  move(p, g, Location::device);
  const double saved = before - local_time(layout_, p, g.stages).objective();
  move(p, g, Location::host);
  return saved;
}

// For each group, the groups owning a stage right before or after one of its stages.
std::vector<std::vector<size_t>> Planner::neighbours() const {
  const size_t n = layout_.groups.size();
  std::vector<int64_t> group_of_stage(layout_.stages.size(), -1);
  for (size_t g = 0; g < n; ++g)
    for (int32_t s : layout_.groups[g].stages) group_of_stage[static_cast<size_t>(s)] = static_cast<int64_t>(g);
  std::vector<std::vector<size_t>> result(n);
  for (size_t g = 0; g < n; ++g)
    for (int32_t s : layout_.groups[g].stages)
      for (int64_t adjacent : {int64_t{s} - 1, int64_t{s} + 1}) {
        if (adjacent < 0 || adjacent >= static_cast<int64_t>(group_of_stage.size())) continue;
        const int64_t h = group_of_stage[static_cast<size_t>(adjacent)];
        if (h >= 0 && static_cast<size_t>(h) != g) result[g].push_back(static_cast<size_t>(h));
      }
  return result;
}

// Greedy by predicted time saved per device byte: at each step, the group whose move saves the
// most time per byte it adds and still fits (with the device's overhead, scratch and staging).
// A move changes only its neighbours' savings, so those alone are recomputed: a 94-layer model
// of ~290 groups plans in about a millisecond.
Placement Planner::greedy() const {
  Placement p = baseline();
  DeviceUse use = device_use(p);
  const std::vector<Group> &groups = layout_.groups;
  std::vector<bool> placed(groups.size(), false);
  std::vector<double> saved(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) saved[i] = time_saved(p, groups[i]);
  const std::vector<std::vector<size_t>> beside = neighbours();
  const uint64_t logits_bytes = n_contexts() * (arena_bytes(scratch_bytes(model_, n_ctx_, request_.n_batch, true)) -
                                                arena_bytes(scratch_bytes(model_, n_ctx_, request_.n_batch, false)));
  for (;;) {
    int64_t best = -1;
    double best_ratio = 0;
    for (size_t i = 0; i < groups.size(); ++i) {
      const Group &g = groups[i];
      if (placed[i] || forced_to_host(g) || saved[i] <= 0) continue;
      if (device_memory(with_group(use, g)).total() > budget_) continue;
      // Per byte the group itself adds: the overhead, scratch and staging of a device in use are
      // the same whichever group goes first, so they only have to fit.
      const double ratio = saved[i] / double(g.weight_bytes + g.kv_bytes + (g.holds_output ? logits_bytes : 0));
      if (ratio > best_ratio) best = static_cast<int64_t>(i), best_ratio = ratio;
    }
    if (best < 0) break;
    const auto b = static_cast<size_t>(best);
    use = with_group(use, groups[b]);
    move(p, groups[b], Location::device);
    placed[b] = true;
    for (size_t h : beside[b])
      if (!placed[h]) saved[h] = time_saved(p, groups[h]);
  }
  place_globals(p);
  return p;
}

// manual: the rules first, then the layer count. The executor runs each group on one device, so
// a rule places the group of every tensor it names: the tensors no rule names (norms, biases, the
// router's ffn_norm) go where the named ones of their group go, and rules that send one group's
// tensors to both sides are an error. A group no rule names goes by the layer count (layers
// [0, n), the output head when n > n_layer); a KV cache that follows its layer goes with the
// attention group; rope_freqs & co no rule names go to the device when it runs anything.
// --cpu-moe / --n-cpu-moe have the last word on their expert groups.
Placement Planner::by_rules() const {
  const std::vector<int32_t> rule_of = first_matching_rules();
  const int64_t n = request_.policy.n_gpu_layers;
  Placement p = all_host();
  for (const Group &g : layout_.groups) {
    const bool by_count = (g.layer >= 0 && g.layer < n) || (g.holds_output && n > int64_t{model_.n_layer});
    Location side = side_by_rules(g, rule_of).value_or(by_count ? Location::device : Location::host);
    if (forced_to_host(g)) side = Location::host;
    move(p, g, side);
  }
  const bool device_runs = device_use(p).device_stages > 0;
  for (size_t t = 0; t < p.tensor.size(); ++t) {
    if (layout_.facts[t].role != Role::global) continue;
    const int32_t r = rule_of[t];
    const bool to_device = r >= 0 ? request_.policy.rules[static_cast<size_t>(r)].to_device : device_runs;
    p.tensor[t] = to_device ? Location::device : Location::host;
  }
  return p;
}

std::vector<int32_t> Planner::first_matching_rules() const {
  const std::vector<OffloadRule> &rules = request_.policy.rules;
  std::vector<std::regex> patterns;
  for (const OffloadRule &rule : rules) {
    try {
      patterns.emplace_back(rule.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error &e) {
      detail::fail(ErrorCode::invalid_argument, "override-tensor rule '{}': not a valid regex ({})", rule.pattern,
                   e.what());
    }
  }
  std::vector<int32_t> rule_of(model_.tensors.size(), -1);
  for (size_t t = 0; t < rule_of.size(); ++t)
    for (size_t r = 0; r < patterns.size() && rule_of[t] < 0; ++r)
      if (std::regex_search(model_.tensors[t].name, patterns[r])) rule_of[t] = static_cast<int32_t>(r);
  return rule_of;
}

std::optional<Location> Planner::side_by_rules(const Group &g, const std::vector<int32_t> &rule_of) const {
  std::optional<Location> side;
  int32_t decided_by = -1;  // the tensor whose rule set `side`
  for (int32_t t : g.tensors) {
    const int32_t r = rule_of[static_cast<size_t>(t)];
    if (r < 0) continue;
    const Location here = request_.policy.rules[static_cast<size_t>(r)].to_device ? Location::device : Location::host;
    if (!side)
      side = here, decided_by = t;
    else if (here != *side)
      fail_split(g, decided_by, t, rule_of);
  }
  return side;
}

void Planner::fail_split(const Group &g, int32_t a, int32_t b, const std::vector<int32_t> &rule_of) const {
  auto tensor = [&](int32_t t) { return std::string_view(model_.tensors[static_cast<size_t>(t)].name); };
  auto rule = [&](int32_t t) { return request_.policy.rules[static_cast<size_t>(rule_of[static_cast<size_t>(t)])]; };
  auto side = [&](int32_t t) { return rule(t).to_device ? "gpu" : "cpu"; };
  detail::fail(ErrorCode::invalid_argument,
               "override-tensor rules split '{}': '{}' goes to the {} (rule '{}') but '{}' to the {} (rule '{}'); the "
               "forward pass runs each block (a layer's attention, its feed-forward or router, its experts, the output "
               "head) on one device, so send the whole block to one side",
               g.name, tensor(a), side(a), rule(a).pattern, tensor(b), side(b), rule(b).pattern);
}

// The smallest budget with which the automatic strategies can put anything on the device.
uint64_t Planner::smallest_useful_budget() const {
  const DeviceUse base = device_use(baseline());
  uint64_t smallest = UINT64_MAX;
  for (const Group &g : layout_.groups)
    if (!forced_to_host(g)) smallest = std::min(smallest, device_memory(with_group(base, g)).total());
  if (model_.n_layer > 0) smallest = std::min(smallest, device_total(whole_layers(1)));
  return smallest == UINT64_MAX ? device_total(baseline()) : smallest;
}

void Planner::require_fits(const Placement &p, std::string_view what) const {
  const DeviceUse use = device_use(p);
  const MemoryBreakdown m = device_memory(use);
  if (m.total() <= budget_) return;
  detail::fail(ErrorCode::budget_exceeded,
               "VRAM budget {} bytes ({:.2f} GiB) cannot hold {}: the device needs {} bytes ({:.2f} GiB) = "
               "weights {} + KV {} + scratch {} + staging {} + fixed overhead {} (CUDA context, cuBLAS workspace) "
               "at n_ctx={} n_batch={}{}; the smallest budget that works is {} bytes ({:.2f} GiB)",
               budget_, budget_ / 1073741824.0, what, m.total(), m.total() / 1073741824.0, m.weights, m.kv, m.scratch,
               m.staging, m.overhead, n_ctx_, request_.n_batch, contexts_label(), m.total(), m.total() / 1073741824.0);
}

void Planner::require_room_for_something() const {
  // An automatic strategy fails only when the device can hold nothing at all: the KV cache
  // forced there, or, when nothing is forced, the smallest group with the device's fixed costs.
  const Placement base = baseline();
  require_fits(base, "the KV cache forced to the device");
  const uint64_t smallest = smallest_useful_budget();
  if (device_total(base) > 0 || budget_ >= smallest) return;
  detail::fail(ErrorCode::budget_exceeded,
               "VRAM budget {} bytes ({:.2f} GiB) is too small to place anything on the device: the fixed "
               "overhead (CUDA context, cuBLAS workspace) is {} bytes, scratch for n_ctx={} n_batch={}{} is {} bytes; "
               "the smallest budget that works is {} bytes ({:.2f} GiB) (or run on the CPU: -ngl 0)",
               budget_, budget_ / 1073741824.0, request_.machine.device_fixed_overhead_bytes, n_ctx_, request_.n_batch,
               contexts_label(), n_contexts() * arena_bytes(scratch_bytes(model_, n_ctx_, request_.n_batch, false)),
               smallest, smallest / 1073741824.0);
}

std::string manual_label(const OffloadPolicy &policy) {
  const std::string ngl = std::to_string(policy.n_gpu_layers);
  if (policy.rules.empty()) return policy.n_gpu_layers < 0 ? "manual (no rules, no -ngl)" : "manual (-ngl " + ngl + ")";
  return policy.n_gpu_layers < 0 ? "manual (rules)" : "manual (rules, then -ngl " + ngl + ")";
}

Plan Planner::run() {
  const OffloadPolicy &policy = request_.policy;
  if (policy.strategy == OffloadStrategy::manual) {
    Placement p = by_rules();
    require_fits(p, "the tensors the rules and the layer count put there");
    return assemble(p, manual_label(policy));
  }
  if (policy.strategy == OffloadStrategy::layers && policy.n_gpu_layers >= 0) {
    const auto n = std::min<uint32_t>(static_cast<uint32_t>(policy.n_gpu_layers), model_.n_layer + 1);
    Placement p = whole_layers(n);
    require_fits(p, fmt::format("{} whole layers", n));
    return assemble(p, "layers (-ngl " + std::to_string(n) + ")");
  }
  require_room_for_something();
  std::string layers_how;
  Placement layers = best_whole_layers(layers_how);
  if (policy.strategy == OffloadStrategy::layers) return assemble(layers, layers_how);
  // fastest: the greedy placement, unless whole layers are predicted at least as fast.
  Placement fastest = greedy();
  if (objective(fastest) < objective(layers))
    return assemble(fastest, "greedy (time saved per byte)");
  return assemble(layers, layers_how + ", not slower than greedy");
}

Plan Planner::assemble(const Placement &p, std::string chosen_by) const {
  Plan plan;
  plan.strategy = request_.policy.strategy;
  plan.chosen_by = std::move(chosen_by);
  plan.budget_bytes = budget_;
  plan.n_ctx = n_ctx_;
  plan.n_batch = request_.n_batch;
  plan.kv_type = request_.kv_type;
  plan.n_contexts = request_.n_contexts;
  plan.n_layer = model_.n_layer;
  plan.machine = request_.machine;
  for (size_t t = 0; t < model_.tensors.size(); ++t) {
    const ModelShape::Tensor &x = model_.tensors[t];
    const bool on_device = p.tensor[t] == Location::device;
    plan.tensors.push_back(PlannedTensor{x.name, layout_.facts[t].layer, x.type, x.bytes, p.tensor[t],
                                         on_device ? arena_bytes(x.bytes) : 0});
    if (on_device) plan.device.weights += arena_bytes(x.bytes);
  }
  std::vector<bool> layer_on_device(model_.n_layer, true);
  for (uint32_t l = 0; l < model_.n_layer; ++l) {
    const bool on_device = p.kv[l] == Location::device;
    const uint64_t bytes = kv_layer_bytes_[l];
    const uint64_t arena = on_device ? n_contexts() * 2 * arena_bytes(bytes) : 0;
    plan.kv.push_back(PlannedKvLayer{static_cast<int32_t>(l), p.kv[l], bytes, bytes, arena});
    plan.device.kv += arena;
    layer_on_device[l] = on_device;
  }
  for (const PlannedTensor &t : plan.tensors)
    if (t.layer >= 0 && t.location == Location::host) layer_on_device[static_cast<size_t>(t.layer)] = false;
  plan.n_device_layers = static_cast<uint32_t>(std::count(layer_on_device.begin(), layer_on_device.end(), true));
  for (const Group &g : layout_.groups)
    if (g.role == Role::experts) {
      plan.n_expert_groups += 1;
      plan.n_device_expert_groups += p.tensor[static_cast<size_t>(g.tensors.front())] == Location::device;
    }
  plan.bytes_read_per_token = bytes_read_per_token(p);

  // The listed tensors and caches must add up to the memory model's own count.
  const MemoryBreakdown counted = device_memory(device_use(p));
  plan.device.scratch = counted.scratch;
  plan.device.staging = counted.staging;
  plan.device.overhead = counted.overhead;
  if (plan.device.weights != counted.weights || plan.device.kv != counted.kv || plan.device.total() > budget_)
    detail::fail(ErrorCode::internal, "planner bookkeeping: device total {} for budget {}", plan.device.total(),
                 budget_);
  plan.host = host_memory(p);

  const Times times = total_time(layout_, p);
  plan.predicted_tg_tok_s = times.tg > 0 ? 1.0 / times.tg : 0;
  plan.predicted_pp_tok_s = times.pp > 0 ? 1.0 / times.pp : 0;
  if (stream_ && plan.device.staging > 0) plan_streaming(plan, p);
  const uint64_t available = request_.machine.host_available_bytes;
  plan.host_memory_fits = available == 0 || plan.host.total() <= available;
  if (!plan.host_memory_fits)
    plan.notes.push_back(
        fmt::format("host memory: the plan keeps {:.2f} GiB on the host but only {:.2f} GiB is "
                    "available; weights will be paged from disk (far slower)",
                    plan.host.total() / 1073741824.0, available / 1073741824.0));
  if (plan.device.total() == 0 && request_.policy.strategy != OffloadStrategy::manual)
    plan.notes.push_back("nothing on the device: the model predicts no placement faster than the CPU alone");
  return plan;
}

Plan::TokenReads Planner::bytes_read_per_token(const Placement &p) const {
  double reads[2] = {0, 0};  // [host, device]
  auto side = [](Location l) { return l == Location::device ? 1 : 0; };
  for (size_t t = 0; t < p.tensor.size(); ++t)
    reads[side(p.tensor[t])] += tensor_bytes_per_token(model_, layout_, t);
  for (uint32_t l = 0; l < p.kv.size(); ++l) reads[side(p.kv[l])] += kv_bytes_per_token(model_, request_.kv_type, n_ctx_, l);
  return {static_cast<uint64_t>(std::llround(reads[1])), static_cast<uint64_t>(std::llround(reads[0]))};
}

double Planner::objective(const Placement &p) const {
  const Times t = total_time(layout_, p);
  if (!stream_ || device_memory(device_use(p)).staging == 0) return t.objective();
  const double n = request_.n_batch;
  return t.tg + std::min(t.pp, prompt_seconds(layout_, p, request_.machine, n, true) / n);
}

// Streams prompts from the batch size on which the cost model predicts it is faster; the slots
// and the KV copy are in the device's staging either way (make_plan keeps the plan without them
// when they do not pay).
void Planner::plan_streaming(Plan &plan, const Placement &p) const {
  Plan::Streaming &st = plan.streaming;
  const MachineProfile &m = request_.machine;
  st.slot_bytes = stream_->slot_bytes;
  st.kv_bytes = std::any_of(p.kv.begin(), p.kv.end(), [](Location l) { return l == Location::host; })
                    ? stream_->kv_bytes
                    : 0;
  const double n = request_.n_batch;
  st.unstreamed_pp_tok_s = n / prompt_seconds(layout_, p, m, n, false);
  st.min_batch = stream_min_batch(layout_, p, m, request_.n_batch);
  st.enabled = st.min_batch > 0;
  if (!st.enabled) return;
  st.predicted_pp_tok_s = n / prompt_seconds(layout_, p, m, n, true);
  for (const Stage &s : layout_.stages)
    if (s.kind == Stage::Kind::tensor && s.streamable && stage_location(p, s) == Location::host)
      st.bytes_per_batch += static_cast<uint64_t>(s.stream_bytes);
  plan.predicted_pp_tok_s = st.predicted_pp_tok_s;
  plan.host.staging += 2 * st.slot_bytes;  // a GPU's pinned bounce buffers (the map is pageable)
}

// ---------------------------------------------------------------- request checks

void validate(const ModelShape &model, const PlanRequest &request) {
  if (request.n_ctx == 0 || request.n_batch == 0 || request.n_contexts == 0)
    detail::fail(ErrorCode::invalid_argument, "n_ctx ({}), n_batch ({}) and n_contexts ({}) must be positive",
                 request.n_ctx, request.n_batch, request.n_contexts);
  if (model.n_embd == 0 || model.n_head == 0 || model.head_dim == 0 || model.n_head_kv == 0)
    detail::fail(ErrorCode::invalid_argument, "model '{}' has no usable n_embd/n_head/head_dim/n_head_kv",
                 model.architecture);
  const MachineProfile &m = request.machine;
  for (double rate :
       {m.host_read_bandwidth, m.device_read_bandwidth, m.host_to_device_bandwidth, m.host_flops, m.device_flops})
    if (!(rate > 0))
      detail::fail(ErrorCode::invalid_argument, "machine profile: bandwidths and flop rates must be positive");
  if (!(m.host_attention_flops >= 0))
    detail::fail(ErrorCode::invalid_argument, "machine profile: host_attention_flops ({}) must not be negative",
                 m.host_attention_flops);
  for (const auto &[type, rate] : m.host_kernels)
    if (!(rate.matvec_bytes_per_s > 0) || !(rate.matmul_flops > 0))
      detail::fail(ErrorCode::invalid_argument,
                   "machine profile: host kernel rates of {} must be positive ({} B/s, {} flop/s)", type_name(type),
                   rate.matvec_bytes_per_s, rate.matmul_flops);
  if (request.policy.min_ctx > request.n_ctx)
    detail::fail(ErrorCode::invalid_argument, "min_ctx {} is larger than n_ctx {}", request.policy.min_ctx,
                 request.n_ctx);
  if (request.policy.n_cpu_moe < 0)
    detail::fail(ErrorCode::invalid_argument, "n_cpu_moe ({}) must not be negative", request.policy.n_cpu_moe);
  check_expert_counts(model, ErrorCode::invalid_argument, "model '" + model.architecture + "'");
  for (const ModelShape::Tensor &t : model.tensors)
    if (model.n_expert == 0 && classify(t.name).role == Role::experts)
      detail::fail(ErrorCode::invalid_argument, "model '{}': '{}' is an expert tensor but n_expert is 0",
                   model.architecture, t.name);
}

// The cap: the caller's budget, or free device memory minus the reserve; never more than the
// device has.
uint64_t resolve_budget(const PlanRequest &request, std::vector<std::string> &notes) {
  const MachineProfile &m = request.machine;
  const uint64_t device = m.device_free_bytes ? m.device_free_bytes : m.device_memory_bytes;
  uint64_t budget = request.policy.vram_budget_bytes;
  if (budget == 0) {
    if (device == 0)
      detail::fail(ErrorCode::invalid_argument,
                   "no VRAM budget given and the device memory is unknown: "
                   "pass --vram-budget");
    budget = device > request.policy.reserve_bytes ? device - request.policy.reserve_bytes : 0;
    const char *what = m.measured.device_memory ? (m.device_free_bytes ? "free device memory (measured)"
                                                                        : "device memory (measured)")
                       : m.given.device_memory ? "device memory (given)"
                                               : "device memory (assumed, no GPU was measured)";
    notes.push_back(fmt::format("budget: {:.2f} GiB {} minus a {:.2f} GiB reserve", device / 1073741824.0, what,
                                request.policy.reserve_bytes / 1073741824.0));
  } else if (device != 0 && budget > device) {
    notes.push_back(fmt::format("budget: {:.2f} GiB asked, but the device has {:.2f} GiB{}; capped",
                                budget / 1073741824.0, device / 1073741824.0, m.device_free_bytes ? " free" : ""));
    budget = device;
  }
  return budget;
}

}  // namespace
}  // namespace vramfit::offload

namespace vramfit {
namespace {

Plan plan_for_contexts(const ModelShape &model, const PlanRequest &request);

// How many of request.n_contexts contexts the budget holds (0: not even one); bytes grow with the
// count, so bisect.
uint32_t contexts_that_fit(const ModelShape &model, const PlanRequest &request) {
  uint32_t fits = 0, fails = request.n_contexts;
  while (fails - fits > 1) {
    PlanRequest fewer = request;
    fewer.n_contexts = fits + (fails - fits) / 2;
    try {
      plan_for_contexts(model, fewer);
      fits = fewer.n_contexts;
    } catch (const Error &e) {
      if (e.code() != ErrorCode::budget_exceeded) throw;
      fails = fewer.n_contexts;
    }
  }
  return fits;
}

}  // namespace

Plan make_plan(const ModelShape &model, const PlanRequest &request) {
  try {
    return plan_for_contexts(model, request);
  } catch (const Error &e) {
    if (e.code() != ErrorCode::budget_exceeded || request.n_contexts <= 1) throw;
    const uint32_t fits = contexts_that_fit(model, request);
    throw Error(e.code(), fmt::format("{}; this budget holds {} of the {} contexts asked for (n_ctx={} each)",
                                      e.what(), fits, request.n_contexts, request.n_ctx));
  }
}

namespace {

Plan plan_for_contexts(const ModelShape &model, const PlanRequest &request) {
  offload::validate(model, request);
  std::vector<std::string> notes;
  const uint64_t budget = offload::resolve_budget(request, notes);
  // With prompt streaming when it is allowed and pays: its slots take device bytes from the
  // weights, so it must win on the objective (tg + pp) to be kept.
  auto plan_at = [&](uint32_t n_ctx) {
    Plan plain = offload::Planner(model, request, n_ctx, budget).run();
    if (!request.policy.stream_prefill || plain.device.total() == 0) return plain;
    try {
      Plan streamed =
          offload::Planner(model, request, n_ctx, budget, offload::stream_reserve(model, request, n_ctx)).run();
      auto objective = [](const Plan &p) { return 1.0 / p.predicted_tg_tok_s + 1.0 / p.predicted_pp_tok_s; };
      if (streamed.streaming.enabled && objective(streamed) < objective(plain)) return streamed;
    } catch (const Error &e) {
      if (e.code() != ErrorCode::budget_exceeded) throw;
    }
    return plain;
  };
  Plan plan;
  const uint32_t min_ctx = request.policy.min_ctx;
  try {
    plan = plan_at(request.n_ctx);
  } catch (const Error &e) {
    if (e.code() != ErrorCode::budget_exceeded) throw;
    // Say where the budget came from when it is not the caller's number.
    const std::string why = notes.empty() ? std::string(e.what()) : fmt::format("{} ({})", e.what(), notes[0]);
    if (min_ctx == 0 || min_ctx >= request.n_ctx) throw Error(e.code(), why);
    try {
      plan_at(min_ctx);
    } catch (const Error &) {
      throw Error(e.code(), fmt::format("{}; even n_ctx {} (--min-ctx) does not fit", why, min_ctx));
    }
    // Bytes grow with n_ctx, so the contexts that fit are [min_ctx, largest]: bisect.
    uint32_t fits = min_ctx, fails = request.n_ctx;
    while (fails - fits > 1) {
      const uint32_t mid = fits + (fails - fits) / 2;
      try {
        plan_at(mid);
        fits = mid;
      } catch (const Error &inner) {
        if (inner.code() != ErrorCode::budget_exceeded) throw;
        fails = mid;
      }
    }
    if (fits / 256 * 256 >= min_ctx) fits = fits / 256 * 256;  // a round number when possible
    plan = plan_at(fits);
    notes.push_back(
        fmt::format("context shrunk from {} to {} tokens to fit the budget (--min-ctx {})", request.n_ctx, fits, min_ctx));
  }
  plan.notes.insert(plan.notes.begin(), notes.begin(), notes.end());
  return plan;
}

}  // namespace

Plan make_plan(const gguf::File &header, const PlanRequest &request) {
  return make_plan(ModelShape::from_gguf(header), request);
}

}  // namespace vramfit
