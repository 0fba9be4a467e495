#include <algorithm>
#include <string>

#include "cuda/check.hpp"
#include "cuda/dequant.cuh"
#include "cuda/kernel_math.hpp"
#include "quant/blocks.hpp"
#include "vramfit/error.hpp"

namespace vramfit::cuda {
namespace {

constexpr int kThreads = 256;

VRAMFIT_HD void store(float v, float *dst) { *dst = v; }
VRAMFIT_HD void store(float v, uint16_t *dst) { *dst = quant::f32_to_f16(v); }

// One thread per piece of a block (kernel_math.hpp: 16 weights of a K-quant block, 8 of a
// 32-weight block, 1 plain element), grid-stride, so any n fits a bounded grid and no thread
// holds more than one piece (registers, not a stack buffer).
template <class Chunk, class Out>
__global__ void dequantize_kernel(const Chunk *src, Out *dst, int64_t n_blocks) {
  constexpr int pieces = PieceTraits<Chunk>::count, piece_size = PieceTraits<Chunk>::size;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n_blocks * pieces; i += stride) {
    const int64_t block = i / pieces;
    const int piece = static_cast<int>(i % pieces);
    float values[piece_size];
    dequantize_piece(src[block], piece, values);
    Out *out = dst + block * ChunkTraits<Chunk>::size + piece * piece_size;
#pragma unroll
    for (int j = 0; j < piece_size; ++j) store(values[j], out + j);
  }
}

template <class Chunk, class Out>
void launch(const void *src, Out *dst, int64_t n, cudaStream_t stream) {
  const int64_t n_blocks = n / ChunkTraits<Chunk>::size;
  if (n_blocks == 0) return;
  const unsigned grid = grid_for(n_blocks * PieceTraits<Chunk>::count, kThreads);
  dequantize_kernel<Chunk, Out><<<grid, kThreads, 0, stream>>>(static_cast<const Chunk *>(src), dst, n_blocks);
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
    case GgmlType::F32: return launch<float>(src, dst, n, stream);
    case GgmlType::F16: return launch<f16_elem>(src, dst, n, stream);
    case GgmlType::BF16: return launch<bf16_elem>(src, dst, n, stream);
    case GgmlType::Q4_0: return launch<block_q4_0>(src, dst, n, stream);
    case GgmlType::Q8_0: return launch<block_q8_0>(src, dst, n, stream);
    case GgmlType::MXFP4: return launch<block_mxfp4>(src, dst, n, stream);
    case GgmlType::Q2_K: return launch<block_q2_K>(src, dst, n, stream);
    case GgmlType::Q3_K: return launch<block_q3_K>(src, dst, n, stream);
    case GgmlType::Q4_K: return launch<block_q4_K>(src, dst, n, stream);
    case GgmlType::Q5_K: return launch<block_q5_K>(src, dst, n, stream);
    case GgmlType::Q6_K: return launch<block_q6_K>(src, dst, n, stream);
    case GgmlType::Q8_K: return launch<block_q8_K>(src, dst, n, stream);
    default: break;
  }
  throw Error(ErrorCode::internal, "CUDA dequantize: no kernel for " + name);
}

template <class Chunk>
void take_stack_bytes(uint64_t &bytes) {
  cudaFuncAttributes to_f32{}, to_f16{};
  check(cudaFuncGetAttributes(&to_f32, dequantize_kernel<Chunk, float>), "cudaFuncGetAttributes");
  check(cudaFuncGetAttributes(&to_f16, dequantize_kernel<Chunk, uint16_t>), "cudaFuncGetAttributes");
  bytes = std::max<uint64_t>({bytes, to_f32.localSizeBytes, to_f16.localSizeBytes});
}

}  // namespace

uint64_t dequantize_stack_bytes() {
  using namespace quant;
  uint64_t bytes = 0;
  take_stack_bytes<float>(bytes);
  take_stack_bytes<f16_elem>(bytes);
  take_stack_bytes<bf16_elem>(bytes);
  take_stack_bytes<block_q4_0>(bytes);
  take_stack_bytes<block_q8_0>(bytes);
  take_stack_bytes<block_q2_K>(bytes);
  take_stack_bytes<block_q3_K>(bytes);
  take_stack_bytes<block_q4_K>(bytes);
  take_stack_bytes<block_q5_K>(bytes);
  take_stack_bytes<block_q6_K>(bytes);
  take_stack_bytes<block_q8_K>(bytes);
  return bytes;
}

void dequantize(GgmlType type, const void *src_dev, float *dst_dev, int64_t n, cudaStream_t stream) {
  dequantize_any(type, src_dev, dst_dev, n, stream);
}

void dequantize_f16(GgmlType type, const void *src_dev, uint16_t *dst_dev, int64_t n, cudaStream_t stream) {
  dequantize_any(type, src_dev, dst_dev, n, stream);
}

}  // namespace vramfit::cuda
