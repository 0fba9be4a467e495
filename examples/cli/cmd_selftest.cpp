// `vramfit selftest [--device N] [--budget SIZE]`: every backend's ops against float64.
#include <string>

#include "cli.hpp"
#include "vramfit/selftest.hpp"

namespace vramfit::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: vramfit selftest [--device N] [--budget SIZE]\n"
    "  Runs every device op (matmul per weight type, get_rows, rms_norm, rope, kv_store,\n"
    "  attention, swiglu, add) on small random inputs and compares it with float64: on the CPU,\n"
    "  the simulated device, and the CUDA GPU when there is one. Exit status 0 when all pass.\n"
    "  --device N     CUDA device index (default 0)\n"
    "  --budget SIZE  VRAM the GPU check may use (default 256MiB)\n";

int run(std::span<const std::string_view> args) {
  int device = 0;
  uint64_t budget = 256ull << 20;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--device" && has_value) {
      const std::string value(args[++i]);
      if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos || value.size() > 4) {
        fmt::print(stderr, "vramfit selftest: --device needs a device index, not '{}'\n", value);
        return 2;
      }
      device = std::stoi(value);
    } else if (args[i] == "--budget" && has_value) {
      const auto size = parse_size(args[++i]);
      if (!size || *size == 0) {
        fmt::print(stderr, "vramfit selftest: --budget needs a size like 256MiB, not '{}'\n", args[i]);
        return 2;
      }
      budget = *size;
    } else {
      fmt::print(stderr, "vramfit selftest: unknown or incomplete option '{}'\n{}", args[i], kUsage);
      return 2;
    }
  }

  const SelftestReport report = run_selftest(device, budget);
  for (const SelftestCheck &c : report.checks)
    fmt::print("{:<4} {:<7} {:<30} error {:.2e}  (tolerance {:.0e})\n", c.passed ? "ok" : "FAIL", c.device, c.op,
               c.error, c.tolerance);
  if (!report.cuda_built) {
    fmt::print("no CUDA device: this vramfit was built without the CUDA backend\n");
  } else if (report.cuda_devices == 0) {
    fmt::print("no CUDA device: the CUDA runtime reports none; GPU checks skipped\n");
  } else {
    fmt::print("GPU {}: {} total; fixed overhead: context {}, stream + cuBLAS {}\n", report.gpu_name,
               format_bytes(report.gpu_total_bytes), format_bytes(report.gpu_context_bytes),
               format_bytes(report.gpu_cublas_bytes));
    if (!report.gpu_error.empty()) fmt::print(stderr, "vramfit selftest: GPU checks failed: {}\n", report.gpu_error);
  }
  size_t failed = 0;
  for (const SelftestCheck &c : report.checks) failed += c.passed ? 0 : 1;
  fmt::print("{} of {} checks passed\n", report.checks.size() - failed, report.checks.size());
  return report.passed() ? 0 : 1;
}

}  // namespace

VRAMFIT_COMMAND("selftest", "check every backend's ops (CPU, simulated, CUDA) against float64", run);

}  // namespace vramfit::cli
