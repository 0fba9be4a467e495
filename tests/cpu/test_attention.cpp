// attention_head_blocked (keys in blocks of cpu::kKeyBlock, lanes are keys) against attention_head
// (one dot per key): the same arithmetic per (query, key), so the same bits, for head sizes with
// and without a tail of 8, windows and key counts that do not fall on a block boundary, sinks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <bit>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/nn.hpp"
#include "cpu_test_util.hpp"

using namespace vramfit;
using namespace vramfit::test;

namespace {

// The keys of positions [0, n_keys) of every KV head in blocks, head after head.
std::vector<float> blocked_keys(const std::vector<float> &k, int64_t n_keys, int64_t n_head_kv, int64_t head_dim) {
  const int64_t stride = n_head_kv * head_dim, n_blocks = (n_keys + cpu::kKeyBlock - 1) / cpu::kKeyBlock;
  std::vector<float> blocks(static_cast<size_t>(n_head_kv * n_blocks * head_dim * cpu::kKeyBlock), -1.f);
  for (int64_t h = 0; h < n_head_kv; ++h)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t pos = b * cpu::kKeyBlock, n_block_keys = std::min(cpu::kKeyBlock, n_keys - pos);
      cpu::block_keys(k.data() + pos * stride + h * head_dim, stride, head_dim, n_block_keys,
                      blocks.data() + (h * n_blocks + b) * head_dim * cpu::kKeyBlock);
    }
  return blocks;
}

}  // namespace

TEST_CASE("attention over blocked keys gives attention_head's bits: head sizes, GQA, windows, sinks") {
  std::mt19937 rng(7);
  const int64_t n_head_kv = 2, n_keys = 45;  // two whole blocks and 13 keys
  for (int64_t head_dim : {64, 80, 128, 72, 36, 5}) {
    const int64_t stride = n_head_kv * head_dim;
    const std::vector<float> k = gaussian_row(rng, n_keys * stride), v = gaussian_row(rng, n_keys * stride);
    const std::vector<float> blocks = blocked_keys(k, n_keys, n_head_kv, head_dim);
    const int64_t head_floats = static_cast<int64_t>(blocks.size()) / n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    for (int64_t group : {1, 8}) {
      const std::vector<float> q = gaussian_row(rng, n_head_kv * group * head_dim, 2.0f);
      for (int64_t h = 0; h < n_head_kv * group; ++h)
        for (int64_t n_kv : {1, 16, 17, 31, 45})
          for (int64_t window : {0, 7, 20}) {
            const int64_t first = window > 0 ? std::max<int64_t>(0, n_kv - window) : 0;
            const float sink = 0.5f * static_cast<float>(h) - 1.0f;
            for (const float *sink_ptr : {static_cast<const float *>(nullptr), &sink}) {
              CAPTURE(head_dim);
              CAPTURE(group);
              CAPTURE(h);
              CAPTURE(n_kv);
              CAPTURE(first);
              CAPTURE(sink_ptr != nullptr);
              const float *qh = q.data() + h * head_dim;
              const int64_t kv_head = h / group;
              std::vector<float> scores_ref(n_keys), out_ref(head_dim), scores(48), out(head_dim);
              cpu::attention_head(qh, k.data() + kv_head * head_dim, v.data() + kv_head * head_dim, first, n_kv,
                                  stride, head_dim, scale, sink_ptr, scores_ref.data(), out_ref.data());
              cpu::attention_head_blocked(qh, blocks.data() + kv_head * head_floats, v.data() + kv_head * head_dim,
                                          first, n_kv, stride, head_dim, scale, sink_ptr, scores.data(), out.data());
              REQUIRE(std::memcmp(scores.data() + first, scores_ref.data() + first,
                                  static_cast<size_t>(n_kv - first) * sizeof(float)) == 0);
              REQUIRE(std::memcmp(out.data(), out_ref.data(), out.size() * sizeof(float)) == 0);
            }
          }
    }
  }
}

