#include "model/device_cuda.hpp"

#if defined(VRAMFIT_HAVE_CUDA) && VRAMFIT_HAVE_CUDA

#include <algorithm>

#include "common/error.hpp"
#include "common/log.hpp"
#include "cuda/ops.hpp"
#include "cuda/runtime.hpp"

namespace vramfit::model {

namespace {

uint64_t round_up(uint64_t bytes) { return (bytes + CudaDevice::alignment - 1) & ~(CudaDevice::alignment - 1); }

}  // namespace

uint64_t CudaDevice::fixed_reservation_bytes(const CudaDeviceConfig &config) {
  return round_up(config.cublas_workspace_bytes) + round_up(config.matmul_scratch_bytes) +
         round_up(config.attention_scratch_bytes) + round_up(token_staging * sizeof(int32_t)) +
         round_up(token_staging * sizeof(float));
}

CudaDevice::CudaDevice(const CudaDeviceConfig &config)
    : config_(config),
      runtime_(std::make_unique<cuda::Runtime>(config.device_index)),
      memory_(config.budget_bytes, alignment, fmt::format("cuda:{}", config.device_index)) {
  const cuda::DeviceInfo info = cuda::device_info(config.device_index);
  name_ = fmt::format("cuda:{} ({}, budget {} bytes)", info.index, info.name, config.budget_bytes);
  if (fixed_reservation_bytes(config) > config.budget_bytes)
    detail::fail(ErrorCode::budget_exceeded,
                 "cuda:{}: a budget of {} bytes does not hold the device's fixed reservations ({} bytes: cuBLAS "
                 "workspace {}, matmul scratch {}, attention scratch {}, index staging {})",
                 config.device_index, config.budget_bytes, fixed_reservation_bytes(config),
                 config.cublas_workspace_bytes, config.matmul_scratch_bytes, config.attention_scratch_bytes,
                 token_staging * (sizeof(int32_t) + sizeof(float)));
  memory_.attach(static_cast<std::byte *>(runtime_->malloc(config.budget_bytes, "the VRAM budget")));
  try {
    // Always set, even to nothing: without it cuBLAS would use memory of its own, outside the budget.
    void *workspace = nullptr;
    if (config.cublas_workspace_bytes > 0)
      workspace = memory_.allocate(config.cublas_workspace_bytes, "cuBLAS workspace");
    runtime_->set_cublas_workspace(workspace, config.cublas_workspace_bytes);
    if (config.matmul_scratch_bytes > 0)
      scratch_ = static_cast<std::byte *>(memory_.allocate(config.matmul_scratch_bytes, "matmul scratch"));
    if (config.attention_scratch_bytes > 0)
      attention_scratch_ =
          static_cast<float *>(memory_.allocate(config.attention_scratch_bytes, "attention split partials"));
    tokens_ = static_cast<int32_t *>(memory_.allocate(token_staging * sizeof(int32_t), "index staging"));
    scales_ = static_cast<float *>(memory_.allocate(token_staging * sizeof(float), "scale staging"));
  } catch (...) {
    runtime_->free(memory_.base());
    throw;
  }
  detail::log_info("{}: {} bytes reserved for cuBLAS, matmul and attention scratch, index staging", name_,
                   fixed_reservation_bytes(config));
}

CudaDevice::~CudaDevice() {
  try {
    runtime_->synchronize("~CudaDevice");
  } catch (const Error &e) {
    detail::log_warn("{}", e.what());
  }
  runtime_->free(memory_.base());
}

std::string CudaDevice::name() const { return name_; }

void *CudaDevice::allocate(uint64_t bytes, std::string_view purpose) { return memory_.allocate(bytes, purpose); }

// Released memory may be handed out again at once: every use of it is ordered on the one stream.
void CudaDevice::deallocate(void *ptr) noexcept { memory_.deallocate(ptr); }

void CudaDevice::upload(void *device_dst, const void *host_src, uint64_t bytes) {
  if (bytes == 0) return;
  memory_.check_range(device_dst, bytes, "upload");
  runtime_->upload(device_dst, host_src, bytes);
  memory_.count_upload(bytes);
}

void CudaDevice::download(void *host_dst, const void *device_src, uint64_t bytes) {
  if (bytes == 0) return;
  memory_.check_range(device_src, bytes, "download");
  runtime_->download(host_dst, device_src, bytes);
  memory_.count_download(bytes);
}

DeviceMemoryStats CudaDevice::memory_stats() const { return memory_.stats(); }

void CudaDevice::get_rows(const Weight &table, const int32_t *host_tokens, int64_t n_tokens, float *out) {
  for (int64_t t = 0; t < n_tokens; ++t)
    if (host_tokens[t] < 0 || host_tokens[t] >= table.ne1)
      detail::fail(ErrorCode::invalid_argument, "{} get_rows: token {} at position {} is outside '{}' ({} rows)",
                   name_, host_tokens[t], t, table.name, table.ne1);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += token_staging) {
    const int64_t n = std::min(token_staging, n_tokens - t0);
    runtime_->upload(tokens_, host_tokens + t0, static_cast<uint64_t>(n) * sizeof(int32_t));
    cuda::get_rows(*runtime_, table.type, table.data, table.ne0, table.ne1, tokens_, n, out + t0 * table.ne0);
  }
}

