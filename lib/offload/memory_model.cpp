#include "offload/memory_model.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace vramfit::offload {

uint64_t arena_bytes(uint64_t bytes) noexcept {
  constexpr uint64_t a = Plan::device_alignment;
  if (bytes > UINT64_MAX - (a - 1)) return UINT64_MAX / a * a;  // saturate: rounding up must not wrap to 0
  return (std::max<uint64_t>(bytes, 1) + a - 1) / a * a;
}

uint64_t kv_row_bytes(const ModelShape &model, KvType type) {
  const uint64_t n = model.n_embd_kv();
  switch (type) {
    case KvType::f32:
      return n * 4;
    case KvType::f16:
      return n * 2;
    case KvType::q8_0:
      if (n % 32 != 0)
        detail::fail(ErrorCode::invalid_argument,
                     "--kv-type q8_0 needs n_head_kv*head_dim ({}) to be a multiple of 32; use f16", n);
      return n / 32 * 34;
  }
  return 0;
}

uint64_t kv_rows(uint64_t window, uint64_t n_ctx, uint64_t n_batch) noexcept {
  return window > 0 ? std::min(n_ctx, window - 1 + n_batch) : n_ctx;
}

uint64_t kv_layer_bytes(const ModelShape &model, KvType type, uint32_t il, uint32_t n_ctx, uint32_t n_batch) {
  return kv_rows(model.attention_window(il), n_ctx, n_batch) * kv_row_bytes(model, type);
}

ActivationDims activation_dims(const ModelShape &model) {
  ActivationDims d;
  d.n_embd = model.n_embd;
  d.n_q = int64_t{model.n_head} * model.head_dim;
  d.n_kv = int64_t{model.n_head_kv} * model.head_dim;
  d.n_ff = model.n_expert > 0 ? model.n_ff_exp : model.n_ff;  // a MoE model has no dense layer
  d.n_vocab = model.n_vocab;
  d.n_expert = model.n_expert;
  d.n_expert_used = model.n_expert > 0 ? model.n_expert_used : 0;
  return d;
}

std::array<uint64_t, static_cast<size_t>(Activation::count)> activation_floats(const ActivationDims &d,
                                                                                int64_t n_batch, bool holds_output) {
  const auto b = static_cast<uint64_t>(n_batch);
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  return {b * u(d.n_embd),
          b * u(std::max(d.n_embd, d.n_q)),
          b * u(d.n_q),
          b * u(d.n_kv),
          b * u(d.n_kv),
          b * u(d.n_q),
          b * u(d.n_ff),
          b * u(d.n_ff),
          b * u(d.n_expert),
          d.n_expert > 0 ? b * u(d.n_embd) : 0,
          d.n_expert > 0 ? b * u(d.n_embd) : 0,
          u(d.n_expert_used) * b * u(d.n_embd),
          holds_output ? u(std::min<int64_t>(n_batch, logits_rows)) * u(d.n_vocab) : 0};
}

uint64_t activation_bytes(const ActivationDims &dims, int64_t n_batch, bool holds_output) {
  uint64_t total = 0;
  for (uint64_t floats : activation_floats(dims, n_batch, holds_output))
    total += (floats * sizeof(float) + activation_alignment - 1) / activation_alignment * activation_alignment;
  return total;
}

uint64_t scratch_bytes(const ModelShape &model, uint32_t /*n_ctx*/, uint32_t n_batch, bool holds_output) {
  return activation_bytes(activation_dims(model), n_batch, holds_output);
}

uint64_t staging_bytes(const ModelShape &model, uint32_t n_batch) {
  const uint64_t q_dim = uint64_t{model.n_head} * model.head_dim;
  const uint64_t widest = std::max<uint64_t>(model.n_embd, q_dim + 2ull * model.n_embd_kv());
  return uint64_t{n_batch} * widest * sizeof(float);
}

}  // namespace vramfit::offload
