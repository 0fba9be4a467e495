// Random bytes as blocks: dequantization never crashes or reads out of bounds, and every weight
// stays within the range its block's scales allow (run under ASan/UBSan: label `sanitize`).
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/quant.hpp"

using namespace vramfit;
using namespace vramfit::quant;

namespace {

// The largest |weight| a block can encode, from its scales; NaN/Inf when a scale is not finite.
double max_magnitude(GgmlType type, const std::byte *block) {
  auto h = [](f16_bits bits) { return std::fabs(double(f16_to_f32(bits))); };
  switch (type) {
    case GgmlType::Q4_0: return 8 * h(reinterpret_cast<const block_q4_0 *>(block)->d);
    case GgmlType::Q8_0: return 128 * h(reinterpret_cast<const block_q8_0 *>(block)->d);
    case GgmlType::Q2_K: {
      const auto *b = reinterpret_cast<const block_q2_K *>(block);
      return 15 * 3 * h(b->d) + 15 * h(b->dmin);
    }
    case GgmlType::Q3_K: return 32 * 4 * h(reinterpret_cast<const block_q3_K *>(block)->d);
    case GgmlType::Q4_K: {
      const auto *b = reinterpret_cast<const block_q4_K *>(block);
      return 63 * 15 * h(b->d) + 63 * h(b->dmin);
    }
    case GgmlType::Q5_K: {
      const auto *b = reinterpret_cast<const block_q5_K *>(block);
      return 63 * 31 * h(b->d) + 63 * h(b->dmin);
    }
    case GgmlType::Q6_K: return 128 * 32 * h(reinterpret_cast<const block_q6_K *>(block)->d);
    case GgmlType::Q8_K: return 128 * std::fabs(double(reinterpret_cast<const block_q8_K *>(block)->d));
    case GgmlType::MXFP4: return 12 * std::ldexp(1.0, reinterpret_cast<const block_mxfp4 *>(block)->e - 128);
    default: return NAN;
  }
}

}  // namespace

TEST_CASE("random bytes as quantized blocks dequantize within their scales' range") {
  const GgmlType types[] = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                            GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::MXFP4};
  std::mt19937 rng(7);
  for (GgmlType type : types) {
    CAPTURE(type_name(type));
    const auto traits = *type_traits(static_cast<uint32_t>(type));
    int n_checked = 0;
    double worst = 0;     // largest |weight| / bound seen
    int n_nonfinite = 0;  // weights that are NaN/Inf although the scales are finite
    for (int iter = 0; iter < 2000; ++iter) {
      // Exact-size heap buffers, so ASan sees any read past the block.
      std::vector<std::byte> block(traits.type_size);
      for (std::byte &b : block) b = static_cast<std::byte>(rng());
      std::vector<float> out(traits.block_size);
      dequantize_row_ref(type, block.data(), out.data(), traits.block_size);
      const double bound = max_magnitude(type, block.data());
      // NaN/Inf scales, or (Q8_K's f32 scale) products past FLT_MAX: NaN/Inf is the right answer.
      if (!(bound <= FLT_MAX)) continue;
      ++n_checked;
      for (float y : out) {
        if (!std::isfinite(y)) ++n_nonfinite;
        else worst = std::max(worst, bound > 0 ? std::fabs(double(y)) / bound : std::fabs(double(y)));
      }
    }
    CHECK(n_nonfinite == 0);
    CHECK(worst <= 1 + 1e-6);
    CHECK(n_checked > 1500);   // most random scales are finite
  }
}

TEST_CASE("random bit patterns (NaN, Inf, huge) as quantizer input never crash") {
  const GgmlType types[] = {GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K,
                            GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K,
                            GgmlType::MXFP4};
  std::mt19937 rng(8);
  std::vector<float> x(256);
  for (GgmlType type : types) {
    CAPTURE(type_name(type));
    for (int iter = 0; iter < 50; ++iter) {
      for (float &v : x) {
        const uint32_t bits = rng();
        std::memcpy(&v, &bits, sizeof v);
      }
      std::vector<std::byte> q(row_bytes(type, 256));
      quantize_row_ref(type, x.data(), q.data(), 256);
      std::vector<float> y(256);
      dequantize_row_ref(type, q.data(), y.data(), 256);
    }
  }
  CHECK(true);  // reaching here without a sanitizer report is the check
}
