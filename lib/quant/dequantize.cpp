#include <cstring>

#include "common/error.hpp"
#include "quant/quant.hpp"

namespace vramfit::quant {
namespace {

// Applies dequantize_block to each of the n / block_size blocks of src.
template <class Block, int BlockSize>
void dequantize_blocks(const void *src, float *dst, int64_t n) {
  const auto *blocks = static_cast<const Block *>(src);
  for (int64_t i = 0; i < n / BlockSize; ++i) dequantize_block(blocks[i], dst + i * BlockSize);
}

}  // namespace

bool has_reference(GgmlType type) noexcept { return is_supported_for_compute(type); }

void check_row(GgmlType type, int64_t n, const char *what) {
  if (!has_reference(type))
    detail::fail(ErrorCode::unsupported, "{}: tensor type {} is not supported", what, type_name(type));
  const int64_t block = type_traits(static_cast<uint32_t>(type))->block_size;
  if (n < 0 || n % block != 0)
    detail::fail(ErrorCode::invalid_argument, "{}: {} elements is not a multiple of the {} block size {}",
                 what, n, type_name(type), block);
}

void dequantize_row_ref(GgmlType type, const void *src, float *dst, int64_t n) {
  check_row(type, n, "dequantize");
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case GgmlType::F16: {
      const auto *h = static_cast<const f16_bits *>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
      return;
    }
    case GgmlType::BF16: {
      const auto *h = static_cast<const bf16_bits *>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return;
    }
    case GgmlType::Q4_0: return dequantize_blocks<block_q4_0, QK4_0>(src, dst, n);
    case GgmlType::Q8_0: return dequantize_blocks<block_q8_0, QK8_0>(src, dst, n);
    case GgmlType::MXFP4: return dequantize_blocks<block_mxfp4, QK_MXFP4>(src, dst, n);
    case GgmlType::Q2_K: return dequantize_blocks<block_q2_K, QK_K>(src, dst, n);
    case GgmlType::Q3_K: return dequantize_blocks<block_q3_K, QK_K>(src, dst, n);
    case GgmlType::Q4_K: return dequantize_blocks<block_q4_K, QK_K>(src, dst, n);
    case GgmlType::Q5_K: return dequantize_blocks<block_q5_K, QK_K>(src, dst, n);
    case GgmlType::Q6_K: return dequantize_blocks<block_q6_K, QK_K>(src, dst, n);
    case GgmlType::Q8_K: return dequantize_blocks<block_q8_K, QK_K>(src, dst, n);
    default: break;
  }
  detail::fail(ErrorCode::internal, "dequantize: no reference for {}", type_name(type));
}

}  // namespace vramfit::quant
