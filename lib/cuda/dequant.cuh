// CUDA dequantization of whole tensors: one kernel per block format, into f32 or f16.
//
// The per-block arithmetic is quant::dequantize_block's (the CPU reference's), split into pieces
// of a block (dequantize_piece, kernel_math.hpp, host-tested to equal the whole block bit for
// bit), so the results are bit-identical to the reference (and to llama.cpp); the kernels only
// decide which thread handles which piece.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "vramfit/types.hpp"

namespace vramfit::cuda {

// dst_dev[0..n) = the n weights of type `type` at src_dev (both device pointers), queued on
// `stream`. Types: F32, F16, BF16, Q4_0, Q8_0, MXFP4, Q2_K..Q6_K, Q8_K; others throw Error(unsupported).
// n must be a multiple of the type's block size (Error(invalid_argument)). A failed launch throws
// Error(device); errors while the kernel runs surface at the stream's next synchronization.
void dequantize(GgmlType type, const void *src_dev, float *dst_dev, int64_t n, cudaStream_t stream);

// The same, rounded to IEEE half (round to nearest even) for cuBLAS f16 GEMMs.
void dequantize_f16(GgmlType type, const void *src_dev, uint16_t *dst_dev, int64_t n, cudaStream_t stream);

// The largest per-thread stack (local memory) of these kernels, in bytes (see kernel_stack_bytes).
uint64_t dequantize_stack_bytes();

}  // namespace vramfit::cuda
