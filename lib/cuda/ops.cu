// CUDA kernels behind CudaDevice. The arithmetic and the index math are in kernel_math.hpp
// (host-tested); each kernel here only applies them to its thread's indices. Layouts: one warp
// per output row (gemv; its lanes share blocks piece by piece, no thread ever holds a whole
// block), one warp per (token, head, key split) (attention, flash-decoding), grid-stride loops
// for element-wise work. No kernel uses a per-thread array that could land on the stack: every
// loop over one is unrolled (CI checks ptxas's report: cmake/check-kernel-resources.sh).
#include <algorithm>
#include <string>
#include <type_traits>

#include "cuda/check.hpp"
#include "cuda/dequant.cuh"
#include "cuda/kernel_math.hpp"
#include "cuda/ops.hpp"
#include "vramfit/error.hpp"

namespace vramfit::cuda {
namespace {

constexpr int kWarp = kWarpSize;
constexpr int kGemvWarps = 4;          // rows per gemv block
constexpr int kGemvMaxTokens = 8;      // tokens per gemv launch (accumulators per lane)
constexpr int kAttnWarps = 4;          // (token, head) pairs per attention block
constexpr int kAttnMaxDimsPerLane = 8;  // head_dim <= 256
constexpr int kThreads = 256;

// Every launch takes its stream here, which also makes the runtime's device current on this thread.
cudaStream_t stream_of(Runtime &rt) {
  rt.activate();
  return static_cast<cudaStream_t>(rt.stream());
}

cublasHandle_t cublas_of(Runtime &rt) {
  rt.activate();
  return static_cast<cublasHandle_t>(rt.cublas());
}

[[noreturn]] void fail(ErrorCode code, const char *op, const std::string &what) {
  throw Error(code, std::string("cuda ") + op + ": " + what);
}

unsigned grid(int64_t n) { return grid_for(n, kThreads); }  // grid-stride beyond

// Butterfly reductions (butterfly_partner, kernel_math.hpp): every lane ends with the result.
__device__ float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Index of this thread in a 1-D grid and the grid's size, for grid-stride loops.
__device__ int64_t thread_index() { return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; }
__device__ int64_t grid_size() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Calls f(static_cast<Chunk *>(nullptr)) with the chunk type of a weight type.
template <class F>
void dispatch_weight(GgmlType type, const char *op, F &&f) {
  switch (type) {
    case GgmlType::F32: return f(static_cast<float *>(nullptr));
    case GgmlType::F16: return f(static_cast<f16_elem *>(nullptr));
    case GgmlType::BF16: return f(static_cast<bf16_elem *>(nullptr));
    case GgmlType::Q4_0: return f(static_cast<quant::block_q4_0 *>(nullptr));
    case GgmlType::Q8_0: return f(static_cast<quant::block_q8_0 *>(nullptr));
    case GgmlType::MXFP4: return f(static_cast<quant::block_mxfp4 *>(nullptr));
    case GgmlType::Q2_K: return f(static_cast<quant::block_q2_K *>(nullptr));
    case GgmlType::Q3_K: return f(static_cast<quant::block_q3_K *>(nullptr));
    case GgmlType::Q4_K: return f(static_cast<quant::block_q4_K *>(nullptr));
    case GgmlType::Q5_K: return f(static_cast<quant::block_q5_K *>(nullptr));
    case GgmlType::Q6_K: return f(static_cast<quant::block_q6_K *>(nullptr));
    default: fail(ErrorCode::unsupported, op, "weight type " + std::string(type_name(type)) + " has no CUDA kernel");
  }
}

void check_row_length(GgmlType type, int64_t ne0, const char *op) {
  const int64_t block = type_traits(static_cast<uint32_t>(type))->block_size;
  if (ne0 <= 0 || ne0 % block != 0)
    fail(ErrorCode::invalid_argument, op,
         "row length " + std::to_string(ne0) + " is not a positive multiple of the " +
             std::string(type_name(type)) + " block (" + std::to_string(block) + ")");
}

template <class Chunk>
__device__ const Chunk *row_of(const void *w, uint64_t row_bytes, int64_t r) {
  return reinterpret_cast<const Chunk *>(static_cast<const char *>(w) + static_cast<uint64_t>(r) * row_bytes);
}

// ---- weights ----

template <class Chunk>
__global__ void get_rows_kernel(const void *table, uint64_t row_bytes, int64_t n_chunks, int64_t n_rows,
                                const int32_t *tokens, float *out) {
  constexpr int n = ChunkTraits<Chunk>::size;
  const int64_t t = blockIdx.x;
  const int32_t token = tokens[t];
  float *dst = out + t * n_chunks * n;
  if (token < 0 || token >= n_rows) {  // the host validated; never read outside the table
    for (int64_t i = threadIdx.x; i < n_chunks * n; i += blockDim.x) dst[i] = NAN;
    return;
  }
  const Chunk *row = row_of<Chunk>(table, row_bytes, token);
  for (int64_t c = threadIdx.x; c < n_chunks; c += blockDim.x) dequantize_chunk(row[c], dst + c * n);
}

// One warp per output row; lane l dequantizes piece gemv_lane(l).piece of every chunk it is given
// into registers and multiplies it with up to kGemvMaxTokens activation rows (read from global
// memory: they are small and stay in L1/L2, while each weight byte is read exactly once).
template <class Chunk>
__global__ void gemv_kernel(const void *w, uint64_t row_bytes, int64_t n_chunks, int64_t ne0, int64_t ne1,
                            const float *x, int n_tokens, float *y) {
  constexpr int n = ChunkTraits<Chunk>::size;
  constexpr int piece_size = PieceTraits<Chunk>::size;
  const int lane = threadIdx.x % kWarp;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / kWarp;
  if (r >= ne1) return;
  const Chunk *row = row_of<Chunk>(w, row_bytes, r);
  const GemvLane l = gemv_lane(lane, PieceTraits<Chunk>::count);
  float acc[kGemvMaxTokens] = {};
  for (int64_t c = l.first_chunk; c < n_chunks; c += l.chunks_per_step)
    piece_dot<kGemvMaxTokens>(row[c], l.piece, x + c * n + l.piece * piece_size, ne0, n_tokens, acc);
#pragma unroll
  for (int t = 0; t < kGemvMaxTokens; ++t) {
    if (t >= n_tokens) break;
    const float sum = warp_sum(acc[t]);
    if (lane == 0) y[t * ne1 + r] = sum;
  }
}

// One block per token row: x16 = f16(x * 2^e), scale = 2^-e (f16_row_exponent).
__global__ void f32_to_f16_scaled_kernel(const float *x, int64_t k, uint16_t *x16, float *scales) {
  __shared__ float partial[kThreads / kWarp];
  const float *xt = x + blockIdx.x * k;
  uint16_t *out = x16 + blockIdx.x * k;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) amax = fmaxf(amax, fabsf(xt[i]));
  amax = warp_max(amax);
  if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = amax;
  __syncthreads();
  float row_max = 0.0f;
#pragma unroll
  for (int i = 0; i < kThreads / kWarp; ++i) row_max = fmaxf(row_max, partial[i]);
  const int e = f16_row_exponent(row_max);
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) out[i] = quant::f32_to_f16(ldexpf(xt[i], e));
  if (threadIdx.x == 0) scales[blockIdx.x] = ldexpf(1.0f, -e);
}

