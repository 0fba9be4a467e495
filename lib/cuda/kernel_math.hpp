// The arithmetic of the CUDA kernels, as VRAMFIT_HD functions.
//
// Every formula a CUDA kernel evaluates lives here, so the same code is compiled for the host and
// unit-tested against float64 references where no GPU exists (tests/devices/test_cuda_math.cpp).
// The kernels in ops.cu only add the thread layout: which thread handles which element.
// Formulas follow ggml's (llama.cpp's) CPU/CUDA definitions so results agree with the references.
#pragma once

#include <cmath>
#include <cstdint>

#include "quant/blocks.hpp"
#include "quant/dequant_block.hpp"
#include "quant/fp16.hpp"
#include "quant/hd.hpp"

namespace vramfit::cuda {

// ---- weights: one "chunk" is the unit a thread dequantizes at a time ----
// Quantized rows are arrays of blocks (a chunk is one block); plain rows are arrays of elements
// (a chunk is one element). The wrappers give f16 and bf16 distinct types for overloading.
struct f16_elem {
  quant::f16_bits bits;
};
struct bf16_elem {
  quant::bf16_bits bits;
};

template <class Chunk>
struct ChunkTraits;  // size: weights per chunk
template <> struct ChunkTraits<float> { static constexpr int size = 1; };
template <> struct ChunkTraits<f16_elem> { static constexpr int size = 1; };
template <> struct ChunkTraits<bf16_elem> { static constexpr int size = 1; };
template <> struct ChunkTraits<quant::block_q4_0> { static constexpr int size = quant::QK4_0; };
template <> struct ChunkTraits<quant::block_q8_0> { static constexpr int size = quant::QK8_0; };
template <> struct ChunkTraits<quant::block_q2_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q3_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q4_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q5_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q6_K> { static constexpr int size = quant::QK_K; };

VRAMFIT_HD void dequantize_chunk(const float &c, float *out) { out[0] = c; }
VRAMFIT_HD void dequantize_chunk(const f16_elem &c, float *out) { out[0] = quant::f16_to_f32(c.bits); }
VRAMFIT_HD void dequantize_chunk(const bf16_elem &c, float *out) { out[0] = quant::bf16_to_f32(c.bits); }
template <class Block>
VRAMFIT_HD void dequantize_chunk(const Block &b, float *out) {
  quant::dequantize_block(b, out);
}

// acc[t] += dot(chunk, x[t][chunk's columns]) for t < n_tokens; x rows are `x_stride` apart and
// already offset to the chunk's first column. The fused GEMV: the weights are dequantized into
// registers / local memory and never stored.
template <class Chunk>
VRAMFIT_HD void chunk_dot(const Chunk &chunk, const float *x, int64_t x_stride, int n_tokens, float *acc) {
  constexpr int n = ChunkTraits<Chunk>::size;
  float w[n];
  dequantize_chunk(chunk, w);
  for (int t = 0; t < n_tokens; ++t) {
    const float *xt = x + t * x_stride;
    float sum = 0.0f;
    for (int i = 0; i < n; ++i) sum += w[i] * xt[i];
    acc[t] += sum;
  }
}

// ---- rms_norm: y = x / sqrt(mean(x^2) + eps) * weight ----
VRAMFIT_HD float rms_inverse(float sum_of_squares, int64_t n, float eps) {
  return 1.0f / sqrtf(sum_of_squares / (float)n + eps);
}

// ---- rope: llama "normal" mode, adjacent pairs (x[2i], x[2i+1]) of each head ----
// theta = freq_scale * pos * freq_base^(-2i/n_rot) / freq_factor[i]  (ggml's rope_yarn with
// ext_factor 0 and attn_factor 1: plain linear scaling).
VRAMFIT_HD float rope_theta(int64_t pos, int64_t pair, int64_t n_rot, float freq_base, float freq_scale,
                            float freq_factor) {
  const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
  const float theta_extrap = (float)pos * powf(theta_scale, (float)pair) / freq_factor;
  return freq_scale * theta_extrap;
}

VRAMFIT_HD void rope_rotate(float &x0, float &x1, float theta) {
  const float c = cosf(theta);
  const float s = sinf(theta);
  const float a = x0, b = x1;
  x0 = a * c - b * s;
  x1 = a * s + b * c;
}

// ---- swiglu ----
VRAMFIT_HD float silu(float x) { return x / (1.0f + expf(-x)); }
VRAMFIT_HD float swiglu(float gate, float up) { return silu(gate) * up; }

// ---- KV cache elements: F32, F16 or Q8_0 rows ----
// Q8_0 encoding of 32 values, as ggml's quantize_row_q8_0_ref: d = amax/127, q = round(x/d).
VRAMFIT_HD quant::block_q8_0 quantize_q8_0(const float *x) {
  float amax = 0.0f;
  for (int i = 0; i < quant::QK8_0; ++i) amax = fmaxf(amax, fabsf(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  quant::block_q8_0 b;
  b.d = quant::f32_to_f16(d);
  for (int i = 0; i < quant::QK8_0; ++i) b.qs[i] = (int8_t)roundf(x[i] * id);
  return b;
}

enum class KvType { f32, f16, q8_0 };

// Element i of a cache row of `type`.
VRAMFIT_HD float kv_load(const void *row, KvType type, int64_t i) {
  switch (type) {
    case KvType::f32: return static_cast<const float *>(row)[i];
    case KvType::f16: return quant::f16_to_f32(static_cast<const quant::f16_bits *>(row)[i]);
    case KvType::q8_0: {
      const quant::block_q8_0 &b = static_cast<const quant::block_q8_0 *>(row)[i / quant::QK8_0];
      return quant::f16_to_f32(b.d) * (float)b.qs[i % quant::QK8_0];
    }
  }
  return 0.0f;
}

// ---- attention: streaming ("online") softmax over the keys, one key at a time ----
// After every key: max = the largest score so far, sum = sum_j exp(score_j - max), and the
// output accumulator holds sum_j exp(score_j - max) * v_j. Rescaling by exp(old_max - new_max)
// keeps every exponent <= 0, so nothing overflows however long the context.
struct OnlineSoftmax {
  float max = -INFINITY;
  float sum = 0.0f;
};

// Folds in one score; returns the factors to apply to the accumulator: acc = acc*rescale + weight*v.
struct SoftmaxStep {
  float rescale;
  float weight;
};
VRAMFIT_HD SoftmaxStep online_softmax_add(OnlineSoftmax &s, float score) {
  const float new_max = fmaxf(s.max, score);
  const float rescale = expf(s.max - new_max);  // exp(-inf) = 0 for the first key
  const float weight = expf(score - new_max);
  s.sum = s.sum * rescale + weight;
  s.max = new_max;
  return {rescale, weight};
}

// GQA: query head h reads KV head h / (n_head / n_head_kv).
VRAMFIT_HD int64_t kv_head_of(int64_t head, int64_t n_head, int64_t n_head_kv) {
  return head / (n_head / n_head_kv);
}

// The attention kernel gives lane l of a warp the head dimensions l, l+32, ...: how many.
VRAMFIT_HD int attention_lane_dims(int64_t head_dim, int lane) { return (int)((head_dim - lane + 31) / 32); }

// ---- cuBLAS: a row-major product in column-major terms ----
// y[t][r] (row stride ldy) = sum_k W[r][k] x[t][k] for row-major W [rows][k] and x [n_tokens][k].
// cuBLAS reads column-major: W's memory is W^T (k x rows, lda = k), x's is x^T (k x n_tokens,
// ldb = k), and y's is y^T (rows x n_tokens, ldc = ldy). So y^T = op(A) op(B) with A = W's
// memory transposed (op T: rows x k = W) and B = x's memory as is (op N).
struct GemmArgs {
  bool transpose_a, transpose_b;
  int m, n, k, lda, ldb, ldc;
};
inline GemmArgs row_major_gemm(int64_t rows, int64_t k, int64_t n_tokens, int64_t ldy) {
  return {true, false, (int)rows, (int)n_tokens, (int)k, (int)k, (int)k, (int)ldy};
}

}  // namespace vramfit::cuda
