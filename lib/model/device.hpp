// The one device interface the forward pass runs on.
//
// A Device owns memory (every byte through its budgeted arena) and runs the handful of ops a
// llama layer needs on memory it owns. Implementations: CpuDevice (host memory, lib/cpu kernels),
// SimDevice (host memory behind a byte capacity, so the GPU/CPU split runs and is tested without
// a GPU), CudaDevice (lib/cuda kernels + cuBLAS). The forward pass never asks which one it has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
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

  uint64_t bytes() const noexcept { return row_bytes(type, ne0) * static_cast<uint64_t>(ne1); }
};

// One layer's KV cache on one device: K and V, each n_ctx rows of n_head_kv * head_dim elements of
// `type` (F32, F16 or Q8_0), in one of two layouts of the same bytes:
//   row-major (the default; the CUDA and sim kernels expect it): row r at r * bytes_per_row(), its
//     heads side by side;
//   by head (host caches of the CPU device): each KV head's rows contiguous, head h's row r at
//     (h * n_ctx + r) * head_row_bytes(), so decode attention streams a head's keys and values
//     instead of striding over every row. Heads must be whole blocks (heads_are_whole_blocks).
struct KvLayer {
  void *k = nullptr;
  void *v = nullptr;
  GgmlType type = GgmlType::F16;
  int64_t n_ctx = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  Device *device = nullptr;
  bool by_head = false;

  uint64_t bytes_per_row() const noexcept { return row_bytes(type, n_head_kv * head_dim); }
  uint64_t head_row_bytes() const noexcept { return row_bytes(type, head_dim); }  // a head's slice of a row
  // The cache as parts of n_ctx rows, each row part_width() elements, rows row_stride() bytes apart:
  // one part of whole rows, or (by head) one part per KV head.
  int64_t n_parts() const noexcept { return by_head ? n_head_kv : 1; }
  int64_t part_width() const noexcept { return by_head ? head_dim : n_head_kv * head_dim; }
  uint64_t row_stride() const noexcept { return by_head ? head_row_bytes() : bytes_per_row(); }
  // Head h's slice of row r of `cache` (k or v); also part h's row r. In a row-major cache, h > 0
  // needs heads of whole blocks.
  std::byte *head_row(void *cache, int64_t h, int64_t r) const noexcept {
    const auto at = by_head ? static_cast<uint64_t>(h * n_ctx + r) * head_row_bytes()
                            : static_cast<uint64_t>(r) * bytes_per_row() + static_cast<uint64_t>(h) * head_row_bytes();
    return static_cast<std::byte *>(cache) + at;
  }
};

// Whether each head's slice of a cache row of `type` is whole blocks: only then can the cache be
// laid out, or read, head by head (the by-head layout then has exactly the row-major bytes).
inline bool heads_are_whole_blocks(GgmlType type, int64_t head_dim) noexcept {
  const auto traits = type_traits(static_cast<uint32_t>(type));
  return traits && head_dim % traits->block_size == 0;
}

// Rotary position embedding, as ggml's rope (ggml_rope_ext) computes it. Pair i of a head
// (i < n_rot/2) rotates by theta_i = pos * freq_base^(-2i/n_rot) (divided by freq_factors[i]):
//   normal (llama): the adjacent elements (2i, 2i+1);
//   neox (qwen2, qwen3, gpt-oss): the elements (i, i + n_rot/2).
// YaRN (ext_factor != 0): theta = theta_interp * (1 - ramp) + theta_extrap * ramp with
// theta_interp = freq_scale * theta_extrap and ramp = ext_factor * (1 - clamp((i - corr_low) /
// max(0.001, corr_high - corr_low), 0, 1)); cos and sin are then multiplied by
// attn_factor * (1 + 0.1 ln(1 / freq_scale)). Without YaRN they are multiplied by attn_factor.
struct RopeParams {
  int64_t n_rot = 0;                // rotated dimensions per head (rope.dimension_count)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;          // 1 / linear (or YaRN) scaling factor
  const Weight *freq_factors = nullptr;  // Llama-3 rope_freqs (n_rot/2 floats) or null
  bool neox = false;
  float ext_factor = 0.0f;          // YaRN extrapolation mix; 0 = off
  float attn_factor = 1.0f;
  float corr_low = 0.0f;            // YaRN correction dims (ggml_rope_yarn_corr_dims)
  float corr_high = 0.0f;
};

