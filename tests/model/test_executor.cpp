// The executor on a simulated device: a model split across "device" and CPU as an offload plan
// says, under budgets from "nothing fits" to "everything fits". A sim device runs the CPU's
// kernels on its own memory, so every split must give the CPU-only logits, and the device's
// arena must never hold more than the budget.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "model/executor.hpp"
#include "model/model_impl.hpp"
#include "test_data.hpp"
#include "test_util.hpp"
#include "vramfit/context.hpp"
#include "vramfit/log.hpp"

using namespace vramfit;

namespace {

constexpr int32_t kCtx = 64, kBatch = 16, kThreads = 2;

ModelParams params_for(std::string device, OffloadPolicy policy = {}) {
  ModelParams p;
  p.device = std::move(device);
  p.offload = std::move(policy);
  p.n_ctx = kCtx;
  p.n_batch = kBatch;
  return p;
}

ContextParams context_params() {
  ContextParams c;
  c.n_ctx = kCtx;
  c.n_batch = kBatch;
  c.n_threads = kThreads;
  return c;
}

struct Logits {
  std::vector<float> batch;   // every token of the prompt + continuation decoded as one call
  std::vector<float> stream;  // the prompt, then one token at a time: the last logits of each call
};

// The sequence is longer than n_batch, so the batch is decoded in chunks.
std::vector<int32_t> sequence(const Model &model) {
  std::vector<int32_t> tokens = model.tokenize("Once upon a time, there was a little girl named Lily. She", true);
  REQUIRE(tokens.size() > static_cast<size_t>(kBatch));
  return tokens;
}

Logits run(Context &ctx, const std::vector<int32_t> &tokens) {
  Logits out;
  ctx.clear();
  auto all = ctx.decode(tokens, true);
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto row = ctx.logits(static_cast<int32_t>(i));
    out.batch.insert(out.batch.end(), row.begin(), row.end());
  }
  (void)all;
  ctx.clear();
  const size_t n_prompt = 5;
  auto first = ctx.decode(std::span(tokens).first(n_prompt));
  out.stream.assign(first.begin(), first.end());
  for (size_t i = n_prompt; i < tokens.size(); ++i) {
    auto row = ctx.decode(std::span(tokens).subspan(i, 1));
    out.stream.insert(out.stream.end(), row.begin(), row.end());
  }
  return out;
}

double max_relative_diff(const std::vector<float> &got, const std::vector<float> &want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(double{got[i]} - want[i]) / std::max(1e-30, std::abs(double{want[i]})));
  return worst;
}

model::Device &device_of(const Model &model) { return model.impl().executor->device(); }

OffloadPolicy policy(OffloadStrategy strategy, uint64_t budget) {
  OffloadPolicy p;
  p.strategy = strategy;
  p.vram_budget_bytes = budget;
  return p;
}

}  // namespace

