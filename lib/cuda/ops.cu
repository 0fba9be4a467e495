// CUDA kernels behind CudaDevice. The arithmetic is in kernel_math.hpp (host-tested); each kernel
// here only decides which thread computes what. Straightforward layouts, chosen to be obviously
// right: one warp per output row (gemv) or per (token, head) (attention), grid-stride loops for
// element-wise work.
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

constexpr int kWarp = 32;
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

unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);  // grid-stride beyond
}

__device__ float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Calls f(static_cast<Chunk *>(nullptr)) with the chunk type of a weight type.
template <class F>
void dispatch_weight(GgmlType type, const char *op, F &&f) {
  switch (type) {
    case GgmlType::F32: return f(static_cast<float *>(nullptr));
    case GgmlType::F16: return f(static_cast<f16_elem *>(nullptr));
    case GgmlType::BF16: return f(static_cast<bf16_elem *>(nullptr));
    case GgmlType::Q4_0: return f(static_cast<quant::block_q4_0 *>(nullptr));
    case GgmlType::Q8_0: return f(static_cast<quant::block_q8_0 *>(nullptr));
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

// One warp per output row; each lane takes every 32nd chunk of the row.
template <class Chunk>
__global__ void gemv_kernel(const void *w, uint64_t row_bytes, int64_t n_chunks, int64_t ne0, int64_t ne1,
                            const float *x, int n_tokens, float *y) {
  constexpr int n = ChunkTraits<Chunk>::size;
  const int lane = threadIdx.x % kWarp;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / kWarp;
  if (r >= ne1) return;
  const Chunk *row = row_of<Chunk>(w, row_bytes, r);
  float acc[kGemvMaxTokens] = {};
  for (int64_t c = lane; c < n_chunks; c += kWarp) chunk_dot(row[c], x + c * n, ne0, n_tokens, acc);
  for (int t = 0; t < n_tokens; ++t) {
    const float sum = warp_sum(acc[t]);
    if (lane == 0) y[t * ne1 + r] = sum;
  }
}

__global__ void f32_to_f16_kernel(const float *x, int64_t n, uint16_t *out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = quant::f32_to_f16(x[i]);
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
                            int64_t n_rot, float freq_base, float freq_scale, const float *freq_factors) {
  const int64_t pairs_per_head = n_rot / 2;
  const int64_t total = n_tokens * n_heads * pairs_per_head;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t pair = i % pairs_per_head;
    const int64_t head = (i / pairs_per_head) % n_heads;
    const int64_t t = i / (pairs_per_head * n_heads);
    const float factor = freq_factors ? freq_factors[pair] : 1.0f;
    const float theta = rope_theta(pos0 + t, pair, n_rot, freq_base, freq_scale, factor);
    float *p = x + (t * n_heads + head) * head_dim + 2 * pair;
    rope_rotate(p[0], p[1], theta);
  }
}

__global__ void kv_store_plain_kernel(KvType type, void *k_cache, void *v_cache, const float *k, const float *v,
                                      int64_t offset, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
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
  for (int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; b < n_blocks;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    k_cache[first_block + b] = quantize_q8_0(k + b * quant::QK8_0);
    v_cache[first_block + b] = quantize_q8_0(v + b * quant::QK8_0);
  }
}

// One warp per (token, head): streams over keys 0..pos0+t with the online softmax; lane l holds
// dimensions l, l+32, ... of q and of the output accumulator.
__global__ void attention_kernel(const float *q, KvType kv_type, const void *k_cache, const void *v_cache,
                                 uint64_t kv_row_bytes, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                                 int64_t pos0, int64_t n_tokens, float scale, float *out) {
  const int lane = threadIdx.x % kWarp;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kAttnWarps + threadIdx.x / kWarp;
  if (item >= n_tokens * n_head) return;
  const int64_t t = item / n_head, head = item % n_head;
  const int64_t kv_offset = kv_head_of(head, n_head, n_head_kv) * head_dim;  // element in a cache row
  const float *qh = q + (t * n_head + head) * head_dim;
  const int dims = attention_lane_dims(head_dim, lane);
  float qv[kAttnMaxDimsPerLane], acc[kAttnMaxDimsPerLane];
  for (int i = 0; i < dims; ++i) {
    qv[i] = qh[lane + i * kWarp];
    acc[i] = 0.0f;
  }
  OnlineSoftmax softmax;
  const int64_t n_keys = pos0 + t + 1;  // causal
  for (int64_t j = 0; j < n_keys; ++j) {
    const char *k_row = static_cast<const char *>(k_cache) + j * kv_row_bytes;
    const char *v_row = static_cast<const char *>(v_cache) + j * kv_row_bytes;
    float dot = 0.0f;
    for (int i = 0; i < dims; ++i) dot += qv[i] * kv_load(k_row, kv_type, kv_offset + lane + i * kWarp);
    const SoftmaxStep step = online_softmax_add(softmax, warp_sum(dot) * scale);
    for (int i = 0; i < dims; ++i)
      acc[i] = acc[i] * step.rescale + step.weight * kv_load(v_row, kv_type, kv_offset + lane + i * kWarp);
  }
  float *oh = out + (t * n_head + head) * head_dim;
  for (int i = 0; i < dims; ++i) oh[lane + i * kWarp] = acc[i] / softmax.sum;
}

__global__ void swiglu_kernel(const float *gate, const float *up, int64_t n, float *out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = swiglu(gate[i], up[i]);
}

__global__ void add_kernel(float *y, const float *x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] += x[i];
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
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K,
                        GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    dispatch_weight(type, "kernel_stack_bytes", [&](auto *tag) {
      using Chunk = std::remove_pointer_t<decltype(tag)>;
      take_stack_bytes(bytes, get_rows_kernel<Chunk>);
      take_stack_bytes(bytes, gemv_kernel<Chunk>);
    });
  take_stack_bytes(bytes, f32_to_f16_kernel);
  take_stack_bytes(bytes, rms_norm_kernel<float>);
  take_stack_bytes(bytes, rms_norm_kernel<f16_elem>);
  take_stack_bytes(bytes, rope_kernel);
  take_stack_bytes(bytes, kv_store_plain_kernel);
  take_stack_bytes(bytes, kv_store_q8_0_kernel);
  take_stack_bytes(bytes, attention_kernel);
  take_stack_bytes(bytes, swiglu_kernel);
  take_stack_bytes(bytes, add_kernel);
  return bytes;
}

