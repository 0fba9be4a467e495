// This machine's memory read bandwidth: the yardstick of every memory-bound kernel.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>

namespace vramfit::bench {

struct ReadBandwidth {
  double single_thread_gbs = 0;  // one thread streaming
  double all_threads_gbs = 0;    // `threads` threads, each streaming its own slice
  double all_threads_wall_gbs = 0;  // the same passes timed by the wall clock
  int threads = 0;
};

// Streams a buffer of `bytes` (>= 1 GiB by default, far beyond any cache) with one thread and
// with `threads` threads (0: all cores); each figure is the median of `repeats` passes, in 1e9
// bytes per second. Time is each thread's CPU time (the sum of the threads' rates), so that other
// processes on a shared machine do not count as slow memory; on an idle machine this equals
// wall-clock time. On a busy machine the threads may not overlap, so the CPU-time figure is an
// upper bound of the concurrent bandwidth and the wall-clock one a lower bound.
// CPU seconds used so far by the calling thread.
inline double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

ReadBandwidth measure_read_bandwidth(int threads = 0, uint64_t bytes = uint64_t{1} << 30, int repeats = 5);

// The read bandwidth `threads` threads get together, by the wall clock, sampled again and again
// beside something else timed (between the tokens of a generation run): on a shared machine the
// memory's speed moves within a second, so a bound read once per process, or once after a run,
// can be a quarter off the one the run met.
class AdjacentBandwidth {
 public:
  // bytes: twice the largest last-level cache of the machines we run on, so every pass reads memory.
  explicit AdjacentBandwidth(int threads, uint64_t bytes = uint64_t{64} << 20);
  ~AdjacentBandwidth();
  void sample();  // one pass over the buffer, now
  double gbs();   // the bytes of the passes since the last call over their seconds (0 if none)

 private:
  struct State;  // the buffer, the threads and the passes so far
  std::unique_ptr<State> state_;
};

}  // namespace vramfit::bench
