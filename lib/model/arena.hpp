// model::Arena — the budget keeper of one device.
//
// A device makes ONE allocation of exactly its budget up front (host memory for SimDevice, one
// cudaMalloc for CudaDevice) and hands out pieces of it through an Arena. The Arena only does the
// bookkeeping, in offsets from the start of that region: which ranges are live, for what purpose,
// how many bytes are in use and the high-water mark. So "every device byte comes from the arena,
// and the arena knows its budget" holds by construction, and the bookkeeping is testable without
// any memory behind it.
//
// Every reservation consumes round_up(max(bytes, 1), alignment) bytes of the budget: that rounded
// size is what in_use()/peak() report, and what a planner must count.
//
// Thread safety: every member takes an internal mutex, so one context may reserve and release from
// its worker threads. The arena is not meant to be shared by several contexts (each device owns one).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vramfit::model {

class Arena {
 public:
  // `alignment` must be a power of two; `name` appears in error messages ("cuda:0", "sim").
  Arena(uint64_t budget_bytes, uint64_t alignment, std::string name = "arena");

  Arena(const Arena &) = delete;
  Arena &operator=(const Arena &) = delete;

  // Returns the offset of a fresh range of at least `bytes` bytes, aligned to alignment().
  // Throws Error(budget_exceeded) naming the purpose, the request, the bytes in use and the
  // budget — having reserved nothing — when the request does not fit.
  uint64_t reserve(uint64_t bytes, std::string_view purpose);
  // Gives back a range returned by reserve(). Returns false (and changes nothing) for an offset
  // that is not live, so a double release is caught instead of corrupting the free list.
  bool release(uint64_t offset) noexcept;

  uint64_t budget() const noexcept { return budget_; }
  uint64_t alignment() const noexcept { return alignment_; }
  uint64_t in_use() const;        // bytes of live reservations (rounded sizes)
  uint64_t peak() const;          // high-water mark of in_use()
  uint64_t n_live() const;        // live reservations
  uint64_t largest_free() const;  // the largest request that would succeed now
  // The purpose string a live offset was reserved for ("" when not live): for diagnostics.
  std::string purpose_of(uint64_t offset) const;
  // Bytes a reservation of `bytes` consumes.
  uint64_t rounded_size(uint64_t bytes) const noexcept;

 private:
  struct Live {
    uint64_t size;
    std::string purpose;
  };

  uint64_t largest_free_locked() const noexcept;
  void insert_free_locked(uint64_t offset, uint64_t size);

  const uint64_t budget_;
  const uint64_t alignment_;
  const std::string name_;
  mutable std::mutex mutex_;
  std::map<uint64_t, uint64_t> free_;  // offset -> size, coalesced: no two ranges touch
  std::unordered_map<uint64_t, Live> live_;
  uint64_t in_use_ = 0;
  uint64_t peak_ = 0;
};

}  // namespace vramfit::model
