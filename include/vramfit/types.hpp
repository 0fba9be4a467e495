// ggml tensor types as stored in GGUF files, and their block geometry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vramfit/export.hpp"

namespace vramfit {

// Values are the on-disk ids (ggml_type). Every id GGUF files use is listed so that `info` can
// describe any file; which of them vramfit can compute with is `is_supported_for_compute`.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeTraits {
  std::string_view name;  // "Q4_K"
  uint32_t block_size;    // elements per block (1 for plain types)
  uint32_t type_size;     // bytes per block
};

// Traits of a known type id; std::nullopt for an id no ggml version defines.
VRAMFIT_API std::optional<TypeTraits> type_traits(uint32_t type_id) noexcept;
VRAMFIT_API std::string_view type_name(GgmlType type) noexcept;
// Parses "Q4_K", "q4_k", "F16"...; std::nullopt when unknown.
VRAMFIT_API std::optional<GgmlType> type_from_name(std::string_view name) noexcept;
// Bytes of one row of n elements; n must be a multiple of the block size.
VRAMFIT_API uint64_t row_bytes(GgmlType type, int64_t n) noexcept;
// The types vramfit's kernels implement (F32, F16, BF16, Q4_0, Q8_0, MXFP4, Q2_K..Q6_K, Q8_K).
VRAMFIT_API bool is_supported_for_compute(GgmlType type) noexcept;

// `text` as a JSON string literal: quotes, backslashes and control characters escaped, and each
// byte that starts no well-formed UTF-8 sequence written as \ufffd, so strings read from a file
// (GGUF keys and values are not checked for UTF-8) always make valid JSON.
VRAMFIT_API std::string json_quote(std::string_view text);

}  // namespace vramfit
