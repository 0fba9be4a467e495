// CUDA dequantization kernels against the scalar reference, on random blocks. Without a GPU the
// test says so and checks nothing (there is nothing honest to check).
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cstring>
#include <random>
#include <vector>

#include "cuda/dequant.cuh"
#include "quant/quant.hpp"
#include "vramfit/error.hpp"

using namespace vramfit;

namespace {

bool have_gpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    MESSAGE("skipped: no CUDA device (cudaGetDeviceCount = " << n << "); kernels compiled but not run");
    return false;
  }
  return true;
}

template <class T>
struct DeviceBuffer {
  T *ptr = nullptr;
  explicit DeviceBuffer(size_t n) { REQUIRE(cudaMalloc(reinterpret_cast<void **>(&ptr), n * sizeof(T)) == cudaSuccess); }
  ~DeviceBuffer() { cudaFree(ptr); }
};

// Same value bit for bit; any NaN matches any NaN (the GPU returns a canonical NaN).
bool same(float a, float b) {
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y || (a != a && b != b);
}

}  // namespace

TEST_CASE("CUDA dequantize kernels equal the scalar reference bit for bit") {
  if (!have_gpu()) return;
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                            GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                            GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K};
  std::mt19937 rng(11);
  constexpr int64_t n = 1024 * 256;  // 1024 K-blocks, 8192 32-blocks
  for (GgmlType type : types) {
    CAPTURE(type_name(type));
    // Random bytes cover every bit pattern (NaN/Inf scales included).
    std::vector<std::byte> src(row_bytes(type, n));
    for (std::byte &b : src) b = static_cast<std::byte>(rng());
    std::vector<float> expected(n);
    quant::dequantize_row_ref(type, src.data(), expected.data(), n);

    DeviceBuffer<std::byte> d_src(src.size());
    DeviceBuffer<float> d_f32(n);
    DeviceBuffer<uint16_t> d_f16(n);
    REQUIRE(cudaMemcpy(d_src.ptr, src.data(), src.size(), cudaMemcpyHostToDevice) == cudaSuccess);
    cuda::dequantize(type, d_src.ptr, d_f32.ptr, n, nullptr);
    cuda::dequantize_f16(type, d_src.ptr, d_f16.ptr, n, nullptr);
    std::vector<float> got(n);
    std::vector<uint16_t> got_f16(n);
    REQUIRE(cudaMemcpy(got.data(), d_f32.ptr, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    REQUIRE(cudaMemcpy(got_f16.data(), d_f16.ptr, n * sizeof(uint16_t), cudaMemcpyDeviceToHost) == cudaSuccess);

    int64_t n_diff = 0, n_diff_f16 = 0;
    for (int64_t i = 0; i < n; ++i) {
      n_diff += !same(got[i], expected[i]);
      n_diff_f16 += !same(quant::f16_to_f32(got_f16[i]), quant::f16_to_f32(quant::f32_to_f16(expected[i])));
    }
    CHECK(n_diff == 0);
    CHECK(n_diff_f16 == 0);
  }
}

TEST_CASE("CUDA dequantize refuses what it cannot do") {
  // Argument checks happen before any CUDA call, so they run without a GPU too.
  CHECK_THROWS_AS(cuda::dequantize(GgmlType::IQ2_XXS, nullptr, nullptr, 256, nullptr), Error);
  CHECK_THROWS_AS(cuda::dequantize(GgmlType::Q4_K, nullptr, nullptr, 100, nullptr), Error);
}
