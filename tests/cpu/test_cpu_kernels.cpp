// CPU kernels on random rows: SIMD vs scalar (bit-exact), vec_dot vs f64 references, activation
// quantization vs ggml's definition, matmul vs a double reference, and the thread pool.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "cpu/kernels.hpp"
#include "cpu/ops.hpp"
#include "cpu_test_util.hpp"
#include "vramfit/error.hpp"

using namespace vramfit;
using namespace vramfit::test;

namespace {

int64_t row_length(GgmlType type) {
  // Float types: a length with a tail (not a multiple of 16) to cover the scalar remainder.
  // Block types: groups of 8 blocks (the SIMD kernels reduce 8 blocks at once) and 3 more.
  const int64_t block = type_traits(static_cast<uint32_t>(type))->block_size;
  return block == 1 ? 4096 + 13 : 4096 + 3 * block;
}

std::vector<std::vector<std::byte>> sample_rows(GgmlType type, int64_t n, std::mt19937 &rng) {
  std::vector<std::vector<std::byte>> rows;
  for (int i = 0; i < 3; ++i) rows.push_back(random_row(rng, type, n));
  for (int i = 0; i < 3; ++i) rows.push_back(quantized_row(type, gaussian_row(rng, n, 0.02f)));
  return rows;
}

}  // namespace

TEST_CASE("this CPU's instruction sets are detected and the best one is active") {
  const auto isas = cpu::supported_isas();
  REQUIRE(!isas.empty());
  CHECK(isas.front() == cpu::Isa::scalar);
  CHECK(cpu::active_kernels().isa == isas.back());
  MESSAGE("kernels in use: " << cpu::isa_name(cpu::active_kernels().isa));
}

