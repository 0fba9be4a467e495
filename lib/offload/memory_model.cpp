#include "offload/memory_model.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace vramfit::offload {

uint64_t arena_bytes(uint64_t bytes) noexcept {
  constexpr uint64_t a = Plan::device_alignment;
  return (std::max<uint64_t>(bytes, 1) + a - 1) / a * a;
}

uint64_t kv_row_bytes(const ModelShape &model, KvType type) {
  const uint64_t n = model.n_embd_kv();
  switch (type) {
    case KvType::f32:
      return n * 4;
    case KvType::f16:
      return n * 2;
    case KvType::q8_0:
      if (n % 32 != 0)
        detail::fail(ErrorCode::invalid_argument,
                     "--kv-type q8_0 needs n_head_kv*head_dim ({}) to be a multiple of 32; use f16", n);
      return n / 32 * 34;
  }
  return 0;
}

uint64_t scratch_bytes(const ModelShape &model, uint32_t n_ctx, uint32_t n_batch, bool holds_output) {
  const uint64_t q_dim = uint64_t{model.n_head} * model.head_dim;
  uint64_t floats_per_token =
      2ull * model.n_embd + 2 * q_dim + 2ull * model.n_embd_kv() + 2ull * model.n_ff + uint64_t{model.n_head} * n_ctx;
  if (holds_output) floats_per_token += model.n_vocab;
  return uint64_t{n_batch} * floats_per_token * sizeof(float);
}

uint64_t staging_bytes(const ModelShape &model, uint32_t n_batch) {
  const uint64_t q_dim = uint64_t{model.n_head} * model.head_dim;
  const uint64_t widest = std::max<uint64_t>(model.n_embd, q_dim + 2ull * model.n_embd_kv());
  return uint64_t{n_batch} * widest * sizeof(float);
}

}  // namespace vramfit::offload
