#include "chat_options.hpp"

#include <charconv>
#include <functional>

#include "cli.hpp"

namespace vramfit::cli {

const char *const kChatUsage = R"(usage: vramfit chat -m MODEL [--system TEXT] [options]

Talks with a model in its chat template (tokenizer.chat_template; a file without one gets ChatML,
<|im_start|>ROLE\nTEXT<|im_end|>\n, and an answer also ends at the text <|im_end|>). Each line read
is a user message; the answer streams to stdout and ends with a newline; a stats line goes to
stderr. Each turn decodes only what the KV cache does not hold yet; when the context is full the
oldest messages are dropped (the system prompt stays) and stderr says so. Works with piped stdin
(one message per line; EOF ends). /reset forgets the conversation, /exit ends it; Ctrl-C stops the
current answer, and at the prompt ends the program.

  -m, --model FILE         GGUF model
      --system TEXT        system prompt, kept for the whole conversation
  -n, --n-predict N        tokens per answer at most (default -1: until end of generation or a full context)
  -c, --ctx-size N         context size in tokens (default 0: the model's trained length)
  -t, --threads N          CPU threads (default: all cores)
  -b, --batch-size N       prompt tokens per forward pass (default 512)
      --kv-type T          KV cache type: f16 (default), f32, q8_0
      --device D           cuda[:N], sim[:CAPACITY] (host memory posing as a GPU) or cpu
                           (default: cuda when a GPU exists, else cpu)
      --vram-budget SIZE   everything vramfit allocates on the device, e.g. 6GiB
      --strategy S         what goes to the device: fastest (default), layers, manual
  -ngl, --n-gpu-layers N   whole layers on the device (implies --strategy layers unless one is given)
      --cpu-moe            keep every expert group of a MoE model in host memory
      --n-cpu-moe N        keep the expert groups of layers 0..N-1 in host memory
      --temp T             temperature (default 0.8; 0: greedy)
      --top-k K            (default 40; 0: off)
      --top-p P            (default 0.95; 1: off)
      --min-p P            (default 0.05; 0: off)
      --typical P          locally typical sampling (default 1: off)
      --repeat-penalty R   (default 1.0: off)
      --repeat-last-n N    tokens the penalties look back on (default 64)
      --presence-penalty P, --frequency-penalty P   (default 0: off)
      --seed S             random seed (default 4294967295)
)";

namespace {

template <class T>
T parse_number(std::string_view flag, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw BadChatFlag{fmt::format("{}: '{}' is not a valid number", flag, text)};
  return value;
}

int32_t parse_count(std::string_view flag, std::string_view text) {
  const auto n = parse_number<int32_t>(flag, text);
  if (n < 0) throw BadChatFlag{fmt::format("{}: '{}' must not be negative", flag, text)};
  return n;
}

GgmlType parse_kv_type(std::string_view text) {
  if (text == "f16") return GgmlType::F16;
  if (text == "f32") return GgmlType::F32;
  if (text == "q8_0") return GgmlType::Q8_0;
  throw BadChatFlag{fmt::format("--kv-type: '{}' is not one of f16, f32, q8_0", text)};
}

OffloadStrategy parse_strategy(std::string_view text) {
  for (auto s : {OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual})
    if (text == to_string(s)) return s;
  throw BadChatFlag{fmt::format("--strategy: '{}' is not one of fastest, layers, manual", text)};
}

// Model and placement flags; false when `flag` is none of them.
bool parse_model_flag(std::string_view flag, const std::function<std::string_view()> &value, ChatOptions &o,
                      bool &strategy_given) {
  OffloadPolicy &offload = o.model_params.offload;
  if (flag == "-m" || flag == "--model") o.model = value();
  else if (flag == "--device") o.model_params.device = value();
  else if (flag == "--vram-budget") {
    const std::string_view v = value();
    const auto size = parse_size(v);
    if (!size) throw BadChatFlag{fmt::format("--vram-budget: '{}' is not a size (e.g. 6GiB, 800MB)", v)};
    offload.vram_budget_bytes = *size;
  } else if (flag == "--strategy") {
    offload.strategy = parse_strategy(value());
    strategy_given = true;
  } else if (flag == "-ngl" || flag == "--n-gpu-layers") offload.n_gpu_layers = parse_number<int32_t>(flag, value());
  else if (flag == "--cpu-moe") offload.cpu_moe = true;
  else if (flag == "--n-cpu-moe") offload.n_cpu_moe = parse_count(flag, value());
  else if (flag == "-c" || flag == "--ctx-size") o.context.n_ctx = parse_number<int32_t>(flag, value());
  else if (flag == "-t" || flag == "--threads") o.context.n_threads = parse_number<int32_t>(flag, value());
  else if (flag == "-b" || flag == "--batch-size") o.context.n_batch = parse_number<int32_t>(flag, value());
  else if (flag == "--kv-type") o.context.kv_type = parse_kv_type(value());
  else return false;
  return true;
}

// Sampling flags, as llama.cpp names them; false when `flag` is none of them.
bool parse_sampler_flag(std::string_view flag, const std::function<std::string_view()> &value, SamplerParams &s) {
  if (flag == "--temp") s.temperature = parse_number<float>(flag, value());
  else if (flag == "--top-k") s.top_k = parse_number<int32_t>(flag, value());
  else if (flag == "--top-p") s.top_p = parse_number<float>(flag, value());
  else if (flag == "--min-p") s.min_p = parse_number<float>(flag, value());
  else if (flag == "--typical") s.typical_p = parse_number<float>(flag, value());
  else if (flag == "--repeat-penalty") s.repeat_penalty = parse_number<float>(flag, value());
  else if (flag == "--repeat-last-n") s.penalty_last_n = parse_count(flag, value());
  else if (flag == "--presence-penalty") s.presence_penalty = parse_number<float>(flag, value());
  else if (flag == "--frequency-penalty") s.frequency_penalty = parse_number<float>(flag, value());
  else if (flag == "--seed") s.seed = parse_number<uint64_t>(flag, value());
  else return false;
  return true;
}

}  // namespace

ChatOptions parse_chat_options(std::span<const std::string_view> args) {
  ChatOptions o;
  bool strategy_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    const std::function<std::string_view()> value = [&]() -> std::string_view {
      if (i + 1 >= args.size()) throw BadChatFlag{fmt::format("{} needs a value", flag)};
      return args[++i];
    };
    if (parse_model_flag(flag, value, o, strategy_given) || parse_sampler_flag(flag, value, o.sampler)) continue;
    if (flag == "--system") o.system = value();
    else if (flag == "-n" || flag == "--n-predict") o.n_predict = parse_number<int32_t>(flag, value());
    else throw BadChatFlag{fmt::format("unknown option '{}' (see vramfit chat --help)", flag)};
  }
  if (o.model.empty()) throw BadChatFlag{"-m MODEL is required"};
  // As in `vramfit run`: a layer count means whole layers unless a strategy is named.
  if (!strategy_given && o.model_params.offload.n_gpu_layers >= 0)
    o.model_params.offload.strategy = OffloadStrategy::layers;
  // The device's plan reserves what this context will use.
  o.model_params.n_ctx = o.context.n_ctx;
  o.model_params.n_batch = o.context.n_batch;
  o.model_params.kv_type = o.context.kv_type;
  return o;
}

}  // namespace vramfit::cli
