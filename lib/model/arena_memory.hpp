// model::ArenaMemory — the memory bookkeeping shared by the budgeted devices (SimDevice, CudaDevice).
//
// Such a device makes ONE allocation of exactly its budget (host memory, or one cudaMalloc) and
// attaches it here. ArenaMemory hands out pieces of it through an Arena, turns pointers back into
// arena offsets (refusing any it did not hand out), and counts the copies for memory_stats().
// What the memory is and how bytes are copied stays with the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "model/arena.hpp"
#include "model/device.hpp"

namespace vramfit::model {

class ArenaMemory {
 public:
  // `name` starts the messages ("sim", "cuda:0"); the memory itself is attached once it exists.
  ArenaMemory(uint64_t budget_bytes, uint64_t alignment, const std::string &name);

  void attach(std::byte *base) noexcept { base_ = base; }
  std::byte *base() const noexcept { return base_; }
  const Arena &arena() const noexcept { return arena_; }

  // A fresh range of the budget; throws Error(budget_exceeded) naming `purpose` when it does not fit.
  void *allocate(uint64_t bytes, std::string_view purpose);
  // Gives a range back; a pointer this memory did not hand out is logged and ignored.
  void deallocate(void *ptr) noexcept;
  // Throws Error(invalid_argument) naming `op` unless [ptr, ptr+bytes) lies in this memory.
  void check_range(const void *ptr, uint64_t bytes, const char *op) const;

  // Count a finished copy, for stats().
  void count_upload(uint64_t bytes);
  void count_download(uint64_t bytes);
  DeviceMemoryStats stats() const;

 private:
  Arena arena_;
  std::string name_;
  std::byte *base_ = nullptr;
  mutable std::mutex stats_mutex_;
  uint64_t bytes_uploaded_ = 0;
  uint64_t bytes_downloaded_ = 0;
  uint64_t n_copies_ = 0;
};

}  // namespace vramfit::model
