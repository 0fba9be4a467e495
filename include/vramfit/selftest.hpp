// `vramfit selftest`: checks this machine's backends against float64 references.
//
// Every op of the CPU device and of the simulated device, and — when a CUDA device exists and
// vramfit was built with CUDA — of the GPU device, on small random inputs; plus the GPU's
// measured fixed overhead. Never throws for a missing GPU: that is reported, not an error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vramfit/export.hpp"

namespace vramfit {

struct SelftestCheck {
  std::string device;  // "cpu", "sim", "cuda:0"
  std::string op;      // "matmul Q4_K n_tokens=4"
  double error = 0;    // relative RMS error vs float64
  double tolerance = 0;
  bool passed = false;
};

struct SelftestReport {
  std::vector<SelftestCheck> checks;
  bool cuda_built = false;     // vramfit was compiled with the CUDA backend
  int cuda_devices = 0;        // devices the runtime reports (0 without CUDA)
  std::string gpu_name;        // of the device checked, when one was
  uint64_t gpu_total_bytes = 0;
  uint64_t gpu_context_bytes = 0;  // measured fixed overhead: CUDA context (upper bound)
  uint64_t gpu_cublas_bytes = 0;   // ... and stream + cuBLAS handle
  std::string gpu_error;       // why the GPU checks could not run, if they could not
  bool passed() const noexcept {
    for (const SelftestCheck &c : checks)
      if (!c.passed) return false;
    return gpu_error.empty();
  }
};

// Runs the checks on GPU `cuda_device` (when there is one) with `gpu_budget_bytes` of VRAM.
VRAMFIT_API SelftestReport run_selftest(int cuda_device = 0, uint64_t gpu_budget_bytes = 256ull << 20);

}  // namespace vramfit
