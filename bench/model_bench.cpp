#include "model_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
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

constexpr const char *kUsage = R"(usage: vramfit bench -m MODEL [options]

Prompt processing (one batch of -p tokens) and generation (-n tokens, one at a time) speed of the
engine; generation is compared with the bound set by this machine's memory read bandwidth. The
memory report (planned and peak bytes per device) goes to stderr.

  -m, --model FILE    GGUF model
  -p N                prompt tokens (default 512; 0: skip)
  -n N                generated tokens (default 128; 0: skip)
  -t, --threads N     CPU threads (default: all cores)
  -r, --repeats N     repeats; the median is reported (default 3)
      --device D      cuda[:N], sim[:CAPACITY] or cpu (default: cuda when a GPU exists, else cpu)
      --vram-budget SIZE  everything vramfit allocates on the device, e.g. 6GiB
      --cpu-moe       keep every expert group (ffn_*_exps) of a MoE model in host memory
      --n-cpu-moe N   keep the expert groups of layers 0..N-1 in host memory
      --json          one JSON object on stdout
)";

struct Options {
  std::string model;
  int32_t n_prompt = 512, n_gen = 128, n_threads = 0, repeats = 3;
  bool json = false;
  ModelParams model_params;
};

struct BadFlag {
  std::string message;
};

int32_t parse_int(std::string_view flag, std::string_view text) {
  int32_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0)
    throw BadFlag{fmt::format("{}: '{}' is not a non-negative integer", flag, text)};
  return v;
}

Options parse(std::span<const std::string_view> args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    std::optional<std::string_view> inline_value;  // --flag=value
    if (const size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string_view::npos) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw BadFlag{fmt::format("{} needs a value", flag)};
      return args[++i];
    };
    if (flag == "-m" || flag == "--model") o.model = value();
    else if (flag == "-p") o.n_prompt = parse_int(flag, value());
    else if (flag == "-n") o.n_gen = parse_int(flag, value());
    else if (flag == "-t" || flag == "--threads") o.n_threads = parse_int(flag, value());
    else if (flag == "-r" || flag == "--repeats") o.repeats = std::max(1, parse_int(flag, value()));
    else if (flag == "--json") o.json = true;
    else if (flag == "--device") o.model_params.device = value();
    else if (flag == "--cpu-moe") o.model_params.offload.cpu_moe = true;
    else if (flag == "--n-cpu-moe") o.model_params.offload.n_cpu_moe = parse_int(flag, value());
    else if (flag == "--vram-budget") {
      const std::string_view v = value();
      const auto size = vramfit::parse_size(v);
      if (!size) throw BadFlag{fmt::format("--vram-budget: '{}' is not a size (e.g. 6GiB, 800MB)", v)};
      o.model_params.offload.vram_budget_bytes = *size;
    }
    else throw BadFlag{fmt::format("unknown option '{}' (see vramfit bench --help)", flag)};
  }
  if (o.model.empty()) throw BadFlag{"-m MODEL is required"};
  return o;
}

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

}  // namespace

int run_model_bench(std::span<const std::string_view> args) {
  for (auto a : args)
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
  Options o;
  try {
    o = parse(args);
  } catch (const BadFlag &bad) {
    fmt::print(stderr, "vramfit bench: {}\n", bad.message);
    return 2;
  }
  ContextParams params;
  params.n_ctx = std::max(o.n_prompt + o.n_gen, 16);
  params.n_batch = std::max(o.n_prompt, 1);
  params.n_threads = o.n_threads;
  o.model_params.n_ctx = params.n_ctx;  // the device's plan reserves this context
  o.model_params.n_batch = params.n_batch;
  const Model model = Model::load(o.model, o.model_params);
  Context ctx(model, params);
  const std::vector<int32_t> prompt = bench_tokens(model, o.n_prompt);
  const std::vector<int32_t> gen = bench_tokens(model, std::max(o.n_gen, 1));

  // Warm-up: pages the weights in from the file and grows every buffer once.
  ctx.decode(std::span(gen).first(1));
  ctx.clear();

  std::vector<double> pp, tg;
  for (int32_t r = 0; r < o.repeats; ++r) {
    if (o.n_prompt > 0) {
      ctx.clear();
      pp.push_back(o.n_prompt / seconds([&] { ctx.decode(prompt); }));
    }
    if (o.n_gen > 0) {
      ctx.clear();
      tg.push_back(o.n_gen / seconds([&] {
                     for (int32_t i = 0; i < o.n_gen; ++i) ctx.decode(std::span(gen).subspan(static_cast<size_t>(i), 1));
                   }));
    }
  }
  const double pp_tok_s = pp.empty() ? 0 : median(pp), tg_tok_s = tg.empty() ? 0 : median(tg);
  // Weight bytes one generated token reads: every dense matrix once, k of n_expert experts, one
  // row of the embedding table (unless it doubles as the output projection).
  const uint64_t bytes_per_token = model.info().active_weight_bytes;
  // The bound is what the same number of threads can stream from memory.
  const double read_gbs = measure_read_bandwidth(ctx.n_threads()).all_threads_gbs;
  const double effective_gbs = tg_tok_s * static_cast<double>(bytes_per_token) / 1e9;
  const double fraction = read_gbs > 0 ? effective_gbs / read_gbs : 0;
  fmt::print(stderr, "{}", ctx.memory_report().to_table());

  if (o.json) {
    fmt::print(
        "{{\"model\": {}, \"n_threads\": {}, \"n_prompt\": {}, \"n_gen\": {}, \"repeats\": {}, "
        "\"pp_tok_s\": {:.3f}, \"tg_tok_s\": {:.3f}, \"weight_bytes_per_token\": {}, "
        "\"tg_effective_gbs\": {:.3f}, \"read_bandwidth_gbs\": {:.3f}, \"tg_bandwidth_fraction\": {:.4f}}}\n",
        vramfit::detail::json_quote(model.info().name), ctx.n_threads(), o.n_prompt, o.n_gen, o.repeats, pp_tok_s, tg_tok_s, bytes_per_token,
        effective_gbs, read_gbs, fraction);
    return 0;
  }
  fmt::print("model: {} ({:.1f} MB of weights, {} threads, median of {})\n", model.info().name,
             model.info().weight_bytes / 1e6, ctx.n_threads(), o.repeats);
  if (o.n_prompt > 0) fmt::print("pp{}: {:.2f} tok/s\n", o.n_prompt, pp_tok_s);
  if (o.n_gen > 0)
    fmt::print("tg{}: {:.2f} tok/s = {:.2f} GB/s of weights ({:.1f} MB per token); read bandwidth {:.2f} GB/s: "
               "{:.0f}% of the bound\n",
               o.n_gen, tg_tok_s, effective_gbs, bytes_per_token / 1e6, read_gbs, 100 * fraction);
  return 0;
}

}  // namespace vramfit::bench
