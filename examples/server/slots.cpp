#include "slots.hpp"

#include <fmt/format.h>

#include "api_error.hpp"

namespace vramfit::server {

void DecodeTurns::run(const std::function<void()> &fn) {
  std::unique_lock lock(mutex_);
  const uint64_t ticket = next_ticket_++;
  turn_changed_.wait(lock, [&] { return serving_ == ticket; });
  lock.unlock();
  struct PassOn {
    DecodeTurns &turns;
    ~PassOn() {
      {
        std::lock_guard guard(turns.mutex_);
        ++turns.serving_;
      }
      turns.turn_changed_.notify_all();
    }
  } pass_on{*this};
  fn();
}

uint64_t DecodeTurns::waiting() const {
  std::lock_guard lock(mutex_);
  return next_ticket_ - serving_ - (next_ticket_ > serving_ ? 1 : 0);
}

SlotPool::SlotPool(const Model &model, int32_t n_slots, const ContextParams &params, int32_t max_queue)
    : max_queue_(max_queue) {
  for (int32_t i = 0; i < n_slots; ++i) {
    slots_.push_back(std::make_unique<Slot>(Slot{i, Context(model, params)}));
    free_.push_back(slots_.back().get());
    memory_.push_back(SlotMemory{slots_.back()->context.memory_report(), false});
  }
}

std::unique_ptr<SlotLease> SlotPool::acquire() {
  std::unique_lock lock(mutex_);
  const uint64_t waiting = next_ticket_ - serving_;
  if (free_.empty() && waiting >= static_cast<uint64_t>(max_queue_))
    throw ApiError{503,
                   fmt::format("The server is busy: all {} slots are generating and {} requests are waiting "
                               "(the queue holds {}). Retry later.",
                               slots_.size(), waiting, max_queue_),
                   "server_error", "", "server_busy"};
  const uint64_t ticket = next_ticket_++;
  freed_.wait(lock, [&] { return serving_ == ticket && !free_.empty(); });
  ++serving_;
  Slot *slot = free_.back();
  free_.pop_back();
  memory_[static_cast<size_t>(slot->index)].busy = true;
  lock.unlock();
  freed_.notify_all();  // the next in line may find another free slot
  return std::make_unique<SlotLease>(*this, *slot);
}

void SlotPool::release(Slot &slot) {
  // The context is idle now: its report is safe to take on this thread, which used it last.
  MemoryReport report = slot.context.memory_report();
  {
    std::lock_guard lock(mutex_);
    memory_[static_cast<size_t>(slot.index)] = SlotMemory{std::move(report), false};
    free_.push_back(&slot);
  }
  freed_.notify_all();
}

uint64_t SlotPool::waiting() const {
  std::lock_guard lock(mutex_);
  return next_ticket_ - serving_;
}

std::vector<SlotMemory> SlotPool::memory() const {
  std::lock_guard lock(mutex_);
  return memory_;
}

SlotLease::~SlotLease() { pool_->release(*slot_); }

}  // namespace vramfit::server
