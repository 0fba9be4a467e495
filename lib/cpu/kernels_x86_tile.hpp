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
// Each format's quants are unpacked in the order its bits lie in the block (shifts and masks, no
// lane shuffles), and the activations are loaded in that same order instead: once per block for
// all the rows a kernel takes, so the reordering costs the rows nothing. Every 16-byte lane of an
// unpacked vector holds one sub-block of 16 consecutive weights, so the scales still apply lane by
// lane. The integer sums are exact, so the order does not change them.

// The activations of one Q8_K block as 4 x 64 bytes, in the order the weights' quants come in.
struct ActQuants {
  __m512i v[4];
};

inline __m512i load512(const void *p) { return _mm512_loadu_si512(p); }
inline __m512i join_loads(const int8_t *lo, const int8_t *hi) { return join256(load256(lo), load256(hi)); }

// Natural order (Q6_K): vector j = weights 64j..64j+63.
inline ActQuants act_natural(const int8_t *a) { return {{load512(a), load512(a + 64), load512(a + 128), load512(a + 192)}}; }

// Nibble order (Q4_K, Q5_K: the low and high nibbles of 64 bytes): vector 2h = weights
// 128h + 0..31 | 128h + 64..95 (low nibbles), 2h + 1 = 128h + 32..63 | 128h + 96..127 (high).
inline ActQuants act_nibbles(const int8_t *a) {
  return {{join_loads(a, a + 64), join_loads(a + 32, a + 96), join_loads(a + 128, a + 192),
           join_loads(a + 160, a + 224)}};
}

// Crumb order (Q2_K, Q3_K: bit pair s of 64 bytes): vector s = weights 32s + 0..31 | 128 + 32s + 0..31.
inline ActQuants act_crumbs(const int8_t *a) {
  return {{join_loads(a, a + 128), join_loads(a + 32, a + 160), join_loads(a + 64, a + 192),
           join_loads(a + 96, a + 224)}};
}

template <class Block>
inline ActQuants act_quants(const block_q8_K &a) {
  if constexpr (std::is_same_v<Block, block_q6_K>)
    return act_natural(a.qs);
  else if constexpr (std::is_same_v<Block, block_q2_K> || std::is_same_v<Block, block_q3_K>)
    return act_crumbs(a.qs);
  else
    return act_nibbles(a.qs);
}

// Shuffle control spreading int16 scale elements over packs_epi32(P(q[2p]), P(q[2p+1])), where
// P(q[j]) are the 4-product sums of dot256_quants: 128-bit lane k of the pack holds four sums of
// q[2p] (scale element lo[k]) then four of q[2p+1] (element hi[k]), elements of lane k's own 128 bits.
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
inline __m256i dot256_quants(const __m512i *q, const __m512i *scale, const ActQuants &a) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc = zero;
  for (int p = 0; p < 2; ++p) {
    const __m512i s0 = _mm512_dpbusd_epi32(zero, q[2 * p], a.v[2 * p]);
    const __m512i s1 = _mm512_dpbusd_epi32(zero, q[2 * p + 1], a.v[2 * p + 1]);
    acc = _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(s0, s1), scale[p]);  // acc += madd(...)
  }
  return fold512(acc);
}

// Scales of 16 sub-blocks of 16 (int16) for natural order: q[2h] = weights 128h + 0..63, q[2h+1] =
// 128h + 64..127, so pack lane k covers sub-blocks 8h + k and 8h + 4 + k.
inline void spread_scales_natural(__m256i sc16, __m512i *scale) {
  for (int half = 0; half < 2; ++half) {
    const __m512i s = _mm512_broadcast_i32x4(half ? _mm256_extracti128_si256(sc16, 1) : _mm256_castsi256_si128(sc16));
    scale[half] = _mm512_shuffle_epi8(s, pick_packed({0, 1, 2, 3}, {4, 5, 6, 7}));
  }
}

