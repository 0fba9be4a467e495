// Properties over thousands of random (model shape, budget, context, strategy) cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "blocks.hpp"
#include "offload/regex.hpp"
#include "shapes.hpp"

using namespace vramfit;

namespace {

struct Case {
  ModelShape model;
  PlanRequest request;
};

template <class T>
T pick(std::mt19937_64 &rng, std::initializer_list<T> options) {
  return options.begin()[std::uniform_int_distribution<size_t>(0, options.size() - 1)(rng)];
}

uint64_t log_uniform(std::mt19937_64 &rng, double lo, double hi) {
  return static_cast<uint64_t>(std::exp(std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(rng)));
}

// The plan of the case, or nullopt when the planner refuses it.
std::optional<Plan> plan_if_possible(const Case &c) {
  try {
    return make_plan(c.model, c.request);
  } catch (const Error &) {
    return std::nullopt;
  }
}

GgmlType random_matrix_type(std::mt19937_64 &rng, bool k_quants_ok) {
  return k_quants_ok ? pick(rng, {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K})
                     : pick(rng, {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0});
}

// A qwen3moe- or Mixtral-shaped model, small or real-sized (up to Qwen3-30B-A3B's 48 layers of
// 128 experts).
ModelShape random_moe_shape(std::mt19937_64 &rng) {
  test::MoeDims d;
  const bool large = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
  d.n_layer = std::uniform_int_distribution<uint32_t>(1, large ? 48 : 8)(rng);
  d.head_dim = pick<uint32_t>(rng, {64, 128});
  d.n_embd = pick<uint32_t>(rng, {256, 512}) * (large ? 4 : 1);
  d.n_head = d.n_embd / d.head_dim * pick<uint32_t>(rng, {1, 2});
  d.n_head_kv = std::max<uint32_t>(1, d.n_head / pick<uint32_t>(rng, {1, 4, 8}));
  d.n_ff_exp = pick<uint32_t>(rng, {256, 512, 768});
  d.n_expert = pick<uint32_t>(rng, {2, 8, 16, 64, 128});
  d.n_expert_used = std::uniform_int_distribution<uint32_t>(1, std::min<uint32_t>(8, d.n_expert))(rng);
  d.n_vocab = std::uniform_int_distribution<uint32_t>(32, large ? 152000 : 4000)(rng);
  d.qk_norm = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
  d.biases = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
  d.tied = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
  return test::moe_shape(d, random_matrix_type(rng, true), random_matrix_type(rng, true));
}

Case random_case(std::mt19937_64 &rng) {
  Case c;
  test::LlamaDims d;
  const bool large = std::uniform_int_distribution<int>(0, 3)(rng) == 0;  // a real-sized layer now and then
  d.n_layer = std::uniform_int_distribution<uint32_t>(1, large ? 48 : 12)(rng);
  d.n_head = pick<uint32_t>(rng, {1, 2, 4, 8, 32});
  const uint32_t head_dim = pick<uint32_t>(rng, {32, 64, 128});
  d.n_embd = d.n_head * head_dim * (large ? 4 : 1);
  d.n_head *= large ? 4 : 1;
  d.n_head_kv = d.n_head / pick<uint32_t>(rng, {1, 2, 4});
  if (d.n_head_kv == 0) d.n_head_kv = 1;
  d.n_ff = d.n_embd * pick<uint32_t>(rng, {1, 2, 3});
  d.n_vocab = std::uniform_int_distribution<uint32_t>(32, large ? 128000 : 4000)(rng);
  d.tied = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
  d.rope_freqs = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
  // K-quants need rows of 256: keep them for the shapes where every row length allows it.
  const bool k_ok = d.n_embd % 256 == 0 && d.n_ff % 256 == 0;
  c.model = std::uniform_int_distribution<int>(0, 2)(rng) == 0 ? random_moe_shape(rng)
                                                               : test::llama_shape(d, random_matrix_type(rng, k_ok));

  PlanRequest &r = c.request;
  r.n_ctx = std::uniform_int_distribution<uint32_t>(1, 8192)(rng);
  r.n_batch = std::uniform_int_distribution<uint32_t>(1, 1024)(rng);
  r.kv_type = c.model.n_embd_kv() % 32 == 0 ? pick(rng, {KvType::f16, KvType::f32, KvType::q8_0}) : KvType::f16;
  r.policy.kv_placement =
      pick(rng, {KvPlacement::follow_layer, KvPlacement::follow_layer, KvPlacement::host, KvPlacement::device});
  r.policy.strategy = pick(rng, {OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual});
  r.policy.cpu_moe = std::uniform_int_distribution<int>(0, 7)(rng) == 0;
  if (std::uniform_int_distribution<int>(0, 3)(rng) == 0)
    r.policy.n_cpu_moe = std::uniform_int_distribution<int32_t>(0, int32_t(c.model.n_layer) + 1)(rng);
  MachineProfile &m = r.machine;
  m.host_read_bandwidth = static_cast<double>(log_uniform(rng, 5e9, 200e9));
  m.device_read_bandwidth = static_cast<double>(log_uniform(rng, 100e9, 3000e9));
  m.host_to_device_bandwidth = static_cast<double>(log_uniform(rng, 4e9, 60e9));
  m.transfer_latency_s = std::uniform_real_distribution<double>(0, 50e-6)(rng);
  m.host_flops = static_cast<double>(log_uniform(rng, 1e10, 5e12));
  m.device_flops = static_cast<double>(log_uniform(rng, 1e12, 1e15));
  m.device_memory_bytes = 0;  // the budget alone decides
  m.device_fixed_overhead_bytes = log_uniform(rng, 1, 512.0 * (1 << 20));
  uint64_t model_bytes = 0;
  for (const auto &t : c.model.tensors) model_bytes += t.bytes;
  r.policy.vram_budget_bytes = log_uniform(rng, 1 << 20, 3.0 * double(model_bytes) + 2e9);
  return c;
}

double objective(const Plan &p) { return 1 / p.predicted_tg_tok_s + 1 / p.predicted_pp_tok_s; }

// The error's "smallest budget that works is N bytes".
uint64_t smallest_budget_in(const std::string &message) {
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(message, m, std::regex("smallest budget that works is ([0-9]+) bytes")), message);
  return std::stoull(m[1].str());
}

