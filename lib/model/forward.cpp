#include "model/forward.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "model/architecture.hpp"

namespace vramfit::model {

Forward::Forward(const ModelInfo &info, const ModelWeights &w, Workspace &ws, std::span<const int32_t> tokens,
                 int64_t pos0, int64_t n_out, float *logits_out)
    : info_(info),
      w_(w),
      ws_(ws),
      tokens_(tokens),
      n_(static_cast<int64_t>(tokens.size())),
      pos0_(pos0),
      n_out_(n_out),
      logits_out_(logits_out) {
  rope_.n_rot = info.n_rot;
  rope_.freq_base = info.rope_freq_base;
  rope_.freq_scale = info.rope_freq_scale;
  rope_.freq_factors = w.rope_freqs ? &*w.rope_freqs : nullptr;
  rope_.neox = w.arch && w.arch->rope_neox;
  rope_.ext_factor = info.rope_yarn_ext_factor;
  rope_.attn_factor = info.rope_yarn_attn_factor;
  rope_.corr_low = info.rope_yarn_corr_low;
  rope_.corr_high = info.rope_yarn_corr_high;
  attention_ = {info.n_head, info.n_head_kv, info.head_dim, 1.0f / std::sqrt(static_cast<float>(info.head_dim))};
}

// ---------------------------------------------------------------- moving activations

void Forward::copy(Activations &from, const float *src, Activations &to, float *dst, int64_t n_floats) {
  const uint64_t bytes = static_cast<uint64_t>(n_floats) * sizeof(float);
  from.device->synchronize();
  ws_.staging.resize(static_cast<size_t>(n_floats));
  from.device->download(ws_.staging.data(), src, bytes);
  to.device->upload(dst, ws_.staging.data(), bytes);
}

Device &Forward::run_on(Device &device) {
  Activations &next = ws_.on(device);
  if (a_ && a_ != &next) copy(*a_, a_->x, next, next.x, n_ * info_.n_embd);
  a_ = &next;
  return device;
}

// Rope factors the block's device can read (the map's view for host blocks once uploaded).
RopeParams Forward::rope_on(const Device &device) const {
  RopeParams p = rope_;
  if (w_.rope_freqs_host && w_.rope_freqs->device != &device) p.freq_factors = &*w_.rope_freqs_host;
  return p;
}

// ---------------------------------------------------------------- blocks

void Forward::embed() {
  a_ = &ws_.on(*w_.token_embd.device);
  a_->device->get_rows(w_.token_embd, tokens_.data(), n_, a_->x);
}

void Forward::project(Device &d, const Weight &w, const std::optional<Weight> &bias, const float *in, float *out) {
  d.matmul(w, in, n_, out);
  if (bias) d.add_bias(out, *bias, n_);
}

void Forward::attention(int32_t l, int64_t window) {
  const AttentionWeights &at = layer(l).attn;
  const float eps = info_.rms_norm_eps;
  Device &d = run_on(*at.wq.device);
  Activations &a = *a_;
  d.rms_norm(a.x, at.norm, n_, eps, a.xb);
  project(d, at.wq, at.bq, a.xb, a.q);
  project(d, at.wk, at.bk, a.xb, a.k);
  project(d, at.wv, at.bv, a.xb, a.v);
  if (at.q_norm) d.rms_norm(a.q, *at.q_norm, n_ * info_.n_head, eps, a.q);  // per head
  if (at.k_norm) d.rms_norm(a.k, *at.k_norm, n_ * info_.n_head_kv, eps, a.k);
  d.rope(a.q, n_, info_.n_head, info_.head_dim, pos0_, rope_on(d));
  d.rope(a.k, n_, info_.n_head_kv, info_.head_dim, pos0_, rope_on(d));
  KvLayer &kv = ws_.kv[static_cast<size_t>(l)];
  const int64_t row0 = pos0_ - ws_.slide_kv(l, pos0_, n_, window);  // the batch's first cache row
  d.kv_store(kv, a.k, a.v, row0, n_);
  AttentionParams params = attention_;
  params.window = window;
  params.sinks = at.sinks ? &*at.sinks : nullptr;
  d.attention(a.q, kv, row0, n_, params, a.attn);
  project(d, at.wo, at.bo, a.attn, a.xb);
  d.add(a.x, a.xb, n_ * info_.n_embd);
}

void Forward::dense_ffn(int32_t l) {
  const FfnWeights &f = *layer(l).ffn;
  Device &d = run_on(*f.gate.device);
  Activations &a = *a_;
  d.rms_norm(a.x, f.norm, n_, info_.rms_norm_eps, a.xb);
  d.matmul(f.gate, a.xb, n_, a.gate);
  d.matmul(f.up, a.xb, n_, a.up);
  d.swiglu(a.gate, a.up, n_ * info_.n_ff, a.gate);
  d.matmul(f.down, a.gate, n_, a.xb);
  d.add(a.x, a.xb, n_ * info_.n_embd);
}

// The router runs where the residual goes; the experts where their weights are. Only the chosen
// experts' weights are read: for a prompt, each once for all the tokens that chose it.
void Forward::moe_ffn(int32_t l, Gating gating, std::optional<ClampedSwiglu> clamp) {
  const MoeWeights &m = *layer(l).moe;
  const int64_t n_embd = info_.n_embd, n_expert = info_.n_expert;
  Device &r = run_on(*m.router.device);
  Activations &a = *a_;
  r.rms_norm(a.x, m.norm, n_, info_.rms_norm_eps, a.xb);
  project(r, m.router, m.router_bias, a.xb, a.router);
  r.synchronize();
  r.download(ws_.router_logits.data(), a.router, static_cast<uint64_t>(n_ * n_expert) * sizeof(float));
  const Routing routing = route(gating, ws_.router_logits.data(), n_, n_expert, info_.n_expert_used);
  if (ws_.on_routing) ws_.on_routing(l, routing);

  Activations &e = ws_.on(*m.gate_exps.device);
  if (&e != &a) copy(a, a.xb, e, e.xb, n_ * n_embd);
  run_experts(e, m, routing, clamp);
  const float *ffn_out = e.slots;
  if (&e != &a) {
    copy(e, e.slots, a, a.xb, n_ * n_embd);
    ffn_out = a.xb;
  }
  r.add(a.x, ffn_out, n_ * n_embd);
}

// Each chosen expert over its tokens (gathered into one batch), its weighted outputs scattered to
// the tokens' slots; then, as llama.cpp sums them, slot 0 + slot 1 + ... into slot 0.
void Forward::run_experts(Activations &e, const MoeWeights &m, const Routing &routing,
                          const std::optional<ClampedSwiglu> &clamp) {
  Device &d = *e.device;
  const int64_t n_embd = info_.n_embd;
  for (const ExpertBatch &b : routing.by_expert) {
    const auto rows = static_cast<int64_t>(b.tokens.size());
    const int64_t n_act = rows * info_.n_ff_exp;
    d.gather_rows(e.xb, n_embd, b.tokens.data(), rows, e.moe_in);
    expert_projection(d, m.gate_exps, m.gate_bias, b.expert, e.moe_in, rows, e.gate);
    expert_projection(d, m.up_exps, m.up_bias, b.expert, e.moe_in, rows, e.up);
    if (clamp) d.swiglu_clamped(e.gate, e.up, n_act, clamp->alpha, clamp->limit, e.gate);
    else d.swiglu(e.gate, e.up, n_act, e.gate);
    expert_projection(d, m.down_exps, m.down_bias, b.expert, e.gate, rows, e.moe_out);
    d.scatter_rows_scaled(e.moe_out, n_embd, b.slot_rows.data(), b.weights.data(), rows, e.slots);
  }
  for (int64_t j = 1; j < routing.k; ++j) d.add(e.slots, e.slots + j * n_ * n_embd, n_ * n_embd);
}

// One expert's matrix of a 3-D tensor over its tokens, plus that expert's row of the bias.
void Forward::expert_projection(Device &d, const Weight &all, const std::optional<Weight> &bias, int32_t expert,
                                const float *in, int64_t rows, float *out) {
  const int64_t n_expert = info_.n_expert;
  d.matmul(MoeWeights::expert(all, n_expert, expert), in, rows, out);
  if (bias) d.add_bias(out, MoeWeights::expert(*bias, n_expert, expert), rows);
}

void Forward::feed_forward(int32_t l) {
  if (layer(l).moe) return moe_ffn(l, Gating::softmax_top_k);
  dense_ffn(l);
}

void Forward::output() {
  if (n_out_ == 0) return;
  const int64_t n_embd = info_.n_embd, n_vocab = info_.n_vocab;
  Device &d = run_on(*w_.output.device);
  Activations &a = *a_;
  for (int64_t first = n_ - n_out_; first < n_; first += ws_.n_logits_rows) {
    const int64_t rows = std::min(ws_.n_logits_rows, n_ - first);
    d.rms_norm(a.x + first * n_embd, w_.output_norm, rows, info_.rms_norm_eps, a.xb);
    d.matmul(w_.output, a.xb, rows, a.logits);
    d.synchronize();
    d.download(logits_out_ + (first - (n_ - n_out_)) * n_vocab, a.logits,
               static_cast<uint64_t>(rows * n_vocab) * sizeof(float));
  }
}

void forward(const ModelInfo &info, const ModelWeights &w, Workspace &ws, std::span<const int32_t> tokens,
             int64_t pos0, int64_t n_out, float *logits_out) {
  if (!w.arch) detail::fail(ErrorCode::internal, "forward: the weights have no architecture");
  Forward f(info, w, ws, tokens, pos0, n_out, logits_out);
  w.arch->forward(f);
}

}  // namespace vramfit::model
