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

#include "common/error.hpp"
#include "cpu/nn.hpp"
#include "cpu/ops.hpp"
#include "quant/blocks.hpp"
#include "vramfit/offload.hpp"

namespace vramfit {
namespace {

constexpr int64_t kBatchTokens = 64;     // enough tokens to be compute bound, as a prompt batch is
constexpr int64_t kMaxBatchRows = 2048;  // of a batched product: its rate no longer depends on the rows
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

// Offsets of a block's f16 scales (and the MXFP4 exponent) in its bytes; the rest of a block
// holds quants, valid whatever their bits.
std::vector<size_t> scale_offsets(GgmlType type) {
  using namespace quant;
  switch (type) {
    case GgmlType::Q4_0: return {offsetof(block_q4_0, d)};
    case GgmlType::Q8_0: return {offsetof(block_q8_0, d)};
    case GgmlType::MXFP4: return {offsetof(block_mxfp4, e)};
    case GgmlType::Q2_K: return {offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)};
    case GgmlType::Q3_K: return {offsetof(block_q3_K, d)};
    case GgmlType::Q4_K: return {offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)};
    case GgmlType::Q5_K: return {offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)};
    case GgmlType::Q6_K: return {offsetof(block_q6_K, d)};
    default: return {};
  }
}

// Random quants with every scale 0x3C3C (f16 1.06; an MXFP4 exponent 0x3C: 2^-67), as a real
// matrix has them, so no NaN, Inf or denormal slows a kernel. Float types: every byte 0x3C
// (f16 1.06, bf16 and f32 0.011). xorshift64: 16 bytes of filler per few cycles.
void fill_weights(GgmlType type, std::vector<std::byte> &weights) {
  const std::vector<size_t> scales = scale_offsets(type);
  if (scales.empty()) return (void)std::memset(weights.data(), 0x3C, weights.size());
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i + 8 <= weights.size(); i += 8) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    std::memcpy(weights.data() + i, &state, 8);
  }
  const size_t block = type_traits(static_cast<uint32_t>(type))->type_size;
  for (size_t b = 0; b + block <= weights.size(); b += block)
    for (size_t offset : scales) std::memset(weights.data() + b + offset, 0x3C, type == GgmlType::MXFP4 ? 1 : 2);
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

// One shape's rates: the mat-vec rotates over whole copies of the matrix in `weights` (several
// times the L3, so every byte comes from RAM, as a model's weights do), one call per matrix as
// the forward pass makes them; the batched product multiplies the first rows by kBatchTokens.
HostKernelRate measure_shape(cpu::ThreadPool &pool, const KernelShape &shape, const std::vector<std::byte> &weights) {
  const uint64_t matrix_bytes = row_bytes(shape.type, shape.row_length) * static_cast<uint64_t>(shape.rows);
  const uint64_t copies = std::max<uint64_t>(1, weights.size() / matrix_bytes);
  const int64_t batch_rows = std::min(shape.rows, kMaxBatchRows);
  std::vector<float> x(static_cast<size_t>(shape.row_length * kBatchTokens), 0.01f);
  std::vector<float> y(static_cast<size_t>(std::max(shape.rows, batch_rows * kBatchTokens)));
  HostKernelRate rate;
  const double pass = best_seconds([&] {
    for (uint64_t c = 0; c < copies; ++c)
      cpu::matmul(pool, shape.type, weights.data() + c * matrix_bytes, shape.rows, shape.row_length, x.data(), 1,
                  y.data());
  });
  rate.matvec_bytes_per_s = double(copies * matrix_bytes) / pass;
  const double batch = best_seconds([&] {
    cpu::matmul(pool, shape.type, weights.data(), batch_rows, shape.row_length, x.data(), kBatchTokens, y.data());
  });
  rate.matmul_flops = 2.0 * double(shape.row_length) * double(batch_rows) * kBatchTokens / batch;
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

void measure_host_kernels(MachineProfile &machine, std::span<const KernelShape> shapes, int n_threads) {
  std::vector<KernelShape> measurable;  // types without a CPU kernel keep the roofline
  for (const KernelShape &shape : shapes) {
    const auto traits = type_traits(static_cast<uint32_t>(shape.type));
    if (!traits || shape.rows <= 0 || shape.row_length <= 0 || shape.row_length % traits->block_size != 0)
      detail::fail(ErrorCode::invalid_argument,
                   "measure_host_kernels: {} rows of {} weights of type {} are no matrix the kernels multiply (a "
                   "row is a whole number of blocks)", shape.rows, shape.row_length, type_name(shape.type));
    if (is_supported_for_compute(shape.type)) measurable.push_back(shape);
  }
  cpu::ThreadPool pool(n_threads);
  machine.host_attention_flops = measure_attention(pool);
  machine.measured.host_kernels = true;
  if (measurable.empty()) return;
  uint64_t largest = 0;
  for (const KernelShape &s : measurable)
    largest = std::max(largest, row_bytes(s.type, s.row_length) * static_cast<uint64_t>(s.rows));
  std::vector<std::byte> weights(std::max(4 * l3_cache_bytes(), 2 * largest));
  for (const KernelShape &shape : measurable) {
    fill_weights(shape.type, weights);
    machine.host_kernels[shape.type] = measure_shape(pool, shape, weights);
  }
}

}  // namespace vramfit