__global__ void scale_rows_kernel(float *y, int64_t n_tokens, int64_t n, int64_t ldy, const float *scales) {
  for (int64_t i = thread_index(); i < n_tokens * n; i += grid_size()) {
    const int64_t t = i / n, r = i % n;
    y[t * ldy + r] *= scales[t];
  }
}

// ---- activations ----

template <class W>
__global__ void rms_norm_kernel(const float *x, const W *weight, int64_t n, float eps, float *y) {
  __shared__ float partial[kThreads / kWarp];
  const float *xt = x + blockIdx.x * n;
  float *yt = y + blockIdx.x * n;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += xt[i] * xt[i];
  sum = warp_sum(sum);
  if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = sum;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kThreads / kWarp; ++i) total += partial[i];
  const float inv = rms_inverse(total, n, eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    float wi;
    dequantize_chunk(weight[i], &wi);
    yt[i] = xt[i] * inv * wi;
  }
}

__global__ void rope_kernel(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                            int64_t n_rot, float freq_base, float freq_scale, const float *freq_factors, bool neox,
                            RopeYarn yarn) {
  const int64_t total = n_tokens * n_heads * (n_rot / 2);
  for (int64_t i = thread_index(); i < total; i += grid_size()) {
    const RopeItem item = rope_item(i, n_heads, head_dim, n_rot, neox);
    const float factor = freq_factors ? freq_factors[item.pair] : 1.0f;
    rope_rotate(x[item.first], x[item.second],
                rope_cos_sin(pos0 + item.t, item.pair, n_rot, freq_base, freq_scale, factor, yarn));
  }
}

