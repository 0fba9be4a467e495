// Prompt processing with AVX-512 VNNI: a panel of kPanelRows weight rows against every token of
// a batch, for Q4_0, Q8_0, MXFP4 and the K-quants.
//
// The panel is packed once per call into a thread-local buffer, VNNI's layout: for each block,
// vectors whose 32-bit lane r holds 4 consecutive quants of row r as unsigned bytes (u = q +
// offset: kQuantOffset, or PanelK's for the K-quants). One dpbusd with 4 activation bytes broadcast
// then adds 4 products to each of the 16 rows, so no reduction is needed at all: lane r is row r.
// Each packed vector serves kPanelTokens tokens from a register.
//
// Exact integer sums: sum(q * y) = sum(u * y) - offset * sum(y), with the tokens' sums computed
// once per matmul, when the tokens are packed (PanelTokenBlock, PanelTokenBlockK). Each lane then
// does the float operations of the one-row kernels in block order, so y[t][r] is vec_dot of row
// r and token t bit for bit.
// Included by kernels_simd.hpp after kernels_x86_fused.hpp (uses its unpacking).
#pragma once

#if defined(__AVX512BW__)
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/kernels_generic.hpp"

namespace vramfit::cpu {
namespace {  // NOLINT: one copy per ISA translation unit (see kernels_generic.hpp)

static_assert(kPanelRows == 16, "one 512-bit vector of int32 lanes holds the panel's rows");

// One block of the packed panel: quant group g (weights 4g..4g+3) of row r in bytes 4r..4r+3 of
// q[g]; the rows' block scales in d (0 for the rows past the panel's end).
struct alignas(64) PanelBlock {
  uint8_t q[8][64];
  float d[kPanelRows];
};
static_assert(sizeof(PanelBlock) == 576);

// The 16 x 16 int32 matrix in v (v[i] = row i) transposed in place: off-diagonal blocks of 8,
// 4, 2, then 1 swapped.
inline void transpose16_epi32(__m512i (&v)[16]) {
#pragma GCC unroll 4
  for (int b = 8; b >= 1; b /= 2) {
    alignas(64) int32_t keep[16], take[16];  // the upper row of a pair keeps / takes
    for (int c = 0; c < 16; ++c) {
      keep[c] = (c & b) ? 16 + c - b : c;
      take[c] = (c & b) ? 16 + c : c + b;
    }
    const __m512i keep_idx = _mm512_load_si512(keep), take_idx = _mm512_load_si512(take);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      if (!(i & b)) {
        const __m512i upper = v[i], lower = v[i + b];
        v[i] = _mm512_permutex2var_epi32(upper, keep_idx, lower);
        v[i + b] = _mm512_permutex2var_epi32(upper, take_idx, lower);
      }
  }
}

// Two blocks at a time: the 16 rows' unsigned quants of blocks i and i + 1 (8 groups of 4 bytes
// each) side by side in one register per row, and one 16 x 16 transpose places every group.
template <class Block>
void pack_panel(int64_t nb, const std::byte *w, size_t w_stride, int n_rows, PanelBlock *panel) {
  for (int64_t i = 0; i < nb; i += 2) {
    const bool pair = i + 1 < nb;
    __m512i rows[kPanelRows];
    for (int r = 0; r < kPanelRows; ++r) {
      if (r >= n_rows) {  // a row past the panel: zero quants and scales
        rows[r] = _mm512_setzero_si512();
        panel[i].d[r] = 0.f;
        if (pair) panel[i + 1].d[r] = 0.f;
        continue;
      }
      const Block *row = reinterpret_cast<const Block *>(w + static_cast<size_t>(r) * w_stride);
      rows[r] = join256(unsigned_quants(row[i]), pair ? unsigned_quants(row[i + 1]) : _mm256_setzero_si256());
      panel[i].d[r] = block_scale(row[i]);
      if (pair) panel[i + 1].d[r] = block_scale(row[i + 1]);
    }
    transpose16_epi32(rows);
    for (int g = 0; g < 8; ++g) {
      _mm512_store_si512(panel[i].q[g], rows[g]);
      if (pair) _mm512_store_si512(panel[i + 1].q[g], rows[8 + g]);
    }
  }
}

// A tile of T <= kPanelTokens tokens against the packed panel: out[t][r] for r < kPanelRows.
template <class Block, int T>
void panel_tokens(int64_t nb, const PanelBlock *panel, const PanelTokenBlock *tile, float (*out)[kPanelRows]) {
  __m512 sum[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) sum[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const PanelBlock &p = panel[i];
    const PanelTokenBlock &a = tile[i];
    // Group-major, token-minor: T independent dpbusd chains instead of one chain of 8 per token.
    __m512i isum[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      const __m512i q = _mm512_load_si512(p.q[g]);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        int32_t four;
        std::memcpy(&four, a.qs[t] + 4 * g, 4);
        isum[t] = _mm512_dpbusd_epi32(isum[t], q, _mm512_set1_epi32(four));
      }
    }
    const __m512 wd = _mm512_load_ps(p.d);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512i exact = _mm512_sub_epi32(isum[t], _mm512_set1_epi32(kQuantOffset<Block> * a.sum[t]));
      const __m512 d = _mm512_mul_ps(wd, _mm512_set1_ps(a.d[t]));
      sum[t] = _mm512_add_ps(sum[t], _mm512_mul_ps(d, _mm512_cvtepi32_ps(exact)));
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out[t], sum[t]);
}

// ---- K-quants: 256-weight blocks through UnpackedK (w = d * scale * q - dmin * min per 16) ----

// How each K format goes into the panel: the offset that makes its quants unsigned (none for
// the formats with mins, whose quants are 0..2^bits - 1), and the width of the sub-blocks its
// scales cover (32 for Q4_K and Q5_K, 16 for the others): one scale multiply per sub-block.
template <class Block>
struct PanelK {
  static constexpr int kOffset = std::is_same_v<Block, block_q6_K> ? 32 : std::is_same_v<Block, block_q3_K> ? 4 : 0;
  static constexpr int kSubWeights = std::is_same_v<Block, block_q4_K> || std::is_same_v<Block, block_q5_K> ? 32 : 16;
};

// One K block of the packed panel. Quants as u = q + kOffset, in the same 4-byte groups; per
// sub-block j, the rows' scales; and, as int16 pairs of 16-weight sub-blocks 2p and 2p + 1 for
// dpwssd against the tokens' bsums, kOffset * scale (the offset's correction) and the mins.
struct alignas(64) PanelBlockK {
  uint8_t q[64][64];
  int32_t scale[16][kPanelRows];
  int16_t offset_pairs[8][2 * kPanelRows];
  int16_t min_pairs[8][2 * kPanelRows];
  float d[kPanelRows];
  float dmin[kPanelRows];
};
static_assert(sizeof(PanelBlockK) == 6272);

// A block's quants plus the panel offset (u = q + kOffset, the format's raw unsigned bits) in
// natural order: u[c] = weights 64c..64c+63.
// x shifted left by n bits (right for n < 0) in 16-bit lanes; the callers keep one bit of each
// byte that no other byte's bits reach.
inline __m256i shift_bits(__m256i x, int n) { return n >= 0 ? _mm256_slli_epi16(x, n) : _mm256_srli_epi16(x, -n); }

template <class Block>  // block_q4_K, block_q5_K (+ bit 2c of qh[l] for weight 64c + l, 2c + 1 for 64c + 32 + l)
inline void natural_quants(const Block &b, __m512i (&u)[4]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  for (int c = 0; c < 4; ++c) {  // 32 bytes: low nibbles weights 64c + 0..31, high 64c + 32..63
    const __m256i bits = load256(b.qs + 32 * c);
    __m256i lo = _mm256_and_si256(bits, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
    if constexpr (std::is_same_v<Block, block_q5_K>) {
      const __m256i qh = load256(b.qh);
      lo = _mm256_or_si256(lo, _mm256_and_si256(shift_bits(qh, 4 - 2 * c), bit4));
      hi = _mm256_or_si256(hi, _mm256_and_si256(shift_bits(qh, 3 - 2 * c), bit4));
    }
    u[c] = join256(lo, hi);
  }
}
inline void natural_quants(const block_q2_K &b, __m512i (&u)[4]) {  // weight 128h + 32s + l: bits 2s of qs[32h + l]
  const __m256i three = _mm256_set1_epi8(0x03);
  for (int c = 0; c < 4; ++c) {
    const __m256i bits = _mm256_srli_epi16(load256(b.qs + 32 * (c / 2)), 4 * (c % 2));
    u[c] = join256(_mm256_and_si256(bits, three), _mm256_and_si256(_mm256_srli_epi16(bits, 2), three));
  }
}
inline void natural_quants(const block_q3_K &b, __m512i (&u)[4]) {  // + the hmask bit 4h + s, as 4
  const __m256i three = _mm256_set1_epi8(0x03), four = _mm256_set1_epi8(0x04);
  const __m256i hm = load256(b.hmask);
  for (int c = 0; c < 4; ++c) {
    const int h = c / 2, s = 2 * (c % 2);  // weights 64c..: s and s + 1 of half h
    const __m256i bits = _mm256_srli_epi16(load256(b.qs + 32 * h), 2 * s);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, three),
                                       _mm256_and_si256(shift_bits(hm, 2 - (4 * h + s)), four));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2), three),
                                       _mm256_and_si256(shift_bits(hm, 2 - (4 * h + s + 1)), four));
    u[c] = join256(lo, hi);
  }
}
inline void natural_quants(const block_q6_K &b, __m512i (&u)[4]) {
  const Q6Block q = unpack_q6(b);  // natural order, q + 32
  for (int c = 0; c < 4; ++c) u[c] = q.q[c];
}

