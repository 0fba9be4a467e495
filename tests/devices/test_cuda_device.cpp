// CudaDevice on a real GPU: every op against float64 (the same harness the CPU passes), the
// budget, and the copies. Without a CUDA device it says so and checks nothing.
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include "cuda/ops.hpp"
#include "cuda/runtime.hpp"
#include "model/device_check.hpp"
#include "model/device_cuda.hpp"
#include "vramfit/error.hpp"

using namespace vramfit;
using namespace vramfit::model;

namespace {

bool have_gpu() {
  if (cuda::device_count() > 0) return true;
  MESSAGE("skipped: no CUDA device (cudaGetDeviceCount() == 0)");
  return false;
}

CudaDeviceConfig config_of(uint64_t budget) {
  CudaDeviceConfig c;
  c.budget_bytes = budget;
  c.matmul_scratch_bytes = 1 << 20;  // small, so batched matmul runs several tiles
  return c;
}

}  // namespace

TEST_CASE("cuda device ops agree with float64 references") {
  if (!have_gpu()) return;
  CudaDevice gpu(config_of(64 << 20));
  for (const OpCheck &c : check_device_ops(gpu)) {
    CAPTURE(c.op);
    CAPTURE(c.error);
    CHECK(c.passed());
    // Same block code as the CPU reference, compiled without FMA contraction: bit-exact rows.
    if (c.op.starts_with("get_rows")) CHECK(c.error == 0.0);
    // F32 weights go through an f32 GEMM, never an f16 one, whatever the batch.
    if (c.op.starts_with("matmul F32")) CHECK(c.error <= 1e-5);
  }
  CHECK(gpu.memory_stats().allocated_bytes == CudaDevice::fixed_reservation_bytes(config_of(64 << 20)));
}

TEST_CASE("cuda device: the budget is exact and a refusal leaves the device usable") {
  if (!have_gpu()) return;
  const CudaDeviceConfig config = config_of(16 << 20);
  CudaDevice gpu(config);
  const uint64_t room = config.budget_bytes - CudaDevice::fixed_reservation_bytes(config);
  void *a = gpu.allocate(room, "everything left");
  try {
    gpu.allocate(1, "one byte more");
    FAIL("expected budget_exceeded");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::budget_exceeded);
  }
  std::vector<float> host(1000, 1.5f), back(1000);
  gpu.upload(a, host.data(), 4000);
  gpu.download(back.data(), a, 4000);
  CHECK(back == host);
  CHECK(gpu.memory_stats().bytes_uploaded == 4000);
  CHECK(gpu.memory_stats().peak_bytes == config.budget_bytes);
  gpu.deallocate(a);
  CHECK_THROWS_AS(CudaDevice(config_of(1 << 20)), Error);  // cannot hold its own reservations
}

TEST_CASE("cuda fixed overhead is measured") {
  if (!have_gpu()) return;
  const cuda::FixedOverhead o = cuda::measure_fixed_overhead(0);
  CHECK(o.total_bytes > 0);
  CHECK(o.free_bytes <= o.total_bytes);
  CHECK(o.context_bytes > 0);
  MESSAGE("context " << o.context_bytes << " B, cuBLAS " << o.cublas_bytes << " B, free " << o.free_bytes << " B");
}

TEST_CASE("cuda device without a cuBLAS workspace still computes every op (GEMV only)") {
  if (!have_gpu()) return;
  CudaDeviceConfig config = config_of(64 << 20);
  config.cublas_workspace_bytes = 0;  // cuBLAS gets no memory at all: batched matmul must not call it
  CudaDevice gpu(config);
  for (const OpCheck &c : check_device_ops(gpu)) {
    CAPTURE(c.op);
    CAPTURE(c.error);
    CHECK(c.passed());
  }
}

TEST_CASE("a cuda runtime reserves the thread stacks of its kernels up front") {
  if (!have_gpu()) return;
  cuda::Runtime runtime(0);
  size_t stack = 0;
  REQUIRE(cudaDeviceGetLimit(&stack, cudaLimitStackSize) == cudaSuccess);
  CHECK(cuda::kernel_stack_bytes() > 0);  // the K-quant GEMV holds a dequantized block per thread
  CHECK(stack >= cuda::kernel_stack_bytes());
  MESSAGE("per-thread stack " << stack << " B");
}
