// Portable block code shared by every kernels_<isa>.cpp: the exact-integer vec_dot of each
// format, activation quantization, and the fixed-order float combination that makes every ISA
// bit-identical (see kernels.hpp).
//
// Everything here has internal linkage (anonymous namespace) on purpose: each ISA's translation
// unit compiles its own copy with its own -m flags, and a shared inline symbol would let the
// linker pick, say, the AVX-512 copy for the scalar path (an ODR violation that crashes on older
// CPUs).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "quant/blocks.hpp"
#include "quant/dequant_block.hpp"
#include "quant/fp16.hpp"

namespace vramfit::cpu {
namespace {  // NOLINT: internal linkage per ISA translation unit, see above

using quant::block_q2_K;
using quant::block_q3_K;
using quant::block_q4_0;
using quant::block_q4_K;
using quant::block_q5_K;
using quant::block_q6_K;
using quant::block_mxfp4;
using quant::block_q8_0;
using quant::block_q8_K;
using quant::QK_K;

inline float half_to_float(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return quant::f16_to_f32(h);
#endif
}

// Round half to even for |f| < 2^22, exactly like ggml's nearest_int.
inline int nearest_int(float f) {
  const float v = f + 12582912.f;
  int i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// ---- activation quantization (ggml's numerics, see vec_dot.hpp) ----

inline void quantize_q8_K_block(const float *x, block_q8_K &y) {
  float max = 0, amax = 0;
  for (int j = 0; j < QK_K; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax == 0) {
    std::memset(&y, 0, sizeof y);
    return;
  }
  const float iscale = -127.f / max;
  for (int j = 0; j < QK_K; ++j) {
    const int v = nearest_int(iscale * x[j]);
    y.qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
  }
  for (int g = 0; g < QK_K / 16; ++g) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += y.qs[16 * g + l];
    y.bsums[g] = static_cast<int16_t>(sum);
  }
  y.d = 1 / iscale;
}

inline void quantize_q8_0_block(const float *x, block_q8_0 &y) {
  float amax = 0;
  for (int j = 0; j < quant::QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = amax != 0 ? 127.f / amax : 0.f;
  y.d = quant::f32_to_f16(d);
  for (int j = 0; j < quant::QK8_0; ++j) y.qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
}

// ---- K-quant blocks unpacked to signed 8-bit quants with one integer scale/min per 16 ----
//
// w[k] = d * scale[k/16] * q[k] - dmin * min[k/16] for every K format, which turns each format's
// dot product into sum_g scale[g] * dot16(q, a) - min[g] * bsums[g]: exact integers.
// The K formats with a per-sub-block min (and a dmin): Q2_K, Q4_K, Q5_K; Q3_K and Q6_K offset
// their quants instead.
template <class Block>
inline constexpr bool kHasMins = !std::is_same_v<Block, block_q3_K> && !std::is_same_v<Block, block_q6_K>;

struct UnpackedK {
  alignas(64) int8_t q[QK_K];
  int16_t scale[QK_K / 16];
  int16_t min[QK_K / 16];
  float d;     // super-block scale
  float dmin;  // super-block min scale (0 for formats without mins)
};

inline void scale_min_k4(int j, const uint8_t *q, int &scale, int &min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// unpack_scales fills everything but q (the SIMD panel packing unpacks the quants itself);
// unpack fills it all.
inline void unpack_scales(const block_q2_K &b, UnpackedK &u) {
  for (int g = 0; g < 16; ++g) {
    u.scale[g] = static_cast<int16_t>(b.scales[g] & 0xF);
    u.min[g] = static_cast<int16_t>(b.scales[g] >> 4);
  }
  u.d = half_to_float(b.d);
  u.dmin = half_to_float(b.dmin);
}

inline void unpack(const block_q2_K &b, UnpackedK &u) {
  for (int half = 0; half < 2; ++half)
    for (int shift = 0; shift < 4; ++shift)
      for (int l = 0; l < 32; ++l)
        u.q[128 * half + 32 * shift + l] = static_cast<int8_t>((b.qs[32 * half + l] >> (2 * shift)) & 3);
  unpack_scales(b, u);
}

inline void unpack_scales(const block_q3_K &b, UnpackedK &u) {
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (b.scales[g] & 0xF) : (b.scales[g - 8] >> 4);
    const int high = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
    u.scale[g] = static_cast<int16_t>((low | (high << 4)) - 32);
    u.min[g] = 0;
  }
  u.d = half_to_float(b.d);
  u.dmin = 0;
}

inline void unpack(const block_q3_K &b, UnpackedK &u) {
  for (int half = 0; half < 2; ++half)
    for (int shift = 0; shift < 4; ++shift) {
      const uint8_t mask = static_cast<uint8_t>(1u << (4 * half + shift));
      for (int l = 0; l < 32; ++l) {
        const int low = (b.qs[32 * half + l] >> (2 * shift)) & 3;
        u.q[128 * half + 32 * shift + l] = static_cast<int8_t>(low - ((b.hmask[l] & mask) ? 0 : 4));
      }
    }
  unpack_scales(b, u);
}

template <class Block>  // block_q4_K or block_q5_K
inline void unpack_scales(const Block &b, UnpackedK &u) {
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(j, b.scales, sc, m);
    u.scale[2 * j] = u.scale[2 * j + 1] = static_cast<int16_t>(sc);
    u.min[2 * j] = u.min[2 * j + 1] = static_cast<int16_t>(m);
  }
  u.d = half_to_float(b.d);
  u.dmin = half_to_float(b.dmin);
}

inline void unpack(const block_q4_K &b, UnpackedK &u) {
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 32; ++l) {
      u.q[64 * j + l] = static_cast<int8_t>(b.qs[32 * j + l] & 0xF);
      u.q[64 * j + 32 + l] = static_cast<int8_t>(b.qs[32 * j + l] >> 4);
    }
  unpack_scales(b, u);
}

inline void unpack(const block_q5_K &b, UnpackedK &u) {
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 32; ++l) {
      const int h = b.qh[l] >> (2 * j);
      u.q[64 * j + l] = static_cast<int8_t>((b.qs[32 * j + l] & 0xF) | ((h & 1) << 4));
      u.q[64 * j + 32 + l] = static_cast<int8_t>((b.qs[32 * j + l] >> 4) | ((h & 2) << 3));
    }
  unpack_scales(b, u);
}

