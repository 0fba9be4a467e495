// The SIMD kernel table, written once over an xsimd architecture and compiled by each
// kernels_<isa>.cpp with that ISA's -m flags. Float work goes through xsimd::batch; the 8-bit
// multiply-adds xsimd 8.1 lacks (maddubs, dpbusd) are intrinsics behind `#if defined(__AVX2__)`
// (kernels_x86_fused.hpp, kernels_x86_tile.hpp, with 512-bit VNNI blocks in the AVX-512 unit;
// SSE4.1 uses the portable integer code).
#pragma once

#include <immintrin.h>

#include <cstring>
#include <xsimd/xsimd.hpp>

#include "cpu/kernels.hpp"
#include "cpu/kernels_generic.hpp"
#include "quant/quant.hpp"

namespace vramfit::cpu {
namespace {  // NOLINT: one copy per ISA translation unit (see kernels_generic.hpp)

// ---- loads that widen 8/16-bit data to a batch of floats (what xsimd 8.1 cannot express) ----
template <class Arch>
struct Widen;

#if defined(__AVX512BW__)
template <>
struct Widen<xsimd::avx512bw> {
  using batch = xsimd::batch<float, xsimd::avx512bw>;
  static batch i8(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))));
  }
  static batch f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
  }
  static batch bf16(const uint16_t *p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
};
#elif defined(__AVX2__)
template <>
struct Widen<xsimd::fma3<xsimd::avx2>> {
  using batch = xsimd::batch<float, xsimd::fma3<xsimd::avx2>>;
  static batch i8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p))));
  }
  static batch f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
  }
  static batch bf16(const uint16_t *p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
};
#elif defined(__SSE4_1__)
template <>
struct Widen<xsimd::sse4_1> {
  using batch = xsimd::batch<float, xsimd::sse4_1>;
  static batch i8(const int8_t *p) {
    int32_t four;
    std::memcpy(&four, p, 4);
    return _mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(four)));
  }
  static batch f16(const uint16_t *p) {  // no F16C guaranteed with SSE4.1
    alignas(16) float f[4] = {half_to_float(p[0]), half_to_float(p[1]), half_to_float(p[2]), half_to_float(p[3])};
    return batch::load_aligned(f);
  }
  static batch bf16(const uint16_t *p) {
    const __m128i wide = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p)));
    return _mm_castsi128_ps(_mm_slli_epi32(wide, 4 * 4));
  }
};
#endif

// ---- dequantization: unpack to int8, then y = (d*scale) * q - (dmin*min) per 16 weights ----

template <class Arch>
void affine16(const int8_t *q, float dl, float ml, float *y) {
  using batch = xsimd::batch<float, Arch>;
  const batch vd(dl), vm(ml);
  for (int j = 0; j < 16; j += static_cast<int>(batch::size)) (vd * Widen<Arch>::i8(q + j) - vm).store_unaligned(y + j);
}

template <class Arch, class Block>
void dequantize_k(const void *src, float *dst, int64_t n) {
  const auto *blocks = static_cast<const Block *>(src);
  UnpackedK u;
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    unpack(blocks[i], u);
    for (int g = 0; g < 16; ++g)
      affine16<Arch>(u.q + 16 * g, u.d * static_cast<float>(u.scale[g]), u.dmin * static_cast<float>(u.min[g]),
                     dst + 16 * g);
  }
}

template <class Arch, class Block>
void dequantize_32(const void *src, float *dst, int64_t n) {
  const auto *blocks = static_cast<const Block *>(src);
  alignas(32) int8_t q[32];
  for (int64_t i = 0; i < n / 32; ++i, dst += 32) {
    const float d = unpack(blocks[i], q);
    affine16<Arch>(q, d, 0.f, dst);
    affine16<Arch>(q + 16, d, 0.f, dst + 16);
  }
}

// Q8_0's quants are already int8: scale them straight from the block.
template <class Arch>
void dequantize_q8_0(const void *src, float *dst, int64_t n) {
  const auto *blocks = static_cast<const block_q8_0 *>(src);
  for (int64_t i = 0; i < n / 32; ++i, dst += 32) {
    const float d = half_to_float(blocks[i].d);
    affine16<Arch>(blocks[i].qs, d, 0.f, dst);
    affine16<Arch>(blocks[i].qs + 16, d, 0.f, dst + 16);
  }
}

// Load and ToFloat are lambdas (distinct types), so they inline; never pass function pointers.
template <class Arch, class Load, class ToFloat>
void convert_row(const uint16_t *src, float *dst, int64_t n, Load load, ToFloat scalar) {
  using batch = xsimd::batch<float, Arch>;
  int64_t k = 0;
  for (; k + static_cast<int64_t>(batch::size) <= n; k += batch::size) load(src + k).store_unaligned(dst + k);
  for (; k < n; ++k) dst[k] = scalar(src[k]);
}

