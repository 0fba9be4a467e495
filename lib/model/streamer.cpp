#include "model/streamer.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.hpp"

namespace vramfit::model {
namespace {

// Rows of a head-major host cache moved through the row-major staging at a time: enough to make
// each copy large, few enough to keep the staging small.
constexpr int64_t kTransposeRows = 256;

// Rows [first, first + n) of a host cache between its layout and `rows` (row-major, n rows).
void gather_rows(const KvLayer &kv, void *cache, int64_t first, int64_t n, std::byte *rows) {
  const uint64_t row = kv.bytes_per_row(), head = kv.head_row_bytes();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < kv.n_head_kv; ++h)
      std::memcpy(rows + static_cast<uint64_t>(r) * row + static_cast<uint64_t>(h) * head,
                  kv.head_row(cache, h, first + r), head);
}
void scatter_rows(const KvLayer &kv, void *cache, int64_t first, int64_t n, const std::byte *rows) {
  const uint64_t row = kv.bytes_per_row(), head = kv.head_row_bytes();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < kv.n_head_kv; ++h)
      std::memcpy(kv.head_row(cache, h, first + r),
                  rows + static_cast<uint64_t>(r) * row + static_cast<uint64_t>(h) * head, head);
}

}  // namespace

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
  copy.by_head = false;  // the device's kernels read rows
  upload_rows(host, host.k, copy.k, n_rows);
  upload_rows(host, host.v, copy.v, n_rows);
  return copy;
}

// A head-major host cache goes through the staging rows, so the device copy stays row-major.
void Streamer::upload_rows(const KvLayer &host, void *host_cache, void *device_cache, int64_t n_rows) {
  const uint64_t row = host.bytes_per_row();
  if (n_rows <= 0) return;
  if (!host.by_head) return device_.upload(device_cache, host_cache, row * static_cast<uint64_t>(n_rows));
  for (int64_t r = 0; r < n_rows; r += kTransposeRows) {
    const int64_t n = std::min(kTransposeRows, n_rows - r);
    kv_rows_.resize(row * static_cast<uint64_t>(n));
    gather_rows(host, host_cache, r, n, kv_rows_.data());
    device_.upload(static_cast<std::byte *>(device_cache) + row * static_cast<uint64_t>(r), kv_rows_.data(),
                   row * static_cast<uint64_t>(n));
  }
}

void Streamer::write_back(const KvLayer &copy, KvLayer &host, int64_t first, int64_t n) {
  device_.synchronize();
  download_rows(host, copy.k, host.k, first, n);
  download_rows(host, copy.v, host.v, first, n);
}

void Streamer::download_rows(const KvLayer &host, const void *device_cache, void *host_cache, int64_t first,
                             int64_t n) {
  const uint64_t row = host.bytes_per_row();
  const auto *src = static_cast<const std::byte *>(device_cache);
  if (!host.by_head)
    return device_.download(host.head_row(host_cache, 0, first), src + row * static_cast<uint64_t>(first),
                            row * static_cast<uint64_t>(n));
  for (int64_t r = first; r < first + n; r += kTransposeRows) {
    const int64_t m = std::min(kTransposeRows, first + n - r);
    kv_rows_.resize(row * static_cast<uint64_t>(m));
    device_.download(kv_rows_.data(), src + row * static_cast<uint64_t>(r), row * static_cast<uint64_t>(m));
    scatter_rows(host, host_cache, r, m, kv_rows_.data());
  }
}

}  // namespace vramfit::model