__global__ void kv_store_plain_kernel(KvType type, void *k_cache, void *v_cache, const float *k, const float *v,
                                      int64_t offset, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += grid_size()) {
    if (type == KvType::f32) {
      static_cast<float *>(k_cache)[offset + i] = k[i];
      static_cast<float *>(v_cache)[offset + i] = v[i];
    } else {
      static_cast<uint16_t *>(k_cache)[offset + i] = quant::f32_to_f16(k[i]);
      static_cast<uint16_t *>(v_cache)[offset + i] = quant::f32_to_f16(v[i]);
    }
  }
}

// One thread per 32-value block; rows are whole numbers of blocks, so blocks stay in one row.
__global__ void kv_store_q8_0_kernel(quant::block_q8_0 *k_cache, quant::block_q8_0 *v_cache, const float *k,
                                     const float *v, int64_t first_block, int64_t n_blocks) {
  for (int64_t b = thread_index(); b < n_blocks; b += grid_size()) {
    k_cache[first_block + b] = quantize_q8_0(k + b * quant::QK8_0);
    v_cache[first_block + b] = quantize_q8_0(v + b * quant::QK8_0);
  }
}

struct AttentionArgs {
  const float *q;
  const void *k_cache, *v_cache;
  uint64_t kv_row_bytes;
  AttentionShape shape;
  const float *sinks;  // n_head, or null
  int n_splits;
  float *partials;     // n_splits > 1: [t][head][split][max, sum, acc[head_dim]]
  float *out;
};

