#include "cpu/ops.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "common/error.hpp"
#include "cpu/kernels.hpp"
#include "cpu/vec_dot.hpp"
#include "quant/fp16.hpp"

namespace vramfit::cpu {
namespace {

void check_row(GgmlType type, int64_t n, const char *what) {
  if (!is_supported_for_compute(type))
    detail::fail(ErrorCode::unsupported, "{}: tensor type {} has no CPU kernel", what, type_name(type));
  const int64_t block = type_traits(static_cast<uint32_t>(type))->block_size;
  if (n < 0 || n % block != 0)
    detail::fail(ErrorCode::invalid_argument, "{}: row of {} elements is not a multiple of the {} block size {}",
                 what, n, type_name(type), block);
}

// A per-thread scratch buffer that only grows, so hot loops stop allocating once warm.
template <class T>
T *scratch(std::vector<T> &buffer, size_t count) {
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// Q8_K weights have no integer kernel in llama.cpp either: dequantize, then an f32 dot.
float dot_q8_K_weights(const Kernels &k, int64_t n, const void *w_row, const void *act) {
  thread_local std::vector<float> row;
  float *w = scratch(row, static_cast<size_t>(n));
  k.dequantize_row(GgmlType::Q8_K, w_row, w, n);
  return k.vec_dot(GgmlType::F32, n, w, act);
}

float dot_row(const Kernels &k, GgmlType type, int64_t n, const void *w_row, const void *act) {
  if (type == GgmlType::Q8_K) return dot_q8_K_weights(k, n, w_row, act);
  return k.vec_dot(type, n, w_row, act);
}

void quantize_with(const Kernels &k, GgmlType wtype, const float *x, void *act, int64_t n) {
  switch (vec_dot_type(wtype)) {
    case GgmlType::Q8_K: return k.quantize_row_q8_K(x, static_cast<quant::block_q8_K *>(act), n);
    case GgmlType::Q8_0: return k.quantize_row_q8_0(x, static_cast<quant::block_q8_0 *>(act), n);
    case GgmlType::F16: {
      auto *h = static_cast<quant::f16_bits *>(act);
      for (int64_t i = 0; i < n; ++i) h[i] = quant::f32_to_f16(x[i]);
      return;
    }
    case GgmlType::BF16: {
      auto *h = static_cast<quant::bf16_bits *>(act);
      for (int64_t i = 0; i < n; ++i) h[i] = quant::f32_to_bf16(x[i]);
      return;
    }
    default: std::copy(x, x + n, static_cast<float *>(act)); return;
  }
}

}  // namespace

GgmlType vec_dot_type(GgmlType wtype) noexcept {
  switch (wtype) {
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return GgmlType::Q8_K;
    case GgmlType::Q4_0: case GgmlType::Q8_0: case GgmlType::MXFP4: return GgmlType::Q8_0;
    case GgmlType::F16: return GgmlType::F16;
    case GgmlType::BF16: return GgmlType::BF16;
    default: return GgmlType::F32;
  }
}

void quantize_row_q8_K(const float *x, quant::block_q8_K *y, int64_t n) {
  check_row(GgmlType::Q8_K, n, "quantize_row_q8_K");
  active_kernels().quantize_row_q8_K(x, y, n);
}

void quantize_row_q8_0(const float *x, quant::block_q8_0 *y, int64_t n) {
  check_row(GgmlType::Q8_0, n, "quantize_row_q8_0");
  active_kernels().quantize_row_q8_0(x, y, n);
}

void quantize_activations(GgmlType wtype, const float *x, void *act, int64_t n) {
  check_row(wtype, n, "quantize_activations");
  quantize_with(active_kernels(), wtype, x, act, n);
}

float vec_dot(GgmlType wtype, int64_t n, const void *w_row, const void *act) {
  check_row(wtype, n, "vec_dot");
  return dot_row(active_kernels(), wtype, n, w_row, act);
}

#define VRAMFIT_VEC_DOT(name, type)                                \
  float name(int64_t n, const void *w_row, const void *act) {      \
    check_row(type, n, #name);                                     \
    return active_kernels().vec_dot(type, n, w_row, act);          \
  }
VRAMFIT_VEC_DOT(vec_dot_q2_K_q8_K, GgmlType::Q2_K)
VRAMFIT_VEC_DOT(vec_dot_q3_K_q8_K, GgmlType::Q3_K)
VRAMFIT_VEC_DOT(vec_dot_q4_K_q8_K, GgmlType::Q4_K)
VRAMFIT_VEC_DOT(vec_dot_q5_K_q8_K, GgmlType::Q5_K)
VRAMFIT_VEC_DOT(vec_dot_q6_K_q8_K, GgmlType::Q6_K)
VRAMFIT_VEC_DOT(vec_dot_q4_0_q8_0, GgmlType::Q4_0)
VRAMFIT_VEC_DOT(vec_dot_q8_0_q8_0, GgmlType::Q8_0)
VRAMFIT_VEC_DOT(vec_dot_mxfp4_q8_0, GgmlType::MXFP4)
VRAMFIT_VEC_DOT(vec_dot_f16_f16, GgmlType::F16)
VRAMFIT_VEC_DOT(vec_dot_bf16_bf16, GgmlType::BF16)
VRAMFIT_VEC_DOT(vec_dot_f32_f32, GgmlType::F32)
#undef VRAMFIT_VEC_DOT

void dequantize_row(GgmlType type, const void *src, float *dst, int64_t n) {
  check_row(type, n, "dequantize_row");
  active_kernels().dequantize_row(type, src, dst, n);
}

namespace {

// Tokens from which a panel kernel beats the row-tiled one (its packing costs about one token).
constexpr int64_t kPanelMinTokens = 4;

// Token t's block i of Q8_0 / Q8_K activations in slot `slot` of a panel tile block.
void fill_panel_slot(PanelTokenBlock &p, int slot, const quant::block_q8_0 &a) {
  std::copy(std::begin(a.qs), std::end(a.qs), p.qs[slot]);
  p.d[slot] = quant::f16_to_f32(a.d);
  int32_t sum = 0;
  for (int8_t q : a.qs) sum += q;
  p.sum[slot] = sum;
}
void fill_panel_slot(PanelTokenBlockK &p, int slot, const quant::block_q8_K &a) {
  std::copy(std::begin(a.qs), std::end(a.qs), p.qs[slot]);
  std::copy(std::begin(a.bsums), std::end(a.bsums), p.bsums[slot]);
  p.d[slot] = a.d;
}

// The activation rows (ActBlock: Q8_0 or Q8_K) in a panel kernel's tiles of kPanelTokens tokens,
// the last tile padded with zero tokens, in a per-thread buffer.
template <class Tile, class ActBlock>
const Tile *pack_panel_tokens(ThreadPool &pool, const std::byte *act, size_t act_bytes, int64_t blocks,
                              int64_t n_tokens) {
  thread_local std::vector<Tile> buffer;
  const int64_t tiles = (n_tokens + kPanelTokens - 1) / kPanelTokens;
  buffer.assign(static_cast<size_t>(tiles * blocks), Tile{});
  Tile *packed = buffer.data();  // the workers fill this thread's buffer, not their own
  pool.parallel_for(n_tokens, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const auto *a = reinterpret_cast<const ActBlock *>(act + static_cast<size_t>(t) * act_bytes);
      for (int64_t i = 0; i < blocks; ++i)
        fill_panel_slot(packed[t / kPanelTokens * blocks + i], static_cast<int>(t % kPanelTokens), a[i]);
    }
  });
  return packed;
}

// Prompts through the table's panel kernel: the tokens packed once, then each thread's band of
// rows kPanelRows at a time.
void matmul_panels(ThreadPool &pool, PanelDot panel_dot, GgmlType type, const std::byte *weights, size_t w_bytes,
                   int64_t n_out, int64_t n_in, const std::byte *act, size_t act_bytes, int64_t n_tokens, float *y) {
  const void *tokens =
      vec_dot_type(type) == GgmlType::Q8_K
          ? static_cast<const void *>(pack_panel_tokens<PanelTokenBlockK, quant::block_q8_K>(
                pool, act, act_bytes, n_in / quant::QK_K, n_tokens))
          : pack_panel_tokens<PanelTokenBlock, quant::block_q8_0>(pool, act, act_bytes, n_in / 32, n_tokens);
  pool.parallel_for(n_out, [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r0 = r_begin; r0 < r_end; r0 += kPanelRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kPanelRows, r_end - r0));
      panel_dot(n_in, weights + r0 * w_bytes, w_bytes, rows, tokens, n_tokens, y + r0, static_cast<size_t>(n_out));
    }
  });
}

}  // namespace

