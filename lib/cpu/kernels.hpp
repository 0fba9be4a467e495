// Runtime dispatch of the CPU kernels over instruction sets.
//
// Each instruction set has one translation unit (kernels_<isa>.cpp) compiled with its -m flags;
// each fills a Kernels table. The best table the CPU supports is chosen once via
// xsimd::dispatch; tests and benchmarks may force another (set_isa_override).
//
// Why every ISA gives bit-identical results: integer block sums are exact, and the float work
// is done in one fixed order everywhere — K-quants combine one exact integer sum per 256-weight
// super-block, Q4_0/Q8_0 one per 32-weight block, each with the same float operations whether
// in scalar code or in one SIMD lane per block or token, and add them up in block order; float
// dots accumulate element k in lane k % 16 with separate multiply and add (no FMA), then reduce
// the 16 lanes in a fixed tree. All cpu sources are compiled with -ffp-contract=off so no
// compiler fuses them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "quant/blocks.hpp"
#include "vramfit/types.hpp"

namespace vramfit::cpu {

// avx512: F, CD, DQ, BW, VL and VNNI (Ice Lake, Zen 4 and later); older AVX-512 CPUs run avx2.
enum class Isa { scalar, sse4_1, avx2, avx512 };

// Tokens per call of a TileDot.
constexpr int kTileTokens = 8;
// Dots of one weight row with kTileTokens activation rows (row t at act + t * act_stride), which
// unpacks each weight block once for all of them: out[t] is bit for bit vec_dot(w_row, row t),
// as every lane combines its block sums in the same order with the same float operations.
using TileDot = void (*)(int64_t n, const void *w_row, const std::byte *act, size_t act_stride, float *out);

// Weight rows per call of a RowsDot.
constexpr int kRowTile = 8;
// Dots of kRowTile weight rows (row r at w + r * w_stride) with one activation row (generation):
// out[r] is bit for bit vec_dot(row r, act), as lane r adds row r's block terms in block order
// with vec_dot's float operations. Reading 8 rows side by side shares the activation loads and
// replaces the scalar per-block sum with one vector add.
using RowsDot = void (*)(int64_t n, const std::byte *w, size_t w_stride, const void *act, float *out);

// Weight rows and tokens per step of a PanelDot.
constexpr int kPanelRows = 16;
constexpr int kPanelTokens = 8;
// Q8_0 activations of kPanelTokens tokens, block i of a tile (see pack_panel_tokens): the tokens'
// 32 quants side by side, their scales as floats and the sums of their quants.
struct alignas(64) PanelTokenBlock {
  int8_t qs[kPanelTokens][32];
  float d[kPanelTokens];
  int32_t sum[kPanelTokens];
};
static_assert(sizeof(PanelTokenBlock) == 320);
// The same for Q8_K activations (the K-quants): quants, the sums of each 16, and the scales.
struct alignas(64) PanelTokenBlockK {
  int8_t qs[kPanelTokens][256];
  int16_t bsums[kPanelTokens][16];
  float d[kPanelTokens];
};
static_assert(sizeof(PanelTokenBlockK) == 2368);
// Dots of n_rows <= kPanelRows weight rows (row r at w + r * w_stride) with n_tokens tokens packed
// in tiles of kPanelTokens (PanelTokenBlock for Q8_0 activations, PanelTokenBlockK for Q8_K; tile
// k's block i at index k * blocks + i), for prompts: y[t * y_stride + r] is bit for bit
// vec_dot(row r, token t). It packs the rows once and reuses them for every token
// (kernels_x86_panel.hpp).
using PanelDot = void (*)(int64_t n, const std::byte *w, size_t w_stride, int n_rows, const void *tokens,
                          int64_t n_tokens, float *y, size_t y_stride);

std::string_view isa_name(Isa isa) noexcept;

struct Kernels {
  Isa isa;
  // n_rows rows of n values, src rows src_stride bytes apart, dst rows n floats apart.
  void (*dequantize_rows)(GgmlType type, const void *src, size_t src_stride, int64_t n_rows, float *dst, int64_t n);
  void (*quantize_row_q8_K)(const float *x, quant::block_q8_K *y, int64_t n);
  void (*quantize_row_q8_0)(const float *x, quant::block_q8_0 *y, int64_t n);
  // Every table covers every type vec_dot supports (SIMD tables reuse the generic code where
  // they have no specialised kernel).
  float (*vec_dot)(GgmlType wtype, int64_t n, const void *w_row, const void *act);
  // The tiled kernel for wtype, or null where this table has none (matmul then calls vec_dot
  // once per token).
  TileDot (*tile_dot)(GgmlType wtype);
  // The row-tiled kernel for wtype, or null (matmul then calls vec_dot once per row).
  RowsDot (*rows_dot)(GgmlType wtype);
  // The panel kernel for wtype, or null (matmul then uses tile_dot/rows_dot).
  PanelDot (*panel_dot)(GgmlType wtype);
};

// The table in use: the override when set, else the best this CPU supports.
const Kernels &active_kernels() noexcept;
// The instruction sets this CPU can run, scalar first.
std::vector<Isa> supported_isas();
const Kernels &kernels_for(Isa isa);  // Error(unsupported) when this CPU lacks it
// Forces an instruction set (tests, benchmarks); nullopt restores the automatic choice. Not
// safe while kernels run on other threads.
void set_isa_override(std::optional<Isa> isa);

// Per-ISA tables (kernels_<isa>.cpp).
const Kernels &scalar_kernels() noexcept;

}  // namespace vramfit::cpu
