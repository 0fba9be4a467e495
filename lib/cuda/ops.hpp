// Launchers of the CUDA kernels behind CudaDevice's ops (plain C++; the kernels are in ops.cu).
//
// Every pointer is device memory unless its name says host; every launch goes on the runtime's
// stream and returns without waiting. Bad arguments throw Error(invalid_argument) or
// Error(unsupported) naming the op; launch failures throw Error(device).
#pragma once

#include <cstdint>

#include "cuda/kernel_math.hpp"
#include "cuda/runtime.hpp"
#include "vramfit/types.hpp"

namespace vramfit::cuda {

// The largest per-thread stack (local memory) any kernel of lib/cuda needs, in bytes: what
// Runtime reserves up front (cudaLimitStackSize). Asking loads every kernel (cudaFuncGetAttributes),
// so none is loaded later, outside the measured overhead, even under lazy module loading.
uint64_t kernel_stack_bytes();

// True when the weight kernels (get_rows, gemv, dequantize_f16) handle `type`:
// F32, F16, BF16, Q4_0, Q8_0, MXFP4, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool supports_weight_type(GgmlType type) noexcept;

// out[t][:] = dequantized row tokens[t] of `table` ([n_rows][ne0] of `type`); tokens on the device.
void get_rows(Runtime &rt, GgmlType type, const void *table, int64_t ne0, int64_t n_rows,
              const int32_t *tokens, int64_t n_tokens, float *out);

// y[t][r] = sum_k W[r][k] x[t][k] for t < n_tokens, W [ne1][ne0] of `type`: the fused
// dequantize + dot kernel (weights never stored dequantized). Any n_tokens; best when small.
void gemv(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t ne1, const float *x,
          int64_t n_tokens, float *y);

// out[r][k] = f16(W[r][k]) (or f32) for rows [0, n_rows) of W ([.][ne0] of `type`): the weight
// tiles of batched matmul.
void dequantize_f16(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t n_rows, uint16_t *out);
void dequantize_f32(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t n_rows, float *out);
// x16[t][:] = f16(x[t][:] * 2^e_t) and scales[t] = 2^-e_t for t < n_tokens rows of k values, e_t
// from the row's largest |x| (f16_row_exponent, kernel_math.hpp): no row overflows f16.
void convert_f32_to_f16_scaled(Runtime &rt, const float *x, int64_t n_tokens, int64_t k, uint16_t *x16,
                               float *scales);
// y[t][r] *= scales[t] for t < n_tokens, r < n (rows ldy apart): undoes the scaling above.
void scale_rows(Runtime &rt, float *y, int64_t n_tokens, int64_t n, int64_t ldy, const float *scales);
// y[t][r] (row stride ldy) = sum_k w16[r][k] * x16[t][k], f16 inputs, f32 accumulate and output
// (cublasGemmEx): w16 [rows][k], x16 [n_tokens][k].
void gemm_f16(Runtime &rt, const uint16_t *w16, int64_t rows, int64_t k, const uint16_t *x16, int64_t n_tokens,
              float *y, int64_t ldy);
// The same in plain f32 for F32 weights, read in place: no rounding of weights or activations.
void gemm_f32(Runtime &rt, const float *w, int64_t rows, int64_t k, const float *x, int64_t n_tokens, float *y,
              int64_t ldy);
// f32 inputs on TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32): f32's range, f16's 10-bit
// mantissa. For BF16 weights (dequantized exactly to f32 tiles; bf16 fits TF32 exactly).
void gemm_tf32(Runtime &rt, const float *w, int64_t rows, int64_t k, const float *x, int64_t n_tokens, float *y,
               int64_t ldy);

// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, weight F32 or F16 of n elements; y may be x.
void rms_norm(Runtime &rt, const float *x, GgmlType weight_type, const void *weight, int64_t n, int64_t n_tokens,
              float eps, float *y);

// Rope of x [n_tokens][n_heads][head_dim] in place, positions pos0 + t: adjacent pairs, or NeoX
// pairs (i, i + n_rot/2); YaRN per `yarn` (model::RopeParams). freq_factors: n_rot/2 floats on
// the device, or null.
void rope(Runtime &rt, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0, int64_t n_rot,
          float freq_base, float freq_scale, const float *freq_factors, bool neox, const RopeYarn &yarn);

// Writes k, v [n_tokens][row] (row = n_head_kv*head_dim floats) to cache rows pos0.. of
// k_cache, v_cache, stored as `type` (F32, F16, Q8_0; Q8_0 needs row % 32 == 0).
void kv_store(Runtime &rt, GgmlType type, void *k_cache, void *v_cache, const float *k, const float *v,
              int64_t row, int64_t pos0, int64_t n_tokens);

// Causal attention (see model::Device::attention): q, out [n_tokens][n_head*head_dim]; window > 0
// keeps the last `window` keys; sinks: n_head floats on the device, or null. When few (token,
// head) pairs would leave the GPU idle, the keys are split across warps and the partial softmaxes
// merged (flash-decoding), their partials in `scratch` (scratch_floats floats; 0: no split).
struct AttentionShape {
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t pos0 = 0, n_tokens = 0;
  int64_t window = 0;
  float scale = 1.0f;
};
void attention(Runtime &rt, const float *q, GgmlType kv_type, const void *k_cache, const void *v_cache,
               const AttentionShape &shape, const float *sinks, float *scratch, uint64_t scratch_floats, float *out);

void swiglu(Runtime &rt, const float *gate, const float *up, int64_t n, float *out);
void swiglu_clamped(Runtime &rt, const float *gate, const float *up, int64_t n, float alpha, float limit, float *out);
void add(Runtime &rt, float *y, const float *x, int64_t n);
// y[t][i] += bias[i], t < n_tokens, i < n.
void add_bias(Runtime &rt, float *y, const float *bias, int64_t n, int64_t n_tokens);
// dst[i] = src[rows[i]] (rows of width floats), rows on the device.
void gather_rows(Runtime &rt, const float *src, int64_t width, const int32_t *rows, int64_t n, float *dst);
// dst[rows[i]] = scales[i] * src[i], rows and scales on the device.
void scatter_rows_scaled(Runtime &rt, const float *src, int64_t width, const int32_t *rows, const float *scales,
                         int64_t n, float *dst);

}  // namespace vramfit::cuda
