// The arithmetic and index math of the CUDA kernels, as VRAMFIT_HD (or plain host) functions.
//
// Every formula a CUDA kernel evaluates lives here, and so does every mapping from a thread to its
// work (GEMV lanes, rope items, attention items and key splits, kv_store offsets, grid sizes, the
// batched-matmul scratch layout), so the same code is compiled for the host and unit-tested
// against float64 references where no GPU exists (tests/devices/test_cuda_math.cpp). The kernels
// in ops.cu and dequant.cu only apply them to their thread and block indices.
// Formulas follow ggml's (llama.cpp's) CPU/CUDA definitions so results agree with the references.
#pragma once

#include <cmath>
#include <cstdint>

#include "quant/blocks.hpp"
#include "quant/dequant_block.hpp"
#include "quant/fp16.hpp"
#include "quant/hd.hpp"

namespace vramfit::cuda {

// ---- weights: one "chunk" is the unit a thread dequantizes at a time ----
// Quantized rows are arrays of blocks (a chunk is one block); plain rows are arrays of elements
// (a chunk is one element). The wrappers give f16 and bf16 distinct types for overloading.
struct f16_elem {
  quant::f16_bits bits;
};
struct bf16_elem {
  quant::bf16_bits bits;
};

template <class Chunk>
struct ChunkTraits;  // size: weights per chunk
template <> struct ChunkTraits<float> { static constexpr int size = 1; };
template <> struct ChunkTraits<f16_elem> { static constexpr int size = 1; };
template <> struct ChunkTraits<bf16_elem> { static constexpr int size = 1; };
template <> struct ChunkTraits<quant::block_q4_0> { static constexpr int size = quant::QK4_0; };
template <> struct ChunkTraits<quant::block_q8_0> { static constexpr int size = quant::QK8_0; };
template <> struct ChunkTraits<quant::block_mxfp4> { static constexpr int size = quant::QK_MXFP4; };
template <> struct ChunkTraits<quant::block_q2_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q3_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q4_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q5_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q6_K> { static constexpr int size = quant::QK_K; };
template <> struct ChunkTraits<quant::block_q8_K> { static constexpr int size = quant::QK_K; };

VRAMFIT_HD void dequantize_chunk(const float &c, float *out) { out[0] = c; }
VRAMFIT_HD void dequantize_chunk(const f16_elem &c, float *out) { out[0] = quant::f16_to_f32(c.bits); }
VRAMFIT_HD void dequantize_chunk(const bf16_elem &c, float *out) { out[0] = quant::bf16_to_f32(c.bits); }
template <class Block>
VRAMFIT_HD void dequantize_chunk(const Block &b, float *out) {
  quant::dequantize_block(b, out);
}

// ---- pieces: how several threads share one block ----
// A thread never dequantizes a whole 256-weight block (a float[256] per thread is a 1 KiB stack
// frame). Blocks are split into pieces of PieceTraits::size consecutive weights: 16 pieces of 16
// weights for the K-quants, 4 pieces of 8 for the 32-weight formats, 1 piece of 1 for plain
// elements. dequantize_piece(b, p, out) writes weights p*size .. of block b with exactly the float
// operations of quant::dequantize_block, so the pieces of a block are that block bit for bit
// (host-tested), and a thread's piece stays in registers.
template <class Chunk>
struct PieceTraits {
  static constexpr int size = ChunkTraits<Chunk>::size == quant::QK_K ? 16 : ChunkTraits<Chunk>::size == 32 ? 8 : 1;
  static constexpr int count = ChunkTraits<Chunk>::size / size;
};

VRAMFIT_HD void dequantize_piece(const float &c, int, float *out) { out[0] = c; }
VRAMFIT_HD void dequantize_piece(const f16_elem &c, int, float *out) { out[0] = quant::f16_to_f32(c.bits); }
VRAMFIT_HD void dequantize_piece(const bf16_elem &c, int, float *out) { out[0] = quant::bf16_to_f32(c.bits); }

// Q4_0: low nibbles are weights 0..15, high nibbles 16..31.
VRAMFIT_HD void dequantize_piece(const quant::block_q4_0 &b, int piece, float *out) {
  const float d = quant::f16_to_f32(b.d);
  for (int i = 0; i < 8; ++i) {
    const int e = piece * 8 + i;
    const int x = (e < 16 ? (b.qs[e] & 0x0F) : (b.qs[e - 16] >> 4)) - 8;
    out[i] = x * d;
  }
}

VRAMFIT_HD void dequantize_piece(const quant::block_q8_0 &b, int piece, float *out) {
  const float d = quant::f16_to_f32(b.d);
  for (int i = 0; i < 8; ++i) out[i] = b.qs[piece * 8 + i] * d;
}

// MXFP4: as Q4_0, low nibbles are weights 0..15 and high nibbles 16..31; E2M1 codes times 2^(e-128).
VRAMFIT_HD void dequantize_piece(const quant::block_mxfp4 &b, int piece, float *out) {
  const float d = quant::e8m0_to_f32_half(b.e);
  for (int i = 0; i < 8; ++i) {
    const int e = piece * 8 + i;
    const int code = e < 16 ? (b.qs[e] & 0x0F) : (b.qs[e - 16] >> 4);
    out[i] = quant::mxfp4_value(code) * d;
  }
}

// The 16-weight runs of Q2_K and Q3_K: run r is sub-block r, from bytes 32*(r/8) + 16*(r%2) of
// qs at bit shift 2*((r%8)/2) (see quant::dequantize_block).
struct K2Run {
  int qs_offset, shift, hmask_bit;
};
VRAMFIT_HD K2Run k2_run(int run) {
  const int half = run / 8, shift_index = (run % 8) / 2;
  return {32 * half + 16 * (run % 2), 2 * shift_index, 4 * half + shift_index};
}

VRAMFIT_HD void dequantize_piece(const quant::block_q2_K &b, int piece, float *out) {
  const float d = quant::f16_to_f32(b.d);
  const float min = quant::f16_to_f32(b.dmin);
  const K2Run r = k2_run(piece);
  const uint8_t sc = b.scales[piece];
  const float dl = d * (sc & 0xF);
  const float ml = min * (sc >> 4);
  for (int l = 0; l < 16; ++l) out[l] = dl * (int8_t)((b.qs[r.qs_offset + l] >> r.shift) & 3) - ml;
}

VRAMFIT_HD void dequantize_piece(const quant::block_q3_K &b, int piece, float *out) {
  const float d_all = quant::f16_to_f32(b.d);
  const K2Run r = k2_run(piece);
  const uint8_t m = (uint8_t)(1u << r.hmask_bit);
  const int k0 = 16 * (piece % 2);  // hmask is indexed within the 32-byte group, for both halves
  const float dl = d_all * quant::q3_K_scale(b.scales, piece);
  for (int l = 0; l < 16; ++l)
    out[l] = dl * ((int8_t)((b.qs[r.qs_offset + l] >> r.shift) & 3) - ((b.hmask[k0 + l] & m) ? 0 : 4));
}

// Q4_K / Q5_K: run r is half of 32-weight sub-block j = r/2, whose quants are the low (j even) or
// high (j odd) nibbles of qs[32*(j/2) ..]; Q5_K's fifth bit is bit j of qh[l].
VRAMFIT_HD void dequantize_piece(const quant::block_q4_K &b, int piece, float *out) {
  const int j = piece / 2, l0 = 16 * (piece % 2);
  const quant::K4SubBlock s = quant::k4_sub_block(j, b.scales, quant::f16_to_f32(b.d), quant::f16_to_f32(b.dmin));
  const uint8_t *q = b.qs + 32 * (j / 2) + l0;
  const int shift = 4 * (j % 2);
  for (int l = 0; l < 16; ++l) out[l] = s.d * ((q[l] >> shift) & 0xF) - s.m;
}

VRAMFIT_HD void dequantize_piece(const quant::block_q5_K &b, int piece, float *out) {
  const int j = piece / 2, l0 = 16 * (piece % 2);
  const quant::K4SubBlock s = quant::k4_sub_block(j, b.scales, quant::f16_to_f32(b.d), quant::f16_to_f32(b.dmin));
  const uint8_t *q = b.qs + 32 * (j / 2) + l0;
  const int shift = 4 * (j % 2);
  const uint8_t bit = (uint8_t)(1u << j);
  for (int l = 0; l < 16; ++l) out[l] = s.d * (((q[l] >> shift) & 0xF) + ((b.qh[l0 + l] & bit) ? 16 : 0)) - s.m;
}

// Q6_K: run r is weights 128*half + 32*quarter + 16*(r%2) .. with half = r/8, quarter = (r%8)/2:
// low 4 bits from ql[64*half + 32*(quarter%2) + l] (high nibble for quarters 2, 3), high 2 bits
// from qh[32*half + l] at shift 2*quarter, scale scales[8*half + 2*quarter + (r%2)].
VRAMFIT_HD void dequantize_piece(const quant::block_q6_K &b, int piece, float *out) {
  const float d = quant::f16_to_f32(b.d);
  const int half = piece / 8, quarter = (piece % 8) / 2, l0 = 16 * (piece % 2);
  const uint8_t *ql = b.ql + 64 * half + 32 * (quarter % 2) + l0;
  const uint8_t *qh = b.qh + 32 * half + l0;
  const int ql_shift = 4 * (quarter / 2), qh_shift = 2 * quarter;
  const int8_t sc = b.scales[8 * half + 2 * quarter + piece % 2];
  for (int l = 0; l < 16; ++l) {
    const int8_t q = (int8_t)(((ql[l] >> ql_shift) & 0xF) | (((qh[l] >> qh_shift) & 3) << 4)) - 32;
    out[l] = d * sc * q;
  }
}

VRAMFIT_HD void dequantize_piece(const quant::block_q8_K &b, int piece, float *out) {
  for (int l = 0; l < 16; ++l) out[l] = b.d * b.qs[piece * 16 + l];
}
// acc[t] += dot(piece `piece` of chunk, x[t][its columns]) for t < n_tokens (at most
// kMaxTokens); x rows are `x_stride` apart and x is already offset to the piece's first column.
// The fused GEMV's inner step: the weights live in registers only. The token loop is unrolled
// with a guard so acc stays in registers (a runtime-indexed array would go to the stack).
template <int kMaxTokens, class Chunk>
VRAMFIT_HD void piece_dot(const Chunk &chunk, int piece, const float *x, int64_t x_stride, int n_tokens, float *acc) {
  constexpr int n = PieceTraits<Chunk>::size;
  float w[n];
  dequantize_piece(chunk, piece, w);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int t = 0; t < kMaxTokens; ++t) {
    if (t >= n_tokens) break;
    const float *xt = x + t * x_stride;
    float sum = 0.0f;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int i = 0; i < n; ++i) sum += w[i] * xt[i];
    acc[t] += sum;
  }
}

