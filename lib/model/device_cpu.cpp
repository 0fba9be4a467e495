#include "model/device_cpu.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "common/error.hpp"
#include "common/fault.hpp"
#include "cpu/nn.hpp"
#include "quant/quant.hpp"

namespace vramfit::model {
namespace {

using detail::fail;

constexpr uint64_t kAlignment = 64;  // a cache line, and enough for every SIMD width
// Below this many elements an elementwise op is cheaper on one thread than waking the pool
// (a decode step runs hundreds of ops; each wake-up costs tens of microseconds).
constexpr int64_t kParallelMinElements = 1 << 16;
// Queries per KV head, and tokens, from which attention lays the cache out by head (see
// attention()); fewer tokens read the cache in place (attention_shared_kv).
constexpr int64_t kMinQueriesToLayOut = 8;
constexpr int64_t kMinTokensToLayOut = 4;
// Cache rows attention_shared_kv converts to f32 at a time (a non-f32 cache): a chunk of keys
// or values stays in the core's cache for all the query heads that read it.
constexpr int64_t kSharedChunkKeys = 128;
// Floats of one thread's part of the attention workspace, before the shared layout buffers.
int64_t thread_attention_floats(int64_t attention_ctx) {
  return cpu::kMaxSharedQueries * attention_ctx + kSharedChunkKeys * cpu::kMaxSharedHeadDim;
}

const float *f32_data(const Weight &w, const char *op) {
  if (w.type != GgmlType::F32)
    fail(ErrorCode::unsupported, "{}: weight '{}' must be F32, not {}", op, w.name, type_name(w.type));
  return static_cast<const float *>(w.data);
}

int64_t round_up_to_key_block(int64_t n) { return (n + cpu::kKeyBlock - 1) / cpu::kKeyBlock * cpu::kKeyBlock; }

// Rows [c, c + n) of KV head h of `cache` (kv.k or kv.v) as f32 rows, `stride` floats apart: an
// f32 cache's in place, any other's converted into `buffer` (n * head_dim floats). Heads of whole
// blocks of the cache's type.
const float *head_rows(const KvLayer &kv, void *cache, int64_t h, int64_t c, int64_t n, float *buffer,
                       int64_t &stride) {
  if (kv.type == GgmlType::F32) {
    stride = kv.part_width();
    return reinterpret_cast<const float *>(kv.head_row(cache, h, c));
  }
  stride = kv.head_dim;
  cpu::dequantize_rows(kv.type, kv.head_row(cache, h, c), kv.row_stride(), n, buffer, kv.head_dim);
  return buffer;
}

// n floats of x as a cache's `type` at dst.
void store_row(GgmlType type, const float *x, void *dst, int64_t n) {
  if (type == GgmlType::F32) std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
  else quant::quantize_row_ref(type, x, dst, n);
}

}  // namespace

CpuDevice::CpuDevice(int n_threads, uint64_t budget_bytes) : pool_(n_threads) {
  stats_.budget_bytes = budget_bytes;
}

CpuDevice::~CpuDevice() {
  for (auto &[ptr, bytes] : live_) std::free(ptr);
}

void *CpuDevice::allocate(uint64_t bytes, std::string_view purpose) {
  std::lock_guard lock(mutex_);
  if (bytes > stats_.budget_bytes - stats_.allocated_bytes)
    fail(ErrorCode::budget_exceeded, "cpu: allocating {} bytes for {} would exceed the budget ({} of {} bytes in use)",
         bytes, purpose, stats_.allocated_bytes, stats_.budget_bytes);
  const uint64_t rounded = (std::max<uint64_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  void *ptr = detail::inject_fault(detail::Fault::host_alloc) ? nullptr : std::aligned_alloc(kAlignment, rounded);
  if (!ptr) fail(ErrorCode::out_of_memory, "cpu: cannot allocate {} bytes for {}", bytes, purpose);
  live_.emplace(ptr, bytes);
  stats_.allocated_bytes += bytes;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.allocated_bytes);
  return ptr;
}

void CpuDevice::deallocate(void *ptr) noexcept {
  if (!ptr) return;
  std::lock_guard lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) return;  // not ours: ignore rather than corrupt the heap
  stats_.allocated_bytes -= it->second;
  live_.erase(it);
  std::free(ptr);
}

