// model::SimDevice — a pretend GPU: host memory behind a byte capacity.
//
// It lets the executor run a model split across "device" and CPU exactly as a GPU split would,
// and lets tests check the budget without a GPU. Memory comes from one host allocation of exactly
// `capacity` bytes made up front, handed out by an Arena, so allocating past the capacity throws
// Error(budget_exceeded) just as CudaDevice does. Uploads and downloads are memcpy, counted.
// The ops are delegated to `compute` (a CpuDevice): sim memory is host memory, so the CPU kernels
// run on it directly; weights and KV layers are passed on re-labelled as the compute device's.
#pragma once

#include <cstddef>
#include <memory>

#include "model/arena_memory.hpp"
#include "model/device.hpp"

namespace vramfit::model {

class SimDevice final : public Device {
 public:
  static constexpr uint64_t default_alignment = 256;  // as cudaMalloc's

  // `compute` must outlive this device.
  SimDevice(Device &compute, uint64_t capacity_bytes, uint64_t alignment = default_alignment);
  ~SimDevice() override;

  DeviceKind kind() const noexcept override { return DeviceKind::sim; }
  std::string name() const override;
  bool host_addressable() const noexcept override { return true; }

  void *allocate(uint64_t bytes, std::string_view purpose) override;
  void deallocate(void *ptr) noexcept override;
  void upload(void *device_dst, const void *host_src, uint64_t bytes) override;
  void download(void *host_dst, const void *device_src, uint64_t bytes) override;
  DeviceMemoryStats memory_stats() const override;

  void get_rows(const Weight &table, const int32_t *host_tokens, int64_t n_tokens,
                float *out) override;
  void matmul(const Weight &w, const float *x, int64_t n_tokens, float *y) override;
  void matmul_many(std::span<const Product> products, int64_t n_tokens) override;
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

  const Arena &arena() const noexcept { return memory_.arena(); }

 private:
  struct AlignedFree {
    uint64_t alignment;
    void operator()(std::byte *p) const noexcept;
  };

  Weight as_compute(const Weight &w) const;
  KvLayer as_compute(const KvLayer &kv) const;

  Device &compute_;
  ArenaMemory memory_;
  std::unique_ptr<std::byte[], AlignedFree> host_;  // the one allocation memory_ hands out
};

}  // namespace vramfit::model
