// Activation quantization and the fused dot products of one weight row with one activation row.
//
// llama.cpp multiplies each weight type with activations in a "vec_dot type": Q8_K for
// Q2_K..Q6_K, Q8_0 for Q4_0 / Q8_0 / MXFP4, F16 for F16 (activations rounded to f16), BF16 for BF16, F32
// for F32. quantize_activations converts an f32 row to it; vec_dot multiplies. All functions are
// SIMD, runtime-dispatched, and give identical results on every instruction set.
#pragma once

#include <cstdint>

#include "quant/blocks.hpp"
#include "vramfit/types.hpp"

namespace vramfit::cpu {

// ggml's quantize_row_q8_K: per 256 values, iscale = -127/max where max is the value of largest
// magnitude (sign included, so that value maps to exactly -127), q = min(127, nearest_int(x *
// iscale)) rounding half to even, d = 1/iscale, bsums = sums of each 16 quants.
void quantize_row_q8_K(const float *x, quant::block_q8_K *y, int64_t n);
// ggml's x86 quantize_row_q8_0: per 32 values, d = amax/127 (stored f16), q = round-half-even(x *
// (127/amax)).
void quantize_row_q8_0(const float *x, quant::block_q8_0 *y, int64_t n);

// The activation format llama.cpp's CPU backend pairs with weights of `wtype`.
GgmlType vec_dot_type(GgmlType wtype) noexcept;
// Writes x[0..n) in vec_dot_type(wtype) to act (row_bytes(vec_dot_type(wtype), n) bytes).
void quantize_activations(GgmlType wtype, const float *x, void *act, int64_t n);

// sum_k W[k] * A[k] for one row of n weights of wtype and one activation row in
// vec_dot_type(wtype). Throws Error(unsupported) for a type without a kernel.
float vec_dot(GgmlType wtype, int64_t n, const void *w_row, const void *act);

// The per-type kernels behind vec_dot (same contract, fixed types).
float vec_dot_q2_K_q8_K(int64_t n, const void *w_row, const void *act);
float vec_dot_q3_K_q8_K(int64_t n, const void *w_row, const void *act);
float vec_dot_q4_K_q8_K(int64_t n, const void *w_row, const void *act);
float vec_dot_q5_K_q8_K(int64_t n, const void *w_row, const void *act);
float vec_dot_q6_K_q8_K(int64_t n, const void *w_row, const void *act);
float vec_dot_q4_0_q8_0(int64_t n, const void *w_row, const void *act);
float vec_dot_q8_0_q8_0(int64_t n, const void *w_row, const void *act);
float vec_dot_mxfp4_q8_0(int64_t n, const void *w_row, const void *act);
float vec_dot_f16_f16(int64_t n, const void *w_row, const void *act);
float vec_dot_bf16_bf16(int64_t n, const void *w_row, const void *act);
float vec_dot_f32_f32(int64_t n, const void *w_row, const void *act);

}  // namespace vramfit::cpu