TEST_CASE("SIMD dequantization, of one row or of strided rows, is bit-exact with quant::dequantize_row_ref on every ISA") {
  IsaGuard guard;
  std::mt19937 rng(1);
  for (GgmlType type : compute_types()) {
    const int64_t n = row_length(type);
    for (const auto &row : sample_rows(type, n, rng)) {
      std::vector<float> ref(static_cast<size_t>(n));
      quant::dequantize_row_ref(type, row.data(), ref.data(), n);
      for (cpu::Isa isa : cpu::supported_isas()) {
        cpu::set_isa_override(isa);
        std::vector<float> got(static_cast<size_t>(n), -1.f);
        cpu::dequantize_row(type, row.data(), got.data(), n);
        INFO(type_name(type) << " on " << cpu::isa_name(isa));
        REQUIRE(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0);
      }
    }
    // dequantize_rows: the same rows a stride apart (4 bytes of gap), one call.
    const auto rows = sample_rows(type, n, rng);
    const size_t bytes = row_bytes(type, n), stride = bytes + 4;
    std::vector<std::byte> strided(rows.size() * stride, std::byte{0x7F});
    std::vector<float> ref(rows.size() * static_cast<size_t>(n));
    for (size_t r = 0; r < rows.size(); ++r) {
      std::memcpy(strided.data() + r * stride, rows[r].data(), bytes);
      quant::dequantize_row_ref(type, rows[r].data(), ref.data() + r * static_cast<size_t>(n), n);
    }
    for (cpu::Isa isa : cpu::supported_isas()) {
      cpu::set_isa_override(isa);
      std::vector<float> got(ref.size(), -1.f);
      cpu::dequantize_rows(type, strided.data(), stride, static_cast<int64_t>(rows.size()), got.data(), n);
      INFO(type_name(type) << " rows on " << cpu::isa_name(isa));
      REQUIRE(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("vec_dot on random rows: every ISA bit-identical, within the f64 and activation-rounding bounds") {
  std::mt19937 rng(2);
  for (GgmlType type : compute_types()) {
    const int64_t n = row_length(type);
    const auto x = gaussian_row(rng, n);
    for (const auto &row : sample_rows(type, n, rng)) check_vec_dot(type, row.data(), x);
  }
}

TEST_CASE("quantize_row_q8_K follows ggml: -127/max with the sign, round half to even, bsums") {
  std::mt19937 rng(5);
  auto x = gaussian_row(rng, 512);
  x[300] = -9.0f;   // block 1's largest magnitude is negative: iscale > 0, it maps to -127
  x[7] = 0.5f * 7;  // exact halves after scaling are rounded to even
  std::vector<quant::block_q8_K> y(2);
  cpu::quantize_row_q8_K(x.data(), y.data(), 512);
  for (int b = 0; b < 2; ++b) {
    float max = 0, amax = 0;
    for (int j = 0; j < 256; ++j)
      if (std::fabs(x[256 * b + j]) > amax) amax = std::fabs(x[256 * b + j]), max = x[256 * b + j];
    const float iscale = -127.f / max;
    CHECK(y[b].d == 1 / iscale);
    for (int j = 0; j < 256; ++j) {
      const float v = std::nearbyint(iscale * x[256 * b + j]);  // default mode: half to even
      CHECK(y[b].qs[j] == static_cast<int8_t>(std::min(127.f, v)));
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[b].qs[16 * g + l];
      CHECK(y[b].bsums[g] == sum);
    }
  }
  CHECK(y[1].qs[300 - 256] == -127);
  std::vector<float> zeros(256, 0.f);
  cpu::quantize_row_q8_K(zeros.data(), y.data(), 256);
  CHECK(y[0].d == 0.f);
  CHECK(std::all_of(y[0].qs, y[0].qs + 256, [](int8_t q) { return q == 0; }));
}

// Every ISA's table quantizes x to the scalar table's bytes (`quantize` names a Kernels member).
template <class Block>
void check_quantizer_on_every_isa(void (*cpu::Kernels::*quantize)(const float *, Block *, int64_t),
                                  const std::vector<float> &x) {
  const auto n = static_cast<int64_t>(x.size());
  constexpr size_t kBlock = std::is_same_v<Block, quant::block_q8_K> ? quant::QK_K : quant::QK8_0;
  std::vector<Block> expected(x.size() / kBlock), got(expected.size());
  (cpu::scalar_kernels().*quantize)(x.data(), expected.data(), n);
  for (cpu::Isa isa : cpu::supported_isas()) {
    (cpu::kernels_for(isa).*quantize)(x.data(), got.data(), n);
    INFO(cpu::isa_name(isa));
    CHECK(std::memcmp(got.data(), expected.data(), sizeof(Block) * got.size()) == 0);
  }
}

TEST_CASE("quantize_row_q8_K gives the same bytes on every ISA: sign ties, halves, NaN and zero blocks") {
  // Block 0 random; block 1 zero; block 2 with -5 then +5 (the first, negative, sets the sign)
  // and exact halves after scaling; block 3 with a NaN (skipped by the max) and its max last.
  std::mt19937 rng(13);
  auto x = gaussian_row(rng, 1024);
  std::fill(x.begin() + 256, x.begin() + 512, 0.f);
  for (int j = 0; j < 256; ++j) x[512 + j] = static_cast<float>(j % 11) * 0.25f - 1.25f;
  x[512 + 40] = -5.f;
  x[512 + 90] = 5.f;
  x[768 + 3] = NAN;
  x[768 + 255] = 7.f;
  check_quantizer_on_every_isa(&cpu::Kernels::quantize_row_q8_K, x);
}

TEST_CASE("quantize_row_q8_0 gives the same bytes on every ISA, ties and zero blocks included") {
  // Block 0 random, block 1 zero, block 2 with x * 127/amax exactly on .5 ties (amax 127: id 1).
  std::mt19937 rng(11);
  auto x = gaussian_row(rng, 96);
  std::fill(x.begin() + 32, x.begin() + 64, 0.f);
  for (int j = 0; j < 32; ++j) x[64 + j] = j == 0 ? -127.f : static_cast<float>(j % 9) - 4.5f;
  check_quantizer_on_every_isa(&cpu::Kernels::quantize_row_q8_0, x);
}

TEST_CASE("quantize_row_q8_0 follows ggml's x86 path: d = amax/127 as f16, q = round(x * 127/amax)") {
  std::mt19937 rng(6);
  const auto x = gaussian_row(rng, 64);
  std::vector<quant::block_q8_0> y(2);
  cpu::quantize_row_q8_0(x.data(), y.data(), 64);
  for (int b = 0; b < 2; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    CHECK(y[b].d == quant::f32_to_f16(amax / 127.f));
    for (int j = 0; j < 32; ++j) CHECK(y[b].qs[j] == static_cast<int8_t>(std::nearbyint(x[32 * b + j] * (127.f / amax))));
  }
}

TEST_CASE("matmul with 1 and 3 threads and 1 or 7 tokens matches a double reference") {
  std::mt19937 rng(7);
  const int64_t n_out = 37, n_in = 512;
  for (GgmlType type : compute_types()) {
    std::vector<std::byte> w;
    std::vector<std::vector<double>> w_rows;
    for (int64_t r = 0; r < n_out; ++r) {
      const auto row = quantized_row(type, gaussian_row(rng, n_in, 0.05f));
      w.insert(w.end(), row.begin(), row.end());
      w_rows.push_back(dequantized(type, row.data(), n_in));
    }
    for (int threads : {1, 3}) {
      cpu::ThreadPool pool(threads);
      for (int64_t n_tokens : {1, 7}) {
        std::vector<float> x;
        std::vector<std::vector<double>> a_rows;
        for (int64_t t = 0; t < n_tokens; ++t) {
          const auto xt = gaussian_row(rng, n_in);
          x.insert(x.end(), xt.begin(), xt.end());
          a_rows.push_back(activations_as_used(type, xt));
        }
        std::vector<float> y(static_cast<size_t>(n_out * n_tokens), NAN);
        cpu::matmul(pool, type, w.data(), n_out, n_in, x.data(), n_tokens, y.data());
        for (int64_t t = 0; t < n_tokens; ++t)
          for (int64_t r = 0; r < n_out; ++r) {
            const auto &wr = w_rows[static_cast<size_t>(r)];
            const auto &at = a_rows[static_cast<size_t>(t)];
            double w_max = 0, magnitude = 0;
            for (double v : wr) w_max = std::max(w_max, std::fabs(v));
            for (size_t k = 0; k < wr.size(); ++k) magnitude += std::fabs(at[k]) * (std::fabs(wr[k]) + w_max);
            INFO(type_name(type) << " threads " << threads << " token " << t << " row " << r);
            REQUIRE(std::fabs(y[static_cast<size_t>(t * n_out + r)] - dot(wr, at)) <= float_sum_bound(n_in, magnitude));
          }
      }
    }
  }
}

// cpu::matmul of the n_out rows of w with the n_tokens rows of x gives, for every token and row,
// cpu::vec_dot of that row with the token's activations, bit for bit (callers INFO the context).
void require_vec_dot_bits(cpu::ThreadPool &pool, GgmlType type, const std::vector<std::byte> &w, int64_t n_out,
                          int64_t n_in, const std::vector<float> &x, int64_t n_tokens) {
  const size_t w_bytes = row_bytes(type, n_in);
  std::vector<std::byte> act(row_bytes(cpu::vec_dot_type(type), n_in));
  std::vector<float> y(static_cast<size_t>(n_out * n_tokens), NAN);
  cpu::matmul(pool, type, w.data(), n_out, n_in, x.data(), n_tokens, y.data());
  for (int64_t t = 0; t < n_tokens; ++t) {
    cpu::quantize_activations(type, x.data() + t * n_in, act.data(), n_in);
    for (int64_t r = 0; r < n_out; ++r) {
      const float expected = cpu::vec_dot(type, n_in, w.data() + static_cast<size_t>(r) * w_bytes, act.data());
      const float got = y[static_cast<size_t>(t * n_out + r)];
      INFO(type_name(type) << " n_in " << n_in << ", token " << t << " row " << r << ": " << got << " vs " << expected);
      REQUIRE(std::memcmp(&got, &expected, sizeof got) == 0);
    }
  }
}

TEST_CASE("matmul over tiles of tokens gives vec_dot's bits for every token, type and ISA") {
  // 19 tokens: two tiles of cpu::kTileTokens and a remainder; 21 rows: a band of 16 and a rest.
  // Token 5 is constant (every Q8 quant at -127: the largest products), token 9 all zero.
  IsaGuard guard;
  std::mt19937 rng(8);
  const int64_t n_out = 21, n_in = 1024, n_tokens = 19;
  std::vector<float> x;
  for (int64_t t = 0; t < n_tokens; ++t) {
    auto xt = gaussian_row(rng, n_in);
    if (t == 5) std::fill(xt.begin(), xt.end(), 1.f);
    if (t == 9) std::fill(xt.begin(), xt.end(), 0.f);
    x.insert(x.end(), xt.begin(), xt.end());
  }
  for (GgmlType type : compute_types()) {
    const std::vector<std::byte> w = mixed_rows(rng, type, n_out, n_in);
    for (cpu::Isa isa : cpu::supported_isas()) {
      cpu::set_isa_override(isa);
      for (int threads : {1, 2}) {
        cpu::ThreadPool pool(threads);
        INFO(cpu::isa_name(isa) << ", " << threads << " threads");
        require_vec_dot_bits(pool, type, w, n_out, n_in, x, n_tokens);
      }
    }
  }
}

TEST_CASE("matmul_many gives each matrix matmul's bits: mixed types and inputs, ragged row counts, 1 to 9 tokens") {
  // Q4_K and Q6_K share Q8_K activations, Q8_0 has its own; the second Q4_K reads another input
  // (prepared separately); 37 and 5 rows end bands and tiles part way; 1 token takes the row
  // kernels, 3 the tiled path, 9 the panels.
  IsaGuard guard;
  std::mt19937 rng(21);
  const int64_t n_in = 512;
  const GgmlType types[] = {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q6_K, GgmlType::F16, GgmlType::Q4_K};
  const int64_t rows[] = {37, 64, 5, 24, 16};
  constexpr int kProducts = 5;
  std::vector<std::vector<std::byte>> w;
  for (int i = 0; i < kProducts; ++i) w.push_back(mixed_rows(rng, types[i], rows[i], n_in));
  for (int64_t n_tokens : {1, 3, 9}) {
    const auto x = gaussian_row(rng, n_in * n_tokens), other_x = gaussian_row(rng, n_in * n_tokens);
    for (cpu::Isa isa : cpu::supported_isas()) {
      cpu::set_isa_override(isa);
      for (int threads : {1, 2, 3}) {
        cpu::ThreadPool pool(threads);
        std::vector<std::vector<float>> got(kProducts), expected(kProducts);
        std::vector<cpu::MatmulTask> tasks;
        for (int i = 0; i < kProducts; ++i) {
          const float *input = i == kProducts - 1 ? other_x.data() : x.data();
          got[i].assign(static_cast<size_t>(rows[i] * n_tokens), NAN);
          expected[i].assign(got[i].size(), NAN);
          tasks.push_back({types[i], w[i].data(), rows[i], input, got[i].data()});
          cpu::matmul(pool, types[i], w[i].data(), rows[i], n_in, input, n_tokens, expected[i].data());
        }
        cpu::matmul_many(pool, tasks, n_in, n_tokens);
        for (int i = 0; i < kProducts; ++i) {
          INFO("product " << i << ", " << type_name(types[i]) << " on " << cpu::isa_name(isa) << ", " << threads
                          << " threads, " << n_tokens << " tokens");
          REQUIRE(std::memcmp(got[i].data(), expected[i].data(), got[i].size() * sizeof(float)) == 0);
        }
      }
    }
  }
}

TEST_CASE("matmul of one token over 8-row tiles gives vec_dot's bits for 32-weight types, odd block counts too") {
  // Rows of 1, 2, 3, 5 and 7 blocks (the two-block path and its one-block tail), 19 rows: two
  // tiles of cpu::kRowTile and a remainder; token 1 holds the largest quants (every |q| = 127).
  IsaGuard guard;
  std::mt19937 rng(12);
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::MXFP4})
    for (int64_t n_in : {32, 64, 96, 160, 224}) {
      const int64_t n_out = 19;
      const std::vector<std::byte> w = mixed_rows(rng, type, n_out, n_in);
      for (int token = 0; token < 2; ++token) {
        const auto x = token == 0 ? gaussian_row(rng, n_in) : std::vector<float>(static_cast<size_t>(n_in), -1.f);
        for (cpu::Isa isa : cpu::supported_isas()) {
          cpu::set_isa_override(isa);
          cpu::ThreadPool pool(1);
          INFO(cpu::isa_name(isa) << ", token " << token);
          require_vec_dot_bits(pool, type, w, n_out, n_in, x, 1);
        }
      }
    }
}

TEST_CASE("panels of 32-weight types give vec_dot's bits for odd block counts (blocks packed in pairs)") {
  // 9 tokens (a panel tile and a tail), 21 rows (a panel and a partial one), 1, 3 and 5 blocks.
  IsaGuard guard;
  std::mt19937 rng(31);
  const int64_t n_out = 21, n_tokens = 9;
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::MXFP4})
    for (int64_t n_in : {32, 96, 160}) {
      const std::vector<std::byte> w = mixed_rows(rng, type, n_out, n_in);
      const auto x = gaussian_row(rng, n_in * n_tokens);
      for (cpu::Isa isa : cpu::supported_isas()) {
        cpu::set_isa_override(isa);
        cpu::ThreadPool pool(2);
        INFO(cpu::isa_name(isa));
        require_vec_dot_bits(pool, type, w, n_out, n_in, x, n_tokens);
      }
    }
}

