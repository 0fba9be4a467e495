#include "cuda/runtime.hpp"

#include <cuda.h>  // CUmoduleLoadingMode only: the driver is reached through cudaGetDriverEntryPointByVersion

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/error.hpp"
#include "common/log.hpp"
#include "cuda/check.hpp"
#include "cuda/ops.hpp"

namespace vramfit::cuda {

namespace {

// Errors that corrupt the context (a kernel faulted): every later call fails with them, so the
// call that reports one may be an innocent later one, and only a new context recovers.
bool is_sticky(cudaError_t error) {
  switch (error) {
    case cudaErrorIllegalAddress: case cudaErrorLaunchFailure: case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress: case cudaErrorInvalidAddressSpace: case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError: case cudaErrorAssert: case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable: case cudaErrorUnknown:
      return true;
    default: return false;
  }
}

}  // namespace

// Clears the runtime's last-error slot first, so the next operation reports its own error and not
// this one under its name; a sticky error says that the device must be recreated.
void throw_cuda_error(cudaError_t error, const char *op) {
  (void)cudaGetLastError();
  const bool sticky = is_sticky(error);
  const ErrorCode code = error == cudaErrorMemoryAllocation ? ErrorCode::out_of_memory : ErrorCode::device;
  detail::fail(code, "cuda {}: {} ({}){}", op, cudaGetErrorString(error), cudaGetErrorName(error),
               sticky ? "; the CUDA context is unusable after this error (a kernel may have failed earlier, "
                        "asynchronously): the device must be recreated"
                      : "");
}

void throw_cublas_error(cublasStatus_t status, const char *op) {
  (void)cudaGetLastError();  // a launch cuBLAS failed leaves it set: not the next op's error
  detail::fail(ErrorCode::device, "cublas {}: {}", op, cublasGetStatusString(status));
}

// Since CUDA 12.2 Linux loads kernels lazily, at their first launch: cuBLAS kernels would then
// take device memory after measure_fixed_overhead, outside every budget. EAGER loads every
// module when the context is created, where the fixed overhead counts it. Set before the first
// CUDA call of the process (the driver reads it once); a value the user set is kept.
void prefer_eager_module_loading() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { setenv("CUDA_MODULE_LOADING", "EAGER", 0); });
}

