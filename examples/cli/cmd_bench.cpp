// `vramfit bench`: kernel speed against this machine's memory bandwidth (--kernels), or a model's
// prompt and generation speed (-m MODEL, bench/model_bench.cpp).
#include <charconv>
#include <string>

#include "cli.hpp"
#include "kernels.hpp"
#if __has_include("model_bench.hpp")
#include "model_bench.hpp"
#define VRAMFIT_HAVE_MODEL_BENCH 1
#endif

namespace vramfit::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: vramfit bench --kernels [--json] [--threads N] [--repeats N]\n"
    "       vramfit bench -m MODEL [options]   (`vramfit bench -m x --help` lists them)\n"
    "  --kernels      dequantization and matrix-vector GB/s of every weight type on 11008x4096\n"
    "                 matrices, next to this machine's memory read bandwidth (1 and N threads)\n"
    "  --threads N    threads of the multi-threaded columns (default: all cores)\n"
    "  --repeats N    runs per figure, the median is reported (default 5)\n"
    "  --json         one JSON document instead of the table\n";

bool parse_int(std::string_view text, int &out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

int fail_usage(const std::string &message) {
  fmt::print(stderr, "vramfit bench: {} (see `vramfit bench --help`)\n", message);
  return 2;
}

int run_bench(std::span<const std::string_view> args) {
  for (std::string_view a : args)
    if (a == "-m" || a == "--model" || a.starts_with("--model=")) {
#ifdef VRAMFIT_HAVE_MODEL_BENCH
      return bench::run_model_bench(args);
#else
      return fail_usage("the model benchmark is not built yet");
#endif
    }
  bench::KernelBenchOptions options;
  bool kernels = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    } else if (a == "--kernels") {
      kernels = true;
    } else if (a == "--json") {
      options.json = true;
    } else if (a == "--threads" || a == "-t" || a == "--repeats" || a == "-r") {
      int value = 0;
      if (i + 1 >= args.size() || !parse_int(args[i + 1], value) || value < 1)
        return fail_usage(fmt::format("{} needs a positive integer", a));
      (a == "--threads" || a == "-t" ? options.threads : options.repeats) = value;
      ++i;
    } else {
      return fail_usage(fmt::format("unknown option '{}'", a));
    }
  }
  if (!kernels) return fail_usage("say what to benchmark: --kernels or -m MODEL");
  return bench::run_kernel_bench(options);
}

}  // namespace

VRAMFIT_COMMAND("bench", "benchmark the CPU kernels (--kernels) or a model (-m MODEL)", run_bench);

}  // namespace vramfit::cli
