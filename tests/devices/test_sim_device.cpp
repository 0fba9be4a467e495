#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "model/device_sim.hpp"
#include "test_util.hpp"
#include "vramfit/error.hpp"

using namespace vramfit;
using namespace vramfit::model;
using vramfit::test::error_code_of;

namespace {

// A compute device that records what it was asked to do, so delegation is checked exactly.
class RecordingDevice final : public Device {
 public:
  std::vector<std::string> calls;
  const Device *last_weight_device = nullptr;
  const Device *last_kv_device = nullptr;
  const void *last_data = nullptr;
  const Weight *last_freq_factors = nullptr;
  const void *last_freq_factors_data = nullptr;

  DeviceKind kind() const noexcept override { return DeviceKind::cpu; }
  std::string name() const override { return "recording"; }
  bool host_addressable() const noexcept override { return true; }
  void *allocate(uint64_t, std::string_view) override { throw Error(ErrorCode::internal, "not used"); }
  void deallocate(void *) noexcept override {}
  void upload(void *, const void *, uint64_t) override { calls.emplace_back("upload"); }
  void download(void *, const void *, uint64_t) override { calls.emplace_back("download"); }
  DeviceMemoryStats memory_stats() const override { return {}; }

  void get_rows(const Weight &table, const int32_t *tokens, int64_t n, float *out) override {
    record("get_rows", table);
    out[0] = static_cast<float>(tokens[0] + n);
  }
  void matmul(const Weight &w, const float *x, int64_t n, float *y) override {
    record("matmul", w);
    y[0] = x[0] * static_cast<float>(n);
  }
  void rms_norm(const float *x, const Weight &w, int64_t, float eps, float *y) override {
    record("rms_norm", w);
    y[0] = x[0] + eps;
  }
  void rope(float *x, int64_t, int64_t, int64_t, int64_t pos0, const RopeParams &p) override {
    calls.emplace_back("rope");
    last_freq_factors = p.freq_factors;
    last_freq_factors_data = p.freq_factors ? p.freq_factors->data : nullptr;
    if (p.freq_factors) last_weight_device = p.freq_factors->device;
    x[0] = static_cast<float>(pos0) * p.freq_base;
  }
  void kv_store(KvLayer &kv, const float *k, const float *, int64_t, int64_t) override {
    calls.emplace_back("kv_store");
    last_kv_device = kv.device;
    static_cast<float *>(kv.k)[0] = k[0];
  }
  void attention(const float *q, const KvLayer &kv, int64_t, int64_t, const AttentionParams &,
                 float *out) override {
    calls.emplace_back("attention");
    last_kv_device = kv.device;
    out[0] = q[0] + static_cast<const float *>(kv.k)[0];
  }
  void swiglu(const float *g, const float *u, int64_t, float *out) override {
    calls.emplace_back("swiglu");
    out[0] = g[0] * u[0];
  }
  void add(float *y, const float *x, int64_t) override {
    calls.emplace_back("add");
    y[0] += x[0];
  }
  void swiglu_clamped(const float *g, const float *u, int64_t, float alpha, float, float *out) override {
    calls.emplace_back("swiglu_clamped");
    out[0] = g[0] * u[0] * alpha;
  }
  void add_bias(float *y, const Weight &b, int64_t) override {
    record("add_bias", b);
    y[0] += 1.0f;
  }
  void gather_rows(const float *src, int64_t width, const int32_t *rows, int64_t, float *dst) override {
    calls.emplace_back("gather_rows");
    dst[0] = src[rows[0] * width];
  }
  void scatter_rows_scaled(const float *src, int64_t width, const int32_t *rows, const float *scales, int64_t,
                           float *dst) override {
    calls.emplace_back("scatter_rows_scaled");
    dst[rows[0] * width] = src[0] * scales[0];
  }
  void synchronize() override { calls.emplace_back("synchronize"); }

 private:
  void record(const char *op, const Weight &w) {
    calls.emplace_back(op);
    last_weight_device = w.device;
    last_data = w.data;
  }
};

}  // namespace

TEST_CASE("sim device: allocation past capacity throws budget_exceeded and leaves the device usable") {
  RecordingDevice cpu;
  SimDevice sim(cpu, 64 * 1024);
  CHECK(sim.kind() == DeviceKind::sim);
  CHECK(sim.host_addressable());
  void *a = sim.allocate(40 * 1024, "blk.0.ffn_up.weight");
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % SimDevice::default_alignment == 0);
  CHECK(error_code_of([&] { sim.allocate(30 * 1024, "blk.1.ffn_up.weight"); }) == ErrorCode::budget_exceeded);
  CHECK(sim.memory_stats().allocated_bytes == 40 * 1024);
  void *b = sim.allocate(24 * 1024, "kv_cache");  // exactly the rest
  std::memset(b, 0x5a, 24 * 1024);                 // the memory is real and writable
  CHECK(sim.memory_stats().allocated_bytes == 64 * 1024);
  sim.deallocate(a);
  void *c = sim.allocate(30 * 1024, "blk.1.ffn_up.weight");  // fits now
  CHECK(c != nullptr);
  sim.deallocate(b);
  sim.deallocate(c);
  sim.deallocate(nullptr);
  CHECK(sim.memory_stats().allocated_bytes == 0);
}

