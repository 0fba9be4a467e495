// The host side of the planner's cost model, measured: how fast the CPU kernels multiply each
// weight type (MachineProfile::host_kernels). A roofline from the read bandwidth alone is far off
// where the kernels are compute bound: one-token mat-vec reaches 30-95% of the bandwidth depending
// on the type, and a prompt batch runs at a type-dependent flop rate.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cpu/nn.hpp"
#include "cpu/ops.hpp"
#include "vramfit/offload.hpp"

namespace vramfit {
namespace {

constexpr int64_t kCols = 4096;       // n_in: a multiple of every block size
constexpr int64_t kRows = 4096;       // n_out of one streamed mat-vec matrix
constexpr int64_t kBatchRows = 1024;  // n_out of the batched product (its weights stay in cache)
constexpr int64_t kBatchTokens = 64;  // enough tokens to be compute bound, as a prompt batch is
constexpr int kRuns = 5;
// Attention as a prompt batch runs it: kBatchTokens queries of kHeads heads, each over kKeys
// cached positions of head_dim kHeadDim, kHeads / kHeadsKv query heads sharing a K and V head
// (grouped-query attention, as TinyLlama and gpt-oss have it).
constexpr int64_t kHeads = 32, kHeadsKv = 4, kHeadDim = 64, kKeys = 256;

// The last-level cache from sysfs ("32768K"); 32 MiB when unknown.
uint64_t l3_cache_bytes() {
  std::ifstream file("/sys/devices/system/cpu/cpu0/cache/index3/size");
  uint64_t size = 0;
  char unit = 0;
  if (!(file >> size >> unit) || size == 0) return uint64_t{32} << 20;
  return unit == 'M' ? size << 20 : unit == 'K' ? size << 10 : size;
}

// Seconds of the fastest of kRuns calls after one warm-up: the run least disturbed by other
// processes on a shared machine.
template <class F>
double best_seconds(F &&run) {
  run();
  double best = 1e30;
  for (int r = 0; r < kRuns; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// One type's rates: the mat-vec rotates over whole copies of a kRows x kCols matrix in `weights`
// (several times the L3, so every byte comes from RAM, as a model's weights do), the batched
// product multiplies the first kBatchRows rows by kBatchTokens tokens.
HostKernelRate measure_type(cpu::ThreadPool &pool, GgmlType type, const std::vector<std::byte> &weights,
                            const std::vector<float> &x, std::vector<float> &y) {
  const uint64_t matrix_bytes = row_bytes(type, kCols) * kRows;
  const uint64_t copies = std::max<uint64_t>(1, weights.size() / matrix_bytes);
  HostKernelRate rate;
  const double pass = best_seconds([&] {
    for (uint64_t c = 0; c < copies; ++c)
      cpu::matmul(pool, type, weights.data() + c * matrix_bytes, kRows, kCols, x.data(), 1, y.data());
  });
  rate.matvec_bytes_per_s = double(copies * matrix_bytes) / pass;
  const double batch = best_seconds(
      [&] { cpu::matmul(pool, type, weights.data(), kBatchRows, kCols, x.data(), kBatchTokens, y.data()); });
  rate.matmul_flops = 2.0 * kCols * kBatchRows * kBatchTokens / batch;
  return rate;
}

// flop/s of the CPU attention (4 per key and head dimension: scores, weighted sum; softmax
// included), the work the forward pass spreads over the pool one (token, head) per task.
double measure_attention(cpu::ThreadPool &pool) {
  const int64_t stride = kHeadsKv * kHeadDim;  // one K (or V) row: every KV head's
  std::vector<float> q(kBatchTokens * kHeads * kHeadDim, 0.01f), out(q.size());
  std::vector<float> k(kKeys * stride, 0.02f), v(kKeys * stride, 0.03f);
  const double seconds = best_seconds([&] {
    pool.parallel_for(kBatchTokens * kHeads, [&](int64_t begin, int64_t end) {
      std::vector<float> scores(kKeys);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t head = (task % kHeads) / (kHeads / kHeadsKv) * kHeadDim;
        cpu::attention_head(q.data() + task * kHeadDim, k.data() + head, v.data() + head, 0, kKeys, stride, kHeadDim,
                            0.125f, nullptr, scores.data(), out.data() + task * kHeadDim);
      }
    });
  });
  return 4.0 * kHeadDim * kKeys * kBatchTokens * kHeads / seconds;
}

}  // namespace

void measure_host_kernels(MachineProfile &machine, std::span<const GgmlType> types, int n_threads) {
  cpu::ThreadPool pool(n_threads);
  machine.host_attention_flops = measure_attention(pool);
  machine.measured.host_kernels = true;
  std::vector<GgmlType> measurable;
  for (GgmlType type : types)
    if (row_bytes(type, kCols) > 0 && std::ranges::find(measurable, type) == measurable.end())
      measurable.push_back(type);
  if (measurable.empty()) return;
  // Every byte 0x3C: each f16/bf16/f32 scale and value, each E8M0 exponent is then finite and
  // moderate (f16 1.06, E8M0 2^-67), so no NaN, Inf or denormal slows a kernel; the kernels do
  // the same work whatever the values, and one memset fills (and pages in) the set quickly.
  const uint64_t largest = row_bytes(GgmlType::F32, kCols) * kRows;
  std::vector<std::byte> weights(std::max<uint64_t>(4 * l3_cache_bytes(), largest), std::byte{0x3C});
  std::vector<float> x(kCols * kBatchTokens, 0.01f), y(kRows * kBatchTokens);
  for (GgmlType type : measurable) {
    try {
      machine.host_kernels[type] = measure_type(pool, type, weights, x, y);
    } catch (const Error &e) {
      if (e.code() != ErrorCode::unsupported) throw;  // a type cpu::matmul has no kernel for: the roofline
    }
  }
}

}  // namespace vramfit
