// x86 K-quant kernels (Q2_K to Q6_K), AVX2 or AVX-512 (BW, VL, VNNI), in two shapes over the
// same block code:
//  - tile_dot_k_x86: one weight row against kTileTokens = 8 activation rows (prompt processing).
//    Each weight block is unpacked once to unsigned 8-bit quants and per-lane scales, then
//    multiplied with the 8 tokens' Q8_K blocks (AVX2: maddubs + madd; AVX-512: dpbusd + dpwssd),
//    so the unpacking costs 1/8 per token;
//  - vec_dot_k_x86: one row against one token, 8 blocks at a time (generation).
// Either way 8 blocks' integer sums are reduced together (hsum8x8) and their float terms computed
// in 8 lanes with exactly the operations of k_block_sum, then accumulated in block order, so the
// results equal the scalar vec_dot bit for bit.
// Included by kernels_simd.hpp after kernels_x86_fused.hpp (uses its helpers).
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "cpu/kernels_generic.hpp"

namespace vramfit::cpu {
namespace {  // NOLINT: one copy per ISA translation unit (see kernels_generic.hpp)

constexpr int kTile = kTileTokens;
static_assert(kTile == 8, "the lane reductions below are written for 8 tokens");

// Block i of token t's activation row.
inline const block_q8_K &act_block(const std::byte *act, size_t stride, int t, int64_t i) {
  return reinterpret_cast<const block_q8_K *>(act + static_cast<size_t>(t) * stride)[i];
}

// The 8 tokens' Q8_K scales of block i.
inline __m256 act_scales(const std::byte *act, size_t stride, int64_t i) {
  alignas(32) float d[kTile];
  for (int t = 0; t < kTile; ++t) d[t] = act_block(act, stride, t, i).d;
  return _mm256_load_ps(d);
}

// sum + ((act_d * w_d) * isum - (act_d * w_dmin) * isum_min), lane by lane: k_block_sum's
// operations in its order (separate multiplies and subtracts, no FMA).
inline __m256 add_block_sums(__m256 sum, __m256 act_d, float w_d, float w_dmin, __m256i isum, __m256i isum_min) {
  const __m256 d = _mm256_mul_ps(act_d, _mm256_set1_ps(w_d));
  const __m256 dmin = _mm256_mul_ps(act_d, _mm256_set1_ps(w_dmin));
  const __m256 term = _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(isum)),
                                    _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(isum_min)));
  return _mm256_add_ps(sum, term);
}

// Integer sums of one weight block with one activation block, as 8 lanes each: `dot` sums to
// the block's isum, `mins` to its isum_min (zero for formats without mins).
struct LaneSums {
  __m256i dot, mins;
};

#if defined(__AVX512BW__)  // ---- 512-bit blocks, VNNI ----

// Shuffle control spreading int16 scale elements over packs_epi32(P(q[2p]), P(q[2p+1])), where
// P(q[j]) are the 4-product sums of dot256_quants: 128-bit lane k of the pack holds four sums of
// q[2p] (scale element lo[k]) then four of q[2p+1] (element hi[k]).
inline __m512i pick_packed(const int (&lo)[4], const int (&hi)[4]) {
  const auto ctl = [](int e) { return static_cast<int16_t>(((2 * e + 1) << 8) | (2 * e)); };
  __m128i lane[4];
  for (int k = 0; k < 4; ++k) {
    const int16_t a = ctl(lo[k]), b = ctl(hi[k]);
    lane[k] = _mm_set_epi16(b, b, b, b, a, a, a, a);
  }
  return join256(_mm256_set_m128i(lane[1], lane[0]), _mm256_set_m128i(lane[3], lane[2]));
}

