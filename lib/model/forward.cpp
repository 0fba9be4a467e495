// The llama forward pass, top to bottom, in the spirit of llama2.c's run.c: embed the tokens, then
// per layer attention (RMSNorm, Q/K/V projections, rotary embeddings, KV cache, causal attention,
// output projection, residual) and SwiGLU feed-forward (RMSNorm, gate/up, silu*up, down,
// residual), then the final norm and the output projection of the tokens whose logits are wanted.
//
// Every op runs on the device of the weights it uses; a block (attention, feed-forward, output
// head) has all its weights on one device. The residual stream follows the blocks: it is copied to
// another device only where a block lives elsewhere than the previous one.
#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "model/llama.hpp"

namespace vramfit::model {

namespace {

// Moves the residual stream x ([n][n_embd]) from `from` to `to`.
void move_residual(Workspace &ws, Activations &from, Activations &to, int64_t n_floats) {
  if (&from == &to) return;
  const uint64_t bytes = static_cast<uint64_t>(n_floats) * sizeof(float);
  from.device->synchronize();
  ws.staging.resize(static_cast<size_t>(n_floats));
  from.device->download(ws.staging.data(), from.x, bytes);
  to.device->upload(to.x, ws.staging.data(), bytes);
}

}  // namespace

void forward(const ModelInfo &info, const LlamaWeights &w, Workspace &ws,
             std::span<const int32_t> tokens, int64_t pos0, int64_t n_out, float *logits_out) {
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t n_embd = info.n_embd, n_ff = info.n_ff, n_vocab = info.n_vocab;
  const float eps = info.rms_norm_eps;
  const RopeParams rope{info.n_rot, info.rope_freq_base, info.rope_freq_scale,
                        w.rope_freqs ? &*w.rope_freqs : nullptr};
  const AttentionParams attention{info.n_head, info.n_head_kv, info.head_dim,
                                  1.0f / std::sqrt(static_cast<float>(info.head_dim))};

  // Token embeddings: rows of the embedding table.
  Activations *a = &ws.on(*w.token_embd.device);
  a->device->get_rows(w.token_embd, tokens.data(), n, a->x);

  // Each block runs where its weights are; the residual stream x follows it.
  // Rope factors the block's device can read (the map's view for host blocks once uploaded).
  auto rope_on = [&](const Device &device) {
    RopeParams p = rope;
    if (w.rope_freqs_host && w.rope_freqs->device != &device) p.freq_factors = &*w.rope_freqs_host;
    return p;
  };
  auto run_on = [&](Device &device) -> Device & {
    Activations &next = ws.on(device);
    move_residual(ws, *a, next, n * n_embd);
    a = &next;
    return device;
  };

  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights &layer = w.layers[l];

    // Attention block: x += Wo * attention(rope(Wq xn), rope(Wk xn), Wv xn)
    Device &d = run_on(*layer.wq.device);
    d.rms_norm(a->x, layer.attn_norm, n, eps, a->xb);
    d.matmul(layer.wq, a->xb, n, a->q);
    d.matmul(layer.wk, a->xb, n, a->k);
    d.matmul(layer.wv, a->xb, n, a->v);
    d.rope(a->q, n, info.n_head, info.head_dim, pos0, rope_on(d));
    d.rope(a->k, n, info.n_head_kv, info.head_dim, pos0, rope_on(d));
    d.kv_store(ws.kv[l], a->k, a->v, pos0, n);
    d.attention(a->q, ws.kv[l], pos0, n, attention, a->attn);
    d.matmul(layer.wo, a->attn, n, a->xb);
    d.add(a->x, a->xb, n * n_embd);

    // Feed-forward block: x += W_down (silu(W_gate xn) * (W_up xn))
    Device &f = run_on(*layer.w_gate.device);
    f.rms_norm(a->x, layer.ffn_norm, n, eps, a->xb);
    f.matmul(layer.w_gate, a->xb, n, a->gate);
    f.matmul(layer.w_up, a->xb, n, a->up);
    f.swiglu(a->gate, a->up, n * n_ff, a->gate);
    f.matmul(layer.w_down, a->gate, n, a->xb);
    f.add(a->x, a->xb, n * n_embd);
  }

  // Final norm and output projection, only for the last n_out tokens, a few rows at a time.
  if (n_out == 0) return;
  Device &d = run_on(*w.output.device);
  for (int64_t first = n - n_out; first < n; first += ws.n_logits_rows) {
    const int64_t rows = std::min(ws.n_logits_rows, n - first);
    d.rms_norm(a->x + first * n_embd, w.output_norm, rows, eps, a->xb);
    d.matmul(w.output, a->xb, rows, a->logits);
    d.synchronize();
    d.download(logits_out + (first - (n - n_out)) * n_vocab, a->logits,
               static_cast<uint64_t>(rows * n_vocab) * sizeof(float));
  }
}

}  // namespace vramfit::model
