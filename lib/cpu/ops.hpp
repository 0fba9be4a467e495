// CPU compute for the forward pass: a persistent thread pool, row dequantization and the
// quantized matrix product, all on SIMD kernels chosen once at run time for this CPU.
//
// Numerics follow llama.cpp's CPU backend: K-quant weights are multiplied with activations
// quantized to Q8_K (Q4_0 / Q8_0 weights: Q8_0), F16 weights with activations rounded to f16,
// BF16 with activations rounded to bf16, F32 in f32. Integer block dot products are exact, so the
// results differ from llama.cpp's only by float summation order. Every instruction set gives
// bit-identical results (the float combination order is fixed; see kernels.hpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "vramfit/types.hpp"

namespace vramfit::cpu {

// Persistent workers; the calling thread takes chunks too. One parallel_for runs at a time
// (concurrent callers queue on a mutex); a parallel_for issued from inside a chunk runs inline on
// that thread, so nesting cannot deadlock. An exception thrown by fn is rethrown to the caller
// after every chunk has finished.
//
// A decoded token issues a few hundred short parallel_for calls, so waiting threads (workers for
// the next job, the caller for the last chunk) first spin for up to kSpinMicroseconds, then sleep
// on a condition variable: back-to-back jobs skip the wake-up latency, an idle pool costs nothing.
class ThreadPool {
 public:
  explicit ThreadPool(int n_threads = 0);  // 0 = std::thread::hardware_concurrency()
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const noexcept { return static_cast<int>(workers_.size()) + 1; }

  // How parallel_for cuts [0, n) into chunks, which the threads take in turn from a counter.
  enum class Split {
    // kEvenChunksPerThread equal chunks per thread: compute-bound jobs (prompts), where a thread
    // the machine slows down (another process on its core) takes fewer chunks.
    even,
    // One contiguous chunk per thread over the first kStreamingHead of [0, n), then the rest in
    // kStreamingTailChunks small chunks per thread: memory-bound jobs (one token's mat-vecs)
    // stream their shares in one run each, and whichever thread finishes first takes the tail,
    // so the job ends when both do.
    streaming,
  };
  static constexpr int kEvenChunksPerThread = 4;
  static constexpr double kStreamingHead = 0.75;
  static constexpr int kStreamingTailChunks = 4;

  // Runs fn(begin, end) on chunks covering [0, n) exactly once and returns when all are done.
  // fn may run several chunks on one thread; thread_index() says which thread.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)> &fn, Split split = Split::even);

  // The running thread's index in [0, size()) inside a chunk (0 = the caller); 0 outside.
  static int thread_index() noexcept;

 private:
  static constexpr int kSpinMicroseconds = 50;

  void worker_loop(int index);
  void run_chunks(int index) noexcept;
  void cut(int64_t n, Split split) noexcept;        // sets n_, chunks_ and the head
  int64_t chunk_begin(int64_t chunk) const noexcept;  // chunk c is [chunk_begin(c), chunk_begin(c + 1))

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time
  std::mutex mutex_;       // guards the sleeping side of wake_ / done_ and error_
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};  // bumped per job (release: n_ and fn_ are set)
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  int64_t n_ = 0;
  int64_t chunks_ = 0;
  int64_t head_chunks_ = 0;  // Split::streaming: the first chunks, one per thread, cover [0, head_n_)
  int64_t head_n_ = 0;
  std::atomic<int64_t> next_chunk_{0};  // the next chunk to take
  const std::function<void(int64_t, int64_t)> *fn_ = nullptr;
  std::exception_ptr error_;
};

// SIMD, runtime-dispatched; bit-exact with quant::dequantize_row_ref. n must be a multiple of the
// type's block size; src holds row_bytes(type, n) bytes.
void dequantize_row(GgmlType type, const void *src, float *dst, int64_t n);
// dequantize_row of n_rows rows (src rows src_stride bytes apart, dst rows n floats apart), checked
// and dispatched once: short rows (one attention head's slice of a cache row) cost the conversion,
// not the call.
void dequantize_rows(GgmlType type, const void *src, uint64_t src_stride, int64_t n_rows, float *dst, int64_t n);

// y[t][r] = sum_k W[r][k] * x[t][k] for W = n_out rows of n_in elements of `type` (rows
// contiguous, row bytes = row_bytes(type, n_in)), x [n_tokens][n_in] f32, y [n_tokens][n_out].
// Types: F32, F16, BF16, Q4_0, Q8_0, Q2_K..Q6_K (and Q8_K via dequantization). Throws
// Error(unsupported) for other types, Error(invalid_argument) when n_in is not a multiple of
// the block size. Activations are quantized once per row of x into a per-thread buffer that
// grows to the largest size seen (no allocation once warm).
void matmul(ThreadPool &pool, GgmlType type, const void *w, int64_t n_out, int64_t n_in,
            const float *x, int64_t n_tokens, float *y);

// One product of matmul_many: y [n_tokens][n_out] = W x, W = n_out rows of `type`, x
// [n_tokens][n_in].
struct MatmulTask {
  GgmlType type;
  const void *w;
  int64_t n_out;
  const float *x;
  float *y;
};

// matmul for several matrices with rows of n_in (a layer's Q, K and V; gate and up; the experts a
// token chose): each distinct input x is quantized (and packed for prompts) once per activation
// type, and all the rows are one job for the pool, so a token waits for one thread barrier
// instead of one per matrix. The same bits as one matmul per matrix.
void matmul_many(ThreadPool &pool, std::span<const MatmulTask> tasks, int64_t n_in, int64_t n_tokens);

}  // namespace vramfit::cpu
