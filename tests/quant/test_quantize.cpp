// Quantizers: round trips, determinism, edge inputs, errors, and quality against llama.cpp's.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "quant/quant.hpp"
#include "test_data.hpp"
#include "vramfit/error.hpp"
#include "vramfit/gguf.hpp"

using namespace vramfit;

namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                           GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                           GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::MXFP4};

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(n);
  for (float &v : x) v = dist(rng);
  return x;
}

std::vector<std::byte> quantize(GgmlType type, const std::vector<float> &x) {
  std::vector<std::byte> q(row_bytes(type, static_cast<int64_t>(x.size())));
  quant::quantize_row_ref(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(GgmlType type, const std::vector<std::byte> &q, int64_t n) {
  std::vector<float> y(n);
  quant::dequantize_row_ref(type, q.data(), y.data(), n);
  return y;
}

double rms_error(const std::vector<float> &a, const std::vector<float> &b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(sum / double(a.size()));
}

// Bound on the RMS error of N(0,1) data, from the step of each format: a b-bit uniform grid over
// the block's range [-amax, amax] (amax ~ 2.5..3 sigma for 16..32 weights) errs by step/sqrt(12),
// step = 2*amax/2^b. K-quants fit the scale by least squares, which beats that. The bound is ~1.3x
// the measured value (seed 1): room for other data, still below the next-coarser format's error.
double rms_bound(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 3e-4;     // 11-bit mantissa: rel. 2^-12; measured 2.1e-4
    case GgmlType::BF16: return 2.5e-3;  // 8-bit mantissa: rel. 2^-9; measured 1.7e-3
    case GgmlType::Q8_0: return 7e-3;    // step 2.5/127: 5.7e-3 predicted; measured 5.4e-3
    case GgmlType::Q8_K: return 9.5e-3;  // 256 weights: amax ~3.5, step 3.5/127: 8e-3; measured 7.2e-3
    case GgmlType::Q6_K: return 2.4e-2;  // measured 1.8e-2
    case GgmlType::Q5_K: return 4.8e-2;  // measured 3.6e-2
    case GgmlType::Q4_K: return 9.5e-2;  // measured 7.2e-2
    case GgmlType::Q4_0: return 1.2e-1;  // step 2.5/8: 9e-2 predicted; measured 8.7e-2
    case GgmlType::Q3_K: return 2.0e-1;  // measured 1.5e-1
    case GgmlType::Q2_K: return 3.9e-1;  // measured 3.0e-1
    case GgmlType::MXFP4: return 1.5e-1; // 2 mantissa levels per binade, d = 2^(floor(log2 amax)-3); measured 1.15e-1
    default: return 0;
  }
}

}  // namespace

TEST_CASE("round trip quantize -> dequantize stays within each format's error bound") {
  const std::vector<float> x = gaussian(64 * 256, 1);
  for (GgmlType type : kTypes) {
    CAPTURE(type_name(type));
    const double err = rms_error(x, dequantize(type, quantize(type, x), static_cast<int64_t>(x.size())));
    MESSAGE(type_name(type) << " RMS error on N(0,1): " << err);
    CHECK(err <= rms_bound(type));
  }
}

TEST_CASE("quantization is deterministic") {
  const std::vector<float> x = gaussian(8 * 256, 2);
  for (GgmlType type : kTypes) {
    CAPTURE(type_name(type));
    CHECK(quantize(type, x) == quantize(type, x));
  }
}

TEST_CASE("zero and constant inputs") {
  for (GgmlType type : kTypes) {
    CAPTURE(type_name(type));
    const std::vector<float> zeros(256, 0.f);
    CHECK(dequantize(type, quantize(type, zeros), 256) == zeros);
    // A constant block is exact up to the f16 rounding of the scale (and for Q2_K/Q4_K/Q5_K, the
    // min): within 2^-9 relative.
    const std::vector<float> c(256, 0.75f);
    for (float y : dequantize(type, quantize(type, c), 256)) CHECK(std::fabs(y - 0.75f) <= 0.75f * 0x1p-9f);
  }
}

TEST_CASE("Q8_K block sums are the sums of its quants") {
  const std::vector<float> x = gaussian(256, 3);
  quant::block_q8_K b;
  quant::quantize_row_ref(GgmlType::Q8_K, x.data(), &b, 256);
  for (int j = 0; j < 16; ++j) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * j + i];
    CHECK(b.bsums[j] == sum);
  }
}

TEST_CASE("non-finite inputs do not crash the quantizers") {
  std::vector<float> x = gaussian(256, 4);
  x[3] = NAN;
  x[100] = INFINITY;
  x[200] = -1e38f;
  for (GgmlType type : kTypes) {
    CAPTURE(type_name(type));
    auto q = quantize(type, x);
    CHECK(q.size() == row_bytes(type, 256));
    (void)dequantize(type, q, 256);
  }
}

