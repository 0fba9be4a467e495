// gguf::File against the real files in ../shared (written by llama.cpp's gguf-py / ggml).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "test_data.hpp"
#include "test_util.hpp"
#include "vramfit/gguf.hpp"

using namespace vramfit;
using vramfit::test::test_data;

TEST_CASE("stories260K: hyper-parameters, vocab and tensors") {
  auto path = test_data("models/stories260K.gguf");
  if (!path) return;
  auto file = gguf::File::open(*path);
  CHECK(file.version() == 3);
  CHECK(file.get<std::string_view>("general.architecture") == "llama");
  CHECK(file.get<uint32_t>("llama.embedding_length") == 64);
  CHECK(file.get<uint32_t>("llama.block_count") == 5);
  CHECK(file.get<uint32_t>("llama.attention.head_count") == 8);
  CHECK(file.get<uint32_t>("llama.attention.head_count_kv") == 4);
  CHECK(file.get<uint32_t>("llama.feed_forward_length") == 172);
  CHECK(file.get_strings("tokenizer.ggml.tokens").size() == 512);
  CHECK(file.get_array<float>("tokenizer.ggml.scores").size() == 512);
  CHECK(file.alignment() == 32);
  CHECK(file.data_offset() % 32 == 0);
  const auto &down = file.tensor("blk.0.ffn_down.weight");
  CHECK(down.type == GgmlType::F32);
  CHECK(down.ne[0] == 172);
  CHECK(down.ne[1] == 64);
  CHECK(file.data(down).size() == 172 * 64 * 4);
  CHECK(file.tensors().size() == 2 + 1 + 5 * 9);
}