void CpuDevice::upload(void *device_dst, const void *host_src, uint64_t bytes) {
  std::memcpy(device_dst, host_src, bytes);
  std::lock_guard lock(mutex_);
  stats_.bytes_uploaded += bytes;
  ++stats_.n_copies;
}

void CpuDevice::download(void *host_dst, const void *device_src, uint64_t bytes) {
  std::memcpy(host_dst, device_src, bytes);
  std::lock_guard lock(mutex_);
  stats_.bytes_downloaded += bytes;
  ++stats_.n_copies;
}

DeviceMemoryStats CpuDevice::memory_stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CpuDevice::get_rows(const Weight &table, const int32_t *host_tokens, int64_t n_tokens, float *out) {
  const uint64_t row = row_bytes(table.type, table.ne0);
  const auto *base = static_cast<const std::byte *>(table.data);
  for (int64_t t = 0; t < n_tokens; ++t) {
    if (host_tokens[t] < 0 || host_tokens[t] >= table.ne1)
      fail(ErrorCode::invalid_argument, "token id {} is outside [0, {}) of '{}'", host_tokens[t],
           table.ne1, table.name);
    cpu::dequantize_row(table.type, base + row * static_cast<uint64_t>(host_tokens[t]),
                        out + t * table.ne0, table.ne0);
  }
}

void CpuDevice::matmul(const Weight &w, const float *x, int64_t n_tokens, float *y) {
  cpu::matmul(pool_, w.type, w.data, w.ne1, w.ne0, x, n_tokens, y);
}

void CpuDevice::matmul_many(std::span<const Product> products, int64_t n_tokens) {
  constexpr size_t kGroup = 16;  // on the stack: a decode step calls this a few times per layer
  for (size_t first = 0; first < products.size(); first += kGroup) {
    cpu::MatmulTask tasks[kGroup];
    const size_t n = std::min(kGroup, products.size() - first);
    for (size_t i = 0; i < n; ++i) {
      const Weight &w = products[first + i].w;
      if (w.ne0 != products[0].w.ne0)
        detail::fail(ErrorCode::invalid_argument, "matmul_many: '{}' has rows of {}, '{}' of {}", w.name, w.ne0,
                     products[0].w.name, products[0].w.ne0);
      tasks[i] = {w.type, w.data, w.ne1, products[first + i].x, products[first + i].y};
    }
    cpu::matmul_many(pool_, {tasks, n}, products[0].w.ne0, n_tokens);
  }
}

void CpuDevice::rms_norm(const float *x, const Weight &weight, int64_t n_tokens, float eps, float *y) {
  const float *w = f32_data(weight, "rms_norm");
  const int64_t n = weight.ne0;
  for (int64_t t = 0; t < n_tokens; ++t) cpu::rms_norm_row(x + t * n, w, n, eps, y + t * n);
}

void CpuDevice::rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                     const RopeParams &params) {
  const float *factors = params.freq_factors ? f32_data(*params.freq_factors, "rope") : nullptr;
  const cpu::RopeYarn yarn{params.ext_factor, params.attn_factor, params.corr_low, params.corr_high};
  const auto rotate = params.neox ? cpu::rope_row_neox : cpu::rope_row;
  pool_.parallel_for(n_tokens, [&](int64_t begin, int64_t end) {
    std::vector<float> cache(static_cast<size_t>(params.n_rot));
    for (int64_t t = begin; t < end; ++t) {
      cpu::rope_cache(pos0 + t, params.n_rot, params.freq_base, params.freq_scale, factors, yarn, cache.data());
      rotate(x + t * n_heads * head_dim, n_heads, head_dim, params.n_rot, cache.data());
    }
  });
}