inline void unpack_scales(const block_q6_K &b, UnpackedK &u) {
  for (int g = 0; g < 16; ++g) {
    u.scale[g] = b.scales[g];
    u.min[g] = 0;
  }
  u.d = half_to_float(b.d);
  u.dmin = 0;
}

inline void unpack(const block_q6_K &b, UnpackedK &u) {
  for (int half = 0; half < 2; ++half) {
    const uint8_t *ql = b.ql + 64 * half;
    const uint8_t *qh = b.qh + 32 * half;
    int8_t *q = u.q + 128 * half;
    for (int l = 0; l < 32; ++l) {
      q[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
      q[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
      q[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      q[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
  unpack_scales(b, u);
}

// The float scale of a 32-weight block (Q4_0, Q8_0: f16 d; MXFP4: the E8M0 exponent).
inline float block_scale(const block_q4_0 &b) { return half_to_float(b.d); }
inline float block_scale(const block_q8_0 &b) { return half_to_float(b.d); }
inline float block_scale(const block_mxfp4 &b) { return quant::e8m0_to_f32_half(b.e); }

// Q4_0 / Q8_0 / MXFP4: 32 signed quants and the block scale.
inline float unpack(const block_q4_0 &b, int8_t *q) {
#if defined(__SSE2__)  // the byte loop below vectorizes into something 5x slower
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs));
  const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(bits, low4), eight);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bits, 4), low4), eight);
  _mm_storeu_si128(reinterpret_cast<__m128i *>(q), lo);
  _mm_storeu_si128(reinterpret_cast<__m128i *>(q + 16), hi);
#else
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((b.qs[j] & 0xF) - 8);
    q[j + 16] = static_cast<int8_t>((b.qs[j] >> 4) - 8);
  }