// The panel block by block: the 16 rows' quants of block i unpacked in registers, then each
// 64-weight chunk's 16 x 16 matrix of 4-byte groups transposed into the groups' vectors.
template <class Block>
void pack_panel_k(int64_t nb, const std::byte *w, size_t w_stride, int n_rows, PanelBlockK *panel) {
  using K = PanelK<Block>;
  UnpackedK u{};  // scales only: the quants go through natural_quants
  alignas(64) __m512i rows[kPanelRows][4];
  for (int64_t i = 0; i < nb; ++i) {
    PanelBlockK &p = panel[i];
    for (int r = 0; r < kPanelRows; ++r) {
      if (r < n_rows) {
        const Block &b = reinterpret_cast<const Block *>(w + static_cast<size_t>(r) * w_stride)[i];
        natural_quants(b, rows[r]);
        unpack_scales(b, u);
      } else {  // a row past the panel: zero quants, scales and block scales
        for (__m512i &c : rows[r]) c = _mm512_setzero_si512();
        u = UnpackedK{};
      }
      for (int j = 0; j < QK_K / K::kSubWeights; ++j) p.scale[j][r] = u.scale[j * K::kSubWeights / 16];
      for (int pair = 0; pair < 8; ++pair)
        for (int h = 0; h < 2; ++h) {
          p.offset_pairs[pair][2 * r + h] = static_cast<int16_t>(K::kOffset * u.scale[2 * pair + h]);
          p.min_pairs[pair][2 * r + h] = u.min[2 * pair + h];
        }
      p.d[r] = u.d;
      p.dmin[r] = u.dmin;
    }
    for (int c = 0; c < 4; ++c) {
      __m512i groups[kPanelRows];
      for (int r = 0; r < kPanelRows; ++r) groups[r] = rows[r][c];
      transpose16_epi32(groups);
      for (int g = 0; g < 16; ++g) _mm512_store_si512(p.q[16 * c + g], groups[g]);
    }
  }
}