// Batched matmul (kernel_math.hpp batched_layout / for_each_batched_tile, host-tested): per group
// of tokens, x goes to f16 at the start of the scratch, each row scaled by a power of two so no
// activation overflows f16 (f16_row_exponent); then the weight rows are dequantized to f16 tiles
// in the rest of it (F16 weights are read in place) and multiplied by cuBLAS (f32 accumulate);
// then the group's output rows are scaled back. BF16 weights never go through f16 (their range
// is f32's): they are dequantized exactly to f32 tiles and multiplied with x as it is, on TF32
// tensor cores (f16's 10-bit mantissa, f32's range). Returns false, having done nothing, when the
// scratch cannot hold a useful tile.
bool CudaDevice::matmul_batched(const Weight &w, const float *x, int64_t n_tokens, float *y) {
  const bool bf16 = w.type == GgmlType::BF16;
  const bool in_place = w.type == GgmlType::F16;
  const cuda::BatchedLayout l =
      cuda::batched_layout(config_.matmul_scratch_bytes, w.ne0, w.ne1, n_tokens, !bf16, bf16 ? 4 : 2, in_place);
  if (l.group < 1) return false;
  auto *x16 = reinterpret_cast<uint16_t *>(scratch_);
  auto *scales = reinterpret_cast<float *>(scratch_ + l.x_bytes);
  std::byte *tile = scratch_ + l.tile_offset;
  const uint64_t w_row_bytes = row_bytes(w.type, w.ne0);
  cuda::for_each_batched_tile(l, n_tokens, w.ne1, [&](int64_t t0, int64_t n, int64_t r0, int64_t rows) {
    const float *xt = x + t0 * w.ne0;
    float *yt = y + t0 * w.ne1 + r0;
    const void *rows_data = static_cast<const std::byte *>(w.data) + static_cast<uint64_t>(r0) * w_row_bytes;
    if (bf16) {
      cuda::dequantize_f32(*runtime_, w.type, rows_data, w.ne0, rows, reinterpret_cast<float *>(tile));
      return cuda::gemm_tf32(*runtime_, reinterpret_cast<float *>(tile), rows, w.ne0, xt, n, yt, w.ne1);
    }
    if (r0 == 0) cuda::convert_f32_to_f16_scaled(*runtime_, xt, n, w.ne0, x16, scales);
    const uint16_t *w16 = static_cast<const uint16_t *>(rows_data);
    if (!in_place) {
      cuda::dequantize_f16(*runtime_, w.type, rows_data, w.ne0, rows, reinterpret_cast<uint16_t *>(tile));
      w16 = reinterpret_cast<const uint16_t *>(tile);
    }
    cuda::gemm_f16(*runtime_, w16, rows, w.ne0, x16, n, yt, w.ne1);
    if (r0 + rows == w.ne1) cuda::scale_rows(*runtime_, y + t0 * w.ne1, n, w.ne1, w.ne1, scales);
  });
  return true;
}

