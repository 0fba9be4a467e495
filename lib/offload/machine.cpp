// Machine facts the CLI can learn cheaply: host memory from /proc/meminfo, host read bandwidth by
// streaming a buffer with every hardware thread.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "vramfit/offload.hpp"

namespace vramfit {

void probe_host_memory(MachineProfile &machine) {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "MemTotal:") machine.host_memory_bytes = kib * 1024, machine.measured.host_memory = true;
    if (key == "MemAvailable:") machine.host_available_bytes = kib * 1024;
  }
}

void measure_host_read_bandwidth(MachineProfile &machine, uint64_t bytes) {
  const unsigned n_threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t words_per_thread = std::max<uint64_t>(bytes / 8 / n_threads, 1024);
  std::vector<uint64_t> buffer(words_per_thread * n_threads, 1);  // touched: no page faults timed
  std::vector<uint64_t> sums(n_threads * 8, 0);                   // 64 bytes apart: no false sharing
  auto pass = [&] {
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < n_threads; ++t)
      threads.emplace_back([&, t] {
        const uint64_t *p = buffer.data() + t * words_per_thread;
        uint64_t s = 0;
        for (size_t i = 0; i < words_per_thread; ++i) s += p[i];
        sums[t * 8] = s;
      });
    for (auto &th : threads) th.join();
  };
  double best = 1e30;
  for (int repeat = 0; repeat < 12; ++repeat) {  // the best of twelve: the least disturbed pass
    const auto start = std::chrono::steady_clock::now();
    pass();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  machine.host_read_bandwidth = double(buffer.size() * sizeof(uint64_t)) / best;
  machine.measured.host_read_bandwidth = true;
}

}  // namespace vramfit