// sum_k q[k] * a[k] * scale(k) for 4 x 64 unsigned quants, folded to 8 int32 lanes. VNNI's
// dpbusd sums 4 products per int32 (|sum| <= 4 * 63 * 128 < 2^15 for every format), so pairs
// of vectors pack to int16 exactly and one dpwssd (madd + add) per 128 weights applies the scales.
inline __m256i dot256_quants(const __m512i *q, const __m512i *scale, const int8_t *a) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc = zero;
  for (int p = 0; p < 2; ++p) {
    const __m512i s0 = _mm512_dpbusd_epi32(zero, q[2 * p], _mm512_loadu_si512(a + 128 * p));
    const __m512i s1 = _mm512_dpbusd_epi32(zero, q[2 * p + 1], _mm512_loadu_si512(a + 128 * p + 64));
    acc = _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(s0, s1), scale[p]);  // acc += madd(...)
  }
  return fold512(acc);
}

// Scales of 16 sub-blocks of 16 (int16) spread for dot256_quants over q[2h] = weights 128h +
// 0..63 and q[2h+1] = 128h + 64..127: pack lane k covers sub-blocks 8h + k and 8h + 4 + k.
inline void spread_scales16(__m256i sc16, __m512i *scale) {
  for (int half = 0; half < 2; ++half) {
    const __m512i s = _mm512_broadcast_i32x4(half ? _mm256_extracti128_si256(sc16, 1) : _mm256_castsi256_si128(sc16));
    scale[half] = _mm512_shuffle_epi8(s, pick_packed({0, 1, 2, 3}, {4, 5, 6, 7}));
  }
}

// A block with mins (Q2_K, Q4_K, Q5_K) unpacked: q[j] = weights 64j..64j+63 as unsigned bytes,
// scale their scales for dot256_quants, mins16 the min of each bsum's 16 weights.
struct MinsBlock {
  __m512i q[4], scale[2];
  __m256i mins16;
};

template <class Block>
inline MinsBlock unpack_q45(const Block &b) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  MinsBlock u;
  const __m128i sm = k4_scales_mins(b.scales);  // bytes 0..7 scales, 8..15 mins
  const __m512i scales8 = _mm512_broadcast_i32x4(_mm256_castsi256_si128(_mm256_cvtepu8_epi16(sm)));
  u.mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
  for (int half = 0; half < 2; ++half) {  // 64 bytes: low nibbles w 0..31|64..95, high 32..63|96..127
    const __m512i bits = _mm512_loadu_si512(b.qs + 64 * half);
    const __m512i lo = _mm512_and_si512(bits, low4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(bits, 4), low4);
    u.q[2 * half] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
    u.q[2 * half + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
  }
  if constexpr (std::is_same_v<Block, block_q5_K>) {  // bit 2j of qh[l]: weight 64j + l; 2j+1: 64j + 32 + l
    const __m512i one = _mm512_set1_epi8(1);
    const __m256i qh = load256(b.qh);
    const __m512i h = join256(qh, _mm256_srli_epi16(qh, 1));
    for (int j = 0; j < 4; ++j)
      u.q[j] = _mm512_or_si512(u.q[j], _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2 * j), one), 4));
  }
  // P(q[j]) lanes 0-7: sub-block 2j, 8-15: 2j+1, so pack lane k covers sub-blocks 4p + (k >= 2)
  // (from q[2p]) and 4p + 2 + (k >= 2) (from q[2p+1]).
  u.scale[0] = _mm512_shuffle_epi8(scales8, pick_packed({0, 0, 1, 1}, {2, 2, 3, 3}));
  u.scale[1] = _mm512_shuffle_epi8(scales8, pick_packed({4, 4, 5, 5}, {6, 6, 7, 7}));
  return u;
}

// Q2_K: weight 128h + 32s + l is bits 2s of qs[32h + l]; scales[g]: scale low nibble, min high.
inline MinsBlock unpack_q2(const block_q2_K &b) {
  const __m512i three = _mm512_set1_epi8(0x03);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  MinsBlock u;
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales));
  spread_scales16(_mm256_cvtepu8_epi16(_mm_and_si128(packed, low4)), u.scale);
  u.mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
  for (int half = 0; half < 2; ++half) {
    const __m256i qs = load256(b.qs + 32 * half);
    const __m512i low = join256(qs, _mm256_srli_epi16(qs, 2));  // s = 0 | 1 at bits 0-1, s = 2 | 3 at 4-5
    u.q[2 * half] = _mm512_and_si512(low, three);
    u.q[2 * half + 1] = _mm512_and_si512(_mm512_srli_epi16(low, 4), three);
  }
  return u;
}

