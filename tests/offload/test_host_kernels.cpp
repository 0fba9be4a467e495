// The host side of the cost model with given per-type kernel rates (MachineProfile::host_kernels):
// one token reads a tensor at min(bandwidth, its type's mat-vec rate), a prompt batch computes it
// at its type's matmul rate, and the planner moves what the host runs slowest to the device.
#include <doctest/doctest.h>

#include <string>

#include "shapes.hpp"

using namespace vramfit;

namespace {

// One Q4_K layer (n_embd 256, 4 heads, n_ff 512, vocab 256: rows of 256 for the K-quant), all on
// the host; n_ctx 64, n_batch 32.
constexpr int64_t kEmbd = 256, kFf = 512, kVocab = 256;

ModelShape q4_k_layer() {
  test::LlamaDims d;
  d.n_embd = kEmbd, d.n_head = 4, d.n_head_kv = 4, d.n_ff = kFf, d.n_vocab = kVocab;
  return test::llama_shape(d, GgmlType::Q4_K);
}

PlanRequest host_only(const MachineProfile &machine) {
  PlanRequest r;
  r.n_ctx = 64;
  r.n_batch = 32;
  r.machine = machine;
  r.policy.vram_budget_bytes = 1;
  r.policy.strategy = OffloadStrategy::manual;
  r.policy.n_gpu_layers = 0;
  return r;
}

// Q4_K bytes of the layer's matrices and of the output head (144 bytes per 256 weights).
constexpr double kLayerQ4Bytes = (4.0 * kEmbd * kEmbd + 3.0 * kEmbd * kFf) * 144 / 256;
constexpr double kOutputQ4Bytes = double(kEmbd) * kVocab * 144 / 256;

}  // namespace

TEST_CASE("a type's mat-vec rate below the bandwidth sets its generation cost; above, the bandwidth does") {
  MachineProfile m = test::round_machine();  // 1 GB/s, flops unlimited
  const Plan roofline = make_plan(q4_k_layer(), host_only(m));
  m.host_kernels[GgmlType::Q4_K] = {0.25e9, 1e18};
  const Plan slow = make_plan(q4_k_layer(), host_only(m));
  // Every Q4_K byte a token reads (layer and output head) now costs 4 ns instead of 1 ns.
  const double extra = 3 * (kLayerQ4Bytes + kOutputQ4Bytes) / 1e9;
  CHECK(1 / slow.predicted_tg_tok_s == doctest::Approx(1 / roofline.predicted_tg_tok_s + extra));
  m.host_kernels[GgmlType::Q4_K] = {4e9, 1e18};  // faster than memory: memory bounds it
  CHECK(make_plan(q4_k_layer(), host_only(m)).predicted_tg_tok_s == doctest::Approx(roofline.predicted_tg_tok_s));
}

TEST_CASE("a prompt batch computes at its type's matmul rate, the output head for the last token only") {
  MachineProfile m = test::round_machine();
  m.host_read_bandwidth = 1e18;  // only compute counts
  m.host_kernels[GgmlType::Q4_K] = {1e18, 1e9};
  const PlanRequest r = host_only(m);
  const Plan plan = make_plan(q4_k_layer(), r);
  // 2 flops per weight and token at 1 Gflop/s; the output head: one token's logits per batch.
  const double layer_weights = 4.0 * kEmbd * kEmbd + 3.0 * kEmbd * kFf, output_weights = double(kEmbd) * kVocab;
  const double seconds = 2 * layer_weights / 1e9 + 2 * output_weights / 1e9 / r.n_batch;
  CHECK(1 / plan.predicted_pp_tok_s == doctest::Approx(seconds).epsilon(1e-6));
}

TEST_CASE("host attention computes at host_attention_flops, in generation and prompts alike") {
  MachineProfile m = test::round_machine();
  m.host_read_bandwidth = 1e18;  // only compute counts
  const Plan unlimited = make_plan(q4_k_layer(), host_only(m));
  m.host_attention_flops = 1e9;
  const Plan plan = make_plan(q4_k_layer(), host_only(m));
  // 4 flops per head dimension (256 in all) and visible key: n_ctx / 2 = 32 of them, one layer.
  const double seconds = 4.0 * kEmbd * 32 / 1e9;
  CHECK(1 / plan.predicted_tg_tok_s == doctest::Approx(1 / unlimited.predicted_tg_tok_s + seconds));
  CHECK(1 / plan.predicted_pp_tok_s == doctest::Approx(1 / unlimited.predicted_pp_tok_s + seconds));
}

