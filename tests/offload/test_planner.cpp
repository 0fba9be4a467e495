// The planner on hand-computed cases: one layer, one tensor type.
#include <doctest/doctest.h>

#include "shapes.hpp"

using namespace vramfit;

namespace {

// One F32 layer: n_embd 64, 4 heads of 16 (no GQA), n_ff 128, vocab 100; n_ctx 256, n_batch 32.
//   device weights (-ngl 2: the layer and the output head; token_embd stays on the host):
//     attn_norm 256 + q,k,v,o 4*16384 + ffn_norm 256 + gate,up,down 3*32768 + output_norm 256
//     + output 25600 = 190208 (each already a multiple of 256)
//   KV f16: K = V = 256 positions * 64 * 2 = 32768 each -> 65536
//   scratch with the logits: 32 * (640 + 100) * 4 = 94720;  no device staging: the residual is
//   uploaded straight into the activations (q, k, v cross through 32 * 192 * 4 = 24576 bytes of host
//   staging); no prompt streaming: its slots do not fit the budget
//   overhead 1000 (round_machine)           => device total 351464
//   host: token_embd 25600 + scratch without logits 32*640*4 = 81920 + staging 24576 = 132096
constexpr uint64_t kDeviceTotal = 351464;

PlanRequest one_layer_request(uint64_t budget, int32_t ngl) {
  PlanRequest r;
  r.n_ctx = 256;
  r.n_batch = 32;
  r.kv_type = KvType::f16;
  r.machine = test::round_machine();
  r.policy.vram_budget_bytes = budget;
  r.policy.strategy = OffloadStrategy::manual;
  r.policy.n_gpu_layers = ngl;
  return r;
}

}  // namespace

TEST_CASE("exact bytes for one layer on the device") {
  const ModelShape m = test::llama_shape({});
  const Plan plan = make_plan(m, one_layer_request(kDeviceTotal, 2));
  CHECK(plan.device.weights == 190208);
  CHECK(plan.device.kv == 65536);
  CHECK(plan.device.scratch == 94720);
  CHECK(plan.device.staging == 0);
  CHECK_FALSE(plan.streaming.enabled);
  CHECK(plan.device.overhead == 1000);
  CHECK(plan.device_total_bytes() == kDeviceTotal);
  CHECK(plan.host.weights == 25600);
  CHECK(plan.host.kv == 0);
  CHECK(plan.host.scratch == 81920);
  CHECK(plan.host.staging == 24576);
  CHECK(plan.host_total_bytes() == 132096);
  CHECK(plan.n_device_layers == 1);
  CHECK(plan.location_of("token_embd.weight") == Location::host);
  CHECK(plan.location_of("output.weight") == Location::device);
  CHECK(plan.kv[0].k_bytes == 32768);
  CHECK(plan.kv[0].device_bytes == 65536);
}

TEST_CASE("one byte less than the plan needs is a budget error naming the exact need") {
  const ModelShape m = test::llama_shape({});
  CHECK_THROWS_WITH_AS(make_plan(m, one_layer_request(kDeviceTotal - 1, 2)),
                       doctest::Contains("the smallest budget that works is 351464 bytes"), Error);
  try {
    make_plan(m, one_layer_request(kDeviceTotal - 1, 2));
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::budget_exceeded);
  }
}

TEST_CASE("exact predicted generation speed on the host alone") {
  // -ngl 0: nothing on the device, no overhead. Bandwidth bound at 1 GB/s, one token reads:
  //   token_embd row 256 + norms 3*256 + q,k,v,o 65536 + gate,up,down 98304 + output 25600
  //   + KV half full: 128 positions * (K + V) 2 * 128 bytes = 32768          => 223232 bytes
  const Plan plan = make_plan(test::llama_shape({}), one_layer_request(1, 0));
  CHECK(plan.device_total_bytes() == 0);
  CHECK(plan.predicted_tg_tok_s == doctest::Approx(1e9 / 223232.0));
  // A batch of 32 reads the weights once and one embedding row per token:
  //   (223232 - 256 - 32768) / 32 + 256 + KV 32768 / 32  per token
  CHECK(plan.predicted_pp_tok_s == doctest::Approx(1e9 / ((223232.0 - 256 - 32768) / 32 + 256 + 32768.0 / 32)));
}

