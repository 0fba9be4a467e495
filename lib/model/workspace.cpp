#include <algorithm>

#include "common/error.hpp"
#include "model/llama.hpp"

namespace vramfit::model {

Workspace::Workspace(const ModelInfo &info, const LlamaWeights &w, int64_t n_ctx, int64_t batch,
                     GgmlType kv_type)
    : n_batch(batch), n_logits_rows(std::min<int64_t>(batch, 32)) {
  const int64_t b = batch, n_q = int64_t{info.n_head} * info.head_dim,
                n_kv = int64_t{info.n_head_kv} * info.head_dim;
  try {
    // The devices that run a block, in the order the forward pass meets them.
    std::vector<Device *> devices{w.token_embd.device};
    for (const auto &layer : w.layers) {
      devices.push_back(layer.wq.device);
      devices.push_back(layer.w_gate.device);
    }
    devices.push_back(w.output.device);
    for (Device *d : devices) {
      if (std::any_of(per_device.begin(), per_device.end(), [&](auto &a) { return a.device == d; })) continue;
      Activations a;
      a.device = d;
      a.x = allocate_floats(*d, b * info.n_embd, "activations (residual)");
      a.xb = allocate_floats(*d, b * std::max<int64_t>(info.n_embd, n_q), "activations");
      a.q = allocate_floats(*d, b * n_q, "activations (Q)");
      a.k = allocate_floats(*d, b * n_kv, "activations (K)");
      a.v = allocate_floats(*d, b * n_kv, "activations (V)");
      a.attn = allocate_floats(*d, b * n_q, "activations (attention)");
      a.gate = allocate_floats(*d, b * info.n_ff, "activations (FFN gate)");
      a.up = allocate_floats(*d, b * info.n_ff, "activations (FFN up)");
      if (d == w.output.device) a.logits = allocate_floats(*d, n_logits_rows * info.n_vocab, "logits");
      per_device.push_back(a);
    }
    if (per_device.size() > 1) staging.resize(static_cast<size_t>(b * info.n_embd));

    // Each layer's K and V live with its attention block.
    const uint64_t kv_bytes = row_bytes(kv_type, n_kv) * static_cast<uint64_t>(n_ctx);
    for (const auto &layer : w.layers) {
      Device &device = *layer.wq.device;
      KvLayer layer_kv{nullptr, nullptr, kv_type, n_ctx, info.n_head_kv, info.head_dim, &device};
      layer_kv.k = allocate_bytes(device, kv_bytes, "KV cache (K)");
      layer_kv.v = allocate_bytes(device, kv_bytes, "KV cache (V)");
      kv.push_back(layer_kv);
    }
  } catch (...) {
    for (auto [device, ptr] : allocations_) device->deallocate(ptr);
    throw;
  }
}

Workspace::~Workspace() {
  for (auto [device, ptr] : allocations_) device->deallocate(ptr);
}

Activations &Workspace::on(Device &device) {
  for (auto &a : per_device)
    if (a.device == &device) return a;
  detail::fail(ErrorCode::internal, "no activation buffers on device {}", device.name());
}

float *Workspace::allocate_floats(Device &device, int64_t n, std::string_view purpose) {
  return static_cast<float *>(allocate_bytes(device, static_cast<uint64_t>(n) * sizeof(float), purpose));
}

void *Workspace::allocate_bytes(Device &device, uint64_t n, std::string_view purpose) {
  void *ptr = device.allocate(n, purpose);
  allocations_.emplace_back(&device, ptr);
  return ptr;
}

void check_placement(const LlamaWeights &w) {
  auto same_device = [](std::initializer_list<const Weight *> block) {
    const Weight &first = **block.begin();
    for (const Weight *other : block)
      if (!other->device || other->device != first.device)
        detail::fail(ErrorCode::unsupported,
                     "weights '{}' and '{}' belong to one block but are not placed on the same device",
                     first.name, other->name);
  };
  same_device({&w.token_embd});
  same_device({&w.output, &w.output_norm});
  for (const auto &l : w.layers) {
    same_device({&l.wq, &l.attn_norm, &l.wk, &l.wv, &l.wo});
    same_device({&l.w_gate, &l.ffn_norm, &l.w_up, &l.w_down});
  }
}

}  // namespace vramfit::model
