#include <algorithm>
#include <chrono>
#include <utility>

#include "cpu/ops.hpp"

namespace vramfit::cpu {
namespace {

thread_local bool t_inside_pool = false;  // set while this thread runs a chunk
thread_local int t_thread_index = 0;

struct InsideScope {
  bool saved = t_inside_pool;
  int saved_index = t_thread_index;
  explicit InsideScope(int index) {
    t_inside_pool = true;
    t_thread_index = index;
  }
  ~InsideScope() {
    t_inside_pool = saved;
    t_thread_index = saved_index;
  }
};

// Polls `ready` for up to `microseconds` (reading the clock every 64 polls); true once ready.
// After the first few microseconds each poll yields the core: on a machine busier than our
// thread count, the thread we wait for may need it.
template <class Ready>
bool spin_until(Ready ready, int microseconds) {
  const auto start = std::chrono::steady_clock::now();
  const auto yield_from = start + std::chrono::microseconds(5);
  const auto deadline = start + std::chrono::microseconds(microseconds);
  bool yielding = false;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      if (yielding) std::this_thread::yield();
#if defined(__x86_64__) || defined(__i386__)
      else __builtin_ia32_pause();
#endif
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return ready();
    yielding = now >= yield_from;
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (std::thread &t : workers_) t.join();
}

int ThreadPool::thread_index() noexcept { return t_thread_index; }

int64_t ThreadPool::chunk_begin(int64_t chunk) const noexcept {
  if (chunk <= head_chunks_) return head_n_ * chunk / std::max<int64_t>(head_chunks_, 1);
  return head_n_ + (n_ - head_n_) * (chunk - head_chunks_) / (chunks_ - head_chunks_);
}

void ThreadPool::cut(int64_t n, Split split) noexcept {
  n_ = n;
  const int64_t threads = size();
  head_n_ = split == Split::streaming ? static_cast<int64_t>(static_cast<double>(n) * kStreamingHead) : 0;
  const int64_t tail_chunks = std::min(threads * kStreamingTailChunks, n - head_n_);  // none empty
  if (split == Split::streaming && head_n_ >= threads && tail_chunks > 0) {
    head_chunks_ = threads;
    chunks_ = threads + tail_chunks;
  } else {
    head_chunks_ = head_n_ = 0;
    chunks_ = std::min<int64_t>(n, threads * (split == Split::streaming ? 1 : kEvenChunksPerThread));
  }
}

void ThreadPool::run_chunks(int index) noexcept {
  InsideScope inside(index);
  for (;;) {
    const int64_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (chunk >= chunks_) return;
    try {
      (*fn_)(chunk_begin(chunk), chunk_begin(chunk + 1));
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  const auto job_ready = [&] {
    return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
  };
  for (;;) {
    if (!spin_until(job_ready, kSpinMicroseconds)) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, job_ready);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    run_chunks(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);  // the caller tests pending_ under it before sleeping
      done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)> &fn, Split split) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1 || t_inside_pool) {
    InsideScope inside(t_thread_index);
    fn(0, n);
    return;
  }
  std::lock_guard call(call_mutex_);
  cut(n, split);
  next_chunk_.store(0, std::memory_order_relaxed);  // published by the generation bump below
  fn_ = &fn;
  error_ = nullptr;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);  // a worker tests generation_ under it before sleeping
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  run_chunks(0);
  const auto all_done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done, kSpinMicroseconds)) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, all_done);
  }
  fn_ = nullptr;
  std::exception_ptr error;
  {
    std::lock_guard lock(mutex_);
    error = std::exchange(error_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace vramfit::cpu