struct AttentionParams {
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;  // 1/sqrt(head_dim)
  // > 0: sliding window: the query at position p sees the keys p - window + 1 .. p only.
  int64_t window = 0;
  // Per-head attention sinks (gpt-oss; F32 [n_head]) or null: the sink logit s_h joins the
  // softmax's max and adds exp(s_h - max) to its denominator, with no value.
  const Weight *sinks = nullptr;
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
  // y = W x for several weights of this device with rows of one length (a layer's Q, K and V;
  // gate and up; the experts a token chose): a device may run them as one job and prepare each
  // distinct x once. The same results as one matmul each, which is the default.
  struct Product {
    Weight w;
    const float *x;
    float *y;
  };
  virtual void matmul_many(std::span<const Product> products, int64_t n_tokens) {
    for (const Product &p : products) matmul(p.w, p.x, n_tokens, p.y);
  }
  // Each of n_tokens rows of weight.ne0 floats (so per head when weight is [head_dim] and
  // n_tokens counts heads); y may alias x.
  virtual void rms_norm(const float *x, const Weight &weight, int64_t n_tokens, float eps,
                        float *y) = 0;
  // Rotates x [n_tokens][n_heads*head_dim] in place; token t is at position pos0 + t.
  virtual void rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                    const RopeParams &params) = 0;
  // Stores k, v [n_tokens][n_head_kv*head_dim] at rows pos0.. of the cache. Rows, not token
  // positions: a sliding-window layer's cache is smaller than the context and its row 0 may hold
  // a later position (model::Workspace::slide_kv); k arrives already rotated, so rows need not
  // know their positions.
  virtual void kv_store(KvLayer &kv, const float *k, const float *v, int64_t pos0,
                        int64_t n_tokens) = 0;
  // Causal attention of q [n_tokens][n_head*head_dim] (query t at cache row pos0 + t) over cache
  // rows 0..pos0+n_tokens-1 (only the last params.window of them when set, plus the sinks); out
  // has q's shape.
  virtual void attention(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                         const AttentionParams &params, float *out) = 0;
  virtual void swiglu(const float *gate, const float *up, int64_t n, float *out) = 0;  // silu(g)*u
  // gpt-oss's clamped SwiGLU: x = min(g, limit), y = clamp(u, -limit, limit),
  // out = x * sigmoid(alpha * x) * (y + 1). out may alias gate.
  virtual void swiglu_clamped(const float *gate, const float *up, int64_t n, float alpha, float limit,
                              float *out) = 0;
  virtual void add(float *y, const float *x, int64_t n) = 0;                          // y += x
  // y[t][i] += bias[i] for t < n_tokens, i < bias.ne0 (an F32 vector weight).
  virtual void add_bias(float *y, const Weight &bias, int64_t n_tokens) = 0;

  // ---- mixture of experts: moving token rows to and from an expert's batch ----
  // Row indices and scales are host memory (the router's choice is made on the host).
  // dst[i] = src[host_rows[i]] for i < n; rows of `width` floats.
  virtual void gather_rows(const float *src, int64_t width, const int32_t *host_rows, int64_t n,
                           float *dst) = 0;
  // dst[host_rows[i]] = host_scales[i] * src[i] for i < n; rows of `width` floats.
  virtual void scatter_rows_scaled(const float *src, int64_t width, const int32_t *host_rows,
                                   const float *host_scales, int64_t n, float *dst) = 0;
  virtual void synchronize() = 0;

  // ---- streaming weights for long prompts (double-buffered staging slots) ----
  // Called once before the slots are used: n_slots slots of up to slot_bytes each.
  virtual void stream_prepare(int n_slots, uint64_t slot_bytes) {
    (void)n_slots;
    (void)slot_bytes;
  }
  // Copies host bytes into device memory of slot `slot`, after the ops issued before the slot's
  // last stream_release() are done; may return before the copy has happened.
  virtual void stream_upload(int slot, void *device_dst, const void *host_src, uint64_t bytes) {
    (void)slot;
    upload(device_dst, host_src, bytes);
  }
  // Ops issued from now on wait for the slot's uploads.
  virtual void stream_acquire(int slot) { (void)slot; }
  // The slot may be overwritten once the ops issued so far are done.
  virtual void stream_release(int slot) { (void)slot; }
};

}  // namespace vramfit::model