TEST_CASE("sim device: every budget and strategy gives the CPU-only logits, inside the budget") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  const Model cpu_model = Model::load(*path, params_for("cpu"));
  CHECK(cpu_model.plan() == nullptr);
  const std::vector<int32_t> tokens = sequence(cpu_model);
  Context cpu_ctx(cpu_model, context_params());
  const Logits expected = run(cpu_ctx, tokens);

  // Everything on the device: the whole model, its KV cache and scratch.
  const uint64_t everything = [&] {
    PlanRequest request;
    request.n_ctx = kCtx;
    request.n_batch = kBatch;
    request.machine.device_fixed_overhead_bytes = 0;  // as a sim device
    request.policy = policy(OffloadStrategy::manual, 1ull << 40);
    request.policy.n_gpu_layers = 1000;
    request.policy.rules = {{"token_embd", true}};
    const Plan all = make_plan(cpu_model.impl().file, request);
    CHECK(all.host.weights == 0);
    return all.device.total();
  }();

  // A budget below the smallest useful one is refused, naming that budget; which then works.
  uint64_t smallest = 0;
  try {
    (void)Model::load(*path, params_for("sim", policy(OffloadStrategy::layers, 4096)));
    FAIL("a 4 KiB budget was accepted");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::budget_exceeded);
    const std::string message = e.what();
    const std::string named = "the smallest budget that works is ";
    const size_t at = message.find(named);
    REQUIRE(at != std::string::npos);
    smallest = std::stoull(message.substr(at + named.size()));
  }
  CHECK_NOTHROW((void)Model::load(*path, params_for("sim", policy(OffloadStrategy::layers, smallest))));
  CHECK_THROWS_AS((void)Model::load(*path, params_for("sim", policy(OffloadStrategy::layers, smallest - 1))), Error);

  // Manual -ot rules: whole layers 0 and 2 (with their KV); or blocks apart, so the residual
  // crosses at every block: layer 0's attention, layer 1's feed-forward and the output head.
  OffloadPolicy layers_0_2 = policy(OffloadStrategy::manual, 0);
  layers_0_2.rules = {{"^blk\\.(0|2)\\.", true}};
  OffloadPolicy blocks = policy(OffloadStrategy::manual, 0);
  blocks.rules = {{"^blk\\.0\\.attn", true}, {"^blk\\.1\\.ffn", true}, {"^output", true}};
  const std::vector<std::pair<std::string, OffloadPolicy>> strategies{
      {"layers", policy(OffloadStrategy::layers, 0)},
      {"fastest", policy(OffloadStrategy::fastest, 0)},
      {"manual layers 0,2", layers_0_2},
      {"manual blocks", blocks}};

  int n_split = 0, n_refused = 0, n_host_only = 0, n_streamed = 0;
  for (int step = 1; step <= 17; ++step) {
    const uint64_t budget = everything * static_cast<uint64_t>(step) / 16;  // 1/16 .. 17/16 of everything
    for (auto [name, p] : strategies) {
      CAPTURE(name);
      CAPTURE(budget);
      p.vram_budget_bytes = budget;
      std::optional<Model> model;
      try {
        model = Model::load(*path, params_for("sim", p));
      } catch (const Error &e) {
        CHECK(e.code() == ErrorCode::budget_exceeded);  // too small for this strategy: a clean refusal
        CHECK(budget < everything);
        ++n_refused;
        continue;
      }
      const Plan &plan = *model->plan();
      Context ctx(*model, context_params());
      const Logits got = run(ctx, tokens);
      CHECK(max_relative_diff(got.batch, expected.batch) <= 1e-6);
      CHECK(max_relative_diff(got.stream, expected.stream) <= 1e-6);
      CHECK(got.batch == expected.batch);  // the same kernels on the same numbers: bit-identical

      // A plan that puts nothing on the device (a layer count of 0 fits) runs without one.
      const MemoryReport report = ctx.memory_report();
      if (plan.device.weights == 0 && !model->impl().executor) {
        CHECK(report.devices.size() == 1);
        ++n_host_only;
        continue;
      }
      // The device holds exactly what the plan lists, category by category (its staging is the
      // prompt-streaming slots; the residual lands straight in the device's activations), never
      // more than the budget.
      REQUIRE(report.devices.size() == 2);
      const DeviceMemory &dev = report.devices[1];
      CHECK(dev.weights == plan.device.weights);
      CHECK(dev.kv == plan.device.kv);
      CHECK(dev.scratch == plan.device.scratch);
      CHECK(dev.staging == plan.device.staging);
      CHECK(dev.peak == plan.device.total());
      n_streamed += plan.streaming.enabled;
      CHECK(dev.peak <= budget);
      CHECK(dev.budget == budget);
      const model::DeviceMemoryStats stats = device_of(*model).memory_stats();
      CHECK(stats.budget_bytes == budget);
      CHECK(stats.peak_bytes <= budget);
      if (plan.device.weights > 0 && plan.host.weights > 0) ++n_split;
    }
  }
  MESSAGE(fmt::format("everything = {} bytes; {} partial splits, {} refusals, {} plans without the device, {} "
                      "streaming prompts",
                      everything, n_split, n_refused, n_host_only, n_streamed));
  CHECK(n_streamed >= 1);
  CHECK(n_split >= 6);    // partial splits were exercised, not only all or nothing
  CHECK(n_refused >= 1);  // and budgets too small for some strategy
}

