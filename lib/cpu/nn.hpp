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

// cos/sin pairs of the rotary angles of one position: cache[2i] = cos, cache[2i+1] = sin for
// i in [0, n_rot/2). freq_factors (n_rot/2 floats, Llama-3 rope_freqs) divides each angle; may be null.
void rope_cache(int64_t pos, int64_t n_rot, float freq_base, float freq_scale,
                const float *freq_factors, float *cache);
// Rotates the first n_rot dimensions of each of n_heads heads of x in place, with ggml's "normal"
// rope: adjacent pairs (x[2i], x[2i+1]) (the llama GGUF converter permutes Q/K for this).
void rope_row(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float *cache);

// In place: x = exp(x - max) / sum. The sum is accumulated in double, as ggml does.
void softmax(float *x, int64_t n);

// Attention of one query head over n_kv cached positions (all visible):
//   out = softmax(scale * K q) V, K and V rows `stride` floats apart, head_dim floats used.
// `scores` is n_kv floats of workspace.
void attention_head(const float *q, const float *k, const float *v, int64_t n_kv, int64_t stride,
                    int64_t head_dim, float scale, float *scores, float *out);

// out = silu(gate) * up, n elements (out may alias gate).
void swiglu(const float *gate, const float *up, int64_t n, float *out);

}  // namespace vramfit::cpu