// One warp per (token, head, key split): streams over the split's keys with the online softmax;
// lane l holds dimensions l, l+32, ... of q and of the output accumulator (registers: the loops
// over them are unrolled to kAttnMaxDimsPerLane with a guard). Without splits the warp finishes
// the head (sink included); with splits it leaves a partial for attention_merge_kernel.
// Templated on the cache type so kv_load's switch folds away (one variant per type in registers).
template <KvType kKv>
__global__ void attention_kernel(AttentionArgs a) {
  const int lane = threadIdx.x % kWarp;
  const AttentionShape &s = a.shape;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kAttnWarps + threadIdx.x / kWarp;
  if (w >= s.n_tokens * s.n_head * a.n_splits) return;
  const AttentionItem item = attention_item(w, s.n_head, a.n_splits);
  const KeyRange keys = attention_split(attention_keys(s.pos0, item.t, s.window), item.split, a.n_splits);
  const int64_t kv_offset = kv_head_of(item.head, s.n_head, s.n_head_kv) * s.head_dim;  // element in a cache row
  const float *qh = a.q + (item.t * s.n_head + item.head) * s.head_dim;
  const int dims = attention_lane_dims(s.head_dim, lane);
  float qv[kAttnMaxDimsPerLane], acc[kAttnMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kAttnMaxDimsPerLane; ++i) {
    qv[i] = i < dims ? qh[lane + i * kWarp] : 0.0f;
    acc[i] = 0.0f;
  }
  OnlineSoftmax softmax;
  for (int64_t j = keys.first; j < keys.end; ++j) {
    const char *k_row = static_cast<const char *>(a.k_cache) + j * a.kv_row_bytes;
    const char *v_row = static_cast<const char *>(a.v_cache) + j * a.kv_row_bytes;
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kAttnMaxDimsPerLane; ++i)
      if (i < dims) dot += qv[i] * kv_load(k_row, kKv, kv_offset + lane + i * kWarp);
    const SoftmaxStep step = online_softmax_add(softmax, warp_sum(dot) * s.scale);
#pragma unroll
    for (int i = 0; i < kAttnMaxDimsPerLane; ++i)
      if (i < dims)
        acc[i] = acc[i] * step.rescale + step.weight * kv_load(v_row, kKv, kv_offset + lane + i * kWarp);
  }
  if (a.n_splits > 1) {
    float *p = a.partials + w * attention_partial_floats(s.head_dim);
    if (lane == 0) {
      p[0] = softmax.max;
      p[1] = softmax.sum;
    }
#pragma unroll
    for (int i = 0; i < kAttnMaxDimsPerLane; ++i)
      if (i < dims) p[2 + lane + i * kWarp] = acc[i];
    return;
  }
  const float rescale = a.sinks ? online_softmax_add_sink(softmax, a.sinks[item.head]) : 1.0f;
  float *oh = a.out + (item.t * s.n_head + item.head) * s.head_dim;
#pragma unroll
  for (int i = 0; i < kAttnMaxDimsPerLane; ++i)
    if (i < dims) oh[lane + i * kWarp] = acc[i] * rescale / softmax.sum;
}

// One warp per (token, head): merges the n_splits partials (softmax_merge_weight) and the sink.
__global__ void attention_merge_kernel(AttentionArgs a) {
  const int lane = threadIdx.x % kWarp;
  const AttentionShape &s = a.shape;
  const int64_t pair = static_cast<int64_t>(blockIdx.x) * kAttnWarps + threadIdx.x / kWarp;
  if (pair >= s.n_tokens * s.n_head) return;
  const int64_t head = pair % s.n_head;
  const int64_t stride = attention_partial_floats(s.head_dim);
  const float *first = a.partials + pair * a.n_splits * stride;
  float max = a.sinks ? a.sinks[head] : -INFINITY;
  for (int sp = 0; sp < a.n_splits; ++sp) max = fmaxf(max, first[sp * stride]);
  const int dims = attention_lane_dims(s.head_dim, lane);
  float acc[kAttnMaxDimsPerLane] = {};
  float sum = a.sinks ? softmax_merge_weight(a.sinks[head], max) : 0.0f;
  for (int sp = 0; sp < a.n_splits; ++sp) {
    const float *p = first + sp * stride;
    const float weight = softmax_merge_weight(p[0], max);
    sum += weight * p[1];
#pragma unroll
    for (int i = 0; i < kAttnMaxDimsPerLane; ++i)
      if (i < dims) acc[i] += weight * p[2 + lane + i * kWarp];
  }
  float *oh = a.out + pair * s.head_dim;
#pragma unroll
  for (int i = 0; i < kAttnMaxDimsPerLane; ++i)
    if (i < dims) oh[lane + i * kWarp] = acc[i] / sum;
}

__global__ void swiglu_kernel(const float *gate, const float *up, int64_t n, float *out) {
  for (int64_t i = thread_index(); i < n; i += grid_size()) out[i] = swiglu(gate[i], up[i]);
}

__global__ void swiglu_clamped_kernel(const float *gate, const float *up, int64_t n, float alpha, float limit,
                                      float *out) {
  for (int64_t i = thread_index(); i < n; i += grid_size()) out[i] = swiglu_clamped(gate[i], up[i], alpha, limit);
}

__global__ void add_kernel(float *y, const float *x, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += grid_size()) y[i] += x[i];
}

