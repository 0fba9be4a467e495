// Prompt processing for the 32-weight formats (Q4_0, Q8_0, MXFP4) with AVX-512 VNNI: a panel of
// kPanelRows weight rows against every token of a batch.
//
// The panel is packed once per call into a thread-local buffer, VNNI's layout: for each block,
// 8 vectors whose 32-bit lane r holds 4 consecutive quants of row r as unsigned bytes (u = q +
// offset, see kQuantOffset). One dpbusd with 4 activation bytes broadcast then adds 4 products
// to each of the 16 rows, so a block costs 8 dpbusd per token and no reduction at all: lane r
// is row r. The packed weights stay in registers for kPanelTokens tokens.
//
// Exact integer sums: sum(q * y) = sum(u * y) - offset * sum(y), with sum(y) per token and block
// computed once per matmul (act_sums). Each lane then does vec_dot_q8_0_avx2's float operations in
// block order (d = weight scale * activation scale, then d * isum, then the add), so y[t][r] is
// vec_dot of row r and token t bit for bit.
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

// Tokens whose accumulators stay in registers while a block's packed weights are reused.
constexpr int kPanelTokens = 8;

// The 32 quants of a block as unsigned bytes in weight order (u = q + kQuantOffset<Block>).
inline __m256i panel_quants(const block_q8_0 &b) { return _mm256_xor_si256(load256(b.qs), _mm256_set1_epi8(-128)); }
inline __m256i panel_quants(const block_q4_0 &b) { return unsigned_quants(b); }
inline __m256i panel_quants(const block_mxfp4 &b) { return unsigned_quants(b); }
template <class Block>
constexpr int32_t kPanelOffset = std::is_same_v<Block, block_q8_0> ? 128 : kQuantOffset<Block>;

template <class Block>
void pack_panel(int64_t nb, const std::byte *w, size_t w_stride, int n_rows, PanelBlock *panel) {
  alignas(32) uint32_t groups[8];
  for (int64_t i = 0; i < nb; ++i) {
    PanelBlock &p = panel[i];
    for (int r = 0; r < kPanelRows; ++r) {
      if (r < n_rows) {
        const Block &b = reinterpret_cast<const Block *>(w + static_cast<size_t>(r) * w_stride)[i];
        _mm256_store_si256(reinterpret_cast<__m256i *>(groups), panel_quants(b));
        p.d[r] = block_scale(b);
      } else {
        std::memset(groups, 0, sizeof groups);
        p.d[r] = 0.f;
      }
      for (int g = 0; g < 8; ++g) std::memcpy(&p.q[g][4 * r], &groups[g], 4);
    }
  }
}

// kPanelTokens (or fewer, T) tokens against the packed panel: out[t][r] for r < kPanelRows.
template <class Block, int T>
void panel_tokens(int64_t nb, const PanelBlock *panel, const std::byte *act, size_t act_stride,
                  const int32_t *act_sums, float (*out)[kPanelRows]) {
  const block_q8_0 *a[T];
  for (int t = 0; t < T; ++t) a[t] = reinterpret_cast<const block_q8_0 *>(act + static_cast<size_t>(t) * act_stride);
  __m512 sum[T];
  for (int t = 0; t < T; ++t) sum[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const PanelBlock &p = panel[i];
    __m512i q[8];
    for (int g = 0; g < 8; ++g) q[g] = _mm512_load_si512(p.q[g]);
    const __m512 wd = _mm512_load_ps(p.d);
    for (int t = 0; t < T; ++t) {
      const int8_t *y = a[t][i].qs;
      __m512i isum = _mm512_setzero_si512();
      for (int g = 0; g < 8; ++g) {
        int32_t four;
        std::memcpy(&four, y + 4 * g, 4);
        isum = _mm512_dpbusd_epi32(isum, q[g], _mm512_set1_epi32(four));
      }
      isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(kPanelOffset<Block> * act_sums[static_cast<size_t>(t) * nb + i]));
      const __m512 d = _mm512_mul_ps(wd, _mm512_set1_ps(half_to_float(a[t][i].d)));
      sum[t] = _mm512_add_ps(sum[t], _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum)));
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out[t], sum[t]);
}

template <class Block, int... T>
void panel_token_tail(int tail, int64_t nb, const PanelBlock *panel, const std::byte *act, size_t act_stride,
                      const int32_t *act_sums, float (*out)[kPanelRows], std::integer_sequence<int, T...>) {
  ((tail == T + 1 ? panel_tokens<Block, T + 1>(nb, panel, act, act_stride, act_sums, out) : void()), ...);
}

template <class Block>
void panel_dot_q8_0_avx512(int64_t n, const std::byte *w, size_t w_stride, int n_rows, const std::byte *act,
                           size_t act_stride, const int32_t *act_sums, int64_t n_tokens, float *y, size_t y_stride) {
  const int64_t nb = n / 32;
  thread_local std::vector<PanelBlock> panel;
  if (panel.size() < static_cast<size_t>(nb)) panel.resize(static_cast<size_t>(nb));
  pack_panel<Block>(nb, w, w_stride, n_rows, panel.data());
  float out[kPanelTokens][kPanelRows];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kPanelTokens) {
    const int tokens = static_cast<int>(std::min<int64_t>(kPanelTokens, n_tokens - t0));
    const std::byte *act_t = act + static_cast<size_t>(t0) * act_stride;
    const int32_t *sums_t = act_sums + static_cast<size_t>(t0) * static_cast<size_t>(nb);
    if (tokens == kPanelTokens)
      panel_tokens<Block, kPanelTokens>(nb, panel.data(), act_t, act_stride, sums_t, out);
    else
      panel_token_tail<Block>(tokens, nb, panel.data(), act_t, act_stride, sums_t, out,
                              std::make_integer_sequence<int, kPanelTokens - 1>{});
    for (int t = 0; t < tokens; ++t)
      std::memcpy(y + static_cast<size_t>(t0 + t) * y_stride, out[t], static_cast<size_t>(n_rows) * sizeof(float));
  }
}

inline PanelDot panel_dot_x86(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return &panel_dot_q8_0_avx512<block_q4_0>;
    case GgmlType::Q8_0: return &panel_dot_q8_0_avx512<block_q8_0>;
    case GgmlType::MXFP4: return &panel_dot_q8_0_avx512<block_mxfp4>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace vramfit::cpu
#endif  // __AVX512BW__
