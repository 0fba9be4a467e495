#include "cpu/nn.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

// The hottest loops of a long prefill (attention, softmax): compiled for wider SIMD too, picked at
// load time. The arithmetic (and so the result) is the same in every clone. Not under
// ThreadSanitizer: it instruments the clones' resolver, which the dynamic loader runs before TSan
// is set up (a crash at start-up).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_THREAD__)
#define VRAMFIT_SIMD_CLONES [[gnu::target_clones("avx512f", "avx2", "default")]]
#define VRAMFIT_HAVE_SIMD_CLONES
#else
#define VRAMFIT_SIMD_CLONES
#endif

namespace vramfit::cpu {

void rms_norm_row(const float *x, const float *w, int64_t n, float eps, float *y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  // Two roundings, like ggml's rms_norm followed by mul.
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void rope_cache(int64_t pos, int64_t n_rot, float freq_base, float freq_scale,
                const float *freq_factors, const RopeYarn &yarn, float *cache) {
  // ggml_rope_cache_init: theta_i = pos * base^(-2i/n_rot), by repeated multiplication.
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float factor = freq_factors ? freq_factors[i] : 1.0f;
    const float theta_extrap = theta / factor;
    float angle = freq_scale * theta_extrap;
    float mscale = yarn.attn_factor;
    if (yarn.ext_factor != 0.0f) {  // ggml's rope_yarn: ramp between interpolation and extrapolation
      const float y = (static_cast<float>(i) - yarn.corr_low) / std::max(0.001f, yarn.corr_high - yarn.corr_low);
      const float ramp_mix = (1.0f - std::min(1.0f, std::max(0.0f, y))) * yarn.ext_factor;
      angle = angle * (1.0f - ramp_mix) + theta_extrap * ramp_mix;
      mscale *= 1.0f + 0.1f * std::log(1.0f / freq_scale);
    }
    cache[2 * i] = std::cos(angle) * mscale;
    cache[2 * i + 1] = std::sin(angle) * mscale;
    theta *= theta_scale;
  }
}

void rope_row(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cache) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float *head = x + h * head_dim;
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const float c = cache[2 * i], s = cache[2 * i + 1];
      const float x0 = head[2 * i], x1 = head[2 * i + 1];
      head[2 * i] = x0 * c - x1 * s;
      head[2 * i + 1] = x0 * s + x1 * c;
    }
  }
}

void rope_row_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cache) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float *head = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float c = cache[2 * i], s = cache[2 * i + 1];
      const float x0 = head[i], x1 = head[i + half];
      head[i] = x0 * c - x1 * s;
      head[i + half] = x0 * s + x1 * c;
    }
  }
}

namespace {

// e^x = p * 2^n for x in [-88, 88.73], in plain float arithmetic the compiler vectorizes, where a
// call to expf cannot be: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r is exact),
// p = e^r by its degree-7 Taylor polynomial (truncation < 6e-9 relative on that range; within 2
// ulp of expf with the roundings). Every ISA clone does the same operations, so the results
// are identical.
struct ExpParts {
  float p, n;
};
inline ExpParts exp_parts(float x) {
  // Round to nearest by the 1.5 * 2^23 trick: plain arithmetic, where nearbyint may be a call.
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  return {p, n};
}

// 2^k as a float, 0 below 2^-126.
inline float pow2(int32_t k) { return std::bit_cast<float>(static_cast<uint32_t>(k > -127 ? k + 127 : 0) << 23); }

// e^x for x <= 0 (softmax's shifted logits). Below -87 (2^n subnormal) it gives 0, as softmax
// needs; NaN stays NaN.
inline float exp_nonpositive(float x) {
  const ExpParts e = exp_parts(x > -88.f ? x : -88.f);  // keeps n in range (NaN too; restored below)
  const float value = x < -87.f ? 0.f : e.p * pow2(static_cast<int32_t>(e.n));
  return x != x ? x : value;
}

// 1 + e^z, the denominator of a sigmoid: 2^n built as 2^(n - 1) * 2, so n = 128 stays finite;
// beyond 88.72, +Inf, as expf gives. Below -87 e^z is 0, where expf gives a subnormal: 1 + either
// is 1. NaN stays NaN.
inline float one_plus_exp(float z) {
  const ExpParts e = exp_parts(z > -88.f ? (z < 88.72283f ? z : 88.72283f) : -88.f);  // NaN: -88, restored below
  float value = (e.p * pow2(static_cast<int32_t>(e.n) - 1)) * 2.f;
  if (z > 88.7228f) value = std::numeric_limits<float>::infinity();
  if (z < -87.f) value = 0.f;
  return z != z ? z : 1.f + value;
}

// GCC's vector extension: the arithmetic of n float lanes, lowered to each clone's registers.
using Lanes4 = float __attribute__((vector_size(16)));
using Lanes8 = float __attribute__((vector_size(32)));
using Lanes16 = float __attribute__((vector_size(64)));

// max(-inf, x[0], ..., x[n-1]) with std::max's comparison (NaNs skipped), four running maxima: a
// maximum does not round, so the order changes at most the sign of a zero result, which
// exp(x - max) ignores. (GCC keeps a float max reduction scalar, one dependent vmaxss per element.)
[[gnu::always_inline]] inline float max_of(const float *x, int64_t n) {
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  Lanes4 lanes = {kMinusInf, kMinusInf, kMinusInf, kMinusInf}, next;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    std::memcpy(&next, x + i, sizeof next);
    lanes = lanes < next ? next : lanes;
  }
  float max = std::max(std::max(lanes[0], lanes[1]), std::max(lanes[2], lanes[3]));
  for (; i < n; ++i) max = std::max(max, x[i]);
  return max;
}

