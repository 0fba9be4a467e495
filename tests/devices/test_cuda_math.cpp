// The CUDA kernels' arithmetic (lib/cuda/kernel_math.hpp), compiled for the host and checked
// against float64 references: this runs everywhere, GPU or not.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda/kernel_math.hpp"
#include "quant/quant.hpp"
#include "vramfit/types.hpp"

using namespace vramfit;
using namespace vramfit::cuda;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v) x = dist(rng);
  return v;
}

// The fused GEMV of one row for n_tokens tokens, in the kernel's order: lane l takes chunks
// l, l+32, ...; then the 32 lane sums are added (the warp reduction).
template <class Chunk>
std::vector<float> gemv_row(const Chunk *row, int64_t ne0, const float *x, int n_tokens) {
  constexpr int n = ChunkTraits<Chunk>::size;
  const int64_t n_chunks = ne0 / n;
  std::vector<float> result(n_tokens, 0.0f);
  for (int lane = 0; lane < 32; ++lane) {
    float acc[8] = {};
    for (int64_t c = lane; c < n_chunks; c += 32) chunk_dot(row[c], x + c * n, ne0, n_tokens, acc);
    for (int t = 0; t < n_tokens; ++t) result[t] += acc[t];
  }
  return result;
}

// Quantizes a random row with the reference quantizer, runs the fused GEMV on it, and compares
// with a float64 dot product of the reference dequantization.
template <class Chunk>
void check_gemv_type(GgmlType type) {
  CAPTURE(type_name(type));
  const int64_t ne0 = 1024;
  const int n_tokens = 3;
  const std::vector<float> weights = random_floats(ne0, 11, 0.05f);
  std::vector<uint8_t> row(row_bytes(type, ne0));
  quant::quantize_row_ref(type, weights.data(), row.data(), ne0);
  std::vector<float> dequantized(ne0);
  quant::dequantize_row_ref(type, row.data(), dequantized.data(), ne0);
  const std::vector<float> x = random_floats(ne0 * n_tokens, 12);

  const auto *chunks = reinterpret_cast<const Chunk *>(row.data());
  // Dequantizing chunk by chunk is exactly the reference row.
  constexpr int n = ChunkTraits<Chunk>::size;
  float values[n];
  for (int64_t c = 0; c < ne0 / n; ++c) {
    dequantize_chunk(chunks[c], values);
    for (int i = 0; i < n; ++i) REQUIRE(values[i] == dequantized[c * n + i]);
  }

  const std::vector<float> y = gemv_row(chunks, ne0, x.data(), n_tokens);
  for (int t = 0; t < n_tokens; ++t) {
    double dot = 0, magnitude = 0;
    for (int64_t k = 0; k < ne0; ++k) {
      dot += static_cast<double>(dequantized[k]) * x[t * ne0 + k];
      magnitude += std::fabs(static_cast<double>(dequantized[k]) * x[t * ne0 + k]);
    }
    // float accumulation over 1024 terms: error bounded by ~n * eps * sum|terms|, far tighter in practice
    CHECK(std::fabs(y[t] - dot) <= 1e-6 * magnitude);
  }
}

}  // namespace

TEST_CASE("fused GEMV dequantizes every weight type exactly and matches a float64 dot product") {
  check_gemv_type<float>(GgmlType::F32);
  check_gemv_type<f16_elem>(GgmlType::F16);
  check_gemv_type<bf16_elem>(GgmlType::BF16);
  check_gemv_type<quant::block_q4_0>(GgmlType::Q4_0);
  check_gemv_type<quant::block_q8_0>(GgmlType::Q8_0);
  check_gemv_type<quant::block_q2_K>(GgmlType::Q2_K);
  check_gemv_type<quant::block_q3_K>(GgmlType::Q3_K);
  check_gemv_type<quant::block_q4_K>(GgmlType::Q4_K);
  check_gemv_type<quant::block_q5_K>(GgmlType::Q5_K);
  check_gemv_type<quant::block_q6_K>(GgmlType::Q6_K);
}

