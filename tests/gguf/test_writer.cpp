// gguf::Writer: what it writes, gguf::File reads back identically (and llama.cpp's files survive
// a copy through it byte for byte).
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "test_data.hpp"
#include "test_util.hpp"
#include "vramfit/gguf.hpp"

using namespace vramfit;
using vramfit::test::test_data;

namespace {

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto &b : out) b = static_cast<std::byte>(rng() & 0xff);
  return out;
}

// Encoded elements of an array value, as they follow the element type and count in a file.
class Elements {
 public:
  template <class T>
  Elements &put(T v) {
    auto p = reinterpret_cast<const std::byte *>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  Elements &string(std::string_view s) {
    put<uint64_t>(s.size());
    for (char c : s) bytes.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Elements &array_header(gguf::ValueType type, uint64_t count) {
    return put(static_cast<uint32_t>(type)).put(count);
  }
  std::vector<std::byte> bytes;
};

void check_same_metadata(const gguf::File &a, const gguf::File &b) {
  REQUIRE(a.metadata().size() == b.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    const auto &x = a.metadata()[i];
    const auto &y = b.metadata()[i];
    CAPTURE(x.key);
    CHECK(x.key == y.key);
    CHECK(x.value.type() == y.value.type());
    CHECK(x.value.array_type() == y.value.array_type());
    CHECK(x.value.array_size() == y.value.array_size());
    CHECK(std::ranges::equal(x.value.raw(), y.value.raw()));
  }
}

void check_same_tensors(const gguf::File &a, const gguf::File &b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const auto &x = a.tensors()[i];
    const auto &y = b.tensors()[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);
    CHECK(x.type == y.type);
    CHECK(x.n_dims == y.n_dims);
    CHECK(x.ne == y.ne);
    CHECK(x.n_bytes == y.n_bytes);
    CHECK(std::ranges::equal(a.data(x), b.data(y)));
  }
}

std::vector<std::byte> read_file(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// Copies every key and tensor of `source` through the writer.
gguf::Writer copy_of(const gguf::File &source) {
  gguf::Writer w(source.alignment(), source.version());
  for (const auto &kv : source.metadata()) w.set_value(std::string(kv.key), kv.value);
  for (const auto &t : source.tensors())
    w.add_tensor(t.name, t.type, std::span(t.ne).first(t.n_dims), source.data(t));
  return w;
}

}  // namespace

TEST_CASE("writer round trip: every value type, nested arrays, quantized tensors, alignment 64") {
  gguf::Writer w(64);
  w.set_u8("t.u8", 200);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 65000);
  w.set_i16("t.i16", -32000);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", 18000000000000000000ull);
  w.set_i64("t.i64", -9000000000000000000ll);
  w.set_f32("t.f32", 1.5f);
  w.set_f64("t.f64", -2.25);
  w.set_bool("t.bool", true);
  w.set_string("t.string", "héllo");
  w.set_string("t.empty", "");
  w.set_strings("t.strings", {"a", "", "xyz"});
  w.set_f32_array("t.f32s", {0.5f, -1.0f});
  w.set_i32_array("t.i32s", {-1, 2, -3});
  w.set_u32_array("t.u32s", {});
  w.set_u32("t.replaced", 1);
  w.set_u32("t.replaced", 7);  // replaces in place
  w.set_u8("t.removed", 1);
  w.remove("t.removed");
  // [[1, 2, 3], [4, 5]] of i32 and [["x", "yz"]]: nested arrays via set_value.
  Elements ints;
  ints.array_header(gguf::ValueType::i32, 3).put<int32_t>(1).put<int32_t>(2).put<int32_t>(3);
  ints.array_header(gguf::ValueType::i32, 2).put<int32_t>(4).put<int32_t>(5);
  w.set_value("t.nested", gguf::Value(gguf::ValueType::array, ints.bytes, gguf::ValueType::array, 2));
  Elements strings;
  strings.array_header(gguf::ValueType::string, 2).string("x").string("yz");
  w.set_value("t.nested_strings",
              gguf::Value(gguf::ValueType::array, strings.bytes, gguf::ValueType::array, 1));

