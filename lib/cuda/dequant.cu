#include <algorithm>
#include <string>

#include "cuda/check.hpp"
#include "cuda/dequant.cuh"
#include "quant/blocks.hpp"
#include "quant/dequant_block.hpp"
#include "quant/fp16.hpp"
#include "vramfit/error.hpp"

namespace vramfit::cuda {
namespace {

constexpr int kThreads = 256;

// Plain element types as one-weight "blocks", so one kernel template serves every format.
struct f32_weight { float value; };
struct f16_weight { quant::f16_bits bits; };
struct bf16_weight { quant::bf16_bits bits; };
VRAMFIT_HD void dequantize_one(const f32_weight &w, float *out) { out[0] = w.value; }
VRAMFIT_HD void dequantize_one(const f16_weight &w, float *out) { out[0] = quant::f16_to_f32(w.bits); }
VRAMFIT_HD void dequantize_one(const bf16_weight &w, float *out) { out[0] = quant::bf16_to_f32(w.bits); }
template <class Block>
VRAMFIT_HD void dequantize_one(const Block &b, float *out) {
  quant::dequantize_block(b, out);
}

// f32: the block writes straight to its place. f16: through a local buffer, then rounded.
template <int BlockSize, class Block>
__device__ __forceinline__ void dequantize_to(const Block &b, float *dst) {
  dequantize_one(b, dst);
}
template <int BlockSize, class Block>
__device__ __forceinline__ void dequantize_to(const Block &b, uint16_t *dst) {
  float values[BlockSize];
  dequantize_one(b, values);
  for (int j = 0; j < BlockSize; ++j) dst[j] = quant::f32_to_f16(values[j]);
}

// One thread per block, grid-stride, so any n fits a bounded grid.
template <class Block, int BlockSize, class Out>
__global__ void dequantize_kernel(const Block *src, Out *dst, int64_t n_blocks) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n_blocks; i += stride)
    dequantize_to<BlockSize>(src[i], dst + i * BlockSize);
}

template <class Block, int BlockSize, class Out>
void launch(const void *src, Out *dst, int64_t n, cudaStream_t stream) {
  const int64_t n_blocks = n / BlockSize;
  if (n_blocks == 0) return;
  const int64_t grid = std::min<int64_t>((n_blocks + kThreads - 1) / kThreads, 65535);
  dequantize_kernel<Block, BlockSize, Out>
      <<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(static_cast<const Block *>(src), dst, n_blocks);
  check_launch("dequantize");
}

template <class Out>
void dequantize_any(GgmlType type, const void *src, Out *dst, int64_t n, cudaStream_t stream) {
  const auto traits = type_traits(static_cast<uint32_t>(type));
  const std::string name(type_name(type));
  if (!is_supported_for_compute(type) || !traits)
    throw Error(ErrorCode::unsupported, "CUDA dequantize: tensor type " + name + " is not supported");
  if (n < 0 || n % traits->block_size != 0)
    throw Error(ErrorCode::invalid_argument, "CUDA dequantize: " + std::to_string(n) +
                                                 " elements is not a multiple of the " + name + " block size " +
                                                 std::to_string(traits->block_size));
  using namespace quant;
  switch (type) {
    case GgmlType::F32: return launch<f32_weight, 1>(src, dst, n, stream);
    case GgmlType::F16: return launch<f16_weight, 1>(src, dst, n, stream);
    case GgmlType::BF16: return launch<bf16_weight, 1>(src, dst, n, stream);
    case GgmlType::Q4_0: return launch<block_q4_0, QK4_0>(src, dst, n, stream);
    case GgmlType::Q8_0: return launch<block_q8_0, QK8_0>(src, dst, n, stream);
    case GgmlType::MXFP4: return launch<block_mxfp4, QK_MXFP4>(src, dst, n, stream);
    case GgmlType::Q2_K: return launch<block_q2_K, QK_K>(src, dst, n, stream);
    case GgmlType::Q3_K: return launch<block_q3_K, QK_K>(src, dst, n, stream);
    case GgmlType::Q4_K: return launch<block_q4_K, QK_K>(src, dst, n, stream);
    case GgmlType::Q5_K: return launch<block_q5_K, QK_K>(src, dst, n, stream);
    case GgmlType::Q6_K: return launch<block_q6_K, QK_K>(src, dst, n, stream);
    case GgmlType::Q8_K: return launch<block_q8_K, QK_K>(src, dst, n, stream);
    default: break;
  }
  throw Error(ErrorCode::internal, "CUDA dequantize: no kernel for " + name);
}

template <class Block, int BlockSize>
void take_stack_bytes(uint64_t &bytes) {
  cudaFuncAttributes to_f32{}, to_f16{};
  check(cudaFuncGetAttributes(&to_f32, dequantize_kernel<Block, BlockSize, float>), "cudaFuncGetAttributes");
  check(cudaFuncGetAttributes(&to_f16, dequantize_kernel<Block, BlockSize, uint16_t>), "cudaFuncGetAttributes");
  bytes = std::max<uint64_t>({bytes, to_f32.localSizeBytes, to_f16.localSizeBytes});
}

}  // namespace

uint64_t dequantize_stack_bytes() {
  using namespace quant;
  uint64_t bytes = 0;
  take_stack_bytes<f32_weight, 1>(bytes);
  take_stack_bytes<f16_weight, 1>(bytes);
  take_stack_bytes<bf16_weight, 1>(bytes);
  take_stack_bytes<block_q4_0, QK4_0>(bytes);
  take_stack_bytes<block_q8_0, QK8_0>(bytes);
  take_stack_bytes<block_q2_K, QK_K>(bytes);
  take_stack_bytes<block_q3_K, QK_K>(bytes);
  take_stack_bytes<block_q4_K, QK_K>(bytes);
  take_stack_bytes<block_q5_K, QK_K>(bytes);
  take_stack_bytes<block_q6_K, QK_K>(bytes);
  take_stack_bytes<block_q8_K, QK_K>(bytes);
  return bytes;
}

void dequantize(GgmlType type, const void *src_dev, float *dst_dev, int64_t n, cudaStream_t stream) {
  dequantize_any(type, src_dev, dst_dev, n, stream);
}

void dequantize_f16(GgmlType type, const void *src_dev, uint16_t *dst_dev, int64_t n, cudaStream_t stream) {
  dequantize_any(type, src_dev, dst_dev, n, stream);
}

}  // namespace vramfit::cuda
