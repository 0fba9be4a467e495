// The small non-matmul operations of a llama layer, on one row (or one head) at a time, in f32.
//
// They follow ggml's CPU arithmetic (double accumulation where ggml uses ggml_float, the same
// rope angle recurrence) so our logits track llama.cpp's closely. Parallelism is the caller's:
// each function works on the slice it is given and touches nothing else.
#pragma once

#include <cstdint>

namespace vramfit::cpu {

// y = x / sqrt(mean(x^2) + eps) * w, one row of n.
void rms_norm_row(const float *x, const float *w, int64_t n, float eps, float *y);

// YaRN's part of the rotary angles (ggml's rope_yarn); ext_factor 0 turns it off.
struct RopeYarn {
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;  // mscale: multiplies cos and sin
  float corr_low = 0.0f, corr_high = 0.0f;
};

// cos/sin pairs of the rotary angles of one position: cache[2i] = cos, cache[2i+1] = sin for
// i in [0, n_rot/2). freq_factors (n_rot/2 floats, Llama-3 rope_freqs) divides each angle; may be null.
void rope_cache(int64_t pos, int64_t n_rot, float freq_base, float freq_scale,
                const float *freq_factors, const RopeYarn &yarn, float *cache);
// Rotates the first n_rot dimensions of each of n_heads heads of x in place. ggml's "normal"
// rope rotates adjacent pairs (x[2i], x[2i+1]) (the llama GGUF converter permutes Q/K for this);
// its "neox" rope rotates (x[i], x[i + n_rot/2]).
void rope_row(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cache);
void rope_row_neox(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cache);

// In place: x = exp(x - max) / sum. The sum is accumulated in double, as ggml does.
// With a sink (non-null), *sink joins the max and exp(*sink - max) the sum, with no element.
void softmax(float *x, int64_t n, const float *sink = nullptr);

// Attention of one query head over the cached positions first..n_kv-1:
//   out = softmax(scale * K q [, sink]) V, K and V rows `stride` floats apart, head_dim floats
// used. `scores` is n_kv floats of workspace; sink may be null.
void attention_head(const float *q, const float *k, const float *v, int64_t first, int64_t n_kv,
                    int64_t stride, int64_t head_dim, float scale, const float *sink, float *scores,
                    float *out);

// Keys laid out for attention_head_blocked: blocks of kKeyBlock positions, dimension-major inside a
// block (block[d][lane], lane = position % kKeyBlock), so one block's scores are lanewise vector
// arithmetic. block_keys writes one block of one head from n_keys <= kKeyBlock rows of k
// (`stride` floats apart), zeros in the lanes past them.
inline constexpr int64_t kKeyBlock = 16;
void block_keys(const float *k, int64_t stride, int64_t head_dim, int64_t n_keys, float *block);
// attention_head, bit for bit, with the keys of the head in that layout (k_blocks: its block 0,
// blocks head_dim * kKeyBlock floats apart) and its value rows v_stride floats apart. Cheaper per
// key (no horizontal sums), so it pays when several queries share the one-off layout. `scores` is
// n_kv rounded up to kKeyBlock floats.
void attention_head_blocked(const float *q, const float *k_blocks, const float *v, int64_t first, int64_t n_kv,
                            int64_t v_stride, int64_t head_dim, float scale, const float *sink, float *scores,
                            float *out);

// Attention of the query heads that share one KV head (grouped-query attention), reading each
// key and value row once for all of them, in three steps so the caller can feed the keys and
// values in chunks (converted from the cache's type): the same arithmetic as attention_head per
// query, so the same bits. head_dim % 8 == 0 and head_dim <= kMaxSharedHeadDim; n_queries <=
// kMaxSharedQueries; q and out hold n_queries rows of head_dim floats.
inline constexpr int64_t kMaxSharedQueries = 8;
inline constexpr int64_t kMaxSharedHeadDim = 256;
// scores[g * scores_stride + i] = dot(q_g, k_i) * scale for keys i in [0, n_keys), rows `stride`
// floats apart. `scores` has kMaxSharedQueries rows: those past n_queries are overwritten.
void shared_kv_scores(const float *q, int64_t n_queries, const float *k, int64_t n_keys, int64_t stride,
                      int64_t head_dim, float scale, float *scores, int64_t scores_stride);
// Each query's scores [first, n_kv) through softmax (with sinks[g] when sinks is not null).
void softmax_rows(float *scores, int64_t scores_stride, int64_t n_queries, int64_t first, int64_t n_kv,
                  const float *sinks);
// out_g = sum_i scores_g[i] * v_i over keys [0, n_keys) (rows `stride` floats apart); with
// `resume`, added to out in the same order, so consecutive chunks of keys give one call's bits.
void shared_kv_values(const float *scores, int64_t scores_stride, int64_t n_queries, const float *v, int64_t n_keys,
                      int64_t stride, int64_t head_dim, bool resume, float *out);

// out = silu(gate) * up, n elements (out may alias gate).
void swiglu(const float *gate, const float *up, int64_t n, float *out);
// gpt-oss: x = min(g, limit), y = clamp(u, -limit, limit), out = x * sigmoid(alpha x) * (y + 1)
// (ggml's swiglu_oai arithmetic); out may alias gate.
void swiglu_clamped(const float *gate, const float *up, int64_t n, float alpha, float limit, float *out);

}  // namespace vramfit::cpu
