// The forward pass over weights spread across devices: a simulated device (host memory behind a
// byte capacity) holds some blocks, the CPU the rest. The arithmetic is the CPU's either way, so
// the logits must be identical to a CPU-only pass; only the copies of the residual differ.
#include <doctest/doctest.h>

#include <vector>

#include "model/device_cpu.hpp"
#include "model/device_sim.hpp"
#include "model/forward.hpp"
#include "model/workspace.hpp"
#include "model/model_impl.hpp"
#include "model_test_util.hpp"
#include "test_data.hpp"

using namespace vramfit;
using vramfit::test::cpu_only;

namespace {

std::vector<float> run_forward(const Model &model, const model::ModelWeights &w, std::span<const int32_t> tokens) {
  const ModelInfo &info = model.info();
  model::Workspace ws(info, w, 64, 64, GgmlType::F32);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(info.n_vocab));
  model::forward(info, w, ws, tokens, 0, static_cast<int64_t>(tokens.size()), logits.data());
  return logits;
}

}  // namespace

TEST_CASE("a model split between the CPU and a simulated device gives the CPU-only logits exactly") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  const Model model = Model::load(*path, cpu_only());
  const std::vector<int32_t> tokens = model.tokenize("Once upon a time, there was a little", true);

  model::CpuDevice cpu(2);
  model::SimDevice sim(cpu, 64ull << 20);
  model::ModelWeights on_cpu = model.impl().weights;
  auto place_on_cpu = [&](model::Weight &w) { w.device = &cpu; };
  for (model::Weight *w : on_cpu.all_mutable()) place_on_cpu(*w);

  // Attention of layer 0, the feed-forward of layer 1, all of layer 2 and the output head go to
  // the device; the embeddings and the rest stay on the CPU.
  model::ModelWeights split = on_cpu;
  std::vector<void *> uploaded;
  REQUIRE(split.layers.size() == 3);
  const model::AttentionWeights &a0 = split.layers[0].attn;
  const model::FfnWeights &f1 = *split.layers[1].ffn;
  test::upload_to(sim, std::vector<const model::Weight *>{&a0.norm, &a0.wq, &a0.wk, &a0.wv, &a0.wo, &f1.norm, &f1.gate,
                                                    &f1.up, &f1.down},
            uploaded);
  for (const model::Block &b : split.blocks())
    if (b.layer == 2 || b.kind == "output head") test::upload_to(sim, b.weights, uploaded);
  model::check_placement(split);

  const std::vector<float> expected = run_forward(model, on_cpu, tokens);
  const uint64_t uploaded_weights = sim.memory_stats().bytes_uploaded;
  const std::vector<float> got = run_forward(model, split, tokens);
  CHECK(got == expected);

  // The residual ([n_tokens][n_embd] floats) crosses three times: to the device for layer 0's
  // attention, back for its feed-forward, to the device again for layer 1's feed-forward; then
  // only the logits come back.
  const uint64_t residual = tokens.size() * static_cast<uint64_t>(model.info().n_embd) * sizeof(float);
  const uint64_t logits = tokens.size() * static_cast<uint64_t>(model.info().n_vocab) * sizeof(float);
  const model::DeviceMemoryStats stats = sim.memory_stats();
  CHECK(stats.bytes_uploaded - uploaded_weights == 2 * residual);
  CHECK(stats.bytes_downloaded == residual + logits);
  for (void *p : uploaded) sim.deallocate(p);
  CHECK(sim.memory_stats().allocated_bytes == 0);

  // A block whose weights are on two devices is refused.
  split.layers[0].attn.wk = on_cpu.layers[0].attn.wk;
  CHECK_THROWS_AS(model::check_placement(split), Error);
}
