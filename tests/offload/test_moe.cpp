// Mixture-of-experts planning: expert groups as their own block, charged what a token reads of
// them, placed after everything else; --cpu-moe / --n-cpu-moe; the real MoE headers.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <random>
#include <string>

#include "blocks.hpp"
#include "offload/layout.hpp"
#include "shapes.hpp"
#include "test_data.hpp"
#include "vramfit/gguf.hpp"

using namespace vramfit;

namespace {

PlanRequest moe_request(uint64_t budget, OffloadStrategy strategy) {
  PlanRequest r;
  r.n_ctx = 256;
  r.n_batch = 32;
  r.machine = test::round_machine();
  r.policy.vram_budget_bytes = budget;
  r.policy.strategy = strategy;
  return r;
}

bool is_expert(const std::string &name) { return name.find("_exps.") != std::string::npos; }

// Bytes of a plan's tensors on the device, by what they are.
struct DeviceBytes {
  uint64_t experts = 0, other = 0;  // weights
};

DeviceBytes device_bytes(const Plan &plan) {
  DeviceBytes b;
  for (const PlannedTensor &t : plan.tensors)
    if (t.location == Location::device) (is_expert(t.name) ? b.experts : b.other) += t.bytes;
  return b;
}

}  // namespace

TEST_CASE("classify: the router, the experts and the q/k norms and biases each find their block") {
  using offload::Role;
  CHECK(offload::classify("blk.7.ffn_gate_inp.weight").role == Role::ffn);
  CHECK(offload::classify("blk.7.ffn_gate.weight").role == Role::ffn);
  CHECK(offload::classify("blk.7.ffn_norm.weight").role == Role::ffn);
  for (const char *name : {"blk.7.ffn_gate_exps.weight", "blk.7.ffn_up_exps.weight", "blk.7.ffn_down_exps.weight",
                           "blk.7.ffn_gate_exps.bias"})
    CHECK_MESSAGE(offload::classify(name).role == Role::experts, name);
  for (const char *name : {"blk.7.attn_q.bias", "blk.7.attn_k.bias", "blk.7.attn_v.bias", "blk.7.attn_q_norm.weight",
                           "blk.7.attn_k_norm.weight", "blk.7.attn_norm.weight"})
    CHECK_MESSAGE(offload::classify(name).role == Role::attention, name);
  CHECK(offload::classify("blk.7.ffn_gate_inp.weight").order < offload::classify("blk.7.ffn_gate_exps.weight").order);
  CHECK(offload::classify("blk.7.ffn_gate_exps.weight").layer == 7);
  // gpt-oss: the FFN input norm and the router bias go with the router, the experts' biases with
  // the experts, the sinks with the attention.
  CHECK(offload::classify("blk.7.post_attention_norm.weight").role == Role::ffn);
  CHECK(offload::classify("blk.7.ffn_gate_inp.bias").role == Role::ffn);
  for (const char *name : {"blk.7.ffn_up_exps.bias", "blk.7.ffn_down_exps.bias"})
    CHECK_MESSAGE(offload::classify(name).role == Role::experts, name);
  CHECK(offload::classify("blk.7.attn_sinks.weight").role == Role::attention);
  CHECK(offload::classify("blk.7.attn_output.bias").role == Role::attention);
}

TEST_CASE("expert counts that make no sense are clear errors") {
  PlanRequest r = moe_request(1ull << 40, OffloadStrategy::fastest);
  ModelShape m = test::moe_shape({});
  m.n_expert_used = 9;  // of 8
  CHECK_THROWS_WITH_AS(make_plan(m, r), doctest::Contains("expert_used_count 9 must be between 1 and expert_count 8"),
                       Error);
  m.n_expert_used = 0;
  CHECK_THROWS_AS(make_plan(m, r), Error);
  m = test::moe_shape({});
  m.n_expert = 0, m.n_expert_used = 0;  // expert tensors in a "dense" model
  CHECK_THROWS_WITH_AS(make_plan(m, r), doctest::Contains("is an expert tensor but n_expert is 0"), Error);
  m = test::moe_shape({});
  r.policy.n_cpu_moe = -1;
  CHECK_THROWS_WITH_AS(make_plan(m, r), doctest::Contains("n_cpu_moe"), Error);
}

