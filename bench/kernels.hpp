// The kernel benchmark behind `vramfit bench --kernels`: dequantization and matrix-vector speed of
// every weight type on 7B-sized matrices, next to this machine's memory read bandwidth.
#pragma once

namespace vramfit::bench {

struct KernelBenchOptions {
  int threads = 0;   // threads of the multi-threaded columns (0: all cores)
  int repeats = 5;   // each figure is the median of this many runs
  bool json = false; // one JSON document instead of the table
};

// Prints the results to stdout; returns the process exit code.
int run_kernel_bench(const KernelBenchOptions &options);

}  // namespace vramfit::bench