namespace {

std::vector<std::filesystem::path> every_gguf_file() {
  std::vector<std::filesystem::path> files;
  for (const char *dir : {"models", "vocab"}) {
    auto root = test_data(dir);
    if (!root) continue;
    for (const auto &entry : std::filesystem::recursive_directory_iterator(*root))
      if (entry.path().extension() == ".gguf") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool is_refused_edge_file(const std::filesystem::path &p) {
  auto name = p.filename().string();
  return name == "edge-gguf-v1-stories260K.gguf" || name == "edge-q8_0-ragged-rows.gguf";
}

std::string error_of(const std::filesystem::path &p, ErrorCode &code) {
  try {
    gguf::File::open(p);
  } catch (const Error &e) {
    code = e.code();
    return e.what();
  }
  return {};
}

std::set<GgmlType> types_in(const gguf::File &file) {
  std::set<GgmlType> types;
  for (const auto &t : file.tensors()) types.insert(t.type);
  return types;
}

}  // namespace

TEST_CASE("every shared GGUF file opens, and its tensors tile the data section") {
  auto files = every_gguf_file();
  if (files.empty()) return;
  CHECK(files.size() >= 28);
  for (const auto &path : files) {
    if (is_refused_edge_file(path)) continue;
    CAPTURE(path.string());
    auto file = gguf::File::open(path);
    CHECK(file.has("general.architecture"));
    CHECK(file.data_offset() % file.alignment() == 0);
    bool header_only = path.parent_path().filename() == "header-only";
    uint64_t end = file.data_offset();
    for (const auto &t : file.tensors()) {
      CHECK(t.file_offset == file.data_offset() + t.offset);
      CHECK(t.offset % file.alignment() == 0);
      CHECK(t.n_bytes == row_bytes(t.type, t.ne[0]) * static_cast<uint64_t>(t.n_rows()));
      CHECK(file.has_data(t) == !header_only);
      end = std::max(end, t.file_offset + t.n_bytes);
    }
    // llama.cpp pads the data section to the alignment; real files end at the last tensor.
    if (!header_only && !file.tensors().empty()) CHECK(file.file_size() == end);
  }
}

TEST_CASE("GGUF v1 and ragged Q8_0 rows are refused with a message a user can act on") {
  auto v1 = test_data("models/edge-gguf-v1-stories260K.gguf");
  auto ragged = test_data("models/edge-q8_0-ragged-rows.gguf");
  if (!v1 || !ragged) return;
  ErrorCode code{};
  std::string message = error_of(*v1, code);
  CHECK(code == ErrorCode::unsupported);
  CHECK(message.find("GGUF v1 is not supported") != std::string::npos);
  message = error_of(*ragged, code);
  CAPTURE(message);
  CHECK(code == ErrorCode::format);
  CHECK(message.find("ffn_down") != std::string::npos);
  CHECK(message.find("172") != std::string::npos);
  CHECK(message.find("block size 32") != std::string::npos);
}

TEST_CASE("synthetic models: shapes, GQA and the type mixes llama.cpp chose") {
  auto q4km = test_data("models/synth-Q4_K_M.gguf");
  if (!q4km) return;
  auto file = gguf::File::open(*q4km);
  CHECK(file.get<uint32_t>("llama.embedding_length") == 256);
  CHECK(file.get<uint32_t>("llama.block_count") == 3);
  CHECK(file.get<uint32_t>("llama.attention.head_count") == 4);
  CHECK(file.get<uint32_t>("llama.attention.head_count_kv") == 2);
  CHECK(file.get<uint32_t>("llama.feed_forward_length") == 768);
  CHECK(file.tensor("blk.0.attn_k.weight").ne[1] == 128);  // 2 kv heads * head dim 64
  CHECK(file.tensor("blk.2.ffn_down.weight").ne[0] == 768);
  CHECK(file.find_tensor("output.weight") != nullptr);
  auto types = types_in(file);
  CHECK(types.count(GgmlType::Q4_K) == 1);
  CHECK(types.count(GgmlType::Q6_K) == 1);

  const std::pair<const char *, std::set<GgmlType>> mixes[] = {
      {"models/synth-Q3_K_M.gguf", {GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}},
      {"models/synth-Q2_K.gguf", {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q6_K}},
      {"models/synth-Q8_0.gguf", {GgmlType::Q8_0}},
      {"models/synth-F16.gguf", {GgmlType::F16}},
  };
  for (const auto &[name, expected] : mixes) {
    auto path = test_data(name);
    if (!path) continue;
    CAPTURE(name);
    auto mix = types_in(gguf::File::open(*path));
    mix.erase(GgmlType::F32);  // norms stay F32 in every mix
    CHECK(mix == expected);
  }

  auto tied = test_data("models/synth32k-Q4_K_M.gguf");
  if (!tied) return;
  auto f32k = gguf::File::open(*tied);
  CHECK(f32k.find_tensor("output.weight") == nullptr);
  CHECK(f32k.get<uint32_t>("llama.block_count") == 2);
  CHECK(f32k.get_strings("tokenizer.ggml.tokens").size() == 32000);
  CHECK(f32k.tensor("token_embd.weight").ne[1] == 32000);
}

TEST_CASE("header-only files: tensor infos without data") {
  const std::pair<const char *, double> expected_gb[] = {
      {"models/header-only/llama2-70b-Q4_K_M.gguf", 41.42},
      {"models/header-only/llama2-70b-Q2_K.gguf", 24.9},
      {"models/header-only/llama3-70b-Q6_K.gguf", 57.9},
      {"models/header-only/llama2-13b-Q4_K_M.gguf", 7.87},
  };
  for (const auto &[name, gb] : expected_gb) {
    auto path = test_data(name);
    if (!path) continue;
    CAPTURE(name);
    auto file = gguf::File::open(*path);
    // To the stated precision: 41.42 means within half a unit of the last digit.
    double stated_digits = std::string_view(name).find("Q2_K") != std::string_view::npos ||
                                   std::string_view(name).find("Q6_K") != std::string_view::npos
                               ? 0.05
                               : 0.005;
    CHECK(std::abs(file.tensor_data_bytes() / 1e9 - gb) <= stated_digits);
    CHECK(file.tensors().size() > 0);
    const auto &first = file.tensors()[0];
    CHECK_FALSE(file.has_data(first));
    try {
      (void)file.data(first);
      FAIL("data() of a header-only file must throw");
    } catch (const Error &e) {
      CHECK(e.code() == ErrorCode::format);
      CHECK(std::string(e.what()).find(first.name) != std::string::npos);
    }
  }
  auto l3 = test_data("models/header-only/llama3-70b-Q6_K.gguf");
  if (!l3) return;
  auto file = gguf::File::open(*l3);
  CHECK(file.get<uint32_t>("llama.block_count") == 80);
  CHECK(file.tensor("token_embd.weight").ne[1] == 128256);
}

TEST_CASE("typed lookups convert with range checks and name the key when they cannot") {
  auto path = test_data("models/stories260K.gguf");
  if (!path) return;
  auto file = gguf::File::open(*path);
  auto message_of = [&](auto &&fn) -> std::string {
    try {
      fn();
    } catch (const Error &e) {
      CHECK(e.code() == ErrorCode::format);
      return e.what();
    }
    return "no error";
  };
  CHECK(file.get<int64_t>("llama.context_length") == 2048);
  CHECK(file.get<double>("llama.context_length") == 2048.0);
  CHECK(file.get<float>("llama.attention.layer_norm_rms_epsilon") == doctest::Approx(1e-5));
  CHECK(file.get_or<uint32_t>("llama.no_such_key", 7) == 7);
  CHECK(message_of([&] { (void)file.get<uint8_t>("llama.context_length"); }).find("does not fit") !=
        std::string::npos);
  CHECK(message_of([&] { (void)file.get<std::string_view>("llama.block_count"); })
            .find("'llama.block_count': expected a string, found u32") != std::string::npos);
  CHECK(message_of([&] { (void)file.get<uint32_t>("llama.no_such_key"); })
            .find("'llama.no_such_key' is missing") != std::string::npos);
  CHECK(message_of([&] { (void)file.get_strings("tokenizer.ggml.scores"); }).find("array of strings") !=
        std::string::npos);
  CHECK(message_of([&] { (void)file.get_array<int32_t>("tokenizer.ggml.tokens"); })
            .find("array of numbers") != std::string::npos);
  CHECK(message_of([&] { (void)file.tensor("no.such.tensor"); }).find("no.such.tensor") != std::string::npos);

  auto tokens = file.get_strings("tokenizer.ggml.tokens");
  CHECK(tokens[0] == "<unk>");
  CHECK(tokens[1] == "<s>");
  // Views into the map, not copies.
  auto raw = file.find("tokenizer.ggml.tokens")->raw();
  CHECK(reinterpret_cast<const std::byte *>(tokens[0].data()) >= raw.data());
  CHECK(reinterpret_cast<const std::byte *>(tokens.back().data()) < raw.data() + raw.size());
  auto types = file.get_array<int32_t>("tokenizer.ggml.token_type");
  CHECK(types.size() == 512);
  CHECK(types[0] == 2);  // <unk> is UNKNOWN in llama.cpp's token types

  // Iteration in file order, with where each pair starts.
  CHECK(file.metadata()[0].file_offset == 24);
  CHECK(file.metadata()[0].key == "tokenizer.ggml.tokens");  // gguf-py wrote the vocab first
}

TEST_CASE("files the OS cannot give us are io errors") {
  auto code_of = [](const std::filesystem::path &p) { return test::error_code_of([&] { gguf::File::open(p); }); };
  CHECK(code_of("/nonexistent/model.gguf") == ErrorCode::io);
  CHECK(code_of(std::filesystem::temp_directory_path()) == ErrorCode::io);
}