bool is_expert(const std::string &name) { return test::block_of(name, false).ends_with(" experts"); }

// --cpu-moe / --n-cpu-moe: those expert groups on the host, whatever the strategy.
void check_cpu_moe(const Plan &plan, const OffloadPolicy &policy) {
  for (const PlannedTensor &t : plan.tensors)
    if (is_expert(t.name) && (policy.cpu_moe || t.layer < policy.n_cpu_moe))
      CHECK_MESSAGE(t.location == Location::host, t.name);
}

// Every byte listed adds up, nothing exceeds the budget, and every block runs on one device.
void check_accounting(const Plan &plan, const OffloadPolicy &policy) {
  test::check_blocks(plan, policy.kv_placement == KvPlacement::follow_layer);
  check_cpu_moe(plan, policy);
  REQUIRE(plan.device_total_bytes() <= plan.budget_bytes);
  uint64_t weights = 0, kv = 0;
  for (const PlannedTensor &t : plan.tensors) {
    CHECK((t.location == Location::device) == (t.device_bytes > 0));
    weights += t.device_bytes;
  }
  for (const PlannedKvLayer &l : plan.kv) kv += l.device_bytes;
  CHECK(plan.device.weights == weights);
  CHECK(plan.device.kv == kv);
  CHECK(plan.predicted_tg_tok_s > 0);
  CHECK(plan.predicted_pp_tok_s > 0);
}

}  // namespace