__global__ void add_bias_kernel(float *y, const float *bias, int64_t n, int64_t total) {
  for (int64_t i = thread_index(); i < total; i += grid_size()) y[i] += bias[i % n];
}

// Element i of the n x width destination: row i / width of dst, from row rows[i / width] of src.
__global__ void gather_rows_kernel(const float *src, int64_t width, const int32_t *rows, int64_t n, float *dst) {
  for (int64_t i = thread_index(); i < n * width; i += grid_size())
    dst[i] = src[int64_t{rows[i / width]} * width + i % width];
}

__global__ void scatter_rows_scaled_kernel(const float *src, int64_t width, const int32_t *rows, const float *scales,
                                           int64_t n, float *dst) {
  for (int64_t i = thread_index(); i < n * width; i += grid_size())
    dst[int64_t{rows[i / width]} * width + i % width] = src[i] * scales[i / width];
}

template <class Kernel>
void take_stack_bytes(uint64_t &bytes, Kernel *kernel) {
  cudaFuncAttributes a{};
  check(cudaFuncGetAttributes(&a, kernel), "cudaFuncGetAttributes");
  bytes = std::max<uint64_t>(bytes, a.localSizeBytes);
}

KvType kv_type_of(GgmlType type, const char *op) {
  switch (type) {
    case GgmlType::F32: return KvType::f32;
    case GgmlType::F16: return KvType::f16;
    case GgmlType::Q8_0: return KvType::q8_0;
    default: fail(ErrorCode::unsupported, op, "KV cache type " + std::string(type_name(type)) + " (F32, F16, Q8_0)");
  }
}

}  // namespace

uint64_t kernel_stack_bytes() {
  uint64_t bytes = dequantize_stack_bytes();
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::MXFP4,
                        GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    dispatch_weight(type, "kernel_stack_bytes", [&](auto *tag) {
      using Chunk = std::remove_pointer_t<decltype(tag)>;
      take_stack_bytes(bytes, get_rows_kernel<Chunk>);
      take_stack_bytes(bytes, gemv_kernel<Chunk>);
    });
  take_stack_bytes(bytes, f32_to_f16_scaled_kernel);
  take_stack_bytes(bytes, scale_rows_kernel);
  take_stack_bytes(bytes, rms_norm_kernel<float>);
  take_stack_bytes(bytes, rms_norm_kernel<f16_elem>);
  take_stack_bytes(bytes, rope_kernel);
  take_stack_bytes(bytes, kv_store_plain_kernel);
  take_stack_bytes(bytes, kv_store_q8_0_kernel);
  take_stack_bytes(bytes, attention_kernel<KvType::f32>);
  take_stack_bytes(bytes, attention_kernel<KvType::f16>);
  take_stack_bytes(bytes, attention_kernel<KvType::q8_0>);
  take_stack_bytes(bytes, attention_merge_kernel);
  take_stack_bytes(bytes, swiglu_kernel);
  take_stack_bytes(bytes, swiglu_clamped_kernel);
  take_stack_bytes(bytes, add_kernel);
  take_stack_bytes(bytes, add_bias_kernel);
  take_stack_bytes(bytes, gather_rows_kernel);
  take_stack_bytes(bytes, scatter_rows_scaled_kernel);
  return bytes;
}

bool supports_weight_type(GgmlType type) noexcept {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0: case GgmlType::Q8_0:
    case GgmlType::MXFP4: case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return true;
    default: return false;
  }
}

void get_rows(Runtime &rt, GgmlType type, const void *table, int64_t ne0, int64_t n_rows, const int32_t *tokens,
              int64_t n_tokens, float *out) {
  if (n_tokens <= 0) return;
  check_row_length(type, ne0, "get_rows");
  dispatch_weight(type, "get_rows", [&](auto *tag) {
    using Chunk = std::remove_pointer_t<decltype(tag)>;
    const int64_t n_chunks = ne0 / ChunkTraits<Chunk>::size;
    get_rows_kernel<Chunk><<<static_cast<unsigned>(n_tokens), 128, 0, stream_of(rt)>>>(
        table, row_bytes(type, ne0), n_chunks, n_rows, tokens, out);
  });
  check_launch("get_rows");
}