// The same for crumb order: q[s] lane k is sub-block {2s, 2s + 1, 8 + 2s, 9 + 2s}[k], so lanes 0-1
// read sub-blocks 0-7 and lanes 2-3 sub-blocks 8-15, each from its own copy.
inline void spread_scales_crumbs(__m256i sc16, __m512i *scale) {
  const __m512i s = _mm512_castsi256_si512(sc16);
  const __m512i halves = _mm512_shuffle_i64x2(s, s, _MM_SHUFFLE(1, 1, 0, 0));  // 0-7, 0-7, 8-15, 8-15
  scale[0] = _mm512_shuffle_epi8(halves, pick_packed({0, 1, 0, 1}, {2, 3, 2, 3}));
  scale[1] = _mm512_shuffle_epi8(halves, pick_packed({4, 5, 4, 5}, {6, 7, 6, 7}));
}

// a | (b & c), one instruction.
inline __m512i or_masked(__m512i a, __m512i b, __m512i c) { return _mm512_ternarylogic_epi32(a, b, c, 0xF8); }

// A block with mins (Q2_K, Q4_K, Q5_K) unpacked: q[j] the unsigned quants of ActQuants vector j,
// scale their scales for dot256_quants, mins16 the min of each bsum's 16 weights.
struct MinsBlock {
  __m512i q[4], scale[2];
  __m256i mins16;
};

// Q4_K / Q5_K in nibble order; 8 scales of 32 weights: q[2p] lane k is sub-block of 32
// {4p, 4p, 4p + 2, 4p + 2}[k], q[2p + 1] lane k {4p + 1, 4p + 1, 4p + 3, 4p + 3}[k].
template <class Block>
inline MinsBlock unpack_q45(const Block &b) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  MinsBlock u;
  const __m128i sm = k4_scales_mins(b.scales);  // bytes 0..7 scales, 8..15 mins
  const __m512i scales8 = _mm512_broadcast_i32x4(_mm256_castsi256_si128(_mm256_cvtepu8_epi16(sm)));
  u.mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
  for (int half = 0; half < 2; ++half) {
    const __m512i bits = load512(b.qs + 64 * half);
    u.q[2 * half] = _mm512_and_si512(bits, low4);
    u.q[2 * half + 1] = _mm512_and_si512(_mm512_srli_epi16(bits, 4), low4);
  }
  if constexpr (std::is_same_v<Block, block_q5_K>) {
    // Bit 2j of qh[l]: weight 64j + l; 2j + 1: 64j + 32 + l. With h = qh | qh >> 2 (halves),
    // q[0]'s fifth bit is bit 0 of h, q[1]'s bit 1, q[2]'s bit 4, q[3]'s bit 5; each goes to bit 4.
    const __m512i bit4 = _mm512_set1_epi8(0x10);
    const __m256i qh = load256(b.qh);
    const __m512i h = join256(qh, _mm256_srli_epi16(qh, 2));
    u.q[0] = or_masked(u.q[0], _mm512_slli_epi16(h, 4), bit4);
    u.q[1] = or_masked(u.q[1], _mm512_slli_epi16(h, 3), bit4);
    u.q[2] = or_masked(u.q[2], h, bit4);
    u.q[3] = or_masked(u.q[3], _mm512_srli_epi16(h, 1), bit4);
  }
  u.scale[0] = _mm512_shuffle_epi8(scales8, pick_packed({0, 0, 2, 2}, {1, 1, 3, 3}));
  u.scale[1] = _mm512_shuffle_epi8(scales8, pick_packed({4, 4, 6, 6}, {5, 5, 7, 7}));
  return u;
}

// Q2_K in crumb order: weight 128h + 32s + l is bits 2s of qs[32h + l]; scales[g]: scale low
// nibble, min high.
inline MinsBlock unpack_q2(const block_q2_K &b) {
  const __m512i three = _mm512_set1_epi8(0x03);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  MinsBlock u;
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales));
  spread_scales_crumbs(_mm256_cvtepu8_epi16(_mm_and_si128(packed, low4)), u.scale);
  u.mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
  const __m512i bits = load512(b.qs);
  for (int s = 0; s < 4; ++s) u.q[s] = _mm512_and_si512(_mm512_srli_epi16(bits, 2 * s), three);
  return u;
}