// Each token's row goes to its place in each part of the cache (whole, or one KV head's slice):
// whole blocks either way, so the same bytes.
void CpuDevice::kv_store(KvLayer &kv, const float *k, const float *v, int64_t pos0, int64_t n_tokens) {
  const int64_t n = kv.n_head_kv * kv.head_dim, width = kv.part_width();
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t part = 0; part < kv.n_parts(); ++part) {
      store_row(kv.type, k + t * n + part * width, kv.head_row(kv.k, part, pos0 + t), width);
      store_row(kv.type, v + t * n + part * width, kv.head_row(kv.v, part, pos0 + t), width);
    }
}

void CpuDevice::reserve_attention(int64_t n_ctx, int64_t n_kv_embd) {
  n_ctx = round_up_to_key_block(n_ctx);
  if (n_ctx <= attention_ctx_ && n_kv_embd <= attention_kv_embd_) return;
  n_ctx = std::max(n_ctx, attention_ctx_);
  n_kv_embd = std::max(n_kv_embd, attention_kv_embd_);
  deallocate(attention_ws_);
  attention_ws_ = nullptr;
  const auto floats = static_cast<uint64_t>(n_threads() * thread_attention_floats(n_ctx) + 2 * n_ctx * n_kv_embd);
  attention_ws_ = static_cast<float *>(allocate(floats * sizeof(float), "attention workspace"));
  attention_ctx_ = n_ctx;
  attention_kv_embd_ = n_kv_embd;
}

void CpuDevice::lay_out_by_head(const KvLayer &kv, int64_t n_visible, float *keys, float *values) {
  const int64_t n_kv_embd = kv.n_head_kv * kv.head_dim, head_dim = kv.head_dim;
  const int64_t n_blocks = round_up_to_key_block(n_visible) / cpu::kKeyBlock;
  const int64_t head_floats = n_blocks * cpu::kKeyBlock * head_dim;  // one KV head's keys, or values
  auto lay_out = [&](int64_t begin, int64_t end) {
    std::vector<float> rows;  // a non-f32 cache's keys and values of one block, as f32
    for (int64_t b = begin; b < end; ++b) {
      const int64_t pos = b * cpu::kKeyBlock, n_keys = std::min(cpu::kKeyBlock, n_visible - pos);
      if (kv.type != GgmlType::F32) rows.resize(static_cast<size_t>(2 * cpu::kKeyBlock * n_kv_embd));
      // A row-major cache's rows of the block, for all heads (converted once when not f32).
      const float *k_rows = static_cast<const float *>(kv.k) + pos * n_kv_embd;
      const float *v_rows = static_cast<const float *>(kv.v) + pos * n_kv_embd;
      if (kv.type != GgmlType::F32 && !kv.by_head) {
        float *v32 = rows.data() + cpu::kKeyBlock * n_kv_embd;
        cpu::dequantize_rows(kv.type, kv.head_row(kv.k, 0, pos), kv.bytes_per_row(), n_keys, rows.data(), n_kv_embd);
        cpu::dequantize_rows(kv.type, kv.head_row(kv.v, 0, pos), kv.bytes_per_row(), n_keys, v32, n_kv_embd);
        k_rows = rows.data();
        v_rows = v32;
      }
      for (int64_t h = 0; h < kv.n_head_kv; ++h) {
        // Head h's keys and values of the block, rows `stride` floats apart; a head-major cache's
        // read (or converted) head by head.
        int64_t stride = n_kv_embd;
        const float *k_head = k_rows + h * head_dim, *v_head = v_rows + h * head_dim;
        if (kv.by_head) {
          k_head = head_rows(kv, kv.k, h, pos, n_keys, rows.data(), stride);
          v_head = head_rows(kv, kv.v, h, pos, n_keys, rows.data() + cpu::kKeyBlock * head_dim, stride);
        }
        cpu::block_keys(k_head, stride, head_dim, n_keys, keys + h * head_floats + pos * head_dim);
        for (int64_t i = 0; i < n_keys; ++i)
          std::memcpy(values + h * head_floats + (pos + i) * head_dim, v_head + i * stride,
                      static_cast<size_t>(head_dim) * sizeof(float));
      }
    }
  };
  if (n_visible * n_kv_embd < kParallelMinElements) lay_out(0, n_blocks);
  else pool_.parallel_for(n_blocks, lay_out);
}

float *CpuDevice::thread_attention_ws() const noexcept {
  return attention_ws_ + cpu::ThreadPool::thread_index() * thread_attention_floats(attention_ctx_);
}