void gemv(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t ne1, const float *x, int64_t n_tokens,
          float *y) {
  if (n_tokens <= 0 || ne1 <= 0) return;
  check_row_length(type, ne0, "matmul");
  dispatch_weight(type, "matmul", [&](auto *tag) {
    using Chunk = std::remove_pointer_t<decltype(tag)>;
    const int64_t n_chunks = ne0 / ChunkTraits<Chunk>::size;
    const unsigned blocks = blocks_for_warps(ne1, kGemvWarps);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kGemvMaxTokens) {
      const int n = static_cast<int>(n_tokens - t0 < kGemvMaxTokens ? n_tokens - t0 : kGemvMaxTokens);
      gemv_kernel<Chunk><<<blocks, kGemvWarps * kWarp, 0, stream_of(rt)>>>(
          w, row_bytes(type, ne0), n_chunks, ne0, ne1, x + t0 * ne0, n, y + t0 * ne1);
    }
  });
  check_launch("matmul (gemv)");
}

// Rows of whole blocks are contiguous, so n_rows rows are one run of n_rows * ne0 weights.
void dequantize_f16(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t n_rows, uint16_t *out) {
  if (n_rows <= 0) return;
  check_row_length(type, ne0, "matmul (dequantize)");
  cuda::dequantize_f16(type, w, out, n_rows * ne0, stream_of(rt));
}

void dequantize_f32(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t n_rows, float *out) {
  if (n_rows <= 0) return;
  check_row_length(type, ne0, "matmul (dequantize)");
  cuda::dequantize(type, w, out, n_rows * ne0, stream_of(rt));
}

void convert_f32_to_f16_scaled(Runtime &rt, const float *x, int64_t n_tokens, int64_t k, uint16_t *x16,
                               float *scales) {
  if (n_tokens <= 0 || k <= 0) return;
  f32_to_f16_scaled_kernel<<<static_cast<unsigned>(n_tokens), kThreads, 0, stream_of(rt)>>>(x, k, x16, scales);
  check_launch("matmul (convert)");
}

void scale_rows(Runtime &rt, float *y, int64_t n_tokens, int64_t n, int64_t ldy, const float *scales) {
  if (n_tokens <= 0 || n <= 0) return;
  scale_rows_kernel<<<grid(n_tokens * n), kThreads, 0, stream_of(rt)>>>(y, n_tokens, n, ldy, scales);
  check_launch("matmul (unscale)");
}

namespace {
// The argument mapping is row_major_gemm (kernel_math.hpp, host-tested).
void gemm(Runtime &rt, const void *w, const void *x, cudaDataType_t input_type, cublasComputeType_t compute,
          int64_t rows, int64_t k, int64_t n_tokens, float *y, int64_t ldy, const char *op) {
  const GemmArgs g = row_major_gemm(rows, k, n_tokens, ldy);
  const float alpha = 1.0f, beta = 0.0f;  // the 32F compute types take float scalars
  check(cublasGemmEx(cublas_of(rt), g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                     g.m, g.n, g.k, &alpha, w, input_type, g.lda, x, input_type, g.ldb, &beta, y, CUDA_R_32F, g.ldc,
                     compute, CUBLAS_GEMM_DEFAULT),
        op);
}
}  // namespace

void gemm_f16(Runtime &rt, const uint16_t *w16, int64_t rows, int64_t k, const uint16_t *x16, int64_t n_tokens,
              float *y, int64_t ldy) {
  gemm(rt, w16, x16, CUDA_R_16F, CUBLAS_COMPUTE_32F, rows, k, n_tokens, y, ldy, "matmul (cublasGemmEx f16)");
}

void gemm_f32(Runtime &rt, const float *w, int64_t rows, int64_t k, const float *x, int64_t n_tokens, float *y,
              int64_t ldy) {
  gemm(rt, w, x, CUDA_R_32F, CUBLAS_COMPUTE_32F, rows, k, n_tokens, y, ldy, "matmul (cublasGemmEx f32)");
}

