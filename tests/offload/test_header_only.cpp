// Planning real models far larger than this machine, from their headers alone.
#include <doctest/doctest.h>

#include "test_data.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

using namespace vramfit;

namespace {

PlanRequest request_12gib(uint32_t n_ctx) {
  PlanRequest r;
  r.n_ctx = n_ctx;
  r.n_batch = 512;
  r.policy.vram_budget_bytes = 12ull << 30;  // the default machine: a 12 GiB RTX 3060-class card
  return r;
}

}  // namespace

TEST_CASE("Llama-2-70B Q4_K_M on 12 GiB with 4096 context: a sane split") {
  auto path = test::test_data("models/header-only/llama2-70b-Q4_K_M.gguf");
  if (!path) return;
  const gguf::File file = gguf::File::open(*path);
  const ModelShape shape = ModelShape::from_gguf(file);
  CHECK(shape.n_layer == 80);
  CHECK(shape.n_head_kv == 8);
  const Plan plan = make_plan(file, request_12gib(4096));
  MESSAGE(plan.to_table());
  CHECK(plan.device_total_bytes() <= 12ull << 30);
  CHECK(plan.device_total_bytes() > 11ull << 30);  // the budget is used, not wasted
  CHECK(plan.device.weights + plan.host.weights >= file.tensor_data_bytes());
  CHECK(plan.device.kv + plan.host.kv == 80ull * 2 * 4096 * 1024 * 2);  // 1.25 GiB of f16 KV
  // ~0.5 GiB per layer: about 20 of 80 layers' worth of weights on a 12 GiB card.
  CHECK(plan.device.weights > 9ull << 30);
  // Generation is bound by the 30 GB left in host RAM: 40 GB/s -> about 1.3 tok/s.
  CHECK(plan.predicted_tg_tok_s > 1.0);
  CHECK(plan.predicted_tg_tok_s < 3.0);
  CHECK(plan.location_of("token_embd.weight") == Location::host);
}

TEST_CASE("Llama-2-13B Q4_K_M fits a 12 GiB card entirely") {
  auto path = test::test_data("models/header-only/llama2-13b-Q4_K_M.gguf");
  if (!path) return;
  const Plan plan = make_plan(gguf::File::open(*path), request_12gib(4096));
  CHECK(plan.n_device_layers == 40);
  CHECK(plan.location_of("output.weight") == Location::device);
  CHECK(plan.device_total_bytes() <= 12ull << 30);
}

TEST_CASE("header-only models: every strategy keeps the budget; too small a budget names one that works") {
  for (const char *name :
       {"llama2-70b-Q4_K_M.gguf", "llama2-70b-Q2_K.gguf", "llama3-70b-Q6_K.gguf", "llama2-13b-Q4_K_M.gguf"}) {
    auto path = test::test_data(std::string("models/header-only/") + name);
    if (!path) return;
    const gguf::File file = gguf::File::open(*path);
    for (auto strategy : {OffloadStrategy::fastest, OffloadStrategy::layers}) {
      PlanRequest r = request_12gib(8192);
      r.policy.strategy = strategy;
      CHECK(make_plan(file, r).device_total_bytes() <= r.policy.vram_budget_bytes);
      r.policy.vram_budget_bytes = 256ull << 20;  // below the CUDA context alone
      CHECK_THROWS_WITH_AS(make_plan(file, r), doctest::Contains("smallest budget that works"), Error);
    }
  }
}

TEST_CASE("real small models: every tensor planned, bytes add up, tied embeddings follow the output") {
  for (const char *name : {"stories260K.gguf", "synth-Q4_K_M.gguf", "synth32k-Q4_K_M.gguf"}) {
    auto path = test::test_data(std::string("models/") + name);
    if (!path) return;
    const gguf::File file = gguf::File::open(*path);
    PlanRequest r;
    r.n_ctx = 256;
    r.n_batch = 64;
    r.policy.strategy = OffloadStrategy::layers;
    r.policy.vram_budget_bytes = 1ull << 30;
    const Plan plan = make_plan(file, r);
    REQUIRE(plan.tensors.size() == file.tensors().size());
    uint64_t bytes = 0;
    for (const PlannedTensor &t : plan.tensors) bytes += t.bytes;
    CHECK(bytes == file.tensor_data_bytes());
    CHECK(plan.device_total_bytes() <= r.policy.vram_budget_bytes);
    if (!file.find_tensor("output.weight")) {  // tied: token_embd is the output head
      r.policy.strategy = OffloadStrategy::manual;
      r.policy.n_gpu_layers = static_cast<int32_t>(plan.n_layer) + 1;
      CHECK(make_plan(file, r).location_of("token_embd.weight") == Location::device);
      r.policy.n_gpu_layers = static_cast<int32_t>(plan.n_layer);
      CHECK(make_plan(file, r).location_of("token_embd.weight") == Location::host);
    }
  }
}
