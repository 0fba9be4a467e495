// Quantizing a GGUF file: every weight to the type a llama.cpp-style mix ("Q4_K_M", ...) gives it.
//
// The mixes mean what they mean in llama.cpp (output.weight in Q6_K, more bits for some attn_v and
// ffn_down layers, ...); 1-D tensors (norms) stay as they are. An already-quantized input is
// dequantized and quantized again ("requantized"), which loses quality: such tensors are counted
// and one warning (their number, the first one's name) is logged. The output is written atomically (temporary file + rename),
// with general.file_type set to the mix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "vramfit/export.hpp"
#include "vramfit/types.hpp"

namespace vramfit {

// One tensor written; called after each, in file order, from the calling thread.
struct QuantizeProgress {
  size_t done = 0;    // tensors written so far, this one included
  size_t total = 0;
  std::string_view name;
  GgmlType from = GgmlType::F32;
  GgmlType to = GgmlType::F32;
  bool requantized = false;  // from a quantized type to another: quality drops
};

struct QuantizeParams {
  // F32, F16, Q4_0, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K (any case).
  std::string mix = "Q4_K_M";
  int n_threads = 0;  // 0: one per hardware thread. The output does not depend on it.
  std::function<void(const QuantizeProgress &)> progress;
};

struct QuantizeResult {
  size_t n_tensors = 0;
  size_t n_converted = 0;    // tensors whose type changed
  size_t n_requantized = 0;  // of those, from an already-quantized type
  uint64_t bytes_in = 0;     // tensor data of the input
  uint64_t bytes_out = 0;    // tensor data of the output
};

// Throws Error(invalid_argument) for an unknown mix (the message lists the valid ones),
// Error(unsupported) naming the tensor when its type cannot be dequantized (e.g. IQ2_XXS), and the
// reader's / writer's errors (io, format). On error no output file is left behind.
VRAMFIT_API QuantizeResult quantize_file(const std::filesystem::path &in, const std::filesystem::path &out,
                                         const QuantizeParams &params);

// The valid mix names, for usage messages: "F32, F16, Q4_0, ...".
VRAMFIT_API std::string quantize_mix_names();

// Quantizes n_rows rows of row_length floats to `type` (ggml's reference quantizers, byte for
// byte), writing row_bytes(type, row_length) bytes per row. Error(unsupported) for a type without
// a quantizer, Error(invalid_argument) when row_length is not a multiple of its block. Thread-safe.
VRAMFIT_API void quantize_rows(GgmlType type, const float *src, void *dst, int64_t n_rows, int64_t row_length);

}  // namespace vramfit