TEST_CASE("matmul and the kernels refuse unsupported types and ragged rows, naming them") {
  cpu::ThreadPool pool(1);
  std::vector<float> x(64), y(1);
  std::vector<std::byte> w(1024);
  CHECK_THROWS_WITH_AS(cpu::matmul(pool, GgmlType::IQ2_XS, w.data(), 1, 256, x.data(), 1, y.data()),
                       doctest::Contains("IQ2_XS"), Error);
  CHECK_THROWS_WITH_AS(cpu::matmul(pool, GgmlType::Q4_K, w.data(), 1, 100, x.data(), 1, y.data()),
                       doctest::Contains("Q4_K block size 256"), Error);
  CHECK_THROWS_AS(cpu::dequantize_row(GgmlType::Q8_0, w.data(), x.data(), 33), Error);
}

TEST_CASE("thread pool covers every index exactly once, propagates exceptions, and nests") {
  for (int threads : {1, 2, 5}) {
    cpu::ThreadPool pool(threads);
    CHECK(pool.size() == threads);
    for (auto split : {cpu::ThreadPool::Split::even, cpu::ThreadPool::Split::streaming})
      for (int64_t n : {0, 1, 3, 4, 39, 40, 41, 1000, 100003}) {  // streaming has a tail from 2 x threads x 4
        CAPTURE(n);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, [&](int64_t b, int64_t e) {
          REQUIRE(b < e);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        }, split);
        CHECK(std::all_of(hits.begin(), hits.end(), [](const std::atomic<int> &h) { return h.load() == 1; }));
      }
    CHECK_THROWS_AS(pool.parallel_for(10, [](int64_t b, int64_t) { if (b == 0) throw std::runtime_error("boom"); }),
                    std::runtime_error);
    std::atomic<int64_t> total{0};
    pool.parallel_for(4, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) pool.parallel_for(10, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
    });
    CHECK(total == 40);
  }
}