// n_rows rows of n values (src rows src_stride bytes apart, dst rows n floats apart), the type
// chosen once for all of them: an attention head's slice of a cache row is only 64 values.
template <class Arch>
void dequantize_rows_simd(GgmlType type, const void *src, size_t src_stride, int64_t n_rows, float *dst, int64_t n) {
  const auto *rows = static_cast<const std::byte *>(src);
  auto each_row = [&](auto convert) {
    for (int64_t r = 0; r < n_rows; ++r) convert(rows + static_cast<size_t>(r) * src_stride, dst + r * n);
  };
  auto halves = [&](auto load, auto scalar) {
    each_row([&](const std::byte *row, float *out) {
      convert_row<Arch>(reinterpret_cast<const uint16_t *>(row), out, n, load, scalar);
    });
  };
  switch (type) {
    case GgmlType::F16:
      return halves([](const uint16_t *p) { return Widen<Arch>::f16(p); }, [](uint16_t h) { return f16_value(h); });
    case GgmlType::BF16:
      return halves([](const uint16_t *p) { return Widen<Arch>::bf16(p); }, [](uint16_t h) { return bf16_value(h); });
    case GgmlType::Q4_0: return each_row([&](const std::byte *row, float *out) { dequantize_32<Arch, block_q4_0>(row, out, n); });
    case GgmlType::Q8_0: return each_row([&](const std::byte *row, float *out) { dequantize_q8_0<Arch>(row, out, n); });
    case GgmlType::MXFP4: return each_row([&](const std::byte *row, float *out) { dequantize_32<Arch, block_mxfp4>(row, out, n); });
    case GgmlType::Q2_K: return each_row([&](const std::byte *row, float *out) { dequantize_k<Arch, block_q2_K>(row, out, n); });
    case GgmlType::Q3_K: return each_row([&](const std::byte *row, float *out) { dequantize_k<Arch, block_q3_K>(row, out, n); });
    case GgmlType::Q4_K: return each_row([&](const std::byte *row, float *out) { dequantize_k<Arch, block_q4_K>(row, out, n); });
    case GgmlType::Q5_K: return each_row([&](const std::byte *row, float *out) { dequantize_k<Arch, block_q5_K>(row, out, n); });
    case GgmlType::Q6_K: return each_row([&](const std::byte *row, float *out) { dequantize_k<Arch, block_q6_K>(row, out, n); });
    default:  // F32 (memcpy), Q8_K, errors
      return each_row([&](const std::byte *row, float *out) { quant::dequantize_row_ref(type, row, out, n); });
  }
}

// ---- float dots in the canonical 16-lane order (see kernels.hpp) ----

template <class Arch, class W, class A, class LoadW, class LoadA, class ToFloatW, class ToFloatA>
float dot_lanes(int64_t n, const W *w, const A *a, LoadW load_w, LoadA load_a, ToFloatW tw, ToFloatA ta) {
  using batch = xsimd::batch<float, Arch>;
  constexpr int width = static_cast<int>(batch::size);
  constexpr int regs = 16 / width;
  batch acc[regs];
  for (int r = 0; r < regs; ++r) acc[r] = batch(0.f);
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int r = 0; r < regs; ++r) {
      const batch p = load_w(w + k + r * width) * load_a(a + k + r * width);
      acc[r] = acc[r] + p;
    }
  alignas(64) float lanes[16];
  for (int r = 0; r < regs; ++r) acc[r].store_aligned(lanes + r * width);
  for (int l = 0; k < n; ++k, ++l) {
    const float p = tw(w[k]) * ta(a[k]);
    lanes[l] += p;
  }
  return reduce_lanes16(lanes);
}

// ---- exact integer block dots: fused AVX2 kernels, else the portable code ----

}  // namespace
}  // namespace vramfit::cpu

#include "cpu/kernels_x86_fused.hpp"
#include "cpu/kernels_x86_tile.hpp"
#include "cpu/kernels_x86_panel.hpp"

