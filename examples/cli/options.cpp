#include "options.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <random>
#include <stdexcept>
#include <thread>

#include "cli.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/log.hpp"

namespace vramfit::cli {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void refuse(std::string message) { throw UsageError{std::move(message)}; }

constexpr const char *kSizeForms = "e.g. 6GiB, 11.5GB, \"800 MiB\", 1073741824 (bytes)";

GgmlType parse_kv_type(std::string_view flag, std::string_view text) {
  const std::string t = lower(text);
  if (t == "f16") return GgmlType::F16;
  if (t == "f32") return GgmlType::F32;
  if (t == "q8_0") return GgmlType::Q8_0;
  refuse(fmt::format("{}: '{}' is not one of f16, f32, q8_0", flag, text));
}

OffloadStrategy parse_strategy(std::string_view flag, std::string_view text) {
  for (auto s : {OffloadStrategy::fastest, OffloadStrategy::layers, OffloadStrategy::manual})
    if (lower(text) == to_string(s)) return s;
  refuse(fmt::format("{}: '{}' is not one of fastest, layers, manual", flag, text));
}

KvPlacement parse_kv_placement(std::string_view flag, std::string_view text) {
  const std::string t = lower(text);
  if (t == "follow") return KvPlacement::follow_layer;
  if (t == "host" || t == "cpu") return KvPlacement::host;
  if (t == "device" || t == "gpu") return KvPlacement::device;
  refuse(fmt::format("{}: '{}' is not one of follow, host, device", flag, text));
}

// "REGEX=gpu|cpu" (also llama.cpp's CPU / CUDA0 spellings); the last '=' separates.
OffloadRule parse_rule(std::string_view flag, std::string_view text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0)
    refuse(fmt::format("{}: '{}' is not REGEX=gpu or REGEX=cpu (e.g. -ot \"ffn_.*_exps=cpu\")", flag, text));
  const std::string where = lower(text.substr(eq + 1));
  OffloadRule rule{std::string(text.substr(0, eq)), true};
  if (where == "gpu" || where == "device" || where.starts_with("cuda")) return rule;
  if (where == "cpu" || where == "host") {
    rule.to_device = false;
    return rule;
  }
  refuse(fmt::format("{}: '{}' after '=' is not gpu or cpu (CUDA0 and CPU work too)", flag, where));
}

