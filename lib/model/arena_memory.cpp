#include "model/arena_memory.hpp"

#include "common/error.hpp"
#include "common/log.hpp"

namespace vramfit::model {

ArenaMemory::ArenaMemory(uint64_t budget_bytes, uint64_t alignment, const std::string &name)
    : arena_(budget_bytes, alignment, name), name_(name) {}

void *ArenaMemory::allocate(uint64_t bytes, std::string_view purpose) {
  return base_ + arena_.reserve(bytes, purpose);
}

void ArenaMemory::deallocate(void *ptr) noexcept {
  if (!ptr) return;
  const auto *p = static_cast<const std::byte *>(ptr);
  if (p < base_ || p >= base_ + arena_.budget() || !arena_.release(static_cast<uint64_t>(p - base_)))
    detail::log_warn("{}: deallocate of {} which this device did not allocate (ignored)", name_, ptr);
}

void ArenaMemory::check_range(const void *ptr, uint64_t bytes, const char *op) const {
  const auto *p = static_cast<const std::byte *>(ptr);
  const bool inside = p && base_ && p >= base_ && static_cast<uint64_t>(p - base_) <= arena_.budget() &&
                      bytes <= arena_.budget() - static_cast<uint64_t>(p - base_);
  if (!inside)
    detail::fail(ErrorCode::invalid_argument, "{} {}: {} bytes at {} are not memory of this device", name_, op,
                 bytes, ptr);
}

void ArenaMemory::count_upload(uint64_t bytes) {
  std::lock_guard lock(stats_mutex_);
  bytes_uploaded_ += bytes;
  ++n_copies_;
}

void ArenaMemory::count_download(uint64_t bytes) {
  std::lock_guard lock(stats_mutex_);
  bytes_downloaded_ += bytes;
  ++n_copies_;
}

DeviceMemoryStats ArenaMemory::stats() const {
  DeviceMemoryStats stats;
  stats.budget_bytes = arena_.budget();
  stats.allocated_bytes = arena_.in_use();
  stats.peak_bytes = arena_.peak();
  std::lock_guard lock(stats_mutex_);
  stats.bytes_uploaded = bytes_uploaded_;
  stats.bytes_downloaded = bytes_downloaded_;
  stats.n_copies = n_copies_;
  return stats;
}

}  // namespace vramfit::model
