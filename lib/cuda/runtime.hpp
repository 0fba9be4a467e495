// The CUDA runtime as the rest of vramfit sees it: a device, one stream, one cuBLAS handle.
//
// This header is plain C++ (no CUDA headers), so lib/model compiles against it with any compiler.
// Every CUDA failure becomes Error(device) (Error(out_of_memory) for allocations) carrying the
// CUDA error string and the operation that failed; nothing here aborts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace vramfit::cuda {

// Number of usable CUDA devices; 0 when there is no driver, no device, or the runtime refuses.
// The first call also asks for eager module loading (CUDA_MODULE_LOADING=EAGER unless the user
// set it): lazily loaded kernels would take device memory after the overhead was measured.
int device_count() noexcept;

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // after this process's context exists
};
DeviceInfo device_info(int device);

// What using a GPU costs before any model byte lands on it, for the planner: cudaMemGetInfo
// before and after creating a Runtime (the CUDA context itself must exist before cudaMemGetInfo
// answers, so its size is bounded as total - free right after creation, which also counts other
// processes' memory on a shared GPU).
struct FixedOverhead {
  uint64_t total_bytes = 0;
  uint64_t context_bytes = 0;  // total - free once the context exists (an upper bound, see above)
  // free before - free after a Runtime: the stream, the cuBLAS handle, what cuBLAS keeps after a
  // first GEMM of every kind, and the kernels' thread stacks (see Runtime).
  uint64_t cublas_bytes = 0;
  uint64_t free_bytes = 0;     // free after everything: what a VRAM budget can use
};
FixedOverhead measure_fixed_overhead(int device = 0);

// One device, one stream, one cuBLAS handle. All work vramfit issues on the device goes through
// this stream in order, which is what makes the arena's immediate reuse of released memory safe.
// Construction also loads every vramfit kernel and reserves the thread stack the largest needs
// (the driver would otherwise grow it at a first launch, outside the budget; today every kernel
// fits the default stack, and CI keeps them under 64 bytes), and runs one GEMM of each kind
// (f32, tf32, f16) in a temporary allocation so cuBLAS's first-use memory exists before any
// measurement or budget: the device memory a Runtime takes is all taken by its constructor.
class Runtime {
 public:
  explicit Runtime(int device = 0);
  ~Runtime();
  Runtime(const Runtime &) = delete;
  Runtime &operator=(const Runtime &) = delete;

  int device() const noexcept { return device_; }
  // Makes this runtime's device the calling thread's current one (CUDA's current device is per
  // host thread, and a context may decode from any thread): every launch and copy calls it.
  void activate() const;
  // The one cudaMalloc of a device: Error(out_of_memory) naming the size and the free memory.
  void *malloc(uint64_t bytes, const char *purpose);
  void free(void *ptr) noexcept;
  // Copies on the stream; host pointers may be pageable (the call returns once `host_src` may
  // be reused; download returns after the data has arrived).
  void upload(void *device_dst, const void *host_src, uint64_t bytes);
  void download(void *host_dst, const void *device_src, uint64_t bytes);
  void synchronize(const char *op = "synchronize");

  // ---- streaming weights (model::Device::stream_*): a copy stream beside the compute stream,
  // and per slot a pinned host bounce buffer and two events. The host copies into the bounce
  // buffer (the weights are in a pageable memory map), the copy engine moves it to the device
  // while the compute stream works on the other slot.
  // Allocates n_slots pinned host buffers of `bytes` (host memory, not device memory).
  void prepare_stream_slots(int n_slots, uint64_t bytes);
  // Appends `bytes` to the slot's next copy; the copy waits for the slot's last release.
  void stream_upload(int slot, void *device_dst, const void *host_src, uint64_t bytes);
  // The compute stream waits for the slot's copies; its next uploads start a new round.
  void stream_acquire(int slot);
  // The slot's device memory may be overwritten once the compute work issued so far is done.
  void stream_release(int slot);
  // Gives cuBLAS a workspace carved from the arena, so its memory is accounted (nullptr, 0: none;
  // cuBLAS then never falls back to its own pool, and GEMMs may fail: see kMinCublasWorkspace).
  void set_cublas_workspace(void *ptr, uint64_t bytes);
  // cuBLAS's documented minimum workspace that avoids CUBLAS_STATUS_ALLOC_FAILED.
  static constexpr uint64_t kMinCublasWorkspace = 16 << 10;

  // Opaque handles for the kernel launchers (cudaStream_t, cublasHandle_t).
  void *stream() const noexcept;
  void *cublas() const noexcept;
  int multiprocessor_count() const noexcept;

 private:
  void reserve_kernel_stack();
  void warm_up_cublas();
  struct Impl;
  int device_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vramfit::cuda
