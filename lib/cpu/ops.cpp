#include "cpu/ops.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "common/error.hpp"
#include "cpu/kernels.hpp"
#include "cpu/vec_dot.hpp"
#include "quant/fp16.hpp"

namespace vramfit::cpu {
namespace {

void check_row(GgmlType type, int64_t n, const char *what) {
  if (!is_supported_for_compute(type))
    detail::fail(ErrorCode::unsupported, "{}: tensor type {} has no CPU kernel", what, type_name(type));
  const int64_t block = type_traits(static_cast<uint32_t>(type))->block_size;
  if (n < 0 || n % block != 0)
    detail::fail(ErrorCode::invalid_argument, "{}: row of {} elements is not a multiple of the {} block size {}",
                 what, n, type_name(type), block);
}

// A per-thread scratch buffer that only grows, so hot loops stop allocating once warm.
template <class T>
T *scratch(std::vector<T> &buffer, size_t count) {
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// Q8_K weights have no integer kernel in llama.cpp either: dequantize, then an f32 dot.
float dot_q8_K_weights(const Kernels &k, int64_t n, const void *w_row, const void *act) {
  thread_local std::vector<float> row;
  float *w = scratch(row, static_cast<size_t>(n));
  k.dequantize_rows(GgmlType::Q8_K, w_row, 0, 1, w, n);
  return k.vec_dot(GgmlType::F32, n, w, act);
}

float dot_row(const Kernels &k, GgmlType type, int64_t n, const void *w_row, const void *act) {
  if (type == GgmlType::Q8_K) return dot_q8_K_weights(k, n, w_row, act);
  return k.vec_dot(type, n, w_row, act);
}

void quantize_with(const Kernels &k, GgmlType wtype, const float *x, void *act, int64_t n) {
  switch (vec_dot_type(wtype)) {
    case GgmlType::Q8_K: return k.quantize_row_q8_K(x, static_cast<quant::block_q8_K *>(act), n);
    case GgmlType::Q8_0: return k.quantize_row_q8_0(x, static_cast<quant::block_q8_0 *>(act), n);
    case GgmlType::F16: {
      auto *h = static_cast<quant::f16_bits *>(act);
      for (int64_t i = 0; i < n; ++i) h[i] = quant::f32_to_f16(x[i]);
      return;
    }
    case GgmlType::BF16: {
      auto *h = static_cast<quant::bf16_bits *>(act);
      for (int64_t i = 0; i < n; ++i) h[i] = quant::f32_to_bf16(x[i]);
      return;
    }
    default: std::copy(x, x + n, static_cast<float *>(act)); return;
  }
}

}  // namespace

GgmlType vec_dot_type(GgmlType wtype) noexcept {
  switch (wtype) {
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return GgmlType::Q8_K;
    case GgmlType::Q4_0: case GgmlType::Q8_0: case GgmlType::MXFP4: return GgmlType::Q8_0;
    case GgmlType::F16: return GgmlType::F16;
    case GgmlType::BF16: return GgmlType::BF16;
    default: return GgmlType::F32;
  }
}

void quantize_row_q8_K(const float *x, quant::block_q8_K *y, int64_t n) {
  check_row(GgmlType::Q8_K, n, "quantize_row_q8_K");
  active_kernels().quantize_row_q8_K(x, y, n);
}

void quantize_row_q8_0(const float *x, quant::block_q8_0 *y, int64_t n) {
  check_row(GgmlType::Q8_0, n, "quantize_row_q8_0");
  active_kernels().quantize_row_q8_0(x, y, n);
}

void quantize_activations(GgmlType wtype, const float *x, void *act, int64_t n) {
  check_row(wtype, n, "quantize_activations");
  quantize_with(active_kernels(), wtype, x, act, n);
}

float vec_dot(GgmlType wtype, int64_t n, const void *w_row, const void *act) {
  check_row(wtype, n, "vec_dot");
  return dot_row(active_kernels(), wtype, n, w_row, act);
}

#define VRAMFIT_VEC_DOT(name, type)                                \
  float name(int64_t n, const void *w_row, const void *act) {      \
    check_row(type, n, #name);                                     \
    return active_kernels().vec_dot(type, n, w_row, act);          \
  }
VRAMFIT_VEC_DOT(vec_dot_q2_K_q8_K, GgmlType::Q2_K)
VRAMFIT_VEC_DOT(vec_dot_q3_K_q8_K, GgmlType::Q3_K)
VRAMFIT_VEC_DOT(vec_dot_q4_K_q8_K, GgmlType::Q4_K)
VRAMFIT_VEC_DOT(vec_dot_q5_K_q8_K, GgmlType::Q5_K)
VRAMFIT_VEC_DOT(vec_dot_q6_K_q8_K, GgmlType::Q6_K)
VRAMFIT_VEC_DOT(vec_dot_q4_0_q8_0, GgmlType::Q4_0)
VRAMFIT_VEC_DOT(vec_dot_q8_0_q8_0, GgmlType::Q8_0)
VRAMFIT_VEC_DOT(vec_dot_mxfp4_q8_0, GgmlType::MXFP4)
VRAMFIT_VEC_DOT(vec_dot_f16_f16, GgmlType::F16)
VRAMFIT_VEC_DOT(vec_dot_bf16_bf16, GgmlType::BF16)
VRAMFIT_VEC_DOT(vec_dot_f32_f32, GgmlType::F32)
#undef VRAMFIT_VEC_DOT

void dequantize_row(GgmlType type, const void *src, float *dst, int64_t n) {
  check_row(type, n, "dequantize_row");
  active_kernels().dequantize_rows(type, src, 0, 1, dst, n);
}

void dequantize_rows(GgmlType type, const void *src, uint64_t src_stride, int64_t n_rows, float *dst, int64_t n) {
  check_row(type, n, "dequantize_rows");
  active_kernels().dequantize_rows(type, src, src_stride, n_rows, dst, n);
}

namespace {

// Tokens from which a panel kernel beats the row-tiled one (its packing costs about one token).
constexpr int64_t kPanelMinTokens = 4;

// Activation values below which quantizing or packing them is left to the calling thread: a
// thread barrier costs more than it saves (an expert's 8 tokens of a gpt-oss prompt batch).
constexpr int64_t kParallelActivations = int64_t{1} << 15;

// fn(0, n_tokens), split over the pool when the n_tokens rows of n_in values are worth it.
template <class F>
void for_tokens(ThreadPool &pool, int64_t n_tokens, int64_t n_in, F &&fn) {
  if (n_tokens * n_in < kParallelActivations) fn(int64_t{0}, n_tokens);
  else pool.parallel_for(n_tokens, fn);
}

// Token t's block i of Q8_0 / Q8_K activations in slot `slot` of a panel tile block.
void fill_panel_slot(PanelTokenBlock &p, int slot, const quant::block_q8_0 &a) {
  std::copy(std::begin(a.qs), std::end(a.qs), p.qs[slot]);
  p.d[slot] = quant::f16_to_f32(a.d);
  int32_t sum = 0;
  for (int8_t q : a.qs) sum += q;
  p.sum[slot] = sum;
}
void fill_panel_slot(PanelTokenBlockK &p, int slot, const quant::block_q8_K &a) {
  std::copy(std::begin(a.qs), std::end(a.qs), p.qs[slot]);
  std::copy(std::begin(a.bsums), std::end(a.bsums), p.bsums[slot]);
  p.d[slot] = a.d;
}

// The activation rows (ActBlock: Q8_0 or Q8_K) in a panel kernel's tiles of kPanelTokens tokens,
// the last tile padded with zero tokens, in `buffer`.
template <class Tile, class ActBlock>
const Tile *pack_panel_tokens(ThreadPool &pool, const std::byte *act, size_t act_bytes, int64_t blocks,
                              int64_t n_tokens, std::vector<Tile> &buffer) {
  const int64_t tiles = (n_tokens + kPanelTokens - 1) / kPanelTokens;
  buffer.assign(static_cast<size_t>(tiles * blocks), Tile{});
  Tile *packed = buffer.data();  // the workers fill the caller's buffer, not their own
  for_tokens(pool, n_tokens, blocks * static_cast<int64_t>(sizeof(ActBlock)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const auto *a = reinterpret_cast<const ActBlock *>(act + static_cast<size_t>(t) * act_bytes);
      for (int64_t i = 0; i < blocks; ++i)
        fill_panel_slot(packed[t / kPanelTokens * blocks + i], static_cast<int>(t % kPanelTokens), a[i]);
    }
  });
  return packed;
}

// The inputs of one matmul_many call in the form each kind of weight reads them: each distinct x
// quantized once per activation type (Q8_K for the K-quants, Q8_0 for Q4_0/Q8_0/MXFP4, ...), and
// packed once more into panel tiles for the prompt kernels, in the calling thread's buffers
// (they only grow, so a warm caller allocates nothing).
class PreparedInputs {
 public:
  PreparedInputs(ThreadPool &pool, const Kernels &k, int64_t n_in, int64_t n_tokens)
      : pool_(pool), k_(k), n_in_(n_in), n_tokens_(n_tokens) {}

  struct Input {
    const std::byte *act;
    size_t act_bytes;
    const void *panel_tokens;  // null until a panel kernel asks for it
  };

  static constexpr size_t kMaxInputs = 16;  // one per product at most: matmul_many's group size

  // x as weights of `type` read it (quantized, and packed for panels, on first use).
  Input get(const float *x, GgmlType type, bool panels) {
    const GgmlType act_type = vec_dot_type(type);
    size_t i = 0;
    while (i < count_ && !(keys_[i].x == x && keys_[i].act_type == act_type)) ++i;
    if (i == count_) {
      if (buffers().size() <= i) buffers().resize(i + 1);
      keys_[i] = {x, act_type};
      inputs_[i] = quantize(buffers()[i], x, type, act_type);
      ++count_;
    }
    if (panels && !inputs_[i].panel_tokens) inputs_[i].panel_tokens = pack(buffers()[i], inputs_[i], act_type);
    return inputs_[i];
  }

 private:
  struct Key {
    const float *x;
    GgmlType act_type;
  };
  struct Buffers {
    std::vector<std::byte> act;
    std::vector<PanelTokenBlockK> tiles_k;
    std::vector<PanelTokenBlock> tiles;
  };
  static std::vector<Buffers> &buffers() {
    thread_local std::vector<Buffers> per_input;
    return per_input;
  }

  Input quantize(Buffers &b, const float *x, GgmlType type, GgmlType act_type) {
    const size_t act_bytes = row_bytes(act_type, n_in_);
    std::byte *act = scratch(b.act, act_bytes * static_cast<size_t>(n_tokens_));
    for_tokens(pool_, n_tokens_, n_in_, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) quantize_with(k_, type, x + t * n_in_, act + t * act_bytes, n_in_);
    });
    return {act, act_bytes, nullptr};
  }