// Q3_K / Q6_K block unpacked: 16 sub-blocks of 16 with signed scales; quants used unsigned
// (q + 2^kOffsetShift: Q3_K's q + 4, Q6_K's q + 32), the offset taken back from the bsums.
// q[2h]: weights 128h + 0..63, q[2h+1]: 128h + 64..127.
template <int kOffsetShift>
struct OffsetBlock {
  __m512i q[4], scale[2];
  __m256i sc16;
};
using Q3Block = OffsetBlock<2>;
using Q6Block = OffsetBlock<5>;

inline Q6Block unpack_q6(const block_q6_K &b) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i two = _mm512_set1_epi8(0x03);
  Q6Block u;
  u.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales)));
  for (int half = 0; half < 2; ++half) {
    const __m512i l = _mm512_loadu_si512(b.ql + 64 * half);
    const __m256i hq = load256(b.qh + 32 * half);
    const __m512i h = join256(hq, _mm256_srli_epi16(hq, 2));
    u.q[2 * half] = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_slli_epi16(_mm512_and_si512(h, two), 4));
    u.q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 4), two), 4));
  }
  spread_scales16(u.sc16, u.scale);
  return u;
}

// Q3_K: q + 4 = low 2 bits | hmask bit << 2; weight 128h + 32s + l has its low bits at bits 2s
// of qs[32h + l] and its high bit at bit 4h + s of hmask[l].
inline Q3Block unpack_q3(const block_q3_K &b) {
  const __m512i two = _mm512_set1_epi8(0x03);
  const __m512i one = _mm512_set1_epi8(0x01);
  Q3Block u;
  u.sc16 = _mm256_cvtepi8_epi16(q3_scales(b.scales));
  const __m256i hm = load256(b.hmask);
  const __m512i high = join256(hm, _mm256_srli_epi16(hm, 1));  // bit 4h+s: s even low half, odd high
  for (int half = 0; half < 2; ++half) {
    const __m256i qs = load256(b.qs + 32 * half);
    const __m512i low = join256(qs, _mm256_srli_epi16(qs, 2));  // s = 0 | 1 at bits 0-1, s = 2 | 3 at 4-5
    for (int k = 0; k < 2; ++k) {
      const __m512i low2 = _mm512_and_si512(_mm512_srli_epi16(low, 4 * k), two);
      const __m512i bit = _mm512_and_si512(_mm512_srli_epi16(high, 4 * half + 2 * k), one);
      u.q[2 * half + k] = _mm512_or_si512(low2, _mm512_slli_epi16(bit, 2));
    }
  }
  spread_scales16(u.sc16, u.scale);
  return u;
}

#else  // ---- AVX2: 256-bit blocks, maddubs + madd ----

// A block with mins (Q2_K, Q4_K, Q5_K) unpacked: q[c] = weights 32c..32c+31 as unsigned bytes,
// scale[c] the int16 scale of each of their maddubs pairs, mins16 the min of each bsum's 16 weights.
struct MinsBlock {
  __m256i q[8], scale[8];
  __m256i mins16;
};

// Q3_K / Q6_K block unpacked, as the 512-bit version: quants used unsigned (q + 2^kOffsetShift).
template <int kOffsetShift>
struct OffsetBlock {
  __m256i q[8], scale[8];
  __m256i sc16;
};
using Q3Block = OffsetBlock<2>;
using Q6Block = OffsetBlock<5>;

// sum_k q[k] * a[k] * scale(k) for 8 x 32 unsigned quants, as 8 int32 lanes (a maddubs pair
// stays below 2^15: 2 * 63 * 128).
inline __m256i dot256_quants(const __m256i *q, const __m256i *scale, const int8_t *a) {
  __m256i acc = _mm256_madd_epi16(_mm256_maddubs_epi16(q[0], load256(a)), scale[0]);
#pragma GCC unroll 7
  for (int c = 1; c < 8; ++c)
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q[c], load256(a + 32 * c)), scale[c]));
  return acc;
}

