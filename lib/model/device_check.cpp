#include "model/device_check.hpp"

#include <cmath>
#include <random>

#include "common/error.hpp"
#include "quant/quant.hpp"

namespace vramfit::model {
namespace {

// Tolerances are the arithmetic a backend may legitimately use, as llama.cpp's do: activations
// rounded to f16 before a product (relative step 2^-11: measured 1.5e-4..2.1e-4 RMS on the CPU's
// F16 dot products) or to 8 bits for quantized weights (Q8_K / Q8_0: measured 5e-3..9e-3 RMS);
// everything else, attention included (its reference reads the cache as stored), is plain f32
// arithmetic (measured <= 4e-7). F32 weights must be f32-exact for small batches; a batch of 40
// may go through an f16 GEMM (cuBLAS).
constexpr double kF32Math = 1e-5;
constexpr double kF16Activations = 2e-3;
constexpr double kQ8Activations = 2e-2;
constexpr int64_t kSmallBatch = 8;

std::vector<float> random_floats(size_t n, std::mt19937 &rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v) x = dist(rng);
  return v;
}

double relative_rms(const std::vector<float> &y, const std::vector<double> &ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    diff += (y[i] - ref[i]) * (y[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// Device memory holding a copy of host data; freed with the scope.
class DeviceBuffer {
 public:
  DeviceBuffer(Device &device, uint64_t bytes, const char *purpose)
      : device_(device), ptr_(device.allocate(bytes, purpose)), bytes_(bytes) {}
  DeviceBuffer(Device &device, const void *host, uint64_t bytes, const char *purpose)
      : DeviceBuffer(device, bytes, purpose) {
    device_.upload(ptr_, host, bytes);
  }
  template <class T>
  DeviceBuffer(Device &device, const std::vector<T> &host, const char *purpose)
      : DeviceBuffer(device, host.data(), host.size() * sizeof(T), purpose) {}
  ~DeviceBuffer() { device_.deallocate(ptr_); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  template <class T = float>
  T *as() const noexcept {
    return static_cast<T *>(ptr_);
  }
  std::vector<float> download_floats() const {
    std::vector<float> host(bytes_ / sizeof(float));
    device_.download(host.data(), ptr_, bytes_);
    return host;
  }

 private:
  Device &device_;
  void *ptr_;
  uint64_t bytes_;
};

struct EncodedMatrix {
  std::vector<uint8_t> bytes;       // as stored in a GGUF file
  std::vector<float> dequantized;   // what those bytes mean
};

EncodedMatrix encode(GgmlType type, const std::vector<float> &values, int64_t ne0) {
  const int64_t rows = static_cast<int64_t>(values.size()) / ne0;
  EncodedMatrix m{std::vector<uint8_t>(row_bytes(type, ne0) * rows), std::vector<float>(values.size())};
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t *row = m.bytes.data() + r * row_bytes(type, ne0);
    quant::quantize_row_ref(type, values.data() + r * ne0, row, ne0);
    quant::dequantize_row_ref(type, row, m.dequantized.data() + r * ne0, ne0);
  }
  return m;
}

class Checker {
 public:
  Checker(Device &device, uint32_t seed) : device_(device), rng_(seed) {}

  void matmul(GgmlType type, int64_t n_tokens) {
    const int64_t ne0 = 512, ne1 = 96;
    const EncodedMatrix w = encode(type, random_floats(ne0 * ne1, rng_, 0.05f), ne0);
    const std::vector<float> x = random_floats(ne0 * n_tokens, rng_);
    DeviceBuffer w_dev(device_, w.bytes, "check: weight"), x_dev(device_, x, "check: x");
    DeviceBuffer y_dev(device_, sizeof(float) * ne1 * n_tokens, "check: y");
    device_.matmul(Weight{w_dev.as<void>(), type, ne0, ne1, &device_, "check.weight"}, x_dev.as(), n_tokens,
                   y_dev.as());
    std::vector<double> ref(ne1 * n_tokens);
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t r = 0; r < ne1; ++r) {
        double sum = 0;
        for (int64_t k = 0; k < ne0; ++k) sum += static_cast<double>(w.dequantized[r * ne0 + k]) * x[t * ne0 + k];
        ref[t * ne1 + r] = sum;
      }
    const bool plain = type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
    const double tolerance = type == GgmlType::F32 && n_tokens <= kSmallBatch ? kF32Math
                             : plain                                          ? kF16Activations
                                                                              : kQ8Activations;
    record(fmt::format("matmul {} n_tokens={}", type_name(type), n_tokens), y_dev.download_floats(), ref, tolerance);
  }

  void get_rows(GgmlType type) {
    const int64_t ne0 = 256, n_rows = 40;
    const EncodedMatrix table = encode(type, random_floats(ne0 * n_rows, rng_), ne0);
    const std::vector<int32_t> tokens = {3, 0, 39, 3, 17};
    const auto n = static_cast<int64_t>(tokens.size());
    DeviceBuffer table_dev(device_, table.bytes, "check: table"), out(device_, sizeof(float) * ne0 * n, "check: rows");
    device_.get_rows(Weight{table_dev.as<void>(), type, ne0, n_rows, &device_, "check.table"}, tokens.data(), n,
                     out.as());
    std::vector<double> ref;
    for (int32_t token : tokens)
      for (int64_t k = 0; k < ne0; ++k) ref.push_back(table.dequantized[token * ne0 + k]);
    record(fmt::format("get_rows {}", type_name(type)), out.download_floats(), ref, kF32Math);
  }

  void rms_norm() {
    const int64_t n = 320, n_tokens = 3;
    const float eps = 1e-5f;
    const std::vector<float> x = random_floats(n * n_tokens, rng_, 3.0f), w = random_floats(n, rng_);
    DeviceBuffer x_dev(device_, x, "check: x"), w_dev(device_, w, "check: norm"), y(device_, x.size() * 4, "check: y");
    device_.rms_norm(x_dev.as(), Weight{w_dev.as<void>(), GgmlType::F32, n, 1, &device_, "check.norm"}, n_tokens, eps,
                     y.as());
    std::vector<double> ref(x.size());
    for (int64_t t = 0; t < n_tokens; ++t) {
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[t * n + i]) * x[t * n + i];
      const double inv = 1.0 / std::sqrt(sum / n + eps);
      for (int64_t i = 0; i < n; ++i) ref[t * n + i] = x[t * n + i] * inv * w[i];
    }
    record("rms_norm", y.download_floats(), ref, kF32Math);
  }

  void rope(bool with_factors) {
    const int64_t n_tokens = 3, n_heads = 4, head_dim = 64, n_rot = 64, pos0 = 37;
    const float freq_base = 10000.0f, freq_scale = with_factors ? 0.5f : 1.0f;
    const std::vector<float> x = random_floats(n_tokens * n_heads * head_dim, rng_);
    std::vector<float> factors(n_rot / 2);
    for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + 0.25f * static_cast<float>(i % 5);
    DeviceBuffer x_dev(device_, x, "check: x"), f_dev(device_, factors, "check: rope_freqs");
    const Weight f_weight{f_dev.as<void>(), GgmlType::F32, n_rot / 2, 1, &device_, "check.rope_freqs"};
    RopeParams params{n_rot, freq_base, freq_scale, with_factors ? &f_weight : nullptr};
    device_.rope(x_dev.as(), n_tokens, n_heads, head_dim, pos0, params);
    std::vector<double> ref(x.begin(), x.end());
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t h = 0; h < n_heads; ++h)
        for (int64_t i = 0; i < n_rot / 2; ++i) {
          const double factor = with_factors ? factors[i] : 1.0;
          const double theta = freq_scale * (pos0 + t) * std::pow(double{freq_base}, -2.0 * i / n_rot) / factor;
          const size_t at = static_cast<size_t>((t * n_heads + h) * head_dim + 2 * i);
          ref[at] = x[at] * std::cos(theta) - x[at + 1] * std::sin(theta);
          ref[at + 1] = x[at] * std::sin(theta) + x[at + 1] * std::cos(theta);
        }
    record(with_factors ? "rope freq_factors+scale" : "rope", x_dev.download_floats(), ref, kF32Math);
  }

  // kv_store of two batches, then attention of the second batch (causal over both): GQA 4/2 heads.
  void attention(GgmlType kv_type) {
    const int64_t n_head = 4, n_head_kv = 2, head_dim = 64, n_ctx = 32, row = n_head_kv * head_dim;
    const int64_t pos0 = 5, n_tokens = 3, n_keys = pos0 + n_tokens;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const std::vector<float> k = random_floats(n_keys * row, rng_), v = random_floats(n_keys * row, rng_);
    const std::vector<float> q = random_floats(n_tokens * n_head * head_dim, rng_, 2.0f);
    const uint64_t cache_bytes = row_bytes(kv_type, row) * n_ctx;
    DeviceBuffer k_cache(device_, cache_bytes, "check: k cache"), v_cache(device_, cache_bytes, "check: v cache");
    DeviceBuffer k_dev(device_, k, "check: k"), v_dev(device_, v, "check: v"), q_dev(device_, q, "check: q");
    DeviceBuffer out(device_, q.size() * sizeof(float), "check: out");
    KvLayer kv{k_cache.as<void>(), v_cache.as<void>(), kv_type, n_ctx, n_head_kv, head_dim, &device_};
    device_.kv_store(kv, k_dev.as(), v_dev.as(), 0, pos0);
    device_.kv_store(kv, k_dev.as() + pos0 * row, v_dev.as() + pos0 * row, pos0, n_tokens);
    device_.attention(q_dev.as(), kv, pos0, n_tokens, AttentionParams{n_head, n_head_kv, head_dim, scale}, out.as());
    // The reference attends over what the cache type can hold.
    const std::vector<float> k_held = encode(kv_type, k, row).dequantized, v_held = encode(kv_type, v, row).dequantized;
    std::vector<double> ref(q.size());
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t kv_at = (h / (n_head / n_head_kv)) * head_dim;
        const float *qh = q.data() + (t * n_head + h) * head_dim;
        std::vector<double> p(pos0 + t + 1);
        double max = -INFINITY, sum = 0;
        for (size_t j = 0; j < p.size(); ++j) {
          double s = 0;
          for (int64_t d = 0; d < head_dim; ++d) s += static_cast<double>(qh[d]) * k_held[j * row + kv_at + d];
          max = std::max(max, p[j] = s * scale);
        }
        for (double &pj : p) sum += (pj = std::exp(pj - max));
        for (int64_t d = 0; d < head_dim; ++d) {
          double o = 0;
          for (size_t j = 0; j < p.size(); ++j) o += p[j] / sum * v_held[j * row + kv_at + d];
          ref[(t * n_head + h) * head_dim + d] = o;
        }
      }
    record(fmt::format("kv_store+attention {}", type_name(kv_type)), out.download_floats(), ref, kF32Math);
  }

