// `vramfit bench`: kernel speed against this machine's memory bandwidth (--kernels), or a model's
// prompt and generation speed (-m MODEL, bench/model_bench.cpp) with run's placement flags.
#include <algorithm>
#include <string>

#include "cli.hpp"
#include "kernels.hpp"
#include "model_bench.hpp"
#include "options.hpp"

namespace vramfit::cli {
namespace {

constexpr const char *kDescription =
    "With -m MODEL: prompt processing (one batch of -p tokens) and generation (-n tokens, one at\n"
    "a time) speed of the engine, placed as `vramfit run` places it; generation is compared with\n"
    "the bound set by this machine's memory read bandwidth, sampled by as many threads between\n"
    "the tokens of each generation run. The memory report goes to stderr. Each figure is the\n"
    "median of -r repeats.\n"
    "With --kernels: dequantization and matrix-vector GB/s of every weight type on 11008x4096\n"
    "matrices, next to this machine's memory read bandwidth (1 and -t threads).";

// `vramfit bench --kernels [-t N] [-r N] [--json]`
int run_kernels(std::span<const std::string_view> args) {
  bench::KernelBenchOptions options;
  OptionParser parser("bench", "--kernels [-t N] [-r N] [--json]", kDescription);
  parser.flag({"--kernels"}, "benchmark the CPU kernels", [] {});
  parser.option({"-t", "--threads"}, "N", "threads of the multi-threaded columns (default 0: all cores)",
                [&options](std::string_view v) { options.threads = parse_threads("-t", v); });
  parser.option({"-r", "--repeats"}, "N", "runs per figure, the median is reported (default 5)",
                [&options](std::string_view v) {
                  options.repeats = static_cast<int>(parse_integer("-r", v, 1, 1000));
                });
  parser.flag({"--json"}, "one JSON document instead of the table", [&options] { options.json = true; });
  if (auto exit_code = parser.parse(args)) return *exit_code;
  return bench::run_kernel_bench(options);
}

int run_bench(std::span<const std::string_view> args) {
  if (std::ranges::find(args, "--kernels") != args.end()) return run_kernels(args);
  CommonOptions o;
  bench::ModelBenchOptions bench;
  OptionParser parser("bench", "-m MODEL [-p N] [-n N] [-r N] [options]  |  vramfit bench --kernels", kDescription);
  add_model_options(parser, o);
  add_context_options(parser, o);
  parser.group("bench options");
  parser.option({"-p", "--n-prompt"}, "N", "prompt tokens, as llama-bench (default 512; 0: skip)",
                [&bench](std::string_view v) {
                  bench.n_prompt = static_cast<int32_t>(parse_integer("-p", v, 0, INT32_MAX / 2));
                });
  parser.option({"-n", "--n-gen"}, "N", "generated tokens, as llama-bench (default 128; 0: skip)",
                [&bench](std::string_view v) {
                  bench.n_gen = static_cast<int32_t>(parse_integer("-n", v, 0, INT32_MAX / 2));
                });
  parser.option({"-d", "--n-depth"}, "N",
                "tokens already in the context when each test starts, as llama-bench (default 0): generation "
                "at a long context",
                [&bench](std::string_view v) {
                  bench.n_depth = static_cast<int32_t>(parse_integer("-d", v, 0, INT32_MAX / 4));
                });
  parser.option({"-r", "--repeats"}, "N", "repeats; the median is reported (default 3)", [&bench](std::string_view v) {
    bench.repeats = static_cast<int32_t>(parse_integer("-r", v, 1, 1000));
  });
  parser.flag({"--json"}, "one JSON object on stdout", [&bench] { bench.json = true; });
  parser.flag({"--kernels"}, "benchmark the CPU kernels instead (-t, -r, --json apply)", [] {});
  parser.finally([&] {
    // The context holds the depth, the prompt and the generated tokens; the prompt is one batch
    // unless -b (and the depth goes in batches of that size, at most 512 without -b).
    const int32_t needed = std::max(bench.n_depth + bench.n_prompt + bench.n_gen, 16);
    if (!o.ctx_given) o.context.n_ctx = needed;
    else if (o.context.n_ctx < needed)
      throw UsageError{fmt::format("-c {} cannot hold {}-p {} + -n {} tokens", o.context.n_ctx,
                                   bench.n_depth > 0 ? fmt::format("-d {} + ", bench.n_depth) : "", bench.n_prompt,
                                   bench.n_gen)};
    if (!o.batch_given) o.context.n_batch = std::max({bench.n_prompt, std::min(bench.n_depth, 512), 1});
  });
  if (auto exit_code = parser.parse(args)) return *exit_code;
  bench.model_path = o.model_path;
  bench.model = o.model;
  bench.context = o.context;
  return bench::run_model_bench(bench);
}

}  // namespace

VRAMFIT_COMMAND("bench", "benchmark the CPU kernels (--kernels) or a model (-m MODEL)", run_bench);

}  // namespace vramfit::cli
