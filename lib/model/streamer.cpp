#include "model/streamer.hpp"

#include <vector>

#include "common/error.hpp"

namespace vramfit::model {
Streamer::Streamer(Device &device, uint64_t slot_bytes, uint64_t kv_bytes)
    : device_(device), slot_bytes_(slot_bytes), kv_bytes_(kv_bytes) {
  try {
    for (void *&slot : slots_) slot = device.allocate(slot_bytes, "staging (streamed weights)");
    device.stream_prepare(static_cast<int>(slots_.size()), slot_bytes);
    if (kv_bytes > 0) {
      kv_k_ = device.allocate(kv_bytes, "staging (KV copy, K)");
      kv_v_ = device.allocate(kv_bytes, "staging (KV copy, V)");
    }
  } catch (...) {
    for (void *p : {slots_[0], slots_[1], kv_k_, kv_v_}) device.deallocate(p);
    throw;
  }
}

Streamer::~Streamer() {
  for (void *p : {slots_[0], slots_[1], kv_k_, kv_v_}) device_.deallocate(p);
}

int Streamer::next_slot() {
  if (last_slot_ >= 0) device_.stream_release(last_slot_);
  last_slot_ = (last_slot_ + 1) % 2;
  return last_slot_;
}

Weight Streamer::stage(const Weight &host) {
  const uint64_t bytes = host.bytes();
  if (bytes > slot_bytes_)
    detail::fail(ErrorCode::internal, "streaming '{}': {} bytes exceed the planned slot of {}", host.name, bytes,
                 slot_bytes_);
  const int slot = next_slot();
  device_.stream_upload(slot, slots_[static_cast<size_t>(slot)], host.data, bytes);
  device_.stream_acquire(slot);
  weight_bytes_uploaded_ += bytes;
  Weight view = host;
  view.data = slots_[static_cast<size_t>(slot)];
  view.device = &device_;
  return view;
}

// Each view starts on a 256-byte boundary (as every device allocation does): kernels may rely on it.
void Streamer::stage_together(std::span<Weight *const> views) {
  constexpr uint64_t align = 256;
  auto padded = [&](uint64_t bytes) { return (bytes + align - 1) / align * align; };
  uint64_t total = 0;
  for (const Weight *w : views) total += padded(w->bytes());
  if (total > slot_bytes_)
    detail::fail(ErrorCode::internal, "streaming '{}' and the rest of its expert: {} bytes exceed the planned slot of {}",
                 views.front()->name, total, slot_bytes_);
  const int slot = next_slot();
  auto *at = static_cast<std::byte *>(slots_[static_cast<size_t>(slot)]);
  for (Weight *w : views) {
    const uint64_t bytes = w->bytes();
    device_.stream_upload(slot, at, w->data, bytes);
    w->data = at;
    w->device = &device_;
    at += padded(bytes);
    weight_bytes_uploaded_ += bytes;
  }
  device_.stream_acquire(slot);
}

void Streamer::finish() {
  if (last_slot_ >= 0) device_.stream_release(last_slot_);
  last_slot_ = -1;
}

KvLayer Streamer::kv_copy(const KvLayer &host, int64_t n_rows) {
  const uint64_t row = host.bytes_per_row();
  if (!kv_k_ || row * static_cast<uint64_t>(host.n_ctx) > kv_bytes_)
    detail::fail(ErrorCode::internal, "streaming: the KV copy of {} bytes cannot hold {} rows of {} bytes", kv_bytes_,
                 host.n_ctx, row);
  KvLayer copy = host;
  copy.k = kv_k_;
  copy.v = kv_v_;
  copy.device = &device_;
  if (n_rows > 0) {
    device_.upload(copy.k, host.k, row * static_cast<uint64_t>(n_rows));
    device_.upload(copy.v, host.v, row * static_cast<uint64_t>(n_rows));
  }
  return copy;
}

void Streamer::write_back(const KvLayer &copy, KvLayer &host, int64_t first, int64_t n) {
  const uint64_t row = host.bytes_per_row(), at = row * static_cast<uint64_t>(first);
  device_.synchronize();
  device_.download(static_cast<std::byte *>(host.k) + at, static_cast<const std::byte *>(copy.k) + at,
                   row * static_cast<uint64_t>(n));
  device_.download(static_cast<std::byte *>(host.v) + at, static_cast<const std::byte *>(copy.v) + at,
                   row * static_cast<uint64_t>(n));
}

}  // namespace vramfit::model