TEST_CASE("attention of query heads sharing a KV head gives attention_head's bits, fed whole or in chunks") {
  std::mt19937 rng(11);
  const int64_t n_head_kv = 2, n_keys = 45;
  for (int64_t head_dim : {64, 128, 80, 8, 256}) {
    const int64_t stride = n_head_kv * head_dim;
    const std::vector<float> k = gaussian_row(rng, n_keys * stride), v = gaussian_row(rng, n_keys * stride);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    for (int64_t n_queries : {1, 3, 4, 7, 8}) {
      const std::vector<float> q = gaussian_row(rng, n_queries * head_dim, 2.0f);
      std::vector<float> sinks(static_cast<size_t>(n_queries));
      for (int64_t g = 0; g < n_queries; ++g) sinks[static_cast<size_t>(g)] = 0.5f * static_cast<float>(g) - 1.0f;
      for (int64_t n_kv : {1, 2, 17, 45})
        for (int64_t window : {0, 7})
          for (int64_t chunk : {int64_t{1000}, int64_t{5}, int64_t{16}})
            for (const float *sink_ptr : {static_cast<const float *>(nullptr), static_cast<const float *>(sinks.data())}) {
              CAPTURE(head_dim);
              CAPTURE(n_queries);
              CAPTURE(n_kv);
              CAPTURE(window);
              CAPTURE(chunk);
              const int64_t first = window > 0 ? std::max<int64_t>(0, n_kv - window) : 0;
              const int64_t kv_head = 1;
              const float *kh = k.data() + kv_head * head_dim, *vh = v.data() + kv_head * head_dim;
              const int64_t scores_stride = 48;
              std::vector<float> scores(static_cast<size_t>(cpu::kMaxSharedQueries * scores_stride));
              std::vector<float> out(static_cast<size_t>(n_queries * head_dim), -7.f);
              for (int64_t c = first; c < n_kv; c += chunk)
                cpu::shared_kv_scores(q.data(), n_queries, kh + c * stride, std::min(chunk, n_kv - c), stride, head_dim,
                                      scale, scores.data() + c, scores_stride);
              cpu::softmax_rows(scores.data(), scores_stride, n_queries, first, n_kv, sink_ptr);
              for (int64_t c = first; c < n_kv; c += chunk)
                cpu::shared_kv_values(scores.data() + c, scores_stride, n_queries, vh + c * stride,
                                      std::min(chunk, n_kv - c), stride, head_dim, c > first, out.data());
              for (int64_t g = 0; g < n_queries; ++g) {
                CAPTURE(g);
                std::vector<float> scores_ref(n_keys), out_ref(static_cast<size_t>(head_dim));
                cpu::attention_head(q.data() + g * head_dim, kh, vh, first, n_kv, stride, head_dim, scale,
                                    sink_ptr ? sink_ptr + g : nullptr, scores_ref.data(), out_ref.data());
                REQUIRE(std::memcmp(scores.data() + g * scores_stride + first, scores_ref.data() + first,
                                    static_cast<size_t>(n_kv - first) * sizeof(float)) == 0);
                REQUIRE(std::memcmp(out.data() + g * head_dim, out_ref.data(), out_ref.size() * sizeof(float)) == 0);
              }
            }
    }
  }
}

TEST_CASE("block_keys puts key l of a block in lane l, dimension-major, zeros past the last key") {
  const int64_t head_dim = 3, stride = 5, n_keys = 2;
  std::vector<float> k(static_cast<size_t>(n_keys * stride));
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i + 1);
  std::vector<float> block(static_cast<size_t>(head_dim * cpu::kKeyBlock), -1.f);
  cpu::block_keys(k.data(), stride, head_dim, n_keys, block.data());
  for (int64_t d = 0; d < head_dim; ++d)
    for (int64_t l = 0; l < cpu::kKeyBlock; ++l)
      CHECK(block[d * cpu::kKeyBlock + l] == (l < n_keys ? k[l * stride + d] : 0.0f));
}

TEST_CASE("swiglu's vectorized exponential: within 3 ulp of float64 over [-100, 100], Inf and NaN as expf gives them") {
  // Every 4099th float in [-100, 100] (both signs, every binade down to the subnormals), the
  // overflow edge of e^-g near g = -88.72, and the specials.
  std::vector<float> gate;
  for (uint32_t bits = 0; bits < 0x42c80000u; bits += 4099)
    for (float sign : {1.f, -1.f}) gate.push_back(sign * std::bit_cast<float>(bits));
  for (float g : {-88.7f, -88.72f, -88.7228f, -88.72284f, -88.73f, -87.f, 87.f, 88.7228f, 0.f, -0.f})
    gate.push_back(g);
  const float specials[] = {INFINITY, -INFINITY, NAN};
  gate.insert(gate.end(), std::begin(specials), std::end(specials));
  const std::vector<float> up(gate.size(), 1.f);
  std::vector<float> out(gate.size());
  cpu::swiglu(gate.data(), up.data(), static_cast<int64_t>(gate.size()), out.data());
  int checked = 0;
  for (size_t i = 0; i + std::size(specials) < gate.size(); ++i) {
    const double g = gate[i], e = std::exp(-g);
    const double expected = e > FLT_MAX ? 0.0 : g / (1.0 + e);  // e^-g overflows a float: g / Inf
    INFO("g = " << gate[i] << ": " << out[i] << " vs " << expected);
    REQUIRE(std::fabs(out[i] - expected) <= 3 * 0x1p-24 * std::fabs(expected) + 1e-40);
    ++checked;
  }
  CHECK(checked > 500000);
  const size_t s = gate.size() - std::size(specials);
  CHECK(out[s] == INFINITY);       // inf / (1 + 0)
  CHECK(std::isnan(out[s + 1]));   // -inf / (1 + inf), as with expf
  CHECK(std::isnan(out[s + 2]));
}
