// model::CudaDevice — the forward pass's ops on an NVIDIA GPU, under an exact VRAM budget.
//
// Construction makes the device's ONE cudaMalloc, of exactly `budget_bytes`, and never allocates
// device memory again: weights, KV cache and activations come from an Arena over that region, and
// so do the device's own fixed reservations (cuBLAS workspace, the scratch of batched matmul, the
// partial results of split attention, the staging of host indices and scales) —
// fixed_reservation_bytes() tells the planner how much that is.
// Everything runs in order on one stream; download() and synchronize() wait for it.
//
// Exists only when vramfit is built with CUDA (VRAMFIT_HAVE_CUDA, set by the cuda component).
#pragma once

#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA

#include <cstddef>
#include <memory>
#include <string>

#include "model/arena_memory.hpp"
#include "model/device.hpp"

namespace vramfit::cuda {
class Runtime;
}

namespace vramfit::model {

struct CudaDeviceConfig {
  int device_index = 0;
  uint64_t budget_bytes = 0;                        // the one cudaMalloc; every device byte
  uint64_t cublas_workspace_bytes = 4ull << 20;     // handed to cublasSetWorkspace
  uint64_t matmul_scratch_bytes = 32ull << 20;      // tiles of batched matmul (0: GEMV unless F32)
  int64_t gemv_max_tokens = 8;                      // larger batches use dequantize + cuBLAS
  // Partials of decode attention split across warps (flash-decoding); 0: never split. 2 MiB holds
  // 64 heads x 8 tokens x 8 splits of head_dim 128.
  uint64_t attention_scratch_bytes = 2ull << 20;
};

class CudaDevice final : public Device {
 public:
  static constexpr uint64_t alignment = 256;  // cudaMalloc's; also what cuBLAS wants
  // Host indices per upload: tokens of get_rows, rows (and scales) of gather_rows and
  // scatter_rows_scaled; longer lists go in several uploads.
  static constexpr int64_t token_staging = 4096;

  explicit CudaDevice(const CudaDeviceConfig &config);
  ~CudaDevice() override;

  // Bytes of the budget the device reserves for itself at construction.
  static uint64_t fixed_reservation_bytes(const CudaDeviceConfig &config);

  DeviceKind kind() const noexcept override { return DeviceKind::cuda; }
  std::string name() const override;
  bool host_addressable() const noexcept override { return false; }

  void *allocate(uint64_t bytes, std::string_view purpose) override;
  void deallocate(void *ptr) noexcept override;
  void upload(void *device_dst, const void *host_src, uint64_t bytes) override;
  void download(void *host_dst, const void *device_src, uint64_t bytes) override;
  DeviceMemoryStats memory_stats() const override;

  void get_rows(const Weight &table, const int32_t *host_tokens, int64_t n_tokens,
                float *out) override;
  void matmul(const Weight &w, const float *x, int64_t n_tokens, float *y) override;
  void rms_norm(const float *x, const Weight &weight, int64_t n_tokens, float eps,
                float *y) override;
  void rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
            const RopeParams &params) override;
  void kv_store(KvLayer &kv, const float *k, const float *v, int64_t pos0,
                int64_t n_tokens) override;
  void attention(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                 const AttentionParams &params, float *out) override;
  void swiglu(const float *gate, const float *up, int64_t n, float *out) override;
  void swiglu_clamped(const float *gate, const float *up, int64_t n, float alpha, float limit,
                      float *out) override;
  void add(float *y, const float *x, int64_t n) override;
  void add_bias(float *y, const Weight &bias, int64_t n_tokens) override;
  void gather_rows(const float *src, int64_t width, const int32_t *host_rows, int64_t n,
                   float *dst) override;
  void scatter_rows_scaled(const float *src, int64_t width, const int32_t *host_rows,
                           const float *host_scales, int64_t n, float *dst) override;
  void synchronize() override;
  void stream_prepare(int n_slots, uint64_t slot_bytes) override;
  void stream_upload(int slot, void *device_dst, const void *host_src, uint64_t bytes) override;
  void stream_acquire(int slot) override;
  void stream_release(int slot) override;

  const Arena &arena() const noexcept { return memory_.arena(); }

 private:
  bool matmul_batched(const Weight &w, const float *x, int64_t n_tokens, float *y);
  const float *f32_vector(const Weight &w, int64_t n, const char *op) const;
  void check_rows(const float *base, int64_t width, const int32_t *host_rows, int64_t n, const char *op) const;

  CudaDeviceConfig config_;
  std::unique_ptr<cuda::Runtime> runtime_;
  ArenaMemory memory_;  // over the one cudaMalloc
  int32_t *tokens_ = nullptr;  // staging for host tokens / row indices
  float *scales_ = nullptr;    // staging for scatter_rows_scaled's host scales
  std::byte *scratch_ = nullptr;  // batched matmul
  float *attention_scratch_ = nullptr;
  std::string name_;
};

}  // namespace vramfit::model

#endif  // VRAMFIT_HAVE_CUDA
