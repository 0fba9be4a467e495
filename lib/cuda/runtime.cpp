#include "cuda/runtime.hpp"

#include "common/error.hpp"
#include "common/log.hpp"
#include "cuda/check.hpp"
#include "cuda/ops.hpp"

namespace vramfit::cuda {

void throw_cuda_error(cudaError_t error, const char *op) {
  const ErrorCode code = error == cudaErrorMemoryAllocation ? ErrorCode::out_of_memory : ErrorCode::device;
  detail::fail(code, "cuda {}: {} ({})", op, cudaGetErrorString(error), cudaGetErrorName(error));
}

void throw_cublas_error(cublasStatus_t status, const char *op) {
  detail::fail(ErrorCode::device, "cublas {}: {}", op, cublasGetStatusString(status));
}

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear: "no device" is an answer, not an error
    return 0;
  }
  return n;
}

namespace {

struct MemInfo {
  uint64_t free = 0, total = 0;
};
MemInfo mem_info(const char *op) {
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), op);
  return {free, total};
}

void select_device(int device) {
  const int n = device_count();
  if (device < 0 || device >= n)
    detail::fail(ErrorCode::device, "cuda: device {} does not exist ({} CUDA device(s) found)", device, n);
  check(cudaSetDevice(device), "cudaSetDevice");
  check(cudaFree(nullptr), "context creation");  // creates the primary context now, not lazily
}

}  // namespace

DeviceInfo device_info(int device) {
  select_device(device);
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  const MemInfo mem = mem_info("cudaMemGetInfo");
  return DeviceInfo{device, prop.name, prop.major, prop.minor, mem.total, mem.free};
}

FixedOverhead measure_fixed_overhead(int device) {
  select_device(device);
  const MemInfo with_context = mem_info("cudaMemGetInfo");
  MemInfo with_everything;
  {
    Runtime runtime(device);
    runtime.synchronize("measure_fixed_overhead");
    with_everything = mem_info("cudaMemGetInfo");
  }
  FixedOverhead o;
  o.total_bytes = with_context.total;
  o.context_bytes = with_context.total - with_context.free;
  o.cublas_bytes = with_context.free > with_everything.free ? with_context.free - with_everything.free : 0;
  o.free_bytes = with_everything.free;
  return o;
}

struct Runtime::Impl {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
};

Runtime::Runtime(int device) : device_(device), impl_(std::make_unique<Impl>()) {
  select_device(device);
  check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (const cublasStatus_t s = cublasCreate(&impl_->cublas); s != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(impl_->stream);
    throw_cublas_error(s, "cublasCreate");
  }
  try {
    // Before any cublasSetWorkspace: cublasSetStream resets the workspace to cuBLAS's own pool.
    check(cublasSetStream(impl_->cublas, impl_->stream), "cublasSetStream");
    reserve_kernel_stack();
  } catch (...) {  // the destructor does not run for a half-built object
    cublasDestroy(impl_->cublas);
    cudaStreamDestroy(impl_->stream);
    throw;
  }
}

// The driver grows the per-thread stack on demand at a launch and never shrinks it; growing it
// here, to the largest any of our kernels needs, makes its memory part of the measured overhead.
void Runtime::reserve_kernel_stack() {
  const uint64_t needed = kernel_stack_bytes();
  size_t current = 0;
  check(cudaDeviceGetLimit(&current, cudaLimitStackSize), "cudaDeviceGetLimit(stack)");
  if (needed > current) check(cudaDeviceSetLimit(cudaLimitStackSize, needed), "reserving the kernels' thread stacks");
}

Runtime::~Runtime() {
  // Destruction never throws; a failure here means the context is already gone.
  cudaSetDevice(device_);
  cudaStreamSynchronize(impl_->stream);
  cublasDestroy(impl_->cublas);
  cudaStreamDestroy(impl_->stream);
}

void Runtime::activate() const { check(cudaSetDevice(device_), "cudaSetDevice"); }

void *Runtime::malloc(uint64_t bytes, const char *purpose) {
  check(cudaSetDevice(device_), "cudaSetDevice");
  void *ptr = nullptr;
  if (const cudaError_t e = cudaMalloc(&ptr, bytes); e != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    detail::fail(e == cudaErrorMemoryAllocation ? ErrorCode::out_of_memory : ErrorCode::device,
                 "cuda: cudaMalloc of {} bytes for {} failed: {} ({} of {} bytes free on device {})", bytes,
                 purpose, cudaGetErrorString(e), free, total, device_);
  }
  return ptr;
}

void Runtime::free(void *ptr) noexcept {
  if (ptr && (cudaSetDevice(device_) != cudaSuccess || cudaFree(ptr) != cudaSuccess)) {
    (void)cudaGetLastError();
    detail::log_warn("cuda: cudaFree failed on device {}", device_);
  }
}

void Runtime::upload(void *device_dst, const void *host_src, uint64_t bytes) {
  activate();
  check(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, impl_->stream), "upload");
}

void Runtime::download(void *host_dst, const void *device_src, uint64_t bytes) {
  activate();
  check(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, impl_->stream), "download");
  synchronize("download");  // the caller reads host_dst next
}

void Runtime::synchronize(const char *op) {
  activate();
  check(cudaStreamSynchronize(impl_->stream), op);
}

void Runtime::set_cublas_workspace(void *ptr, uint64_t bytes) {
  activate();
  check(cublasSetWorkspace(impl_->cublas, ptr, bytes), "cublasSetWorkspace");
}

void *Runtime::stream() const noexcept { return impl_->stream; }
void *Runtime::cublas() const noexcept { return impl_->cublas; }

}  // namespace vramfit::cuda