  const void *pack(Buffers &b, const Input &in, GgmlType act_type) {
    if (act_type == GgmlType::Q8_K)
      return pack_panel_tokens<PanelTokenBlockK, quant::block_q8_K>(pool_, in.act, in.act_bytes, n_in_ / quant::QK_K,
                                                                    n_tokens_, b.tiles_k);
    return pack_panel_tokens<PanelTokenBlock, quant::block_q8_0>(pool_, in.act, in.act_bytes, n_in_ / 32, n_tokens_,
                                                                 b.tiles);
  }

  ThreadPool &pool_;
  const Kernels &k_;
  int64_t n_in_;
  int64_t n_tokens_;
  Key keys_[kMaxInputs] = {};
  Input inputs_[kMaxInputs] = {};
  size_t count_ = 0;
};

// One matrix of a matmul_many call with its kernels and its input.
struct PreparedTask {
  MatmulTask task;
  size_t w_bytes;
  PreparedInputs::Input input;
  PanelDot panel_dot;
  TileDot tile_dot;
  RowsDot rows_dot;
};

PreparedTask prepare(const Kernels &k, const MatmulTask &task, int64_t n_in, int64_t n_tokens, PreparedInputs &inputs) {
  PreparedTask p{task, row_bytes(task.type, n_in), {}, nullptr, nullptr, k.rows_dot(task.type)};
  if (n_tokens >= kPanelMinTokens) p.panel_dot = k.panel_dot(task.type);
  if (!p.panel_dot && n_tokens >= kTileTokens) p.tile_dot = k.tile_dot(task.type);
  p.input = inputs.get(task.x, task.type, p.panel_dot != nullptr);
  return p;
}

// Rows [r_begin, r_end) of one matrix for every token. Prompts go through the panel kernel,
// kPanelRows rows at a time. Otherwise tiles of 16 rows x kTileTokens tokens keep both in cache:
// the tiled kernel (where the table has one) unpacks each weight block once for kTileTokens
// tokens; leftover tokens go through vec_dot, 8 rows at a time where the table has a row-tiled
// kernel: the same bits.
void run_rows(const Kernels &k, const PreparedTask &p, int64_t n_in, int64_t n_tokens, int64_t r_begin, int64_t r_end) {
  const auto *weights = static_cast<const std::byte *>(p.task.w);
  const int64_t n_out = p.task.n_out;
  float *y = p.task.y;
  const std::byte *act = p.input.act;
  const size_t act_bytes = p.input.act_bytes, w_bytes = p.w_bytes;
  if (p.panel_dot) {
    for (int64_t r0 = r_begin; r0 < r_end; r0 += kPanelRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kPanelRows, r_end - r0));
      p.panel_dot(n_in, weights + r0 * w_bytes, w_bytes, rows, p.input.panel_tokens, n_tokens, y + r0,
                  static_cast<size_t>(n_out));
    }
    return;
  }
  constexpr int64_t kTileRows = 16;
  const int64_t n_tiled = p.tile_dot ? n_tokens / kTileTokens * kTileTokens : 0;
  for (int64_t r0 = r_begin; r0 < r_end; r0 += kTileRows) {
    const int64_t r1 = std::min(r_end, r0 + kTileRows);
    for (int64_t t = 0; t < n_tiled; t += kTileTokens)
      for (int64_t r = r0; r < r1; ++r) {
        float out[kTileTokens];
        p.tile_dot(n_in, weights + r * w_bytes, act + t * act_bytes, act_bytes, out);
        for (int64_t j = 0; j < kTileTokens; ++j) y[(t + j) * n_out + r] = out[j];
      }
    for (int64_t t = n_tiled; t < n_tokens; ++t) {
      int64_t r = r0;
      if (p.rows_dot)
        for (; r + kRowTile <= r1; r += kRowTile)
          p.rows_dot(n_in, weights + r * w_bytes, w_bytes, act + t * act_bytes, y + t * n_out + r);
      for (; r < r1; ++r) y[t * n_out + r] = dot_row(k, p.task.type, n_in, weights + r * w_bytes, act + t * act_bytes);
    }
  }
}

