// Fused K-quant dot products in AVX2 intrinsics (xsimd 8.1 has no 8-bit multiply-add), after
// ggml's x86 kernels: quants are fed unsigned to maddubs against the signed Q8_K activations,
// sub-block scales are applied with madd, and any quant offset (Q3_K's 4, Q6_K's 32) and the
// mins come out of the activations' bsums. Each super-block yields its exact integer sums, which
// the shared scalar code of kernels_generic.hpp turns into floats (identical on every ISA).
// Included by kernels_simd.hpp; the AVX-512 unit compiles the same code.
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "cpu/kernels_generic.hpp"

namespace vramfit::cpu {
namespace {  // NOLINT: one copy per ISA translation unit (see kernels_generic.hpp)

inline __m256i load256(const void *p) { return _mm256_loadu_si256(static_cast<const __m256i *>(p)); }

// Control for _mm256_shuffle_epi8 that fills the low 128 bits with int16 element `lo` of each
// lane and the high 128 bits with element `hi` (both lanes hold the same 8 scales).
inline __m256i pick_pair(int lo, int hi) {
  const auto ctl = [](int e) { return static_cast<int16_t>(((2 * e + 1) << 8) | (2 * e)); };
  return _mm256_set_m128i(_mm_set1_epi16(ctl(hi)), _mm_set1_epi16(ctl(lo)));
}

// Adds the 8 lanes of `dot` and the 4 of `mins` in one reduction: {sum(dot), sum(mins), ...}.
inline __m128i hsum_pair(__m256i dot, __m128i mins) {
  const __m128i d4 = _mm_add_epi32(_mm256_castsi256_si128(dot), _mm256_extracti128_si256(dot, 1));
  const __m128i r = _mm_hadd_epi32(d4, mins);  // {d0+d1, d2+d3, m0+m1, m2+m3}
  return _mm_hadd_epi32(r, r);                 // {dot, mins, dot, mins}
}
inline int32_t hsum(__m256i dot) { return _mm_cvtsi128_si32(hsum_pair(dot, _mm_setzero_si128())); }

// Q4_K / Q5_K 6-bit scales and mins -> bytes 0..7 scales, 8..15 mins: ggml's utmp shuffle on
// 32-bit words u0..u2, done in one register: {u0 & m6, (u2 & m4) | (u0 >> 6 & m2) << 4,
// u1 & m6, (u2 >> 4 & m4) | (u1 >> 6 & m2) << 4}. Reads 16 bytes: the 12 packed ones and the
// first 4 quants after them (ignored).
inline __m128i k4_scales_mins(const uint8_t *packed) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(packed));
  const __m128i m6 = _mm_set1_epi8(0x3f), m4 = _mm_set1_epi8(0x0f), m2 = _mm_set1_epi8(0x03);
  const __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));  // u0 u2 u1 u2
  const __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));  // u0 u0 u1 u1
  const __m128i high = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(b, 6), m2), 4);
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(a, _mm_set_epi32(4, 0, 0, 0)), m4);
  return _mm_blend_epi32(_mm_and_si128(a, m6), _mm_or_si128(low, high), 0b1010);
}

// k_block_sum for a block whose f16 d and dmin are adjacent (Q4_K, Q5_K, and Q2_K's d, dmin),
// with the exact sums in lanes 0 and 1 of `sums`: the same IEEE operations, two lanes at once.
inline float k_block_sum_x86(float act_d, const void *d_dmin, __m128i sums) {
  uint32_t halves;
  std::memcpy(&halves, d_dmin, 4);
  const __m128 w = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(halves)));  // w_d, w_dmin
  const __m128 prod = _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(act_d), w), _mm_cvtepi32_ps(sums));
  return _mm_cvtss_f32(_mm_sub_ss(prod, _mm_movehdup_ps(prod)));
}

// The 8 sums of adjacent bsums pairs (one per 32-weight sub-block), as int16.
inline __m128i bsum_pairs(const block_q8_K &a) {
  const __m256i b = load256(a.bsums);
  return _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
}

