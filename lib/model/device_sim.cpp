#include "model/device_sim.hpp"

#include <cstring>
#include <new>
#include <vector>

#include "common/error.hpp"
#include "common/fault.hpp"
#include "common/log.hpp"

namespace vramfit::model {

void SimDevice::AlignedFree::operator()(std::byte *p) const noexcept {
  ::operator delete[](p, std::align_val_t(alignment));
}

SimDevice::SimDevice(Device &compute, uint64_t capacity_bytes, uint64_t alignment)
    : compute_(compute), memory_(capacity_bytes, alignment, "sim"), host_(nullptr, AlignedFree{alignment}) {
  if (capacity_bytes == 0) return;
  // One allocation of exactly the capacity. The pages are untouched until used, so a large
  // simulated device costs host memory only for what is actually uploaded.
  void *p = detail::inject_fault(detail::Fault::host_alloc)
                ? nullptr
                : ::operator new[](capacity_bytes, std::align_val_t(alignment), std::nothrow);
  if (!p)
    detail::fail(ErrorCode::out_of_memory, "sim: cannot allocate {} bytes of host memory for the simulated device",
                 capacity_bytes);
  host_.reset(static_cast<std::byte *>(p));
  memory_.attach(host_.get());
}

SimDevice::~SimDevice() {
  const Arena &arena = memory_.arena();
  if (arena.n_live() > 0)
    detail::log_warn("sim: destroyed with {} live allocations ({} bytes)", arena.n_live(), arena.in_use());
}

std::string SimDevice::name() const { return fmt::format("sim ({} bytes)", memory_.arena().budget()); }

void *SimDevice::allocate(uint64_t bytes, std::string_view purpose) { return memory_.allocate(bytes, purpose); }

void SimDevice::deallocate(void *ptr) noexcept { memory_.deallocate(ptr); }

void SimDevice::upload(void *device_dst, const void *host_src, uint64_t bytes) {
  if (bytes == 0) return;
  memory_.check_range(device_dst, bytes, "upload");
  std::memcpy(device_dst, host_src, bytes);
  memory_.count_upload(bytes);
}

void SimDevice::download(void *host_dst, const void *device_src, uint64_t bytes) {
  if (bytes == 0) return;
  memory_.check_range(device_src, bytes, "download");
  std::memcpy(host_dst, device_src, bytes);
  memory_.count_download(bytes);
}

DeviceMemoryStats SimDevice::memory_stats() const { return memory_.stats(); }

// The compute device sees our weights and caches as its own: they are host memory.
Weight SimDevice::as_compute(const Weight &w) const {
  Weight out = w;
  out.device = &compute_;
  return out;
}
KvLayer SimDevice::as_compute(const KvLayer &kv) const {
  KvLayer out = kv;
  out.device = &compute_;
  return out;
}

void SimDevice::get_rows(const Weight &table, const int32_t *host_tokens, int64_t n_tokens, float *out) {
  compute_.get_rows(as_compute(table), host_tokens, n_tokens, out);
}
void SimDevice::matmul(const Weight &w, const float *x, int64_t n_tokens, float *y) {
  compute_.matmul(as_compute(w), x, n_tokens, y);
}
void SimDevice::matmul_many(std::span<const Product> products, int64_t n_tokens) {
  std::vector<Product> on_compute(products.begin(), products.end());
  for (Product &p : on_compute) p.w = as_compute(p.w);
  compute_.matmul_many(on_compute, n_tokens);
}
void SimDevice::rms_norm(const float *x, const Weight &weight, int64_t n_tokens, float eps, float *y) {
  compute_.rms_norm(x, as_compute(weight), n_tokens, eps, y);
}
void SimDevice::rope(float *x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t pos0,
                     const RopeParams &params) {
  RopeParams p = params;
  Weight factors;
  if (params.freq_factors) {
    factors = as_compute(*params.freq_factors);
    p.freq_factors = &factors;
  }
  compute_.rope(x, n_tokens, n_heads, head_dim, pos0, p);
}
void SimDevice::kv_store(KvLayer &kv, const float *k, const float *v, int64_t pos0, int64_t n_tokens) {
  KvLayer layer = as_compute(kv);
  compute_.kv_store(layer, k, v, pos0, n_tokens);
}
void SimDevice::attention(const float *q, const KvLayer &kv, int64_t pos0, int64_t n_tokens,
                          const AttentionParams &params, float *out) {
  AttentionParams p = params;
  Weight sinks;
  if (params.sinks) {
    sinks = as_compute(*params.sinks);
    p.sinks = &sinks;
  }
  compute_.attention(q, as_compute(kv), pos0, n_tokens, p, out);
}
void SimDevice::swiglu(const float *gate, const float *up, int64_t n, float *out) {
  compute_.swiglu(gate, up, n, out);
}
void SimDevice::swiglu_clamped(const float *gate, const float *up, int64_t n, float alpha, float limit,
                               float *out) {
  compute_.swiglu_clamped(gate, up, n, alpha, limit, out);
}
void SimDevice::add(float *y, const float *x, int64_t n) { compute_.add(y, x, n); }
void SimDevice::add_bias(float *y, const Weight &bias, int64_t n_tokens) {
  compute_.add_bias(y, as_compute(bias), n_tokens);
}
void SimDevice::gather_rows(const float *src, int64_t width, const int32_t *host_rows, int64_t n, float *dst) {
  compute_.gather_rows(src, width, host_rows, n, dst);
}
void SimDevice::scatter_rows_scaled(const float *src, int64_t width, const int32_t *host_rows,
                                    const float *host_scales, int64_t n, float *dst) {
  compute_.scatter_rows_scaled(src, width, host_rows, host_scales, n, dst);
}
void SimDevice::synchronize() { compute_.synchronize(); }

}  // namespace vramfit::model