void CudaDevice::matmul(const Weight &w, const float *x, int64_t n_tokens, float *y) {
  if (!cuda::supports_weight_type(w.type))
    detail::fail(ErrorCode::unsupported, "{} matmul: '{}' is {}, which has no CUDA kernel", name_, w.name,
                 type_name(w.type));
  const bool batched = n_tokens > config_.gemv_max_tokens && w.ne1 > 0 &&
                       config_.cublas_workspace_bytes >= cuda::Runtime::kMinCublasWorkspace;
  // F32 weights are multiplied as they are: an f16 GEMM would round them and x (~1e-3 relative).
  if (batched && w.type == GgmlType::F32)
    return cuda::gemm_f32(*runtime_, static_cast<const float *>(w.data), w.ne1, w.ne0, x, n_tokens, y, w.ne1);
  if (batched && matmul_batched(w, x, n_tokens, y)) return;
  cuda::gemv(*runtime_, w.type, w.data, w.ne0, w.ne1, x, n_tokens, y);
}

// An F32 vector weight of at least n values, in this device's memory.
const float *CudaDevice::f32_vector(const Weight &w, int64_t n, const char *op) const {
  if (w.type != GgmlType::F32 || w.ne0 * w.ne1 < n)
    detail::fail(ErrorCode::invalid_argument, "{} {}: '{}' must be F32 with at least {} values ({} {}x{})", name_, op,
                 w.name, n, type_name(w.type), w.ne0, w.ne1);
  memory_.check_range(w.data, static_cast<uint64_t>(n) * sizeof(float), op);
  return static_cast<const float *>(w.data);
}

// Each row of weight.ne0 values is normalised on its own, so per-head q/k norms pass
// n_tokens = tokens * heads; y may be x (each thread reads its elements before writing them).
void CudaDevice::rms_norm(const float *x, const Weight &weight, int64_t n_tokens, float eps, float *y) {
  cuda::rms_norm(*runtime_, x, weight.type, weight.data, weight.ne0, n_tokens, eps, y);
}

void CudaDevice::rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                      const RopeParams &params) {
  const float *factors = params.freq_factors ? f32_vector(*params.freq_factors, params.n_rot / 2, "rope (freq_factors)")
                                             : nullptr;
  const cuda::RopeYarn yarn{params.ext_factor, params.attn_factor, params.corr_low, params.corr_high};
  cuda::rope(*runtime_, x, n_tokens, n_heads, head_dim, pos0, params.n_rot, params.freq_base, params.freq_scale,
             factors, params.neox, yarn);
}

void CudaDevice::kv_store(KvLayer &kv, const float *k, const float *v, int64_t pos0, int64_t n_tokens) {
  if (pos0 < 0 || pos0 + n_tokens > kv.n_ctx)
    detail::fail(ErrorCode::context_full, "{} kv_store: positions {}..{} do not fit a cache of {}", name_, pos0,
                 pos0 + n_tokens - 1, kv.n_ctx);
  cuda::kv_store(*runtime_, kv.type, kv.k, kv.v, k, v, kv.n_head_kv * kv.head_dim, pos0, n_tokens);
}

void CudaDevice::attention(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                           const AttentionParams &params, float *out) {
  if (pos0 < 0 || pos0 + n_tokens > kv.n_ctx)
    detail::fail(ErrorCode::context_full, "{} attention: positions {}..{} do not fit a cache of {}", name_, pos0,
                 pos0 + n_tokens - 1, kv.n_ctx);
  if (params.n_head_kv != kv.n_head_kv || params.head_dim != kv.head_dim)
    detail::fail(ErrorCode::invalid_argument, "{} attention: heads {}x{} do not match the cache's {}x{}", name_,
                 params.n_head_kv, params.head_dim, kv.n_head_kv, kv.head_dim);
  const float *sinks = params.sinks ? f32_vector(*params.sinks, params.n_head, "attention (sinks)") : nullptr;
  const cuda::AttentionShape shape{params.n_head, params.n_head_kv, params.head_dim, pos0,
                                   n_tokens,      params.window,    params.scale};
  cuda::attention(*runtime_, q, kv.type, kv.k, kv.v, shape, sinks, attention_scratch_,
                  config_.attention_scratch_bytes / sizeof(float), out);
}

