// run_selftest(): the device-check harness on every backend this machine has.
#include "vramfit/selftest.hpp"

#include "model/device_check.hpp"
#include "model/device_cpu.hpp"
#include "model/device_sim.hpp"
#include "vramfit/error.hpp"

#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
#include "cuda/runtime.hpp"
#include "model/device_cuda.hpp"
#endif

namespace vramfit {
namespace {

void add_checks(SelftestReport &report, const std::string &device, const std::vector<model::OpCheck> &checks) {
  for (const model::OpCheck &c : checks)
    report.checks.push_back(SelftestCheck{device, c.op, c.error, c.tolerance, c.passed()});
}

#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
void check_gpu(SelftestReport &report, int device, uint64_t budget) {
  report.cuda_devices = cuda::device_count();
  if (report.cuda_devices == 0) return;
  try {
    const cuda::FixedOverhead overhead = cuda::measure_fixed_overhead(device);
    report.gpu_total_bytes = overhead.total_bytes;
    report.gpu_context_bytes = overhead.context_bytes;
    report.gpu_cublas_bytes = overhead.cublas_bytes;
    model::CudaDeviceConfig config;
    config.device_index = device;
    config.budget_bytes = budget;
    model::CudaDevice gpu(config);
    report.gpu_name = gpu.name();
    add_checks(report, "cuda:" + std::to_string(device), model::check_device_ops(gpu));
  } catch (const Error &e) {
    report.gpu_error = e.what();
  }
}
#else
void check_gpu(SelftestReport &, int, uint64_t) {}
#endif

}  // namespace

SelftestReport run_selftest(int cuda_device, uint64_t gpu_budget_bytes) {
  SelftestReport report;
  model::CpuDevice cpu;
  add_checks(report, "cpu", model::check_device_ops(cpu));
  model::SimDevice sim(cpu, 16ull << 20);
  add_checks(report, "sim", model::check_device_ops(sim));
#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA
  report.cuda_built = true;
#endif
  check_gpu(report, cuda_device, gpu_budget_bytes);
  return report;
}

}  // namespace vramfit