TEST_CASE("exact predicted generation speed with everything but token_embd on the device") {
  // Device reads at 10 GB/s: 223232 - 256 bytes; host reads the embedding row (256 B at 1 GB/s);
  // crossings at 1 GB/s, no latency: the hidden state up (64 floats) and the logits down (100).
  const Plan plan = make_plan(test::llama_shape({}), one_layer_request(kDeviceTotal, 2));
  const double seconds = (223232.0 - 256) / 1e10 + 256 / 1e9 + (64 + 100) * 4 / 1e9;
  CHECK(plan.predicted_tg_tok_s == doctest::Approx(1 / seconds));
}

TEST_CASE("layers: whole layers front to back, then the output head") {
  test::LlamaDims d;
  d.n_layer = 4;
  d.n_embd = 256, d.n_head = 4, d.n_head_kv = 4, d.n_ff = 512;
  const ModelShape m = test::llama_shape(d);
  PlanRequest r = one_layer_request(0, -1);
  r.policy.strategy = OffloadStrategy::layers;
  r.policy.vram_budget_bytes = 1ull << 40;
  const Plan all = make_plan(m, r);
  CHECK(all.n_device_layers == 4);
  CHECK(all.location_of("output.weight") == Location::device);
  CHECK(all.location_of("token_embd.weight") == Location::host);  // as llama.cpp: input stays on the host
  // Shrink the budget until only two layers fit: those must be blk.0 and blk.1.
  r.policy.n_gpu_layers = 2;
  const uint64_t two_layers = make_plan(m, r).device_total_bytes();
  r.policy.n_gpu_layers = -1;
  r.policy.vram_budget_bytes = two_layers;
  const Plan two = make_plan(m, r);
  CHECK(two.n_device_layers == 2);
  CHECK(two.location_of("blk.1.ffn_down.weight") == Location::device);
  CHECK(two.location_of("blk.2.attn_q.weight") == Location::host);
  CHECK(two.device_total_bytes() == two_layers);
}

TEST_CASE("manual rules: first match wins, a rule places its tensor's whole block, KV follows attention") {
  const ModelShape m = test::llama_shape({.n_layer = 2});
  PlanRequest r = one_layer_request(1ull << 40, 2);  // all layers by count...
  // ...but the executor runs a layer's ffn on one device: rules that split it are refused.
  r.policy.rules = {{"ffn_(up|down)", false}, {"ffn_", true}};
  CHECK_THROWS_WITH_AS(make_plan(m, r), doctest::Contains("rules split 'blk.0 ffn'"), Error);
  r.policy.rules = {{"ffn_(up|down)", false}, {"blk\\.1\\.attn", false}};
  const Plan plan = make_plan(m, r);
  CHECK(plan.location_of("blk.0.ffn_up.weight") == Location::host);
  CHECK(plan.location_of("blk.0.ffn_down.weight") == Location::host);
  CHECK(plan.location_of("blk.0.ffn_gate.weight") == Location::host);  // no rule: with its block
  CHECK(plan.location_of("blk.0.ffn_norm.weight") == Location::host);
  CHECK(plan.location_of("blk.1.attn_norm.weight") == Location::host);  // rule 2 names it
  CHECK(plan.location_of("blk.0.attn_q.weight") == Location::device);   // by count
  CHECK(plan.kv[0].location == Location::device);
  CHECK(plan.kv[1].location == Location::host);
  CHECK(plan.n_device_layers == 0);

  r.policy.n_gpu_layers = -1;  // rules only: unnamed tensors stay on the host, norms follow
  r.policy.rules = {{"attn_(q|k|v|output)", true}};
  const Plan attention_only = make_plan(m, r);
  CHECK(attention_only.location_of("blk.1.attn_norm.weight") == Location::device);  // feeds attn_q
  CHECK(attention_only.location_of("blk.1.ffn_norm.weight") == Location::host);
  CHECK(attention_only.kv[1].location == Location::device);
  CHECK(attention_only.location_of("output.weight") == Location::host);
}

TEST_CASE("a bad regex is a clear invalid_argument") {
  PlanRequest r = one_layer_request(1ull << 40, -1);
  r.policy.rules = {{"blk\\.(", true}};
  CHECK_THROWS_WITH_AS(make_plan(test::llama_shape({}), r), doctest::Contains("blk\\.("), Error);
}

