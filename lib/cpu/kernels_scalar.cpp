// The portable kernel table: the reference every SIMD table must reproduce bit for bit.
#include "cpu/kernels.hpp"
#include "cpu/kernels_generic.hpp"
#include "quant/quant.hpp"

namespace vramfit::cpu {
namespace {

template <class Block>
float vec_dot_k_scalar(int64_t n, const void *w, const void *a) {
  return vec_dot_k_generic<Block>(n, w, a, &dot_unpacked_scalar);
}
template <class Block>
float vec_dot_32_scalar(int64_t n, const void *w, const void *a) {
  return vec_dot_q8_0_generic<Block>(n, w, a, &dot32_scalar);
}

float vec_dot_scalar(GgmlType type, int64_t n, const void *w, const void *a) {
  switch (type) {
    case GgmlType::Q2_K: return vec_dot_k_scalar<block_q2_K>(n, w, a);
    case GgmlType::Q3_K: return vec_dot_k_scalar<block_q3_K>(n, w, a);
    case GgmlType::Q4_K: return vec_dot_k_scalar<block_q4_K>(n, w, a);
    case GgmlType::Q5_K: return vec_dot_k_scalar<block_q5_K>(n, w, a);
    case GgmlType::Q6_K: return vec_dot_k_scalar<block_q6_K>(n, w, a);
    case GgmlType::Q4_0: return vec_dot_32_scalar<block_q4_0>(n, w, a);
    case GgmlType::Q8_0: return vec_dot_32_scalar<block_q8_0>(n, w, a);
    case GgmlType::MXFP4: return vec_dot_32_scalar<block_mxfp4>(n, w, a);
    case GgmlType::F32:
      return dot_lanes_scalar(n, static_cast<const float *>(w), static_cast<const float *>(a), &f32_value, &f32_value);
    case GgmlType::F16:
      return dot_lanes_scalar(n, static_cast<const uint16_t *>(w), static_cast<const uint16_t *>(a), &f16_value,
                              &f16_value);
    case GgmlType::BF16:
      return dot_lanes_scalar(n, static_cast<const uint16_t *>(w), static_cast<const uint16_t *>(a), &bf16_value,
                              &bf16_value);
    default: return 0.f;  // unreachable: cpu::vec_dot validates the type first
  }
}

void quantize_q8_K_scalar(const float *x, block_q8_K *y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) quantize_q8_K_block(x + i * QK_K, y[i]);
}
void quantize_q8_0_scalar(const float *x, block_q8_0 *y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i) quantize_q8_0_block(x + i * 32, y[i]);
}

void dequantize_rows_scalar(GgmlType type, const void *src, size_t src_stride, int64_t n_rows, float *dst, int64_t n) {
  for (int64_t r = 0; r < n_rows; ++r)
    quant::dequantize_row_ref(type, static_cast<const std::byte *>(src) + static_cast<size_t>(r) * src_stride,
                              dst + r * n, n);
}

TileDot no_tile_dot(GgmlType) { return nullptr; }
RowsDot no_rows_dot(GgmlType) { return nullptr; }
PanelDot no_panel_dot(GgmlType) { return nullptr; }

}  // namespace

const Kernels &scalar_kernels() noexcept {
  static const Kernels table{Isa::scalar, &dequantize_rows_scalar, &quantize_q8_K_scalar, &quantize_q8_0_scalar,
                             &vec_dot_scalar, &no_tile_dot, &no_rows_dot, &no_panel_dot};
  return table;
}

}  // namespace vramfit::cpu
