// The server's parallel slots: N contexts on one model (the plan reserved a KV cache and scratch
// for each inside the budget), a bounded queue of requests waiting for one, and the turns the
// busy slots take to decode.
//
// Why turns: every context has a thread pool as wide as the machine. Run at once, N pools fight
// for the cores and spin on each other (measured: 4 contexts on 2 cores, 16x slower than one at a
// time). So one decode runs at a time, and the busy slots take turns in arrival order (a ticket
// queue, not a mutex, which would let the slot that just decoded win again): each turn is one
// token of one slot, or n_batch tokens of a new request's prompt.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "response.hpp"
#include "vramfit/context.hpp"
#include "vramfit/model.hpp"

namespace vramfit::server {

// A fair (first come, first served) turn for running a function. Thread-safe.
class DecodeTurns {
 public:
  // Waits for this caller's turn, runs fn, passes the turn on (also when fn throws).
  void run(const std::function<void()> &fn);
  // Callers waiting for their turn (the one running aside).
  uint64_t waiting() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable turn_changed_;
  uint64_t next_ticket_ = 0;
  uint64_t serving_ = 0;
};

struct Slot {
  int index = 0;
  Context context;
};

class SlotPool;

// A slot held by one request; given back when destroyed.
class SlotLease {
 public:
  SlotLease(SlotPool &pool, Slot &slot) : pool_(&pool), slot_(&slot) {}
  SlotLease(const SlotLease &) = delete;
  SlotLease &operator=(const SlotLease &) = delete;
  ~SlotLease();
  Slot &slot() noexcept { return *slot_; }

 private:
  SlotPool *pool_;
  Slot *slot_;
};

class SlotPool {
 public:
  // n_slots contexts of `params` on `model`; Error as Context's constructor when they do not fit.
  SlotPool(const Model &model, int32_t n_slots, const ContextParams &params, int32_t max_queue);

  // A free slot, after the requests that came first; ApiError 503 when max_queue requests are
  // already waiting. Thread-safe.
  std::unique_ptr<SlotLease> acquire();

  int32_t n_slots() const noexcept { return static_cast<int32_t>(slots_.size()); }
  int32_t n_ctx() const noexcept { return slots_.front()->context.n_ctx(); }
  DecodeTurns &turns() noexcept { return turns_; }
  // Requests waiting for a slot now.
  uint64_t waiting() const;
  // Each slot's memory, as of when it last finished a request (a busy context is its request's).
  std::vector<SlotMemory> memory() const;

 private:
  friend class SlotLease;
  void release(Slot &slot);

  std::vector<std::unique_ptr<Slot>> slots_;
  int32_t max_queue_;
  DecodeTurns turns_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<Slot *> free_;
  std::vector<SlotMemory> memory_;  // per slot
  uint64_t next_ticket_ = 0;        // queue order of acquire()
  uint64_t serving_ = 0;
};

}  // namespace vramfit::server
