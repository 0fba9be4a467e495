#include <doctest/doctest.h>

#include "quant/fp16.hpp"
#include "vramfit/error.hpp"
#include "vramfit/types.hpp"

#include <cstring>

using namespace vramfit;

TEST_CASE("type traits follow ggml's block geometry") {
  CHECK(type_traits(12)->name == "Q4_K");
  CHECK(type_traits(12)->block_size == 256);
  CHECK(type_traits(12)->type_size == 144);
  CHECK(!type_traits(4).has_value());  // Q4_2, removed from ggml
  CHECK(row_bytes(GgmlType::Q6_K, 4096) == 16 * 210);
  CHECK(type_from_name("q8_0") == GgmlType::Q8_0);
  CHECK(!type_from_name("Q9_K"));
}

TEST_CASE("f16 conversion is exact and rounds to nearest even (checked against F16C via _Float16)") {
  for (uint32_t h = 0; h < 65536; ++h) {
    _Float16 ref;
    uint16_t bits = static_cast<uint16_t>(h);
    std::memcpy(&ref, &bits, 2);
    float f = quant::f16_to_f32(bits);
    if (f != f) continue;  // NaN payloads
    REQUIRE(f == static_cast<float>(ref));
  }
  uint32_t state = 12345;
  for (int i = 0; i < 2000000; ++i) {
    state = state * 1664525u + 1013904223u;
    float f = quant::bits_to_float(state);
    if (f != f) continue;
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    REQUIRE(quant::f32_to_f16(f) == ref_bits);
  }
}

TEST_CASE("Error carries a code and a message") {
  Error e(ErrorCode::format, "bad magic at offset 0");
  CHECK(e.code() == ErrorCode::format);
  CHECK(std::string(e.what()) == "bad magic at offset 0");
  CHECK(std::string(to_string(ErrorCode::budget_exceeded)) == "budget_exceeded");
}