bool CpuDevice::attention_shared_kv(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                                    const AttentionParams &p, float *out) {
  const int64_t head_dim = kv.head_dim;
  if (head_dim % 8 != 0 || head_dim > cpu::kMaxSharedHeadDim || !heads_are_whole_blocks(kv.type, head_dim))
    return false;
  const int64_t group = p.n_head / p.n_head_kv;
  const int64_t parts = (group + cpu::kMaxSharedQueries - 1) / cpu::kMaxSharedQueries;  // per KV head
  const int64_t per_part = (group + parts - 1) / parts;
  const float *sinks = p.sinks ? f32_data(*p.sinks, "attention sinks") : nullptr;
  pool_.parallel_for(n_tokens * kv.n_head_kv * parts, [&](int64_t begin, int64_t end) {
    float *scores = thread_attention_ws();
    float *chunk = scores + cpu::kMaxSharedQueries * attention_ctx_;  // converted rows
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / (kv.n_head_kv * parts), kv_head = task / parts % kv.n_head_kv;
      const int64_t g0 = task % parts * per_part, n_queries = std::min(per_part, group - g0);
      const int64_t h0 = kv_head * group + g0;  // the first query head of the task
      const int64_t n_kv = pos0 + t + 1;
      const int64_t first = p.window > 0 ? std::max<int64_t>(0, n_kv - p.window) : 0;
      const float *q_rows = q + (t * p.n_head + h0) * head_dim;
      float *out_rows = out + (t * p.n_head + h0) * head_dim;
      int64_t stride = 0;
      for (int64_t c = first; c < n_kv; c += kSharedChunkKeys) {
        const int64_t n = std::min(kSharedChunkKeys, n_kv - c);
        const float *k = head_rows(kv, kv.k, kv_head, c, n, chunk, stride);
        cpu::shared_kv_scores(q_rows, n_queries, k, n, stride, head_dim, p.scale, scores + c, attention_ctx_);
      }
      cpu::softmax_rows(scores, attention_ctx_, n_queries, first, n_kv, sinks ? sinks + h0 : nullptr);
      for (int64_t c = first; c < n_kv; c += kSharedChunkKeys) {
        const int64_t n = std::min(kSharedChunkKeys, n_kv - c);
        const float *v = head_rows(kv, kv.v, kv_head, c, n, chunk, stride);
        cpu::shared_kv_values(scores + c, attention_ctx_, n_queries, v, n, stride, head_dim, c > first, out_rows);
      }
    }
  });
  return true;
}

