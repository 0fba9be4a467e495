#include "model/arena.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "common/fault.hpp"

namespace vramfit::model {

Arena::Arena(uint64_t budget_bytes, uint64_t alignment, std::string name)
    : budget_(budget_bytes), alignment_(alignment), name_(std::move(name)) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
    detail::fail(ErrorCode::invalid_argument, "{}: alignment {} is not a power of two", name_, alignment_);
  if (budget_ > 0) free_.emplace(0, budget_);
}

uint64_t Arena::rounded_size(uint64_t bytes) const noexcept {
  const uint64_t n = std::max<uint64_t>(bytes, 1);  // a zero-byte request still gets its own offset
  if (n > UINT64_MAX - alignment_) return UINT64_MAX;
  return (n + alignment_ - 1) & ~(alignment_ - 1);
}

uint64_t Arena::reserve(uint64_t bytes, std::string_view purpose) {
  const uint64_t size = rounded_size(bytes);
  std::lock_guard lock(mutex_);
  // Best fit: the smallest free range that holds the request keeps large ranges for large tensors.
  auto best = free_.end();
  for (auto it = free_.begin(); it != free_.end(); ++it)
    if (it->second >= size && (best == free_.end() || it->second < best->second)) best = it;
  if (best == free_.end() || detail::inject_fault(detail::Fault::device_alloc)) {
    const bool fragmented = size <= budget_ - in_use_;
    detail::fail(ErrorCode::budget_exceeded,
                 "{}: cannot reserve {} bytes for '{}': {} of {} bytes in use{} (budget {} bytes)",
                 name_, bytes, purpose, in_use_, budget_,
                 fragmented ? fmt::format(", largest free range {} bytes (fragmented)", largest_free_locked())
                            : std::string(),
                 budget_);
  }
  const uint64_t offset = best->first;
  const uint64_t left = best->second - size;
  free_.erase(best);
  if (left > 0) free_.emplace(offset + size, left);
  live_.emplace(offset, Live{size, std::string(purpose)});
  in_use_ += size;
  peak_ = std::max(peak_, in_use_);
  return offset;
}

bool Arena::release(uint64_t offset) noexcept {
  std::lock_guard lock(mutex_);
  auto it = live_.find(offset);
  if (it == live_.end()) return false;
  const uint64_t size = it->second.size;
  live_.erase(it);
  in_use_ -= size;
  insert_free_locked(offset, size);
  return true;
}

// Inserts [offset, offset+size) and merges it with the free ranges it touches.
void Arena::insert_free_locked(uint64_t offset, uint64_t size) {
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && offset + size == next->first) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += size;
      return;
    }
  }
  free_.emplace_hint(next, offset, size);
}

uint64_t Arena::largest_free_locked() const noexcept {
  uint64_t largest = 0;
  for (const auto &[offset, size] : free_) largest = std::max(largest, size);
  return largest & ~(alignment_ - 1);  // only aligned sizes can be handed out
}

uint64_t Arena::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}
uint64_t Arena::peak() const {
  std::lock_guard lock(mutex_);
  return peak_;
}
uint64_t Arena::n_live() const {
  std::lock_guard lock(mutex_);
  return live_.size();
}
uint64_t Arena::largest_free() const {
  std::lock_guard lock(mutex_);
  return largest_free_locked();
}
std::string Arena::purpose_of(uint64_t offset) const {
  std::lock_guard lock(mutex_);
  auto it = live_.find(offset);
  return it == live_.end() ? std::string() : it->second.purpose;
}

}  // namespace vramfit::model