namespace vramfit::cpu {
namespace {  // NOLINT: see above

template <class Arch>
float vec_dot_simd(GgmlType type, int64_t n, const void *w, const void *a) {
  const auto load_f32 = [](const float *p) { return xsimd::batch<float, Arch>::load_unaligned(p); };
  const auto load_f16 = [](const uint16_t *p) { return Widen<Arch>::f16(p); };
  const auto load_bf16 = [](const uint16_t *p) { return Widen<Arch>::bf16(p); };
  const auto to_f32_f16 = [](uint16_t h) { return f16_value(h); };
  const auto to_f32_bf16 = [](uint16_t h) { return bf16_value(h); };
  switch (type) {
#if defined(__AVX2__)
    case GgmlType::Q2_K: return vec_dot_k_x86<block_q2_K>(n, w, a);
    case GgmlType::Q3_K: return vec_dot_k_x86<block_q3_K>(n, w, a);
    case GgmlType::Q4_K: return vec_dot_k_x86<block_q4_K>(n, w, a);
    case GgmlType::Q5_K: return vec_dot_k_x86<block_q5_K>(n, w, a);
    case GgmlType::Q6_K: return vec_dot_k_x86<block_q6_K>(n, w, a);
    case GgmlType::Q4_0: return vec_dot_q8_0_avx2<block_q4_0>(n, w, a);
    case GgmlType::Q8_0: return vec_dot_q8_0_avx2<block_q8_0>(n, w, a);
    case GgmlType::MXFP4: return vec_dot_q8_0_avx2<block_mxfp4>(n, w, a);
#else  // SSE4.1: the portable integer code, which the compiler vectorizes
    case GgmlType::Q2_K: return vec_dot_k_generic<block_q2_K>(n, w, a, &dot_unpacked_scalar);
    case GgmlType::Q3_K: return vec_dot_k_generic<block_q3_K>(n, w, a, &dot_unpacked_scalar);
    case GgmlType::Q4_K: return vec_dot_k_generic<block_q4_K>(n, w, a, &dot_unpacked_scalar);
    case GgmlType::Q5_K: return vec_dot_k_generic<block_q5_K>(n, w, a, &dot_unpacked_scalar);
    case GgmlType::Q6_K: return vec_dot_k_generic<block_q6_K>(n, w, a, &dot_unpacked_scalar);
    case GgmlType::Q4_0: return vec_dot_q8_0_generic<block_q4_0>(n, w, a, &dot32_scalar);
    case GgmlType::Q8_0: return vec_dot_q8_0_generic<block_q8_0>(n, w, a, &dot32_scalar);
    case GgmlType::MXFP4: return vec_dot_q8_0_generic<block_mxfp4>(n, w, a, &dot32_scalar);
#endif
    case GgmlType::F32:
      return dot_lanes<Arch>(n, static_cast<const float *>(w), static_cast<const float *>(a), load_f32,
                             load_f32, [](float v) { return v; }, [](float v) { return v; });
    case GgmlType::F16:
      return dot_lanes<Arch>(n, static_cast<const uint16_t *>(w), static_cast<const uint16_t *>(a), load_f16,
                             load_f16, to_f32_f16, to_f32_f16);
    case GgmlType::BF16:
      return dot_lanes<Arch>(n, static_cast<const uint16_t *>(w), static_cast<const uint16_t *>(a), load_bf16,
                             load_bf16, to_f32_bf16, to_f32_bf16);
    default: return 0.f;  // unreachable: cpu::vec_dot validates the type first
  }
}

inline void quantize_rows_q8_K(const float *x, block_q8_K *y, int64_t n) {
#if defined(__AVX2__)
  for (int64_t i = 0; i < n / QK_K; ++i) quantize_q8_K_block_avx2(x + i * QK_K, y[i]);
#else
  for (int64_t i = 0; i < n / QK_K; ++i) quantize_q8_K_block(x + i * QK_K, y[i]);
#endif
}
inline void quantize_rows_q8_0(const float *x, block_q8_0 *y, int64_t n) {
#if defined(__AVX2__)
  for (int64_t i = 0; i < n / 32; ++i) quantize_q8_0_block_avx2(x + i * 32, y[i]);
#else
  for (int64_t i = 0; i < n / 32; ++i) quantize_q8_0_block(x + i * 32, y[i]);
#endif
}

inline TileDot tile_dot_simd(GgmlType type) {
#if defined(__AVX2__)
  return tile_dot_x86(type);
#else
  (void)type;
  return nullptr;
#endif
}

inline RowsDot rows_dot_simd(GgmlType type) {
#if defined(__AVX2__)
  return rows_dot_x86(type);
#else
  (void)type;
  return nullptr;
#endif
}

inline PanelDot panel_dot_simd(GgmlType type) {
#if defined(__AVX512BW__)
  return panel_dot_x86(type);
#else
  (void)type;
  return nullptr;
#endif
}

template <class Arch>
const Kernels &simd_kernels(Isa isa) {
  static const Kernels table{isa, &dequantize_rows_simd<Arch>, &quantize_rows_q8_K, &quantize_rows_q8_0,
                             &vec_dot_simd<Arch>, &tile_dot_simd, &rows_dot_simd, &panel_dot_simd};
  return table;
}

}  // namespace
}  // namespace vramfit::cpu
