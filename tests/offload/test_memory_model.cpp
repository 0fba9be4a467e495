// The memory model, checked against hand-computed bytes.
#include <doctest/doctest.h>

#include "offload/memory_model.hpp"
#include "shapes.hpp"

using namespace vramfit;

TEST_CASE("arena bytes round each reservation up to 256, as model::Arena does") {
  CHECK(offload::arena_bytes(0) == 256);
  CHECK(offload::arena_bytes(1) == 256);
  CHECK(offload::arena_bytes(256) == 256);
  CHECK(offload::arena_bytes(257) == 512);
}

TEST_CASE("KV row bytes: n_head_kv * head_dim elements of the KV type") {
  test::LlamaDims d;
  d.n_embd = 128, d.n_head = 8, d.n_head_kv = 2;  // head_dim 16, n_embd_kv 32
  const ModelShape m = test::llama_shape(d);
  CHECK(offload::kv_row_bytes(m, KvType::f32) == 32 * 4);
  CHECK(offload::kv_row_bytes(m, KvType::f16) == 32 * 2);
  CHECK(offload::kv_row_bytes(m, KvType::q8_0) == 34);  // one Q8_0 block
  d.n_head_kv = 1;                                      // n_embd_kv 16: not whole Q8_0 blocks
  CHECK_THROWS_WITH_AS(offload::kv_row_bytes(test::llama_shape(d), KvType::q8_0), doctest::Contains("multiple of 32"),
                       Error);
}

TEST_CASE("scratch and staging for one batch") {
  const ModelShape m = test::llama_shape({});  // n_embd 64, 4 heads of 16, n_ff 128, vocab 100
  // What model::Workspace allocates: 2*64 (x, xb) + 2*64 (q, attention out) + 2*64 (k, v)
  // + 2*128 (gate, up) = 640 floats per token (no attention scores: each backend's attention keeps
  // its own workspace), and with the output head 32 rows (at most) of 100 logits.
  CHECK(offload::scratch_bytes(m, 256, 32, false) == 32 * 640 * 4);
  CHECK(offload::scratch_bytes(m, 256, 32, true) == 32 * (640 + 100) * 4);
  CHECK(offload::scratch_bytes(m, 256, 512, true) == 512 * 640 * 4 + 32 * 100 * 4);  // logits: 32 rows
  CHECK(offload::staging_bytes(m, 32) == 32 * (64 + 2 * 64) * 4);  // q, k, v
}
