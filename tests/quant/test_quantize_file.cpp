// vramfit::quantize_file end to end: our Q4_K_M / Q2_K files of the synthetic model are the files
// llama.cpp wrote, byte for byte in every tensor.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "test_data.hpp"
#include "vramfit/error.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/log.hpp"
#include "vramfit/quantize.hpp"

using namespace vramfit;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("vramfit-quant-" + std::to_string(std::random_device{}()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<char> slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Every tensor of `ours` has the type and bytes of the same tensor in `theirs`.
void check_same_tensors(const fs::path &ours, const fs::path &theirs) {
  const gguf::File a = gguf::File::open(ours), b = gguf::File::open(theirs);
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (const gguf::TensorInfo &t : b.tensors()) {
    CAPTURE(t.name);
    const gguf::TensorInfo &o = a.tensor(t.name);
    CHECK(type_name(o.type) == type_name(t.type));
    CHECK(o.ne == t.ne);
    const auto x = a.data(o), y = b.data(t);
    REQUIRE(x.size() == y.size());
    CHECK(std::memcmp(x.data(), y.data(), x.size()) == 0);
  }
  CHECK(a.get<uint32_t>("general.file_type") == b.get<uint32_t>("general.file_type"));
  CHECK(a.get<std::string_view>("general.architecture") == b.get<std::string_view>("general.architecture"));
  CHECK(a.get_strings("tokenizer.ggml.tokens").size() == b.get_strings("tokenizer.ggml.tokens").size());
}

}  // namespace

TEST_CASE("quantizing synth-F32 reproduces llama.cpp's Q4_K_M and Q2_K files") {
  auto f32 = test::test_data("models/synth-F32.gguf");
  if (!f32) return;
  TempDir tmp;
  for (const char *mix : {"Q4_K_M", "Q2_K"}) {
    CAPTURE(mix);
    auto theirs = test::test_data(std::string("models/synth-") + mix + ".gguf");
    if (!theirs) return;
    size_t n_progress = 0;
    QuantizeParams params;
    params.mix = mix;
    params.n_threads = 2;
    params.progress = [&](const QuantizeProgress &p) {
      CHECK(p.done == ++n_progress);
      CHECK(!p.requantized);
    };
    const QuantizeResult result = quantize_file(*f32, tmp.path / "out.gguf", params);
    CHECK(n_progress == result.n_tensors);
    CHECK(result.n_tensors == 30);
    CHECK(result.n_converted == 23);  // every 2-D weight; the 7 norms stay F32
    CHECK(result.n_requantized == 0);
    CHECK(result.bytes_out < result.bytes_in / 6);
    check_same_tensors(tmp.path / "out.gguf", *theirs);
  }
}

TEST_CASE("quantizing synth-gptoss-F32 to MXFP4_MOE reproduces llama.cpp's file") {
  auto f32 = test::test_data("models/synth-gptoss-F32.gguf");
  auto theirs = test::test_data("models/synth-gptoss-MXFP4_MOE.gguf");
  if (!f32 || !theirs) return;
  TempDir tmp;
  QuantizeParams params;
  params.mix = "MXFP4_MOE";
  params.n_threads = 2;
  const QuantizeResult result = quantize_file(*f32, tmp.path / "out.gguf", params);
  CHECK(result.n_converted == 16);  // 6 expert tensors to MXFP4, 10 matrices to Q8_0; router, norms, biases stay
  check_same_tensors(tmp.path / "out.gguf", *theirs);
}

TEST_CASE("the output does not depend on the number of threads") {
  auto f32 = test::test_data("models/stories260K.gguf");
  if (!f32) return;
  TempDir tmp;
  QuantizeParams params;
  params.mix = "Q8_0";
  params.n_threads = 1;
  quantize_file(*f32, tmp.path / "one.gguf", params);
  params.n_threads = 5;
  quantize_file(*f32, tmp.path / "five.gguf", params);
  CHECK(slurp(tmp.path / "one.gguf") == slurp(tmp.path / "five.gguf"));
}

TEST_CASE("requantizing an already-quantized file warns once and counts the tensors") {
  auto q8 = test::test_data("models/synth-Q8_0.gguf");
  if (!q8) return;
  TempDir tmp;
  static int n_warnings = 0;
  static std::string warning;
  n_warnings = 0;
  set_log_callback(
      [](LogLevel level, const char *message, void *) {
        n_warnings += level == LogLevel::warn;
        warning = message;
      },
      nullptr);
  QuantizeParams params;
  params.mix = "q4_k_s";
  const QuantizeResult result = quantize_file(*q8, tmp.path / "out.gguf", params);
  set_log_callback(nullptr, nullptr);
  CHECK(result.n_requantized == 23);
  CHECK(n_warnings == 1);  // one line for the file, not one per tensor
  CHECK(warning.starts_with("requantizing 23 of "));
  CHECK(warning.find("(the first: 'output.weight', Q8_0 to Q6_K)") != std::string::npos);
  const gguf::File out = gguf::File::open(tmp.path / "out.gguf");
  CHECK(out.get<uint32_t>("general.file_type") == 14);
  CHECK(type_name(out.tensor("blk.1.attn_q.weight").type) == "Q4_K");
}

TEST_CASE("bad requests fail clearly and leave no file") {
  auto f32 = test::test_data("models/stories260K.gguf");
  if (!f32) return;
  TempDir tmp;
  QuantizeParams params;
  params.mix = "Q4_K_XL";
  try {
    quantize_file(*f32, tmp.path / "out.gguf", params);
    FAIL("no error");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::invalid_argument);
    CHECK(std::string(e.what()).find("Q4_K_M") != std::string::npos);  // lists the valid mixes
  }
  // stories260K's rows (64, 172) do not fit 256-blocks: every tensor falls back, none fails.
  params.mix = "Q4_K_M";
  const QuantizeResult result = quantize_file(*f32, tmp.path / "out.gguf", params);
  const gguf::File out = gguf::File::open(tmp.path / "out.gguf");
  CHECK(type_name(out.tensor("blk.0.attn_q.weight").type) == "Q8_0");   // 64 = 2 * 32
  CHECK(type_name(out.tensor("blk.0.ffn_down.weight").type) == "F16");  // 172: not even /32
  CHECK(result.n_converted > 0);
  CHECK_THROWS_AS(quantize_file(tmp.path / "missing.gguf", tmp.path / "x.gguf", params), Error);
  CHECK(!fs::exists(tmp.path / "x.gguf"));
}