TEST_CASE("random cases: device bytes never exceed the budget; errors name a budget that works") {
  std::mt19937_64 rng(20261125);
  int plans = 0, errors = 0;
  for (int i = 0; i < 3000; ++i) {
    Case c = random_case(rng);
    if (c.request.policy.strategy == OffloadStrategy::manual)
      c.request.policy.n_gpu_layers = std::uniform_int_distribution<int32_t>(-1, int32_t(c.model.n_layer) + 1)(rng);
    try {
      check_accounting(make_plan(c.model, c.request), c.request.policy);
      ++plans;
    } catch (const Error &e) {
      REQUIRE_MESSAGE(e.code() == ErrorCode::budget_exceeded, e.what());
      ++errors;
      const uint64_t works = smallest_budget_in(e.what());
      CHECK(works > c.request.policy.vram_budget_bytes);
      c.request.policy.vram_budget_bytes = works;
      const Plan plan = make_plan(c.model, c.request);  // exactly that budget works
      check_accounting(plan, c.request.policy);
      c.request.policy.vram_budget_bytes = works - 1;  // and one byte less does not
      CHECK_THROWS_AS(make_plan(c.model, c.request), Error);
    }
  }
  MESSAGE(plans << " plans, " << errors << " budget errors");
  CHECK(plans > 1000);
  CHECK(errors > 100);
}

TEST_CASE("layers: more budget never gives a slower plan or fewer device bytes") {
  std::mt19937_64 rng(7);
  int compared = 0;
  for (int i = 0; i < 1200; ++i) {  // in about half the cases even the larger budget holds nothing
    Case c = random_case(rng);
    c.request.policy.strategy = OffloadStrategy::layers;
    const uint64_t b1 = c.request.policy.vram_budget_bytes;
    const uint64_t b2 = b1 + log_uniform(rng, 1, 4.0 * double(b1));
    c.request.policy.vram_budget_bytes = b2;
    const std::optional<Plan> more = plan_if_possible(c);
    if (!more) {  // the larger budget fails: so must the smaller
      c.request.policy.vram_budget_bytes = b1;
      CHECK_THROWS_AS(make_plan(c.model, c.request), Error);
      continue;
    }
    c.request.policy.vram_budget_bytes = b1;
    try {
      const Plan less = make_plan(c.model, c.request);
      CHECK(objective(*more) <= objective(less) * (1 + 1e-12));
      CHECK(more->device_total_bytes() >= less.device_total_bytes());
      CHECK(more->n_device_layers >= less.n_device_layers);
      ++compared;
    } catch (const Error &e) {
      CHECK(e.code() == ErrorCode::budget_exceeded);
    }
  }
  CHECK(compared > 500);
}

TEST_CASE("fastest is never predicted slower than layers for the same budget") {
  std::mt19937_64 rng(11);
  int compared = 0;
  for (int i = 0; i < 1000; ++i) {
    Case c = random_case(rng);
    c.request.policy.strategy = OffloadStrategy::layers;
    const std::optional<Plan> layers = plan_if_possible(c);
    if (!layers) continue;
    c.request.policy.strategy = OffloadStrategy::fastest;
    const Plan fastest = make_plan(c.model, c.request);
    CHECK(objective(fastest) <= objective(*layers) * (1 + 1e-12));
    ++compared;
  }
  CHECK(compared > 400);
}

TEST_CASE("fastest: more budget never gives a slower plan") {
  std::mt19937_64 rng(99);
  int compared = 0;
  for (int i = 0; i < 1000; ++i) {
    Case c = random_case(rng);
    c.request.policy.strategy = OffloadStrategy::fastest;
    const uint64_t b1 = c.request.policy.vram_budget_bytes;
    const std::optional<Plan> less = plan_if_possible(c);
    if (!less) continue;
    c.request.policy.vram_budget_bytes = b1 + log_uniform(rng, 1, double(b1));
    const Plan more = make_plan(c.model, c.request);
    CHECK(objective(more) <= objective(*less) * (1 + 1e-12));
    ++compared;
  }
  CHECK(compared > 400);
}

// The first rule matching each tensor (-1: none), by the test's own regexes.
std::vector<int> first_rules(const Plan &plan, const std::vector<std::regex> &regexes) {
  std::vector<int> rule_of;
  for (const PlannedTensor &t : plan.tensors) {
    int first = -1;
    for (size_t r = 0; r < regexes.size() && first < 0; ++r)
      if (std::regex_search(t.name, regexes[r])) first = static_cast<int>(r);
    rule_of.push_back(first);
  }
  return rule_of;
}