// Scales of 16 sub-blocks of 16 (int16): q[c] covers sub-blocks 2c and 2c + 1.
inline void spread_scales16(__m256i sc16, __m256i *scale) {
  for (int half = 0; half < 2; ++half) {
    const __m256i s = _mm256_broadcastsi128_si256(half ? _mm256_extracti128_si256(sc16, 1) : _mm256_castsi256_si128(sc16));
    for (int k = 0; k < 4; ++k) scale[4 * half + k] = _mm256_shuffle_epi8(s, pick_pair(2 * k, 2 * k + 1));
  }
}

template <class Block>  // block_q4_K or block_q5_K
inline MinsBlock unpack_q45(const Block &b) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  MinsBlock u;
  const __m128i sm = k4_scales_mins(b.scales);  // bytes 0..7 scales, 8..15 mins
  const __m256i scales8 = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(_mm256_cvtepu8_epi16(sm)));
  u.mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
  for (int j = 0; j < 4; ++j) {  // 32 bytes: low nibbles weights 64j + 0..31, high 64j + 32..63
    const __m256i bits = load256(b.qs + 32 * j);
    u.q[2 * j] = _mm256_and_si256(bits, low4);
    u.q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
  }
  if constexpr (std::is_same_v<Block, block_q5_K>) {  // bit c of qh[l]: weight 32c + l
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i qh = load256(b.qh);
    for (int c = 0; c < 8; ++c)
      u.q[c] = _mm256_or_si256(u.q[c], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, c), one), 4));
  }
  for (int c = 0; c < 8; ++c) u.scale[c] = _mm256_shuffle_epi8(scales8, pick_pair(c, c));
  return u;
}

// Q2_K: weight 128h + 32s + l is bits 2s of qs[32h + l]; scales[g]: scale low nibble, min high.
inline MinsBlock unpack_q2(const block_q2_K &b) {
  const __m256i three = _mm256_set1_epi8(0x03);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  MinsBlock u;
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales));
  spread_scales16(_mm256_cvtepu8_epi16(_mm_and_si128(packed, low4)), u.scale);
  u.mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
  for (int half = 0; half < 2; ++half) {
    const __m256i bits = load256(b.qs + 32 * half);
    for (int s = 0; s < 4; ++s) u.q[4 * half + s] = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), three);
  }
  return u;
}

// Q3_K: q + 4 = low 2 bits | hmask bit << 2 (weight 128h + 32s + l: bits 2s of qs[32h + l], bit
// 4h + s of hmask[l]).
inline Q3Block unpack_q3(const block_q3_K &b) {
  const __m256i three = _mm256_set1_epi8(0x03);
  const __m256i one = _mm256_set1_epi8(0x01);
  Q3Block u;
  u.sc16 = _mm256_cvtepi8_epi16(q3_scales(b.scales));
  spread_scales16(u.sc16, u.scale);
  const __m256i hm = load256(b.hmask);
  for (int half = 0; half < 2; ++half) {
    const __m256i bits = load256(b.qs + 32 * half);
    for (int s = 0; s < 4; ++s) {
      const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * half + s), one);
      u.q[4 * half + s] =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), three), _mm256_slli_epi16(high, 2));
    }
  }
  return u;
}

// Q6_K: weight 128h + 32k + l: low 4 bits in ql[64h + 32(k & 1) + l] (nibble k / 2), high 2 at
// bits 2k of qh[32h + l].
inline Q6Block unpack_q6(const block_q6_K &b) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i three = _mm256_set1_epi8(0x03);
  Q6Block u;
  u.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales)));
  spread_scales16(u.sc16, u.scale);
  for (int half = 0; half < 2; ++half) {
    const __m256i l0 = load256(b.ql + 64 * half), l1 = load256(b.ql + 64 * half + 32);
    const __m256i h = load256(b.qh + 32 * half);
    const __m256i low[4] = {_mm256_and_si256(l0, low4), _mm256_and_si256(l1, low4),
                            _mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                            _mm256_and_si256(_mm256_srli_epi16(l1, 4), low4)};
    for (int k = 0; k < 4; ++k)
      u.q[4 * half + k] =
          _mm256_or_si256(low[k], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * k), three), 4));
  }
  return u;
}