TEST_CASE("sim device: an allocation past the budget fails cleanly and the context still decodes") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  const Model cpu_model = Model::load(*path, params_for("cpu"));
  const std::vector<int32_t> tokens = sequence(cpu_model);
  Context cpu_ctx(cpu_model, context_params());
  const Logits expected = run(cpu_ctx, tokens);

  const Model model = Model::load(*path, params_for("sim:64MiB", policy(OffloadStrategy::layers, 0)));
  CHECK(model.plan()->budget_bytes == 64ull << 20);
  Context ctx(model, context_params());
  model::Device &device = device_of(model);
  const model::DeviceMemoryStats before = device.memory_stats();
  const uint64_t free_bytes = before.budget_bytes - before.allocated_bytes;
  CHECK_THROWS_WITH_AS(device.allocate(free_bytes + 1, "one byte too many"), doctest::Contains("one byte too many"),
                       Error);
  CHECK(device.memory_stats().allocated_bytes == before.allocated_bytes);

  // A second context that does not fit is refused before anything is allocated.
  void *hog = device.allocate(free_bytes - 1024, "hog");
  try {
    Context second(model, context_params());
    FAIL("a context past the budget was created");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::budget_exceeded);
  }
  CHECK(device.memory_stats().allocated_bytes == before.allocated_bytes + free_bytes - 1024 + 0);
  device.deallocate(hog);

  const Logits got = run(ctx, tokens);
  CHECK(got.batch == expected.batch);
  CHECK(got.stream == expected.stream);
}

TEST_CASE("sim device: a context larger than the plan is refused, naming what to change") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  const Model model = Model::load(*path, params_for("sim:64MiB"));
  const uint64_t allocated = device_of(model).memory_stats().allocated_bytes;
  ContextParams big = context_params();
  big.n_ctx = kCtx * 2;
  CHECK_THROWS_WITH_AS(Context(model, big), doctest::Contains("n_ctx"), Error);
  big = context_params();
  big.n_batch = kBatch * 2;
  CHECK_THROWS_WITH_AS(Context(model, big), doctest::Contains("n_batch"), Error);
  big = context_params();
  big.kv_type = GgmlType::F32;  // planned F16
  CHECK_THROWS_WITH_AS(Context(model, big), doctest::Contains("kv_type"), Error);
  CHECK(device_of(model).memory_stats().allocated_bytes == allocated);

  ContextParams defaults;  // n_ctx 0: the plan's
  defaults.n_batch = kBatch;
  Context ctx(model, defaults);
  CHECK(ctx.n_ctx() == kCtx);
}

TEST_CASE("device names and budgets are checked") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  auto code_of = [&](const ModelParams &p) { return test::error_code_of([&] { (void)Model::load(*path, p); }); };
  CHECK(code_of(params_for("gpu")) == ErrorCode::invalid_argument);
  CHECK(code_of(params_for("sim:lots")) == ErrorCode::invalid_argument);
  CHECK(code_of(params_for("sim")) == ErrorCode::invalid_argument);  // neither capacity nor budget
  CHECK(code_of(params_for("sim:1M", policy(OffloadStrategy::fastest, 2u << 20))) == ErrorCode::invalid_argument);
#if !(defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA)
  CHECK(code_of(params_for("cuda")) == ErrorCode::unsupported);
  CHECK(code_of(params_for("cuda:1")) == ErrorCode::unsupported);
  CHECK(Model::load(*path, params_for("auto")).plan() == nullptr);
#endif
  // Manual rules that split a block cannot run: the planner refuses them before anything is
  // uploaded (a rule naming one tensor of a block places the whole block).
  OffloadPolicy split = policy(OffloadStrategy::manual, 64u << 20);
  split.rules = {{"blk\\.0\\.attn_q", true}, {"blk\\.0\\.attn_k", false}};
  CHECK(code_of(params_for("sim", split)) == ErrorCode::invalid_argument);
}

