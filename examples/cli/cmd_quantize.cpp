// `vramfit quantize IN OUT TYPE [--threads N]`: writes IN's weights in a llama.cpp-style mix.
#include <charconv>
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "vramfit/log.hpp"
#include "vramfit/quantize.hpp"

namespace vramfit::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: vramfit quantize IN OUT TYPE [--threads N]\n"
    "  Writes the GGUF model IN to OUT with its weights quantized as llama.cpp's TYPE mix does\n"
    "  (e.g. Q4_K_M: Q4_K, with Q6_K for output.weight and half of the attn_v/ffn_down layers).\n"
    "  1-D tensors stay F32. An already-quantized IN is requantized, which loses quality.\n"
    "  TYPE         F16, Q4_0, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K (or F32)\n"
    "  --threads N  worker threads (default: all hardware threads)\n";

struct Options {
  std::string in, out, mix;
  int n_threads = 0;
};

std::optional<Options> parse_options(std::span<const std::string_view> args) {
  Options options;
  std::vector<std::string_view> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--threads") {
      const std::string_view value = i + 1 < args.size() ? args[++i] : std::string_view();
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), options.n_threads);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || options.n_threads < 1) {
        fmt::print(stderr, "vramfit quantize: error: --threads needs a positive integer, got '{}'\n", value);
        return std::nullopt;
      }
    } else if (args[i].starts_with("-") && args[i] != "-") {
      fmt::print(stderr, "vramfit quantize: error: unknown option '{}'\n{}", args[i], kUsage);
      return std::nullopt;
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.size() != 3) {
    fmt::print(stderr, "vramfit quantize: error: expected IN OUT TYPE, got {} argument(s)\n{}", positional.size(), kUsage);
    return std::nullopt;
  }
  options.in = positional[0];
  options.out = positional[1];
  options.mix = positional[2];
  return options;
}

void print_warning(LogLevel level, const char *message, void *) {
  if (level >= LogLevel::warn) fmt::print(stderr, "warning: {}\n", message);
}

void print_progress(const QuantizeProgress &p) {
  fmt::print(stderr, "[{:>4}/{}] {:<32} {:>5} -> {}\n", p.done, p.total, p.name, type_name(p.from), type_name(p.to));
}

int run_quantize(std::span<const std::string_view> args) {
  if (asks_for_help(args)) {
    fmt::print("{}", kUsage);
    return 0;
  }
  auto options = parse_options(args);
  if (!options) return 2;
  set_log_callback(print_warning, nullptr);
  QuantizeParams params;
  params.mix = options->mix;
  params.n_threads = options->n_threads;
  params.progress = print_progress;
  const QuantizeResult result = quantize_file(options->in, options->out, params);
  set_log_callback(nullptr, nullptr);
  if (result.n_requantized)
    fmt::print(stderr, "warning: {} tensors were requantized from an already-quantized type: quality is lower "
                       "than quantizing the F32/F16 original\n", result.n_requantized);
  fmt::print("{}: {} tensors ({} converted), tensor data {:.2f} MiB -> {:.2f} MiB\n", options->out, result.n_tensors,
             result.n_converted, result.bytes_in / 1048576.0, result.bytes_out / 1048576.0);
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("quantize", "write a GGUF model quantized to a mix such as Q4_K_M", run_quantize);

}  // namespace vramfit::cli