TEST_CASE("generation reads k/N of an expert group; a prompt batch the experts it touches") {
  // One F32 layer, 8 experts, 2 used, all on the host (-ngl 0), bandwidth-bound at 1 GB/s.
  const test::MoeDims d;  // n_embd 256, 4 heads x 64 / 2 KV heads, n_ff_exp 256, vocab 512, q/k norms
  const ModelShape m = test::moe_shape(d);
  PlanRequest r = moe_request(1, OffloadStrategy::manual);
  r.policy.n_gpu_layers = 0;
  const Plan plan = make_plan(m, r);
  // Per layer: attn_norm 1 KiB, q 256 KiB, k,v 128 KiB each, q/k norms 256 B each, output 256 KiB,
  // ffn_norm 1 KiB, router 8 KiB; experts 3 * 256*256*8*4 = 6 MiB, of which a token reads 2/8.
  const double dense_layer = 1024 + 262144 + 2 * 131072 + 512 + 262144 + 1024 + 8192;
  const double experts = 3.0 * 256 * 256 * 8 * 4;
  const double head = 1024 + 512 * 256 * 4;  // output_norm + output
  const double embd_row = 1024, kv = 128 * 2 * 128 * 2;  // KV: 128 positions (half of 256) of K and V, f16
  const double token = d.n_layer * (dense_layer + experts / 4 + kv) + head + embd_row;
  CHECK(plan.bytes_read_per_token.host == doctest::Approx(token).epsilon(1e-9));
  CHECK(plan.bytes_read_per_token.device == 0);
  CHECK(plan.predicted_tg_tok_s == doctest::Approx(1e9 / token));
  // A batch of 32 tokens touches 1 - (6/8)^32 of the experts (nearly all of them).
  const double touched = 1 - std::pow(0.75, 32);
  const double batch = d.n_layer * (dense_layer + touched * experts + kv) + head;
  CHECK(plan.predicted_pp_tok_s == doctest::Approx(1e9 / (batch / 32 + embd_row)));
  const WeightCounts counts = count_weights(m);
  CHECK(counts.expert_bytes == uint64_t(d.n_layer * experts));
  CHECK(counts.active_bytes == doctest::Approx(token - d.n_layer * kv));
}

TEST_CASE("fastest puts attention, KV, router, norms and the head on the device before any expert") {
  test::MoeDims d;
  d.n_layer = 6;
  d.n_expert = 16, d.n_expert_used = 2;
  const ModelShape m = test::moe_shape(d, GgmlType::Q4_K);
  PlanRequest r = moe_request(1ull << 40, OffloadStrategy::manual);
  r.policy.cpu_moe = true;
  r.policy.n_gpu_layers = 7;  // everything but the experts (and token_embd)
  const Plan all_but_experts = make_plan(m, r);
  CHECK(device_bytes(all_but_experts).experts == 0);
  r.policy.cpu_moe = false;
  r.policy.n_gpu_layers = -1;
  r.policy.strategy = OffloadStrategy::fastest;
  for (uint64_t extra : {0ull, 100000ull, 3000000ull}) {
    r.policy.vram_budget_bytes = all_but_experts.device_total_bytes() + extra;
    const Plan plan = make_plan(m, r);
    CAPTURE(extra);
    CHECK(plan.chosen_by.starts_with("greedy"));
    for (const PlannedTensor &t : all_but_experts.tensors)
      if (t.location == Location::device) CHECK_MESSAGE(plan.location_of(t.name) == Location::device, t.name);
    CHECK(plan.device.kv == all_but_experts.device.kv);
    CHECK((plan.n_device_expert_groups > 0) == (extra >= 3000000));  // an expert group is 1.7 MB here
    test::check_blocks(plan, true);
    r.policy.strategy = OffloadStrategy::layers;
    CHECK(plan.predicted_tg_tok_s > make_plan(m, r).predicted_tg_tok_s);
    r.policy.strategy = OffloadStrategy::fastest;
  }
}