TEST_CASE("thread pool hands over thousands of back-to-back jobs and jobs after an idle pause") {
  // Workers spin between jobs, then sleep: each job must be seen exactly once either way (a lost
  // wake-up hangs here, a double run breaks the count).
  for (int threads : {2, 3}) {
    cpu::ThreadPool pool(threads);
    int64_t total = 0;
    for (int job = 0; job < 20000; ++job) {
      std::atomic<int64_t> sum{0};
      pool.parallel_for(threads, [&](int64_t b, int64_t e) { sum += e - b; });
      total += sum.load();
      if (job % 5000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let the workers sleep
    }
    CHECK(total == 20000 * threads);
  }
}

// ggml_vec_dot_mxfp4_q8_0_generic, transcribed: per block d = fp16(y.d) * e8m0_half(x.e), the
// integer products of the low and high halves summed, then sumf += d * (sumi1 + sumi2).
TEST_CASE("vec_dot of MXFP4 with Q8_0 activations is ggml's arithmetic, bit for bit, on every ISA") {
  IsaGuard guard;
  std::mt19937 rng(11);
  const int64_t n = 2880;  // gpt-oss-120b's n_embd: 90 blocks, groups of 8 and a tail
  const auto x = gaussian_row(rng, n);
  for (const auto &row : {random_row(rng, GgmlType::MXFP4, n), quantized_row(GgmlType::MXFP4, gaussian_row(rng, n, 0.02f))}) {
    std::vector<quant::block_q8_0> act(static_cast<size_t>(n / 32));
    cpu::quantize_row_q8_0(x.data(), act.data(), n);
    const auto *w = reinterpret_cast<const quant::block_mxfp4 *>(row.data());
    static const int8_t kvalues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    float expected = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
      const float d = quant::f16_to_f32(act[ib].d) * quant::e8m0_to_f32_half(w[ib].e);
      int sumi1 = 0, sumi2 = 0;
      for (int j = 0; j < 16; ++j) {
        sumi1 += act[ib].qs[j] * kvalues[w[ib].qs[j] & 0xf];
        sumi2 += act[ib].qs[j + 16] * kvalues[w[ib].qs[j] >> 4];
      }
      expected += d * static_cast<float>(sumi1 + sumi2);
    }
    for (cpu::Isa isa : cpu::supported_isas()) {
      cpu::set_isa_override(isa);
      const float got = cpu::vec_dot_mxfp4_q8_0(n, row.data(), act.data());
      INFO(cpu::isa_name(isa) << ": " << got << " vs " << expected);
      CHECK(std::memcmp(&got, &expected, sizeof got) == 0);
    }
  }
}
