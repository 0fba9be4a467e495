#include "kernels.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bandwidth.hpp"
#include "cpu/kernels.hpp"
#include "cpu/ops.hpp"
#include "quant/fp16.hpp"
#include "vramfit/types.hpp"

namespace vramfit::bench {
namespace {

// A 7B model's FFN matrix: 11008 rows of 4096 weights. Several copies are cycled so that the
// bytes touched per type exceed any cache (>= 512 MB in all).
constexpr int64_t kRows = 11008;
constexpr int64_t kCols = 4096;
constexpr uint64_t kWorkingSetBytes = uint64_t{512} << 20;

const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::MXFP4, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                           GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::F16,  GgmlType::BF16, GgmlType::F32};

struct TypeResult {
  GgmlType type;
  double bits_per_weight;
  double matvec_1t_gbs;     // weight bytes per second, matmul with n_tokens = 1 on one thread
  double matvec_nt_gbs;     // same on all threads
  double dequant_simd_gbs;  // quantized bytes read per second, one thread
  double dequant_scalar_gbs;
  double cached_simd_gbs;  // dequantization of L2-resident rows
  double cached_scalar_gbs;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Single-thread figures use the thread's CPU time (see bandwidth.hpp); multi-threaded ones wall
// time, since their work runs on the pool's threads.
double elapsed(bool cpu_time, double cpu0, std::chrono::steady_clock::time_point wall0) {
  return cpu_time ? thread_cpu_seconds() - cpu0 : seconds_since(wall0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Random bytes with every f16 scale set to a small finite value, so no kernel meets NaN/Inf
// (speed does not depend on the values otherwise).
std::vector<std::byte> random_matrix(GgmlType type, std::mt19937 &rng) {
  std::vector<std::byte> m(row_bytes(type, kCols) * kRows);
  for (size_t i = 0; i < m.size(); i += 4) {
    const uint32_t r = rng();
    std::memcpy(m.data() + i, &r, std::min<size_t>(4, m.size() - i));
  }
  const auto traits = *type_traits(static_cast<uint32_t>(type));
  const quant::f16_bits small = quant::f32_to_f16(0.01f);
  // Offsets of the f16 scale fields in each block (floats: every element).
  std::vector<size_t> scale_offsets;
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::Q8_0: case GgmlType::F16: case GgmlType::BF16: scale_offsets = {0}; break;
    case GgmlType::Q2_K: scale_offsets = {80, 82}; break;
    case GgmlType::Q3_K: scale_offsets = {108}; break;
    case GgmlType::Q4_K: case GgmlType::Q5_K: scale_offsets = {0, 2}; break;
    case GgmlType::Q6_K: scale_offsets = {208}; break;
    default: break;
  }
  if (type == GgmlType::MXFP4)  // E8M0 exponent byte: 2^(120-128), finite products
    for (size_t b = 0; b < m.size(); b += traits.type_size) m[b] = std::byte{120};
  for (size_t b = 0; b < m.size(); b += traits.type_size)
    for (size_t off : scale_offsets) std::memcpy(m.data() + b + off, &small, 2);
  if (type == GgmlType::F32)
    for (size_t b = 0; b < m.size(); b += 4) {
      const float f = static_cast<float>(rng() % 2001) * 1e-5f - 0.01f;
      std::memcpy(m.data() + b, &f, 4);
    }
  return m;
}

struct Matrices {
  std::vector<std::vector<std::byte>> copies;
  size_t next = 0;
  const std::byte *take() { return copies[next++ % copies.size()].data(); }
  uint64_t bytes() const { return copies.size() * copies[0].size(); }  // of all copies
};

Matrices make_copies(GgmlType type, std::mt19937 &rng) {
  Matrices m;
  m.copies.push_back(random_matrix(type, rng));
  const uint64_t bytes = m.copies[0].size();
  while (m.copies.size() * bytes < kWorkingSetBytes) m.copies.push_back(m.copies[0]);
  return m;
}

// Median weight GB/s of y = W x for one token. Each sample multiplies every copy once (>= 512 MB
// of weights), so one sample spans tens of milliseconds and short hiccups average out.
double time_matvec(cpu::ThreadPool &pool, GgmlType type, Matrices &m, int repeats) {
  std::vector<float> x(kCols), y(kRows);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  for (float &v : x) v = dist(rng);
  cpu::matmul(pool, type, m.take(), kRows, kCols, x.data(), 1, y.data());  // warm-up
  std::vector<double> gbs;
  for (int r = 0; r < repeats; ++r) {
    const double cpu0 = thread_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t c = 0; c < m.copies.size(); ++c) cpu::matmul(pool, type, m.take(), kRows, kCols, x.data(), 1, y.data());
    gbs.push_back(static_cast<double>(m.bytes()) / elapsed(pool.size() == 1, cpu0, t0) / 1e9);
  }
  return median(gbs);
}

// Median GB/s (quantized bytes read) of dequantizing every copy row by row, one thread.
double time_dequant(GgmlType type, Matrices &m, int repeats) {
  std::vector<float> row(kCols);
  const size_t rb = row_bytes(type, kCols);
  std::vector<double> gbs;
  for (int r = 0; r < repeats; ++r) {
    const double cpu0 = thread_cpu_seconds();
    for (size_t c = 0; c < m.copies.size(); ++c) {
      const std::byte *w = m.take();
      for (int64_t i = 0; i < kRows; ++i) cpu::dequantize_row(type, w + i * rb, row.data(), kCols);
    }
    gbs.push_back(static_cast<double>(m.bytes()) / (thread_cpu_seconds() - cpu0) / 1e9);
  }
  return median(gbs);
}

// Median GB/s of dequantizing a cache-resident slice (the first 256 KiB of rows) over and over:
// the kernels' compute speed, which the DRAM-bound figure above can hide.
double time_dequant_in_cache(GgmlType type, Matrices &m, int repeats) {
  std::vector<float> row(kCols);
  const size_t rb = row_bytes(type, kCols);
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>((size_t{256} << 10) / rb));
  const std::byte *w = m.copies[0].data();
  const int passes = static_cast<int>(std::max<uint64_t>(1, (uint64_t{64} << 20) / (rows * rb)));
  std::vector<double> gbs;
  for (int r = 0; r < repeats; ++r) {
    const double cpu0 = thread_cpu_seconds();
    for (int p = 0; p < passes; ++p)
      for (int64_t i = 0; i < rows; ++i) cpu::dequantize_row(type, w + i * rb, row.data(), kCols);
    gbs.push_back(static_cast<double>(passes * rows * rb) / (thread_cpu_seconds() - cpu0) / 1e9);
  }
  return median(gbs);
}

TypeResult bench_type(GgmlType type, cpu::ThreadPool &single, cpu::ThreadPool &all, int repeats) {
  std::mt19937 rng(static_cast<uint32_t>(type) + 1);
  Matrices m = make_copies(type, rng);
  TypeResult r{};
  r.type = type;
  r.bits_per_weight = 8.0 * static_cast<double>(row_bytes(type, kCols)) / kCols;
  r.matvec_1t_gbs = time_matvec(single, type, m, repeats);
  r.matvec_nt_gbs = time_matvec(all, type, m, repeats);
  r.dequant_simd_gbs = time_dequant(type, m, repeats);
  r.cached_simd_gbs = time_dequant_in_cache(type, m, repeats);
  cpu::set_isa_override(cpu::Isa::scalar);
  r.dequant_scalar_gbs = time_dequant(type, m, std::min(repeats, 3));
  r.cached_scalar_gbs = time_dequant_in_cache(type, m, std::min(repeats, 3));
  cpu::set_isa_override(std::nullopt);
  return r;
}

void print_table(const ReadBandwidth &bw, const std::vector<TypeResult> &results) {
  fmt::print("kernels: {} | matrices {}x{} (7B FFN), >= {} MB touched per type, median of runs\n",
             cpu::isa_name(cpu::active_kernels().isa), kRows, kCols, kWorkingSetBytes >> 20);
  fmt::print("memory read bandwidth: {:.2f} GB/s on 1 thread, {:.2f} GB/s on {} threads ({:.2f} GB/s by the wall "
             "clock; see below)\n\n",
             bw.single_thread_gbs, bw.all_threads_gbs, bw.threads, bw.all_threads_wall_gbs);
  fmt::print("{:<6} {:>5} | {:>9} {:>7} | {:>9} {:>7} | {:>17} {:>7} | {:>17} {:>7}\n", "", "", "matvec", "",
             "matvec", "", "dequant from RAM", "", "dequant in cache", "");
  fmt::print("{:<6} {:>5} | {:>9} {:>7} | {:>9} {:>7} | {:>8} {:>8} {:>7} | {:>8} {:>8} {:>7}\n", "type", "bpw",
             "1T GB/s", "% memBW", fmt::format("{}T GB/s", bw.threads), "% memBW", "SIMD", "scalar", "speedup", "SIMD",
             "scalar", "speedup");
  for (const TypeResult &r : results)
    fmt::print("{:<6} {:>5.2f} | {:>9.2f} {:>6.0f}% | {:>9.2f} {:>6.0f}% | {:>8.2f} {:>8.2f} {:>6.1f}x | {:>8.2f} "
               "{:>8.2f} {:>6.1f}x\n",
               type_name(r.type), r.bits_per_weight, r.matvec_1t_gbs, 100 * r.matvec_1t_gbs / bw.all_threads_gbs,
               r.matvec_nt_gbs, 100 * r.matvec_nt_gbs / bw.all_threads_gbs, r.dequant_simd_gbs,
               r.dequant_scalar_gbs, r.dequant_simd_gbs / r.dequant_scalar_gbs, r.cached_simd_gbs,
               r.cached_scalar_gbs, r.cached_simd_gbs / r.cached_scalar_gbs);
  fmt::print("\nmatvec: y = W x for one token, weight bytes per second; % memBW: of the all-thread read "
             "bandwidth.\ndequant: quantized bytes read per second on one thread, streaming from RAM or from a "
             "256 KiB L2-resident slice.\nBandwidth and one-thread figures use thread CPU time (other processes "
             "on a shared machine do not count); {}T matvec uses wall time. On a busy machine the threads may not "
             "overlap:\nthe CPU-time all-thread bandwidth is then an upper bound (so % memBW a lower bound), the "
             "wall-clock one a lower bound.\n", bw.threads);
}

void print_json(const ReadBandwidth &bw, const std::vector<TypeResult> &results) {
  fmt::print("{{\"isa\": \"{}\", \"rows\": {}, \"cols\": {}, \"read_bandwidth_1t_gbs\": {:.3f}, "
             "\"read_bandwidth_gbs\": {:.3f}, \"read_bandwidth_wall_gbs\": {:.3f}, \"threads\": {}, \"types\": [",
             cpu::isa_name(cpu::active_kernels().isa), kRows, kCols, bw.single_thread_gbs, bw.all_threads_gbs,
             bw.all_threads_wall_gbs, bw.threads);
  for (size_t i = 0; i < results.size(); ++i) {
    const TypeResult &r = results[i];
    fmt::print("{}{{\"type\": \"{}\", \"bits_per_weight\": {:.4f}, \"matvec_1t_gbs\": {:.3f}, "
               "\"matvec_1t_fraction\": {:.4f}, \"matvec_nt_gbs\": {:.3f}, \"matvec_nt_fraction\": {:.4f}, "
               "\"dequant_simd_gbs\": {:.3f}, \"dequant_scalar_gbs\": {:.3f}, \"dequant_speedup\": {:.2f}, "
               "\"dequant_cached_simd_gbs\": {:.3f}, \"dequant_cached_scalar_gbs\": {:.3f}, "
               "\"dequant_cached_speedup\": {:.2f}}}",
               i ? ", " : "", type_name(r.type), r.bits_per_weight, r.matvec_1t_gbs,
               r.matvec_1t_gbs / bw.all_threads_gbs, r.matvec_nt_gbs, r.matvec_nt_gbs / bw.all_threads_gbs,
               r.dequant_simd_gbs, r.dequant_scalar_gbs, r.dequant_simd_gbs / r.dequant_scalar_gbs, r.cached_simd_gbs,
               r.cached_scalar_gbs, r.cached_simd_gbs / r.cached_scalar_gbs);
  }
  fmt::print("]}}\n");
}

}  // namespace

int run_kernel_bench(const KernelBenchOptions &options) {
  const int repeats = std::max(1, options.repeats);
  const ReadBandwidth bw = measure_read_bandwidth(options.threads, uint64_t{1} << 30, repeats);
  cpu::ThreadPool single(1);
  cpu::ThreadPool all(options.threads);
  std::vector<TypeResult> results;
  for (GgmlType type : kTypes) results.push_back(bench_type(type, single, all, repeats));
  if (options.json)
    print_json(bw, results);
  else
    print_table(bw, results);
  return 0;
}

}  // namespace vramfit::bench
