// Planning real models far larger than this machine, from their headers alone.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "offload/memory_model.hpp"
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

namespace {

// A one-layer llama header with real (tiny) tensors, its metadata edited by `edit`.
gguf::File tiny_header(const std::function<void(gguf::Writer &)> &edit) {
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 1);
  w.set_u32("llama.embedding_length", 64);
  w.set_u32("llama.feed_forward_length", 128);
  w.set_u32("llama.attention.head_count", 4);
  edit(w);
  std::vector<std::byte> zeros(64 * 128 * sizeof(float));
  auto add = [&](const std::string &name, int64_t n_in, int64_t n_out) {
    const int64_t ne[2] = {n_in, n_out};
    w.add_tensor(name, GgmlType::F32, ne, std::span(zeros).first(static_cast<size_t>(n_in * n_out) * sizeof(float)));
  };
  add("token_embd.weight", 64, 100);
  for (const char *t : {"attn_q", "attn_k", "attn_v", "attn_output"}) add(fmt::format("blk.0.{}.weight", t), 64, 64);
  add("blk.0.ffn_up.weight", 64, 128);
  add("output.weight", 64, 100);
  const auto path = std::filesystem::temp_directory_path() / "vramfit-test-tiny-header.gguf";
  w.write_file(path);
  gguf::File file = gguf::File::open(path);
  std::filesystem::remove(path);
  return file;
}

}  // namespace

TEST_CASE("sizes the planner multiplies cannot wrap, and the layer count is the tensor list's") {
  CHECK_NOTHROW(ModelShape::from_gguf(tiny_header([](gguf::Writer &) {})));
  // 1 000 000 layers claimed, one described: refused before any per-layer work.
  CHECK_THROWS_WITH_AS(ModelShape::from_gguf(tiny_header([](gguf::Writer &w) { w.set_u32("llama.block_count", 1000000); })),
                       doctest::Contains("block_count is 1000000 but the tensors describe 1 layers"), Error);
  // head_count_kv x key_length = 65536 x 65536 once wrapped a uint32 to a 0-byte KV cache.
  CHECK_THROWS_WITH_AS(ModelShape::from_gguf(tiny_header([](gguf::Writer &w) {
                         w.set_u32("llama.attention.head_count_kv", 65536);
                         w.set_u32("llama.attention.key_length", 65536);
                       })),
                       doctest::Contains("beyond any model"), Error);
  // Rounding a size near 2^64 up to the arena's alignment saturates instead of wrapping to 0.
  CHECK(offload::arena_bytes(UINT64_MAX - 5) >= UINT64_MAX - 255);
  CHECK(offload::arena_bytes(UINT64_MAX) > 0);
}