TEST_CASE("a plan that puts nothing on the device creates no device and reserves nothing") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  const Model cpu_model = Model::load(*path, params_for("cpu"));
  const std::vector<int32_t> tokens = sequence(cpu_model);
  Context cpu_ctx(cpu_model, context_params());
  const Logits expected = run(cpu_ctx, tokens);

  OffloadPolicy no_layers = policy(OffloadStrategy::layers, 0);
  no_layers.n_gpu_layers = 0;
  const Model model = Model::load(*path, params_for("sim:64MiB", no_layers));
  REQUIRE(model.plan() != nullptr);  // the plan is kept, and says why nothing is on the device
  const Plan &plan = *model.plan();
  CHECK(plan.n_device_layers == 0);
  CHECK(std::none_of(plan.tensors.begin(), plan.tensors.end(),
                     [](const PlannedTensor &t) { return t.location == Location::device; }));
  REQUIRE(!plan.notes.empty());
  CHECK(plan.notes.back().find("it is not created") != std::string::npos);
  CHECK(model.impl().executor == nullptr);

  Context ctx(model, context_params());
  const MemoryReport report = ctx.memory_report();
  REQUIRE(report.devices.size() == 1);  // the host alone
  CHECK(report.devices[0].device == cpu_ctx.memory_report().devices[0].device);
  const Logits got = run(ctx, tokens);
  CHECK(got.batch == expected.batch);
  CHECK(got.stream == expected.stream);
}

TEST_CASE("load progress rises from 0 to 1, once per uploaded weight; returning false cancels the load") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  std::vector<float> seen;
  auto record = [&](ModelParams p) {
    p.progress = [&](float fraction) {
      seen.push_back(fraction);
      return true;
    };
    return p;
  };

  // The CPU alone: the two ends.
  (void)Model::load(*path, record(params_for("cpu")));
  CHECK(seen == std::vector<float>{0.0f, 1.0f});

  // A device: 0, then one report per uploaded tensor, rising, then 1.
  seen.clear();
  const Model model = Model::load(*path, record(params_for("sim:64MiB", policy(OffloadStrategy::layers, 0))));
  CHECK(model.params().progress == nullptr);  // not kept past load()
  const Plan &plan = *model.plan();
  const auto n_uploaded = std::count_if(plan.tensors.begin(), plan.tensors.end(),
                                        [](const PlannedTensor &t) { return t.location == Location::device; });
  REQUIRE(n_uploaded > 2);
  CHECK(seen.size() == static_cast<size_t>(n_uploaded) + 2);
  CHECK(seen.front() == 0.0f);
  CHECK(seen.back() == 1.0f);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(seen[seen.size() - 2] == doctest::Approx(1.0));  // the last upload completes the weights

  // Cancelled at the start, half-way through the uploads and at the end: Error(cancelled), no
  // report after it, and nothing leaked: no device allocation outlives its device (which warns
  // about any), nor any host memory (the sanitize build's LeakSanitizer checks that).
  int n_leaks = 0;
  set_log_callback([](LogLevel, const char *message, void *n) {
    *static_cast<int *>(n) += std::string_view(message).find("live allocations") != std::string_view::npos;
  }, &n_leaks);
  const size_t n_reports = seen.size();
  for (const size_t cancel_at : {size_t{0}, n_reports / 2, n_reports - 1}) {
    CAPTURE(cancel_at);
    size_t calls = 0;
    ModelParams p = params_for("sim:64MiB", policy(OffloadStrategy::layers, 0));
    p.progress = [&](float) { return calls++ != cancel_at; };
    try {
      (void)Model::load(*path, p);
      FAIL("the load was not cancelled");
    } catch (const Error &e) {
      CHECK(e.code() == ErrorCode::cancelled);
      CHECK(std::string(e.what()).find("cancelled") != std::string::npos);
    }
    CHECK(calls == cancel_at + 1);  // no report after the cancel
  }
  set_log_callback(nullptr, nullptr);
  CHECK(n_leaks == 0);
}

