// Launchers of the CUDA kernels behind CudaDevice's ops (plain C++; the kernels are in ops.cu).
//
// Every pointer is device memory unless its name says host; every launch goes on the runtime's
// stream and returns without waiting. Bad arguments throw Error(invalid_argument) or
// Error(unsupported) naming the op; launch failures throw Error(device).
#pragma once

#include <cstdint>

#include "cuda/runtime.hpp"
#include "vramfit/types.hpp"

namespace vramfit::cuda {

// The largest per-thread stack (local memory) any kernel of lib/cuda needs, in bytes: what
// Runtime reserves up front (cudaLimitStackSize).
uint64_t kernel_stack_bytes();

// True when the weight kernels (get_rows, gemv, dequantize_f16) handle `type`:
// F32, F16, BF16, Q4_0, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool supports_weight_type(GgmlType type) noexcept;

// out[t][:] = dequantized row tokens[t] of `table` ([n_rows][ne0] of `type`); tokens on the device.
void get_rows(Runtime &rt, GgmlType type, const void *table, int64_t ne0, int64_t n_rows,
              const int32_t *tokens, int64_t n_tokens, float *out);

// y[t][r] = sum_k W[r][k] x[t][k] for t < n_tokens, W [ne1][ne0] of `type`: the fused
// dequantize + dot kernel (weights never stored dequantized). Any n_tokens; best when small.
void gemv(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t ne1, const float *x,
          int64_t n_tokens, float *y);

// out[r][k] = f16(W[r][k]) for rows [0, n_rows) of W ([.][ne0] of `type`).
void dequantize_f16(Runtime &rt, GgmlType type, const void *w, int64_t ne0, int64_t n_rows, uint16_t *out);
// out[i] = f16(x[i]).
void convert_f32_to_f16(Runtime &rt, const float *x, int64_t n, uint16_t *out);
// y[t][r] (row stride ldy) = sum_k w16[r][k] * x16[t][k], f16 inputs, f32 accumulate and output
// (cublasGemmEx): w16 [rows][k], x16 [n_tokens][k].
void gemm_f16(Runtime &rt, const uint16_t *w16, int64_t rows, int64_t k, const uint16_t *x16, int64_t n_tokens,
              float *y, int64_t ldy);
// The same in plain f32 for F32 weights, read in place: no rounding of weights or activations.
void gemm_f32(Runtime &rt, const float *w, int64_t rows, int64_t k, const float *x, int64_t n_tokens, float *y,
              int64_t ldy);

// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, weight F32 or F16 of n elements.
void rms_norm(Runtime &rt, const float *x, GgmlType weight_type, const void *weight, int64_t n, int64_t n_tokens,
              float eps, float *y);

// Normal (adjacent-pair) rope of x [n_tokens][n_heads][head_dim] in place, positions pos0 + t;
// freq_factors: n_rot/2 floats on the device, or null.
void rope(Runtime &rt, float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0, int64_t n_rot,
          float freq_base, float freq_scale, const float *freq_factors);

// Writes k, v [n_tokens][row] (row = n_head_kv*head_dim floats) to cache rows pos0.. of
// k_cache, v_cache, stored as `type` (F32, F16, Q8_0; Q8_0 needs row % 32 == 0).
void kv_store(Runtime &rt, GgmlType type, void *k_cache, void *v_cache, const float *k, const float *v,
              int64_t row, int64_t pos0, int64_t n_tokens);

// Causal attention (see model::Device::attention): q, out [n_tokens][n_head*head_dim].
void attention(Runtime &rt, const float *q, GgmlType kv_type, const void *k_cache, const void *v_cache,
               int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t pos0, int64_t n_tokens, float scale,
               float *out);

void swiglu(Runtime &rt, const float *gate, const float *up, int64_t n, float *out);
void add(Runtime &rt, float *y, const float *x, int64_t n);

}  // namespace vramfit::cuda
