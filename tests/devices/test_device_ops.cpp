// Every op of the CPU device and of the simulated device (over the CPU) against float64.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "model/device_check.hpp"
#include "model/device_cpu.hpp"
#include "model/device_sim.hpp"
#include "vramfit/error.hpp"

using namespace vramfit::model;

namespace {

void require_all_pass(const std::vector<OpCheck> &checks) {
  CHECK(checks.size() >= 30);
  for (const OpCheck &c : checks) {
    CAPTURE(c.op);
    CAPTURE(c.error);
    CHECK(c.passed());
  }
}

}  // namespace

TEST_CASE("cpu device ops agree with float64 references") {
  CpuDevice cpu(2);
  require_all_pass(check_device_ops(cpu));
  // The harness frees what it allocates; the CPU keeps only its attention workspace.
  const uint64_t kept = cpu.memory_stats().allocated_bytes;
  check_device_ops(cpu, 2);
  CHECK(cpu.memory_stats().allocated_bytes == kept);
}

TEST_CASE("sim device over the cpu: same results as the cpu, every byte through its arena") {
  CpuDevice cpu(2);
  SimDevice sim(cpu, 4 << 20);
  const std::vector<OpCheck> on_sim = check_device_ops(sim, 7);
  const std::vector<OpCheck> on_cpu = check_device_ops(cpu, 7);
  require_all_pass(on_sim);
  REQUIRE(on_sim.size() == on_cpu.size());
  for (size_t i = 0; i < on_sim.size(); ++i) {
    CAPTURE(on_sim[i].op);
    CHECK(on_sim[i].error == on_cpu[i].error);  // same kernels, same inputs: bit-identical
  }
  const DeviceMemoryStats stats = sim.memory_stats();
  CHECK(stats.allocated_bytes == 0);
  CHECK(stats.peak_bytes > 0);
  CHECK(stats.peak_bytes <= stats.budget_bytes);
  CHECK(stats.bytes_uploaded > 0);
  CHECK(stats.bytes_downloaded > 0);
}

TEST_CASE("sim device: a budget too small for the checks fails with budget_exceeded, and recovers") {
  CpuDevice cpu(1);
  SimDevice sim(cpu, 64 << 10);
  try {
    check_device_ops(sim);
    FAIL("expected budget_exceeded");
  } catch (const vramfit::Error &e) {
    CHECK(e.code() == vramfit::ErrorCode::budget_exceeded);
  }
  CHECK(sim.memory_stats().allocated_bytes == 0);  // unwinding returned every byte
}

namespace {

struct AttentionShape {
  int64_t n_head, n_head_kv, head_dim, n_ctx, pos0;
};
constexpr int64_t kPromptTokens = 30;

// Random keys and values of the pos0 + kPromptTokens positions, the prompt's queries and the
// heads' sink logits for one shape.
struct AttentionInputs {
  int64_t row, n_keys, q_row;
  std::vector<float> k, v, q, sink_logits;
  AttentionInputs(const AttentionShape &s, uint32_t seed)
      : row(s.n_head_kv * s.head_dim), n_keys(s.pos0 + kPromptTokens), q_row(s.n_head * s.head_dim) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    auto random = [&](int64_t n) {
      std::vector<float> x(static_cast<size_t>(n));
      for (float &f : x) f = normal(rng);
      return x;
    };
    k = random(n_keys * row);
    v = random(n_keys * row);
    q = random(kPromptTokens * q_row);
    sink_logits = random(s.n_head);
  }
};

}  // namespace

TEST_CASE("cpu attention: a prompt over the cache laid out by head gives each token's one-at-a-time bits") {
  // A prompt of 30 tokens lays the cache out by head (keys in blocks); one token reads the cache
  // where it lies, its query heads sharing each KV head's rows (in chunks of 128 rows, converted
  // from f16 / q8_0). F32, F16 and Q8_0 caches. Shapes: head size 72 (past the value sum's
  // 64-dimension blocks; not whole q8_0 blocks, so per-key attention) and 37 keys (not whole key
  // blocks); 16 query heads per KV head (two tasks of 8) over 290 keys (three chunks).
  const int64_t n_tokens = kPromptTokens;
  for (const AttentionShape shape : {AttentionShape{16, 4, 72, 40, 7}, AttentionShape{32, 2, 64, 300, 260}}) {
    const auto [n_head, n_head_kv, head_dim, n_ctx, pos0] = shape;
    const AttentionInputs in(shape, 11);
    const auto &[row, n_keys, q_row, k, v, q, sink_logits] = in;
    CpuDevice cpu(2);
    const Weight sinks{sink_logits.data(), vramfit::GgmlType::F32, n_head, 1, &cpu, "sinks"};
    for (vramfit::GgmlType kv_type : {vramfit::GgmlType::F32, vramfit::GgmlType::F16, vramfit::GgmlType::Q8_0}) {
      std::vector<std::byte> k_cache(vramfit::row_bytes(kv_type, row) * n_ctx), v_cache(k_cache.size());
      KvLayer kv{k_cache.data(), v_cache.data(), kv_type, n_ctx, n_head_kv, head_dim, &cpu};
      cpu.kv_store(kv, k.data(), v.data(), 0, n_keys);
      for (int64_t window : {0, 11, 200}) {
        const AttentionParams params{n_head, n_head_kv, head_dim, 0.1f, window, window > 0 ? &sinks : nullptr};
        std::vector<float> prompt(q.size()), one(q_row);
        cpu.attention(q.data(), kv, pos0, n_tokens, params, prompt.data());
        for (int64_t t = 0; t < n_tokens; ++t) {
          CAPTURE(head_dim);
          CAPTURE(vramfit::type_name(kv_type));
          CAPTURE(window);
          CAPTURE(t);
          cpu.attention(q.data() + t * q_row, kv, pos0 + t, 1, params, one.data());
          CHECK(std::memcmp(one.data(), prompt.data() + t * q_row, one.size() * sizeof(float)) == 0);
        }
      }
    }
  }
}