TEST_CASE("unsupported types and ragged rows are refused with a clear error") {
  float x[64] = {};
  std::byte buf[256];
  try {
    quant::quantize_row_ref(GgmlType::IQ2_XXS, x, buf, 256);
    FAIL("no error");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::unsupported);
    CHECK(std::string(e.what()).find("IQ2_XXS") != std::string::npos);
  }
  try {
    quant::dequantize_row_ref(GgmlType::Q4_K, buf, x, 64);
    FAIL("no error");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::invalid_argument);
    CHECK(std::string(e.what()).find("256") != std::string::npos);
  }
}

// The bar: on synth-F32's tensors, our RMS error per type is at most 1.05x that of the
// files llama.cpp quantized (each tensor of each synth-<mix>.gguf, dequantized, vs the F32 original).
TEST_CASE("quantizer quality matches llama.cpp's on the synthetic model") {
  auto f32_path = test::test_data("models/synth-F32.gguf");
  if (!f32_path) return;
  const gguf::File original = gguf::File::open(*f32_path);
  struct Totals {
    double ours = 0, theirs = 0;  // sums of squared errors
    int64_t n = 0;
    int64_t same_bytes = 0, n_tensors = 0;
  };
  std::map<std::string, Totals> by_type;
  std::map<std::string, bool> seen;  // (type, tensor) already measured
  for (const char *mix : {"F16", "Q4_0", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K"}) {
    auto path = test::test_data(std::string("models/synth-") + mix + ".gguf");
    if (!path) return;
    const gguf::File theirs = gguf::File::open(*path);
    for (const gguf::TensorInfo &info : theirs.tensors()) {
      const std::string type(type_name(info.type));
      if (info.type == GgmlType::F32 || seen[type + info.name]) continue;
      seen[type + info.name] = true;
      const gguf::TensorInfo &src = original.tensor(info.name);
      const auto *x = reinterpret_cast<const float *>(original.data(src).data());
      const int64_t n = src.n_elements();
      std::vector<std::byte> ours(row_bytes(info.type, n));
      quant::quantize_row_ref(info.type, x, ours.data(), n);
      const auto their_bytes = theirs.data(info);
      std::vector<float> y_ours(n), y_theirs(n);
      quant::dequantize_row_ref(info.type, ours.data(), y_ours.data(), n);
      quant::dequantize_row_ref(info.type, their_bytes.data(), y_theirs.data(), n);
      Totals &t = by_type[type];
      for (int64_t i = 0; i < n; ++i) {
        t.ours += (double(y_ours[i]) - x[i]) * (double(y_ours[i]) - x[i]);
        t.theirs += (double(y_theirs[i]) - x[i]) * (double(y_theirs[i]) - x[i]);
      }
      t.n += n;
      t.n_tensors += 1;
      t.same_bytes += std::memcmp(ours.data(), their_bytes.data(), ours.size()) == 0;
    }
  }
  CHECK(by_type.size() == 8);  // F16, Q4_0, Q8_0, Q2_K..Q6_K
  for (const auto &[type, t] : by_type) {
    CAPTURE(type);
    const double ours = std::sqrt(t.ours / t.n), theirs = std::sqrt(t.theirs / t.n);
    MESSAGE(type << ": RMS ours " << ours << ", llama.cpp " << theirs << " (ratio " << ours / theirs << "); "
                 << t.same_bytes << "/" << t.n_tensors << " tensors byte-identical");
    CHECK(ours <= 1.05 * theirs);
  }
}

TEST_CASE("MXFP4 and Q8_0 tensors we quantize are byte-identical to llama-quantize's MXFP4_MOE file") {
  auto f32_path = test::test_data("models/synth-gptoss-F32.gguf");
  auto mxfp4_path = test::test_data("models/synth-gptoss-MXFP4_MOE.gguf");
  if (!f32_path || !mxfp4_path) return;
  const gguf::File original = gguf::File::open(*f32_path);
  const gguf::File theirs = gguf::File::open(*mxfp4_path);
  int n_mxfp4 = 0, n_checked = 0;
  for (const gguf::TensorInfo &info : theirs.tensors()) {
    if (info.type == GgmlType::F32) continue;
    CAPTURE(info.name);
    const gguf::TensorInfo &src = original.tensor(info.name);
    const int64_t n = src.n_elements();
    std::vector<std::byte> ours(row_bytes(info.type, n));
    quant::quantize_row_ref(info.type, reinterpret_cast<const float *>(original.data(src).data()), ours.data(), n);
    const auto their_bytes = theirs.data(info);
    REQUIRE(their_bytes.size() == ours.size());
    CHECK(std::memcmp(ours.data(), their_bytes.data(), ours.size()) == 0);
    n_mxfp4 += info.type == GgmlType::MXFP4;
    ++n_checked;
  }
  CHECK(n_mxfp4 == 6);  // gate, up and down experts of 2 layers
  MESSAGE(n_checked << " quantized tensors compared, " << n_mxfp4 << " of them MXFP4");
}
