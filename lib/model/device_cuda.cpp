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
         round_up(token_staging * sizeof(int32_t));
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
                 "workspace {}, matmul scratch {}, token staging {})",
                 config.device_index, config.budget_bytes, fixed_reservation_bytes(config),
                 config.cublas_workspace_bytes, config.matmul_scratch_bytes, token_staging * sizeof(int32_t));
  memory_.attach(static_cast<std::byte *>(runtime_->malloc(config.budget_bytes, "the VRAM budget")));
  try {
    // Always set, even to nothing: without it cuBLAS would use memory of its own, outside the budget.
    void *workspace = nullptr;
    if (config.cublas_workspace_bytes > 0)
      workspace = memory_.allocate(config.cublas_workspace_bytes, "cuBLAS workspace");
    runtime_->set_cublas_workspace(workspace, config.cublas_workspace_bytes);
    if (config.matmul_scratch_bytes > 0)
      scratch_ = static_cast<uint16_t *>(memory_.allocate(config.matmul_scratch_bytes, "matmul f16 scratch"));
    tokens_ = static_cast<int32_t *>(memory_.allocate(token_staging * sizeof(int32_t), "token staging"));
  } catch (...) {
    runtime_->free(memory_.base());
    throw;
  }
  detail::log_info("{}: {} bytes reserved for cuBLAS, matmul scratch and tokens", name_,
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

// Batched matmul: per group of tokens, x goes to f16 at the start of the scratch, then the weight
// rows are dequantized to f16 tiles in the rest of it and multiplied by cuBLAS (f32 accumulate).
// Returns false, having done nothing, when the scratch cannot hold a useful tile.
bool CudaDevice::matmul_batched(const Weight &w, const float *x, int64_t n_tokens, float *y) {
  const uint64_t scratch_elems = config_.matmul_scratch_bytes / sizeof(uint16_t);
  const auto k = static_cast<uint64_t>(w.ne0);
  const int64_t group = std::min<int64_t>(n_tokens, static_cast<int64_t>(scratch_elems / 2 / k));
  if (group < 1) return false;
  const uint64_t x_elems = round_up(static_cast<uint64_t>(group) * k * sizeof(uint16_t)) / sizeof(uint16_t);
  const int64_t tile_rows = std::min<int64_t>(w.ne1, static_cast<int64_t>((scratch_elems - x_elems) / k));
  if (tile_rows < 1) return false;
  uint16_t *x16 = scratch_;
  uint16_t *w16 = scratch_ + x_elems;
  const uint64_t w_row_bytes = row_bytes(w.type, w.ne0);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += group) {
    const int64_t n = std::min(group, n_tokens - t0);
    cuda::convert_f32_to_f16(*runtime_, x + t0 * w.ne0, n * w.ne0, x16);
    for (int64_t r0 = 0; r0 < w.ne1; r0 += tile_rows) {
      const int64_t rows = std::min(tile_rows, w.ne1 - r0);
      const void *tile = static_cast<const std::byte *>(w.data) + static_cast<uint64_t>(r0) * w_row_bytes;
      cuda::dequantize_f16(*runtime_, w.type, tile, w.ne0, rows, w16);
      cuda::gemm_f16(*runtime_, w16, rows, w.ne0, x16, n, y + t0 * w.ne1 + r0, w.ne1);
    }
  }
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

void CudaDevice::rms_norm(const float *x, const Weight &weight, int64_t n_tokens, float eps, float *y) {
  cuda::rms_norm(*runtime_, x, weight.type, weight.data, weight.ne0, n_tokens, eps, y);
}

void CudaDevice::rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                      const RopeParams &params) {
  const float *factors = nullptr;
  if (params.freq_factors) {
    if (params.freq_factors->type != GgmlType::F32 || params.freq_factors->ne0 * 2 < params.n_rot)
      detail::fail(ErrorCode::invalid_argument, "{} rope: freq_factors '{}' must be F32 with n_rot/2 = {} values",
                   name_, params.freq_factors->name, params.n_rot / 2);
    factors = static_cast<const float *>(params.freq_factors->data);
    memory_.check_range(factors, static_cast<uint64_t>(params.n_rot / 2) * sizeof(float), "rope (freq_factors)");
  }
  if (params.neox || params.ext_factor != 0.0f || params.attn_factor != 1.0f)
    detail::fail(ErrorCode::unsupported, "{} rope: NeoX and YaRN rope have no CUDA kernel yet", name_);
  cuda::rope(*runtime_, x, n_tokens, n_heads, head_dim, pos0, params.n_rot, params.freq_base, params.freq_scale,
             factors);
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
  if (params.window > 0 || params.sinks)
    detail::fail(ErrorCode::unsupported, "{} attention: sliding windows and sinks have no CUDA kernel yet", name_);
  cuda::attention(*runtime_, q, kv.type, kv.k, kv.v, params.n_head, params.n_head_kv, params.head_dim, pos0,
                  n_tokens, params.scale, out);
}

void CudaDevice::swiglu(const float *gate, const float *up, int64_t n, float *out) {
  cuda::swiglu(*runtime_, gate, up, n, out);
}

void CudaDevice::add(float *y, const float *x, int64_t n) { cuda::add(*runtime_, y, x, n); }

// Not yet on CUDA: the architectures that need these ops refuse a CUDA device cleanly.
void CudaDevice::swiglu_clamped(const float *, const float *, int64_t, float, float, float *) {
  detail::fail(ErrorCode::unsupported, "{}: swiglu_clamped has no CUDA kernel yet", name_);
}
void CudaDevice::add_bias(float *, const Weight &bias, int64_t) {
  detail::fail(ErrorCode::unsupported, "{}: add_bias ('{}') has no CUDA kernel yet", name_, bias.name);
}
void CudaDevice::gather_rows(const float *, int64_t, const int32_t *, int64_t, float *) {
  detail::fail(ErrorCode::unsupported, "{}: gather_rows has no CUDA kernel yet", name_);
}
void CudaDevice::scatter_rows_scaled(const float *, int64_t, const int32_t *, const float *, int64_t, float *) {
  detail::fail(ErrorCode::unsupported, "{}: scatter_rows_scaled has no CUDA kernel yet", name_);
}

void CudaDevice::synchronize() { runtime_->synchronize("synchronize"); }

}  // namespace vramfit::model

#endif  // VRAMFIT_HAVE_CUDA