TEST_CASE("cpu attention: a cache laid out by head gives the row-major cache's bits, prompt and decode") {
  // The same keys and values stored in both layouts: kv_store must put head h's row r at
  // (h * n_ctx + r) * head row bytes, and attention (a prompt of 30 tokens, laid out; each token
  // alone, read in place in chunks of 128 rows; or head size 288, past the shared reader's 256,
  // per key) must give the same bits from either. Head size 72 is not whole q8_0 blocks: a q8_0
  // cache cannot be laid out by head then.
  const int64_t n_tokens = kPromptTokens;
  for (const AttentionShape shape :
       {AttentionShape{16, 4, 72, 40, 7}, AttentionShape{32, 2, 64, 300, 260}, AttentionShape{4, 2, 288, 40, 7}}) {
    const auto [n_head, n_head_kv, head_dim, n_ctx, pos0] = shape;
    const AttentionInputs in(shape, 5);
    const auto &[row, n_keys, q_row, k, v, q, sink_logits] = in;
    CpuDevice cpu(2);
    const Weight sinks{sink_logits.data(), vramfit::GgmlType::F32, n_head, 1, &cpu, "sinks"};
    for (vramfit::GgmlType kv_type : {vramfit::GgmlType::F32, vramfit::GgmlType::F16, vramfit::GgmlType::Q8_0}) {
      if (!heads_are_whole_blocks(kv_type, head_dim)) continue;
      CAPTURE(head_dim);
      CAPTURE(vramfit::type_name(kv_type));
      const uint64_t row_bytes = vramfit::row_bytes(kv_type, row), head_bytes = vramfit::row_bytes(kv_type, head_dim);
      std::vector<std::byte> k_rows(row_bytes * n_ctx), v_rows(k_rows.size()), k_heads(k_rows.size()),
          v_heads(k_rows.size());
      KvLayer rows{k_rows.data(), v_rows.data(), kv_type, n_ctx, n_head_kv, head_dim, &cpu};
      KvLayer heads{k_heads.data(), v_heads.data(), kv_type, n_ctx, n_head_kv, head_dim, &cpu, true};
      cpu.kv_store(rows, k.data(), v.data(), 0, n_keys);
      cpu.kv_store(heads, k.data(), v.data(), 0, n_keys);
      for (int64_t h = 0; h < n_head_kv; ++h)
        for (int64_t r = 0; r < n_keys; ++r) {
          const uint64_t in_rows = r * row_bytes + h * head_bytes, in_heads = (h * n_ctx + r) * head_bytes;
          REQUIRE(std::memcmp(k_rows.data() + in_rows, k_heads.data() + in_heads, head_bytes) == 0);
          REQUIRE(std::memcmp(v_rows.data() + in_rows, v_heads.data() + in_heads, head_bytes) == 0);
        }
      for (int64_t window : {0, 11, 200}) {
        CAPTURE(window);
        const AttentionParams params{n_head, n_head_kv, head_dim, 0.1f, window, window > 0 ? &sinks : nullptr};
        std::vector<float> from_rows(q.size()), from_heads(q.size());
        cpu.attention(q.data(), rows, pos0, n_tokens, params, from_rows.data());
        cpu.attention(q.data(), heads, pos0, n_tokens, params, from_heads.data());
        CHECK(std::memcmp(from_rows.data(), from_heads.data(), q.size() * sizeof(float)) == 0);
        for (int64_t t = 0; t < n_tokens; ++t) {
          CAPTURE(t);
          cpu.attention(q.data() + t * q_row, rows, pos0 + t, 1, params, from_rows.data());
          cpu.attention(q.data() + t * q_row, heads, pos0 + t, 1, params, from_heads.data());
          CHECK(std::memcmp(from_rows.data(), from_heads.data(), static_cast<size_t>(q_row) * sizeof(float)) == 0);
        }
      }
    }
  }
}
