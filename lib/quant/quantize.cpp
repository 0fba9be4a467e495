// Float -> block formats, following ggml's reference quantizers (quantize_row_*_ref) step for
// step, so a file we quantize has the quality (and, for the same input, the bytes) of
// llama.cpp's without an importance matrix.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.hpp"
#include "quant/quant.hpp"

namespace vramfit::quant {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: below this a group is all zero

// Round to nearest, ties to even: ggml's nearest_int (adding 1.5*2^23 leaves the integer in the mantissa).
// Out-of-range and NaN inputs (corrupt data) are clamped instead of being UB.
int nearest_int(float f) {
  if (!(std::fabs(f) <= 4194303.f)) return std::isnan(f) ? 0 : (f > 0 ? 4194303 : -4194303);
  const float shifted = f + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// The value of largest magnitude in x[0..n), sign kept: the first such (ggml's loops compare
// strictly), 0 when all are zero. Its fabs is ggml's "amax".
float signed_absmax(const float *x, int n) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

// (int)v clamped to [lo, hi]; NaN gives 0. A plain cast of NaN or of a huge value is UB, and
// corrupt input can produce either.
int truncate_to_int(float v, int lo, int hi) {
  if (!(v == v)) return std::clamp(0, lo, hi);
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

// ---- scale searches (ggml-quants.c) ----

// Asymmetric: x ~ scale * L - min, L in 0..nmax, minimizing the weighted |error| (use_mad) or
// squared error. Tries nstep+1 candidate scales around nmax/(max-min), refining each by weighted
// least squares. Returns the scale; *the_min receives min (>= 0, subtracted).
float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                       float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_mad = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_mad += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float mad = 0;
    for (int i = 0; i < n; ++i) {
      float diff = this_scale * Laux[i] + this_min - x[i];
      diff = use_mad ? std::fabs(diff) : diff * diff;
      mad += weights[i] * diff;
    }
    if (mad < best_mad) {
      std::copy(Laux, Laux + n, L);
      best_mad = mad;
      scale = this_scale;
      min = this_min;
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric, x ~ scale * (L - nmax), L in 0..2*nmax-1, weights x^2: starts from -nmax/max and
// moves single quants while that raises (sum w x l)^2 / (sum w l^2) (the least-squares fit).
float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (!(slx > 0)) continue;
      float sl2 = suml2 - w * L[i] * L[i];
      const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (new_l == L[i]) continue;
      slx += w * x[i] * new_l;
      sl2 += w * new_l * new_l;
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<int8_t>(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++n_changed;
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumlx / suml2;
}

// Symmetric with weights x^2 (ggml's make_qx_quants, rmse_type 1): tries 19 scales around
// -nmax/max and keeps the one with the best least-squares fit. L in 0..2*nmax-1 (offset nmax).
float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// ---- one block per function ----

void quantize_block(const float *x, block_q4_0 &y) {
  const float d = signed_absmax(x, QK4_0) / -8;
  const float id = d ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  // ggml truncates x*id + 8.5 toward zero (a round-half-up of x*id), capped at 15.
  auto q = [&](float v) { return truncate_to_int(v * id + 8.5f, 0, 15); };
  for (int j = 0; j < QK4_0 / 2; ++j) y.qs[j] = static_cast<uint8_t>(q(x[j]) | (q(x[j + QK4_0 / 2]) << 4));
}

void quantize_block(const float *x, block_q8_0 &y) {
  float amax = 0;
  for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  for (int j = 0; j < QK8_0; ++j) y.qs[j] = static_cast<int8_t>(truncate_to_int(std::round(x[j] * id), -127, 127));
}

// ggml's quantize_row_mxfp4_ref: the shared exponent makes the block's largest magnitude land
// in [4, 8) units of 2^(e-128) (E2M1's top binade, 6 of 12 doubled), then each weight takes the
// nearest code, the first of equals (so 0 beats -0).
int nearest_mxfp4_code(float x, float d) {
  int best = 0;
  float best_err = std::fabs(static_cast<float>(mxfp4_value(0)) * d - x);
  for (int code = 1; code < 16; ++code) {
    const float err = std::fabs(static_cast<float>(mxfp4_value(code)) * d - x);
    if (err < best_err) {
      best = code;
      best_err = err;
    }
  }
  return best;
}

void quantize_block(const float *x, block_mxfp4 &y) {
  float amax = 0;
  for (int j = 0; j < QK_MXFP4; ++j) amax = std::max(amax, std::fabs(x[j]));
  // ggml converts floor(log2 amax) - 2 + 127 to uint8 directly; the clamp only keeps subnormal
  // blocks (where that would be negative) defined.
  const float e = amax > 0 ? std::floor(std::log2(amax)) - 2 + 127 : 0;
  y.e = static_cast<uint8_t>(std::clamp(e, 0.0f, 255.0f));
  const float d = e8m0_to_f32_half(y.e);
  for (int j = 0; j < QK_MXFP4 / 2; ++j)
    y.qs[j] = static_cast<uint8_t>(nearest_mxfp4_code(x[j], d) | (nearest_mxfp4_code(x[j + QK_MXFP4 / 2], d) << 4));
}

// Packs 2-bit values L[0..256) the way Q2_K and Q3_K store them: byte l of each 32-byte group
// holds weights l, l+32, l+64, l+96 of a 128-weight half.
void pack_2bit(const uint8_t *L, uint8_t *qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

void quantize_block(const float *x, block_q2_K &y) {
  constexpr float q4scale = 15.f;
  uint8_t L[QK_K], Laux[16];
  float weights[16], mins[QK_K / 16], scales[QK_K / 16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < QK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  std::memset(y.scales, 0, sizeof y.scales);
  y.d = f32_to_f16(0.f);
  y.dmin = f32_to_f16(0.f);
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < QK_K / 16; ++j) y.scales[j] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * scales[j]), 0, 15));
    y.d = f32_to_f16(max_scale / q4scale);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < QK_K / 16; ++j) y.scales[j] |= static_cast<uint8_t>(std::clamp(nearest_int(iscale * mins[j]), 0, 15) << 4);
    y.dmin = f32_to_f16(max_min / q4scale);
  }
  // Re-quantize against the scales as stored (f16, 4 bits).
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = f16_to_f32(y.d) * (y.scales[j] & 0xF);
    if (!d) continue;
    const float dm = f16_to_f32(y.dmin) * (y.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) L[16 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
  }
  pack_2bit(L, y.qs);
}