#endif  // __AVX512BW__

inline LaneSums lane_sums(const MinsBlock &w, const block_q8_K &a) {
  return {dot256_quants(w.q, w.scale, a.qs), _mm256_madd_epi16(w.mins16, load256(a.bsums))};
}

template <int kOffsetShift>
inline LaneSums lane_sums(const OffsetBlock<kOffsetShift> &w, const block_q8_K &a) {
  const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(w.sc16, load256(a.bsums)), kOffsetShift);
  return {_mm256_sub_epi32(dot256_quants(w.q, w.scale, a.qs), offset), _mm256_setzero_si256()};
}

template <class Block>
inline auto unpack_block(const Block &b) {
  if constexpr (std::is_same_v<Block, block_q6_K>)
    return unpack_q6(b);
  else if constexpr (std::is_same_v<Block, block_q3_K>)
    return unpack_q3(b);
  else if constexpr (std::is_same_v<Block, block_q2_K>)
    return unpack_q2(b);
  else
    return unpack_q45(b);
}

template <class Block>
inline float block_dmin(const Block &b) {
  if constexpr (std::is_same_v<Block, block_q6_K> || std::is_same_v<Block, block_q3_K>)
    return 0.f;  // k_block_sum(a.d, d, 0.f, isum, 0), as the fused kernels call it
  else
    return half_to_float(b.dmin);
}

// One weight row, 8 tokens: lane t accumulates token t's blocks in order.
template <class Block>
void tile_dot_k_x86(int64_t n, const void *w_row, const std::byte *act, size_t stride, float *out) {
  const auto *w = static_cast<const Block *>(w_row);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const auto block = unpack_block(w[i]);
    __m256i dots[kTile], mins[kTile];
    for (int t = 0; t < kTile; ++t) {
      const LaneSums s = lane_sums(block, act_block(act, stride, t, i));
      dots[t] = s.dot;
      mins[t] = s.mins;
    }
    sum = add_block_sums(sum, act_scales(act, stride, i), half_to_float(w[i].d), block_dmin(w[i]), hsum8x8(dots),
                         hsum8x8(mins));
  }
  _mm256_storeu_ps(out, sum);
}

// One weight row, one token, 8 blocks at a time: the 8 blocks' integer sums are reduced together
// and their float terms computed in 8 lanes, then added to the sum one by one, in block order
// (the fused kernel's operations, without a horizontal reduction per block).
template <class Block>
float vec_dot_k_x86(int64_t n, const void *w_row, const void *act_row) {
  const auto *w = static_cast<const Block *>(w_row);
  const auto *a = static_cast<const block_q8_K *>(act_row);
  const int64_t nb = n / QK_K;
  float sum = 0;
  int64_t i = 0;
  for (; i + kTile <= nb; i += kTile) {
    __m256i dots[kTile], mins[kTile];
    alignas(32) float act_d[kTile], w_d[kTile], w_dmin[kTile];
    for (int b = 0; b < kTile; ++b) {
      const LaneSums s = lane_sums(unpack_block(w[i + b]), a[i + b]);
      dots[b] = s.dot;
      mins[b] = s.mins;
      act_d[b] = a[i + b].d;
      w_d[b] = half_to_float(w[i + b].d);
      w_dmin[b] = block_dmin(w[i + b]);
    }
    const __m256 ad = _mm256_load_ps(act_d);
    const __m256 d = _mm256_mul_ps(ad, _mm256_load_ps(w_d));
    const __m256 dmin = _mm256_mul_ps(ad, _mm256_load_ps(w_dmin));
    const __m256 terms = _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(hsum8x8(dots))),
                                       _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(hsum8x8(mins))));
    alignas(32) float term[kTile];
    _mm256_store_ps(term, terms);
    for (int b = 0; b < kTile; ++b) sum += term[b];
  }
  for (; i < nb; ++i) {
    const LaneSums s = lane_sums(unpack_block(w[i]), a[i]);
    sum += k_block_sum(a[i].d, half_to_float(w[i].d), block_dmin(w[i]), hsum(s.dot), hsum(s.mins));
  }
  return sum;
}

