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

// Quants as unsigned bytes u = q + offset (Q4_0: the raw nibbles, offset 8; MXFP4: the doubled
// E2M1 value + 12, in 0..24; Q8_0: q + 128, for dpbusd only: maddubs's pair sums of it would
// saturate). maddubs and dpbusd take them as they are: sum(q * y) = sum(u * y) - offset * sum(y),
// exact in integers (the kernels correct once per block).
template <class Block>
constexpr int kQuantOffset = std::is_same_v<Block, block_q4_0> ? 8 : std::is_same_v<Block, block_mxfp4> ? 12 : 128;

// VNNI on 256-bit registers (the AVX-512 table): dpbusd replaces maddubs + madd.
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define VRAMFIT_VNNI256 1
#else
#define VRAMFIT_VNNI256 0
#endif

// ggml's kvalues_mxfp4 (the doubled E2M1 value of each 4-bit code) + 12, in both 128-bit lanes.
inline __m256i mxfp4_unsigned_values() {
  return _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,  //
                          12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
}
// The 32 4-bit codes of a Q4_0 / MXFP4 block in weight order: low nibbles are weights 0..15.
inline __m256i block_nibbles(const uint8_t *qs) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i *>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(bits, 4), bits), _mm256_set1_epi8(0x0F));
}
inline __m256i unsigned_quants(const block_q8_0 &b) { return _mm256_xor_si256(load256(b.qs), _mm256_set1_epi8(-128)); }
inline __m256i unsigned_quants(const block_q4_0 &b) { return block_nibbles(b.qs); }
inline __m256i unsigned_quants(const block_mxfp4 &b) {
  return _mm256_shuffle_epi8(mxfp4_unsigned_values(), block_nibbles(b.qs));
}

// Signed quants (the sign trick of the one-row kernel below; Q8_0's span all of int8).
template <class Block>
__m256i signed_quants(const Block &b) {
  if constexpr (std::is_same_v<Block, block_q8_0>)
    return load256(b.qs);
  else
    return _mm256_sub_epi8(unsigned_quants(b), _mm256_set1_epi8(kQuantOffset<Block>));
}

template <class Block>
__m256i q8_0_lane_sums(const Block &w, const block_q8_0 &a) {
  const __m256i q = signed_quants(w);
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

// quantize_q8_0_block in 256-bit registers, with the same values: the max of |x| does not depend
// on the order it is taken in, d and 127/amax are the same scalar divisions, x * id the same
// products, and round-to-nearest-even equals nearest_int for |x * id| <= 127.
inline void quantize_q8_0_block_avx2(const float *x, block_q8_0 &y) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 v[4];
  __m256 amax8 = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    amax8 = _mm256_max_ps(amax8, _mm256_and_ps(v[k], abs_mask));
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float amax = _mm_cvtss_f32(m);
  y.d = quant::f32_to_f16(amax / 127.f);
  const __m256 id = _mm256_set1_ps(amax != 0 ? 127.f / amax : 0.f);
  __m256i q[4];
  for (int k = 0; k < 4; ++k)
    q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  // packs work within 128-bit lanes: the permute puts the 32 bytes back in order.
  const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i *>(y.qs),
                      _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// quantize_q8_K_block in 256-bit registers, with the same values: amax is the same whatever the
// order (a NaN is skipped, as the scalar compare skips it), max is the first value of that
// magnitude, iscale and its products are the same scalar and float operations, and nearest_int
// is done as it is written (the 1.5 * 2^23 trick on the bits), so NaN and Inf give its values.
inline void quantize_q8_K_block_avx2(const float *x, block_q8_K &y) {
  constexpr int kVectors = QK_K / 8;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 amax8 = _mm256_setzero_ps();
  for (int k = 0; k < kVectors; ++k)  // max_ps returns its second operand when the first is NaN
    amax8 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + 8 * k), abs_mask), amax8);
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float amax = _mm_cvtss_f32(m);
  if (amax == 0) {
    std::memset(&y, 0, sizeof y);
    return;
  }
  float max = 0;
  const __m256 amax_all = _mm256_set1_ps(amax);
  for (int k = 0; k < kVectors; ++k) {
    const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + 8 * k), abs_mask), amax_all,
                                                      _CMP_EQ_OQ));
    if (hits) {
      max = x[8 * k + __builtin_ctz(static_cast<unsigned>(hits))];
      break;
    }
  }
  const float iscale = -127.f / max;
  const __m256 scale = _mm256_set1_ps(iscale);
  const __m256i limit = _mm256_set1_epi32(127);
  const auto nearest_int = [](__m256 v) {
    const __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
  };
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // packs work within 128-bit lanes
  for (int k = 0; k < QK_K / 32; ++k) {
    __m256i q[4];
    for (int v = 0; v < 4; ++v)
      q[v] = _mm256_min_epi32(nearest_int(_mm256_mul_ps(scale, _mm256_loadu_ps(x + 32 * k + 8 * v))), limit);
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i bytes = _mm256_permutevar8x32_epi32(packed, order);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(y.qs + 32 * k), bytes);
    // Two bsums: sums of 16 bytes, through int16 pairs.
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes);
    const __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));  // 4 per 128-bit lane
    const __m128i sums = _mm_hadd_epi32(_mm256_castsi256_si128(quads), _mm256_extracti128_si256(quads, 1));
    const __m128i two = _mm_hadd_epi32(sums, sums);  // {bsum 2k, bsum 2k + 1, ...}
    y.bsums[2 * k] = static_cast<int16_t>(_mm_extract_epi32(two, 0));
    y.bsums[2 * k + 1] = static_cast<int16_t>(_mm_extract_epi32(two, 1));
  }
  y.d = 1 / iscale;
}

