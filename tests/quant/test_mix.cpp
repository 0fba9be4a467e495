// The per-tensor mix rules against the types llama.cpp chose in the reference files.
#include <doctest/doctest.h>

#include <string>

#include "quant/mix.hpp"
#include "test_data.hpp"
#include "vramfit/gguf.hpp"

using namespace vramfit;

namespace {

quant::ModelShape model_shape(const gguf::File &file) {
  const std::string arch(file.get<std::string_view>("general.architecture"));
  quant::ModelShape shape;
  shape.n_layers = file.get<int>(arch + ".block_count");
  shape.n_gqa = file.get<int>(arch + ".attention.head_count") / file.get<int>(arch + ".attention.head_count_kv");
  shape.has_output = file.find_tensor("output.weight") != nullptr;
  shape.llama_70b = arch == "llama" && shape.n_layers == 80 && shape.n_gqa > 1;
  return shape;
}

// Checks every tensor of a llama.cpp-quantized file against our rules; returns tensors checked.
int check_file(const std::string &model, const std::string &mix_name) {
  auto path = test::test_data("models/" + model + ".gguf");
  if (!path) return 0;
  const gguf::File file = gguf::File::open(*path);
  const quant::Mix mix = *quant::find_mix(mix_name);
  if (file.has("general.file_type")) CHECK(file.get<uint32_t>("general.file_type") == mix.file_type);
  const quant::ModelShape shape = model_shape(file);
  int n = 0;
  for (const gguf::TensorInfo &info : file.tensors()) {
    CAPTURE(info.name);
    const quant::TensorShape tensor{info.name, static_cast<int>(info.n_dims), info.ne[0]};
    const GgmlType expected = quant::is_quantizable(tensor) ? quant::tensor_type(mix, shape, tensor) : GgmlType::F32;
    CHECK(type_name(info.type) == type_name(expected));
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("mix rules give the tensor types llama.cpp chose") {
  for (const char *mix : {"F16", "Q4_0", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K"}) {
    CAPTURE(mix);
    const int n = check_file(std::string("synth-") + mix, mix);
    if (n) CHECK(n == 30);
  }
  SUBCASE("tied output: token_embd takes output's type") { check_file("synth32k-Q4_K_M", "Q4_K_M"); }
  SUBCASE("gpt-oss MXFP4_MOE: MXFP4 experts, Q8_0 matrices, F32 router, biases and sinks") {
    if (const int n = check_file("synth-gptoss-MXFP4_MOE", "MXFP4_MOE")) CHECK(n == 41);
  }
  SUBCASE("gpt-oss-120b MXFP4 header") {
    if (const int n = check_file("header-only/gpt-oss-120b-MXFP4", "MXFP4_MOE")) CHECK(n > 0);
  }
  // Headers of real files: 40 layers without GQA, and 80 with GQA (the 70B attn_v rule). The
  // Q2_K-like 70B header follows no exact llama.cpp mix, so it is not here.
  SUBCASE("llama2-13b Q4_K_M") {
    if (const int n = check_file("header-only/llama2-13b-Q4_K_M", "Q4_K_M")) CHECK(n == 363);
  }
  SUBCASE("llama2-70b Q4_K_M") {
    if (const int n = check_file("header-only/llama2-70b-Q4_K_M", "Q4_K_M")) CHECK(n == 723);
  }
  SUBCASE("llama3-70b Q6_K") {
    if (const int n = check_file("header-only/llama3-70b-Q6_K", "Q6_K")) CHECK(n == 723);
  }
}

TEST_CASE("use_more_bits spreads Q6_K over the first, last and every third layer (Q4_K_M, 32 layers)") {
  const quant::Mix mix = *quant::find_mix("q4_k_m");
  const quant::ModelShape model{32, 1, true};
  std::string q6_layers;
  for (int layer = 0; layer < 32; ++layer) {
    const std::string name = "blk." + std::to_string(layer) + ".ffn_down.weight";
    if (quant::tensor_type(mix, model, {name, 2, 4096}) == GgmlType::Q6_K) q6_layers += std::to_string(layer) + " ";
  }
  // layers < 4, >= 28, and (layer - 4) % 3 == 2: as in llama.cpp's Llama-2-7B Q4_K_M files.
  CHECK(q6_layers == "0 1 2 3 6 9 12 15 18 21 24 27 28 29 30 31 ");
}

TEST_CASE("rows that blocks do not tile fall back to a type that fits") {
  const quant::ModelShape model{2, 1, true};
  const auto q4_k_m = *quant::find_mix("Q4_K_M");
  const auto q2_k = *quant::find_mix("Q2_K");
  CHECK(quant::tensor_type(q4_k_m, model, {"blk.1.attn_q.weight", 2, 4160}) == GgmlType::Q8_0);   // 4160 = 130*32
  CHECK(quant::tensor_type(q2_k, model, {"blk.1.attn_q.weight", 2, 4160}) == GgmlType::Q4_0);
  CHECK(quant::tensor_type(q4_k_m, model, {"blk.0.ffn_down.weight", 2, 172}) == GgmlType::F16);   // not even /32
  CHECK(quant::tensor_type(q4_k_m, model, {"output.weight", 2, 4160}) == GgmlType::Q8_0);
  CHECK(!quant::is_quantizable({"blk.0.attn_norm.weight", 1, 4096}));
  CHECK(!quant::is_quantizable({"blk.0.attn_norm.weight", 2, 4096}));
  CHECK(quant::is_quantizable({"token_embd.weight", 2, 4096}));
  CHECK(!quant::find_mix("Q4_K_L"));
}