void quantize_block(const float *x, block_q3_K &y) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int j = 0; j < QK_K / 16; ++j) scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
  const float max_scale = signed_absmax(scales, QK_K / 16);
  std::memset(y.scales, 0, sizeof y.scales);
  y.d = f32_to_f16(0.f);
  if (max_scale) {
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < QK_K / 16; ++j) {
      const int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
      if (j < 8) y.scales[j] = static_cast<uint8_t>(l & 0xF);
      else y.scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
      y.scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
    }
    y.d = f32_to_f16(1 / iscale);
  }
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = f16_to_f32(y.d) * q3_K_scale(y.scales, j);
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
  }
  // High bit of weight j goes to bit (j / 32) of hmask[j % 32].
  std::memset(y.hmask, 0, sizeof y.hmask);
  uint8_t low[QK_K];
  for (int j = 0; j < QK_K; ++j) {
    if (L[j] > 3) y.hmask[j % 32] |= static_cast<uint8_t>(1 << (j / 32));
    low[j] = static_cast<uint8_t>(L[j] & 3);
  }
  pack_2bit(low, y.qs);
}

// Q4_K and Q5_K share the scale search and the 6-bit scale packing; they differ in nmax and in
// the search's parameters.
void quantize_k4_scales(const float *x, int nmax, float rmin, int nstep, uint8_t *L, f16_bits &d_out,
                        f16_bits &dmin_out, uint8_t *packed) {
  uint8_t Laux[32];
  float weights[32], mins[QK_K / 32], scales[QK_K / 32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < QK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(packed, 0, K_SCALE_SIZE);
  for (int j = 0; j < QK_K / 32; ++j) {
    const int ls = std::clamp(nearest_int(inv_scale * scales[j]), 0, 63);
    const int lm = std::clamp(nearest_int(inv_min * mins[j]), 0, 63);
    if (j < 4) {
      packed[j] = static_cast<uint8_t>(ls);
      packed[j + 4] = static_cast<uint8_t>(lm);
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  d_out = f32_to_f16(max_scale / 63.f);
  dmin_out = f32_to_f16(max_min / 63.f);
  // Re-quantize against the scales as stored.
  for (int j = 0; j < QK_K / 32; ++j) {
    const K4SubBlock sub = k4_sub_block(j, packed, f16_to_f32(d_out), f16_to_f32(dmin_out));
    if (!sub.d) continue;
    for (int ii = 0; ii < 32; ++ii) L[32 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + sub.m) / sub.d), 0, nmax));
  }
}