template <class Block>  // block_q4_K or block_q5_K
float vec_dot_q45_K_avx2(int64_t n, const void *w_row, const void *act) {
  constexpr bool has_high_bit = std::is_same_v<Block, block_q5_K>;
  const auto *w = static_cast<const Block *>(w_row);
  const auto *a = static_cast<const block_q8_K *>(act);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi8(1);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i sm16 = _mm256_cvtepu8_epi16(k4_scales_mins(w[i].scales));  // scales | mins
    const __m128i mins = _mm_madd_epi16(_mm256_extracti128_si256(sm16, 1), bsum_pairs(a[i]));
    const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
    __m256i hbits;
    if constexpr (has_high_bit) hbits = load256(w[i].qh);
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {  // 64 weights: low nibbles then high nibbles of 32 bytes
      const __m256i bits = load256(w[i].qs + 32 * j);
      __m256i ql = _mm256_and_si256(bits, low4);
      __m256i qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
      if constexpr (has_high_bit) {  // bit 2j of qh[l] belongs to ql, bit 2j+1 to qh
        ql = _mm256_or_si256(ql, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one), 4));
        qh = _mm256_or_si256(qh, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one), 4));
      }
      const __m256i pl = _mm256_maddubs_epi16(ql, load256(a[i].qs + 64 * j));
      const __m256i ph = _mm256_maddubs_epi16(qh, load256(a[i].qs + 64 * j + 32));
      const __m256i sl = _mm256_shuffle_epi8(scales, pick_pair(2 * j, 2 * j));
      const __m256i sh = _mm256_shuffle_epi8(scales, pick_pair(2 * j + 1, 2 * j + 1));
      acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(pl, sl), _mm256_madd_epi16(ph, sh)));
    }
    sum += k_block_sum_x86(a[i].d, &w[i].d, hsum_pair(acc, mins));
  }
  return sum;
}

// Q6_K: quants used unsigned (0..63); the -32 offset is 32 * sum(scale * bsum).
inline float vec_dot_q6_K_avx2(int64_t n, const void *w_row, const void *act) {
  const auto *w = static_cast<const block_q6_K *>(w_row);
  const auto *a = static_cast<const block_q8_K *>(act);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i two = _mm256_set1_epi8(0x03);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w[i].scales)));
    const __m256i offset = _mm256_madd_epi16(sc16, load256(a[i].bsums));  // sum(scale * bsum), 8 lanes
    __m256i acc = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), offset), 5);
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i scales = _mm256_broadcastsi128_si256(half ? _mm256_extracti128_si256(sc16, 1)
                                                              : _mm256_castsi256_si128(sc16));
      const uint8_t *ql = w[i].ql + 64 * half;
      const __m256i l0 = load256(ql), l1 = load256(ql + 32);
      const __m256i h = load256(w[i].qh + 32 * half);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(h, two), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), two), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), two), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), two), 4)),
      };
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {  // 32 weights = sub-blocks 2k, 2k+1 of this half
        const __m256i p = _mm256_maddubs_epi16(q[k], load256(a[i].qs + 128 * half + 32 * k));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pick_pair(2 * k, 2 * k + 1))));
      }
    }
    sum += k_block_sum(a[i].d, half_to_float(w[i].d), 0.f, hsum(acc), 0);
  }
  return sum;
}

// Q2_K: 2-bit quants (unsigned), 4-bit scale and min per 16 weights.
inline float vec_dot_q2_K_avx2(int64_t n, const void *w_row, const void *act) {
  const auto *w = static_cast<const block_q2_K *>(w_row);
  const auto *a = static_cast<const block_q8_K *>(act);
  const __m256i two = _mm256_set1_epi8(0x03);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i *>(w[i].scales));
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, low4));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    const __m256i mins8 = _mm256_madd_epi16(mn16, load256(a[i].bsums));
    const __m128i mins = _mm_add_epi32(_mm256_castsi256_si128(mins8), _mm256_extracti128_si256(mins8, 1));
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i scales = _mm256_broadcastsi128_si256(half ? _mm256_extracti128_si256(sc16, 1)
                                                              : _mm256_castsi256_si128(sc16));
      const __m256i bits = load256(w[i].qs + 32 * half);
#pragma GCC unroll 4
      for (int shift = 0; shift < 4; ++shift) {  // 32 weights = sub-blocks 2*shift, 2*shift+1
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * shift), two);
        const __m256i p = _mm256_maddubs_epi16(q, load256(a[i].qs + 128 * half + 32 * shift));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pick_pair(2 * shift, 2 * shift + 1))));
      }
    }
    sum += k_block_sum_x86(a[i].d, &w[i].d, hsum_pair(acc, mins));
  }
  return sum;
}

// Q3_K: quants used as q + 4 = low2 | high << 2 (unsigned 0..7); the offset 4 comes from bsums.
inline float vec_dot_q3_K_avx2(int64_t n, const void *w_row, const void *act) {
  const auto *w = static_cast<const block_q3_K *>(w_row);
  const auto *a = static_cast<const block_q8_K *>(act);
  const __m256i two = _mm256_set1_epi8(0x03);
  const __m256i one = _mm256_set1_epi8(0x01);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint32_t aux[3], u[4];  // 16 6-bit scales -> bytes (ggml's layout: low 4 bits, then high 2)
    std::memcpy(aux, w[i].scales, 12);
    constexpr uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    u[0] = (aux[0] & m4) | (((aux[2] >> 0) & m2) << 4);
    u[1] = (aux[1] & m4) | (((aux[2] >> 2) & m2) << 4);
    u[2] = ((aux[0] >> 4) & m4) | (((aux[2] >> 4) & m2) << 4);
    u[3] = ((aux[1] >> 4) & m4) | (((aux[2] >> 6) & m2) << 4);
    const __m128i sc8 = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i *>(u)), _mm_set1_epi8(32));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const __m256i offset = _mm256_madd_epi16(sc16, load256(a[i].bsums));
    __m256i acc = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), offset), 2);
    const __m256i hbits = load256(w[i].hmask);
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i scales = _mm256_broadcastsi128_si256(half ? _mm256_extracti128_si256(sc16, 1)
                                                              : _mm256_castsi256_si128(sc16));
      const __m256i bits = load256(w[i].qs + 32 * half);