TEST_CASE("rms_norm scale matches float64") {
  const std::vector<float> x = random_floats(4096, 3, 2.0f);
  float sum = 0;
  double sum64 = 0;
  for (float v : x) {
    sum += v * v;
    sum64 += static_cast<double>(v) * v;
  }
  const double ref = 1.0 / std::sqrt(sum64 / 4096 + 1e-5);
  CHECK(std::fabs(rms_inverse(sum, 4096, 1e-5f) - ref) <= 1e-5 * ref);
  CHECK(rms_inverse(0.0f, 64, 1e-6f) == doctest::Approx(1000.0).epsilon(1e-6));
}

TEST_CASE("rope rotates adjacent pairs by pos * freq_scale * base^(-2i/n_rot) / factor") {
  const int64_t n_rot = 64;
  const float base = 10000.0f, scale = 0.25f;
  const std::vector<float> factors = random_floats(n_rot / 2, 5, 0.3f);
  for (int64_t pos : {0, 1, 7, 100, 4095}) {
    for (int64_t pair = 0; pair < n_rot / 2; ++pair) {
      const float factor = 1.0f + std::fabs(factors[pair]);
      const double theta = scale * pos * std::pow(10000.0, -2.0 * pair / n_rot) / factor;
      const float x0 = 0.7f, x1 = -1.3f;
      float y0 = x0, y1 = x1;
      rope_rotate(y0, y1, rope_theta(pos, pair, n_rot, base, scale, factor));
      const double r0 = x0 * std::cos(theta) - x1 * std::sin(theta);
      const double r1 = x0 * std::sin(theta) + x1 * std::cos(theta);
      // theta is a float: its rounding grows with pos (as in ggml), |x| ~ 1.5
      const double tolerance = 1e-6 + 4e-7 * static_cast<double>(pos);
      CHECK(std::fabs(y0 - r0) <= tolerance);
      CHECK(std::fabs(y1 - r1) <= tolerance);
      CHECK(std::hypot(y0, y1) == doctest::Approx(std::hypot(x0, x1)).epsilon(1e-6));  // a rotation
    }
  }
}

TEST_CASE("swiglu is silu(gate) * up") {
  for (float g : {-20.0f, -3.0f, -0.5f, 0.0f, 0.25f, 2.0f, 15.0f}) {
    for (float u : {-2.0f, 0.5f, 3.0f}) {
      const double ref = g / (1.0 + std::exp(-static_cast<double>(g))) * u;
      CHECK(std::fabs(swiglu(g, u) - ref) <= 1e-6 * (1 + std::fabs(ref)));
    }
  }
}

TEST_CASE("Q8_0 KV quantization equals the reference quantizer and stays within half a step") {
  const std::vector<float> x = random_floats(32 * 64, 9, 3.0f);
  std::vector<quant::block_q8_0> ref(64);
  quant::quantize_row_ref(GgmlType::Q8_0, x.data(), ref.data(), static_cast<int64_t>(x.size()));
  for (int b = 0; b < 64; ++b) {
    const quant::block_q8_0 mine = quantize_q8_0(x.data() + 32 * b);
    CHECK(mine.d == ref[b].d);
    for (int i = 0; i < 32; ++i) {
      REQUIRE(mine.qs[i] == ref[b].qs[i]);
      const float back = kv_load(&mine, KvType::q8_0, i);
      CHECK(std::fabs(back - x[32 * b + i]) <= 0.5 * quant::f16_to_f32(mine.d) * 1.01 + 1e-3 * std::fabs(x[32 * b + i]));
    }
  }
  float zeros[32] = {};
  const quant::block_q8_0 z = quantize_q8_0(zeros);
  CHECK(quant::f16_to_f32(z.d) == 0.0f);
  CHECK(kv_load(&z, KvType::q8_0, 5) == 0.0f);
}

