// x86 integer dot-product building blocks in AVX2 intrinsics (xsimd 8.1 has no 8-bit
// multiply-add), after ggml's x86 kernels: loads, scale shuffles and unpacking of packed scales,
// lane reductions, and the fused Q4_0 / Q8_0 kernel. The K-quant kernels built on them live in
// kernels_x86_tile.hpp. Each block yields exact integer sums; the float combination follows
// kernels_generic.hpp, so results are identical on every ISA.
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

// The sum of the 8 int32 lanes (exact).
inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(_mm_hadd_epi32(s, s));
}

// {sum(v[0]), ..., sum(v[7])} of eight vectors of 8 int32 lanes: one reduction for 8 blocks (or
// 8 tokens) instead of 8.
inline __m256i hsum8x8(const __m256i *v) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  // a = {v0..v3 sums of lanes 0-3 | the same of lanes 4-7}, b likewise for v4..v7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

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

// Q3_K's 16 6-bit scales as signed bytes. ggml's layout, on 32-bit words a0 a1 a2 of the 12
// packed bytes: {a0 & m4, a1 & m4, a0 >> 4 & m4, a1 >> 4 & m4} | {a2, a2 >> 2, a2 >> 4, a2 >> 6}
// & m2 << 4, minus 32. In registers: going through memory stalls on store forwarding.
inline __m128i q3_scales(const uint8_t *packed) {
  uint32_t a2;
  std::memcpy(&a2, packed + 8, 4);  // the block ends 2 bytes after the scales: no 16-byte load
  const __m128i v = _mm_insert_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(packed)),
                                     static_cast<int>(a2), 2);
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 1, 0)), _mm_set_epi32(4, 4, 0, 0)),
                                    _mm_set1_epi8(0x0F));
  const __m128i high = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2)), _mm_set_epi32(6, 4, 2, 0)),
                                     _mm_set1_epi8(0x03));
  return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi32(high, 4)), _mm_set1_epi8(32));
}

// Q4_0 / Q8_0 / MXFP4 against Q8_0 activations: one exact integer sum per 32-weight block, combined in
// the same scalar order as vec_dot_q8_0_generic.
inline __m256i q4_0_quants(const block_q4_0 &b) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs));
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bits, 4), low4), _mm_and_si128(bits, low4));
  return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}
inline __m256i q8_0_quants(const block_q8_0 &b) { return load256(b.qs); }
// MXFP4: each nibble looks its doubled E2M1 value up in a 16-byte table (ggml's kvalues_mxfp4).
inline __m256i mxfp4_quants(const block_mxfp4 &b) {
  const __m128i values = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs));
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_shuffle_epi8(values, _mm_and_si128(bits, low4));
  const __m128i hi = _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(bits, 4), low4));
  return _mm256_set_m128i(hi, lo);
}

template <class Block>
__m256i q8_0_lane_sums(const Block &w, const block_q8_0 &a) {
  __m256i q;
  if constexpr (std::is_same_v<Block, block_q4_0>)
    q = q4_0_quants(w);
  else if constexpr (std::is_same_v<Block, block_mxfp4>)
    q = mxfp4_quants(w);
  else
    q = q8_0_quants(w);
  const __m256i y = load256(a.qs);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q)), _mm256_set1_epi16(1));
}

// 8 blocks at a time: their integer sums reduced together and their terms d * isum computed in 8
// lanes, then added one by one in block order (the tail's operations, one reduction per 8).
template <class Block>
float vec_dot_q8_0_avx2(int64_t n, const void *w_row, const void *act) {
  const auto *w = static_cast<const Block *>(w_row);
  const auto *a = static_cast<const block_q8_0 *>(act);
  const int64_t nb = n / 32;
  float sum = 0;
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    __m256i sums[8];
    alignas(32) float d[8];
    for (int b = 0; b < 8; ++b) {
      sums[b] = q8_0_lane_sums(w[i + b], a[i + b]);
      d[b] = block_scale(w[i + b]) * half_to_float(a[i + b].d);
    }
    alignas(32) float term[8];
    _mm256_store_ps(term, _mm256_mul_ps(_mm256_load_ps(d), _mm256_cvtepi32_ps(hsum8x8(sums))));
    for (int b = 0; b < 8; ++b) sum += term[b];
  }
  for (; i < nb; ++i) {
    const float d = block_scale(w[i]) * half_to_float(a[i].d);
    sum += d * static_cast<float>(hsum(q8_0_lane_sums(w[i], a[i])));
  }
  return sum;
}

#if defined(__AVX512BW__)
// 512-bit helpers of the AVX-512 K-quant kernels (kernels_x86_tile.hpp).

inline __m512i join256(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
inline __m256i fold512(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

#endif  // __AVX512BW__

}  // namespace
}  // namespace vramfit::cpu
#endif  // __AVX2__
