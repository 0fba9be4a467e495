// `vramfit run`: generate text from a prompt, streaming it to stdout; timings go to stderr.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "cli.hpp"
#include "vramfit/context.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/model.hpp"
#include "vramfit/sampler.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kUsage = R"(usage: vramfit run -m MODEL -p PROMPT [options]

  -m, --model FILE         GGUF model (llama architecture)
  -p, --prompt TEXT        prompt (BOS is added when the vocab asks for it)
  -n, --n-predict N        tokens to generate (default 128; -1: until the context is full)
  -c, --ctx-size N         context size in tokens (default 0: the model's trained length)
  -t, --threads N          CPU threads (default: all cores)
  -b, --batch-size N       prompt tokens per forward pass (default 512)
      --kv-type T          KV cache type: f16 (default), f32, q8_0
      --device D           cuda[:N], sim[:CAPACITY] (host memory posing as a GPU) or cpu
                           (default: cuda when a GPU exists, else cpu)
      --vram-budget SIZE   everything vramfit allocates on the device, e.g. 6GiB (default: its free
                           memory minus 512 MiB; for sim, its capacity)
      --strategy S         what goes to the device: fastest (default), layers, manual
  -ngl, --n-gpu-layers N   whole layers on the device (implies --strategy layers unless one is given;
                           default -1: as many as fit)
      --cpu-moe            keep every expert group (ffn_*_exps) of a MoE model in host memory
      --n-cpu-moe N        keep the expert groups of layers 0..N-1 in host memory
      --temp T             temperature (default 0.8; 0: greedy)
      --top-k K            (default 40; 0: off)
      --top-p P            (default 0.95; 1: off)
      --min-p P            (default 0.05; 0: off)
      --repeat-penalty R   (default 1.0: off)
      --seed S             random seed (default 4294967295)
      --no-display-prompt  print only the generated text (default: the prompt, then the text)
)";

struct BadFlag {
  std::string message;
};

template <class T>
T parse_number(std::string_view flag, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw BadFlag{fmt::format("{}: '{}' is not a valid number", flag, text)};
  return value;
}

int32_t parse_count(std::string_view flag, std::string_view text) {
  const auto n = parse_number<int32_t>(flag, text);
  if (n < 0) throw BadFlag{fmt::format("{}: '{}' must not be negative", flag, text)};
  return n;
}

GgmlType parse_kv_type(std::string_view text) {
  if (text == "f16") return GgmlType::F16;
  if (text == "f32") return GgmlType::F32;
  if (text == "q8_0") return GgmlType::Q8_0;
  throw BadFlag{fmt::format("--kv-type: '{}' is not one of f16, f32, q8_0", text)};
}

std::optional<OffloadStrategy> parse_strategy(std::string_view text) {
  for (auto s : {OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual})
    if (text == to_string(s)) return s;
  return std::nullopt;
}

struct RunOptions {
  std::string model, prompt;
  ModelParams model_params;
  ContextParams context;
  SamplerParams sampler;
  GenerateParams generate;
  bool display_prompt = true;
};

