// Scalar reference (de)quantization of whole rows: the readable definition of every block format
// vramfit computes with. SIMD (lib/cpu) and CUDA (lib/cuda) kernels are tested against these.
//
// Dequantization is bit-exact with ggml's dequantize_row_* (see dequant_block.hpp). Quantization
// follows ggml's reference quantizers (quantize_row_*_ref: the iterative scale searches
// make_qkx2_quants, make_q3_quants, make_qx_quants), so files we write match llama.cpp's quality.
// Both are deterministic and thread-safe (no state).
#pragma once

#include <cstdint>

#include "quant/blocks.hpp"
#include "quant/dequant_block.hpp"
#include "vramfit/types.hpp"

namespace vramfit::quant {

// True for F32, F16, BF16, Q4_0, Q8_0, MXFP4, Q2_K..Q6_K, Q8_K: the types the two functions below take.
bool has_reference(GgmlType type) noexcept;

// dst[0..n) = the weights encoded in src (row_bytes(type, n) bytes). n must be a multiple of the
// type's block size (Error(invalid_argument) otherwise); other types throw Error(unsupported)
// naming the type. Corrupt blocks never cause UB: NaN/Inf scales give NaN/Inf weights.
void dequantize_row_ref(GgmlType type, const void *src, float *dst, int64_t n);

// Encodes src[0..n) into dst (row_bytes(type, n) bytes). Same types and errors as above.
void quantize_row_ref(GgmlType type, const float *src, void *dst, int64_t n);

// Throws the errors above unless `type` has a reference and n is a multiple of its block size;
// `what` starts the message ("dequantize").
void check_row(GgmlType type, int64_t n, const char *what);

}  // namespace vramfit::quant