// Device names in any case, and llama.cpp's "CUDA0" for "cuda:0".
std::string parse_device(std::string_view flag, std::string_view text) {
  const std::string t = lower(text);
  if (t == "auto" || t == "cpu" || t == "cuda" || t == "sim") return t;
  if (t.starts_with("cuda")) {
    std::string_view index = std::string_view(t).substr(t[4] == ':' ? 5 : 4);
    if (!index.empty() && std::ranges::all_of(index, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      return fmt::format("cuda:{}", index);
  }
  if (t.starts_with("sim:"))
    return fmt::format("sim:{}", parse_size_flag(fmt::format("{} sim:CAPACITY", flag), text.substr(4)));
  refuse(fmt::format("{}: '{}' is not one of auto, cpu, cuda, cuda:N (or CUDA0), sim:CAPACITY (e.g. sim:4GiB)",
                     flag, text));
}

std::string names_text(const std::vector<std::string> &names) {
  std::string out;
  for (const auto &n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

// ---- value parsers ----

int64_t parse_integer(std::string_view flag, std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    refuse(fmt::format("{}: '{}' is not a whole number", flag, text));
  if (value < min && max >= INT32_MAX) refuse(fmt::format("{}: {} is below the least value, {}", flag, value, min));
  if (value < min || value > max) refuse(fmt::format("{}: {} is outside {}..{}", flag, value, min, max));
  return value;
}

double parse_real(std::string_view flag, std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    refuse(fmt::format("{}: '{}' is not a number", flag, text));
  return value;
}

uint64_t parse_size_flag(std::string_view flag, std::string_view text) {
  const auto size = parse_size(text);
  // Without a unit a number is bytes: "11.5" (no such count) or "4096" for a budget is surely a
  // forgotten unit, so below 1 MiB it is refused rather than planned.
  const bool has_unit = std::ranges::any_of(text, [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
  const bool has_digit = std::ranges::any_of(text, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (!has_unit && size && *size < (1u << 20))
    refuse(fmt::format("{}: {} bytes is below 1 MiB, surely a forgotten unit: write one ({})", flag, text,
                       kSizeForms));
  if (!has_unit && !size && has_digit)
    refuse(fmt::format("{}: '{}' has no unit, and a byte count is a whole number: write a unit ({})", flag, text,
                       kSizeForms));
  if (!size) refuse(fmt::format("{}: '{}' is not a size ({})", flag, text, kSizeForms));
  return *size;
}

int32_t parse_threads(std::string_view flag, std::string_view text) {
  const auto n = static_cast<int32_t>(parse_integer(flag, text, 0, INT32_MAX));
  const auto hardware = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  if (n > hardware) {
    fmt::print(stderr, "warning: {} {}: this machine has {} hardware threads; using {}\n", flag, n, hardware,
               hardware);
    return hardware;
  }
  return n;
}

// ---- the parser ----

CommonOptions::CommonOptions() { generate.max_tokens = kDefaultPredict; }

OptionParser::OptionParser(std::string command, std::string usage, std::string description)
    : command_(std::move(command)), usage_(std::move(usage)), description_(std::move(description)),
      heading_(command_ + " options") {}

void OptionParser::option(std::initializer_list<const char *> names, std::string metavar, std::string help,
                          std::function<void(std::string_view)> handler) {
  // Two meanings for one flag would make the second silently dead: say so the first time it runs.
  for (const char *name : names)
    if (find(name)) throw std::logic_error(fmt::format("vramfit {}: {} is registered twice", command_, name));
  flags_.push_back({{names.begin(), names.end()}, std::move(metavar), std::move(help), heading_, std::move(handler)});
}

void OptionParser::flag(std::initializer_list<const char *> names, std::string help, std::function<void()> handler) {
  option(names, "", std::move(help), [handler = std::move(handler)](std::string_view) { handler(); });
}

void OptionParser::positional(std::string metavar, std::function<void(std::string_view)> handler) {
  positional_metavar_ = std::move(metavar);
  positional_ = std::move(handler);
}

void OptionParser::finally(std::function<void()> check) { checks_.push_back(std::move(check)); }

void OptionParser::group(std::string heading) { heading_ = std::move(heading); }

const OptionParser::Flag *OptionParser::find(std::string_view name) const {
  for (const Flag &f : flags_)
    if (std::ranges::find(f.names, name) != f.names.end()) return &f;
  return nullptr;
}

void OptionParser::parse_or_throw(std::span<const std::string_view> args) {
  bool only_positionals = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    const bool looks_like_flag = arg.size() > 1 && arg[0] == '-' && !only_positionals;
    if (arg == "--" && !only_positionals) {
      only_positionals = true;
      continue;
    }
    if (!looks_like_flag) {
      if (!positional_) refuse(fmt::format("unexpected argument '{}'", arg));
      positional_(arg);
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    const Flag *f = find(name);
    if (!f && arg.find('=') != std::string_view::npos) {  // --opt=value
      name = arg.substr(0, arg.find('='));
      value = arg.substr(arg.find('=') + 1);
      f = find(name);
    }
    if (!f) refuse(fmt::format("unknown option '{}'", name));
    if (f->metavar.empty()) {
      if (value) refuse(fmt::format("{} takes no value (got '{}')", name, *value));
    } else if (!value) {
      if (i + 1 >= args.size()) refuse(fmt::format("{} needs a value: {} {}", name, name, f->metavar));
      value = args[++i];
    }
    f->handler(value.value_or(""));
  }
  for (const auto &check : checks_) check();
}

std::optional<int> OptionParser::parse(std::span<const std::string_view> args) {
  for (std::string_view a : args) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") {
      print_help(stdout);
      return 0;
    }
  }
  try {
    parse_or_throw(args);
  } catch (const UsageError &e) {
    fmt::print(stderr, "vramfit {}: error: {} (see `vramfit {} --help`)\n", command_, e.message, command_);
    return 2;
  }
  return std::nullopt;
}

void OptionParser::print_help(std::FILE *out) const {
  fmt::print(out, "usage: vramfit {} {}\n", command_, usage_);
  if (!description_.empty()) fmt::print(out, "\n{}\n", description_);
  std::string heading;
  for (const Flag &f : flags_) {
    if (f.heading != heading) {
      heading = f.heading;
      fmt::print(out, "\n{}:\n", heading);
    }
    std::string left = "  " + names_text(f.names) + (f.metavar.empty() ? "" : " " + f.metavar);
    // Help lines after the first are indented under the first.
    std::string help;
    for (char c : f.help) help += c == '\n' ? std::string("\n") + std::string(27, ' ') : std::string(1, c);
    if (left.size() > 25) fmt::print(out, "{}\n{:27}{}\n", left, "", help);
    else fmt::print(out, "{:<27}{}\n", left, help);
  }
}

// ---- the shared groups ----

void add_model_options(OptionParser &p, CommonOptions &o) {
  auto strategy_given = std::make_shared<bool>(false), ngl_given = std::make_shared<bool>(false);
  OffloadPolicy &policy = o.model.offload;
  p.group("model and placement");
  p.option({"-m", "--model"}, "FILE", "GGUF model file", [&o](std::string_view v) {
    if (v.empty()) refuse("-m: the model path is empty");
    o.model_path = std::string(v);
  });
  p.option({"--device"}, "D",
           "cpu, cuda[:N] (or CUDA0), sim:CAPACITY (host memory posing as a GPU,\n"
           "e.g. sim:4GiB), auto (default: cuda when a GPU exists, else cpu)",
           [&o](std::string_view v) { o.model.device = parse_device("--device", v); });
  p.option({"--vram-budget"}, "SIZE",
           "hard cap on everything vramfit allocates on the device: 6GiB, 11.5GB,\n"
           "\"800 MiB\" (default: its free memory minus --reserve; sim: its capacity)",
           [&policy](std::string_view v) { policy.vram_budget_bytes = parse_size_flag("--vram-budget", v); });
  p.option({"--reserve"}, "SIZE", "device memory kept free when no budget is given (default 512MiB)",
           [&policy](std::string_view v) { policy.reserve_bytes = parse_size_flag("--reserve", v); });
  p.option({"--strategy"}, "S",
           "what goes to the device: fastest (default), layers (whole layers, as\n"
           "-ngl), manual (-ot rules, then -ngl)",
           [&policy, strategy_given](std::string_view v) {
             policy.strategy = parse_strategy("--strategy", v);
             *strategy_given = true;
           });
  p.option({"-ngl", "--n-gpu-layers"}, "N",
           "whole layers on the device, front to back; N > layer count also moves the\n"
           "output head (implies --strategy layers; default: as many as fit)",
           [&policy, ngl_given](std::string_view v) {
             policy.n_gpu_layers = static_cast<int32_t>(parse_integer("-ngl", v, -1, INT32_MAX));
             *ngl_given = policy.n_gpu_layers >= 0;
           });
  p.option({"-ot", "--override-tensor"}, "REGEX=gpu|cpu",
           "tensors whose name matches go there; first match wins; repeatable\n"
           "(implies --strategy manual); a rule places the whole block of a tensor\n"
           "it names",
           [&policy](std::string_view v) { policy.rules.push_back(parse_rule("-ot", v)); });
  p.flag({"--cpu-moe"}, "keep every expert group (ffn_*_exps) of a MoE model in host memory",
         [&policy] { policy.cpu_moe = true; });
  p.option({"--n-cpu-moe"}, "N", "keep the expert groups of layers 0..N-1 in host memory",
           [&policy](std::string_view v) {
             policy.n_cpu_moe = static_cast<int32_t>(parse_integer("--n-cpu-moe", v, 0, INT32_MAX));
           });
  p.option({"--kv-placement"}, "P", "KV cache: follow (default: with its layer), host, device",
           [&policy](std::string_view v) { policy.kv_placement = parse_kv_placement("--kv-placement", v); });
  p.option({"--min-ctx"}, "N",
           fmt::format("let the plan shrink the context down to N tokens to fit the budget\n"
                       "(default: {} when -c is not given, else no shrinking)", kDefaultMinCtx),
           [&o](std::string_view v) {
             o.model.offload.min_ctx = static_cast<uint32_t>(parse_integer("--min-ctx", v, 1, INT32_MAX));
             o.min_ctx_given = true;
           });
  p.finally([&o, strategy_given, ngl_given] {
    OffloadPolicy &pol = o.model.offload;
    if (o.model_path.empty()) refuse("no model: pass -m FILE");
    // As llama.cpp: a layer count means whole layers, rules mean manual, unless a strategy is named.
    if (!*strategy_given && !pol.rules.empty()) pol.strategy = OffloadStrategy::manual;
    else if (!*strategy_given && *ngl_given) pol.strategy = OffloadStrategy::layers;
    if (pol.strategy == OffloadStrategy::fastest && (*ngl_given || !pol.rules.empty()))
      refuse("-ngl and -ot take effect with --strategy layers or manual, not fastest");
    if (pol.strategy == OffloadStrategy::layers && !pol.rules.empty()) refuse("-ot needs --strategy manual");
  });
}

void add_context_options(OptionParser &p, CommonOptions &o) {
  p.group("context");
  p.option({"-c", "--ctx-size"}, "N",
           fmt::format("tokens the KV cache holds (default {}, or the model's trained length\n"
                       "when smaller; with a device it may shrink to --min-ctx to fit)", kDefaultCtx),
           [&o](std::string_view v) {
             o.context.n_ctx = static_cast<int32_t>(parse_integer("-c", v, 1, INT32_MAX));
             o.ctx_given = true;
           });
  p.option({"-b", "--batch-size"}, "N", "prompt tokens per forward pass (default 512)", [&o](std::string_view v) {
    o.context.n_batch = static_cast<int32_t>(parse_integer("-b", v, 1, INT32_MAX));
    o.batch_given = true;
  });
  p.option({"-t", "--threads"}, "N", "CPU threads (default 0: all cores; at most the hardware threads)",
           [&o](std::string_view v) { o.context.n_threads = parse_threads("-t", v); });
  p.option({"--kv-type"}, "T", "KV cache type: f16 (default), f32, q8_0",
           [&o](std::string_view v) { o.context.kv_type = parse_kv_type("--kv-type", v); });
  p.finally([&o] {
    if (o.min_ctx_given && o.ctx_given && o.model.offload.min_ctx > static_cast<uint32_t>(o.context.n_ctx))
      refuse(fmt::format("--min-ctx {} is larger than -c {}", o.model.offload.min_ctx, o.context.n_ctx));
  });
}

void add_sampling_options(OptionParser &p, CommonOptions &o) {
  SamplerParams &s = o.sampler;
  p.group("sampling");
  p.option({"-n", "--n-predict"}, "N",
           fmt::format("tokens to generate (default {}; -1: until the context is full)", kDefaultPredict),
           [&o](std::string_view v) {
             o.generate.max_tokens = static_cast<int32_t>(parse_integer("-n", v, -1, INT32_MAX));
           });
  p.option({"--temp"}, "T", "temperature (default 0.8; 0: greedy)", [&s](std::string_view v) {
    s.temperature = static_cast<float>(parse_real("--temp", v));
  });
  p.option({"--top-k"}, "K", "keep the K most likely tokens (default 40; 0: off)", [&s](std::string_view v) {
    s.top_k = static_cast<int32_t>(parse_integer("--top-k", v, 0, INT32_MAX));
  });
  p.option({"--top-p"}, "P", "nucleus: smallest set with probability P (default 0.95; 1: off)",
           [&s](std::string_view v) {
             s.top_p = static_cast<float>(parse_real("--top-p", v));
             if (!(s.top_p > 0 && s.top_p <= 1)) refuse(fmt::format("--top-p: {} is outside (0, 1]", v));
           });
  p.option({"--min-p"}, "P", "drop tokens below P x the best one's probability (default 0.05; 0: off)",
           [&s](std::string_view v) {
             s.min_p = static_cast<float>(parse_real("--min-p", v));
             if (!(s.min_p >= 0 && s.min_p <= 1)) refuse(fmt::format("--min-p: {} is outside [0, 1]", v));
           });
  p.option({"--repeat-penalty"}, "R", "penalize the last 64 tokens (default 1.0: off)", [&s](std::string_view v) {
    s.repeat_penalty = static_cast<float>(parse_real("--repeat-penalty", v));
    if (!(s.repeat_penalty > 0)) refuse(fmt::format("--repeat-penalty: {} must be above 0", v));
  });
  o.seed_is_random = true;
  p.option({"--seed"}, "S",
           "random seed (default -1: a random one, printed so the run can be\n"
           "repeated; 4294967295 also means random, as in llama.cpp)",
           [&o](std::string_view v) {
             const int64_t seed = parse_integer("--seed", v, -1, INT64_MAX);
             o.seed_is_random = seed == -1 || seed == 0xFFFFFFFF;
             if (!o.seed_is_random) o.sampler.seed = static_cast<uint64_t>(seed);
           });
  p.finally([&o] {
    if (o.seed_is_random) o.sampler.seed = std::random_device{}() & 0x7FFFFFFF;
  });
}

void add_prompt_options(OptionParser &p, CommonOptions &o, bool required) {
  p.group("prompt");
  p.option({"-p", "--prompt"}, "TEXT", "the prompt (BOS is added when the vocabulary asks for it)",
           [&o](std::string_view v) {
             if (o.prompt) refuse("give the prompt once: -p TEXT or -f FILE");
             o.prompt = std::string(v);
           });
  p.option({"-f", "--file"}, "FILE", "read the prompt from FILE (bytes as they are)", [&o](std::string_view v) {
    if (o.prompt) refuse("give the prompt once: -p TEXT or -f FILE");
    o.prompt_file = std::string(v);
    o.prompt = read_text_file_or_throw("-f", o.prompt_file);
  });
  if (required)
    p.finally([&o] {
      if (!o.prompt) refuse("no prompt: pass -p TEXT or -f FILE");
    });
}

}  // namespace vramfit::cli

namespace vramfit::cli {
namespace {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

// Files this big take seconds to map and upload: worth a bar on a terminal.
constexpr uint64_t kProgressBarBytes = 256ull << 20;

// Redrawn only when the percentage changes (a load reports after every tensor).
void draw_load_bar(float fraction, int &last_percent) {
  constexpr int kWidth = 40;
  const int percent = static_cast<int>(fraction * 100 + 0.5f);
  if (percent == last_percent) return;
  last_percent = percent;
  const int filled = static_cast<int>(fraction * kWidth + 0.5f);
  fmt::print(stderr, "\rloading [{}{}] {:3.0f}%", std::string(filled, '#'), std::string(kWidth - filled, ' '),
             fraction * 100);
  if (fraction >= 1.0f) fmt::print(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace

int32_t default_ctx(int32_t n_ctx_train) { return n_ctx_train > 0 ? std::min(kDefaultCtx, n_ctx_train) : kDefaultCtx; }

// -c, or the shared default: 4096, or the trained length when smaller. A defaulted context may
// shrink to fit a device (min_ctx); an explicit one only with --min-ctx.
void resolve_context(CommonOptions &o, int32_t n_ctx_train) {
  if (o.ctx_given) {
    if (n_ctx_train > 0 && o.context.n_ctx > n_ctx_train)
      fmt::print(stderr,
                 "warning: -c {} exceeds the {} tokens {} was trained on: text past that point is likely "
                 "to be poor\n",
                 o.context.n_ctx, n_ctx_train, o.model_path);
  } else {
    o.context.n_ctx = default_ctx(n_ctx_train);
    if (!o.min_ctx_given)
      o.model.offload.min_ctx = std::min(kDefaultMinCtx, static_cast<uint32_t>(o.context.n_ctx));
  }
  o.model.n_ctx = o.context.n_ctx;
  o.model.n_batch = o.context.n_batch;
  o.model.kv_type = o.context.kv_type;
}

std::string read_text_file_or_throw(std::string_view flag, const std::string &path) {
  std::string error;
  auto text = read_text_file(path, &error);
  if (!text) refuse(fmt::format("{}: cannot read '{}': {}", flag, path, error));
  return *text;
}

Model load_model(CommonOptions &o) {
  resolve_context(o, static_cast<int32_t>(ModelShape::from_gguf(gguf::File::open(o.model_path)).n_ctx_train));
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(o.model_path, ec);
  if (!ec && file_bytes >= kProgressBarBytes && stderr_is_terminal())
    o.model.progress = [last_percent = -1](float fraction) mutable {
      draw_load_bar(fraction, last_percent);
      return true;
    };
  Model model = Model::load(o.model_path, o.model);
  o.model.progress = nullptr;
  // The context the plan sized the device for (shrunk to fit, maybe: its notes say so, and
  // print_setup prints them); the CPU takes -c as it is.
  if (const Plan *plan = model.plan()) o.context.n_ctx = static_cast<int32_t>(plan->n_ctx);
  return model;
}

void print_setup(const Model &model, const Context &ctx, const CommonOptions &o) {
  fmt::print(stderr, "model: {} ({}, {} layers), n_ctx {} (trained {}), {} threads, KV {}, seed {}{}\n",
             model.info().name, model.info().architecture, model.info().n_layer, ctx.n_ctx(),
             model.info().n_ctx_train, ctx.n_threads(), type_name(ctx.params().kv_type), o.sampler.seed,
             o.seed_is_random ? " (random: --seed " + std::to_string(o.sampler.seed) + " repeats this run)" : "");
  const MemoryReport mem = ctx.memory_report();
  if (const Plan *plan = model.plan()) {
    fmt::print(stderr, "offload: {}, {} of {} layers entirely on {}\n", plan->chosen_by, plan->n_device_layers,
               plan->n_layer, mem.devices.back().device);
    for (const std::string &note : plan->notes) fmt::print(stderr, "offload: {}\n", note);
  }
  fmt::print(stderr, "{}", mem.to_table());
  fmt::print(stderr,
             "(peak: the most bytes allocated at once; host weights are mapped from the file, not allocated, "
             "so the host's peak leaves them out)\n");
}

}  // namespace vramfit::cli
