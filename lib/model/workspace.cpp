#include <algorithm>
#include <cstddef>
#include <utility>

#include "common/error.hpp"
#include "model/llama.hpp"

namespace vramfit::model {

namespace {

constexpr uint64_t buffer_alignment = 64;  // a cache line: every SIMD load of a row is aligned

uint64_t aligned_floats_bytes(int64_t n) {
  const uint64_t bytes = static_cast<uint64_t>(n) * sizeof(float);
  return (bytes + buffer_alignment - 1) / buffer_alignment * buffer_alignment;
}

}  // namespace

Workspace::Workspace(const ModelInfo &info, const LlamaWeights &w, int64_t n_ctx, int64_t batch,
                     GgmlType kv_type, std::span<const PlannedScratch> planned_scratch)
    : n_batch(batch), n_logits_rows(std::min<int64_t>(batch, 32)) {
  const int64_t n_kv = int64_t{info.n_head_kv} * info.head_dim;
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
      allocate_activations(a, info, d == w.output.device, planned_scratch);
      per_device.push_back(a);
    }
    if (per_device.size() > 1) staging.resize(static_cast<size_t>(batch * info.n_embd));

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

// One allocation holds every activation buffer of the device, each cache-line aligned.
void Workspace::allocate_activations(Activations &a, const ModelInfo &info, bool holds_output,
                                     std::span<const PlannedScratch> planned_scratch) {
  const int64_t b = n_batch, n_q = int64_t{info.n_head} * info.head_dim,
                n_kv = int64_t{info.n_head_kv} * info.head_dim;
  const std::pair<float **, int64_t> buffers[] = {
      {&a.x, b * info.n_embd},   {&a.xb, b * std::max<int64_t>(info.n_embd, n_q)},
      {&a.q, b * n_q},           {&a.k, b * n_kv},
      {&a.v, b * n_kv},          {&a.attn, b * n_q},
      {&a.gate, b * info.n_ff},  {&a.up, b * info.n_ff},
      {&a.logits, holds_output ? n_logits_rows * info.n_vocab : 0}};
  uint64_t needed = 0;
  for (const auto &[ptr, n] : buffers) needed += aligned_floats_bytes(n);

  uint64_t bytes = needed;
  for (const PlannedScratch &p : planned_scratch) {
    if (p.device != a.device) continue;
    if (p.bytes < needed)
      detail::fail(ErrorCode::internal, "{}: the planned scratch of {} bytes is smaller than the {} the activations need",
                   a.device->name(), p.bytes, needed);
    bytes = p.bytes;
  }
  auto *base = static_cast<std::byte *>(allocate_bytes(*a.device, bytes, "scratch (activations)"));
  a.scratch_bytes = bytes;
  uint64_t offset = 0;
  for (const auto &[ptr, n] : buffers) {
    *ptr = n > 0 ? reinterpret_cast<float *>(base + offset) : nullptr;
    offset += aligned_floats_bytes(n);
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