TEST_CASE("--cpu-moe and --n-cpu-moe keep their expert groups on the host in every strategy") {
  test::MoeDims d;
  d.n_layer = 4;
  const ModelShape m = test::moe_shape(d);
  for (auto strategy : {OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual}) {
    PlanRequest r = moe_request(1ull << 40, strategy);
    r.policy.n_gpu_layers = strategy == OffloadStrategy::fastest ? -1 : 5;
    if (strategy == OffloadStrategy::manual) r.policy.rules = {{"exps", true}};  // the flags win over rules
    r.policy.n_cpu_moe = 3;
    Plan plan = make_plan(m, r);
    CAPTURE(to_string(strategy));
    for (const PlannedTensor &t : plan.tensors)
      if (is_expert(t.name)) CHECK_MESSAGE((t.location == Location::host) == (t.layer < 3), t.name);
    CHECK(plan.n_device_expert_groups == 1);
    CHECK(plan.n_expert_groups == 4);
    CHECK(plan.location_of("blk.0.ffn_gate_inp.weight") == Location::device);  // only the experts stay
    r.policy.cpu_moe = true;
    plan = make_plan(m, r);
    CHECK(plan.n_device_expert_groups == 0);
    CHECK(plan.location_of("blk.3.attn_q.weight") == Location::device);
    CHECK(plan.bytes_read_per_token.host > 0);
    test::check_blocks(plan, true);
  }
}

TEST_CASE("manual: ffn_norm follows the router it feeds; -ot works on the expert names") {
  const ModelShape m = test::moe_shape({});
  PlanRequest r = moe_request(1ull << 40, OffloadStrategy::manual);
  r.policy.rules = {{"ffn_gate_inp", true}, {"blk\\.1\\.ffn_.*_exps", true}};
  const Plan plan = make_plan(m, r);
  CHECK(plan.location_of("blk.0.ffn_norm.weight") == Location::device);
  CHECK(plan.location_of("blk.0.ffn_gate_exps.weight") == Location::host);
  CHECK(plan.location_of("blk.1.ffn_down_exps.weight") == Location::device);
  CHECK(plan.location_of("blk.1.attn_q_norm.weight") == Location::host);
  r.policy.rules = {{"ffn_gate", true}};  // ffn_gate_inp and ffn_gate_exps: router and experts, whole
  const Plan gate = make_plan(m, r);
  CHECK(gate.location_of("blk.0.ffn_up_exps.weight") == Location::device);
  CHECK(gate.location_of("blk.0.ffn_norm.weight") == Location::device);
  r.policy.rules = {{"ffn_up_exps", true}, {"exps", false}};
  CHECK_THROWS_WITH_AS(make_plan(m, r), doctest::Contains("rules split 'blk.0 experts'"), Error);
}

TEST_CASE("the table shows expert groups and bytes per token; the JSON says the same") {
  const ModelShape m = test::moe_shape({});
  PlanRequest r = moe_request(1ull << 40, OffloadStrategy::manual);
  r.policy.n_gpu_layers = 3;
  r.policy.n_cpu_moe = 1;
  const Plan plan = make_plan(m, r);
  const std::string table = plan.to_table();
  CHECK(table.find("experts") != std::string::npos);
  CHECK(table.find("expert groups on the gpu: 1 of 2") != std::string::npos);
  CHECK(table.find("bytes read per generated token: gpu") != std::string::npos);
  CHECK(table.find("blk.0        gpu        gpu        cpu        gpu") != std::string::npos);
  const std::string json = plan.to_json();
  CHECK(json.find(fmt::format("\"bytes_read_per_token\": {{\"device\": {}, \"host\": {}}}",
                              plan.bytes_read_per_token.device, plan.bytes_read_per_token.host)) != std::string::npos);
  CHECK(json.find("\"expert_groups\": {\"device\": 1, \"total\": 2}") != std::string::npos);
  CHECK(json.find("{\"layer\": 0, \"attention\": \"gpu\", \"ffn\": \"gpu\", \"experts\": \"cpu\", \"kv\": \"gpu\"}") !=
        std::string::npos);
  const Plan dense = make_plan(test::llama_shape({}), r);
  CHECK(dense.to_json().find("\"experts\": null") != std::string::npos);
}

// ---------------------------------------------------------------- the real MoE headers