bool supports_weight_type(GgmlType type) noexcept {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0: case GgmlType::Q8_0:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
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
    const unsigned blocks = static_cast<unsigned>((ne1 + kGemvWarps - 1) / kGemvWarps);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kGemvMaxTokens) {
      const int n = static_cast<int>(n_tokens - t0 < kGemvMaxTokens ? n_tokens - t0 : kGemvMaxTokens);
      gemv_kernel<Chunk><<<blocks, kGemvWarps * kWarp, 0, stream_of(rt)>>>(
          w, row_bytes(type, ne0), n_chunks, ne0, ne1, x + t0 * ne0, n, y + t0 * ne1);
    }
  });
  check_launch("matmul (gemv)");
}

void dequantize_f16(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t n_rows, uint16_t *out) {
  if (n_rows <= 0) return;
  check_row_length(type, ne0, "matmul (dequantize)");
  // Rows of whole blocks are contiguous, so n_rows rows are one run of n_rows * ne0 weights.
  cuda::dequantize_f16(type, w, out, n_rows * ne0, stream_of(rt));
}

void convert_f32_to_f16(Runtime &rt, const float *x, int64_t n, uint16_t *out) {
  if (n <= 0) return;
  f32_to_f16_kernel<<<grid_for(n), kThreads, 0, stream_of(rt)>>>(x, n, out);
  check_launch("matmul (convert)");
}

