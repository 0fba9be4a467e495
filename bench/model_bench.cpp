#include "model_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "bandwidth.hpp"
#include "common/json_text.hpp"
#include "vramfit/context.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/model.hpp"
#include "vramfit/offload.hpp"

namespace vramfit::bench {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

template <class F>
double seconds(F &&f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Deterministic token ids spread over the vocabulary (BOS first), like llama-bench's random ones.
std::vector<int32_t> bench_tokens(const Model &model, int32_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((1 + 7919ull * i) % model.n_vocab());
  if (n > 0 && model.bos() >= 0) t[0] = model.bos();
  return t;
}

// The planner's prediction for this run on the CPU alone (every block on the host, no prompt
// streaming), from the machine measured as `vramfit plan --measure` measures it: read bandwidth,
// and the CPU kernels' speed for the model's weight types at the run's thread count.
Plan cpu_only_plan(const ModelBenchOptions &o, int32_t n_threads) {
  const gguf::File file = gguf::File::open(o.model_path);
  PlanRequest request;
  // The planner prices attention with the cache half full; generation at depth d attends to
  // d + n_gen / 2 keys on average: the context whose half that is.
  request.n_ctx = static_cast<uint32_t>(std::max<int64_t>(o.context.n_ctx, 2 * int64_t{o.n_depth} + o.n_gen));
  request.n_batch = static_cast<uint32_t>(o.context.n_batch);
  request.kv_type = o.context.kv_type == GgmlType::F32    ? KvType::f32
                    : o.context.kv_type == GgmlType::Q8_0 ? KvType::q8_0
                                                           : KvType::f16;
  request.policy.strategy = OffloadStrategy::layers;
  request.policy.n_gpu_layers = 0;
  request.policy.stream_prefill = false;
  measure_host_read_bandwidth(request.machine);
  measure_host_kernels(request.machine, kernel_shapes(ModelShape::from_gguf(file), request.n_batch), n_threads);
  return make_plan(file, request);
}

// (predicted - measured) / measured; 0 when nothing was measured.
double relative_error(double predicted, double measured) {
  return measured > 0 ? (predicted - measured) / measured : 0;
}

}  // namespace

int run_model_bench(const ModelBenchOptions &o) {
  ModelParams model_params = o.model;
  model_params.n_ctx = o.context.n_ctx;  // the device's plan reserves this context
  model_params.n_batch = o.context.n_batch;
  model_params.kv_type = o.context.kv_type;
  const Model model = Model::load(o.model_path, model_params);
  Context ctx(model, o.context);
  const std::vector<int32_t> prompt = bench_tokens(model, o.n_prompt);
  const std::vector<int32_t> gen = bench_tokens(model, std::max(o.n_gen, 1));
  const std::vector<int32_t> depth = bench_tokens(model, o.n_depth);
  auto start_at_depth = [&] {  // an empty context, then the -d tokens it starts each test with
    ctx.clear();
    if (!depth.empty()) ctx.decode(depth);
  };

  // Warm-up: pages the weights in from the file and grows every buffer once.
  ctx.decode(std::span(gen).first(1));
  ctx.clear();

  // Weight bytes one generated token reads: every dense matrix once, k of n_expert experts, one
  // row of the embedding table (unless it doubles as the output projection).
  const uint64_t bytes_per_token = model.info().active_weight_bytes;
  // The bound is what the same number of threads stream from memory in the same seconds: sampled
  // between the tokens of each generation run (untimed; up to 32 times, spread over the run),
  // each run's share of it taken, and the median reported.
  AdjacentBandwidth bound(ctx.n_threads());
  const int32_t tokens_per_sample = std::max(1, o.n_gen / 32);
  std::vector<double> pp, tg, bounds, fractions;
  for (int32_t r = 0; r < o.repeats; ++r) {
    if (o.n_prompt > 0) {
      start_at_depth();
      pp.push_back(o.n_prompt / seconds([&] { ctx.decode(prompt); }));
    }
    if (o.n_gen > 0) {
      start_at_depth();
      double decoding = 0;
      for (int32_t i = 0; i < o.n_gen; ++i) {
        decoding += seconds([&] { ctx.decode(std::span(gen).subspan(static_cast<size_t>(i), 1)); });
        if ((i + 1) % tokens_per_sample == 0) bound.sample();
      }
      tg.push_back(o.n_gen / decoding);
      bounds.push_back(bound.gbs());
      fractions.push_back(tg.back() * static_cast<double>(bytes_per_token) / 1e9 / bounds.back());
    }
  }
  const double pp_tok_s = pp.empty() ? 0 : median(pp), tg_tok_s = tg.empty() ? 0 : median(tg);
  const double read_gbs = bounds.empty() ? 0 : median(bounds);
  const double effective_gbs = tg_tok_s * static_cast<double>(bytes_per_token) / 1e9;
  const double fraction = fractions.empty() ? 0 : median(fractions);
  fmt::print(stderr, "{}", ctx.memory_report().to_table());
  const Plan predicted = cpu_only_plan(o, ctx.n_threads());
  const double pp_error = relative_error(predicted.predicted_pp_tok_s, pp_tok_s);
  const double tg_error = relative_error(predicted.predicted_tg_tok_s, tg_tok_s);
  // The probe and the run meet different memory speeds on a shared machine (its bandwidth moves
  // within seconds): the tg prediction scaled by the bound the run met over the probed bandwidth
  // separates the cost model's error from that drift (generation is memory-bound).
  const double probed_gbs = predicted.machine.host_read_bandwidth / 1e9;
  const double tg_at_run = probed_gbs > 0 ? predicted.predicted_tg_tok_s * read_gbs / probed_gbs : 0;
  const double tg_error_at_run = relative_error(tg_at_run, tg_tok_s);

  if (o.json) {
    fmt::print(
        "{{\"model\": {}, \"n_threads\": {}, \"n_prompt\": {}, \"n_gen\": {}, \"n_depth\": {}, \"repeats\": {}, "
        "\"pp_tok_s\": {:.3f}, \"tg_tok_s\": {:.3f}, \"weight_bytes_per_token\": {}, "
        "\"tg_effective_gbs\": {:.3f}, \"read_bandwidth_gbs\": {:.3f}, \"tg_bandwidth_fraction\": {:.4f}, "
        "\"cpu_only_prediction\": {{\"pp_tok_s\": {:.3f}, \"tg_tok_s\": {:.3f}, \"pp_error\": {:.4f}, "
        "\"tg_error\": {:.4f}, \"probed_read_bandwidth_gbs\": {:.3f}, \"tg_tok_s_at_run_bandwidth\": {:.3f}, "
        "\"tg_error_at_run_bandwidth\": {:.4f}}}}}\n",
        vramfit::detail::json_quote(model.info().name), ctx.n_threads(), o.n_prompt, o.n_gen, o.n_depth, o.repeats, pp_tok_s, tg_tok_s, bytes_per_token,
        effective_gbs, read_gbs, fraction, predicted.predicted_pp_tok_s, predicted.predicted_tg_tok_s, pp_error,
        tg_error, probed_gbs, tg_at_run, tg_error_at_run);
    return 0;
  }
  fmt::print("model: {} ({:.1f} MB of weights, {} threads, median of {})\n", model.info().name,
             model.info().weight_bytes / 1e6, ctx.n_threads(), o.repeats);
  const std::string at_depth = o.n_depth > 0 ? fmt::format(" @ d{}", o.n_depth) : "";  // llama-bench's label
  if (o.n_prompt > 0) fmt::print("pp{}{}: {:.2f} tok/s\n", o.n_prompt, at_depth, pp_tok_s);
  if (o.n_gen > 0)
    fmt::print("tg{}{}: {:.2f} tok/s = {:.2f} GB/s of weights ({:.1f} MB per token); read bandwidth {:.2f} GB/s: "
               "{:.0f}% of the bound\n",
               o.n_gen, at_depth, tg_tok_s, effective_gbs, bytes_per_token / 1e6, read_gbs, 100 * fraction);
  fmt::print("planner's CPU-only prediction (plan -ngl 0 --measure): pp {:.2f} tok/s ({:+.0f}%), tg {:.2f} tok/s "
             "({:+.0f}%)\n",
             predicted.predicted_pp_tok_s, 100 * pp_error, predicted.predicted_tg_tok_s, 100 * tg_error);
  if (o.n_gen > 0 && tg_at_run > 0)
    fmt::print("  at the bandwidth the run met ({:.2f} GB/s; probed {:.2f}): tg {:.2f} tok/s ({:+.0f}%)\n", read_gbs,
               probed_gbs, tg_at_run, 100 * tg_error_at_run);
  return 0;
}

}  // namespace vramfit::bench