void gemm_tf32(Runtime &rt, const float *w, int64_t rows, int64_t k, const float *x, int64_t n_tokens, float *y,
               int64_t ldy) {
  gemm(rt, w, x, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, rows, k, n_tokens, y, ldy, "matmul (cublasGemmEx tf32)");
}

void rms_norm(Runtime &rt, const float *x, GgmlType weight_type, const void *weight, int64_t n, int64_t n_tokens,
              float eps, float *y) {
  if (n_tokens <= 0) return;
  if (n <= 0) fail(ErrorCode::invalid_argument, "rms_norm", "row length " + std::to_string(n));
  if (n_tokens > INT32_MAX)  // one block per row: the grid's x limit
    fail(ErrorCode::invalid_argument, "rms_norm", std::to_string(n_tokens) + " rows in one call");
  const unsigned blocks = static_cast<unsigned>(n_tokens);
  if (weight_type == GgmlType::F32)
    rms_norm_kernel<<<blocks, kThreads, 0, stream_of(rt)>>>(x, static_cast<const float *>(weight), n, eps, y);
  else if (weight_type == GgmlType::F16)
    rms_norm_kernel<<<blocks, kThreads, 0, stream_of(rt)>>>(x, static_cast<const f16_elem *>(weight), n, eps, y);
  else
    fail(ErrorCode::unsupported, "rms_norm", "norm weight type " + std::string(type_name(weight_type)));
  check_launch("rms_norm");
}

void rope(Runtime &rt, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0, int64_t n_rot,
          float freq_base, float freq_scale, const float *freq_factors, bool neox, const RopeYarn &yarn) {
  if (n_rot <= 0 || n_rot > head_dim || n_rot % 2 != 0)
    fail(ErrorCode::invalid_argument, "rope",
         "n_rot " + std::to_string(n_rot) + " must be even and in 1.." + std::to_string(head_dim));
  const int64_t total = n_tokens * n_heads * (n_rot / 2);
  if (total <= 0) return;
  rope_kernel<<<grid(total), kThreads, 0, stream_of(rt)>>>(x, n_tokens, n_heads, head_dim, pos0, n_rot, freq_base,
                                                            freq_scale, freq_factors, neox, yarn);
  check_launch("rope");
}

void kv_store(Runtime &rt, GgmlType type, void *k_cache, void *v_cache, const float *k, const float *v, int64_t row,
              int64_t pos0, int64_t n_tokens) {
  const KvType kv_type = kv_type_of(type, "kv_store");
  if (n_tokens <= 0) return;
  if (kv_type == KvType::q8_0) {
    if (row % quant::QK8_0 != 0)
      fail(ErrorCode::invalid_argument, "kv_store", "Q8_0 cache rows need a multiple of 32 values, not " +
                                                        std::to_string(row));
    const int64_t n_blocks = n_tokens * (row / quant::QK8_0);
    kv_store_q8_0_kernel<<<grid(n_blocks), kThreads, 0, stream_of(rt)>>>(
        static_cast<quant::block_q8_0 *>(k_cache), static_cast<quant::block_q8_0 *>(v_cache), k, v,
        kv_q8_0_first_block(pos0, row), n_blocks);
  } else {
    const int64_t n = n_tokens * row;
    kv_store_plain_kernel<<<grid(n), kThreads, 0, stream_of(rt)>>>(kv_type, k_cache, v_cache, k, v,
                                                                    kv_row_offset(pos0, row), n);
  }
  check_launch("kv_store");
}

