// CudaDevice on a real GPU: every op against float64 (the same harness the CPU passes), the
// budget, and the copies. Without a CUDA device it says so and checks nothing.
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/ops.hpp"
#include "cuda/runtime.hpp"
#include "model/device_check.hpp"
#include "model/device_cpu.hpp"
#include "quant/quant.hpp"
#include "model/device_cuda.hpp"
#include "test_util.hpp"
#include "vramfit/error.hpp"

using namespace vramfit;
using vramfit::test::random_floats;
using namespace vramfit::model;

namespace {

bool have_gpu() {
  if (cuda::device_count() > 0) return true;
  MESSAGE("skipped: no CUDA device (cudaGetDeviceCount() == 0)");
  return false;
}

CudaDeviceConfig config_of(uint64_t budget) {
  CudaDeviceConfig c;
  c.budget_bytes = budget;
  c.matmul_scratch_bytes = 1 << 20;  // small, so batched matmul runs several tiles
  return c;
}

}  // namespace

TEST_CASE("cuda device ops agree with float64 references") {
  if (!have_gpu()) return;
  CudaDevice gpu(config_of(64 << 20));
  for (const OpCheck &c : check_device_ops(gpu)) {
    CAPTURE(c.op);
    CAPTURE(c.error);
    CHECK(c.passed());
    // Same block code as the CPU reference, compiled without FMA contraction: bit-exact rows.
    if (c.op.starts_with("get_rows")) CHECK(c.error == 0.0);
    // F32 weights go through an f32 GEMM, never an f16 one, whatever the batch.
    if (c.op.starts_with("matmul F32")) CHECK(c.error <= 1e-5);
  }
  CHECK(gpu.memory_stats().allocated_bytes == CudaDevice::fixed_reservation_bytes(config_of(64 << 20)));
}

TEST_CASE("cuda device: the budget is exact and a refusal leaves the device usable") {
  if (!have_gpu()) return;
  const CudaDeviceConfig config = config_of(16 << 20);
  CudaDevice gpu(config);
  const uint64_t room = config.budget_bytes - CudaDevice::fixed_reservation_bytes(config);
  void *a = gpu.allocate(room, "everything left");
  try {
    gpu.allocate(1, "one byte more");
    FAIL("expected budget_exceeded");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::budget_exceeded);
  }
  std::vector<float> host(1000, 1.5f), back(1000);
  gpu.upload(a, host.data(), 4000);
  gpu.download(back.data(), a, 4000);
  CHECK(back == host);
  CHECK(gpu.memory_stats().bytes_uploaded == 4000);
  CHECK(gpu.memory_stats().peak_bytes == config.budget_bytes);
  gpu.deallocate(a);
  CHECK_THROWS_AS(CudaDevice(config_of(1 << 20)), Error);  // cannot hold its own reservations
}

TEST_CASE("cuda fixed overhead is measured") {
  if (!have_gpu()) return;
  const cuda::FixedOverhead o = cuda::measure_fixed_overhead(0);
  CHECK(o.total_bytes > 0);
  CHECK(o.free_bytes <= o.total_bytes);
  CHECK(o.context_bytes > 0);
  MESSAGE("context " << o.context_bytes << " B, cuBLAS " << o.cublas_bytes << " B, free " << o.free_bytes << " B");
}

TEST_CASE("cuda device without a cuBLAS workspace still computes every op (GEMV only)") {
  if (!have_gpu()) return;
  CudaDeviceConfig config = config_of(64 << 20);
  config.cublas_workspace_bytes = 0;  // cuBLAS gets no memory at all: batched matmul must not call it
  CudaDevice gpu(config);
  for (const OpCheck &c : check_device_ops(gpu)) {
    CAPTURE(c.op);
    CAPTURE(c.error);
    CHECK(c.passed());
  }
}

TEST_CASE("a cuda runtime reserves the thread stacks of its kernels up front") {
  if (!have_gpu()) return;
  cuda::Runtime runtime(0);
  size_t stack = 0;
  REQUIRE(cudaDeviceGetLimit(&stack, cudaLimitStackSize) == cudaSuccess);
  CHECK(cuda::kernel_stack_bytes() <= 64);  // the build enforces it per architecture too
  CHECK(stack >= cuda::kernel_stack_bytes());
  MESSAGE("per-thread stack " << stack << " B, largest kernel frame " << cuda::kernel_stack_bytes() << " B");
}

namespace {

template <class T>
void *put(Device &d, const std::vector<T> &host) {
  void *p = d.allocate(host.size() * sizeof(T), "test input");
  d.upload(p, host.data(), host.size() * sizeof(T));
  return p;
}

std::vector<float> get(Device &d, const void *p, size_t n) {
  std::vector<float> host(n);
  d.download(host.data(), p, n * sizeof(float));
  return host;
}

// |a - b|_2 / |b|_2
double relative_rms(const std::vector<float> &a, const std::vector<float> &b) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
}

