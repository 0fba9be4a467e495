#include "bandwidth.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "cpu/ops.hpp"

namespace vramfit::bench {
namespace {

// Sums 64-bit words with independent accumulators, so the loop is limited by loads, not adds.
uint64_t stream_sum(const uint64_t *p, size_t n) {
  uint64_t s[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += p[i + k];
  for (; i < n; ++i) s[0] += p[i];
  uint64_t total = 0;
  for (uint64_t v : s) total += v;
  return total;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Rates {
  double cpu_time_gbs;
  double wall_gbs;
};

// Median GB/s of `repeats` full passes over the buffer split across the pool's threads.
Rates measure(cpu::ThreadPool &pool, const uint64_t *words, size_t n_words, int repeats) {
  std::vector<double> gbs, wall_gbs;
  volatile uint64_t sink = 0;  // keeps the sums alive
  for (int r = 0; r < repeats; ++r) {
    const auto wall0 = std::chrono::steady_clock::now();
    const size_t parts = static_cast<size_t>(pool.size());
    std::vector<uint64_t> partial(parts, 0);
    std::vector<double> rate(parts, 0);  // bytes per CPU second of each thread
    pool.parallel_for(pool.size(), [&](int64_t b, int64_t e) {
      for (auto part = static_cast<size_t>(b); part < static_cast<size_t>(e); ++part) {
        const size_t begin = n_words * part / parts, end = n_words * (part + 1) / parts;
        const double t0 = thread_cpu_seconds();
        partial[part] = stream_sum(words + begin, end - begin);
        rate[part] = static_cast<double>((end - begin) * sizeof(uint64_t)) / (thread_cpu_seconds() - t0);
      }
    });
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    wall_gbs.push_back(static_cast<double>(n_words * sizeof(uint64_t)) / wall / 1e9);
    double total = 0;
    for (double thread_rate : rate) total += thread_rate;
    gbs.push_back(total / 1e9);
    for (uint64_t p : partial) sink = sink + p;
  }
  return {median(gbs), median(wall_gbs)};
}

}  // namespace

struct AdjacentBandwidth::State {
  std::unique_ptr<uint64_t[]> words;
  size_t n_words;
  cpu::ThreadPool pool;
  double bytes = 0, seconds = 0;  // of the passes since the last gbs()
  State(int threads, size_t n) : words(new uint64_t[n]), n_words(n), pool(threads) {
    for (size_t i = 0; i < n; ++i) words[i] = i;  // every page touched before timing
  }
};

AdjacentBandwidth::AdjacentBandwidth(int threads, uint64_t bytes)
    : state_(std::make_unique<State>(threads, static_cast<size_t>(bytes / sizeof(uint64_t)))) {}
AdjacentBandwidth::~AdjacentBandwidth() = default;

void AdjacentBandwidth::sample() {
  State &s = *state_;
  const double gbs = measure(s.pool, s.words.get(), s.n_words, 1).wall_gbs;
  const double bytes = static_cast<double>(s.n_words * sizeof(uint64_t));
  s.bytes += bytes;
  s.seconds += bytes / (gbs * 1e9);
}

double AdjacentBandwidth::gbs() {
  State &s = *state_;
  const double result = s.seconds > 0 ? s.bytes / s.seconds / 1e9 : 0;
  s.bytes = s.seconds = 0;
  return result;
}

ReadBandwidth measure_read_bandwidth(int threads, uint64_t bytes, int repeats) {
  const size_t n_words = static_cast<size_t>(bytes / sizeof(uint64_t));
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[n_words]);
  // Touch every page (and give it distinct content) before timing.
  for (size_t i = 0; i < n_words; ++i) buffer[i] = i;

  ReadBandwidth result;
  cpu::ThreadPool single(1);
  result.single_thread_gbs = measure(single, buffer.get(), n_words, repeats).cpu_time_gbs;
  cpu::ThreadPool all(threads);
  result.threads = all.size();
  const Rates rates = measure(all, buffer.get(), n_words, repeats);
  result.all_threads_gbs = rates.cpu_time_gbs;
  result.all_threads_wall_gbs = rates.wall_gbs;
  return result;
}

}  // namespace vramfit::bench