#pragma GCC unroll 4
      for (int shift = 0; shift < 4; ++shift) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hbits, 4 * half + shift), one);
        const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * shift), two),
                                          _mm256_slli_epi16(high, 2));
        const __m256i p = _mm256_maddubs_epi16(q, load256(a[i].qs + 128 * half + 32 * shift));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pick_pair(2 * shift, 2 * shift + 1))));
      }
    }
    sum += k_block_sum(a[i].d, half_to_float(w[i].d), 0.f, hsum(acc), 0);
  }
  return sum;
}

// Q4_0 / Q8_0 against Q8_0 activations: one exact integer sum per 32-weight block, combined in
// the same scalar order as vec_dot_q8_0_generic.
inline __m256i q4_0_quants(const block_q4_0 &b) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs));
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bits, 4), low4), _mm_and_si128(bits, low4));
  return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}
inline __m256i q8_0_quants(const block_q8_0 &b) { return load256(b.qs); }

template <class Block>
float vec_dot_q8_0_avx2(int64_t n, const void *w_row, const void *act) {
  const auto *w = static_cast<const Block *>(w_row);
  const auto *a = static_cast<const block_q8_0 *>(act);
  const __m256i ones = _mm256_set1_epi16(1);
  float sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    __m256i q;
    if constexpr (std::is_same_v<Block, block_q4_0>)
      q = q4_0_quants(w[i]);
    else
      q = q8_0_quants(w[i]);
    const __m256i y = load256(a[i].qs);
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q)), ones);
    const float d = half_to_float(w[i].d) * half_to_float(a[i].d);
    sum += d * static_cast<float>(hsum(p));
  }
  return sum;
}

#if defined(__AVX512BW__)
// AVX-512 Q6_K: one 512-bit maddubs covers 64 weights, halving the inner loop's instructions
// (measured 19.5 vs 15 GB/s on Zen 4; for Q4_K/Q5_K the 256-bit kernels were as fast or faster,
// so the AVX-512 table keeps those). Same integer sums, same float combination.

// Shuffle control giving each 128-bit lane k of a 512-bit product the int16 scale element e[k].
inline __m512i pick4(int e0, int e1, int e2, int e3) {
  const auto ctl = [](int e) { return _mm_set1_epi16(static_cast<int16_t>(((2 * e + 1) << 8) | (2 * e))); };
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(ctl(e1), ctl(e0))),
                            _mm256_set_m128i(ctl(e3), ctl(e2)), 1);
}
inline __m512i join256(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
inline __m256i fold512(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

inline float vec_dot_q6_K_avx512(int64_t n, const void *w_row, const void *act) {
  const auto *w = static_cast<const block_q6_K *>(w_row);
  const auto *a = static_cast<const block_q8_K *>(act);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i two = _mm512_set1_epi8(0x03);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w[i].scales)));
    const __m256i offset = _mm256_madd_epi16(sc16, load256(a[i].bsums));
    __m512i acc = _mm512_castsi256_si512(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), offset), 5));
    acc = _mm512_inserti64x4(acc, _mm256_setzero_si256(), 1);
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m512i scales = _mm512_broadcast_i32x4(half ? _mm256_extracti128_si256(sc16, 1) : _mm256_castsi256_si128(sc16));
      const uint8_t *ql = w[i].ql + 64 * half;
      const __m256i h = load256(w[i].qh + 32 * half);
      const __m512i l = _mm512_loadu_si512(ql);                   // weights 0..31 | 32..63 (low nibbles)
      const __m512i h2 = join256(h, _mm256_srli_epi16(h, 2));    // their high bits at bits 0-1
      const __m512i q01 = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_slli_epi16(_mm512_and_si512(h2, two), 4));
      const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h2, 4), two), 4));
      const int8_t *y = a[i].qs + 128 * half;
      const __m512i p01 = _mm512_maddubs_epi16(q01, _mm512_loadu_si512(y));
      const __m512i p23 = _mm512_maddubs_epi16(q23, _mm512_loadu_si512(y + 64));
      acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p01, _mm512_shuffle_epi8(scales, pick4(0, 1, 2, 3))));
      acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p23, _mm512_shuffle_epi8(scales, pick4(4, 5, 6, 7))));
    }
    sum += k_block_sum(a[i].d, half_to_float(w[i].d), 0.f, hsum(fold512(acc)), 0);
  }
  return sum;
}
#endif  // __AVX512BW__

}  // namespace
}  // namespace vramfit::cpu
#endif  // __AVX2__