TEST_CASE("kv_load reads F32 and F16 rows") {
  const float f32[3] = {1.5f, -2.25f, 1e-3f};
  const quant::f16_bits f16[3] = {quant::f32_to_f16(1.5f), quant::f32_to_f16(-2.25f), quant::f32_to_f16(1e-3f)};
  CHECK(kv_load(f32, KvType::f32, 1) == -2.25f);
  CHECK(kv_load(f16, KvType::f16, 0) == 1.5f);
  CHECK(kv_load(f16, KvType::f16, 2) == doctest::Approx(1e-3).epsilon(1e-3));
}

namespace {

// The attention kernel's arithmetic for one (token, head), on the host: streaming softmax over
// keys 0..n_keys-1 of a cache whose rows hold n_head_kv heads.
std::vector<float> attention_online(const float *q, const void *k, const void *v, KvType type, uint64_t row_bytes,
                                    int64_t kv_offset, int64_t head_dim, int64_t n_keys, float scale) {
  std::vector<float> acc(head_dim, 0.0f);
  OnlineSoftmax softmax;
  for (int64_t j = 0; j < n_keys; ++j) {
    const auto *k_row = static_cast<const char *>(k) + j * row_bytes;
    const auto *v_row = static_cast<const char *>(v) + j * row_bytes;
    float dot = 0;
    for (int64_t d = 0; d < head_dim; ++d) dot += q[d] * kv_load(k_row, type, kv_offset + d);
    const SoftmaxStep step = online_softmax_add(softmax, dot * scale);
    for (int64_t d = 0; d < head_dim; ++d)
      acc[d] = acc[d] * step.rescale + step.weight * kv_load(v_row, type, kv_offset + d);
  }
  for (float &a : acc) a /= softmax.sum;
  return acc;
}

}  // namespace

TEST_CASE("streaming-softmax attention with GQA matches float64 softmax attention, for every cache type") {
  const int64_t n_head = 4, n_head_kv = 2, head_dim = 64, n_keys = 300, row = n_head_kv * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // Large activations make scores of several hundred: a naive exp() would overflow.
  const std::vector<float> q = random_floats(n_head * head_dim, 21, 6.0f);
  const std::vector<float> k = random_floats(n_keys * row, 22, 6.0f);
  const std::vector<float> v = random_floats(n_keys * row, 23);

  for (KvType type : {KvType::f32, KvType::f16, KvType::q8_0}) {
    CAPTURE(static_cast<int>(type));
    // Encode the cache, and decode it again for the reference (so only the attention math differs).
    std::vector<uint8_t> k_cache, v_cache;
    uint64_t row_size = 0;
    std::vector<float> k_dec(k.size()), v_dec(v.size());
    const GgmlType ggml = type == KvType::f32 ? GgmlType::F32 : type == KvType::f16 ? GgmlType::F16 : GgmlType::Q8_0;
    row_size = row_bytes(ggml, row);
    k_cache.resize(row_size * n_keys);
    v_cache.resize(row_size * n_keys);
    for (int64_t j = 0; j < n_keys; ++j) {
      for (int64_t b = 0; b < row / 32; ++b) {
        const float *ks = k.data() + j * row + b * 32, *vs = v.data() + j * row + b * 32;
        uint8_t *kd = k_cache.data() + j * row_size, *vd = v_cache.data() + j * row_size;
        if (type == KvType::q8_0) {
          reinterpret_cast<quant::block_q8_0 *>(kd)[b] = quantize_q8_0(ks);
          reinterpret_cast<quant::block_q8_0 *>(vd)[b] = quantize_q8_0(vs);
        } else {
          quant::quantize_row_ref(ggml, ks, kd + row_bytes(ggml, b * 32), 32);
          quant::quantize_row_ref(ggml, vs, vd + row_bytes(ggml, b * 32), 32);
        }
      }
      for (int64_t e = 0; e < row; ++e) {
        k_dec[j * row + e] = kv_load(k_cache.data() + j * row_size, type, e);
        v_dec[j * row + e] = kv_load(v_cache.data() + j * row_size, type, e);
      }
    }
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t kv_offset = kv_head_of(h, n_head, n_head_kv) * head_dim;
      const float *qh = q.data() + h * head_dim;
      for (int64_t keys : {int64_t{1}, int64_t{17}, n_keys}) {
        const std::vector<float> out = attention_online(qh, k_cache.data(), v_cache.data(), type, row_size,
                                                        kv_offset, head_dim, keys, scale);
        std::vector<double> scores(keys);
        double max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < keys; ++j) {
          double s = 0;
          for (int64_t d = 0; d < head_dim; ++d) s += static_cast<double>(qh[d]) * k_dec[j * row + kv_offset + d];
          scores[j] = s * scale;
          max = std::max(max, scores[j]);
        }
        for (double &s : scores) sum += (s = std::exp(s - max));
        for (int64_t d = 0; d < head_dim; ++d) {
          double ref = 0;
          for (int64_t j = 0; j < keys; ++j) ref += scores[j] / sum * v_dec[j * row + kv_offset + d];
          // scores of ~±300 in float: |dscore| ~ 3e-5 relative weight error; outputs are O(1)
          REQUIRE(std::fabs(out[d] - ref) <= 2e-4);
        }
      }
    }
  }
  CHECK(kv_head_of(3, 4, 2) == 1);
  CHECK(kv_head_of(7, 8, 1) == 0);
}