TEST_CASE("sim device: a streamed prompt gives the CPU-only logits, uploads what the plan says, inside the budget") {
  for (const std::string name : {"synth-Q4_K_M", "synth-qwen3moe-Q4_K_M", "synth-qwen2-Q4_K_M", "synth-gptoss-MXFP4_MOE"}) {
    auto path = test::test_data("models/" + name + ".gguf");
    if (!path) return;
    CAPTURE(name);
    const Model cpu_model = Model::load(*path, params_for("cpu"));
    const std::vector<int32_t> tokens = sequence(cpu_model);
    Context cpu_ctx(cpu_model, context_params());
    const Logits expected = run(cpu_ctx, tokens);

    int n_streamed = 0;
    const uint64_t weights = cpu_model.info().weight_bytes;
    // These models are so small that the cost model keeps them on the CPU when it may choose: put
    // one or two layers on the device and let the rest stream.
    for (uint64_t budget : {weights / 2, weights, 2 * weights}) {
      CAPTURE(budget);
      std::optional<Model> model;
      OffloadPolicy p = policy(OffloadStrategy::manual, budget);
      p.n_gpu_layers = budget > weights ? 2 : 1;
      try {
        model = Model::load(*path, params_for("sim", p));
      } catch (const Error &e) {
        CHECK(e.code() == ErrorCode::budget_exceeded);
        continue;
      }
      const Plan *plan = model->plan();
      if (!plan || !plan->streaming.enabled) continue;
      ++n_streamed;
      CHECK(plan->streaming.min_batch >= 1);
      CHECK(plan->streaming.predicted_pp_tok_s > plan->streaming.unstreamed_pp_tok_s);
      Context ctx(*model, context_params());
      const Logits got = run(ctx, tokens);
      CHECK(got.batch == expected.batch);  // the same kernels on the same numbers
      CHECK(got.stream == expected.stream);

      // One streamed batch uploads each host-placed layer weight once (of a MoE layer's experts
      // only those its tokens chose).
      model::Executor &ex = *model->impl().executor;
      model::Streamer *streamer = ex.streamer_for(kBatch);
      REQUIRE(streamer);
      const uint64_t before = streamer->weight_bytes_uploaded();
      ctx.clear();
      ctx.decode(std::span(tokens).first(kBatch));
      const uint64_t uploaded = streamer->weight_bytes_uploaded() - before;
      if (model->info().n_expert == 0) CHECK(uploaded == plan->streaming.bytes_per_batch);
      else CHECK(uploaded <= plan->streaming.bytes_per_batch);
      CHECK(uploaded > 0);
      const model::DeviceMemoryStats stats = ex.device().memory_stats();
      CHECK(stats.peak_bytes <= budget);
      CHECK(ctx.memory_report().devices[1].staging == plan->device.staging);
    }
    MESSAGE(name << ": " << n_streamed << " budgets streamed");
    CHECK(n_streamed >= 1);
  }
}

TEST_CASE("offload asked for with no usable GPU says so once, with the reason, and runs on the CPU") {
  auto path = test::test_data("models/stories260K.gguf");
  if (!path) return;
  if (model::parse_device("auto").kind != model::DeviceKind::cpu) return;  // a GPU is there: nothing to say
  static std::vector<std::string> warnings;
  warnings.clear();
  set_log_callback(
      [](LogLevel level, const char *message, void *) {
        if (level == LogLevel::warn) warnings.emplace_back(message);
      },
      nullptr);
  ModelParams p;  // device "auto"
  p.offload.n_gpu_layers = 5;
  const Model model = Model::load(*path, p);
  set_log_callback(nullptr, nullptr);
  CHECK(model.plan() == nullptr);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("offload to a GPU was asked for") != std::string::npos);
  CHECK(warnings[0].find("runs on the CPU") != std::string::npos);
  // Nothing asked, nothing said.
  warnings.clear();
  set_log_callback([](LogLevel, const char *message, void *) { warnings.emplace_back(message); }, nullptr);
  (void)Model::load(*path, ModelParams{});
  set_log_callback(nullptr, nullptr);
  for (const std::string &w : warnings) CHECK(w.find("offload") == std::string::npos);
  // --device cuda with no usable device is an error.
  ModelParams cuda;
  cuda.device = "cuda";
  CHECK_THROWS_AS((void)Model::load(*path, cuda), Error);
}