namespace {

constexpr const char *kMoeHeaders[] = {"qwen3-30b-a3b-Q4_K_M.gguf", "qwen3-235b-a22b-Q2_K.gguf",
                                       "mixtral-8x7b-Q4_K_M.gguf"};
constexpr const char *kHeaders[] = {"qwen3-30b-a3b-Q4_K_M.gguf", "qwen3-235b-a22b-Q2_K.gguf",
                                    "mixtral-8x7b-Q4_K_M.gguf", "qwen2.5-72b-Q4_K_M.gguf"};

std::optional<ModelShape> header_shape(const char *name) {
  auto path = test::test_data(std::string("models/header-only/") + name);
  if (!path) return std::nullopt;
  return ModelShape::from_gguf(gguf::File::open(*path));
}

PlanRequest header_request(uint64_t budget, OffloadStrategy strategy) {
  PlanRequest r;  // the default machine (an RTX 3060-class card on PCIe 4.0), but the budget decides
  r.machine.device_memory_bytes = 0;
  r.n_ctx = 4096;
  r.n_batch = 512;
  r.policy.vram_budget_bytes = budget;
  r.policy.strategy = strategy;
  return r;
}

// Everything but the experts (and the embedding table, which a token reads one row of and which
// stays on the host as in llama.cpp) on the device: nullopt when that does not fit the budget.
std::optional<Plan> all_but_experts(const ModelShape &m, uint64_t budget) {
  PlanRequest r = header_request(budget, OffloadStrategy::manual);
  r.policy.cpu_moe = true;
  r.policy.n_gpu_layers = static_cast<int32_t>(m.n_layer) + 1;
  try {
    return make_plan(m, r);
  } catch (const Error &) {
    return std::nullopt;
  }
}

std::string what_is_on_device(const Plan &plan) {
  const DeviceBytes b = device_bytes(plan);
  return fmt::format("weights {:.2f} GiB (non-expert {:.2f}, experts {:.2f}: {} of {} groups), KV {:.2f} GiB, "
                     "scratch+staging+overhead {:.2f} GiB; tg {:.2f} tok/s, pp {:.1f} tok/s; {}",
                     plan.device.weights / 1073741824.0, b.other / 1073741824.0, b.experts / 1073741824.0,
                     plan.n_device_expert_groups, plan.n_expert_groups, plan.device.kv / 1073741824.0,
                     (plan.device.scratch + plan.device.staging + plan.device.overhead) / 1073741824.0,
                     plan.predicted_tg_tok_s, plan.predicted_pp_tok_s, plan.chosen_by);
}

}  // namespace

TEST_CASE("MoE headers: shapes read from the files") {
  const auto q30 = header_shape("qwen3-30b-a3b-Q4_K_M.gguf");
  if (!q30) return;
  CHECK(q30->n_layer == 48);
  CHECK(q30->n_expert == 128);
  CHECK(q30->n_expert_used == 8);
  CHECK(q30->n_ff_exp == 768);
  CHECK(q30->head_dim == 128);
  const auto mixtral = header_shape("mixtral-8x7b-Q4_K_M.gguf");
  REQUIRE(mixtral);
  CHECK(mixtral->architecture == "llama");
  CHECK(mixtral->n_expert == 8);
  CHECK(mixtral->n_expert_used == 2);
  CHECK(mixtral->n_ff_exp == 14336);  // no expert_feed_forward_length: feed_forward_length
  const auto q72 = header_shape("qwen2.5-72b-Q4_K_M.gguf");
  REQUIRE(q72);
  CHECK(q72->n_expert == 0);
  CHECK(!q72->is_moe());
  // Active parameters: Qwen3-30B-A3B runs about 3.3B of its 30.5B per token.
  const WeightCounts c = count_weights(*q30);
  CHECK(c.params == doctest::Approx(30.5e9).epsilon(0.01));
  CHECK(c.active_params == doctest::Approx(3.0e9).epsilon(0.05));  // token_embd: one row
}

TEST_CASE("MoE headers at 8 and 12 GiB, 4096 context: non-expert weights and KV first; fastest beats layers") {
  for (const char *name : kHeaders) {
    const auto m = header_shape(name);
    if (!m) return;
    for (uint64_t gib : {8ull, 12ull}) {
      const uint64_t budget = gib << 30;
      CAPTURE(std::string(name));
      CAPTURE(gib);
      const auto start = std::chrono::steady_clock::now();
      const Plan fastest = make_plan(*m, header_request(budget, OffloadStrategy::fastest));
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      const Plan layers = make_plan(*m, header_request(budget, OffloadStrategy::layers));
      MESSAGE(std::string(name) << " " << gib << " GiB fastest: " << what_is_on_device(fastest) << " [planned in " << ms << " ms]");
      MESSAGE(std::string(name) << " " << gib << " GiB layers:  " << what_is_on_device(layers));
      for (const Plan *p : {&fastest, &layers}) {
        CHECK(p->device_total_bytes() <= budget);
        test::check_blocks(*p, true);
      }
      CHECK(ms < 1000);
      if (const auto base = all_but_experts(*m, budget)) {  // they fit: fastest has them all
        // (and token_embd too when an expert group no longer fits in what is left)
        CHECK(device_bytes(fastest).other >= device_bytes(*base).other);
        CHECK(fastest.device.kv == base->device.kv);
        for (const PlannedTensor &t : base->tensors)
          if (t.location == Location::device) CHECK_MESSAGE(fastest.location_of(t.name) == Location::device, t.name);
      } else {
        CHECK(!m->is_moe());  // every MoE header's non-expert part fits 8 GiB
      }
      if (m->is_moe() && gib == 12) CHECK(fastest.predicted_tg_tok_s > layers.predicted_tg_tok_s);
      CHECK(fastest.predicted_tg_tok_s >= layers.predicted_tg_tok_s * (1 - 1e-9));
    }
  }
}