// The 8 integer lane sums of one weight block with one activation block: the sign trick for
// Q8_0 (its quants span all of int8), unsigned quants for Q4_0 / MXFP4 (corrected per block by
// block_sums8). |pair sums| <= 2 * 24 * 128: maddubs cannot saturate.
// With VNNI, Q8_0 goes unsigned too (q + 128, one xor) into a single dpbusd.
template <class Block>
constexpr bool kUnsignedRows = !std::is_same_v<Block, block_q8_0> || VRAMFIT_VNNI256;

template <class Block>
__m256i row_lane_sums(const Block &w, const block_q8_0 &a, __m256i y) {
  if constexpr (!kUnsignedRows<Block>) {
    return q8_0_lane_sums(w, a);
  } else {
#if VRAMFIT_VNNI256
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), unsigned_quants(w), y);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(unsigned_quants(w), y), _mm256_set1_epi16(1));
#endif
  }
}

// The exact integer sums of 8 rows' blocks from their lane sums (lane r = row r).
template <class Block>
__m256i block_sums8(const __m256i *lane_sums, __m256i y) {
  const __m256i sums = hsum8x8(lane_sums);
  if constexpr (!kUnsignedRows<Block>) {
    return sums;
  } else {
    const __m256i pairs = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), y), _mm256_set1_epi16(1));
    return _mm256_sub_epi32(sums, _mm256_set1_epi32(kQuantOffset<Block> * hsum(pairs)));
  }
}

// Eight weight rows against one activation row (RowsDot): block i's integer sums of the 8 rows
// reduced together, lane r = row r, and each lane adds d * isum in block order with the
// operations of vec_dot_q8_0_avx2 (d = weight scale * activation scale, then the product, then
// the add; sum starting at 0), so lane r equals vec_dot of row r bit for bit.
static_assert(kRowTile == 8, "hsum8x8 reduces 8 rows");

