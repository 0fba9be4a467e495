// IEEE half and bfloat16 <-> float conversions, exact and usable on host and device.
#pragma once

#include <cstdint>
#include <cstring>

#include "quant/hd.hpp"

namespace vramfit::quant {

using f16_bits = uint16_t;   // IEEE 754 binary16, as stored in GGUF
using bf16_bits = uint16_t;  // bfloat16, as stored in GGUF

VRAMFIT_HD float bits_to_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}
VRAMFIT_HD uint32_t float_to_bits(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  return bits;
}

// Exact: every half is representable as a float.
VRAMFIT_HD float f16_to_f32(f16_bits h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp != 0) return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return bits_to_float(sign);
  // subnormal half: value = mant * 2^-24
  const float mag = (float)mant * 5.9604644775390625e-08f;
  return sign ? -mag : mag;
}

// Round to nearest even, like ggml's (and the hardware's) conversion.
VRAMFIT_HD f16_bits f32_to_f16(float f) {
  const uint32_t x = float_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return (f16_bits)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return (f16_bits)(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                                     // result is subnormal or zero
    // value * 2^24 rounded to nearest even integer
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - (int)(abs >> 23);  // units of 2^-24 (the half subnormal step)
    if (shift > 24) return (f16_bits)sign;
    const uint32_t rounded = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    const uint32_t r = rounded + ((rem > half || (rem == half && (rounded & 1u))) ? 1u : 0u);
    return (f16_bits)(sign | r);
  }
  const uint32_t rebias = abs - 0x38000000u;  // exponent 127 -> 15
  const uint32_t r = (rebias + 0x0fffu + ((rebias >> 13) & 1u)) >> 13;
  return (f16_bits)(sign | r);
}

VRAMFIT_HD float bf16_to_f32(bf16_bits h) { return bits_to_float((uint32_t)h << 16); }

VRAMFIT_HD bf16_bits f32_to_bf16(float f) {
  const uint32_t x = float_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (bf16_bits)((x >> 16) | 64u);  // quiet nan
  return (bf16_bits)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace vramfit::quant