  void swiglu_and_add() {
    const int64_t n = 1000;
    const std::vector<float> g = random_floats(n, rng_, 3.0f), u = random_floats(n, rng_), x = random_floats(n, rng_);
    DeviceBuffer g_dev(device_, g, "check: gate"), u_dev(device_, u, "check: up"), x_dev(device_, x, "check: x");
    DeviceBuffer y(device_, n * sizeof(float), "check: y");
    device_.swiglu(g_dev.as(), u_dev.as(), n, y.as());
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) ref[i] = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    record("swiglu", y.download_floats(), ref, kF32Math);
    device_.add(y.as(), x_dev.as(), n);
    for (int64_t i = 0; i < n; ++i) ref[i] += x[i];
    record("add", y.download_floats(), ref, kF32Math);
  }

  std::vector<OpCheck> results;

 private:
  void record(std::string op, const std::vector<float> &y, const std::vector<double> &ref, double tolerance) {
    results.push_back(OpCheck{std::move(op), relative_rms(y, ref), tolerance});
  }

  Device &device_;
  std::mt19937 rng_;
};

}  // namespace

std::vector<OpCheck> check_device_ops(Device &device, uint32_t seed) {
  Checker check(device, seed);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                        GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    for (int64_t n_tokens : {1, 4, 40}) check.matmul(type, n_tokens);
  check.get_rows(GgmlType::F32);
  check.get_rows(GgmlType::Q4_K);
  check.rms_norm();
  check.rope(false);
  check.rope(true);
  for (GgmlType kv_type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0}) check.attention(kv_type);
  check.swiglu_and_add();
  device.synchronize();
  return std::move(check.results);
}

}  // namespace vramfit::model