TEST_CASE("KV forced to the host or the device") {
  const ModelShape m = test::llama_shape({.n_layer = 3});
  PlanRequest r = one_layer_request(1ull << 40, 4);
  r.policy.kv_placement = KvPlacement::host;
  const Plan host_kv = make_plan(m, r);
  CHECK(host_kv.device.kv == 0);
  CHECK(host_kv.host.kv == 3 * 65536);
  CHECK(host_kv.n_device_layers == 0);  // a layer counts as on the device only with its KV
  r.policy.kv_placement = KvPlacement::device;
  r.policy.n_gpu_layers = 0;
  const Plan device_kv = make_plan(m, r);
  CHECK(device_kv.device.kv == 3 * 65536);
  CHECK(device_kv.device.weights == 0);
  CHECK(device_kv.device.scratch > 0);  // the attention runs there
}

TEST_CASE("min_ctx: the context shrinks to fit, and the plan says so") {
  test::LlamaDims d;
  d.n_layer = 2;
  const ModelShape m = test::llama_shape(d);
  PlanRequest r = one_layer_request(0, 3);
  r.n_ctx = 4096;
  r.policy.min_ctx = 512;
  r.policy.kv_placement = KvPlacement::device;
  r.policy.vram_budget_bytes = make_plan(m,
                                         [&] {
                                           PlanRequest s = r;
                                           s.n_ctx = 1024;
                                           s.policy.vram_budget_bytes = 1ull << 40;
                                           s.policy.min_ctx = 0;
                                           return s;
                                         }())
                                   .device_total_bytes();
  const Plan plan = make_plan(m, r);
  CHECK(plan.n_ctx == 1024);
  REQUIRE(!plan.notes.empty());
  CHECK(plan.notes.back().find("context shrunk from 4096 to 1024") != std::string::npos);
  r.policy.min_ctx = 2048;  // not enough room even for the minimum
  CHECK_THROWS_AS(make_plan(m, r), Error);
}

TEST_CASE("fastest on a tight budget prefers generation-critical groups and beats or ties layers") {
  test::LlamaDims d;
  d.n_layer = 8;
  d.n_embd = 512, d.n_head = 8, d.n_head_kv = 8, d.n_ff = 1536, d.n_vocab = 2000;
  const ModelShape m = test::llama_shape(d, GgmlType::Q4_K);
  PlanRequest r = one_layer_request(0, -1);
  r.machine = MachineProfile{};
  r.machine.device_memory_bytes = 0;
  r.machine.device_fixed_overhead_bytes = 1 << 20;
  r.n_ctx = 2048;
  for (uint64_t budget : {20ull << 20, 24ull << 20, 28ull << 20, 40ull << 20}) {
    r.policy.vram_budget_bytes = budget;
    r.policy.strategy = OffloadStrategy::layers;
    const Plan layers = make_plan(m, r);
    r.policy.strategy = OffloadStrategy::fastest;
    const Plan fastest = make_plan(m, r);
    CHECK(fastest.device_total_bytes() <= budget);
    CHECK(1 / fastest.predicted_tg_tok_s + 1 / fastest.predicted_pp_tok_s <=
          doctest::Approx(1 / layers.predicted_tg_tok_s + 1 / layers.predicted_pp_tok_s));
  }
}

// In generation a byte saves the same wherever it is (every weight is bandwidth-bound); prompt
// processing is compute-bound, so lower-bit types save more per byte. With room for all the
// attention matrices or two layers' ffn, but not one whole layer, fastest must pick by that.
TEST_CASE("fastest moves the groups that save the most time per byte: attention or ffn") {
  test::LlamaDims d;
  d.n_layer = 8;
  d.n_embd = 512, d.n_head = 8, d.n_head_kv = 8, d.n_ff = 1536, d.n_vocab = 512;
  PlanRequest r = one_layer_request(1ull << 40, -1);
  r.machine = MachineProfile{};
  r.machine.device_memory_bytes = 0;
  r.machine.device_fixed_overhead_bytes = 1 << 20;
  r.machine.transfer_latency_s = 0;  // else, at this small size, a split costs more than it saves
  r.n_ctx = 32;                      // a KV cache is read half per token: a big one would dilute attention's savings
  for (bool attention_cheaper : {true, false}) {
    CAPTURE(attention_cheaper);
    const GgmlType low = GgmlType::Q4_K, high = GgmlType::F16;
    const ModelShape m = test::llama_shape(d, attention_cheaper ? low : high, attention_cheaper ? high : low);
    r.policy.strategy = OffloadStrategy::manual;
    r.policy.rules = {{attention_cheaper ? "attn" : "blk\\.[01]\\.ffn", true}};
    const Plan by_hand = make_plan(m, r);
    r.policy.strategy = OffloadStrategy::fastest;
    r.policy.rules.clear();
    r.policy.vram_budget_bytes = by_hand.device_total_bytes();
    const Plan plan = make_plan(m, r);
    CHECK(plan.chosen_by.starts_with("greedy"));
    CHECK(plan.n_device_layers == 0);  // not one whole layer fits
    bool any_attention = false, any_ffn = false;
    for (const PlannedTensor &t : plan.tensors)
      if (t.layer >= 0 && t.location == Location::device)
        (t.name.find(".ffn_") != std::string::npos ? any_ffn : any_attention) = true;
    CHECK(any_attention == attention_cheaper);
    CHECK(any_ffn == !attention_cheaper);
    CHECK(plan.predicted_pp_tok_s >= doctest::Approx(by_hand.predicted_pp_tok_s));
  }
}

