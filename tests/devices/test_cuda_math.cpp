// The CUDA kernels' arithmetic (lib/cuda/kernel_math.hpp), compiled for the host and checked
// against float64 references: this runs everywhere, GPU or not.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cuda/kernel_math.hpp"
#include "quant/quant.hpp"
#include "test_util.hpp"
#include "vramfit/types.hpp"

using namespace vramfit;
using vramfit::test::random_floats;
using namespace vramfit::cuda;

namespace {

// The 32 lanes' values after the kernel's butterfly reduction (butterfly_partner): every lane
// must end with the same total.
std::vector<float> butterfly_sum(std::vector<float> lanes) {
  for (int offset = 16; offset > 0; offset /= 2) {
    std::vector<float> next(32);
    for (int lane = 0; lane < 32; ++lane) next[lane] = lanes[lane] + lanes[butterfly_partner(lane, offset)];
    lanes = next;
  }
  return lanes;
}

// The fused GEMV of one row for n_tokens tokens, exactly as the kernel maps it: lane l takes
// piece gemv_lane(l).piece of chunks first_chunk, first_chunk + chunks_per_step, ...; then the
// butterfly adds the 32 lane sums.
template <class Chunk>
std::vector<float> gemv_row(const Chunk *row, int64_t ne0, const float *x, int n_tokens) {
  constexpr int n = ChunkTraits<Chunk>::size;
  const int64_t n_chunks = ne0 / n;
  std::vector<std::vector<float>> lanes(n_tokens, std::vector<float>(32, 0.0f));
  for (int lane = 0; lane < 32; ++lane) {
    const GemvLane l = gemv_lane(lane, PieceTraits<Chunk>::count);
    float acc[8] = {};
    for (int64_t c = l.first_chunk; c < n_chunks; c += l.chunks_per_step)
      piece_dot<8>(row[c], l.piece, x + c * n + l.piece * PieceTraits<Chunk>::size, ne0, n_tokens, acc);
    for (int t = 0; t < n_tokens; ++t) lanes[t][lane] = acc[t];
  }
  std::vector<float> result(n_tokens);
  for (int t = 0; t < n_tokens; ++t) {
    const std::vector<float> reduced = butterfly_sum(lanes[t]);
    for (float v : reduced) REQUIRE(v == reduced[0]);
    result[t] = reduced[0];
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
  check_gemv_type<quant::block_mxfp4>(GgmlType::MXFP4);
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

// ---- pieces, lane maps and the other index math of the kernels ----

namespace {

bool same_bits(float a, float b) {
  return quant::float_to_bits(a) == quant::float_to_bits(b) || (a != a && b != b);
}

// Random bytes (every bit pattern, NaN scales included): the pieces of each block, in order,
// are dequantize_block's output bit for bit.
template <class Chunk>
void check_pieces(GgmlType type) {
  CAPTURE(type_name(type));
  constexpr int size = ChunkTraits<Chunk>::size, piece = PieceTraits<Chunk>::size;
  static_assert(PieceTraits<Chunk>::count * piece == size);
  std::mt19937 rng(7);
  std::vector<uint8_t> bytes(sizeof(Chunk) * 64);
  for (uint8_t &b : bytes) b = static_cast<uint8_t>(rng());
  const auto *chunks = reinterpret_cast<const Chunk *>(bytes.data());
  for (int c = 0; c < 64; ++c) {
    float whole[size], parts[size];
    dequantize_chunk(chunks[c], whole);
    for (int p = 0; p < PieceTraits<Chunk>::count; ++p) dequantize_piece(chunks[c], p, parts + p * piece);
    for (int i = 0; i < size; ++i) REQUIRE(same_bits(parts[i], whole[i]));
  }
}

}  // namespace

TEST_CASE("the pieces of a block are the whole block's dequantization, bit for bit, for every type") {
  check_pieces<float>(GgmlType::F32);
  check_pieces<f16_elem>(GgmlType::F16);
  check_pieces<bf16_elem>(GgmlType::BF16);
  check_pieces<quant::block_q4_0>(GgmlType::Q4_0);
  check_pieces<quant::block_q8_0>(GgmlType::Q8_0);
  check_pieces<quant::block_mxfp4>(GgmlType::MXFP4);
  check_pieces<quant::block_q2_K>(GgmlType::Q2_K);
  check_pieces<quant::block_q3_K>(GgmlType::Q3_K);
  check_pieces<quant::block_q4_K>(GgmlType::Q4_K);
  check_pieces<quant::block_q5_K>(GgmlType::Q5_K);
  check_pieces<quant::block_q6_K>(GgmlType::Q6_K);
  check_pieces<quant::block_q8_K>(GgmlType::Q8_K);
}

TEST_CASE("the butterfly gives every lane the warp's total") {
  std::vector<float> lanes(32);
  for (int i = 0; i < 32; ++i) lanes[i] = static_cast<float>(i * i);
  for (float v : butterfly_sum(lanes)) CHECK(v == 10416.0f);
}

TEST_CASE("GEMV lanes cover every (chunk, piece) of a row exactly once") {
  for (int pieces : {1, 4, 16}) {
    for (int64_t n_chunks : {1, 2, 3, 7, 8, 33, 100}) {
      CAPTURE(pieces);
      CAPTURE(n_chunks);
      std::vector<int> seen(static_cast<size_t>(n_chunks * pieces), 0);
      for (int lane = 0; lane < 32; ++lane) {
        const GemvLane l = gemv_lane(lane, pieces);
        REQUIRE(l.chunks_per_step * pieces == 32);
        for (int64_t c = l.first_chunk; c < n_chunks; c += l.chunks_per_step) ++seen[c * pieces + l.piece];
      }
      for (int s : seen) REQUIRE(s == 1);
    }
  }
}

TEST_CASE("rope items rotate each rotated element of every head exactly once, normal and NeoX") {
  const int64_t n_tokens = 3, n_heads = 5, head_dim = 24;
  for (bool neox : {false, true}) {
    for (int64_t n_rot : {int64_t{8}, int64_t{24}}) {
      std::vector<int> seen(static_cast<size_t>(n_tokens * n_heads * head_dim), 0);
      for (int64_t i = 0; i < n_tokens * n_heads * (n_rot / 2); ++i) {
        const RopeItem it = rope_item(i, n_heads, head_dim, n_rot, neox);
        REQUIRE(it.first / (n_heads * head_dim) == it.t);
        REQUIRE(it.second - it.first == (neox ? n_rot / 2 : 1));
        REQUIRE(it.pair == (neox ? it.first % head_dim : (it.first % head_dim) / 2));
        ++seen[it.first];
        ++seen[it.second];
      }
      for (size_t e = 0; e < seen.size(); ++e) REQUIRE(seen[e] == (static_cast<int64_t>(e % head_dim) < n_rot ? 1 : 0));
    }
  }
}

TEST_CASE("rope cos/sin with YaRN and attn_factor match float64 ggml rope_yarn") {
  const int64_t n_rot = 64;
  const float base = 150000.0f, freq_scale = 1.0f / 32;
  const RopeYarn yarn{1.0f, 1.0f, 8.0f, 24.0f};  // gpt-oss-like: ramp over pairs 8..24
  for (int64_t pos : {0, 3, 500, 4000}) {
    for (int64_t pair = 0; pair < n_rot / 2; ++pair) {
      const double extrap = pos * std::pow(static_cast<double>(base), -2.0 * pair / n_rot);
      const double y = (pair - 8.0) / 16.0, ramp = 1.0 - std::min(1.0, std::max(0.0, y));
      const double angle = freq_scale * extrap * (1 - ramp) + extrap * ramp;
      const double mscale = 1.0 + 0.1 * std::log(1.0 / freq_scale);
      const RopeCosSin cs = rope_cos_sin(pos, pair, n_rot, base, freq_scale, 1.0f, yarn);
      const double tolerance = 2e-6 + 4e-7 * static_cast<double>(pos);
      REQUIRE(std::fabs(cs.cos - std::cos(angle) * mscale) <= tolerance);
      REQUIRE(std::fabs(cs.sin - std::sin(angle) * mscale) <= tolerance);
    }
  }
  // Without YaRN: attn_factor scales, and the angle is the plain one.
  const RopeCosSin plain = rope_cos_sin(10, 3, 64, 10000.0f, 0.5f, 1.0f, RopeYarn{0.0f, 0.5f, 0.0f, 0.0f});
  CHECK(plain.cos == doctest::Approx(0.5 * std::cos(rope_theta(10, 3, 64, 10000.0f, 0.5f, 1.0f))));
}

TEST_CASE("clamped swiglu follows gpt-oss's definition") {
  const float alpha = 1.702f, limit = 7.0f;
  for (float g : {-30.0f, -2.0f, 0.0f, 1.5f, 6.9f, 7.0f, 50.0f})
    for (float u : {-20.0f, -7.0f, -0.5f, 0.0f, 3.0f, 100.0f}) {
      const double x = std::min(static_cast<double>(g), 7.0), y = std::clamp(static_cast<double>(u), -7.0, 7.0);
      const double ref = x / (1.0 + std::exp(-alpha * x)) * (y + 1.0);
      CHECK(std::fabs(swiglu_clamped(g, u, alpha, limit) - ref) <= 1e-6 * (1 + std::fabs(ref)));
    }
}

TEST_CASE("kv_store offsets: plain caches by element, Q8_0 caches by block") {
  CHECK(kv_row_offset(0, 256) == 0);
  CHECK(kv_row_offset(17, 256) == 17 * 256);
  CHECK(kv_q8_0_first_block(17, 256) == 17 * 8);
  CHECK(grid_for(0, 256) == 1);
  CHECK(grid_for(257, 256) == 2);
  CHECK(grid_for(int64_t{1} << 40, 256) == 65536);  // grid-stride beyond
  // One warp per item: every item gets a warp, and less than one block is left over.
  for (int64_t items : {1, 3, 4, 5, 1000, 152064})
    for (int warps : {1, 4, 8}) {
      const int64_t launched = int64_t{blocks_for_warps(items, warps)} * warps;
      REQUIRE(launched >= items);
      REQUIRE(launched - items < warps);
    }
}

namespace {

// The attention kernels' arithmetic for one (token, head), on the host, with key splits and a
// sink: each split streams its keys (online softmax), then the merge weighs the partials.
std::vector<float> attention_split_merge(const float *q, const float *k, const float *v, int64_t row, int64_t head_dim,
                                         KeyRange keys, int n_splits, const float *sink, float scale) {
  std::vector<float> max(n_splits), sum(n_splits), acc(static_cast<size_t>(n_splits * head_dim), 0.0f);
  for (int s = 0; s < n_splits; ++s) {
    const KeyRange part = attention_split(keys, s, n_splits);
    OnlineSoftmax softmax;
    for (int64_t j = part.first; j < part.end; ++j) {
      float dot = 0;
      for (int64_t d = 0; d < head_dim; ++d) dot += q[d] * k[j * row + d];
      const SoftmaxStep step = online_softmax_add(softmax, dot * scale);
      for (int64_t d = 0; d < head_dim; ++d)
        acc[s * head_dim + d] = acc[s * head_dim + d] * step.rescale + step.weight * v[j * row + d];
    }
    max[s] = softmax.max;
    sum[s] = softmax.sum;
  }
  std::vector<float> out(head_dim);
  if (n_splits == 1) {  // the kernel's own finish
    OnlineSoftmax softmax{max[0], sum[0]};
    const float rescale = sink ? online_softmax_add_sink(softmax, *sink) : 1.0f;
    for (int64_t d = 0; d < head_dim; ++d) out[d] = acc[d] * rescale / softmax.sum;
    return out;
  }
  float m = sink ? *sink : -INFINITY;
  for (float x : max) m = std::max(m, x);
  float total = sink ? softmax_merge_weight(*sink, m) : 0.0f;
  std::vector<float> merged(head_dim, 0.0f);
  for (int s = 0; s < n_splits; ++s) {
    const float w = softmax_merge_weight(max[s], m);
    total += w * sum[s];
    for (int64_t d = 0; d < head_dim; ++d) merged[d] += w * acc[s * head_dim + d];
  }
  for (int64_t d = 0; d < head_dim; ++d) out[d] = merged[d] / total;
  return out;
}

}  // namespace

TEST_CASE("split attention with windows and sinks matches float64 softmax attention") {
  const int64_t head_dim = 64, n_keys = 700;
  const float scale = 0.125f;
  const std::vector<float> q = random_floats(head_dim, 41, 3.0f), k = random_floats(n_keys * head_dim, 42, 3.0f),
                           v = random_floats(n_keys * head_dim, 43);
  for (int64_t window : {int64_t{0}, int64_t{1}, int64_t{128}, int64_t{5000}}) {
    for (const float *sink : {static_cast<const float *>(nullptr), &q[3]}) {
      for (int n_splits : {1, 2, 7, 64}) {
        CAPTURE(window);
        CAPTURE(n_splits);
        const KeyRange keys = attention_keys(n_keys - 1, 0, window);  // the last position
        REQUIRE(keys.end == n_keys);
        REQUIRE(keys.first == (window > 0 && window < n_keys ? n_keys - window : 0));
        const std::vector<float> out =
            attention_split_merge(q.data(), k.data(), v.data(), head_dim, head_dim, keys, n_splits, sink, scale);
        std::vector<double> p;
        double max = sink ? *sink : -INFINITY, sum = 0;
        for (int64_t j = keys.first; j < keys.end; ++j) {
          double s = 0;
          for (int64_t d = 0; d < head_dim; ++d) s += static_cast<double>(q[d]) * k[j * head_dim + d];
          p.push_back(s * scale);
          max = std::max(max, p.back());
        }
        for (double &x : p) sum += (x = std::exp(x - max));
        if (sink) sum += std::exp(*sink - max);
        for (int64_t d = 0; d < head_dim; ++d) {
          double ref = 0;
          for (size_t j = 0; j < p.size(); ++j) ref += p[j] / sum * v[(keys.first + j) * head_dim + d];
          REQUIRE(std::fabs(out[d] - ref) <= 2e-4);
        }
      }
    }
  }
}

TEST_CASE("attention splits, items and key ranges tile the work exactly") {
  // Splits of a range are consecutive, cover it once, and may be empty only at the end.
  for (int64_t n : {1, 5, 64, 65, 1000})
    for (int n_splits : {1, 3, 64}) {
      const KeyRange keys{10, 10 + n};
      int64_t next = keys.first;
      for (int s = 0; s < n_splits; ++s) {
        const KeyRange part = attention_split(keys, s, n_splits);
        REQUIRE(part.first == next);
        REQUIRE(part.end >= part.first);
        next = part.end;
      }
      REQUIRE(next == keys.end);
    }
  // Work items: (t, head, split) once each, splits of a pair adjacent.
  const int64_t n_tokens = 3, n_head = 5;
  const int n_splits = 4;
  std::vector<int> seen(static_cast<size_t>(n_tokens * n_head * n_splits), 0);
  for (int64_t w = 0; w < n_tokens * n_head * n_splits; ++w) {
    const AttentionItem it = attention_item(w, n_head, n_splits);
    REQUIRE(((it.t * n_head + it.head) * n_splits + it.split) == w);
    ++seen[w];
  }
  // The split count: 1 for prompts, bounded by keys, scratch and the cap; partials always fit.
  CHECK(attention_splits(4096, 4096, 128, 1 << 20, 2112) == 1);
  CHECK(attention_splits(64, 4096, 128, 1 << 20, 2112) == 33);
  CHECK(attention_splits(64, 100, 128, 1 << 20, 2112) == 2);   // >= 64 keys per split
  CHECK(attention_splits(64, 4096, 128, 0, 2112) == 1);        // no scratch
  CHECK(attention_splits(1, 1 << 20, 128, 1 << 20, 100000) == kMaxAttentionSplits);
  for (int64_t items : {1, 8, 64, 512})
    for (uint64_t floats : {uint64_t{1000}, uint64_t{1} << 19}) {
      const int s = attention_splits(items, 8192, 128, floats, 2112);
      REQUIRE(s >= 1);
      if (s > 1) REQUIRE(static_cast<uint64_t>(items * s * attention_partial_floats(128)) <= floats);
    }
  CHECK(kv_head_of(5, 8, 2) == 1);
}

TEST_CASE("f16 row scaling: powers of two that keep every row inside f16 and change no rounding") {
  for (float amax : {1e-30f, 1e-6f, 0.3f, 1.0f, 8191.0f, 65504.0f, 1e6f, 3e38f}) {
    CAPTURE(amax);
    const int e = f16_row_exponent(amax);
    const float scaled = std::ldexp(amax, e);
    if (amax > 1e-29f) {  // the clamp keeps 2^e finite for the tiniest rows
      CHECK(scaled >= 8192.0f);
      CHECK(scaled < 16384.0f);
    }
    CHECK(std::isfinite(quant::f16_to_f32(quant::f32_to_f16(scaled))));
  }
  CHECK(f16_row_exponent(0.0f) == 0);
  CHECK(f16_row_exponent(INFINITY) == 0);
  CHECK(f16_row_exponent(NAN) == 0);
  // Where f16(x) is normal, scaling by 2^e and back changes nothing.
  const std::vector<float> x = random_floats(1000, 51, 4.0f);
  const int e = f16_row_exponent(16.0f);
  for (float v : x) {
    if (std::fabs(v) < 1e-4f) continue;
    REQUIRE(std::ldexp(quant::f16_to_f32(quant::f32_to_f16(std::ldexp(v, e))), -e) ==
            quant::f16_to_f32(quant::f32_to_f16(v)));
  }
}

// CudaDevice::matmul_batched's sequence on the host, with one byte buffer standing for the
// device scratch (so overlapping regions would corrupt the result): many token groups and row
// tiles, one token row large enough to overflow f16 unscaled.
TEST_CASE("batched matmul over several token groups and row tiles equals the direct product") {
  const int64_t k = 512, rows = 45, n_tokens = 37;
  const GgmlType type = GgmlType::Q4_K;
  const uint64_t w_row = row_bytes(type, k);
  const std::vector<float> w_f32 = random_floats(rows * k, 61, 0.05f);
  std::vector<uint8_t> w(w_row * rows);
  for (int64_t r = 0; r < rows; ++r) quant::quantize_row_ref(type, w_f32.data() + r * k, w.data() + r * w_row, k);
  std::vector<float> w_deq(rows * k);
  quant::dequantize_row_ref(type, w.data(), w_deq.data(), rows * k);
  std::vector<float> x = random_floats(n_tokens * k, 62, 2.0f);
  for (int64_t i = 0; i < k; ++i) x[5 * k + i] *= 1e6f;  // f16 overflows at 65504

  const uint64_t scratch_bytes = 24 << 10;
  const BatchedLayout l = batched_layout(scratch_bytes, k, rows, n_tokens, true, 2, false);
  REQUIRE(l.group > 1);
  REQUIRE(l.group < n_tokens);  // several groups ...
  REQUIRE(l.tile_rows > 1);
  REQUIRE(l.tile_rows < rows);  // ... and several tiles
  REQUIRE(l.x_bytes >= static_cast<uint64_t>(l.group * k * 2));
  REQUIRE(l.scale_bytes >= static_cast<uint64_t>(l.group * 4));
  REQUIRE(l.tile_offset >= l.x_bytes + l.scale_bytes);
  REQUIRE(l.tile_offset + static_cast<uint64_t>(l.tile_rows * k * 2) <= scratch_bytes);

  std::vector<std::byte> scratch(scratch_bytes);
  auto *x16 = reinterpret_cast<quant::f16_bits *>(scratch.data());
  auto *scales = reinterpret_cast<float *>(scratch.data() + l.x_bytes);
  auto *tile = reinterpret_cast<quant::f16_bits *>(scratch.data() + l.tile_offset);
  std::vector<float> y(n_tokens * rows, NAN);
  int tiles = 0;
  for_each_batched_tile(l, n_tokens, rows, [&](int64_t t0, int64_t n, int64_t r0, int64_t tile_rows) {
    ++tiles;
    if (r0 == 0)  // convert_f32_to_f16_scaled
      for (int64_t t = 0; t < n; ++t) {
        float amax = 0;
        for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(x[(t0 + t) * k + i]));
        const int e = f16_row_exponent(amax);
        for (int64_t i = 0; i < k; ++i) x16[t * k + i] = quant::f32_to_f16(std::ldexp(x[(t0 + t) * k + i], e));
        scales[t] = std::ldexp(1.0f, -e);
      }
    std::vector<float> rows_f32(tile_rows * k);  // dequantize_f16
    quant::dequantize_row_ref(type, w.data() + r0 * w_row, rows_f32.data(), tile_rows * k);
    for (int64_t i = 0; i < tile_rows * k; ++i) tile[i] = quant::f32_to_f16(rows_f32[i]);
    std::vector<float> a(tile_rows * k), b(n * k);  // what cuBLAS reads, as floats
    for (int64_t i = 0; i < tile_rows * k; ++i) a[i] = quant::f16_to_f32(tile[i]);
    for (int64_t i = 0; i < n * k; ++i) b[i] = quant::f16_to_f32(x16[i]);
    const GemmArgs g = row_major_gemm(tile_rows, k, n, rows);
    blas_gemm(g.transpose_a, g.transpose_b, g.m, g.n, g.k, a.data(), g.lda, b.data(), g.ldb,
              y.data() + t0 * rows + r0, g.ldc);
    if (r0 + tile_rows == rows)  // scale_rows
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) y[(t0 + t) * rows + r] *= scales[t];
  });
  CHECK(tiles == ((n_tokens + l.group - 1) / l.group) * ((rows + l.tile_rows - 1) / l.tile_rows));
  for (int64_t t = 0; t < n_tokens; ++t) {
    double err = 0, norm = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0;
      for (int64_t i = 0; i < k; ++i) ref += static_cast<double>(w_deq[r * k + i]) * x[t * k + i];
      REQUIRE(std::isfinite(y[t * rows + r]));
      err += (y[t * rows + r] - ref) * (y[t * rows + r] - ref);
      norm += ref * ref;
    }
    CAPTURE(t);
    CHECK(std::sqrt(err / norm) <= 2e-3);  // f16 rounding of weights and activations
  }
  // Layouts that cannot hold a tile say so; in-place weights take every row at once.
  CHECK(batched_layout(1000, 4096, 10, 10, true, 2, false).group == 0);
  CHECK(batched_layout(1 << 20, 4096, 300, 64, true, 2, true).tile_rows == 300);
  const BatchedLayout bf16 = batched_layout(1 << 20, 4096, 300, 64, false, 4, false);
  CHECK(bf16.x_bytes == 0);
  CHECK(bf16.group == 64);
  CHECK(bf16.tile_rows == (1 << 20) / (4096 * 4));
}