// Block i's scale of 8 rows as 8 floats, built in registers (8 scalar stores and a vector load
// would stall on store forwarding). The same values as block_scale: F16C converts exactly.
inline __m256 block_scales8(const block_q4_0 *const *rows, int64_t i) {
  const __m128i h = _mm_setr_epi16(rows[0][i].d, rows[1][i].d, rows[2][i].d, rows[3][i].d, rows[4][i].d,
                                   rows[5][i].d, rows[6][i].d, rows[7][i].d);
  return _mm256_cvtph_ps(h);
}
inline __m256 block_scales8(const block_q8_0 *const *rows, int64_t i) {
  const __m128i h = _mm_setr_epi16(rows[0][i].d, rows[1][i].d, rows[2][i].d, rows[3][i].d, rows[4][i].d,
                                   rows[5][i].d, rows[6][i].d, rows[7][i].d);
  return _mm256_cvtph_ps(h);
}
// E8M0: 2^(e-128) as float bits (e - 1) << 23, or the subnormal 0x00200000 << e for e < 2,
// exactly as quant::e8m0_to_f32_half.
inline __m256 block_scales8(const block_mxfp4 *const *rows, int64_t i) {
  const __m256i e = _mm256_setr_epi32(rows[0][i].e, rows[1][i].e, rows[2][i].e, rows[3][i].e, rows[4][i].e,
                                      rows[5][i].e, rows[6][i].e, rows[7][i].e);
  const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
  const __m256i subnormal = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e);
  const __m256i is_subnormal = _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e);
  return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, subnormal, is_subnormal));
}
// Blocks i and i + 1 of Q4_0 / MXFP4 as unsigned quants in two registers: lo = the low nibbles'
// quants (weights 0..15) of block i | of block i + 1, hi = the high nibbles' (weights 16..31).
struct QuantPair {
  __m256i lo, hi;
};
inline QuantPair unsigned_quant_pair(const block_q4_0 *b) {
  const __m256i bits = _mm256_loadu2_m128i(reinterpret_cast<const __m128i *>(b[1].qs),
                                           reinterpret_cast<const __m128i *>(b[0].qs));
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  return {_mm256_and_si256(bits, low4), _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4)};
}
inline QuantPair unsigned_quant_pair(const block_mxfp4 *b) {
  const __m256i values = mxfp4_unsigned_values();
  const __m256i bits = _mm256_loadu2_m128i(reinterpret_cast<const __m128i *>(b[1].qs),
                                           reinterpret_cast<const __m128i *>(b[0].qs));
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  return {_mm256_shuffle_epi8(values, _mm256_and_si256(bits, low4)),
          _mm256_shuffle_epi8(values, _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4))};
}

// Integer sums of blocks i and i + 1 for 8 rows, from per-row lane sums whose lanes 0-3 belong
// to block i and 4-7 to block i + 1: two hadd levels leave, per 4 rows, block i's sums in the low
// half and block i + 1's in the high half.
inline void pair_sums8(const __m256i *s, __m256i &first, __m256i &second) {
  const __m256i x = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
  const __m256i y = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
  first = _mm256_permute2x128_si256(x, y, 0x20);
  second = _mm256_permute2x128_si256(x, y, 0x31);
}

// Reading 8 rows side by side is 8 interleaved streams, and rows of a few KiB share 4 KiB pages:
// the hardware prefetchers, which follow one ascending stream per page, give up (a 2-thread Q4_0
// mat-vec streamed 20 GB/s of 37 on an AMD EPYC). So the kernel prefetches the next 8 rows (the
// next RowsDot call's bytes, contiguous in a matrix) in address order, in step with its own
// progress: one ascending stream the memory system serves at full speed. Prefetches past the
// matrix are harmless (they never fault) and cost one tile per band.
class NextTilePrefetch {
 public:
  NextTilePrefetch(const std::byte *w, size_t w_stride, size_t block_bytes)
      : next_(reinterpret_cast<const char *>(w + kRowTile * w_stride)), tile_bytes_per_block_(kRowTile * block_bytes) {}
  // Called once per block index i (in order): prefetches the next tile's share of block i.
  void at_block(int64_t i) {
    const size_t end = static_cast<size_t>(i + 1) * tile_bytes_per_block_;
    for (; done_ < end; done_ += 64) _mm_prefetch(next_ + done_, _MM_HINT_T0);
  }

