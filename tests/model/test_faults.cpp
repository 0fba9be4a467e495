// Injected failures (lib/common/fault.hpp): every host allocation, device (arena) reservation,
// file open and memory map along a load + prompt + generate run (and a plan), and every file
// write of a quantize, made to fail one at a time. Each must surface as a vramfit::Error with the
// right code and a message, leave the models and contexts made before it working (their output
// unchanged), and leak nothing (this test runs in the ASan/LSan build too); a failed quantize
// leaves the destination as it was: absent, or the complete earlier file, never a truncated one.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/fault.hpp"
#include "model/model_test_util.hpp"
#include "test_data.hpp"
#include "vramfit/generate.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"
#include "vramfit/quantize.hpp"
#include "vramfit/sampler.hpp"

using namespace vramfit;
using detail::Fault;

namespace {

// Disarms whatever happens in the test.
struct Armed {
  Armed(Fault kind, uint64_t n) { detail::arm_faults(kind, n); }
  ~Armed() { detail::disarm_faults(); }
};

std::vector<int32_t> greedy(Context &ctx, int n) {
  Sampler sampler({.temperature = 0});
  GenerateParams params;
  params.max_tokens = n;
  ctx.clear();
  return generate(ctx, sampler, test::kPrompt, params).tokens;
}

ModelParams split_params() {
  ModelParams p;
  p.device = "sim:64MiB";
  p.n_ctx = 64;
  p.n_batch = 16;
  p.offload.strategy = OffloadStrategy::manual;
  p.offload.n_gpu_layers = 3;  // 3 of 5 layers on the simulated device: uploads, KV, staging there
  return p;
}

// The run every failure is injected into: plan from a header, load a model split with a simulated
// device, a context on it and one on an already-loaded CPU model, a prompt and a few tokens each.
void run(const std::filesystem::path &model_path, const std::filesystem::path &header_path, const Model &shared) {
  PlanRequest request;
  request.policy.vram_budget_bytes = 12ull << 30;
  (void)make_plan(gguf::File::open(header_path), request);
  const Model split = Model::load(model_path, split_params());
  Context split_ctx(split, {.n_ctx = 64, .n_batch = 16, .n_threads = 1});
  (void)greedy(split_ctx, 4);
  Context cpu_ctx(shared, {.n_ctx = 64, .n_batch = 16, .n_threads = 1});
  (void)greedy(cpu_ctx, 4);
}

ErrorCode expected_code(Fault kind) {
  switch (kind) {
    case Fault::host_alloc: return ErrorCode::out_of_memory;
    case Fault::device_alloc: return ErrorCode::budget_exceeded;  // the arena's "no room"
    default: return ErrorCode::io;
  }
}

std::string file_bytes(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Files in `dir` other than `keep` (a failed write must leave no temporary file behind).
std::vector<std::string> others_in(const std::filesystem::path &dir, const std::filesystem::path &keep) {
  std::vector<std::string> out;
  for (const auto &entry : std::filesystem::directory_iterator(dir))
    if (entry.path() != keep) out.push_back(entry.path().filename().string());
  return out;
}

}  // namespace

TEST_CASE("every allocation, open and map of a load + prompt + generate + plan can fail cleanly") {
  const auto model_path = test::test_data("models/stories260K.gguf");
  const auto header_path = test::test_data("models/header-only/llama2-70b-Q4_K_M.gguf");
  if (!model_path || !header_path) return;

  // Made before any failure, and checked after each: they must keep working, unchanged.
  const Model shared = Model::load(*model_path, test::cpu_only());
  Context bystander(shared, {.n_ctx = 64, .n_batch = 16, .n_threads = 1});
  const Model split_bystander = Model::load(*model_path, split_params());
  Context split_ctx(split_bystander, {.n_ctx = 64, .n_batch = 16, .n_threads = 1});
  const std::vector<int32_t> expected = greedy(bystander, 6);
  REQUIRE(greedy(split_ctx, 6) == expected);

  uint64_t total_points = 0;
  for (Fault kind : {Fault::host_alloc, Fault::device_alloc, Fault::file_open, Fault::file_map}) {
    uint64_t points = 0;
    {
      Armed counting(kind, 0);
      run(*model_path, *header_path, shared);
      points = detail::faults_seen(kind);
    }
    CAPTURE(std::string(detail::to_string(kind)));
    CHECK(points > 0);
    for (uint64_t n = 1; n <= points; ++n) {
      CAPTURE(n);
      try {
        Armed armed(kind, n);
        run(*model_path, *header_path, shared);
        FAIL("the injected failure did not surface");
      } catch (const Error &e) {
        CHECK(detail::fault_fired());
        CHECK_MESSAGE(e.code() == expected_code(kind), e.what());
        CHECK(std::string(e.what()).size() > 20);
      }
      // The model, its other contexts and the other device's model are as before.
      REQUIRE(greedy(bystander, 6) == expected);
      REQUIRE(greedy(split_ctx, 6) == expected);
    }
    MESSAGE(std::string(detail::to_string(kind)) << ": " << points << " injection points, each failed cleanly");
    total_points += points;
  }
  MESSAGE("load + prompt + generate + plan: " << total_points << " injection points");
}

TEST_CASE("a quantize whose writes fail (disk full) leaves the destination absent or as it was") {
  const auto model_path = test::test_data("models/stories260K.gguf");
  if (!model_path) return;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "vramfit-test-faults";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::filesystem::path out = dir / "out.gguf";
  QuantizeParams params;
  params.mix = "Q8_0";
  params.n_threads = 1;

  uint64_t points = 0;
  {
    Armed counting(Fault::file_write, 0);
    quantize_file(*model_path, out, params);
    points = detail::faults_seen(Fault::file_write);
  }
  const std::string complete = file_bytes(out);
  CHECK(points > 1);
  for (bool existing : {false, true}) {
    if (existing) std::ofstream(out, std::ios::binary) << complete;
    for (uint64_t n = 1; n <= points; ++n) {
      CAPTURE(existing);
      CAPTURE(n);
      if (!existing) std::filesystem::remove(out);
      try {
        Armed armed(Fault::file_write, n);
        quantize_file(*model_path, out, params);
        FAIL("the injected write failure did not surface");
      } catch (const Error &e) {
        CHECK(e.code() == ErrorCode::io);
        CHECK_MESSAGE(std::string(e.what()).find("No space left on device") != std::string::npos, e.what());
      }
      if (existing)
        CHECK(file_bytes(out) == complete);  // the earlier file, whole
      else
        CHECK(!std::filesystem::exists(out));
      CHECK(others_in(dir, out).empty());
    }
  }
  MESSAGE("quantize: " << points << " write injection points, twice each");
  std::filesystem::remove_all(dir);
}