// The same op on the CPU device (the reference) and the GPU, on the same inputs.
struct CpuAndGpu {
  CpuDevice cpu{1};
  CudaDevice gpu{config_of(256 << 20)};
  Device &operator[](int i) { return i == 0 ? static_cast<Device &>(cpu) : gpu; }
};

Weight weight_on(Device &d, const std::vector<float> &values, int64_t ne0, int64_t ne1, const char *name) {
  return Weight{put(d, values), GgmlType::F32, ne0, ne1, &d, name};
}

}  // namespace

TEST_CASE("cuda NeoX and YaRN rope, per-head rms_norm in place, clamped SwiGLU and bias add match the CPU device") {
  if (!have_gpu()) return;
  CpuAndGpu devices;
  const int64_t n_tokens = 7, n_heads = 6, head_dim = 64, n = n_tokens * n_heads * head_dim;
  const std::vector<float> x = random_floats(n, 1), norm_w = random_floats(head_dim, 2);
  const std::vector<float> factors = random_floats(head_dim / 4, 3, 0.1f), bias = random_floats(n_heads * head_dim, 4);
  std::vector<float> results[2];
  for (int i = 0; i < 2; ++i) {
    Device &d = devices[i];
    auto *buf = static_cast<float *>(put(d, x));
    std::vector<float> f1(factors);
    for (float &f : f1) f = 1.0f + std::fabs(f);
    const Weight ff = weight_on(d, f1, head_dim / 4, 1, "rope_freqs");
    const Weight nw = weight_on(d, norm_w, head_dim, 1, "q_norm");
    const Weight b = weight_on(d, bias, n_heads * head_dim, 1, "bias");
    d.rms_norm(buf, nw, n_tokens * n_heads, 1e-6f, buf);  // per head, in place
    RopeParams neox{head_dim / 2, 1000000.0f, 1.0f, &ff, true};
    d.rope(buf, n_tokens, n_heads, head_dim, 300, neox);
    RopeParams yarn{head_dim, 150000.0f, 1.0f / 32, nullptr, true, 1.0f, 1.0f, 4.0f, 20.0f};
    d.rope(buf, n_tokens, n_heads, head_dim, 4000, yarn);
    d.add_bias(buf, b, n_tokens);
    auto *up = static_cast<float *>(put(d, random_floats(n, 5, 4.0f)));
    d.swiglu_clamped(buf, up, n, 1.702f, 7.0f, buf);
    results[i] = get(d, buf, n);
  }
  // float rounding of rope angles at position ~4000 (powf vs the CPU's repeated product)
  CHECK(relative_rms(results[1], results[0]) <= 1e-4);
}

TEST_CASE("cuda attention with windows, sinks, GQA and split keys matches the CPU device") {
  if (!have_gpu()) return;
  const int64_t n_head = 8, n_head_kv = 2, head_dim = 64, n_ctx = 1500;
  for (GgmlType kv_type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0}) {
    for (int64_t window : {int64_t{0}, int64_t{128}}) {
      for (bool with_sinks : {false, true}) {
        CAPTURE(type_name(kv_type));
        CAPTURE(window);
        CAPTURE(with_sinks);
        CpuAndGpu devices;
        const int64_t row = n_head_kv * head_dim;
        const std::vector<float> k = random_floats(n_ctx * row, 11, 2.0f), v = random_floats(n_ctx * row, 12);
        const std::vector<float> q = random_floats(40 * n_head * head_dim, 13, 2.0f), sinks = random_floats(n_head, 14);
        std::vector<float> first[2], prompt[2], decode[2];
        for (int i = 0; i < 2; ++i) {
          Device &d = devices[i];
          KvLayer kv{d.allocate(row_bytes(kv_type, row) * n_ctx, "k"), d.allocate(row_bytes(kv_type, row) * n_ctx, "v"),
                     kv_type, n_ctx, n_head_kv, head_dim, &d};
          const Weight s = weight_on(d, sinks, n_head, 1, "sinks");
          AttentionParams p{n_head, n_head_kv, head_dim, 0.125f, window, with_sinks ? &s : nullptr};
          const auto *kd = static_cast<const float *>(put(d, k)), *vd = static_cast<const float *>(put(d, v));
          const auto *qd = static_cast<const float *>(put(d, q));
          auto *out = static_cast<float *>(d.allocate(q.size() * sizeof(float), "out"));
          d.kv_store(kv, kd, vd, 0, n_ctx);
          d.attention(qd, kv, 0, 40, p, out);  // 40 keys at most: no split, the sink in the kernel
          first[i] = get(d, out, q.size());
          d.attention(qd, kv, 1000, 40, p, out);  // a prompt batch over ~1000 keys: a few splits
          prompt[i] = get(d, out, q.size());
          d.attention(qd, kv, n_ctx - 1, 1, p, out);  // one decode token over 1500 keys: split
          decode[i] = get(d, out, n_head * head_dim);
        }
        CHECK(relative_rms(first[1], first[0]) <= 1e-5);
        CHECK(relative_rms(prompt[1], prompt[0]) <= 1e-5);
        CHECK(relative_rms(decode[1], decode[0]) <= 1e-5);
      }
    }
  }
}