TEST_CASE("attention lanes cover every head dimension exactly once") {
  for (int64_t head_dim = 1; head_dim <= 256; ++head_dim) {
    CAPTURE(head_dim);
    std::vector<int> seen(static_cast<size_t>(head_dim), 0);
    for (int lane = 0; lane < 32; ++lane) {
      const int dims = attention_lane_dims(head_dim, lane);
      REQUIRE(dims >= 0);
      REQUIRE(dims <= 8);  // the kernel's per-lane arrays
      for (int i = 0; i < dims; ++i) {
        REQUIRE(lane + 32 * i < head_dim);
        ++seen[static_cast<size_t>(lane + 32 * i)];
      }
    }
    for (int count : seen) REQUIRE(count == 1);
  }
}

namespace {

// BLAS's column-major GEMM, as its reference implementation defines it: C = op(A) op(B), C m x n.
void blas_gemm(bool ta, bool tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
               int ldc) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double sum = 0;
      for (int p = 0; p < k; ++p) {
        const float a_ip = ta ? a[p + i * lda] : a[i + p * lda];
        const float b_pj = tb ? b[j + p * ldb] : b[p + j * ldb];
        sum += static_cast<double>(a_ip) * b_pj;
      }
      c[i + j * ldc] = static_cast<float>(sum);
    }
}

}  // namespace

TEST_CASE("the cuBLAS arguments compute y[t][r] = W[r] . x[t] for row-major W and x, into a strided tile") {
  // A tile of 5 weight rows starting at row 3 of an 11-row output, 7 inputs, 4 tokens.
  const int64_t rows = 5, k = 7, n_tokens = 4, ldy = 11, r0 = 3;
  const std::vector<float> w = random_floats(rows * k, 31), x = random_floats(n_tokens * k, 32);
  std::vector<float> y(n_tokens * ldy, -99.0f);
  const GemmArgs g = row_major_gemm(rows, k, n_tokens, ldy);
  blas_gemm(g.transpose_a, g.transpose_b, g.m, g.n, g.k, w.data(), g.lda, x.data(), g.ldb, y.data() + r0, g.ldc);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < ldy; ++r) {
      if (r < r0 || r >= r0 + rows) {
        REQUIRE(y[t * ldy + r] == -99.0f);  // other tiles' outputs untouched
        continue;
      }
      double ref = 0;
      for (int64_t i = 0; i < k; ++i) ref += static_cast<double>(w[(r - r0) * k + i]) * x[t * k + i];
      REQUIRE(y[t * ldy + r] == doctest::Approx(ref).epsilon(1e-6));
    }
  CHECK(g.lda >= (g.transpose_a ? g.k : g.m));  // cuBLAS's own argument checks
  CHECK(g.ldb >= (g.transpose_b ? g.n : g.k));
  CHECK(g.ldc >= g.m);
}