// The f16 field at `offset` bytes into block i of 8 rows, as 8 floats (exact: F16C).
template <class Block>
inline __m256 row_halves8(const Block *const *rows, int64_t i, size_t offset) {
  uint16_t h[kRowTile];
  for (int r = 0; r < kRowTile; ++r) std::memcpy(&h[r], reinterpret_cast<const char *>(&rows[r][i]) + offset, 2);
  return _mm256_cvtph_ps(_mm_setr_epi16(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]));
}

// Eight weight rows, one token (RowsDot): lane r accumulates row r's blocks in order with
// k_block_sum's operations, as vec_dot_k_x86 does for one row, so the bits are the same.
template <class Block>
void rows_dot_k_x86(int64_t n, const std::byte *w, size_t w_stride, const void *act, float *out) {
  static_assert(kRowTile == 8, "hsum8x8 reduces 8 rows");
  constexpr bool has_mins = !std::is_same_v<Block, block_q6_K> && !std::is_same_v<Block, block_q3_K>;
  const auto *a = static_cast<const block_q8_K *>(act);
  const Block *rows[kRowTile];
  for (int r = 0; r < kRowTile; ++r) rows[r] = reinterpret_cast<const Block *>(w + r * w_stride);
  NextTilePrefetch prefetch(w, w_stride, sizeof(Block));
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch.at_block(i);
    __m256i dots[kRowTile], mins[kRowTile];
    for (int r = 0; r < kRowTile; ++r) {
      const LaneSums s = lane_sums(unpack_block(rows[r][i]), a[i]);
      dots[r] = s.dot;
      mins[r] = s.mins;
    }
    __m256 w_dmin = _mm256_setzero_ps();  // block_dmin: 0 for the formats without mins
    if constexpr (has_mins) w_dmin = row_halves8(rows, i, offsetof(Block, dmin));
    const __m256 ad = _mm256_set1_ps(a[i].d);
    const __m256 d = _mm256_mul_ps(ad, row_halves8(rows, i, offsetof(Block, d)));
    const __m256 dmin = _mm256_mul_ps(ad, w_dmin);
    const __m256 term = _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(hsum8x8(dots))),
                                      _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(hsum8x8(mins))));
    sum = _mm256_add_ps(sum, term);
  }
  _mm256_storeu_ps(out, sum);
}

inline RowsDot rows_dot_x86(GgmlType type) {
  switch (type) {
    case GgmlType::Q2_K: return &rows_dot_k_x86<block_q2_K>;
    case GgmlType::Q3_K: return &rows_dot_k_x86<block_q3_K>;
    case GgmlType::Q4_K: return &rows_dot_k_x86<block_q4_K>;
    case GgmlType::Q5_K: return &rows_dot_k_x86<block_q5_K>;
    case GgmlType::Q6_K: return &rows_dot_k_x86<block_q6_K>;
    case GgmlType::Q4_0: return &rows_dot_q8_0_avx2<block_q4_0>;
    case GgmlType::Q8_0: return &rows_dot_q8_0_avx2<block_q8_0>;
    case GgmlType::MXFP4: return &rows_dot_q8_0_avx2<block_mxfp4>;
    default: return nullptr;
  }
}

inline TileDot tile_dot_x86(GgmlType type) {
  switch (type) {
    case GgmlType::Q2_K: return &tile_dot_k_x86<block_q2_K>;
    case GgmlType::Q3_K: return &tile_dot_k_x86<block_q3_K>;
    case GgmlType::Q4_K: return &tile_dot_k_x86<block_q4_K>;
    case GgmlType::Q5_K: return &tile_dot_k_x86<block_q5_K>;
    case GgmlType::Q6_K: return &tile_dot_k_x86<block_q6_K>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace vramfit::cpu
#endif  // __AVX2__