TEST_CASE("cuda gather_rows and scatter_rows_scaled match the CPU device, beyond one staging upload") {
  if (!have_gpu()) return;
  CpuAndGpu devices;
  const int64_t width = 12, n_src = 6000, n = CudaDevice::token_staging + 904;
  std::mt19937 rng(3);
  std::vector<int32_t> rows(n), perm(n_src);
  for (int32_t &r : rows) r = static_cast<int32_t>(rng() % n_src);
  for (int32_t i = 0; i < n_src; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  const std::vector<float> src = random_floats(n_src * width, 21), scales = random_floats(n_src, 22);
  std::vector<float> gathered[2], scattered[2];
  for (int i = 0; i < 2; ++i) {
    Device &d = devices[i];
    const auto *s = static_cast<const float *>(put(d, src));
    auto *g = static_cast<float *>(d.allocate(n * width * sizeof(float), "gathered"));
    d.gather_rows(s, width, rows.data(), n, g);
    gathered[i] = get(d, g, n * width);
    auto *dst = static_cast<float *>(put(d, std::vector<float>(n_src * width, 0.0f)));
    d.scatter_rows_scaled(s, width, perm.data(), scales.data(), n_src, dst);  // a permutation: no collisions
    scattered[i] = get(d, dst, n_src * width);
  }
  CHECK(gathered[1] == gathered[0]);
  CHECK(scattered[1] == scattered[0]);
}

TEST_CASE("cuda batched matmul: multi-tile, f16-overflowing activations, BF16 and F16 weights") {
  if (!have_gpu()) return;
  CpuAndGpu devices;  // 1 MiB matmul scratch: several groups and tiles
  const int64_t k = 1024, rows = 700, n_tokens = 100;
  std::vector<float> x = random_floats(k * n_tokens, 31);
  for (int64_t i = 0; i < k; ++i) x[3 * k + i] *= 1e6f;  // f16 overflows at 65504: scaled per row
  const std::vector<float> w_f32 = random_floats(k * rows, 32, 0.05f);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::BF16, GgmlType::F16}) {
    CAPTURE(type_name(type));
    std::vector<uint8_t> w(row_bytes(type, k) * rows);
    quant::quantize_row_ref(type, w_f32.data(), w.data(), k * rows);
    std::vector<float> y[2];
    for (int i = 0; i < 2; ++i) {
      Device &d = devices[i];
      const Weight weight{put(d, w), type, k, rows, &d, "w"};
      auto *out = static_cast<float *>(d.allocate(rows * n_tokens * sizeof(float), "y"));
      d.matmul(weight, static_cast<const float *>(put(d, x)), n_tokens, out);
      y[i] = get(d, out, rows * n_tokens);
    }
    for (float v : y[1]) REQUIRE(std::isfinite(v));
    CHECK(relative_rms(y[1], y[0]) <= 2e-3);  // f16 (or TF32) rounding of x (and weights)
  }
}

TEST_CASE("no device memory appears after construction: kernels and cuBLAS are loaded up front") {
  if (!have_gpu()) return;
  CudaDevice gpu(config_of(256 << 20));
  size_t free_before = 0, free_after = 0, total = 0;
  REQUIRE(cudaMemGetInfo(&free_before, &total) == cudaSuccess);
  for (const OpCheck &c : check_device_ops(gpu)) CHECK(c.passed());  // every kernel, every GEMM kind
  gpu.synchronize();
  REQUIRE(cudaMemGetInfo(&free_after, &total) == cudaSuccess);
  CHECK(free_after == free_before);
  MESSAGE("free before " << free_before << " B, after every op " << free_after << " B");
}

TEST_CASE("a failed CUDA launch is reported once, under its own op, and the device stays usable") {
  if (!have_gpu()) return;
  cuda::Runtime rt(0);
  // 2^31 blocks is past the grid's limit: the launch itself fails (never a sticky error).
  try {
    cuda::convert_f32_to_f16_scaled(rt, nullptr, int64_t{1} << 31, 16, nullptr, nullptr);
    FAIL("expected Error(device)");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::device);
    CHECK(std::string(e.what()).find("matmul (convert)") != std::string::npos);
  }
  CHECK(cudaPeekAtLastError() == cudaSuccess);  // cleared: the next op will not report it
  auto *p = static_cast<float *>(rt.malloc(64, "test"));
  cuda::add(rt, p, p, 16);
  CHECK_NOTHROW(rt.synchronize("after a recovered failure"));
  rt.free(p);
}