void quantize_block(const float *x, block_q4_K &y) {
  uint8_t L[QK_K];
  quantize_k4_scales(x, 15, -1.f, 20, L, y.d, y.dmin, y.scales);
  for (int j = 0; j < QK_K; j += 64)
    for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
}

void quantize_block(const float *x, block_q5_K &y) {
  uint8_t L[QK_K];
  quantize_k4_scales(x, 31, -0.5f, 15, L, y.d, y.dmin, y.scales);
  std::memset(y.qh, 0, sizeof y.qh);
  for (int j = 0; j < QK_K; j += 64) {
    const int bit = j / 32;  // sub-block index of the low half of this 64-weight group
    for (int l = 0; l < 32; ++l) {
      const int l1 = L[j + l], l2 = L[j + l + 32];
      y.qh[l] |= static_cast<uint8_t>(((l1 >> 4) << bit) | ((l2 >> 4) << (bit + 1)));
      y.qs[j / 2 + l] = static_cast<uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
    }
  }
}

void quantize_block(const float *x, block_q6_K &y) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int ib = 0; ib < QK_K / 16; ++ib) scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
  const float max_scale = signed_absmax(scales, QK_K / 16);
  if (std::fabs(max_scale) < kGroupMaxEps) {
    std::memset(&y, 0, sizeof y);
    return;
  }
  const float iscale = -128.f / max_scale;
  y.d = f32_to_f16(1 / iscale);
  for (int ib = 0; ib < QK_K / 16; ++ib) y.scales[ib] = static_cast<int8_t>(std::clamp(nearest_int(iscale * scales[ib]), -128, 127));
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = f16_to_f32(y.d) * y.scales[j];
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
  }
  for (int j = 0; j < QK_K; j += 128) {
    uint8_t *ql = y.ql + j / 2;
    uint8_t *qh = y.qh + j / 4;
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

void quantize_block(const float *x, block_q8_K &y) {
  const float max = signed_absmax(x, QK_K);
  std::memset(&y, 0, sizeof y);
  if (!max) return;
  const float iscale = -127.f / max;
  for (int j = 0; j < QK_K; ++j) y.qs[j] = static_cast<int8_t>(std::clamp(nearest_int(iscale * x[j]), -128, 127));
  for (int j = 0; j < QK_K / 16; ++j) {
    int sum = 0;
    for (int ii = 0; ii < 16; ++ii) sum += y.qs[j * 16 + ii];
    y.bsums[j] = static_cast<int16_t>(sum);
  }
  y.d = 1 / iscale;
}

template <class Block, int BlockSize>
void quantize_blocks(const float *src, void *dst, int64_t n) {
  auto *blocks = static_cast<Block *>(dst);
  for (int64_t i = 0; i < n / BlockSize; ++i) quantize_block(src + i * BlockSize, blocks[i]);
}

}  // namespace

void quantize_row_ref(GgmlType type, const float *src, void *dst, int64_t n) {
  check_row(type, n, "quantize");
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case GgmlType::F16: {
      auto *h = static_cast<f16_bits *>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_f16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      auto *h = static_cast<bf16_bits *>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
      return;
    }
    case GgmlType::Q4_0: return quantize_blocks<block_q4_0, QK4_0>(src, dst, n);
    case GgmlType::Q8_0: return quantize_blocks<block_q8_0, QK8_0>(src, dst, n);
    case GgmlType::MXFP4: return quantize_blocks<block_mxfp4, QK_MXFP4>(src, dst, n);
    case GgmlType::Q2_K: return quantize_blocks<block_q2_K, QK_K>(src, dst, n);
    case GgmlType::Q3_K: return quantize_blocks<block_q3_K, QK_K>(src, dst, n);
    case GgmlType::Q4_K: return quantize_blocks<block_q4_K, QK_K>(src, dst, n);
    case GgmlType::Q5_K: return quantize_blocks<block_q5_K, QK_K>(src, dst, n);
    case GgmlType::Q6_K: return quantize_blocks<block_q6_K, QK_K>(src, dst, n);
    case GgmlType::Q8_K: return quantize_blocks<block_q8_K, QK_K>(src, dst, n);
    default: break;
  }
  detail::fail(ErrorCode::internal, "quantize: no reference for {}", type_name(type));
}

}  // namespace vramfit::quant
