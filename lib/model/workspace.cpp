#include "model/workspace.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "common/error.hpp"

namespace vramfit::model {

offload::ActivationDims activation_dims(const ModelInfo &info) {
  offload::ActivationDims d;
  d.n_embd = info.n_embd;
  d.n_q = int64_t{info.n_head} * info.head_dim;
  d.n_kv = int64_t{info.n_head_kv} * info.head_dim;
  d.n_ff = info.n_expert > 0 ? info.n_ff_exp : info.n_ff;  // a MoE model has no dense layer
  d.n_vocab = info.n_vocab;
  d.n_expert = info.n_expert;
  d.n_expert_used = info.n_expert_used;
  return d;
}

Workspace::Workspace(const ModelInfo &info, const ModelWeights &w, int64_t n_ctx, int64_t batch,
                     GgmlType kv_type, std::span<const PlannedScratch> planned_scratch)
    : n_batch(batch), n_logits_rows(std::min(batch, offload::logits_rows)) {
  const int64_t n_kv = int64_t{info.n_head_kv} * info.head_dim;
  try {
    // The devices that run a block, in the order the forward pass meets them.
    for (const Block &block : w.blocks()) {
      Device *d = block.weights.front()->device;
      if (std::any_of(per_device.begin(), per_device.end(), [&](auto &a) { return a.device == d; })) continue;
      Activations a;
      a.device = d;
      allocate_activations(a, info, d == w.output.device, planned_scratch);
      per_device.push_back(a);
    }
    if (per_device.size() > 1) staging.resize(static_cast<size_t>(batch * info.n_embd));
    router_logits.resize(static_cast<size_t>(batch * info.n_expert));

    // Each layer's K and V live with its attention block; a windowed layer's hold only the window
    // and one batch (the plan's offload::kv_rows).
    for (int32_t l = 0; l < static_cast<int32_t>(w.layers.size()); ++l) {
      Device &device = *w.layers[static_cast<size_t>(l)].attn.wq.device;
      const auto rows = static_cast<int64_t>(offload::kv_rows(static_cast<uint64_t>(info.attention_window(l)),
                                                              static_cast<uint64_t>(n_ctx), static_cast<uint64_t>(batch)));
      const uint64_t kv_bytes = row_bytes(kv_type, n_kv) * static_cast<uint64_t>(rows);
      KvLayer layer_kv{nullptr, nullptr, kv_type, rows, info.n_head_kv, info.head_dim, &device};
      // Host caches the CPU attends over are laid out by head (see KvLayer); the other devices'
      // kernels read rows.
      layer_kv.by_head = device.kind() == DeviceKind::cpu && heads_are_whole_blocks(kv_type, info.head_dim);
      layer_kv.k = allocate_bytes(device, kv_bytes, "KV cache (K)");
      layer_kv.v = allocate_bytes(device, kv_bytes, "KV cache (V)");
      kv.push_back(layer_kv);
      kv_first_pos.push_back(0);
    }
  } catch (...) {
    for (auto [device, ptr] : allocations_) device->deallocate(ptr);
    throw;
  }
}

// One allocation holds every activation buffer of the device, each cache-line aligned: exactly
// offload::activation_bytes(), so the plan's scratch is what is used.
void Workspace::allocate_activations(Activations &a, const ModelInfo &info, bool holds_output,
                                     std::span<const PlannedScratch> planned_scratch) {
  using offload::Activation;
  const offload::ActivationDims dims = activation_dims(info);
  const auto floats = offload::activation_floats(dims, n_batch, holds_output);
  const uint64_t needed = offload::activation_bytes(dims, n_batch, holds_output);
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
  float **buffers[] = {&a.x,    &a.xb,     &a.q,      &a.k,      &a.v,     &a.attn,  &a.gate,
                       &a.up,   &a.router, &a.moe_in, &a.moe_out, &a.slots, &a.logits};
  static_assert(std::size(buffers) == static_cast<size_t>(Activation::count));
  uint64_t offset = 0;
  for (size_t i = 0; i < std::size(buffers); ++i) {
    *buffers[i] = floats[i] > 0 ? reinterpret_cast<float *>(base + offset) : nullptr;
    const uint64_t b = floats[i] * sizeof(float);
    offset += (b + offload::activation_alignment - 1) / offload::activation_alignment * offload::activation_alignment;
  }
}

// Row r of a cache holds position kv_first_pos + r. A windowed cache that would overflow moves
// its last window - 1 rows to the front (once per n_batch tokens at most): the keys the batch's
// first query still sees.
int64_t Workspace::slide_kv(int32_t layer, int64_t pos0, int64_t n_tokens, int64_t window) {
  KvLayer &cache = kv[static_cast<size_t>(layer)];
  int64_t &first = kv_first_pos[static_cast<size_t>(layer)];
  if (pos0 == 0) first = 0;
  const int64_t needed_from = window > 0 ? std::max<int64_t>(0, pos0 - window + 1) : 0;
  if (needed_from < first)
    detail::fail(ErrorCode::invalid_argument,
                 "layer {}: the sliding-window KV cache no longer holds position {} (it starts at {}); a sequence "
                 "can only be cut back to within the window",
                 layer, needed_from, first);
  if (pos0 + n_tokens - first <= cache.n_ctx) return first;
  if (window == 0 || pos0 + n_tokens - needed_from > cache.n_ctx)
    detail::fail(ErrorCode::internal, "layer {}: positions {}..{} do not fit its KV cache of {} rows", layer, needed_from,
                 pos0 + n_tokens - 1, cache.n_ctx);
  // Each part's rows (all of them, or one KV head's) move within the part.
  const uint64_t bytes = cache.row_stride() * static_cast<uint64_t>(pos0 - needed_from);
  kv_staging.resize(bytes);
  cache.device->synchronize();
  for (void *buffer : {cache.k, cache.v})
    for (int64_t part = 0; part < cache.n_parts(); ++part) {
      cache.device->download(kv_staging.data(), cache.head_row(buffer, part, needed_from - first), bytes);
      cache.device->upload(cache.head_row(buffer, part, 0), kv_staging.data(), bytes);
    }
  first = needed_from;
  return first;
}

int64_t Workspace::resume_floor(const ModelInfo &info) const {
  int64_t floor = 0;
  for (int32_t l = 0; l < static_cast<int32_t>(kv.size()); ++l) {
    const int64_t first = kv_first_pos[static_cast<size_t>(l)];
    if (first > 0) floor = std::max(floor, first + info.attention_window(l) - 1);
  }
  return floor;
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

}  // namespace vramfit::model