// The split unit across threads: every matrix's rows in bands of kBandRows (a multiple of the
// row and panel kernels' tiles), so a thread's share of a matrix starts on a tile.
constexpr int64_t kBandRows = 16;
static_assert(kBandRows % kRowTile == 0 && kBandRows % kPanelRows == 0);
int64_t bands_of(int64_t rows) { return (rows + kBandRows - 1) / kBandRows; }

}  // namespace

void matmul_many(ThreadPool &pool, std::span<const MatmulTask> tasks, int64_t n_in, int64_t n_tokens) {
  for (const MatmulTask &t : tasks) {
    check_row(t.type, n_in, "matmul");
    if (t.n_out < 0) detail::fail(ErrorCode::invalid_argument, "matmul: negative shape ({} rows)", t.n_out);
  }
  if (n_tokens < 0) detail::fail(ErrorCode::invalid_argument, "matmul: negative shape ({} tokens)", n_tokens);
  if (n_tokens == 0) return;
  const Kernels &k = active_kernels();
  constexpr size_t kGroup = PreparedInputs::kMaxInputs;
  for (size_t first = 0; first < tasks.size(); first += kGroup) {
    const std::span<const MatmulTask> group = tasks.subspan(first, std::min(kGroup, tasks.size() - first));
    PreparedInputs inputs(pool, k, n_in, n_tokens);
    PreparedTask prepared[kGroup];
    int64_t first_band[kGroup];  // product i's bands start at first_band[i]
    int64_t bands = 0;
    for (size_t i = 0; i < group.size(); ++i) {
      prepared[i] = prepare(k, group[i], n_in, n_tokens, inputs);
      first_band[i] = bands;
      bands += bands_of(group[i].n_out);
    }
    // One job for all the products: each thread's bands, product by product. A token or two
    // streams the weights once (memory-bound: a long contiguous run per thread streams best, and
    // the tail chunks even out threads the machine slows down); prompts are compute-bound, where
    // equal smaller chunks do that.
    const auto split = n_tokens < kPanelMinTokens ? ThreadPool::Split::streaming : ThreadPool::Split::even;
    pool.parallel_for(bands, [&](int64_t b0, int64_t b1) {
      for (size_t i = 0; i < group.size(); ++i) {
        const int64_t n_out = prepared[i].task.n_out;
        const int64_t lo = std::max(b0, first_band[i]) - first_band[i];
        const int64_t hi = std::min(b1 - first_band[i], bands_of(n_out));
        if (lo < hi) run_rows(k, prepared[i], n_in, n_tokens, lo * kBandRows, std::min(hi * kBandRows, n_out));
      }
    }, split);
  }
}

void matmul(ThreadPool &pool, GgmlType type, const void *w, int64_t n_out, int64_t n_in, const float *x,
            int64_t n_tokens, float *y) {
  const MatmulTask task{type, w, n_out, x, y};
  matmul_many(pool, {&task, 1}, n_in, n_tokens);
}

}  // namespace vramfit::cpu