  const std::vector<int64_t> shape_f32{8, 3}, shape_q4k{256, 2}, shape_q8{64, 3, 2}, shape_f16{5},
      shape_q6k{512, 1, 1, 2};
  auto f32 = random_bytes(8 * 3 * 4, 1);
  auto q4k = random_bytes(2 * 144, 2);
  auto q8 = random_bytes(2 * 3 * 2 * 34, 3);
  auto f16 = random_bytes(5 * 2, 4);
  auto q6k = random_bytes(2 * 2 * 210, 5);
  w.add_tensor("a.f32", GgmlType::F32, shape_f32, f32);
  w.add_tensor("b.q4k", GgmlType::Q4_K, shape_q4k, q4k);
  w.add_tensor("c.q8", GgmlType::Q8_0, shape_q8, q8);
  w.add_tensor("d.f16", GgmlType::F16, shape_f16, f16);
  w.add_tensor("e.q6k", GgmlType::Q6_K, shape_q6k, [&](std::span<std::byte> out) {
    REQUIRE(out.size() == q6k.size());
    std::memcpy(out.data(), q6k.data(), out.size());
  });

  auto bytes = w.write_bytes();
  auto file = gguf::File::from_bytes(bytes);
  CHECK(file.version() == 3);
  CHECK(file.alignment() == 64);
  CHECK(file.get<uint32_t>("general.alignment") == 64);
  CHECK(file.data_offset() % 64 == 0);
  CHECK(file.get<uint8_t>("t.u8") == 200);
  CHECK(file.get<int8_t>("t.i8") == -100);
  CHECK(file.get<uint16_t>("t.u16") == 65000);
  CHECK(file.get<int16_t>("t.i16") == -32000);
  CHECK(file.get<uint32_t>("t.u32") == 4000000000u);
  CHECK(file.get<int32_t>("t.i32") == -2000000000);
  CHECK(file.get<uint64_t>("t.u64") == 18000000000000000000ull);
  CHECK(file.get<int64_t>("t.i64") == -9000000000000000000ll);
  CHECK(file.get<float>("t.f32") == 1.5f);
  CHECK(file.get<double>("t.f64") == -2.25);
  CHECK(file.get<bool>("t.bool"));
  CHECK(file.get<std::string_view>("t.string") == "héllo");
  CHECK(file.get<std::string_view>("t.empty").empty());
  CHECK(file.get_strings("t.strings") == std::vector<std::string_view>{"a", "", "xyz"});
  CHECK(file.get_array<float>("t.f32s") == std::vector<float>{0.5f, -1.0f});
  CHECK(file.get_array<int32_t>("t.i32s") == std::vector<int32_t>{-1, 2, -3});
  CHECK(file.get_array<uint32_t>("t.u32s").empty());
  CHECK(file.get<uint32_t>("t.replaced") == 7);
  CHECK_FALSE(file.has("t.removed"));
  CHECK(file.metadata()[0].key == "general.alignment");  // set first by the constructor

  std::vector<std::vector<int64_t>> nested;
  file.find("t.nested")->for_each_element([&](uint64_t, const gguf::Value &inner) {
    nested.emplace_back();
    for (uint64_t i = 0; i < inner.array_size(); ++i) nested.back().push_back(inner.element(i).as_int());
  });
  CHECK(nested == std::vector<std::vector<int64_t>>{{1, 2, 3}, {4, 5}});
  std::vector<std::string_view> inner_strings;
  file.find("t.nested_strings")->for_each_element([&](uint64_t, const gguf::Value &inner) {
    inner.for_each_element([&](uint64_t, const gguf::Value &s) { inner_strings.push_back(s.as_string()); });
  });
  CHECK(inner_strings == std::vector<std::string_view>{"x", "yz"});

