// `vramfit quantize IN OUT TYPE [-t N]`: writes IN's weights in a llama.cpp-style mix.
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "options.hpp"
#include "vramfit/log.hpp"
#include "vramfit/quantize.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kDescription =
    "Writes the GGUF model IN to OUT with its weights quantized as llama.cpp's TYPE mix does\n"
    "(e.g. Q4_K_M: Q4_K, with Q6_K for output.weight and half of the attn_v/ffn_down layers).\n"
    "1-D tensors stay F32. An already-quantized IN is requantized, which loses quality.\n"
    "TYPE: F16, Q4_0, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K (or F32).";

struct Options {
  std::vector<std::string> positional;  // IN OUT TYPE
  int n_threads = 0;
};

void print_warning(LogLevel level, const char *message, void *) {
  if (level >= LogLevel::warn) fmt::print(stderr, "warning: {}\n", message);
}

void print_progress(const QuantizeProgress &p) {
  fmt::print(stderr, "[{:>4}/{}] {:<32} {:>5} -> {}\n", p.done, p.total, p.name, type_name(p.from), type_name(p.to));
}

int run_quantize(std::span<const std::string_view> args) {
  Options options;
  OptionParser parser("quantize", "IN OUT TYPE [-t N]", kDescription);
  parser.option({"-t", "--threads"}, "N", "worker threads (default 0: all cores; the output does not depend on it)",
                [&options](std::string_view v) { options.n_threads = parse_threads("-t", v); });
  parser.positional("IN OUT TYPE", [&options](std::string_view v) { options.positional.emplace_back(v); });
  parser.finally([&options] {
    if (options.positional.size() != 3)
      throw UsageError{fmt::format("expected IN OUT TYPE, got {} argument(s)", options.positional.size())};
  });
  if (auto exit_code = parser.parse(args)) return *exit_code;
  set_log_callback(print_warning, nullptr);
  QuantizeParams params;
  params.mix = options.positional[2];
  params.n_threads = options.n_threads;
  params.progress = print_progress;
  const QuantizeResult result = quantize_file(options.positional[0], options.positional[1], params);
  set_log_callback(nullptr, nullptr);
  fmt::print("{}: {} tensors ({} converted, {} of them requantized), tensor data {:.2f} MiB -> {:.2f} MiB\n",
             options.positional[1], result.n_tensors, result.n_converted, result.n_requantized,
             result.bytes_in / 1048576.0, result.bytes_out / 1048576.0);
  return 0;
}

}  // namespace

VRAMFIT_COMMAND("quantize", "write a GGUF model quantized to a mix such as Q4_K_M", run_quantize);

}  // namespace vramfit::cli
