// model::CpuDevice — host memory with accounting, ops on lib/cpu's SIMD kernels and thread pool.
//
// Weights are used where they lie (the memory map); only what a context allocates (KV cache,
// activations, the attention workspace) goes through allocate(), so memory_stats() is exactly
// the context's own host memory. Each Context owns one CpuDevice (and so one thread pool).
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "cpu/ops.hpp"
#include "model/device.hpp"

namespace vramfit::model {

class CpuDevice final : public Device {
 public:
  explicit CpuDevice(int n_threads = 0, uint64_t budget_bytes = UINT64_MAX);
  ~CpuDevice() override;

  DeviceKind kind() const noexcept override { return DeviceKind::cpu; }
  std::string name() const override { return "cpu"; }
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
  void synchronize() override {}

  // Allocates the attention workspace for caches of up to n_ctx rows of n_kv_embd elements (of any
  // type) now, so the memory is accounted from the start (attention() would otherwise grow it on
  // first use).
  void reserve_attention(int64_t n_ctx, int64_t n_kv_embd);
  cpu::ThreadPool &pool() noexcept { return pool_; }
  int n_threads() const noexcept { return pool_.size(); }

 private:
  cpu::ThreadPool pool_;
  mutable std::mutex mutex_;
  std::unordered_map<void *, uint64_t> live_;
  DeviceMemoryStats stats_;
  // The cache's positions [0, n_visible) as f32, head by head ([n_head_kv][n_visible rounded up to
  // cpu::kKeyBlock][head_dim] floats each): the keys in cpu::attention_head_blocked's blocks, the
  // values as rows, so each head's are one contiguous stream.
  void lay_out_by_head(const KvLayer &kv, int64_t n_visible, float *keys, float *values);

  // Decode: one task per token and KV head (and up to cpu::kMaxSharedQueries of its query heads),
  // reading the cache in place; false when the cache's shape or type does not allow it.
  bool attention_shared_kv(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                           const AttentionParams &p, float *out);
  float *thread_attention_ws() const noexcept;  // the calling thread's scores and chunk buffer

  // Per thread, cpu::kMaxSharedQueries rows of attention_ctx_ (n_ctx rounded up to
  // cpu::kKeyBlock) floats of scores and a chunk of kSharedChunkKeys converted cache rows; then
  // the keys and the values ([attention_ctx_][attention_kv_embd_] floats each), laid out by head
  // for prompts, else a non-f32 cache's as f32 rows.
  float *attention_ws_ = nullptr;
  int64_t attention_ctx_ = 0, attention_kv_embd_ = 0;
};

}  // namespace vramfit::model
