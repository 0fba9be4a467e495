// One model, CPU against GPU, for scripts/gpu-check.sh: prints one JSON object.
//
//   vramfit_gpu_e2e MODEL BUDGET_BYTES N_GPU_LAYERS [N_GEN [DEVICE]]
//
// DEVICE defaults to "cuda"; "sim:SIZE" runs the same comparison on the simulated device (how
// this helper is checked on a machine without a GPU).
// The CPU generates N_GEN greedy tokens after a fixed prompt (logits of every prompt position
// and of every generated token kept). The GPU, under the budget with N_GPU_LAYERS layers on the
// device (-1: as many as fit), is fed the same tokens (teacher forcing) and its logits are compared
// position by position: mean-centred relative RMS, and the argmax wherever the CPU's top-2 margin
// is clear (larger than 4x the RMS difference at that position). It then generates greedily on
// its own, and the two token sequences are compared. Exit status 0 when it ran (the verdict is in
// the JSON: the script judges), 2 on an error (also reported as JSON).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "vramfit/context.hpp"
#include "vramfit/error.hpp"
#include "vramfit/model.hpp"

using namespace vramfit;

namespace {

constexpr const char *kPrompt = "Once upon a time, there was a little";

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

struct Run {
  std::vector<int32_t> tokens;             // prompt + generated
  std::vector<std::vector<float>> logits;  // one row per position
};

// Decodes the prompt as one batch (all logits), then one token at a time: greedy when `forced`
// is null, else the forced tokens.
Run run(Context &ctx, const std::vector<int32_t> &prompt, int n_gen, const std::vector<int32_t> *forced) {
  Run r{prompt, {}};
  ctx.decode(prompt, true);
  for (size_t i = 0; i < prompt.size(); ++i) {
    const auto l = ctx.logits(static_cast<int32_t>(i));
    r.logits.emplace_back(l.begin(), l.end());
  }
  for (int g = 0; g < n_gen; ++g) {
    const int32_t next = forced ? (*forced)[prompt.size() + g] : argmax(r.logits.back());
    r.tokens.push_back(next);
    const auto l = ctx.decode(std::span<const int32_t>(&next, 1));
    r.logits.emplace_back(l.begin(), l.end());
  }
  return r;
}

double mean_centred_rel_rms(const std::vector<float> &a, const std::vector<float> &ref) {
  double ma = 0, mr = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mr += ref[i];
  ma /= a.size(), mr /= ref.size();
  double err = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = (a[i] - ma) - (ref[i] - mr);
    err += d * d;
    norm += (ref[i] - mr) * (ref[i] - mr);
  }
  return norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
}

std::string escape(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\n' ? ' ' : c);
  }
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL BUDGET_BYTES N_GPU_LAYERS [N_GEN [DEVICE]]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const uint64_t budget = std::stoull(argv[2]);
  const int32_t ngl = std::stoi(argv[3]);
  const int n_gen = argc > 4 ? std::stoi(argv[4]) : 16;
  const std::string device_name = argc > 5 ? argv[5] : "cuda";
  std::printf("{\"model\":\"%s\",\"budget_bytes\":%llu,\"n_gpu_layers_asked\":%d,", escape(path).c_str(),
              static_cast<unsigned long long>(budget), ngl);
  const char *phase = "cpu";  // the CPU reference failing means the model is not supported at all
  try {
    ModelParams cpu_params;
    cpu_params.device = "cpu";
    Model cpu_model = Model::load(path, cpu_params);
    const std::vector<int32_t> prompt = cpu_model.tokenize(kPrompt);
    Context cpu_ctx(cpu_model, ContextParams{512, 512, 0, GgmlType::F32});
    const Run ref = run(cpu_ctx, prompt, n_gen, nullptr);

    phase = "gpu";
    ModelParams gpu_params;
    gpu_params.device = device_name;
    gpu_params.n_ctx = 512;
    gpu_params.kv_type = GgmlType::F32;
    gpu_params.offload.vram_budget_bytes = budget;
    if (ngl >= 0) {
      gpu_params.offload.strategy = OffloadStrategy::layers;
      gpu_params.offload.n_gpu_layers = ngl;
    }
    Model gpu_model = Model::load(path, gpu_params);
    Context gpu_ctx(gpu_model, ContextParams{512, 512, 0, GgmlType::F32});
    const Run forced = run(gpu_ctx, prompt, n_gen, &ref.tokens);
    double worst = 0;
    int clear = 0, agree = 0;
    for (size_t i = 0; i < ref.logits.size(); ++i) {
      const std::vector<float> &c = ref.logits[i], &g = forced.logits[i];
      worst = std::max(worst, mean_centred_rel_rms(g, c));
      std::vector<float> sorted(c);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
      double diff = 0;
      for (size_t j = 0; j < c.size(); ++j) diff += (double(g[j]) - c[j]) * (double(g[j]) - c[j]);
      if (sorted[0] - sorted[1] > 4 * std::sqrt(diff / c.size())) {
        ++clear;
        agree += argmax(g) == argmax(c);
      }
    }
    const MemoryReport report = gpu_ctx.memory_report();
    gpu_ctx.clear();
    const Run free_run = run(gpu_ctx, prompt, n_gen, nullptr);
    const Plan *plan = gpu_model.plan();
    const DeviceMemory *device = report.devices.size() > 1 ? &report.devices[1] : nullptr;
    std::printf(
        "\"ok\":true,\"n_layer\":%u,\"n_device_layers\":%u,\"positions\":%zu,\"max_logits_rel_rms\":%.3g,"
        "\"clear_positions\":%d,\"clear_argmax_agree\":%d,\"greedy_tokens_equal\":%s,"
        "\"device_peak_bytes\":%llu,\"device_budget_bytes\":%llu,\"plan_device_total_bytes\":%llu,"
        "\"predicted_tg_tok_s\":%.4g}\n",
        plan ? plan->n_layer : 0u, plan ? plan->n_device_layers : 0u, ref.logits.size(), worst, clear, agree,
        free_run.tokens == ref.tokens ? "true" : "false",
        static_cast<unsigned long long>(device ? device->peak : 0),
        static_cast<unsigned long long>(device ? device->budget : 0),
        static_cast<unsigned long long>(plan ? plan->device_total_bytes() : 0), plan ? plan->predicted_tg_tok_s : 0.0);
    return 0;
  } catch (const std::exception &e) {
    std::printf("\"ok\":false,\"phase\":\"%s\",\"error\":\"%s\"}\n", phase, escape(e.what()).c_str());
    return 2;
  }
}