TEST_CASE("sim device: budget and peak accounting") {
  RecordingDevice cpu;
  SimDevice sim(cpu, 1 << 20, 256);
  DeviceMemoryStats s = sim.memory_stats();
  CHECK(s.budget_bytes == (1 << 20));
  CHECK(s.allocated_bytes == 0);
  void *a = sim.allocate(1000, "a");  // 1024 with alignment
  void *b = sim.allocate(5000, "b");  // 5120
  CHECK(sim.memory_stats().peak_bytes == 6144);
  sim.deallocate(a);
  void *c = sim.allocate(100, "c");  // 256
  s = sim.memory_stats();
  CHECK(s.allocated_bytes == 5120 + 256);
  CHECK(s.peak_bytes == 6144);
  sim.deallocate(b);
  sim.deallocate(c);
  int not_ours = 0;
  sim.deallocate(&not_ours);  // ignored (logged), changes nothing
  CHECK(sim.memory_stats().allocated_bytes == 0);
}

TEST_CASE("sim device: uploads and downloads copy and are counted; foreign pointers are refused") {
  RecordingDevice cpu;
  SimDevice sim(cpu, 4096);
  std::vector<float> host(100), back(100);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) * 0.5f;
  auto *dev = static_cast<float *>(sim.allocate(400, "x"));
  sim.upload(dev, host.data(), 400);
  sim.download(back.data(), dev, 400);
  CHECK(back == host);
  sim.download(back.data(), dev + 10, 8);
  DeviceMemoryStats s = sim.memory_stats();
  CHECK(s.bytes_uploaded == 400);
  CHECK(s.bytes_downloaded == 408);
  CHECK(s.n_copies == 3);
  CHECK(error_code_of([&] { sim.upload(host.data(), back.data(), 4); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { sim.download(back.data(), dev, 8192); }) == ErrorCode::invalid_argument);
  CHECK(sim.memory_stats().n_copies == 3);
  CHECK(cpu.calls.empty());  // copies are the sim's own memcpy, never the compute device's
  sim.deallocate(dev);
}

TEST_CASE("sim device: every op is delegated to the compute device, which sees the data as its own") {
  RecordingDevice cpu;
  SimDevice sim(cpu, 1 << 16);
  auto *buf = static_cast<float *>(sim.allocate(4096, "scratch"));
  float x = 3.0f, y = 0.0f;
  Weight w{buf, GgmlType::F32, 1, 1, &sim, "w"};

  sim.matmul(w, &x, 2, &y);
  CHECK(y == 6.0f);
  CHECK(cpu.last_weight_device == &cpu);
  CHECK(cpu.last_data == buf);

  int32_t token = 5;
  sim.get_rows(w, &token, 1, &y);
  CHECK(y == 6.0f);
  sim.rms_norm(&x, w, 1, 0.5f, &y);
  CHECK(y == 3.5f);

  RopeParams rope;
  rope.freq_base = 2.0f;
  Weight factors{buf + 16, GgmlType::F32, 1, 1, &sim, "rope_freqs"};
  rope.freq_factors = &factors;
  sim.rope(&y, 1, 1, 2, 7, rope);
  CHECK(y == 14.0f);
  CHECK(cpu.last_freq_factors_data == buf + 16);
  CHECK(cpu.last_weight_device == &cpu);
  CHECK(factors.device == &sim);  // the caller's weight is untouched

  KvLayer kv{buf + 32, buf + 64, GgmlType::F32, 4, 1, 1, &sim};
  float k = 1.5f, v = 0.0f;
  sim.kv_store(kv, &k, &v, 0, 1);
  CHECK(buf[32] == 1.5f);
  CHECK(cpu.last_kv_device == &cpu);
  CHECK(kv.device == &sim);
  sim.attention(&x, kv, 0, 1, AttentionParams{1, 1, 1, 1.0f}, &y);
  CHECK(y == 4.5f);

  float g = 2.0f, u = 4.0f;
  sim.swiglu(&g, &u, 1, &y);
  CHECK(y == 8.0f);
  sim.add(&y, &x, 1);
  CHECK(y == 11.0f);
  sim.synchronize();
  CHECK(cpu.calls == std::vector<std::string>{"matmul", "get_rows", "rms_norm", "rope", "kv_store",
                                              "attention", "swiglu", "add", "synchronize"});
  sim.deallocate(buf);
}

TEST_CASE("sim device with zero capacity refuses every allocation") {
  RecordingDevice cpu;
  SimDevice sim(cpu, 0);
  CHECK(error_code_of([&] { sim.allocate(1, "x"); }) == ErrorCode::budget_exceeded);
  CHECK(sim.memory_stats().budget_bytes == 0);
}