// Attention Q4_K, feed-forward Q6_K; room for all the attention groups or two layers' ffn. With
// prompts cheap (huge flop rates) each byte saves generation time in proportion to how slowly the
// host reads its type, so fastest must take the type given the lower mat-vec rate.
TEST_CASE("fastest puts the type the host multiplies slowest on the device") {
  test::LlamaDims d;
  d.n_layer = 8;
  d.n_embd = 512, d.n_head = 8, d.n_head_kv = 8, d.n_ff = 1536, d.n_vocab = 512;
  const ModelShape model = test::llama_shape(d, GgmlType::Q4_K, GgmlType::Q6_K);
  for (bool attention_slow : {true, false}) {
    CAPTURE(attention_slow);
    PlanRequest r;
    r.n_ctx = 32;
    r.n_batch = 512;
    r.machine = MachineProfile{};
    r.machine.device_memory_bytes = 0;
    r.machine.device_fixed_overhead_bytes = 1 << 20;
    r.machine.transfer_latency_s = 0;
    r.machine.host_flops = r.machine.device_flops = 1e18;
    const double bandwidth = r.machine.host_read_bandwidth;
    r.machine.host_kernels[GgmlType::Q4_K] = {attention_slow ? 0.2 * bandwidth : bandwidth, 1e18};
    r.machine.host_kernels[GgmlType::Q6_K] = {attention_slow ? bandwidth : 0.2 * bandwidth, 1e18};
    r.policy.vram_budget_bytes = 1ull << 40;
    r.policy.strategy = OffloadStrategy::manual;
    r.policy.rules = {{attention_slow ? "attn" : "blk\\.[01]\\.ffn", true}};
    const Plan by_hand = make_plan(model, r);
    r.policy.strategy = OffloadStrategy::fastest;
    r.policy.rules.clear();
    r.policy.vram_budget_bytes = by_hand.device_total_bytes();
    const Plan plan = make_plan(model, r);
    CHECK(plan.n_device_layers == 0);
    bool any_attention = false, any_ffn = false;
    for (const PlannedTensor &t : plan.tensors)
      if (t.layer >= 0 && t.location == Location::device)
        (t.name.find(".ffn_") != std::string::npos ? any_ffn : any_attention) = true;
    CHECK(any_attention == attention_slow);
    CHECK(any_ffn == !attention_slow);
  }
}

TEST_CASE("host kernel rates: a non-positive one is refused by type; the plan says where they came from") {
  MachineProfile m = test::round_machine();
  m.host_kernels[GgmlType::Q6_K] = {0, 1e9};
  CHECK_THROWS_WITH_AS(make_plan(q4_k_layer(), host_only(m)),
                       doctest::Contains("host kernel rates of Q6_K must be positive"), Error);
  m.host_kernels[GgmlType::Q6_K] = {2e9, 3e11};
  m.given.host_kernels = true;
  const Plan plan = make_plan(q4_k_layer(), host_only(m));
  const std::string json = plan.to_json();
  CHECK(json.find(R"("host_kernels": {"Q6_K": {"matvec_bytes_per_s": 2e+09, "matmul_flops": 3e+11}})") !=
        std::string::npos);
  CHECK(json.find(R"("host_kernels": "given")") != std::string::npos);
  CHECK(plan.to_table().find("host Q6_K kernels: mat-vec 2.0 GB/s, matmul 300 Gflop/s") != std::string::npos);
}

TEST_CASE("kernel_shapes: each matrix type once, in the shape holding most of its bytes, one expert's for experts") {
  test::MoeDims d;
  d.n_ff_exp = 512;  // gate and up [256 -> 512] per expert hold twice the bytes of down [512 -> 256]
  const std::vector<KernelShape> shapes = kernel_shapes(test::moe_shape(d, GgmlType::Q4_K, GgmlType::Q8_0));
  REQUIRE(shapes.size() == 3);  // the F32 router, Q4_K attention and embeddings, Q8_0 experts
  auto of = [&](GgmlType type) {
    for (const KernelShape &s : shapes)
      if (s.type == type) return s;
    FAIL("no shape of ", type_name(type));
    return KernelShape{};
  };
  CHECK(of(GgmlType::Q8_0).row_length == 256);
  CHECK(of(GgmlType::Q8_0).rows == 512);
  CHECK(of(GgmlType::F32).rows == d.n_expert);  // ffn_gate_inp [n_embd, n_expert]
  CHECK(of(GgmlType::Q4_K).row_length == 256);
}