namespace {
// The argument mapping is row_major_gemm (kernel_math.hpp, host-tested).
void gemm(Runtime &rt, const void *w, const void *x, cudaDataType_t input_type, int64_t rows, int64_t k,
          int64_t n_tokens, float *y, int64_t ldy, const char *op) {
  const GemmArgs g = row_major_gemm(rows, k, n_tokens, ldy);
  const float alpha = 1.0f, beta = 0.0f;  // CUBLAS_COMPUTE_32F takes float scalars
  check(cublasGemmEx(cublas_of(rt), g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                     g.m, g.n, g.k, &alpha, w, input_type, g.lda, x, input_type, g.ldb, &beta, y, CUDA_R_32F, g.ldc,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        op);
}
}  // namespace

void gemm_f16(Runtime &rt, const uint16_t *w16, int64_t rows, int64_t k, const uint16_t *x16, int64_t n_tokens,
              float *y, int64_t ldy) {
  gemm(rt, w16, x16, CUDA_R_16F, rows, k, n_tokens, y, ldy, "matmul (cublasGemmEx f16)");
}

void gemm_f32(Runtime &rt, const float *w, int64_t rows, int64_t k, const float *x, int64_t n_tokens, float *y,
              int64_t ldy) {
  gemm(rt, w, x, CUDA_R_32F, rows, k, n_tokens, y, ldy, "matmul (cublasGemmEx f32)");
}

void rms_norm(Runtime &rt, const float *x, GgmlType weight_type, const void *weight, int64_t n, int64_t n_tokens,
              float eps, float *y) {
  if (n_tokens <= 0) return;
  const unsigned grid = static_cast<unsigned>(n_tokens);
  if (weight_type == GgmlType::F32)
    rms_norm_kernel<<<grid, kThreads, 0, stream_of(rt)>>>(x, static_cast<const float *>(weight), n, eps, y);
  else if (weight_type == GgmlType::F16)
    rms_norm_kernel<<<grid, kThreads, 0, stream_of(rt)>>>(x, static_cast<const f16_elem *>(weight), n, eps, y);
  else
    fail(ErrorCode::unsupported, "rms_norm", "norm weight type " + std::string(type_name(weight_type)));
  check_launch("rms_norm");
}

void rope(Runtime &rt, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0, int64_t n_rot,
          float freq_base, float freq_scale, const float *freq_factors) {
  if (n_rot <= 0 || n_rot > head_dim || n_rot % 2 != 0)
    fail(ErrorCode::invalid_argument, "rope",
         "n_rot " + std::to_string(n_rot) + " must be even and in 1.." + std::to_string(head_dim));
  const int64_t total = n_tokens * n_heads * (n_rot / 2);
  if (total <= 0) return;
  rope_kernel<<<grid_for(total), kThreads, 0, stream_of(rt)>>>(x, n_tokens, n_heads, head_dim, pos0, n_rot,
                                                                 freq_base, freq_scale, freq_factors);
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
    const int64_t blocks_per_row = row / quant::QK8_0;
    const int64_t n_blocks = n_tokens * blocks_per_row;
    kv_store_q8_0_kernel<<<grid_for(n_blocks), kThreads, 0, stream_of(rt)>>>(
        static_cast<quant::block_q8_0 *>(k_cache), static_cast<quant::block_q8_0 *>(v_cache), k, v,
        pos0 * blocks_per_row, n_blocks);
  } else {
    const int64_t n = n_tokens * row;
    kv_store_plain_kernel<<<grid_for(n), kThreads, 0, stream_of(rt)>>>(kv_type, k_cache, v_cache, k, v, pos0 * row, n);
  }
  check_launch("kv_store");
}

void attention(Runtime &rt, const float *q, GgmlType kv_type, const void *k_cache, const void *v_cache,
               int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t pos0, int64_t n_tokens, float scale,
               float *out) {
  const KvType type = kv_type_of(kv_type, "attention");
  if (head_dim <= 0 || head_dim > kWarp * kAttnMaxDimsPerLane)
    fail(ErrorCode::unsupported, "attention", "head_dim " + std::to_string(head_dim) + " (at most 256)");
  if (n_head_kv <= 0 || n_head % n_head_kv != 0)
    fail(ErrorCode::invalid_argument, "attention",
         "n_head " + std::to_string(n_head) + " is not a multiple of n_head_kv " + std::to_string(n_head_kv));
  const int64_t items = n_tokens * n_head;
  if (items <= 0) return;
  const unsigned blocks = static_cast<unsigned>((items + kAttnWarps - 1) / kAttnWarps);
  attention_kernel<<<blocks, kAttnWarps * kWarp, 0, stream_of(rt)>>>(q, type, k_cache, v_cache,
                                                                     row_bytes(kv_type, n_head_kv * head_dim), n_head,
                                                                     n_head_kv, head_dim, pos0, n_tokens, scale, out);
  check_launch("attention");
}

void swiglu(Runtime &rt, const float *gate, const float *up, int64_t n, float *out) {
  if (n <= 0) return;
  swiglu_kernel<<<grid_for(n), kThreads, 0, stream_of(rt)>>>(gate, up, n, out);
  check_launch("swiglu");
}

void add(Runtime &rt, float *y, const float *x, int64_t n) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, stream_of(rt)>>>(y, x, n);
  check_launch("add");
}

}  // namespace vramfit::cuda