int device_count() noexcept {
  prefer_eager_module_loading();
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

// True when the driver loads modules lazily (CUDA was initialised before vramfit could ask for
// eager loading, or the user set CUDA_MODULE_LOADING=LAZY); false when eager or unknown.
bool lazy_module_loading() {
  void *fn = nullptr;
  cudaDriverEntryPointQueryResult found{};
  if (cudaGetDriverEntryPointByVersion("cuModuleGetLoadingMode", &fn, 12000, cudaEnableDefault, &found) !=
          cudaSuccess ||
      found != cudaDriverEntryPointSuccess || !fn) {
    (void)cudaGetLastError();
    return false;
  }
  CUmoduleLoadingMode mode{};
  return reinterpret_cast<CUresult (*)(CUmoduleLoadingMode *)>(fn)(&mode) == CUDA_SUCCESS &&
         mode == CU_MODULE_LAZY_LOADING;
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

struct StreamSlot {
  void *pinned = nullptr;  // cudaHostAlloc'd bounce buffer
  uint64_t bytes = 0;
  uint64_t filled = 0;     // bytes of this round's copies so far
  cudaEvent_t copied = nullptr, released = nullptr;
  bool copy_in_flight = false, release_recorded = false;
};

struct Runtime::Impl {
  cudaStream_t stream = nullptr;
  cudaStream_t copy_stream = nullptr;  // created with the runtime: its cost is in the measured overhead
  cublasHandle_t cublas = nullptr;
  int multiprocessors = 1;
  std::vector<StreamSlot> slots;
};

Runtime::Runtime(int device) : device_(device), impl_(std::make_unique<Impl>()) {
  select_device(device);
  check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (const cudaError_t e = cudaStreamCreateWithFlags(&impl_->copy_stream, cudaStreamNonBlocking); e != cudaSuccess) {
    cudaStreamDestroy(impl_->stream);
    throw_cuda_error(e, "cudaStreamCreate (copies)");
  }
  if (const cublasStatus_t s = cublasCreate(&impl_->cublas); s != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(impl_->copy_stream);
    cudaStreamDestroy(impl_->stream);
    throw_cublas_error(s, "cublasCreate");
  }
  try {
    // Before any cublasSetWorkspace: cublasSetStream resets the workspace to cuBLAS's own pool.
    check(cublasSetStream(impl_->cublas, impl_->stream), "cublasSetStream");
    check(cudaDeviceGetAttribute(&impl_->multiprocessors, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(multiprocessors)");
    reserve_kernel_stack();
    warm_up_cublas();
  } catch (...) {  // the destructor does not run for a half-built object
    cublasDestroy(impl_->cublas);
    cudaStreamDestroy(impl_->stream);
    throw;
  }
}

// Every GEMM kind vramfit issues, once, on small matrices in a temporary allocation (freed before
// returning): whatever cuBLAS creates at its first GEMM (its Lt handle, kernels it still loads
// lazily) then exists before the fixed overhead is measured, not after.
void Runtime::warm_up_cublas() {
  constexpr int64_t k = 256, rows = 256, n = 64;
  constexpr uint64_t workspace = kMinCublasWorkspace * 16;
  const uint64_t bytes = workspace + 4 * (rows * k + n * k + rows * n);
  std::byte *scratch = static_cast<std::byte *>(malloc(bytes, "the cuBLAS warm-up"));
  try {
    check(cudaMemsetAsync(scratch, 0, bytes, impl_->stream), "warm-up");
    set_cublas_workspace(scratch, workspace);
    auto *w = reinterpret_cast<float *>(scratch + workspace);
    float *x = w + rows * k, *y = x + n * k;
    gemm_f32(*this, w, rows, k, x, n, y, rows);
    gemm_tf32(*this, w, rows, k, x, n, y, rows);
    gemm_f16(*this, reinterpret_cast<uint16_t *>(w), rows, k, reinterpret_cast<uint16_t *>(x), n, y, rows);
    synchronize("the cuBLAS warm-up");
    set_cublas_workspace(nullptr, 0);
  } catch (...) {
    free(scratch);
    throw;
  }
  free(scratch);
  if (lazy_module_loading())
    detail::log_warn("cuda:{}: CUDA loads kernels lazily (CUDA_MODULE_LOADING={}): a kernel loaded after start-up "
                     "takes device memory outside the VRAM budget; set CUDA_MODULE_LOADING=EAGER before the "
                     "process first uses CUDA",
                     device_, std::getenv("CUDA_MODULE_LOADING") ? std::getenv("CUDA_MODULE_LOADING") : "unset");
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
  cudaStreamSynchronize(impl_->copy_stream);
  for (StreamSlot &slot : impl_->slots) {
    if (slot.copied) cudaEventDestroy(slot.copied);
    if (slot.released) cudaEventDestroy(slot.released);
    if (slot.pinned) cudaFreeHost(slot.pinned);
  }
  cublasDestroy(impl_->cublas);
  cudaStreamDestroy(impl_->copy_stream);
  cudaStreamDestroy(impl_->stream);
}

void Runtime::prepare_stream_slots(int n_slots, uint64_t bytes) {
  activate();
  impl_->slots.resize(static_cast<size_t>(n_slots));
  for (StreamSlot &slot : impl_->slots) {
    if (!slot.copied) check(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming), "cudaEventCreate");
    if (!slot.released) check(cudaEventCreateWithFlags(&slot.released, cudaEventDisableTiming), "cudaEventCreate");
    if (slot.bytes >= bytes) continue;
    if (slot.pinned) check(cudaFreeHost(slot.pinned), "cudaFreeHost");
    slot.pinned = nullptr;
    slot.bytes = 0;
    check(cudaHostAlloc(&slot.pinned, bytes, cudaHostAllocDefault), "cudaHostAlloc (streaming bounce buffer)");
    slot.bytes = bytes;
  }
}

void Runtime::stream_upload(int index, void *device_dst, const void *host_src, uint64_t bytes) {
  activate();
  StreamSlot &slot = impl_->slots.at(static_cast<size_t>(index));
  if (slot.filled == 0 && slot.copy_in_flight) {
    // The bounce buffer still feeds the slot's previous copy: wait for it (two rounds back).
    check(cudaEventSynchronize(slot.copied), "stream_upload (bounce buffer)");
    slot.copy_in_flight = false;
  }
  if (slot.filled + bytes > slot.bytes)
    detail::fail(ErrorCode::internal, "stream_upload: {} bytes overflow the {} byte slot", slot.filled + bytes,
                 slot.bytes);
  auto *bounce = static_cast<std::byte *>(slot.pinned) + slot.filled;
  std::memcpy(bounce, host_src, bytes);
  if (slot.filled == 0 && slot.release_recorded)
    check(cudaStreamWaitEvent(impl_->copy_stream, slot.released, 0), "stream_upload (wait for release)");
  check(cudaMemcpyAsync(device_dst, bounce, bytes, cudaMemcpyHostToDevice, impl_->copy_stream), "stream_upload");
  slot.filled += bytes;
}

void Runtime::stream_acquire(int index) {
  activate();
  StreamSlot &slot = impl_->slots.at(static_cast<size_t>(index));
  check(cudaEventRecord(slot.copied, impl_->copy_stream), "stream_acquire (record)");
  check(cudaStreamWaitEvent(impl_->stream, slot.copied, 0), "stream_acquire (wait)");
  slot.copy_in_flight = true;
  slot.filled = 0;
}

void Runtime::stream_release(int index) {
  activate();
  StreamSlot &slot = impl_->slots.at(static_cast<size_t>(index));
  check(cudaEventRecord(slot.released, impl_->stream), "stream_release");
  slot.release_recorded = true;
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
int Runtime::multiprocessor_count() const noexcept { return impl_->multiprocessors; }
void *Runtime::cublas() const noexcept { return impl_->cublas; }

}  // namespace vramfit::cuda