RunOptions parse(std::span<const std::string_view> args) {
  RunOptions o;
  o.generate.max_tokens = 128;
  bool strategy_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= args.size()) throw BadFlag{fmt::format("{} needs a value", flag)};
      return args[++i];
    };
    if (flag == "-m" || flag == "--model") o.model = value();
    else if (flag == "-p" || flag == "--prompt") o.prompt = value();
    else if (flag == "-n" || flag == "--n-predict") o.generate.max_tokens = parse_number<int32_t>(flag, value());
    else if (flag == "-c" || flag == "--ctx-size") o.context.n_ctx = parse_number<int32_t>(flag, value());
    else if (flag == "-t" || flag == "--threads") o.context.n_threads = parse_number<int32_t>(flag, value());
    else if (flag == "-b" || flag == "--batch-size") o.context.n_batch = parse_number<int32_t>(flag, value());
    else if (flag == "--kv-type") o.context.kv_type = parse_kv_type(value());
    else if (flag == "--device") o.model_params.device = value();
    else if (flag == "--vram-budget") {
      const std::string_view v = value();
      const auto size = parse_size(v);
      if (!size) throw BadFlag{fmt::format("--vram-budget: '{}' is not a size (e.g. 6GiB, 800MB)", v)};
      o.model_params.offload.vram_budget_bytes = *size;
    } else if (flag == "--strategy") {
      const std::string_view v = value();
      const auto s = parse_strategy(v);
      if (!s) throw BadFlag{fmt::format("--strategy: '{}' is not one of fastest, layers, manual", v)};
      o.model_params.offload.strategy = *s;
      strategy_given = true;
    } else if (flag == "-ngl" || flag == "--n-gpu-layers")
      o.model_params.offload.n_gpu_layers = parse_number<int32_t>(flag, value());
    else if (flag == "--cpu-moe") o.model_params.offload.cpu_moe = true;
    else if (flag == "--n-cpu-moe") o.model_params.offload.n_cpu_moe = parse_count(flag, value());
    else if (flag == "--temp") o.sampler.temperature = parse_number<float>(flag, value());
    else if (flag == "--top-k") o.sampler.top_k = parse_number<int32_t>(flag, value());
    else if (flag == "--top-p") o.sampler.top_p = parse_number<float>(flag, value());
    else if (flag == "--min-p") o.sampler.min_p = parse_number<float>(flag, value());
    else if (flag == "--repeat-penalty") o.sampler.repeat_penalty = parse_number<float>(flag, value());
    else if (flag == "--seed") o.sampler.seed = parse_number<uint64_t>(flag, value());
    else if (flag == "--no-display-prompt") o.display_prompt = false;
    else throw BadFlag{fmt::format("unknown option '{}' (see vramfit run --help)", flag)};
  }
  if (o.model.empty()) throw BadFlag{"-m MODEL is required"};
  if (o.prompt.empty()) throw BadFlag{"-p PROMPT is required"};
  // As in `vramfit plan` and llama.cpp: a layer count means whole layers unless a strategy is named.
  if (!strategy_given && o.model_params.offload.n_gpu_layers >= 0)
    o.model_params.offload.strategy = OffloadStrategy::layers;
  // The device's plan reserves what this context will use.
  o.model_params.n_ctx = o.context.n_ctx;
  o.model_params.n_batch = o.context.n_batch;
  o.model_params.kv_type = o.context.kv_type;
  return o;
}

int run(std::span<const std::string_view> args) {
  if (asks_for_help(args)) {
    fmt::print("{}", kUsage);
    return 0;
  }
  RunOptions o;
  try {
    o = parse(args);
  } catch (const BadFlag &bad) {
    fmt::print(stderr, "vramfit run: {}\n", bad.message);
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  const Model model = Model::load(o.model, o.model_params);
  Context ctx(model, o.context);
  Sampler sampler(o.sampler);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // As llama.cpp: the prompt, then the text as it streams; stdout ends its line and is flushed
  // before the stats go to stderr, so a terminal shows them on lines of their own.
  if (o.display_prompt) {
    fmt::print("{}", o.prompt);
    std::fflush(stdout);  // shown while the prompt is decoded
  }
  o.generate.on_piece = [](std::string_view piece) {
    fmt::print("{}", piece);
    std::fflush(stdout);
    return true;
  };
  const GenerateResult r = generate(ctx, sampler, o.prompt, o.generate);
  fmt::print("\n");
  std::fflush(stdout);

  const MemoryReport mem = ctx.memory_report();
  fmt::print(stderr, "load: {:.2f} s ({}, n_ctx {}, {} threads, KV {})\n", load_s, model.info().name, ctx.n_ctx(),
             ctx.n_threads(), type_name(ctx.params().kv_type));
  if (const Plan *plan = model.plan()) {
    fmt::print(stderr, "offload: {}, {} of {} layers entirely on {}\n", plan->chosen_by, plan->n_device_layers,
               plan->n_layer, mem.devices.back().device);
    for (const std::string &note : plan->notes) fmt::print(stderr, "offload: {}\n", note);
  }
  fmt::print(stderr, "{}", mem.to_table());
  fmt::print(stderr, "prompt: {} tokens, {:.2f} tok/s\n", r.stats.n_prompt, r.stats.prompt_tok_s);
  fmt::print(stderr, "generation: {} tokens, {:.2f} tok/s\n", r.stats.n_generated, r.stats.generation_tok_s);
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("run", "generate text from a prompt (streams to stdout)", run);

}  // namespace vramfit::cli