void matmul(ThreadPool &pool, GgmlType type, const void *w, int64_t n_out, int64_t n_in, const float *x,
            int64_t n_tokens, float *y) {
  check_row(type, n_in, "matmul");
  if (n_out < 0 || n_tokens < 0)
    detail::fail(ErrorCode::invalid_argument, "matmul: negative shape ({} rows, {} tokens)", n_out, n_tokens);
  const Kernels &k = active_kernels();
  const size_t act_bytes = row_bytes(vec_dot_type(type), n_in);
  const size_t w_bytes = row_bytes(type, n_in);

  thread_local std::vector<std::byte> act_buffer;
  std::byte *act = scratch(act_buffer, act_bytes * static_cast<size_t>(n_tokens));
  pool.parallel_for(n_tokens, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize_with(k, type, x + t * n_in, act + t * act_bytes, n_in);
  });

  const auto *weights = static_cast<const std::byte *>(w);
  if (const PanelDot panel_dot = n_tokens >= kPanelMinTokens ? k.panel_dot(type) : nullptr)
    return matmul_panels(pool, panel_dot, type, weights, w_bytes, n_out, n_in, act, act_bytes, n_tokens, y);

  // Each thread takes a contiguous band of weight rows, so every weight byte is read once per
  // call; tiles of 16 rows x kTileTokens tokens keep both in cache. The tiled kernel (where the
  // table has one) unpacks each weight block once for kTileTokens tokens; leftover tokens go
  // through vec_dot, 8 rows at a time where the table has a row-tiled kernel: the same bits.
  constexpr int64_t kTileRows = 16;
  const TileDot tile_dot = n_tokens >= kTileTokens ? k.tile_dot(type) : nullptr;
  const int64_t n_tiled = tile_dot ? n_tokens / kTileTokens * kTileTokens : 0;
  const RowsDot rows_dot = k.rows_dot(type);
  pool.parallel_for(n_out, [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r0 = r_begin; r0 < r_end; r0 += kTileRows) {
      const int64_t r1 = std::min(r_end, r0 + kTileRows);
      for (int64_t t = 0; t < n_tiled; t += kTileTokens)
        for (int64_t r = r0; r < r1; ++r) {
          float out[kTileTokens];
          tile_dot(n_in, weights + r * w_bytes, act + t * act_bytes, act_bytes, out);
          for (int64_t j = 0; j < kTileTokens; ++j) y[(t + j) * n_out + r] = out[j];
        }
      for (int64_t t = n_tiled; t < n_tokens; ++t) {
        int64_t r = r0;
        if (rows_dot)
          for (; r + kRowTile <= r1; r += kRowTile)
            rows_dot(n_in, weights + r * w_bytes, w_bytes, act + t * act_bytes, y + t * n_out + r);
        for (; r < r1; ++r) y[t * n_out + r] = dot_row(k, type, n_in, weights + r * w_bytes, act + t * act_bytes);
      }
    }
  });
}

}  // namespace vramfit::cpu
