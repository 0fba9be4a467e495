// Shared helpers of the cpu tests: realistic random rows of every type, and f64 references.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <algorithm>
#include <optional>

#include "cpu/kernels.hpp"
#include "cpu/vec_dot.hpp"
#include "quant/quant.hpp"
#include "vramfit/types.hpp"

namespace vramfit::test {

// Every weight type the CPU kernels compute with.
inline const std::vector<GgmlType> &compute_types() {
  static const std::vector<GgmlType> types = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                                              GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                                              GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::MXFP4};
  return types;
}

inline std::vector<float> gaussian_row(std::mt19937 &rng, int64_t n, float sigma = 1.0f) {
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (float &v : x) v = dist(rng);
  return x;
}

// A row as a quantizer would write it (llama.cpp's reference quantizers).
inline std::vector<std::byte> quantized_row(GgmlType type, const std::vector<float> &x) {
  std::vector<std::byte> row(row_bytes(type, static_cast<int64_t>(x.size())));
  quant::quantize_row_ref(type, x.data(), row.data(), static_cast<int64_t>(x.size()));
  return row;
}

// Random bytes with every f16 scale replaced by a finite random value: exercises every quant and
// scale bit pattern (which the quantizers may never produce).
inline std::vector<std::byte> random_row(std::mt19937 &rng, GgmlType type, int64_t n) {
  std::vector<std::byte> row(row_bytes(type, n));
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::byte &b : row) b = static_cast<std::byte>(byte(rng));
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  auto set_half = [&](std::byte *p) {
    const quant::f16_bits h = quant::f32_to_f16(scale(rng));
    std::memcpy(p, &h, 2);
  };
  const auto traits = *type_traits(static_cast<uint32_t>(type));
  for (size_t off = 0; off < row.size(); off += traits.type_size) {
    std::byte *b = row.data() + off;
    switch (type) {
      case GgmlType::F16: case GgmlType::BF16: set_half(b); break;  // keep values finite
      case GgmlType::F32: { const float f = scale(rng); std::memcpy(b, &f, 4); break; }
      case GgmlType::Q4_0: case GgmlType::Q8_0: set_half(b); break;
      case GgmlType::Q2_K: set_half(b + 80); set_half(b + 82); break;
      case GgmlType::Q3_K: set_half(b + 108); break;
      case GgmlType::Q4_K: case GgmlType::Q5_K: set_half(b); set_half(b + 2); break;
      case GgmlType::Q6_K: set_half(b + 208); break;
      case GgmlType::MXFP4: b[0] = static_cast<std::byte>(116 + byte(rng) % 12); break;  // 2^-12 .. 2^-1
      default: break;
    }
  }
  return row;
}

// n_out rows of n_in weights, one after the other: odd rows random_row, even rows the quantized
// form of small Gaussian values.
inline std::vector<std::byte> mixed_rows(std::mt19937 &rng, GgmlType type, int64_t n_out, int64_t n_in) {
  std::vector<std::byte> w;
  for (int64_t r = 0; r < n_out; ++r) {
    const auto row = r % 2 ? random_row(rng, type, n_in) : quantized_row(type, gaussian_row(rng, n_in, 0.05f));
    w.insert(w.end(), row.begin(), row.end());
  }
  return w;
}

inline std::vector<double> dequantized(GgmlType type, const void *data, int64_t n) {
  std::vector<float> f(static_cast<size_t>(n));
  quant::dequantize_row_ref(type, data, f.data(), n);
  return {f.begin(), f.end()};
}

// The activation row as the kernels see it (after rounding to the vec_dot type), in f64.
inline std::vector<double> activations_as_used(GgmlType wtype, const std::vector<float> &x) {
  const int64_t n = static_cast<int64_t>(x.size());
  const GgmlType at = cpu::vec_dot_type(wtype);
  std::vector<std::byte> act(row_bytes(at, n));
  cpu::quantize_activations(wtype, x.data(), act.data(), n);
  return dequantized(at, act.data(), n);
}

inline double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
inline double abs_dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(a[i] * b[i]);
  return s;
}

// Bound on float summation error of an n-term dot in our fixed order: at most n/16 + 16 roundings
// deep (16 lanes, then a 4-level tree; K-quants: n/256 blocks, 4 ops each) of 2^-24 each,
// times two (product and sum).
inline double float_sum_bound(int64_t n, double abs_sum) {
  return 2.0 * (static_cast<double>(n) / 16 + 16) * std::ldexp(1.0, -24) * abs_sum;
}