// ---- thread layouts (index math the kernels use, host-tested) ----
constexpr int kWarpSize = 32;

// The warp reduction is a butterfly: at each offset 16, 8, 4, 2, 1 lane l adds lane l ^ offset's
// value, after which every lane holds the total.
VRAMFIT_HD int butterfly_partner(int lane, int offset) { return lane ^ offset; }

// GEMV: a warp works on one output row; lane l takes piece l % count of chunk c + l / count, for
// c = 0, per_step, 2*per_step, ... (per_step = 32 / count chunks per warp step).
struct GemvLane {
  int first_chunk;  // lane's chunk in the warp's first step
  int piece;
  int chunks_per_step;
};
VRAMFIT_HD GemvLane gemv_lane(int lane, int pieces_per_chunk) {
  return {lane / pieces_per_chunk, lane % pieces_per_chunk, kWarpSize / pieces_per_chunk};
}

// Kernels with one warp per work item (gemv rows, attention items): blocks of warps_per_block
// warps for n items; the last block's extra warps return at once.
inline unsigned blocks_for_warps(int64_t items, int warps_per_block) {
  return (unsigned)((items + warps_per_block - 1) / warps_per_block);
}

// Element-wise kernels run a bounded grid and stride over the rest: blocks for n items.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return (unsigned)(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

