// The one device interface the forward pass runs on.
//
// A Device owns memory (every byte through its budgeted arena) and runs the handful of ops a
// llama layer needs on memory it owns. Implementations: CpuDevice (host memory, lib/cpu kernels),
// SimDevice (host memory behind a byte capacity, so the GPU/CPU split runs and is tested without
// a GPU), CudaDevice (lib/cuda kernels + cuBLAS). The forward pass never asks which one it has.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vramfit/types.hpp"

namespace vramfit::model {

class Device;

enum class DeviceKind { cpu, sim, cuda };

// Everything a device has allocated, against its budget (UINT64_MAX: no budget).
struct DeviceMemoryStats {
  uint64_t budget_bytes = UINT64_MAX;
  uint64_t allocated_bytes = 0;  // live now
  uint64_t peak_bytes = 0;       // high-water mark of allocated_bytes
  uint64_t bytes_uploaded = 0;   // host -> device
  uint64_t bytes_downloaded = 0; // device -> host
  uint64_t n_copies = 0;
};

// A weight (matrix or vector) resident on one device: ne1 rows of ne0 elements of `type`,
// rows contiguous. On the CPU this is a view into the model's memory map (never a copy).
struct Weight {
  const void *data = nullptr;
  GgmlType type = GgmlType::F32;
  int64_t ne0 = 0;  // row length = input features
  int64_t ne1 = 1;  // rows = output features
  Device *device = nullptr;
  std::string_view name;
};

// One layer's KV cache on one device: K and V, each [n_ctx][n_head_kv * head_dim] of `type`
// (F32, F16 or Q8_0).
struct KvLayer {
  void *k = nullptr;
  void *v = nullptr;
  GgmlType type = GgmlType::F16;
  int64_t n_ctx = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  Device *device = nullptr;
};

struct RopeParams {
  int64_t n_rot = 0;                // rotated dimensions per head (rope.dimension_count)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;          // 1 / linear scaling factor
  const Weight *freq_factors = nullptr;  // Llama-3 rope_freqs (n_rot/2 floats) or null
};

struct AttentionParams {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;  // 1/sqrt(head_dim)
};

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceKind kind() const noexcept = 0;
  virtual std::string name() const = 0;
  // cpu and sim memory is host-addressable; cuda memory is not.
  virtual bool host_addressable() const noexcept = 0;

  // ---- memory ----
  // Throws Error(budget_exceeded) — having allocated nothing — when `bytes` would cross the
  // budget; Error(out_of_memory) / Error(device) when the runtime refuses.
  virtual void *allocate(uint64_t bytes, std::string_view purpose) = 0;
  virtual void deallocate(void *ptr) noexcept = 0;
  virtual void upload(void *device_dst, const void *host_src, uint64_t bytes) = 0;
  virtual void download(void *host_dst, const void *device_src, uint64_t bytes) = 0;
  virtual DeviceMemoryStats memory_stats() const = 0;

  // ---- ops: every pointer is memory of this device; activations are f32 [n_tokens][n] ----
  virtual void get_rows(const Weight &table, const int32_t *host_tokens, int64_t n_tokens,
                        float *out) = 0;
  // y[t][r] = sum_k W[r][k] * x[t][k]
  virtual void matmul(const Weight &w, const float *x, int64_t n_tokens, float *y) = 0;
  virtual void rms_norm(const float *x, const Weight &weight, int64_t n_tokens, float eps,
                        float *y) = 0;
  // Rotates x [n_tokens][n_heads*head_dim] in place; token t is at position pos0 + t.
  virtual void rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                    const RopeParams &params) = 0;
  // Stores k, v [n_tokens][n_head_kv*head_dim] at positions pos0.. of the cache.
  virtual void kv_store(KvLayer &kv, const float *k, const float *v, int64_t pos0,
                        int64_t n_tokens) = 0;
  // Causal attention of q [n_tokens][n_head*head_dim] (positions pos0..) over cache rows
  // 0..pos0+n_tokens-1; out has q's shape.
  virtual void attention(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                         const AttentionParams &params, float *out) = 0;
  virtual void swiglu(const float *gate, const float *up, int64_t n, float *out) = 0;  // silu(g)*u
  virtual void add(float *y, const float *x, int64_t n) = 0;                          // y += x
  virtual void synchronize() = 0;
};

}  // namespace vramfit::model
