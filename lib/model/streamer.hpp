// Streaming a long prompt's host-placed weights through the device: two staging slots, filled in
// turn, so the device computes from one while the next is copied in (on a GPU; the sim device
// copies in place). The plan sizes them (Plan::Streaming) and the executor owns them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "model/weights.hpp"

namespace vramfit::model {

class Streamer {
 public:
  // `device` must outlive this; allocates two slots of slot_bytes and, when kv_bytes > 0, K and V
  // copies of kv_bytes each (the device copy of a host layer's KV cache).
  Streamer(Device &device, uint64_t slot_bytes, uint64_t kv_bytes);
  ~Streamer();
  Streamer(const Streamer &) = delete;
  Streamer &operator=(const Streamer &) = delete;

  Device &device() noexcept { return device_; }
  // A device view of `host`, copied into the next slot (which is released by the ops issued
  // since the one before: each staged weight must be used before the next one but one is staged).
  Weight stage(const Weight &host);
  // Several views (one expert's matrices and bias rows) copied together into the next slot; each
  // is re-pointed at its copy.
  void stage_together(std::span<Weight *const> views);
  // Ends a batch: the last slot is released.
  void finish();

  // The device copy of `host`'s KV cache holding rows [0, n_rows) of it; write_back() returns rows
  // [first, first + n) to the host cache. The copy is row-major whatever the host's layout.
  KvLayer kv_copy(const KvLayer &host, int64_t n_rows);
  void write_back(const KvLayer &copy, KvLayer &host, int64_t first, int64_t n);

  uint64_t weight_bytes_uploaded() const noexcept { return weight_bytes_uploaded_; }

 private:
  int next_slot();
  // One cache (K or V) of `host`: rows [0, n_rows) to the device copy, rows [first, first + n) back.
  void upload_rows(const KvLayer &host, void *host_cache, void *device_cache, int64_t n_rows);
  void download_rows(const KvLayer &host, const void *device_cache, void *host_cache, int64_t first, int64_t n);

  Device &device_;
  uint64_t slot_bytes_;
  uint64_t kv_bytes_;
  std::array<void *, 2> slots_{};
  void *kv_k_ = nullptr;
  void *kv_v_ = nullptr;
  int last_slot_ = -1;
  uint64_t weight_bytes_uploaded_ = 0;
  std::vector<std::byte> kv_rows_;  // a head-major host cache's rows in row-major order, a chunk at a time
};

}  // namespace vramfit::model