// ---- rms_norm: y = x / sqrt(mean(x^2) + eps) * weight ----
VRAMFIT_HD float rms_inverse(float sum_of_squares, int64_t n, float eps) {
  return 1.0f / sqrtf(sum_of_squares / (float)n + eps);
}

// ---- rope (see model::RopeParams) ----
// theta_extrap = pos * freq_base^(-2i/n_rot) / freq_factor[i]; without YaRN the angle is
// freq_scale * theta_extrap and cos/sin are multiplied by attn_factor (ggml's rope_yarn).
struct RopeYarn {
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float corr_low = 0.0f, corr_high = 0.0f;
};

VRAMFIT_HD float rope_theta(int64_t pos, int64_t pair, int64_t n_rot, float freq_base, float freq_scale,
                            float freq_factor) {
  const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
  const float theta_extrap = (float)pos * powf(theta_scale, (float)pair) / freq_factor;
  return freq_scale * theta_extrap;
}

// cos and sin of pair i's angle, YaRN included: as lib/cpu/nn.cpp rope_cache, except that the
// base power is powf(theta_scale, i) where the CPU multiplies theta_scale up i times (the two
// differ by float rounding only, which grows with the position as in ggml).
struct RopeCosSin {
  float cos, sin;
};
VRAMFIT_HD RopeCosSin rope_cos_sin(int64_t pos, int64_t pair, int64_t n_rot, float freq_base, float freq_scale,
                                   float freq_factor, const RopeYarn &yarn) {
  const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
  const float theta_extrap = (float)pos * powf(theta_scale, (float)pair) / freq_factor;
  float angle = freq_scale * theta_extrap;
  float mscale = yarn.attn_factor;
  if (yarn.ext_factor != 0.0f) {  // ramp between interpolation and extrapolation
    const float y = ((float)pair - yarn.corr_low) / fmaxf(0.001f, yarn.corr_high - yarn.corr_low);
    const float ramp_mix = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * yarn.ext_factor;
    angle = angle * (1.0f - ramp_mix) + theta_extrap * ramp_mix;
    mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale);
  }
  return {cosf(angle) * mscale, sinf(angle) * mscale};
}