// A tile of T tokens against the packed K panel. Per block, lane r: isum = sum_j scale_j *
// dot(u, a)_j - sum_j16 kOffset * scale_j16 * bsum_j16, isum_min = sum_j16 min_j16 * bsum_j16,
// then k_block_sum's float operations and the add, in block order.
template <class Block, int T>
void panel_tokens_k(int64_t nb, const PanelBlockK *panel, const PanelTokenBlockK *tile, float (*out)[kPanelRows]) {
  using K = PanelK<Block>;
  constexpr int kGroups = K::kSubWeights / 4;  // dpbusd per sub-block
  __m512 sum[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) sum[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const PanelBlockK &p = panel[i];
    const PanelTokenBlockK &a = tile[i];
    __m512i isum[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
    for (int j = 0; j < QK_K / K::kSubWeights; ++j) {
      __m512i q[kGroups];
#pragma GCC unroll 8
      for (int g = 0; g < kGroups; ++g) q[g] = _mm512_load_si512(p.q[kGroups * j + g]);
      const __m512i scale = _mm512_load_si512(p.scale[j]);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        __m512i dot = _mm512_setzero_si512();  // |dot| <= 32 * 63 * 127: no overflow
#pragma GCC unroll 8
        for (int g = 0; g < kGroups; ++g) {
          int32_t four;
          std::memcpy(&four, a.qs[t] + K::kSubWeights * j + 4 * g, 4);
          dot = _mm512_dpbusd_epi32(dot, q[g], _mm512_set1_epi32(four));
        }
        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot, scale));
      }
    }
    const __m512 wd = _mm512_load_ps(p.d), wdmin = _mm512_load_ps(p.dmin);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      __m512i correction = _mm512_setzero_si512(), isum_min = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int pair = 0; pair < 8; ++pair) {
        int32_t bsums;
        std::memcpy(&bsums, &a.bsums[t][2 * pair], 4);
        const __m512i b = _mm512_set1_epi32(bsums);
        if constexpr (K::kOffset != 0)
          correction = _mm512_dpwssd_epi32(correction, _mm512_load_si512(p.offset_pairs[pair]), b);
        if constexpr (kHasMins<Block>) isum_min = _mm512_dpwssd_epi32(isum_min, _mm512_load_si512(p.min_pairs[pair]), b);
      }
      const __m512i exact = _mm512_sub_epi32(isum[t], correction);
      const __m512 ad = _mm512_set1_ps(a.d[t]);
      const __m512 d = _mm512_mul_ps(ad, wd), dmin = _mm512_mul_ps(ad, wdmin);
      const __m512 term =
          _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(exact)), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(isum_min)));
      sum[t] = _mm512_add_ps(sum[t], term);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out[t], sum[t]);
}

