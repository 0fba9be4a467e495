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
#include "vramfit/offload.hpp"

namespace vramfit {
namespace {

constexpr int64_t kAttentionTokens = 64;  // queries of the attention probe, as a prompt batch has
constexpr int64_t kMaxBatchRows = 2048;  // of a batched product: its rate no longer depends on the rows
constexpr int kRuns = 16;
// Attention as a prompt batch runs it: kAttentionTokens queries of kHeads heads, each over kKeys
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

template <class F>
double seconds_of(F &&run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds of the fastest of kRuns calls: the run least disturbed by other processes on a shared
// machine (the first run warms up).
template <class F>
double best_seconds(F &&run) {
  double best = 1e30;
  for (int r = 0; r < kRuns; ++r) best = std::min(best, seconds_of(run));
  return best;
}

// One shape's work: a mat-vec over copies of the matrix filling `weights` (several times the L3,
// so every byte comes from RAM, as a model's weights do), one call per matrix as the forward pass
// makes them; and the product of its first rows with shape.tokens tokens. A matrix larger than
// half the working set (an output head) is cut to fewer rows: its row length sets the speed.
class ShapeProbe {
 public:
  ShapeProbe(const KernelShape &shape, uint64_t working_set)
      : shape_(shape),
        rows_(std::clamp<int64_t>(static_cast<int64_t>(working_set / 2 / row_bytes(shape.type, shape.row_length)), 1,
                                  shape.rows)),
        matrix_bytes_(row_bytes(shape.type, shape.row_length) * static_cast<uint64_t>(rows_)),
        copies_(working_set / matrix_bytes_),
        batch_rows_(std::min(rows_, kMaxBatchRows)),
        tokens_(std::max<int64_t>(shape.tokens, 1)),
        x_(static_cast<size_t>(shape.row_length * tokens_), 0.01f),
        y_(static_cast<size_t>(std::max(rows_, batch_rows_ * tokens_))) {}

  void time_matvec(cpu::ThreadPool &pool, const std::byte *weights) {
    matvec_s_ = std::min(matvec_s_, seconds_of([&] {
      for (uint64_t c = 0; c < copies_; ++c)
        cpu::matmul(pool, shape_.type, weights + c * matrix_bytes_, rows_, shape_.row_length, x_.data(), 1, y_.data());
    }));
  }
  void time_batch(cpu::ThreadPool &pool, const std::byte *weights) {
    batch_s_ = std::min(batch_s_, seconds_of([&] {
      cpu::matmul(pool, shape_.type, weights, batch_rows_, shape_.row_length, x_.data(), tokens_, y_.data());
    }));
  }
  HostKernelRate rate() const {
    return {double(copies_ * matrix_bytes_) / matvec_s_,
            2.0 * double(shape_.row_length) * double(batch_rows_) * double(tokens_) / batch_s_};
  }

 private:
  KernelShape shape_;
  int64_t rows_;
  uint64_t matrix_bytes_, copies_;
  int64_t batch_rows_;
  int64_t tokens_;
  std::vector<float> x_, y_;
  double matvec_s_ = 1e30, batch_s_ = 1e30;  // the fastest run so far
};

// flop/s of the CPU attention (4 per key and head dimension: scores, weighted sum; softmax
// included) as a prompt batch runs it: the keys laid out by head in blocks (CpuDevice::attention
// does it once per call: not timed), then one (token, head) per task over the pool.
double measure_attention(cpu::ThreadPool &pool) {
  static_assert(kKeys % cpu::kKeyBlock == 0);
  const int64_t head_floats = kKeys * kHeadDim;  // one KV head's keys (or values), laid out
  std::vector<float> q(kAttentionTokens * kHeads * kHeadDim, 0.01f), out(q.size());
  std::vector<float> rows(kKeys * kHeadDim, 0.02f), k(kHeadsKv * head_floats), v(kHeadsKv * head_floats, 0.03f);
  for (int64_t h = 0; h < kHeadsKv; ++h)
    for (int64_t b = 0; b < kKeys; b += cpu::kKeyBlock)
      cpu::block_keys(rows.data() + b * kHeadDim, kHeadDim, kHeadDim, cpu::kKeyBlock,
                      k.data() + h * head_floats + b * kHeadDim);
  const double seconds = best_seconds([&] {
    pool.parallel_for(kAttentionTokens * kHeads, [&](int64_t begin, int64_t end) {
      std::vector<float> scores(kKeys);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t head = (task % kHeads) / (kHeads / kHeadsKv) * head_floats;
        cpu::attention_head_blocked(q.data() + task * kHeadDim, k.data() + head, v.data() + head, 0, kKeys, kHeadDim,
                                    kHeadDim, 0.125f, nullptr, scores.data(), out.data() + task * kHeadDim);
      }
    });
  });
  return 4.0 * kHeadDim * kKeys * kAttentionTokens * kHeads / seconds;
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
  // Every byte 0x3C: a valid matrix of every type at once (each f16 scale 1.06, each MXFP4
  // exponent 2^-67, bf16/f32 0.011: no NaN, Inf or denormal; the kernels' work does not depend on
  // the values), so the types take turns run by run and a burst of load elsewhere spoils one run
  // of each rather than every run of one.
  uint64_t longest_row = 0;
  for (const KernelShape &shape : measurable)
    longest_row = std::max(longest_row, row_bytes(shape.type, shape.row_length));
  const uint64_t working_set = std::max(4 * l3_cache_bytes(), 2 * longest_row);
  const std::vector<std::byte> weights(working_set, std::byte{0x3C});
  std::vector<ShapeProbe> probes;
  for (const KernelShape &shape : measurable) probes.emplace_back(shape, working_set);
  for (int r = 0; r < kRuns; ++r)
    for (ShapeProbe &p : probes) p.time_matvec(pool, weights.data()), p.time_batch(pool, weights.data());
  for (size_t i = 0; i < measurable.size(); ++i) machine.host_kernels[measurable[i].type] = probes[i].rate();
}

}  // namespace vramfit