void CudaDevice::swiglu(const float *gate, const float *up, int64_t n, float *out) {
  cuda::swiglu(*runtime_, gate, up, n, out);
}

void CudaDevice::swiglu_clamped(const float *gate, const float *up, int64_t n, float alpha, float limit, float *out) {
  cuda::swiglu_clamped(*runtime_, gate, up, n, alpha, limit, out);
}

void CudaDevice::add(float *y, const float *x, int64_t n) { cuda::add(*runtime_, y, x, n); }

void CudaDevice::add_bias(float *y, const Weight &bias, int64_t n_tokens) {
  cuda::add_bias(*runtime_, y, f32_vector(bias, bias.ne0, "add_bias"), bias.ne0, n_tokens);
}

// Host indices (and scales) go through the staging buffers, token_staging at a time; each upload
// is ordered on the stream after the kernel that read the previous one. Every row an index names
// must lie in this device's memory: a kernel never touches a byte outside the arena.
void CudaDevice::check_rows(const float *base, int64_t width, const int32_t *host_rows, int64_t n,
                            const char *op) const {
  for (int64_t i = 0; i < n; ++i) {
    if (host_rows[i] < 0)
      detail::fail(ErrorCode::invalid_argument, "{} {}: row index {} at {} is negative", name_, op, host_rows[i], i);
    memory_.check_range(base + int64_t{host_rows[i]} * width, static_cast<uint64_t>(width) * sizeof(float), op);
  }
}

void CudaDevice::gather_rows(const float *src, int64_t width, const int32_t *host_rows, int64_t n, float *dst) {
  check_rows(src, width, host_rows, n, "gather_rows");
  for (int64_t i0 = 0; i0 < n; i0 += token_staging) {
    const int64_t m = std::min(token_staging, n - i0);
    runtime_->upload(tokens_, host_rows + i0, static_cast<uint64_t>(m) * sizeof(int32_t));
    cuda::gather_rows(*runtime_, src, width, tokens_, m, dst + i0 * width);
  }
}

void CudaDevice::scatter_rows_scaled(const float *src, int64_t width, const int32_t *host_rows,
                                     const float *host_scales, int64_t n, float *dst) {
  check_rows(dst, width, host_rows, n, "scatter_rows_scaled");
  for (int64_t i0 = 0; i0 < n; i0 += token_staging) {
    const int64_t m = std::min(token_staging, n - i0);
    runtime_->upload(tokens_, host_rows + i0, static_cast<uint64_t>(m) * sizeof(int32_t));
    runtime_->upload(scales_, host_scales + i0, static_cast<uint64_t>(m) * sizeof(float));
    cuda::scatter_rows_scaled(*runtime_, src + i0 * width, width, tokens_, scales_, m, dst);
  }
}

void CudaDevice::synchronize() { runtime_->synchronize("synchronize"); }

void CudaDevice::stream_prepare(int n_slots, uint64_t slot_bytes) { runtime_->prepare_stream_slots(n_slots, slot_bytes); }
void CudaDevice::stream_upload(int slot, void *device_dst, const void *host_src, uint64_t bytes) {
  memory_.check_range(device_dst, bytes, "stream_upload");
  runtime_->stream_upload(slot, device_dst, host_src, bytes);
  memory_.count_upload(bytes);
}
void CudaDevice::stream_acquire(int slot) { runtime_->stream_acquire(slot); }
void CudaDevice::stream_release(int slot) { runtime_->stream_release(slot); }

}  // namespace vramfit::model

#endif  // VRAMFIT_HAVE_CUDA
