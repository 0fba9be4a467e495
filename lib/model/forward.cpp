#include "model/forward.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "common/error.hpp"
#include "model/architecture.hpp"

namespace vramfit::model {

Forward::Forward(const ModelInfo &info, const ModelWeights &w, Workspace &ws, std::span<const int32_t> tokens,
                 int64_t pos0, int64_t n_out, float *logits_out, Streamer *streamer)
    : info_(info),
      w_(w),
      ws_(ws),
      tokens_(tokens),
      n_(static_cast<int64_t>(tokens.size())),
      pos0_(pos0),
      n_out_(n_out),
      logits_out_(logits_out),
      streamer_(streamer) {
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

// Rope factors device d can read: the device's copy, the map's view for a host block once the
// factors were uploaded, or (a streamed block) a copy staged into `staged_factors`.
RopeParams Forward::rope_for(Device &d, Weight &staged_factors) {
  RopeParams p = rope_;
  if (w_.rope_freqs_host && w_.rope_freqs->device != &d) p.freq_factors = &*w_.rope_freqs_host;
  if (p.freq_factors && p.freq_factors->device != &d) {
    staged_factors = use(*p.freq_factors, d);
    p.freq_factors = &staged_factors;
  }
  return p;
}

Device &Forward::target(const Weight &w) const { return streamer_ ? streamer_->device() : *w.device; }

Weight Forward::use(const Weight &w, Device &d) { return w.device == &d ? w : streamer_->stage(w); }

// A layer's KV cache as device d reads it: in place, or (a streamed host layer) the device copy
// holding its rows so far.
KvLayer Forward::kv_on(Device &d, int32_t l, int64_t n_rows) {
  const KvLayer &kv = ws_.kv[static_cast<size_t>(l)];
  return kv.device == &d ? kv : streamer_->kv_copy(kv, n_rows);
}

// ---------------------------------------------------------------- blocks

void Forward::embed() {
  a_ = &ws_.on(*w_.token_embd.device);
  a_->device->get_rows(w_.token_embd, tokens_.data(), n_, a_->x);
}

void Forward::project(Device &d, const Weight &w, const std::optional<Weight> &bias, const float *in, float *out) {
  d.matmul(use(w, d), in, n_, out);
  if (bias) d.add_bias(out, use(*bias, d), n_);
}

// Several projections of one input: one job on d where every weight is there (a staged weight
// must be used before the next is staged), else one by one.
void Forward::project_all(Device &d, std::span<const Projection> projections, const float *in) {
  constexpr size_t kMax = 3;
  const bool resident = std::all_of(projections.begin(), projections.end(), [&](const Projection &p) {
    return p.w.device == &d && (!p.bias || p.bias->device == &d);
  });
  if (!resident || projections.size() > kMax) {
    for (const Projection &p : projections) project(d, p.w, p.bias, in, p.out);
    return;
  }
  Device::Product products[kMax];
  for (size_t i = 0; i < projections.size(); ++i) products[i] = {projections[i].w, in, projections[i].out};
  d.matmul_many({products, projections.size()}, n_);
  for (const Projection &p : projections)
    if (p.bias) d.add_bias(p.out, *p.bias, n_);
}

void Forward::attention(int32_t l, int64_t window) {
  const AttentionWeights &at = layer(l).attn;
  const float eps = info_.rms_norm_eps;
  Device &d = run_on(target(at.wq));
  Activations &a = *a_;
  d.rms_norm(a.x, use(at.norm, d), n_, eps, a.xb);
  const Projection qkv[] = {{at.wq, at.bq, a.q}, {at.wk, at.bk, a.k}, {at.wv, at.bv, a.v}};
  project_all(d, qkv, a.xb);
  if (at.q_norm) d.rms_norm(a.q, use(*at.q_norm, d), n_ * info_.n_head, eps, a.q);  // per head
  if (at.k_norm) d.rms_norm(a.k, use(*at.k_norm, d), n_ * info_.n_head_kv, eps, a.k);
  Weight factors;
  const RopeParams rope = rope_for(d, factors);
  d.rope(a.q, n_, info_.n_head, info_.head_dim, pos0_, rope);
  d.rope(a.k, n_, info_.n_head_kv, info_.head_dim, pos0_, rope);
  const int64_t row0 = pos0_ - ws_.slide_kv(l, pos0_, n_, window);  // the batch's first cache row
  KvLayer kv = kv_on(d, l, row0);
  d.kv_store(kv, a.k, a.v, row0, n_);
  AttentionParams params = attention_;
  params.window = window;
  Weight sinks;
  if (at.sinks) params.sinks = &(sinks = use(*at.sinks, d));
  d.attention(a.q, kv, row0, n_, params, a.attn);
  KvLayer &host_kv = ws_.kv[static_cast<size_t>(l)];
  if (kv.k != host_kv.k) streamer_->write_back(kv, host_kv, row0, n_);
  project(d, at.wo, at.bo, a.attn, a.xb);
  d.add(a.x, a.xb, n_ * info_.n_embd);
}

void Forward::dense_ffn(int32_t l) {
  const FfnWeights &f = *layer(l).ffn;
  Device &d = run_on(target(f.gate));
  Activations &a = *a_;
  d.rms_norm(a.x, use(f.norm, d), n_, info_.rms_norm_eps, a.xb);
  const std::optional<Weight> no_bias;
  const Projection gate_up[] = {{f.gate, no_bias, a.gate}, {f.up, no_bias, a.up}};
  project_all(d, gate_up, a.xb);
  d.swiglu(a.gate, a.up, n_ * info_.n_ff, a.gate);
  d.matmul(use(f.down, d), a.gate, n_, a.xb);
  d.add(a.x, a.xb, n_ * info_.n_embd);
}

// The router runs where the residual goes; the experts where their weights are. Only the chosen
// experts' weights are read: for a prompt, each once for all the tokens that chose it.
void Forward::moe_ffn(int32_t l, Gating gating, std::optional<ClampedSwiglu> clamp) {
  const MoeWeights &m = *layer(l).moe;
  const int64_t n_embd = info_.n_embd, n_expert = info_.n_expert;
  Device &r = run_on(target(m.router));
  Activations &a = *a_;
  r.rms_norm(a.x, use(m.norm, r), n_, info_.rms_norm_eps, a.xb);
  project(r, m.router, m.router_bias, a.xb, a.router);
  r.synchronize();
  r.download(ws_.router_logits.data(), a.router, static_cast<uint64_t>(n_ * n_expert) * sizeof(float));
  const Routing routing = route(gating, ws_.router_logits.data(), n_, n_expert, info_.n_expert_used);
  if (ws_.on_routing) ws_.on_routing(l, routing);

  Activations &e = ws_.on(target(m.gate_exps));
  if (&e != &a) copy(a, a.xb, e, e.xb, n_ * n_embd);
  run_experts(e, m, routing, clamp);
  const float *ffn_out = e.slots;
  if (&e != &a) {
    copy(e, e.slots, a, a.xb, n_ * n_embd);
    ffn_out = a.xb;
  }
  r.add(a.x, ffn_out, n_ * n_embd);
}

// The chosen experts' weighted outputs in the tokens' slots, then, as llama.cpp sums them, slot 0
// + slot 1 + ... into slot 0.
void Forward::run_experts(Activations &e, const MoeWeights &m, const Routing &routing,
                          const std::optional<ClampedSwiglu> &clamp) {
  Device &d = *e.device;
  const bool streamed = m.gate_exps.device != &d;
  if (n_ == 1 && !streamed && static_cast<int64_t>(routing.by_expert.size()) <= ws_.n_batch)
    run_experts_one_token(e, m, routing, clamp);
  else
    run_expert_batches(e, m, routing, clamp);
  for (int64_t j = 1; j < routing.k; ++j) d.add(e.slots, e.slots + j * n_ * info_.n_embd, n_ * info_.n_embd);
}

// Each chosen expert over its tokens (gathered into one batch), its weighted outputs scattered to
// the tokens' slots.
void Forward::run_expert_batches(Activations &e, const MoeWeights &m, const Routing &routing,
                                 const std::optional<ClampedSwiglu> &clamp) {
  Device &d = *e.device;
  const int64_t n_embd = info_.n_embd;
  const bool streamed = m.gate_exps.device != &d;
  for (const ExpertBatch &b : routing.by_expert) {
    const auto rows = static_cast<int64_t>(b.tokens.size());
    // The expert's matrices and bias rows: streamed in together (one slot) when they live elsewhere.
    ExpertViews w = expert_views(m, b.expert);
    if (streamed) streamer_->stage_together(w.present());
    const int64_t n_act = rows * info_.n_ff_exp;
    d.gather_rows(e.xb, n_embd, b.tokens.data(), rows, e.moe_in);
    const Device::Product gate_up[] = {{w.gate, e.moe_in, e.gate}, {w.up, e.moe_in, e.up}};  // resident or staged
    d.matmul_many(gate_up, rows);
    if (w.gate_bias) d.add_bias(e.gate, *w.gate_bias, rows);
    if (w.up_bias) d.add_bias(e.up, *w.up_bias, rows);
    if (clamp) d.swiglu_clamped(e.gate, e.up, n_act, clamp->alpha, clamp->limit, e.gate);
    else d.swiglu(e.gate, e.up, n_act, e.gate);
    project_rows(d, w.down, w.down_bias, e.gate, rows, e.moe_out);
    d.scatter_rows_scaled(e.moe_out, n_embd, b.slot_rows.data(), b.weights.data(), rows, e.slots);
  }
}

// One token (decode) with the experts resident: every chosen expert reads the same row, so their
// gate and up products are one job of the device and their down products another (two thread
// barriers per layer instead of two per expert), expert j's rows at row j of the batch buffers.
// The same operations on the same values as run_expert_batches, so the same bits.
void Forward::run_experts_one_token(Activations &e, const MoeWeights &m, const Routing &routing,
                                    const std::optional<ClampedSwiglu> &clamp) {
  Device &d = *e.device;
  const int64_t n_embd = info_.n_embd, n_ff = info_.n_ff_exp;
  const std::vector<ExpertBatch> &chosen = routing.by_expert;
  const auto k = static_cast<int64_t>(chosen.size());
  std::vector<ExpertViews> w;
  std::vector<Device::Product> gate_up, down;
  for (const ExpertBatch &b : chosen) w.push_back(expert_views(m, b.expert));
  for (int64_t j = 0; j < k; ++j) {
    gate_up.push_back({w[j].gate, e.xb, e.gate + j * n_ff});
    gate_up.push_back({w[j].up, e.xb, e.up + j * n_ff});
    down.push_back({w[j].down, e.gate + j * n_ff, e.moe_out + j * n_embd});
  }
  d.matmul_many(gate_up, 1);
  for (int64_t j = 0; j < k; ++j) {
    if (w[j].gate_bias) d.add_bias(e.gate + j * n_ff, *w[j].gate_bias, 1);
    if (w[j].up_bias) d.add_bias(e.up + j * n_ff, *w[j].up_bias, 1);
  }
  if (clamp) d.swiglu_clamped(e.gate, e.up, k * n_ff, clamp->alpha, clamp->limit, e.gate);
  else d.swiglu(e.gate, e.up, k * n_ff, e.gate);
  d.matmul_many(down, 1);
  for (int64_t j = 0; j < k; ++j) {
    if (w[j].down_bias) d.add_bias(e.moe_out + j * n_embd, *w[j].down_bias, 1);
    d.scatter_rows_scaled(e.moe_out + j * n_embd, n_embd, chosen[j].slot_rows.data(), chosen[j].weights.data(), 1,
                          e.slots);
  }
}

// Expert e's matrices and rows of the biases the layer has: views into the 3-D (2-D) tensors.
ExpertViews expert_views(const MoeWeights &m, int32_t e) {
  auto slice = [&](const std::optional<Weight> &bias) -> std::optional<Weight> {
    if (!bias) return std::nullopt;
    return MoeWeights::expert(*bias, m.n_expert, e);
  };
  return {MoeWeights::expert(m.gate_exps, m.n_expert, e), MoeWeights::expert(m.up_exps, m.n_expert, e),
          MoeWeights::expert(m.down_exps, m.n_expert, e), slice(m.gate_bias), slice(m.up_bias), slice(m.down_bias)};
}

std::vector<Weight *> ExpertViews::present() {
  std::vector<Weight *> out{&gate, &up, &down};
  for (std::optional<Weight> *b : {&gate_bias, &up_bias, &down_bias})
    if (*b) out.push_back(&**b);
  return out;
}

// y = W x (+ b) over `rows` tokens; W and b already readable by d.
void project_rows(Device &d, const Weight &w, const std::optional<Weight> &bias, const float *in, int64_t rows,
                  float *out) {
  d.matmul(w, in, rows, out);
  if (bias) d.add_bias(out, *bias, rows);
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

void transformer_forward(Forward &f) {
  f.embed();
  for (int32_t l = 0; l < f.n_layer(); ++l) {
    f.attention(l);
    f.feed_forward(l);
  }
  f.output();
}

void forward(const ModelInfo &info, const ModelWeights &w, Workspace &ws, std::span<const int32_t> tokens,
             int64_t pos0, int64_t n_out, float *logits_out, Streamer *streamer) {
  if (!w.arch) detail::fail(ErrorCode::internal, "forward: the weights have no architecture");
  Forward f(info, w, ws, tokens, pos0, n_out, logits_out, streamer);
  try {
    w.arch->forward(f);
  } catch (...) {
    if (streamer) streamer->finish();
    throw;
  }
  if (streamer) streamer->finish();
}

}  // namespace vramfit::model
