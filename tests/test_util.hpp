// Small helpers shared by the tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "vramfit/error.hpp"

namespace vramfit::test {

// The code of the Error that `fn` throws; ErrorCode::internal when it throws none, so a CHECK
// comparing it with the expected code fails.
inline ErrorCode error_code_of(auto &&fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.code();
  }
  return ErrorCode::internal;
}

// n normally distributed floats (mean 0, deviation `scale`), the same for a seed on every platform
// this project builds on (libstdc++'s mt19937 and normal_distribution).
inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v) x = dist(rng);
  return v;
}

}  // namespace vramfit::test