void attention(Runtime &rt, const float *q, GgmlType kv_type, const void *k_cache, const void *v_cache,
               const AttentionShape &shape, const float *sinks, float *scratch, uint64_t scratch_floats, float *out) {
  const KvType type = kv_type_of(kv_type, "attention");
  if (shape.head_dim <= 0 || shape.head_dim > kWarp * kAttnMaxDimsPerLane)
    fail(ErrorCode::unsupported, "attention", "head_dim " + std::to_string(shape.head_dim) + " (at most 256)");
  if (shape.n_head_kv <= 0 || shape.n_head % shape.n_head_kv != 0)
    fail(ErrorCode::invalid_argument, "attention",
         "n_head " + std::to_string(shape.n_head) + " is not a multiple of n_head_kv " +
             std::to_string(shape.n_head_kv));
  const int64_t pairs = shape.n_tokens * shape.n_head;
  if (pairs <= 0) return;
  // Warps enough for about 16 per multiprocessor, so a single decode token fills the GPU.
  const int64_t target_warps = 16 * static_cast<int64_t>(rt.multiprocessor_count());
  const int64_t max_keys = shape.pos0 + shape.n_tokens;
  const int n_splits = scratch ? attention_splits(pairs, max_keys, shape.head_dim, scratch_floats, target_warps) : 1;
  const AttentionArgs args{q,     k_cache, v_cache,  row_bytes(kv_type, shape.n_head_kv * shape.head_dim),
                           shape, sinks,   n_splits, scratch,
                           out};
  const unsigned blocks = blocks_for_warps(pairs * n_splits, kAttnWarps);
  switch (type) {
    case KvType::f32: attention_kernel<KvType::f32><<<blocks, kAttnWarps * kWarp, 0, stream_of(rt)>>>(args); break;
    case KvType::f16: attention_kernel<KvType::f16><<<blocks, kAttnWarps * kWarp, 0, stream_of(rt)>>>(args); break;
    case KvType::q8_0: attention_kernel<KvType::q8_0><<<blocks, kAttnWarps * kWarp, 0, stream_of(rt)>>>(args); break;
  }
  check_launch("attention");
  if (n_splits == 1) return;
  attention_merge_kernel<<<blocks_for_warps(pairs, kAttnWarps), kAttnWarps * kWarp, 0, stream_of(rt)>>>(args);
  check_launch("attention (merge)");
}

void swiglu(Runtime &rt, const float *gate, const float *up, int64_t n, float *out) {
  if (n <= 0) return;
  swiglu_kernel<<<grid(n), kThreads, 0, stream_of(rt)>>>(gate, up, n, out);
  check_launch("swiglu");
}

void swiglu_clamped(Runtime &rt, const float *gate, const float *up, int64_t n, float alpha, float limit, float *out) {
  if (n <= 0) return;
  swiglu_clamped_kernel<<<grid(n), kThreads, 0, stream_of(rt)>>>(gate, up, n, alpha, limit, out);
  check_launch("swiglu_clamped");
}

void add(Runtime &rt, float *y, const float *x, int64_t n) {
  if (n <= 0) return;
  add_kernel<<<grid(n), kThreads, 0, stream_of(rt)>>>(y, x, n);
  check_launch("add");
}

void add_bias(Runtime &rt, float *y, const float *bias, int64_t n, int64_t n_tokens) {
  if (n <= 0 || n_tokens <= 0) return;
  add_bias_kernel<<<grid(n * n_tokens), kThreads, 0, stream_of(rt)>>>(y, bias, n, n * n_tokens);
  check_launch("add_bias");
}

void gather_rows(Runtime &rt, const float *src, int64_t width, const int32_t *rows, int64_t n, float *dst) {
  if (n <= 0 || width <= 0) return;
  gather_rows_kernel<<<grid(n * width), kThreads, 0, stream_of(rt)>>>(src, width, rows, n, dst);
  check_launch("gather_rows");
}

void scatter_rows_scaled(Runtime &rt, const float *src, int64_t width, const int32_t *rows, const float *scales,
                         int64_t n, float *dst) {
  if (n <= 0 || width <= 0) return;
  scatter_rows_scaled_kernel<<<grid(n * width), kThreads, 0, stream_of(rt)>>>(src, width, rows, scales, n, dst);
  check_launch("scatter_rows_scaled");
}

}  // namespace vramfit::cuda