TEST_CASE("JSON and table carry the promised fields") {
  const Plan plan = make_plan(test::llama_shape({}), one_layer_request(kDeviceTotal, 2));
  const std::string json = plan.to_json();
  for (const char *key : {"\"budget_bytes\": 351464", "\"device_total_bytes\": 351464", "\"host_total_bytes\": 132096",
                          "\"n_ctx\": 256", "\"predicted_pp_tok_s\"", "\"predicted_tg_tok_s\"", "\"by_category\"",
                          "\"weights\": 190208", "\"kv\": 65536", "\"scratch\": 94720", "\"staging\": 0",
                          "\"overhead\": 1000", "{\"name\": \"output.weight\", \"device\": \"gpu\", \"bytes\": 25600"})
    CHECK_MESSAGE(json.find(key) != std::string::npos, key);
  const std::string table = plan.to_table();
  CHECK(table.find("blk.0") != std::string::npos);
  CHECK(table.find("token_embd.weight") != std::string::npos);
}

TEST_CASE("no budget: free device memory minus the reserve; a budget above the device is capped") {
  PlanRequest r = one_layer_request(0, 2);
  r.machine.device_memory_bytes = 1 << 20;
  r.policy.reserve_bytes = 1 << 18;
  CHECK(make_plan(test::llama_shape({}), r).budget_bytes == (1u << 20) - (1u << 18));
  r.policy.vram_budget_bytes = 1ull << 40;
  CHECK(make_plan(test::llama_shape({}), r).budget_bytes == 1u << 20);
  r.machine.device_memory_bytes = 0;
  r.policy.vram_budget_bytes = 0;
  CHECK_THROWS_AS(make_plan(test::llama_shape({}), r), Error);
}

TEST_CASE("n_contexts: each context gets its own KV cache and scratch, and a short budget says how many fit") {
  const ModelShape m = test::llama_shape({});
  // kDeviceTotal holds one context: KV 65536 + scratch 94720 more for each further one.
  constexpr uint64_t kPerContext = 65536 + 94720;
  PlanRequest r = one_layer_request(kDeviceTotal + 2 * kPerContext, 2);
  r.n_contexts = 3;
  const Plan plan = make_plan(m, r);
  CHECK(plan.n_contexts == 3);
  CHECK(plan.device.weights == 190208);
  CHECK(plan.device.kv == 3 * 65536);
  CHECK(plan.device.scratch == 3 * 94720);
  CHECK(plan.device_total_bytes() == kDeviceTotal + 2 * kPerContext);
  CHECK(plan.kv[0].k_bytes == 32768);  // one context's
  CHECK(plan.kv[0].device_bytes == 3 * 65536);
  CHECK(plan.host.scratch == 3 * 81920);
  CHECK(plan.host.staging == 3 * 24576);
  CHECK(plan.to_json().find("\"n_contexts\": 3") != std::string::npos);

  r.policy.vram_budget_bytes -= 1;
  CHECK_THROWS_WITH_AS(make_plan(m, r), doctest::Contains("this budget holds 2 of the 3 contexts asked for"), Error);
  r.policy.vram_budget_bytes = kDeviceTotal - 1;
  CHECK_THROWS_WITH_AS(make_plan(m, r), doctest::Contains("this budget holds 0 of the 3 contexts"), Error);
  r.n_contexts = 0;
  CHECK_THROWS_AS(make_plan(m, r), Error);
}