// Inlined into each clone of its callers, so its loops get their SIMD width.
[[gnu::always_inline]] inline void softmax_inline(float *x, int64_t n, const float *sink) {
  float max = max_of(x, n);
  if (sink) max = std::max(max, *sink);
  for (int64_t i = 0; i < n; ++i) x[i] = exp_nonpositive(x[i] - max);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  if (sink) sum += static_cast<double>(exp_nonpositive(*sink - max));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace

VRAMFIT_SIMD_CLONES
void softmax(float *x, int64_t n, const float *sink) { softmax_inline(x, n, sink); }

namespace {

// Eight independent partial sums: the compiler turns them into SIMD lanes (a single running sum
// would serialise every addition).
inline float dot(const float *a, const float *b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// softmax(scores[first..n_kv), sink), then out = sum_p scores[p] * v_p: the part of attention after
// the scores, shared by both layouts of the keys.
[[gnu::always_inline]] inline void softmax_weighted_values(const float *v, int64_t first, int64_t n_kv,
                                                           int64_t stride, int64_t head_dim, const float *sink,
                                                           float *scores, float *out) {
  softmax_inline(scores + first, n_kv - first, sink);
  // out[d] = sum_p scores[p] * v_p[d], 64 dimensions at a time in registers across the keys (a
  // running sum in memory waits on store forwarding at every key); the same additions in the
  // same order as one pass over out.
  constexpr int64_t kBlock = 64;
  int64_t d0 = 0;
  for (; d0 + kBlock <= head_dim; d0 += kBlock) {
    float acc[kBlock] = {};
    for (int64_t p = first; p < n_kv; ++p) {
      const float *vp = v + p * stride + d0;
      const float a = scores[p];
      for (int64_t j = 0; j < kBlock; ++j) acc[j] += a * vp[j];
    }
    std::copy(acc, acc + kBlock, out + d0);
  }
  if (d0 == head_dim) return;  // head_dim 64, 128: no remainder
  std::fill(out + d0, out + head_dim, 0.0f);
  for (int64_t p = first; p < n_kv; ++p) {
    const float *vp = v + p * stride;
    const float a = scores[p];
    for (int64_t d = d0; d < head_dim; ++d) out[d] += a * vp[d];
  }
}

// dot(q, k, head_dim) * scale for the keys in the lanes of Lanes, from one block (block[d][lane],
// dimension d's lanes kKeyBlock floats apart): the same products, the same eight partial sums in
// the same order, the same reduction tree and tail, so the same bits, but as lanewise vector
// arithmetic with no horizontal sums. GCC's vector extension, not loops over float arrays: GCC
// vectorizes those across the partial sums (shuffles) instead of across the keys.
template <typename Lanes>
[[gnu::always_inline]] inline void block_scores(const float *q, const float *block, int64_t head_dim, float scale,
                                                float *scores) {
  Lanes acc[8] = {}, keys;
  int64_t i = 0;
  for (; i + 8 <= head_dim; i += 8)
    for (int64_t j = 0; j < 8; ++j) {
      std::memcpy(&keys, block + (i + j) * kKeyBlock, sizeof keys);
      acc[j] += q[i + j] * keys;
    }
  Lanes sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < head_dim; ++i) {
    std::memcpy(&keys, block + i * kKeyBlock, sizeof keys);
    sum += q[i] * keys;
  }
  sum *= scale;
  std::memcpy(scores, &sum, sizeof sum);
}

// The scores of the blocks [first_block, end_block), Lanes keys at a time.
template <typename Lanes>
[[gnu::always_inline]] inline void blocked_scores(const float *q, const float *k_blocks, int64_t first_block,
                                                  int64_t end_block, int64_t head_dim, float scale, float *scores) {
  constexpr int64_t kLanes = sizeof(Lanes) / sizeof(float);
  for (int64_t b = first_block; b < end_block; ++b)
    for (int64_t l = 0; l < kKeyBlock; l += kLanes)
      block_scores<Lanes>(q, k_blocks + b * head_dim * kKeyBlock + l, head_dim, scale, scores + b * kKeyBlock + l);
}

// Whether the running clone of a VRAMFIT_SIMD_CLONES function has 512-bit (avx512f) or 256-bit
// (avx2) registers: the clones' resolver picks them by the same test. A vector wider than the
// registers would live in memory (GCC splits its operations but not its storage).
inline bool clone_has_avx512() {
#ifdef VRAMFIT_HAVE_SIMD_CLONES
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}
inline bool clone_has_avx2() {
#ifdef VRAMFIT_HAVE_SIMD_CLONES
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

}  // namespace

VRAMFIT_SIMD_CLONES
void attention_head(const float *q, const float *k, const float *v, int64_t first, int64_t n_kv,
                    int64_t stride, int64_t head_dim, float scale, const float *sink, float *scores,
                    float *out) {
  for (int64_t p = first; p < n_kv; ++p) scores[p] = dot(q, k + p * stride, head_dim) * scale;
  softmax_weighted_values(v, first, n_kv, stride, head_dim, sink, scores, out);
}

void block_keys(const float *k, int64_t stride, int64_t head_dim, int64_t n_keys, float *block) {
  for (int64_t d = 0; d < head_dim; ++d)
    for (int64_t l = 0; l < kKeyBlock; ++l) block[d * kKeyBlock + l] = l < n_keys ? k[l * stride + d] : 0.0f;
}

VRAMFIT_SIMD_CLONES
void attention_head_blocked(const float *q, const float *k_blocks, const float *v, int64_t first, int64_t n_kv,
                            int64_t v_stride, int64_t head_dim, float scale, const float *sink, float *scores,
                            float *out) {
  // Whole blocks: the scores before `first` and from n_kv up to the block's end are computed
  // (the padding is zeros) and never read.
  const int64_t first_block = first / kKeyBlock, end_block = (n_kv + kKeyBlock - 1) / kKeyBlock;
  if (clone_has_avx512()) blocked_scores<Lanes16>(q, k_blocks, first_block, end_block, head_dim, scale, scores);
  else if (clone_has_avx2()) blocked_scores<Lanes8>(q, k_blocks, first_block, end_block, head_dim, scale, scores);
  else blocked_scores<Lanes4>(q, k_blocks, first_block, end_block, head_dim, scale, scores);
  softmax_weighted_values(v, first, n_kv, v_stride, head_dim, sink, scores, out);
}


namespace {

// Lanes (a0+a1, a2+a3, ..., b0+b1, b2+b3, ...): one level of dot()'s reduction tree for every
// vector at once. (References, not values: a vector argument's ABI depends on the clone.)
template <typename Lanes>
[[gnu::always_inline]] inline void pair_sums(const Lanes &a, const Lanes &b, Lanes &sums) {
  if constexpr (sizeof(Lanes) == sizeof(Lanes8))
    sums = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14) +
           __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
  else
    sums = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
           __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

// scores[g * scores_stride + i] = dot(q_g, k_i, head_dim) * scale for the n_queries rows of q
// (head_dim floats apart; the rows up to kMaxSharedQueries score zeros) and keys [0, n_keys)
// (rows `stride` floats apart), with dot()'s arithmetic: lane j of a query's accumulator is dot's
// partial sum j, and three pair_sums levels over the eight accumulators are its reduction tree
// for all of them. Lanes16 holds two keys (lanes 0-7 key i, 8-15 key i + 1). head_dim % 8 == 0.
template <typename Lanes>
[[gnu::always_inline]] inline void shared_scores(const float *q, int64_t n_queries, const float *k, int64_t n_keys,
                                                 int64_t stride, int64_t head_dim, float scale, float *scores,
                                                 int64_t scores_stride) {
  constexpr int64_t kKeysPerVector = sizeof(Lanes) / sizeof(Lanes8);
  constexpr int64_t kQ = kMaxSharedQueries;
  static_assert(kQ == 8, "three pair_sums levels reduce eight accumulators");
  // Eight dimensions of two keys (or one) in one vector, built in registers: a vector stored in
  // halves and loaded whole would wait on store forwarding.
  auto load = [](const float *first, const float *second, Lanes &v) {
    Lanes8 a;
    std::memcpy(&a, first, sizeof a);
    if constexpr (kKeysPerVector == 1) {
      v = a;
    } else {
      Lanes8 b;
      std::memcpy(&b, second, sizeof b);
      v = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }
  };
  const int64_t n_chunks = head_dim / 8;
  // Query g's dimensions 8c..8c+7 (twice) at g * n_chunks + c; zeros for the rows past n_queries,
  // whose scores are never read.
  Lanes queries[kQ * kMaxSharedHeadDim / 8];
  for (int64_t g = 0; g < kQ; ++g)
    for (int64_t c = 0; c < n_chunks; ++c) {
      if (g < n_queries) load(q + g * head_dim + 8 * c, q + g * head_dim + 8 * c, queries[g * n_chunks + c]);
      else queries[g * n_chunks + c] = Lanes{};
    }
  int64_t i = 0;
  for (; i + kKeysPerVector <= n_keys; i += kKeysPerVector) {
    Lanes acc[kQ] = {};
    for (int64_t c = 0; c < n_chunks; ++c) {
      Lanes keys;
      load(k + i * stride + 8 * c, k + (i + kKeysPerVector - 1) * stride + 8 * c, keys);
      for (int64_t g = 0; g < kQ; ++g) acc[g] += queries[g * n_chunks + c] * keys;
    }
    Lanes level1[4], level2[2], sums;
    for (int64_t j = 0; j < 4; ++j) pair_sums(acc[2 * j], acc[2 * j + 1], level1[j]);
    pair_sums(level1[0], level1[1], level2[0]);
    pair_sums(level1[2], level1[3], level2[1]);
    pair_sums(level2[0], level2[1], sums);
    sums *= scale;
    for (int64_t g = 0; g < kQ; ++g)  // lane g * kKeysPerVector + h: query g, key i + h
      for (int64_t h = 0; h < kKeysPerVector; ++h) scores[g * scores_stride + i + h] = sums[g * kKeysPerVector + h];
  }
  if constexpr (kKeysPerVector > 1)
    if (i < n_keys)
      shared_scores<Lanes8>(q, n_queries, k + i * stride, n_keys - i, stride, head_dim, scale, scores + i,
                            scores_stride);
}

// out_g (+)= sum_i scores_g[i] * v_i over keys [0, n_keys) for kQueries queries and dimensions
// [0, kVectors * lanes): each output element takes the same products in the same key order as
// softmax_weighted_values (starting from 0, or from out when resuming), so the same bits; the
// value row is loaded once for all the queries, whose sums are independent dependency chains.
template <typename Lanes, int64_t kVectors, int64_t kQueries>
[[gnu::always_inline]] inline void shared_values_block(const float *scores, int64_t scores_stride, const float *v,
                                                       int64_t n_keys, int64_t stride, bool resume, float *out,
                                                       int64_t out_stride) {
  constexpr int64_t kLanes = sizeof(Lanes) / sizeof(float);
  Lanes acc[kQueries][kVectors] = {};
  if (resume)
    for (int64_t g = 0; g < kQueries; ++g)
      for (int64_t b = 0; b < kVectors; ++b) std::memcpy(&acc[g][b], out + g * out_stride + b * kLanes, sizeof(Lanes));
  for (int64_t i = 0; i < n_keys; ++i) {
    Lanes values[kVectors];
    for (int64_t b = 0; b < kVectors; ++b) std::memcpy(&values[b], v + i * stride + b * kLanes, sizeof(Lanes));
    for (int64_t g = 0; g < kQueries; ++g) {
      const float a = scores[g * scores_stride + i];
      for (int64_t b = 0; b < kVectors; ++b) acc[g][b] += a * values[b];
    }
  }
  for (int64_t g = 0; g < kQueries; ++g)
    for (int64_t b = 0; b < kVectors; ++b) std::memcpy(out + g * out_stride + b * kLanes, &acc[g][b], sizeof(Lanes));
}

// shared_values_block over every dimension (head_dim % 8 == 0) and query: blocks of four vectors
// for up to four (512-bit) or two queries at a time, the leftover dimensions eight at a time.
template <typename Lanes>
[[gnu::always_inline]] inline void shared_values(const float *scores, int64_t scores_stride, int64_t n_queries,
                                                 const float *v, int64_t n_keys, int64_t stride, int64_t head_dim,
                                                 bool resume, float *out) {
  constexpr int64_t kLanes = sizeof(Lanes) / sizeof(float), kBlock = 4 * kLanes;
  constexpr int64_t kQueries = kLanes == 16 ? 4 : 2;  // accumulators that fit the registers
  int64_t g = 0;
  for (; g + kQueries <= n_queries; g += kQueries) {
    int64_t d = 0;
    for (; d + kBlock <= head_dim; d += kBlock)
      shared_values_block<Lanes, 4, kQueries>(scores + g * scores_stride, scores_stride, v + d, n_keys, stride, resume,
                                              out + g * head_dim + d, head_dim);
    for (; d < head_dim; d += 8)
      shared_values_block<Lanes8, 1, kQueries>(scores + g * scores_stride, scores_stride, v + d, n_keys, stride,
                                               resume, out + g * head_dim + d, head_dim);
  }
  for (; g < n_queries; ++g) {
    int64_t d = 0;
    for (; d + kBlock <= head_dim; d += kBlock)
      shared_values_block<Lanes, 4, 1>(scores + g * scores_stride, scores_stride, v + d, n_keys, stride, resume,
                                       out + g * head_dim + d, head_dim);
    for (; d < head_dim; d += 8)
      shared_values_block<Lanes8, 1, 1>(scores + g * scores_stride, scores_stride, v + d, n_keys, stride, resume,
                                        out + g * head_dim + d, head_dim);
  }
}

}  // namespace

VRAMFIT_SIMD_CLONES
void shared_kv_scores(const float *q, int64_t n_queries, const float *k, int64_t n_keys, int64_t stride,
                      int64_t head_dim, float scale, float *scores, int64_t scores_stride) {
  if (clone_has_avx512()) shared_scores<Lanes16>(q, n_queries, k, n_keys, stride, head_dim, scale, scores, scores_stride);
  else shared_scores<Lanes8>(q, n_queries, k, n_keys, stride, head_dim, scale, scores, scores_stride);
}

VRAMFIT_SIMD_CLONES
void shared_kv_values(const float *scores, int64_t scores_stride, int64_t n_queries, const float *v, int64_t n_keys,
                      int64_t stride, int64_t head_dim, bool resume, float *out) {
  if (clone_has_avx512()) shared_values<Lanes16>(scores, scores_stride, n_queries, v, n_keys, stride, head_dim, resume, out);
  else shared_values<Lanes8>(scores, scores_stride, n_queries, v, n_keys, stride, head_dim, resume, out);
}

VRAMFIT_SIMD_CLONES
void softmax_rows(float *scores, int64_t scores_stride, int64_t n_queries, int64_t first, int64_t n_kv,
                  const float *sinks) {
  for (int64_t g = 0; g < n_queries; ++g)
    softmax_inline(scores + g * scores_stride + first, n_kv - first, sinks ? sinks + g : nullptr);
}

VRAMFIT_SIMD_CLONES
void swiglu(const float *gate, const float *up, int64_t n, float *out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / one_plus_exp(-g) * up[i];
  }
}

VRAMFIT_SIMD_CLONES
void swiglu_clamped(const float *gate, const float *up, int64_t n, float alpha, float limit, float *out) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = std::min(gate[i], limit);
    const float y = std::clamp(up[i], -limit, limit);
    out[i] = x / one_plus_exp(alpha * -x) * (y + 1.0f);
  }
}

}  // namespace vramfit::cpu