void CpuDevice::attention(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                          const AttentionParams &p, float *out) {
  const int64_t n_kv_embd = kv.n_head_kv * kv.head_dim;
  const int64_t n_visible = pos0 + n_tokens;
  reserve_attention(kv.n_ctx, n_kv_embd);
  float *keys_ws = attention_ws_ + n_threads() * thread_attention_floats(attention_ctx_);
  float *values_ws = keys_ws + attention_ctx_ * attention_kv_embd_;

  // Lay the cache out head by head (the keys in blocks for cpu::attention_head_blocked): one pass
  // over it that makes every query's scores and weighted sum about twice as cheap, so it pays once
  // a few tokens' queries share each KV head: a prompt. A token or two (decode) reads the cache
  // where it lies instead, each key and value once for the query heads that share it. Same bits
  // every way.
  const int64_t group = p.n_head / p.n_head_kv;  // query heads per KV head
  const bool lay_out = n_tokens >= kMinTokensToLayOut && n_tokens * group >= kMinQueriesToLayOut;
  if (!lay_out && attention_shared_kv(q, kv, pos0, n_tokens, p, out)) return;
  const int64_t head_floats = round_up_to_key_block(n_visible) * p.head_dim;  // one KV head's, laid out

  // Else the cache as f32 in its own layout: in place when it is f32, else converted once for all
  // heads. KV head h's rows start h * head_step floats in, `stride` floats apart.
  const float *k = static_cast<const float *>(kv.k);
  const float *v = static_cast<const float *>(kv.v);
  const int64_t head_step = kv.by_head ? kv.n_ctx * p.head_dim : p.head_dim;
  const int64_t stride = kv.part_width();
  if (lay_out) {
    lay_out_by_head(kv, n_visible, keys_ws, values_ws);
    k = keys_ws;
    v = values_ws;
  } else if (kv.type != GgmlType::F32) {
    const int64_t width = kv.part_width(), part_floats = kv.n_ctx * width;
    auto convert = [&](int64_t begin, int64_t end) {
      for (int64_t part = 0; part < kv.n_parts(); ++part) {
        const int64_t at = part * part_floats + begin * width;
        cpu::dequantize_rows(kv.type, kv.head_row(kv.k, part, begin), kv.row_stride(), end - begin, keys_ws + at, width);
        cpu::dequantize_rows(kv.type, kv.head_row(kv.v, part, begin), kv.row_stride(), end - begin, values_ws + at,
                             width);
      }
    };
    if (n_visible * n_kv_embd < kParallelMinElements) convert(0, n_visible);
    else pool_.parallel_for(n_visible, convert);
    k = keys_ws;
    v = values_ws;
  }

  // One task per (token, head); token t sees positions 0..pos0+t (causal), the last p.window
  // of them with a sliding window.
  const float *sinks = p.sinks ? f32_data(*p.sinks, "attention sinks") : nullptr;
  pool_.parallel_for(n_tokens * p.n_head, [&](int64_t begin, int64_t end) {
    float *scores = thread_attention_ws();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / p.n_head, h = task % p.n_head, kv_head = h / group;
      const int64_t n_kv = pos0 + t + 1;
      const int64_t first = p.window > 0 ? std::max<int64_t>(0, n_kv - p.window) : 0;
      const float *q_head = q + (t * p.n_head + h) * p.head_dim;
      const float *sink = sinks ? sinks + h : nullptr;
      float *out_head = out + (t * p.n_head + h) * p.head_dim;
      if (lay_out)
        cpu::attention_head_blocked(q_head, k + kv_head * head_floats, v + kv_head * head_floats, first, n_kv,
                                    p.head_dim, p.head_dim, p.scale, sink, scores, out_head);
      else
        cpu::attention_head(q_head, k + kv_head * head_step, v + kv_head * head_step, first, n_kv, stride,
                            p.head_dim, p.scale, sink, scores, out_head);
    }
  });
}

void CpuDevice::swiglu(const float *gate, const float *up, int64_t n, float *out) {
  if (n < kParallelMinElements) return cpu::swiglu(gate, up, n, out);
  pool_.parallel_for(n, [&](int64_t begin, int64_t end) {
    cpu::swiglu(gate + begin, up + begin, end - begin, out + begin);
  });
}

void CpuDevice::swiglu_clamped(const float *gate, const float *up, int64_t n, float alpha, float limit, float *out) {
  if (n < kParallelMinElements) return cpu::swiglu_clamped(gate, up, n, alpha, limit, out);
  pool_.parallel_for(n, [&](int64_t begin, int64_t end) {
    cpu::swiglu_clamped(gate + begin, up + begin, end - begin, alpha, limit, out + begin);
  });
}

void CpuDevice::add(float *y, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void CpuDevice::add_bias(float *y, const Weight &bias, int64_t n_tokens) {
  const float *b = f32_data(bias, "add_bias");
  const int64_t n = bias.ne0;
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[i];
}

void CpuDevice::gather_rows(const float *src, int64_t width, const int32_t *host_rows, int64_t n, float *dst) {
  const auto row = static_cast<size_t>(width) * sizeof(float);
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * width, src + int64_t{host_rows[i]} * width, row);
}

void CpuDevice::scatter_rows_scaled(const float *src, int64_t width, const int32_t *host_rows,
                                    const float *host_scales, int64_t n, float *dst) {
  for (int64_t i = 0; i < n; ++i) {
    float *out = dst + int64_t{host_rows[i]} * width;
    const float *in = src + i * width;
    const float scale = host_scales[i];
    for (int64_t j = 0; j < width; ++j) out[j] = in[j] * scale;
  }
}

}  // namespace vramfit::model