// The formats' panel traits: block, its packed form, activation tile, and the tile kernel.
template <class Block>
struct PanelFormat {  // Q4_0, Q8_0, MXFP4: 32-weight blocks, Q8_0 activations
  using Packed = PanelBlock;
  using Tokens = PanelTokenBlock;
  static constexpr int kWeights = 32;
  static void pack(int64_t nb, const std::byte *w, size_t w_stride, int n_rows, Packed *panel) {
    pack_panel<Block>(nb, w, w_stride, n_rows, panel);
  }
  template <int T>
  static void tokens(int64_t nb, const Packed *panel, const Tokens *tile, float (*out)[kPanelRows]) {
    panel_tokens<Block, T>(nb, panel, tile, out);
  }
};
template <class Block>
struct PanelFormatK {  // Q2_K..Q6_K: 256-weight blocks, Q8_K activations
  using Packed = PanelBlockK;
  using Tokens = PanelTokenBlockK;
  static constexpr int kWeights = QK_K;
  static void pack(int64_t nb, const std::byte *w, size_t w_stride, int n_rows, Packed *panel) {
    pack_panel_k<Block>(nb, w, w_stride, n_rows, panel);
  }
  template <int T>
  static void tokens(int64_t nb, const Packed *panel, const Tokens *tile, float (*out)[kPanelRows]) {
    panel_tokens_k<Block, T>(nb, panel, tile, out);
  }
};

template <class Format, int... T>
void panel_token_tail(int count, int64_t nb, const typename Format::Packed *panel, const typename Format::Tokens *tile,
                      float (*out)[kPanelRows], std::integer_sequence<int, T...>) {
  ((count == T + 1 ? Format::template tokens<T + 1>(nb, panel, tile, out) : void()), ...);
}

template <class Format>
void panel_dot_avx512(int64_t n, const std::byte *w, size_t w_stride, int n_rows, const void *tokens,
                      int64_t n_tokens, float *y, size_t y_stride) {
  const int64_t nb = n / Format::kWeights;
  thread_local std::vector<typename Format::Packed> panel;
  if (panel.size() < static_cast<size_t>(nb)) panel.resize(static_cast<size_t>(nb));
  Format::pack(nb, w, w_stride, n_rows, panel.data());
  const auto *tiles = static_cast<const typename Format::Tokens *>(tokens);
  float out[kPanelTokens][kPanelRows];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kPanelTokens) {
    const int count = static_cast<int>(std::min<int64_t>(kPanelTokens, n_tokens - t0));
    const auto *tile = tiles + t0 / kPanelTokens * nb;
    if (count == kPanelTokens)
      Format::template tokens<kPanelTokens>(nb, panel.data(), tile, out);
    else
      panel_token_tail<Format>(count, nb, panel.data(), tile, out, std::make_integer_sequence<int, kPanelTokens - 1>{});
    for (int t = 0; t < count; ++t)
      std::memcpy(y + static_cast<size_t>(t0 + t) * y_stride, out[t], static_cast<size_t>(n_rows) * sizeof(float));
  }
}

inline PanelDot panel_dot_x86(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return &panel_dot_avx512<PanelFormat<block_q4_0>>;
    case GgmlType::Q8_0: return &panel_dot_avx512<PanelFormat<block_q8_0>>;
    case GgmlType::MXFP4: return &panel_dot_avx512<PanelFormat<block_mxfp4>>;
    case GgmlType::Q2_K: return &panel_dot_avx512<PanelFormatK<block_q2_K>>;
    case GgmlType::Q3_K: return &panel_dot_avx512<PanelFormatK<block_q3_K>>;
    case GgmlType::Q4_K: return &panel_dot_avx512<PanelFormatK<block_q4_K>>;
    case GgmlType::Q5_K: return &panel_dot_avx512<PanelFormatK<block_q5_K>>;
    case GgmlType::Q6_K: return &panel_dot_avx512<PanelFormatK<block_q6_K>>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace vramfit::cpu
#endif  // __AVX512BW__