 private:
  const char *next_;
  size_t tile_bytes_per_block_;
  size_t done_ = 0;
};

// Eight weight rows against one activation row (RowsDot): lane r = row r, and each lane adds
// d * isum in block order with the operations of vec_dot_q8_0_avx2 (d = weight scale *
// activation scale, then the product, then the add; sum starting at 0), so lane r equals vec_dot
// of row r bit for bit. Q4_0 / MXFP4 go two blocks at a time: one 256-bit unpack and one
// reduction serve both.
template <class Block>
void rows_dot_q8_0_avx2(int64_t n, const std::byte *w, size_t w_stride, const void *act, float *out) {
  const auto *a = static_cast<const block_q8_0 *>(act);
  const Block *rows[kRowTile];
  for (int r = 0; r < kRowTile; ++r) rows[r] = reinterpret_cast<const Block *>(w + r * w_stride);
  NextTilePrefetch prefetch(w, w_stride, sizeof(Block));
  __m256 sum = _mm256_setzero_ps();
  const auto add_block = [&](int64_t i, __m256i isum) {
    prefetch.at_block(i);
    const __m256 d = _mm256_mul_ps(block_scales8(rows, i), _mm256_set1_ps(half_to_float(a[i].d)));
    sum = _mm256_add_ps(sum, _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum)));
  };
  const int64_t nb = n / 32;
  int64_t i = 0;
  if constexpr (!std::is_same_v<Block, block_q8_0>) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (; i + 2 <= nb; i += 2) {
      const __m256i y0 = load256(a[i].qs), y1 = load256(a[i + 1].qs);
      const __m256i ylo = _mm256_permute2x128_si256(y0, y1, 0x20);  // activations of the lo quants
      const __m256i yhi = _mm256_permute2x128_si256(y0, y1, 0x31);
      __m256i lane_sums[kRowTile];
      for (int r = 0; r < kRowTile; ++r) {
        const QuantPair q = unsigned_quant_pair(rows[r] + i);
#if VRAMFIT_VNNI256
        lane_sums[r] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q.lo, ylo), q.hi, yhi);
#else
        // |each maddubs pair| <= 2 * 24 * 127, so the int16 sum of two cannot overflow.
        lane_sums[r] = _mm256_madd_epi16(
            _mm256_add_epi16(_mm256_maddubs_epi16(q.lo, ylo), _mm256_maddubs_epi16(q.hi, yhi)), ones16);
#endif
      }
      // sum(y) of each block, in every lane of its half, for the offset correction.
      const __m256i ysum = _mm256_madd_epi16(
          _mm256_add_epi16(_mm256_maddubs_epi16(ones8, ylo), _mm256_maddubs_epi16(ones8, yhi)), ones16);
      const __m256i ysum4 = _mm256_hadd_epi32(_mm256_hadd_epi32(ysum, ysum), _mm256_hadd_epi32(ysum, ysum));
      const __m256i offset = _mm256_set1_epi32(kQuantOffset<Block>);
      const __m256i correction = _mm256_mullo_epi32(ysum4, offset);
      __m256i first, second;
      pair_sums8(lane_sums, first, second);
      add_block(i, _mm256_sub_epi32(first, _mm256_permute2x128_si256(correction, correction, 0x00)));
      add_block(i + 1, _mm256_sub_epi32(second, _mm256_permute2x128_si256(correction, correction, 0x11)));
    }
  }
  for (; i < nb; ++i) {
    const __m256i y = load256(a[i].qs);
    __m256i lane_sums[kRowTile];
    for (int r = 0; r < kRowTile; ++r) lane_sums[r] = row_lane_sums(rows[r][i], a[i], y);
    add_block(i, block_sums8<Block>(lane_sums, y));
  }
  _mm256_storeu_ps(out, sum);
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