// Block -> the sides the rules name for its tensors (bit 0: host, bit 1: device).
std::map<std::string, int> named_sides(const Plan &plan, const std::vector<int> &rule_of,
                                       const std::vector<OffloadRule> &rules) {
  const bool tied = !test::has_output_weight(plan);
  std::map<std::string, int> named;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const std::string block = test::block_of(plan.tensors[i].name, tied);
    if (!block.empty() && rule_of[i] >= 0) named[block] |= rules[static_cast<size_t>(rule_of[i])].to_device ? 2 : 1;
  }
  return named;
}

// A plan of the same case with every tensor on the host and no rules: its tensor list.
Plan tensor_list(Case c) {
  c.request.policy.rules.clear();
  c.request.policy.n_gpu_layers = 0;
  return make_plan(c.model, c.request);
}

TEST_CASE("manual rules and layer counts are honoured, block by block") {
  std::mt19937_64 rng(3);
  const std::vector<std::string> patterns = {"attn_q",     "ffn_(up|down)", "^blk\\.[0-3]\\.",     "output",
                                             "token_embd", "attn",          "blk\\.1[0-9]?\\.ffn", "norm",
                                             "exps",       "k\\.weight$",   "ffn_gate_inp",          "blk\\.[0-9]+\\.ffn_(gate|up|down)_exps"};
  int checked = 0, refused = 0;
  for (int i = 0; i < 1000; ++i) {
    Case c = random_case(rng);
    OffloadPolicy &policy = c.request.policy;
    policy.strategy = OffloadStrategy::manual;
    policy.vram_budget_bytes = 1ull << 50;  // honoured regardless; the budget is tested above
    policy.n_gpu_layers = std::uniform_int_distribution<int32_t>(-1, int32_t(c.model.n_layer) + 1)(rng);
    policy.rules.clear();
    std::vector<std::regex> regexes;
    for (int k = std::uniform_int_distribution<int>(0, 4)(rng); k > 0; --k) {
      const std::string &pattern = patterns[std::uniform_int_distribution<size_t>(0, patterns.size() - 1)(rng)];
      policy.rules.push_back({pattern, std::uniform_int_distribution<int>(0, 1)(rng) == 1});
      regexes.emplace_back(pattern);
    }
    const Plan all_host = tensor_list(c);
    const std::vector<int> rule_of = first_rules(all_host, regexes);
    const std::map<std::string, int> named = named_sides(all_host, rule_of, policy.rules);
    const bool split = std::any_of(named.begin(), named.end(), [](const auto &b) { return b.second == 3; });
    if (split) {  // rules that send one block to both sides are refused, naming the block
      CHECK_THROWS_WITH_AS(make_plan(c.model, c.request), doctest::Contains("override-tensor rules split"), Error);
      ++refused;
      continue;
    }
    const Plan plan = make_plan(c.model, c.request);
    check_accounting(plan, policy);
    const bool tied = !test::has_output_weight(plan);
    for (size_t k = 0; k < plan.tensors.size(); ++k) {
      const PlannedTensor &t = plan.tensors[k];
      const std::string block = test::block_of(t.name, tied);
      const bool forced_host = is_expert(t.name) && (policy.cpu_moe || t.layer < policy.n_cpu_moe);
      const auto by_rules = named.find(block);
      if (forced_host) {
        CHECK_MESSAGE(t.location == Location::host, t.name);
      } else if (rule_of[k] >= 0) {  // the rule that names it
        CHECK_MESSAGE((t.location == Location::device) == policy.rules[static_cast<size_t>(rule_of[k])].to_device,
                      t.name);
      } else if (!block.empty() && by_rules != named.end()) {  // with the named tensors of its block
        CHECK_MESSAGE((t.location == Location::device) == (by_rules->second == 2), t.name);
      } else if (block == "head") {
        CHECK_MESSAGE((t.location == Location::device) == (policy.n_gpu_layers > int32_t(plan.n_layer)), t.name);
      } else if (!block.empty()) {  // a layer's block no rule names: the layer count
        CHECK_MESSAGE((t.location == Location::device) == (t.layer < policy.n_gpu_layers), t.name);
      }
    }
    ++checked;
  }
  MESSAGE(checked << " plans checked, " << refused << " refused for splitting a block");
  CHECK(checked > 500);
  CHECK(refused > 50);
}