// Q3_K / Q6_K block unpacked: 16 sub-blocks of 16 with signed scales; quants used unsigned
// (q + 2^kOffsetShift: Q3_K's q + 4, Q6_K's q + 32), the offset taken back from the bsums.
template <int kOffsetShift>
struct OffsetBlock {
  __m512i q[4], scale[2];
  __m256i sc16;
};
using Q3Block = OffsetBlock<2>;
using Q6Block = OffsetBlock<5>;

// Q6_K in natural order: weight 128h + 32k + l has its low 4 bits in ql[64h + 32(k & 1) + l]
// (nibble k / 2) and its high 2 at bits 2k of qh[32h + l].
inline Q6Block unpack_q6(const block_q6_K &b) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i two = _mm512_set1_epi8(0x03);
  Q6Block u;
  u.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b.scales)));
  for (int half = 0; half < 2; ++half) {
    const __m512i l = load512(b.ql + 64 * half);
    const __m256i hq = load256(b.qh + 32 * half);
    const __m512i h = join256(hq, _mm256_srli_epi16(hq, 2));
    u.q[2 * half] = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_slli_epi16(_mm512_and_si512(h, two), 4));
    u.q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 4), two), 4));
  }
  spread_scales_natural(u.sc16, u.scale);
  return u;
}

// Q3_K in crumb order: q + 4 = low 2 bits | hmask bit << 2; weight 128h + 32s + l has its low
// bits at bits 2s of qs[32h + l] and its high bit at bit 4h + s of hmask[l]. With
// h = hmask | hmask >> 4 (halves), q[s]'s high bit is bit s of h; it goes to bit 2.
inline Q3Block unpack_q3(const block_q3_K &b) {
  const __m512i three = _mm512_set1_epi8(0x03);
  const __m512i bit2 = _mm512_set1_epi8(0x04);
  Q3Block u;
  u.sc16 = _mm256_cvtepi8_epi16(q3_scales(b.scales));
  spread_scales_crumbs(u.sc16, u.scale);
  const __m256i hm = load256(b.hmask);
  const __m512i h = join256(hm, _mm256_srli_epi16(hm, 4));
  const __m512i high[4] = {_mm512_slli_epi16(h, 2), _mm512_slli_epi16(h, 1), h, _mm512_srli_epi16(h, 1)};
  const __m512i bits = load512(b.qs);
  for (int s = 0; s < 4; ++s)
    u.q[s] = or_masked(_mm512_and_si512(_mm512_srli_epi16(bits, 2 * s), three), high[s], bit2);
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

// The activations of one Q8_K block, read in natural order as the quants are unpacked.
struct ActQuants {
  const int8_t *qs;
};

template <class Block>
inline ActQuants act_quants(const block_q8_K &a) {
  return {a.qs};
}

// sum_k q[k] * a[k] * scale(k) for 8 x 32 unsigned quants, as 8 int32 lanes (a maddubs pair
// stays below 2^15: 2 * 63 * 128).
inline __m256i dot256_quants(const __m256i *q, const __m256i *scale, const ActQuants &act) {
  const int8_t *a = act.qs;
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

// `x` is act_quants<Block>(a): the kernels load it once for all the rows they take.
inline LaneSums lane_sums(const MinsBlock &w, const block_q8_K &a, const ActQuants &x) {
  return {dot256_quants(w.q, w.scale, x), _mm256_madd_epi16(w.mins16, load256(a.bsums))};
}

template <int kOffsetShift>
inline LaneSums lane_sums(const OffsetBlock<kOffsetShift> &w, const block_q8_K &a, const ActQuants &x) {
  const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(w.sc16, load256(a.bsums)), kOffsetShift);
  return {_mm256_sub_epi32(dot256_quants(w.q, w.scale, x), offset), _mm256_setzero_si256()};
}

template <class Block>
inline LaneSums lane_sums(const Block &w, const block_q8_K &a) {
  return lane_sums(unpack_block(w), a, act_quants<Block>(a));
}


template <class Block>
inline float block_dmin(const Block &b) {
  if constexpr (kHasMins<Block>)
    return half_to_float(b.dmin);
  else
    return 0.f;  // k_block_sum(a.d, d, 0.f, isum, 0), as the fused kernels call it
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
      const block_q8_K &a = act_block(act, stride, t, i);
      const LaneSums s = lane_sums(block, a, act_quants<Block>(a));
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
      const LaneSums s = lane_sums(w[i + b], a[i + b]);
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
    const LaneSums s = lane_sums(w[i], a[i]);
    sum += k_block_sum(a[i].d, half_to_float(w[i].d), block_dmin(w[i]), hsum(s.dot), hsum(s.mins));
  }
  return sum;
}