VRAMFIT_HD void rope_rotate(float &x0, float &x1, float theta) {
  const float c = cosf(theta);
  const float s = sinf(theta);
  const float a = x0, b = x1;
  x0 = a * c - b * s;
  x1 = a * s + b * c;
}

VRAMFIT_HD void rope_rotate(float &x0, float &x1, RopeCosSin cs) {
  const float a = x0, b = x1;
  x0 = a * cs.cos - b * cs.sin;
  x1 = a * cs.sin + b * cs.cos;
}

// Item i of the rope kernel (one per rotated pair): its token, pair, and the two elements of
// x [n_tokens][n_heads][head_dim] it rotates. Normal rope pairs (2p, 2p+1), NeoX (p, p + n_rot/2).
struct RopeItem {
  int64_t t, pair, first, second;
};
VRAMFIT_HD RopeItem rope_item(int64_t i, int64_t n_heads, int64_t head_dim, int64_t n_rot, bool neox) {
  const int64_t pairs = n_rot / 2;
  const int64_t pair = i % pairs, head = (i / pairs) % n_heads, t = i / (pairs * n_heads);
  const int64_t base = (t * n_heads + head) * head_dim;
  return neox ? RopeItem{t, pair, base + pair, base + pair + pairs} : RopeItem{t, pair, base + 2 * pair, base + 2 * pair + 1};
}

// ---- swiglu ----
VRAMFIT_HD float silu(float x) { return x / (1.0f + expf(-x)); }
VRAMFIT_HD float swiglu(float gate, float up) { return silu(gate) * up; }
// gpt-oss: x = min(g, limit), y = clamp(u, -limit, limit), x * sigmoid(alpha x) * (y + 1), as
// lib/cpu/nn.cpp computes it.
VRAMFIT_HD float swiglu_clamped(float gate, float up, float alpha, float limit) {
  const float x = fminf(gate, limit);
  const float y = fminf(fmaxf(up, -limit), limit);
  return x / (1.0f + expf(alpha * -x)) * (y + 1.0f);
}