// Largest |x - rounded(x)| of each activation element, from the activation format's definition:
// Q8_K's step is its block scale d = max/127; Q8_0's is d = amax/127, but d is stored as f16
// while the quants were computed with the unrounded scale, adding up to 127 * 2^-11 * d; f16
// rounds to 2^-11 |x| and bf16 to 2^-8 |x|.
inline std::vector<double> activation_rounding(GgmlType wtype, const std::vector<float> &x, const void *act) {
  const GgmlType at = cpu::vec_dot_type(wtype);
  std::vector<double> step(x.size(), 0.0);
  for (size_t k = 0; k < x.size(); ++k) {
    if (at == GgmlType::Q8_K)
      step[k] = 0.5 * std::fabs(static_cast<const quant::block_q8_K *>(act)[k / 256].d) * (1 + 1e-6);
    else if (at == GgmlType::Q8_0)
      step[k] = (0.5 + 127.0 / 2048) * quant::f16_to_f32(static_cast<const quant::block_q8_0 *>(act)[k / 32].d) * (1 + 1e-3);
    else if (at == GgmlType::F16)
      step[k] = std::ldexp(std::fabs(x[k]), -11);
    else if (at == GgmlType::BF16)
      step[k] = std::ldexp(std::fabs(x[k]), -8);
  }
  return step;
}

// Restores automatic ISA selection when a scope ends, even on failure.
struct IsaGuard {
  ~IsaGuard() { cpu::set_isa_override(std::nullopt); }
};

// Every check of one weight row against one activation row:
//  1. every ISA quantizes the activations and computes vec_dot to the scalar kernel's exact bits;
//  2. vec_dot equals the f64 dot of its dequantized operands up to float rounding (the reference
//     dequantizer rounds d*scale*q and dmin*min separately, so that error scales with the row's
//     largest weight);
//  3. against the exact f32 activations, the error is within sum_k |w_k| * rounding_k (above).
inline void check_vec_dot(GgmlType type, const std::byte *row, const std::vector<float> &x) {
  IsaGuard guard;
  const auto n = static_cast<int64_t>(x.size());
  const size_t act_bytes = row_bytes(cpu::vec_dot_type(type), n);
  cpu::set_isa_override(cpu::Isa::scalar);
  std::vector<std::byte> act(act_bytes);
  cpu::quantize_activations(type, x.data(), act.data(), n);
  const float scalar = cpu::vec_dot(type, n, row, act.data());
  for (cpu::Isa isa : cpu::supported_isas()) {
    cpu::set_isa_override(isa);
    std::vector<std::byte> act_isa(act_bytes);
    cpu::quantize_activations(type, x.data(), act_isa.data(), n);
    const float got = cpu::vec_dot(type, n, row, act_isa.data());
    INFO(type_name(type) << " on " << cpu::isa_name(isa) << ": " << got << " vs scalar " << scalar);
    CHECK(std::memcmp(act_isa.data(), act.data(), act_bytes) == 0);
    CHECK(std::memcmp(&got, &scalar, sizeof got) == 0);
  }
  cpu::set_isa_override(std::nullopt);

  const auto w = dequantized(type, row, n);
  const auto a = activations_as_used(type, x);
  const auto step = activation_rounding(type, x, act.data());
  double w_max = 0;
  for (double v : w) w_max = std::max(w_max, std::fabs(v));
  double magnitude = 0, rounding = 0;
  for (size_t k = 0; k < w.size(); ++k) {
    magnitude += (std::fabs(a[k]) + step[k]) * (std::fabs(w[k]) + w_max);
    rounding += std::fabs(w[k]) * step[k];
  }
  const double got = scalar;
  const double with_used = dot(w, a);
  const double with_exact = dot(w, std::vector<double>(x.begin(), x.end()));
  INFO(type_name(type) << ": got " << got << ", f64 with rounded activations " << with_used
                       << ", with exact activations " << with_exact << ", rounding bound " << rounding);
  CHECK(std::fabs(got - with_used) <= float_sum_bound(n, magnitude));
  CHECK(std::fabs(got - with_exact) <= rounding + float_sum_bound(n, magnitude));
}

}  // namespace vramfit::test