// Block i's f16 scales of 8 rows (d, and dmin for the formats with mins), from one 32-bit word
// per row: d | dmin << 16 where dmin follows d (Q2_K, Q4_K, Q5_K), else the word ending with d
// (it ends Q3_K and Q6_K blocks), so every read lies in the block. One load per row instead of
// one per field (a gather of the 8 words was slower still on Zen 5). F16C converts exactly, as
// half_to_float.
template <class Block>
class RowScales8 {
 public:
  RowScales8(const Block *row0, size_t w_stride) : row0_(reinterpret_cast<const char *>(row0) + kWordOffset), stride_(w_stride) {}

  void load(int64_t i) {
    const char *word = row0_ + i * static_cast<int64_t>(sizeof(Block));
    int32_t w[kRowTile];
    for (int r = 0; r < kRowTile; ++r) std::memcpy(&w[r], word + r * stride_, 4);
    words_ = _mm256_setr_epi32(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
  }
  __m256 d() const {
    return kHasMins<Block> ? halves(_mm256_and_si256(words_, _mm256_set1_epi32(0xFFFF))) : high_halves();
  }
  __m256 dmin() const { return kHasMins<Block> ? high_halves() : _mm256_setzero_ps(); }  // block_dmin: 0 without mins

 private:
  static constexpr size_t word_offset() {
    if constexpr (kHasMins<Block>) {
      static_assert(offsetof(Block, dmin) == offsetof(Block, d) + 2, "d and dmin share a word");
      return offsetof(Block, d);
    } else {
      static_assert(offsetof(Block, d) + 2 == sizeof(Block), "d ends the block");
      return offsetof(Block, d) - 2;
    }
  }
  static constexpr size_t kWordOffset = word_offset();

  __m256 high_halves() const { return halves(_mm256_srli_epi32(words_, 16)); }
  static __m256 halves(__m256i u16) {
    return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(u16), _mm256_extracti128_si256(u16, 1)));
  }

  const char *row0_;
  size_t stride_;
  __m256i words_ = _mm256_setzero_si256();
};

// Eight weight rows, one token (RowsDot): lane r accumulates row r's blocks in order with
// k_block_sum's operations, as vec_dot_k_x86 does for one row, so the bits are the same.
template <class Block>
void rows_dot_k_x86(int64_t n, const std::byte *w, size_t w_stride, const void *act, float *out) {
  static_assert(kRowTile == 8, "hsum8x8 reduces 8 rows");
  const auto *a = static_cast<const block_q8_K *>(act);
  const Block *rows[kRowTile];
  for (int r = 0; r < kRowTile; ++r) rows[r] = reinterpret_cast<const Block *>(w + r * w_stride);
  NextTilePrefetch prefetch(w, w_stride, sizeof(Block));
  RowScales8<Block> scales(rows[0], w_stride);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch.at_block(i);
    scales.load(i);
    const ActQuants x = act_quants<Block>(a[i]);
    __m256i dots[kRowTile], mins[kRowTile];
    for (int r = 0; r < kRowTile; ++r) {
      const LaneSums s = lane_sums(unpack_block(rows[r][i]), a[i], x);
      dots[r] = s.dot;
      mins[r] = s.mins;
    }
    const __m256 ad = _mm256_set1_ps(a[i].d);
    const __m256 d = _mm256_mul_ps(ad, scales.d());
    const __m256 dmin = _mm256_mul_ps(ad, scales.dmin());
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