  REQUIRE(file.tensors().size() == 5);
  const std::pair<const char *, const std::vector<std::byte> *> expected[] = {
      {"a.f32", &f32}, {"b.q4k", &q4k}, {"c.q8", &q8}, {"d.f16", &f16}, {"e.q6k", &q6k}};
  for (const auto &[name, data] : expected) {
    CAPTURE(name);
    const auto &t = file.tensor(name);
    CHECK(t.offset % 64 == 0);
    CHECK(std::ranges::equal(file.data(t), *data));
  }
  CHECK(file.tensor("c.q8").n_dims == 3);
  CHECK(file.tensor("c.q8").ne == std::array<int64_t, 4>{64, 3, 2, 1});
  CHECK(file.tensor("e.q6k").ne == std::array<int64_t, 4>{512, 1, 1, 2});
  CHECK(file.file_size() % 64 == 0);  // the last tensor is padded too, as llama.cpp expects

  // The same through a file on disk; the copy of that file is then byte-identical.
  auto dir = std::filesystem::temp_directory_path() / "vramfit-test-gguf-writer";
  std::filesystem::create_directories(dir);
  int done = 0;
  w.write_file(dir / "out.gguf", [&](size_t i, size_t n) {
    CHECK(i == static_cast<size_t>(++done));
    CHECK(n == 5);
  });
  auto on_disk = gguf::File::open(dir / "out.gguf");
  check_same_metadata(file, on_disk);
  check_same_tensors(file, on_disk);
  CHECK(copy_of(on_disk).write_bytes() == bytes);
  std::filesystem::remove_all(dir);
}

TEST_CASE("copying a real llama.cpp file through the writer reproduces it byte for byte") {
  for (const char *name : {"models/stories260K.gguf", "models/synth-Q4_K_M.gguf",
                           "vocab/ggml-vocab-llama-spm.gguf"}) {
    auto path = test_data(name);
    if (!path) continue;
    CAPTURE(name);
    auto source = gguf::File::open(*path);
    auto bytes = copy_of(source).write_bytes();
    auto copy = gguf::File::from_bytes(bytes);
    check_same_metadata(source, copy);
    check_same_tensors(source, copy);
    // Files with tensors: identical bytes. Vocab-only files differ only by the padding llama.cpp
    // leaves off after the header when there is no data section.
    auto original = read_file(*path);
    if (source.tensors().empty()) bytes.resize(original.size());
    CHECK(bytes == original);
  }
}

TEST_CASE("the writer refuses what it cannot write correctly") {
  CHECK_THROWS_AS(gguf::Writer(48), Error);
  CHECK_THROWS_AS(gguf::Writer(32, 1), Error);
  gguf::Writer w;
  const std::vector<int64_t> ragged{100, 2};
  auto bytes = random_bytes(2 * 34 * 4, 9);
  using test::error_code_of;
  CHECK(error_code_of([&] { w.add_tensor("r", GgmlType::Q8_0, ragged, std::span(bytes).first(10)); }) ==
        ErrorCode::invalid_argument);
  const std::vector<int64_t> shape{64, 2};
  CHECK(error_code_of([&] { w.add_tensor("q", GgmlType::Q8_0, shape, std::span(bytes).first(10)); }) ==
        ErrorCode::invalid_argument);
  w.add_tensor("q", GgmlType::Q8_0, shape, std::span(bytes).first(4 * 34));
  CHECK(error_code_of([&] { w.add_tensor("q", GgmlType::Q8_0, shape, std::span(bytes).first(4 * 34)); }) ==
        ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { w.set_u32("general.alignment", 64); }) == ErrorCode::invalid_argument);

  // A failing producer leaves neither the target nor a temporary file behind.
  auto dir = std::filesystem::temp_directory_path() / "vramfit-test-gguf-atomic";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  w.add_tensor("boom", GgmlType::F32, std::vector<int64_t>{4},
               [](std::span<std::byte>) { throw Error(ErrorCode::io, "producer failed"); });
  CHECK_THROWS_AS(w.write_file(dir / "x.gguf"), Error);
  CHECK(std::filesystem::is_empty(dir));
  CHECK(error_code_of([&] { w.write_file(dir / "no-such-dir" / "x.gguf"); }) == ErrorCode::io);
  std::filesystem::remove_all(dir);
}