#endif
  return half_to_float(b.d);
}
inline float unpack(const block_q8_0 &b, int8_t *q) {
  std::memcpy(q, b.qs, 32);
  return half_to_float(b.d);
}
// MXFP4: the doubled E2M1 values as quants, 2^(e-128) as the scale (ggml's vec_dot_mxfp4_q8_0
// multiplies the activation scale by the same E8M0 half, and sums the integer products).
inline float unpack(const block_mxfp4 &b, int8_t *q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>(quant::mxfp4_value(b.qs[j] & 0xF));
    q[j + 16] = static_cast<int8_t>(quant::mxfp4_value(b.qs[j] >> 4));
  }
  return block_scale(b);
}

// ---- the fixed float combination shared by every ISA ----

// One K super-block's contribution, from its exact integer sums.
// w_d / w_dmin: the weight block's super-block scales (dmin 0 for formats without mins).
inline float k_block_sum(float act_d, float w_d, float w_dmin, int32_t isum, int32_t isum_min) {
  const float d = act_d * w_d;
  const float dmin = act_d * w_dmin;
  return d * static_cast<float>(isum) - dmin * static_cast<float>(isum_min);
}

inline int32_t min_sum(const UnpackedK &u, const block_q8_K &a) {
  int32_t s = 0;
  for (int g = 0; g < 16; ++g) s += u.min[g] * a.bsums[g];
  return s;
}

inline int32_t dot_unpacked_scalar(const UnpackedK &u, const block_q8_K &a) {
  int32_t isum = 0;
  for (int g = 0; g < 16; ++g) {
    int32_t s = 0;
    for (int l = 0; l < 16; ++l) s += u.q[16 * g + l] * a.qs[16 * g + l];
    isum += u.scale[g] * s;
  }
  return isum;
}

// Reduces 16 lanes in the fixed tree order of the SIMD registers (halves, then quarters...).
inline float reduce_lanes16(float *lanes) {
  for (int width = 8; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}

// The float dot in canonical order: element k accumulates into lane k % 16, multiply then add.
template <class W, class A, class ToFloatW, class ToFloatA>
float dot_lanes_scalar(int64_t n, const W *w, const A *a, ToFloatW tw, ToFloatA ta) {
  float lanes[16] = {};
  for (int64_t k = 0; k < n; ++k) {
    const float p = tw(w[k]) * ta(a[k]);
    lanes[k % 16] += p;
  }
  return reduce_lanes16(lanes);
}

inline float f32_value(float v) { return v; }
inline float f16_value(uint16_t h) { return half_to_float(h); }
inline float bf16_value(uint16_t h) { return quant::bits_to_float(static_cast<uint32_t>(h) << 16); }

// Generic vec_dot over whole rows, parameterised by the per-block integer dot (scalar or SIMD).
template <class Block, class DotUnpacked>
float vec_dot_k_generic(int64_t n, const void *w_row, const void *act, DotUnpacked dot) {
  const auto *w = static_cast<const Block *>(w_row);
  const auto *a = static_cast<const block_q8_K *>(act);
  UnpackedK u;
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    unpack(w[i], u);
    sum += k_block_sum(a[i].d, u.d, u.dmin, dot(u, a[i]), min_sum(u, a[i]));
  }
  return sum;
}

template <class Block, class Dot32>
float vec_dot_q8_0_generic(int64_t n, const void *w_row, const void *act, Dot32 dot32) {
  const auto *w = static_cast<const Block *>(w_row);
  const auto *a = static_cast<const block_q8_0 *>(act);
  alignas(32) int8_t q[32];
  float sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    const float dw = unpack(w[i], q);
    const float d = dw * half_to_float(a[i].d);
    sum += d * static_cast<float>(dot32(q, a[i].qs));
  }
  return sum;
}

inline int32_t dot32_scalar(const int8_t *q, const int8_t *a) {
  int32_t s = 0;
  for (int l = 0; l < 32; ++l) s += q[l] * a[l];
  return s;
}

}  // namespace
}  // namespace vramfit::cpu