// ---- KV cache elements: F32, F16 or Q8_0 rows ----
// Q8_0 encoding of 32 values, as ggml's quantize_row_q8_0_ref: d = amax/127, q = round(x/d).
VRAMFIT_HD quant::block_q8_0 quantize_q8_0(const float *x) {
  float amax = 0.0f;
  for (int i = 0; i < quant::QK8_0; ++i) amax = fmaxf(amax, fabsf(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  quant::block_q8_0 b;
  b.d = quant::f32_to_f16(d);
  for (int i = 0; i < quant::QK8_0; ++i) b.qs[i] = (int8_t)roundf(x[i] * id);
  return b;
}

enum class KvType { f32, f16, q8_0 };

// Element i of a cache row of `type`.
VRAMFIT_HD float kv_load(const void *row, KvType type, int64_t i) {
  switch (type) {
    case KvType::f32: return static_cast<const float *>(row)[i];
    case KvType::f16: return quant::f16_to_f32(static_cast<const quant::f16_bits *>(row)[i]);
    case KvType::q8_0: {
      const quant::block_q8_0 &b = static_cast<const quant::block_q8_0 *>(row)[i / quant::QK8_0];
      return quant::f16_to_f32(b.d) * (float)b.qs[i % quant::QK8_0];
    }
  }
  return 0.0f;
}

// ---- attention: streaming ("online") softmax over the keys, one key at a time ----
// After every key: max = the largest score so far, sum = sum_j exp(score_j - max), and the
// output accumulator holds sum_j exp(score_j - max) * v_j. Rescaling by exp(old_max - new_max)
// keeps every exponent <= 0, so nothing overflows however long the context.
struct OnlineSoftmax {
  float max = -INFINITY;
  float sum = 0.0f;
};

// Folds in one score; returns the factors to apply to the accumulator: acc = acc*rescale + weight*v.
struct SoftmaxStep {
  float rescale;
  float weight;
};
VRAMFIT_HD SoftmaxStep online_softmax_add(OnlineSoftmax &s, float score) {
  const float new_max = fmaxf(s.max, score);
  const float rescale = expf(s.max - new_max);  // exp(-inf) = 0 for the first key
  const float weight = expf(score - new_max);
  s.sum = s.sum * rescale + weight;
  s.max = new_max;
  return {rescale, weight};
}

// GQA: query head h reads KV head h / (n_head / n_head_kv).
VRAMFIT_HD int64_t kv_head_of(int64_t head, int64_t n_head, int64_t n_head_kv) {
  return head / (n_head / n_head_kv);
}

// The attention kernel gives lane l of a warp the head dimensions l, l+32, ...: how many.
VRAMFIT_HD int attention_lane_dims(int64_t head_dim, int lane) { return (int)((head_dim - lane + 31) / 32); }

// Folds a sink logit (gpt-oss) into a finished softmax: it joins the max and adds
// exp(sink - max) to the sum, with no value. Returns the factor to apply to the accumulator.
VRAMFIT_HD float online_softmax_add_sink(OnlineSoftmax &s, float sink) {
  const float new_max = fmaxf(s.max, sink);
  const float rescale = s.max == -INFINITY ? 0.0f : expf(s.max - new_max);
  s.sum = s.sum * rescale + expf(sink - new_max);
  s.max = new_max;
  return rescale;
}

// The keys query token t (at position pos0 + t) sees: [first, end), causal, the last `window`
// of them with a sliding window (window <= 0: all).
struct KeyRange {
  int64_t first, end;
};
VRAMFIT_HD KeyRange attention_keys(int64_t pos0, int64_t t, int64_t window) {
  const int64_t end = pos0 + t + 1;
  const int64_t first = window > 0 && end > window ? end - window : 0;
  return {first, end};
}

// Split s of n_splits of a key range (flash-decoding): near-equal consecutive parts, possibly
// empty when the range is shorter than n_splits.
VRAMFIT_HD KeyRange attention_split(KeyRange keys, int split, int n_splits) {
  const int64_t n = keys.end - keys.first;
  const int64_t per = (n + n_splits - 1) / n_splits;
  const int64_t first = keys.first + per * split;
  const int64_t end = first + per < keys.end ? first + per : keys.end;
  return {first < keys.end ? first : keys.end, end};
}

// Attention work item w (one warp each): query token t, head h, key split s, items ordered
// split-fastest so the splits of one (t, h) sit in neighbouring warps.
struct AttentionItem {
  int64_t t, head;
  int split;
};
VRAMFIT_HD AttentionItem attention_item(int64_t w, int64_t n_head, int n_splits) {
  const int64_t pair = w / n_splits;
  return {pair / n_head, pair % n_head, (int)(w % n_splits)};
}

// A split's partial result in the scratch: [max, sum, acc[head_dim]] per (t, head, split).
VRAMFIT_HD int64_t attention_partial_floats(int64_t head_dim) { return head_dim + 2; }

// Merging the splits of one (t, head): weight of split s is exp(max_s - max) (0 for an empty
// split, whose max is -inf), so acc = sum_s w_s acc_s and sum = sum_s w_s sum_s.
VRAMFIT_HD float softmax_merge_weight(float split_max, float max) {
  return split_max == -INFINITY ? 0.0f : expf(split_max - max);
}

// How many key splits a decode attention uses: enough warps to fill the GPU (target_warps),
// at least kMinKeysPerSplit keys each, and partials that fit the scratch. 1 means no split (a
// prompt already has items enough).
constexpr int kMaxAttentionSplits = 64;
constexpr int64_t kMinKeysPerSplit = 64;
inline int attention_splits(int64_t items, int64_t max_keys, int64_t head_dim, uint64_t scratch_floats,
                            int64_t target_warps) {
  if (items <= 0 || items >= target_warps) return 1;
  int64_t splits = (target_warps + items - 1) / items;
  splits = splits < (max_keys + kMinKeysPerSplit - 1) / kMinKeysPerSplit ? splits
                                                                          : (max_keys + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  const int64_t fit = (int64_t)(scratch_floats / (uint64_t)(items * attention_partial_floats(head_dim)));
  if (splits > fit) splits = fit;
  if (splits > kMaxAttentionSplits) splits = kMaxAttentionSplits;
  return splits < 1 ? 1 : (int)splits;
}

// ---- kv_store: where token t's row goes ----
// Plain caches: element offset of row pos0 + t, row = n_head_kv * head_dim values. Q8_0 caches:
// block index (rows are whole numbers of 32-value blocks).
VRAMFIT_HD int64_t kv_row_offset(int64_t pos0, int64_t row_elems) { return pos0 * row_elems; }
VRAMFIT_HD int64_t kv_q8_0_first_block(int64_t pos0, int64_t row_elems) { return pos0 * (row_elems / quant::QK8_0); }

// ---- activations to f16 for batched products, without overflow ----
// f16 holds |x| < 65504 and keeps full precision down to 2^-14. Each token row is multiplied by
// a power of two 2^e that puts its largest |x| in [2^13, 2^14): the f16 conversion can then
// neither overflow nor lose more of the small values than it must, and since the scaling is by
// a power of two it changes no rounding: f16(x * 2^e) = f16(x) * 2^e wherever f16(x) is normal.
// The product's rows are multiplied by 2^-e afterwards (exact in f32). amax 0, inf or NaN: e = 0.
VRAMFIT_HD int f16_row_exponent(float amax) {
  if (!(amax > 0.0f) || amax == INFINITY) return 0;
  int exp2 = 0;
  (void)frexpf(amax, &exp2);  // amax = m * 2^exp2, m in [0.5, 1)
  int e = 14 - exp2;          // amax * 2^e in [2^13, 2^14)
  if (e > 120) e = 120;       // tiny rows: keep 2^e and 2^-e normal floats
  if (e < -120) e = -120;
  return e;
}

// ---- batched matmul: the scratch and its tiles ----
// The scratch holds, from its start: the activations of `group` tokens converted to f16
// (`x_bytes`, rounded up to 256), one f32 scale per token (`scale_bytes`, rounded up), then a tile
// of `tile_rows` weight rows dequantized to `weight_elem_bytes` each (2: f16, 4: f32).
struct BatchedLayout {
  int64_t group = 0;       // tokens per pass (0: the scratch cannot hold a useful tile)
  uint64_t x_bytes = 0;    // f16 activations; 0 when the GEMM reads x in place
  uint64_t scale_bytes = 0;
  int64_t tile_rows = 0;   // weight rows per GEMM
  uint64_t tile_offset = 0;  // bytes from the scratch's start to the weight tile
};
inline uint64_t round_up_256(uint64_t bytes) { return (bytes + 255) & ~uint64_t{255}; }
inline BatchedLayout batched_layout(uint64_t scratch_bytes, int64_t k, int64_t rows, int64_t n_tokens,
                                    bool convert_x, uint64_t weight_elem_bytes, bool weights_in_place) {
  BatchedLayout l;
  if (k <= 0 || rows <= 0 || n_tokens <= 0) return l;
  const uint64_t row_x = convert_x ? (uint64_t)k * 2 + 4 : 0;  // f16 values + a scale per token
  // Half the scratch for activations at most, so weight tiles keep room.
  int64_t group = n_tokens;
  if (row_x > 0) {
    const int64_t fit = (int64_t)((scratch_bytes / 2 > 512 ? scratch_bytes / 2 - 512 : 0) / row_x);
    if (fit < group) group = fit;
  }
  if (group < 1) return l;
  l.x_bytes = convert_x ? round_up_256((uint64_t)group * (uint64_t)k * 2) : 0;
  l.scale_bytes = convert_x ? round_up_256((uint64_t)group * 4) : 0;
  l.tile_offset = l.x_bytes + l.scale_bytes;
  if (weights_in_place) {
    l.tile_rows = rows;
  } else {
    const uint64_t room = scratch_bytes > l.tile_offset ? scratch_bytes - l.tile_offset : 0;
    const int64_t fit = (int64_t)(room / ((uint64_t)k * weight_elem_bytes));
    l.tile_rows = fit < rows ? fit : rows;
    if (l.tile_rows < 1) return BatchedLayout{};
  }
  l.group = group;
  return l;
}

// Calls f(t0, n, r0, rows) for every (token group, row tile) of a batched matmul, in the order
// the device runs them: each group's tiles, then the next group.
template <class F>
void for_each_batched_tile(const BatchedLayout &l, int64_t n_tokens, int64_t rows, F &&f) {
  for (int64_t t0 = 0; t0 < n_tokens; t0 += l.group) {
    const int64_t n = n_tokens - t0 < l.group ? n_tokens - t0 : l.group;
    for (int64_t r0 = 0; r0 < rows; r0 += l.tile_rows) f(t0, n, r0, rows - r0 < l.tile_rows ? rows - r0 : l.tile_rows);
  }
}

// ---- cuBLAS: a row-major product in column-major terms ----
// y[t][r] (row stride ldy) = sum_k W[r][k] x[t][k] for row-major W [rows][k] and x [n_tokens][k].
// cuBLAS reads column-major: W's memory is W^T (k x rows, lda = k), x's is x^T (k x n_tokens,
// ldb = k), and y's is y^T (rows x n_tokens, ldc = ldy). So y^T = op(A) op(B) with A = W's
// memory transposed (op T: rows x k = W) and B = x's memory as is (op N).
struct GemmArgs {
  bool transpose_a, transpose_b;
  int m, n, k, lda, ldb, ldc;
};
inline GemmArgs row_major_gemm(int64_t rows, int64_t k, int64_t n_tokens, int64_t ldy) {
  return {true, false, (int)rows, (int)n_tokens, (int)k, (int)k, (int)k, (int)ldy};
}

}  // namespace vramfit::cuda