// gpt-oss on a sim device: its windowed layers' KV caches are planned and allocated at window - 1
// + n_batch rows (8 - 1 + 16 here, against 64 for the full layers) and slide as the sequence
// outgrows them; the device holds exactly the plan's bytes and the logits are the CPU's.
TEST_CASE("sim device: gpt-oss with sliding-window KV caches, planned bytes exact, CPU logits") {
  auto path = test::test_data("models/synth-gptoss-MXFP4_MOE.gguf");
  if (!path) return;
  const Model cpu_model = Model::load(*path, params_for("cpu"));
  const std::vector<int32_t> tokens = sequence(cpu_model);
  Context cpu_ctx(cpu_model, context_params());
  const Logits expected = run(cpu_ctx, tokens);

  PlanRequest request;
  request.n_ctx = kCtx;
  request.n_batch = kBatch;
  request.machine.device_fixed_overhead_bytes = 0;
  request.policy = policy(OffloadStrategy::manual, 1ull << 40);
  request.policy.n_gpu_layers = 1000;
  const Plan all = make_plan(cpu_model.impl().file, request);
  REQUIRE(all.kv.size() == 2);
  const uint64_t row = 2 * 64 * sizeof(uint16_t);  // f16 K of 2 KV heads of 64
  CHECK(all.kv[0].k_bytes == (8 - 1 + kBatch) * row);
  CHECK(all.kv[1].k_bytes == kCtx * row);

  int n_checked = 0;
  for (int step = 4; step <= 16; step += 4)
    for (OffloadStrategy strategy : {OffloadStrategy::fastest, OffloadStrategy::layers}) {
      const uint64_t budget = all.device.total() * static_cast<uint64_t>(step) / 16;
      CAPTURE(budget);
      std::optional<Model> model;
      try {
        model = Model::load(*path, params_for("sim", policy(strategy, budget)));
      } catch (const Error &e) {
        CHECK(e.code() == ErrorCode::budget_exceeded);
        continue;
      }
      Context ctx(*model, context_params());
      const Logits got = run(ctx, tokens);
      CHECK(got.batch == expected.batch);
      CHECK(got.stream == expected.stream);
      const MemoryReport report = ctx.memory_report();
      if (report.devices.size() < 2) continue;
      const Plan &plan = *model->plan();
      CHECK(report.devices[1].kv == plan.device.kv);
      CHECK(report.devices[1].peak <= budget);
      n_checked += plan.device.kv > 0;
    }
  CHECK(n_checked >= 2);
}

TEST_CASE("sim device: n_contexts contexts fit the plan's budget, each decoding as one alone; one more does not") {
  auto path = test::test_data("models/synth-Q4_K_M.gguf");
  if (!path) return;
  OffloadPolicy all_layers = policy(OffloadStrategy::manual, 0);
  all_layers.n_gpu_layers = 4;  // the 3 layers and the output head
  ModelParams params = params_for("sim:64MiB", all_layers);
  params.n_contexts = 3;
  const uint64_t three = Model::load(*path, params).plan()->device.total();
  params.offload.vram_budget_bytes = three;  // exactly what three contexts need
  const Model model = Model::load(*path, params);
  REQUIRE(model.plan()->n_contexts == 3);
  CHECK(model.plan()->n_device_layers == 3);

  const std::vector<int32_t> tokens = sequence(model);
  std::vector<Context> contexts;
  for (int i = 0; i < 3; ++i) contexts.emplace_back(model, context_params());
  const Logits first = run(contexts[0], tokens);
  for (size_t i = 1; i < 3; ++i) CHECK(max_relative_diff(run(contexts[i], tokens).stream, first.stream) == 0);
  CHECK_THROWS_WITH_AS(Context(model, context_params()), doctest::Contains("free another context"), Error);
  CHECK(device_of(model).memory_stats().peak_bytes <= three);

  params.n_contexts = 4;
  CHECK_THROWS_WITH_AS(Model::load(*path, params), doctest::Contains("this budget holds 3 of the 4 contexts"), Error);
  params.n_contexts = 0;
  CHECK_THROWS_AS(Model::load(*path, params), Error);
}
