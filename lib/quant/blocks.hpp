// Block layouts of the quantized ggml formats, byte for byte as they are stored in GGUF.
//
// Each format packs `block_size` weights into one struct. The super-block ("K") formats hold
// 256 weights in 16 or 8 sub-blocks, each with its own scale (and min), themselves quantized
// against the block's f16 `d` (and `dmin`). Sizes are asserted against the GGUF layout.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/fp16.hpp"

namespace vramfit::quant {

constexpr int QK4_0 = 32;
constexpr int QK8_0 = 32;
constexpr int QK_MXFP4 = 32;
constexpr int QK_K = 256;        // weights per K-quant super-block
constexpr int K_SCALE_SIZE = 12;  // packed 6-bit scales and mins of Q4_K / Q5_K

// Q4_0: 32 weights, w = d * (q - 8), q in 0..15. Nibbles: low = weights 0..15, high = 16..31.
struct block_q4_0 {
  f16_bits d;
  uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 18, "Q4_0 block is 18 bytes");

// Q8_0: 32 weights, w = d * q.
struct block_q8_0 {
  f16_bits d;
  int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 34, "Q8_0 block is 34 bytes");

// MXFP4 (OCP microscaling FP4, gpt-oss's experts): 32 weights, one shared E8M0 exponent e and
// 4-bit E2M1 codes; w = kvalues_mxfp4[code] * 2^(e - 128) (the table holds the E2M1 values
// doubled, hence -128). Nibbles: byte j holds weight j (low) and weight j + 16 (high).
struct block_mxfp4 {
  uint8_t e;
  uint8_t qs[QK_MXFP4 / 2];
};
static_assert(sizeof(block_mxfp4) == 17, "MXFP4 block is 17 bytes");

// Q2_K: 16 sub-blocks of 16; w = d * (scale & 15) * q - dmin * (scale >> 4), q in 0..3.
struct block_q2_K {
  uint8_t scales[QK_K / 16];  // low nibble: scale, high nibble: min
  uint8_t qs[QK_K / 4];       // 2-bit quants
  f16_bits d;
  f16_bits dmin;
};
static_assert(sizeof(block_q2_K) == 84, "Q2_K block is 84 bytes");

// Q3_K: 16 sub-blocks of 16; w = d * (scale - 32) * (q - 4*!hbit), 6-bit scales packed in 12 bytes.
struct block_q3_K {
  uint8_t hmask[QK_K / 8];  // high bit of each quant
  uint8_t qs[QK_K / 4];     // low 2 bits
  uint8_t scales[12];       // 16 6-bit scales
  f16_bits d;
};
static_assert(sizeof(block_q3_K) == 110, "Q3_K block is 110 bytes");

// Q4_K: 8 sub-blocks of 32; w = d * scale * q - dmin * min, 6-bit scale/min, q in 0..15.
struct block_q4_K {
  f16_bits d;
  f16_bits dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144, "Q4_K block is 144 bytes");

// Q5_K: as Q4_K with a fifth bit per weight in qh.
struct block_q5_K {
  f16_bits d;
  f16_bits dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176, "Q5_K block is 176 bytes");

// Q6_K: 16 sub-blocks of 16; w = d * scale * (q - 32), q 6-bit (4 low bits in ql, 2 in qh).
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  f16_bits d;
};
static_assert(sizeof(block_q6_K) == 210, "Q6_K block is 210 bytes");

// Q8_K: the activation format of K-quant dot products: f32 scale, 8-bit quants, and the sum of
// each group of 16 quants (lets the dot product apply the weights' mins cheaply).
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 292, "Q8_K block is 292 bytes");

}  // namespace vramfit::quant