TEST_CASE("MoE headers: --cpu-moe and --n-cpu-moe") {
  for (const char *name : kMoeHeaders) {
    const auto m = header_shape(name);
    if (!m) return;
    CAPTURE(std::string(name));
    PlanRequest r = header_request(12ull << 30, OffloadStrategy::fastest);
    r.policy.cpu_moe = true;
    const Plan none = make_plan(*m, r);
    CHECK(none.n_device_expert_groups == 0);
    CHECK(device_bytes(none).experts == 0);
    r.policy.cpu_moe = false;
    r.policy.n_cpu_moe = static_cast<int32_t>(m->n_layer) - 2;  // the last two layers' experts may go
    r.policy.strategy = OffloadStrategy::layers;
    r.policy.n_gpu_layers = static_cast<int32_t>(m->n_layer) + 1;
    r.policy.vram_budget_bytes = 200ull << 30;
    const Plan last_two = make_plan(*m, r);
    CHECK(last_two.n_device_expert_groups == 2);
    for (const PlannedTensor &t : last_two.tensors)
      if (is_expert(t.name))
        CHECK_MESSAGE((t.location == Location::device) == (t.layer >= int32_t(m->n_layer) - 2), t.name);
    test::check_blocks(last_two, true);
  }
}

TEST_CASE("MoE and dense headers: random budgets and policies never exceed the budget, never split a block") {
  std::mt19937_64 rng(2026);
  int plans = 0, errors = 0;
  for (const char *name : kHeaders) {
    const auto m = header_shape(name);
    if (!m) return;
    for (int i = 0; i < 40; ++i) {
      PlanRequest r = header_request(0, OffloadStrategy::fastest);
      r.policy.vram_budget_bytes = static_cast<uint64_t>(
          std::exp(std::uniform_real_distribution<double>(std::log(256e6), std::log(120e9))(rng)));
      r.policy.strategy = std::vector{OffloadStrategy::fastest, OffloadStrategy::layers,
                                      OffloadStrategy::manual}[std::uniform_int_distribution<int>(0, 2)(rng)];
      r.policy.n_gpu_layers = std::uniform_int_distribution<int32_t>(-1, int32_t(m->n_layer) + 1)(rng);
      if (r.policy.strategy == OffloadStrategy::layers && i % 2 == 0) r.policy.n_gpu_layers = -1;
      r.policy.cpu_moe = std::uniform_int_distribution<int>(0, 4)(rng) == 0;
      r.policy.n_cpu_moe = std::uniform_int_distribution<int32_t>(0, int32_t(m->n_layer))(rng) / 2;
      r.n_ctx = std::uniform_int_distribution<uint32_t>(256, 32768)(rng);
      r.kv_type = std::vector{KvType::f16, KvType::q8_0, KvType::f32}[std::uniform_int_distribution<int>(0, 2)(rng)];
      CAPTURE(std::string(name));
      CAPTURE(r.policy.vram_budget_bytes);
      try {
        const Plan plan = make_plan(*m, r);
        CHECK(plan.device_total_bytes() <= r.policy.vram_budget_bytes);
        test::check_blocks(plan, true);
        for (const PlannedTensor &t : plan.tensors)
          if (is_expert(t.name) && (r.policy.cpu_moe || t.layer < r.policy.n_cpu_moe))
            CHECK(t.location == Location::host);
        ++plans;
      } catch (const Error &e) {
        CHECK_MESSAGE(e.code() == ErrorCode::budget_exceeded, e.what());
        ++errors;
        const std::string message = e.what();  // "...the smallest budget that works is N bytes": it does
        const size_t at = message.find("smallest budget that works is ");
        REQUIRE(at != std::string::npos);
        r.policy.vram_budget_bytes = std::stoull(message.substr(at + 30));
        CHECK(make_plan(*m, r).device_total_bytes() <= r.policy.vram_budget_bytes);
      }
    }
  }
  MESSAGE(plans << " plans, " << errors << " budget errors");
}

