// Per-block dequantization: one block of a quantized format -> floats.
//
// These are the readable definitions of the formats, compiled for the CPU and (VRAMFIT_HD) for
// CUDA kernels. The float arithmetic is ggml's (llama.cpp's dequantize_row_*), operation for
// operation and in the same order, so the results are bit-exact with llama.cpp's: e.g. Q4_K
// computes d*scale and dmin*min once per sub-block, then y = d1*q - m1.
#pragma once

#include <cstdint>

#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/hd.hpp"

namespace vramfit::quant {

// Q4_0: low nibbles are weights 0..15, high nibbles 16..31.
VRAMFIT_HD void dequantize_block(const block_q4_0 &b, float *out) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < QK4_0 / 2; ++j) {
    const int x0 = (b.qs[j] & 0x0F) - 8;
    const int x1 = (b.qs[j] >> 4) - 8;
    out[j] = x0 * d;
    out[j + QK4_0 / 2] = x1 * d;
  }
}

VRAMFIT_HD void dequantize_block(const block_q8_0 &b, float *out) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < QK8_0; ++j) out[j] = b.qs[j] * d;
}

// E2M1 code -> its value doubled (ggml's kvalues_mxfp4: 0, 1, 2, 3, 4, 6, 8, 12, then the same
// negated). The 8 magnitudes are the nibbles of one constant, so device code needs no constant
// memory, and there is no branch: on real (random-looking) codes the branchy form mispredicted
// and dequantized MXFP4 at 0.11 GB/s.
VRAMFIT_HD int mxfp4_value(int code) {
  const int magnitude = static_cast<int>((0xC8643210u >> (4 * (code & 7))) & 0xFu);
  return magnitude * (1 - ((code >> 2) & 2));  // bit 3 is the sign
}

// ggml_e8m0_to_fp32_half: 2^(e - 128), exact (e < 2 gives the float subnormals 2^-128, 2^-127).
VRAMFIT_HD float e8m0_to_f32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
  return bits_to_float(bits);
}

VRAMFIT_HD void dequantize_block(const block_mxfp4 &b, float *out) {
  const float d = e8m0_to_f32_half(b.e);
  for (int j = 0; j < QK_MXFP4 / 2; ++j) {
    out[j] = mxfp4_value(b.qs[j] & 0x0F) * d;
    out[j + QK_MXFP4 / 2] = mxfp4_value(b.qs[j] >> 4) * d;
  }
}

// Q2_K: each byte of qs holds 4 quants, for weights l, l+32, l+64, l+96 of a 128-weight half.
// Sub-block scales: low nibble scale, high nibble min.
VRAMFIT_HD void dequantize_block(const block_q2_K &b, float *out) {
  const float d = f16_to_f32(b.d);
  const float min = f16_to_f32(b.dmin);
  const uint8_t *q = b.qs;
  int is = 0;
  for (int half = 0; half < QK_K; half += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int part = 0; part < 2; ++part) {  // two sub-blocks of 16 share one shift
        const uint8_t sc = b.scales[is++];
        const float dl = d * (sc & 0xF);
        const float ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l) *out++ = dl * (int8_t)((q[l + 16 * part] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

// Q3_K's 16 6-bit scales: low 4 bits in bytes 0..7 (two per byte), high 2 bits in bytes 8..11.
// Returns the scale biased by -32 (range -32..31).
VRAMFIT_HD int q3_K_scale(const uint8_t *scales, int j) {
  const int low = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q3_K: 2 low bits in qs (laid out as Q2_K), the third bit in hmask: bit k of hmask[l] belongs to
// weight 32*k + l. A clear high bit means q - 4.
VRAMFIT_HD void dequantize_block(const block_q3_K &b, float *out) {
  const float d_all = f16_to_f32(b.d);
  const uint8_t *q = b.qs;
  const uint8_t *hm = b.hmask;
  uint8_t m = 1;
  int is = 0;
  for (int half = 0; half < QK_K; half += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int part = 0; part < 2; ++part) {
        const float dl = d_all * q3_K_scale(b.scales, is++);
        for (int l = 0; l < 16; ++l) {
          const int k = l + 16 * part;
          *out++ = dl * ((int8_t)((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
        }
      }
      m <<= 1;
    }
    q += 32;
  }
}

// Q4_K / Q5_K: 8 (scale, min) pairs of 6 bits packed in 12 bytes (ggml's get_scale_min_k4).
VRAMFIT_HD void k4_scale_min(int j, const uint8_t *q, uint8_t &scale, uint8_t &min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The multiplier and offset of Q4_K / Q5_K sub-block j: w = d * q - m.
struct K4SubBlock {
  float d, m;
};
VRAMFIT_HD K4SubBlock k4_sub_block(int j, const uint8_t *scales, float d, float dmin) {
  uint8_t sc, m;
  k4_scale_min(j, scales, sc, m);
  return {d * sc, dmin * m};
}

// Q4_K: each 32 bytes of qs hold 64 weights: low nibbles the first sub-block, high the second.
VRAMFIT_HD void dequantize_block(const block_q4_K &b, float *out) {
  const float d = f16_to_f32(b.d);
  const float min = f16_to_f32(b.dmin);
  const uint8_t *q = b.qs;
  for (int is = 0; is < QK_K / 32; is += 2) {
    const K4SubBlock s1 = k4_sub_block(is, b.scales, d, min), s2 = k4_sub_block(is + 1, b.scales, d, min);
    for (int l = 0; l < 32; ++l) *out++ = s1.d * (q[l] & 0xF) - s1.m;
    for (int l = 0; l < 32; ++l) *out++ = s2.d * (q[l] >> 4) - s2.m;
    q += 32;
  }
}

// Q5_K: as Q4_K; the fifth bit of weight 32*s + l is bit s of qh[l].
VRAMFIT_HD void dequantize_block(const block_q5_K &b, float *out) {
  const float d = f16_to_f32(b.d);
  const float min = f16_to_f32(b.dmin);
  const uint8_t *ql = b.qs;
  uint8_t u1 = 1, u2 = 2;
  for (int is = 0; is < QK_K / 32; is += 2) {
    const K4SubBlock s1 = k4_sub_block(is, b.scales, d, min), s2 = k4_sub_block(is + 1, b.scales, d, min);
    for (int l = 0; l < 32; ++l) *out++ = s1.d * ((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - s1.m;
    for (int l = 0; l < 32; ++l) *out++ = s2.d * ((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - s2.m;
    ql += 32;
    u1 = (uint8_t)(u1 << 2);
    u2 = (uint8_t)(u2 << 2);
  }
}

// Q6_K: per 128-weight half, ql holds 4 low bits (weights l and l+64 in byte l, l+32 and l+96 in
// byte l+32), qh the 2 high bits of weights l, l+32, l+64, l+96 in byte l. w = d * scale * (q-32).
VRAMFIT_HD void dequantize_block(const block_q6_K &b, float *out) {
  const float d = f16_to_f32(b.d);
  const uint8_t *ql = b.ql;
  const uint8_t *qh = b.qh;
  const int8_t *sc = b.scales;
  for (int half = 0; half < QK_K; half += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int8_t q1 = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int8_t q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l + 0] = d * sc[is + 0] * q1;
      out[l + 32] = d * sc[is + 2] * q2;
      out[l + 64] = d * sc[is + 4] * q3;
      out[l + 96] = d * sc[is + 6] * q4;
    }
    out += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

VRAMFIT_HD void dequantize_block(const block_q8_K &b, float *out) {
  for (int j = 0; j < QK_K; ++j) out[j] = b.d * b.qs[j];
}

}  // namespace vramfit::quant