TEST_CASE("the synthetic qwen2, qwen3, qwen3moe, Mixtral and gpt-oss files: shapes, every tensor planned, blocks whole") {
  struct Expect {
    const char *file;
    uint32_t n_expert, n_expert_used, n_ff_exp, head_dim;
  };
  for (const Expect &e : {Expect{"synth-qwen3moe-Q4_K_M.gguf", 8, 3, 256, 64}, Expect{"synth-mixtral-Q2_K.gguf", 8, 2, 256, 64},
                          Expect{"synth-gptoss-MXFP4_MOE.gguf", 4, 2, 256, 64},
                          Expect{"synth-qwen2-Q4_K_M.gguf", 0, 0, 256, 64}, Expect{"synth-qwen3-F32.gguf", 0, 0, 256, 128}}) {
    auto path = test::test_data(std::string("models/") + e.file);
    if (!path) return;
    CAPTURE(std::string(e.file));
    const gguf::File file = gguf::File::open(*path);
    const ModelShape m = ModelShape::from_gguf(file);
    CHECK(m.n_expert == e.n_expert);
    CHECK(m.n_expert_used == e.n_expert_used);
    CHECK(m.n_ff_exp == e.n_ff_exp);  // a dense model: n_ff (qwen3moe's feed_forward_length 768 is unused)
    CHECK(m.head_dim == e.head_dim);
    for (auto strategy : {OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual}) {
      PlanRequest r = moe_request(1ull << 30, strategy);
      r.policy.n_gpu_layers = 1;
      r.policy.n_cpu_moe = 1;
      const Plan plan = make_plan(m, r);
      REQUIRE(plan.tensors.size() == file.tensors().size());
      test::check_blocks(plan, true);
      CHECK(plan.n_expert_groups == (m.is_moe() ? 2u : 0u));
      CHECK(plan.device.weights + plan.host.weights >= file.tensor_data_bytes());
    }
  }
}

TEST_CASE("gpt-oss-120b MXFP4 at 12 and 8 GiB, 8192 context: everything but the experts and KV on the device") {
  const auto m = header_shape("gpt-oss-120b-MXFP4.gguf");
  if (!m) return;
  CHECK(m->architecture == "gpt-oss");
  CHECK(m->n_layer == 36);
  CHECK(m->n_expert == 128);
  CHECK(m->n_expert_used == 4);
  CHECK(m->n_swa == 128);
  CHECK(m->attention_window(0) == 128);
  CHECK(m->attention_window(1) == 0);
  for (uint64_t gib : {12ull, 8ull}) {
    CAPTURE(gib);
    const uint64_t budget = gib << 30;
    PlanRequest r = header_request(budget, OffloadStrategy::fastest);
    r.n_ctx = 8192;
    const Plan fastest = make_plan(*m, r);
    r.policy.strategy = OffloadStrategy::layers;
    const Plan layers = make_plan(*m, r);
    MESSAGE("gpt-oss-120b " << gib << " GiB fastest: " << what_is_on_device(fastest));
    MESSAGE("gpt-oss-120b " << gib << " GiB layers:  " << what_is_on_device(layers));
    for (const Plan *p : {&fastest, &layers}) {
      CHECK(p->device_total_bytes() <= budget);
      test::check_blocks(*p, true);
    }
    // Every non-expert tensor but the embedding table (one row per token) and every KV cache.
    for (const PlannedTensor &t : fastest.tensors)
      if (!is_expert(t.name) && t.name != "token_embd.weight")
        CHECK_MESSAGE(fastest.location_of(t.name) == Location::device, t.name);
    for (const PlannedKvLayer &kv : fastest.kv) CHECK(kv.location == Location::device);
    // The windowed layers' caches hold 128 - 1 + 512 positions, the others 8192 (f16, 8 KV heads of 64).
    REQUIRE(fastest.kv.size() == 36);
    CHECK(fastest.kv[0].k_bytes == (128 - 1 + 512) * 8 * 64 * 2);
    CHECK(fastest.kv[1].k_bytes == 8192 * 8 * 64 * 2);
    CHECK(fastest.predicted_tg_tok_s > layers.predicted_tg_tok_s);
  }
}
