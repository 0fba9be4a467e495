// Hostile input: every GGUF validation rule, then a generated corruption corpus (truncations,
// byte flips, oversized counts). Each input must end in a vramfit::Error or a valid parse: never
// a crash, hang, or huge allocation. CI also runs this under ASan + UBSan (label `sanitize`).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "test_data.hpp"
#include "vramfit/gguf.hpp"

using namespace vramfit;
using vramfit::test::test_data;

namespace {

using Bytes = std::vector<std::byte>;

Bytes read_file(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// resize + memcpy rather than insert: GCC 12 warns falsely (stringop-overflow) on small inserts.
void append(Bytes &bytes, const void *p, size_t n) {
  size_t at = bytes.size();
  bytes.resize(at + n);
  std::memcpy(bytes.data() + at, p, n);
}

template <class T>
void poke(Bytes &bytes, size_t offset, T value) {
  REQUIRE(offset + sizeof(T) <= bytes.size());
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// Offset of the first occurrence of `text` in `bytes` (names in our test files are unique).
size_t find(const Bytes &bytes, std::string_view text) {
  auto it = std::search(bytes.begin(), bytes.end(), text.begin(), text.end(),
                        [](std::byte b, char c) { return b == static_cast<std::byte>(c); });
  REQUIRE(it != bytes.end());
  return static_cast<size_t>(it - bytes.begin());
}

// Parses `bytes` and touches everything a user could; returns the error code, or nullopt when
// the file is valid.
std::optional<ErrorCode> parse_and_touch(std::span<const std::byte> bytes) {
  try {
    auto file = gguf::File::from_bytes(bytes, "corrupt");
    for (const auto &kv : file.metadata())
      if (kv.value.type() == gguf::ValueType::array)
        kv.value.for_each_element([](uint64_t, const gguf::Value &e) { (void)e.raw(); });
    for (const auto &t : file.tensors()) {
      if (file.has_data(t)) {
        CHECK(file.data(t).size() == t.n_bytes);
      } else {
        CHECK_THROWS_AS((void)file.data(t), Error);
      }
    }
    return std::nullopt;
  } catch (const Error &e) {
    CHECK(std::string_view(e.what()).size() > 10);  // a message, not just a code
    return e.code();
  }
}

struct Refusal {
  ErrorCode code;
  std::string message;
};

Refusal refusal(const Bytes &bytes) {
  try {
    gguf::File::from_bytes(bytes, "bad.gguf");
  } catch (const Error &e) {
    return {e.code(), e.what()};
  }
  return {ErrorCode::internal, "parsed without error"};
}

bool contains(const std::string &haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// A small valid file with two tensors whose fields the validation tests patch.
Bytes small_file() {
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("key.alpha", 1);
  w.set_u32("key.betaa", 2);
  w.set_strings("key.strings", {"one", "two"});
  Bytes data(64 * 2 * 34);
  const std::vector<int64_t> shape{64, 2};
  w.add_tensor("tensor.alpha", GgmlType::Q8_0, shape, std::span(data).first(2 * 2 * 34));
  w.add_tensor("tensor.betaa", GgmlType::Q8_0, shape, std::span(data).first(2 * 2 * 34));
  const std::vector<int64_t> shape3{32, 2, 2};
  w.add_tensor("tensor.gamma", GgmlType::Q8_0, shape3, std::span(data).first(4 * 34));
  return w.write_bytes();
}

// Offsets of a tensor info's fields, found by its (unique) name.
struct InfoFields {
  size_t n_dims, type, offset;
  size_t ne(uint32_t d) const { return n_dims + 4 + 8 * d; }
};
InfoFields fields_of(const Bytes &bytes, std::string_view name) {
  size_t n_dims_at = find(bytes, name) + name.size();
  uint32_t n_dims = 0;
  std::memcpy(&n_dims, bytes.data() + n_dims_at, 4);
  size_t type_at = n_dims_at + 4 + 8 * n_dims;
  return {n_dims_at, type_at, type_at + 4};
}

}  // namespace

TEST_CASE("validation: each broken rule is refused with a code and a useful message") {
  const Bytes good = small_file();
  REQUIRE(!parse_and_touch(good));

  SUBCASE("bad magic") {
    Bytes b = good;
    b[0] = std::byte{'X'};
    auto r = refusal(b);
    CHECK(r.code == ErrorCode::format);
    CHECK(contains(r.message, "not a GGUF file"));
  }
  SUBCASE("versions other than 2 and 3") {
    for (uint32_t version : {0u, 1u, 4u, 0x03000000u}) {
      Bytes b = good;
      poke<uint32_t>(b, 4, version);
      CHECK(refusal(b).code == ErrorCode::unsupported);
    }
    Bytes v2 = good;
    poke<uint32_t>(v2, 4, 2);
    CHECK(!parse_and_touch(v2));
  }
  SUBCASE("counts that cannot fit in the file") {
    for (uint64_t huge : {uint64_t{1} << 63, ~uint64_t{0}, uint64_t{1} << 40, uint64_t{100000}}) {
      Bytes b = good;
      poke<uint64_t>(b, 8, huge);  // tensor count
      auto r = refusal(b);
      CHECK(r.code == ErrorCode::format);
      b = good;
      poke<uint64_t>(b, 16, huge);  // metadata count
      r = refusal(b);
      CHECK(r.code == ErrorCode::format);
      CHECK(contains(r.message, "offset 16"));
    }
  }
  SUBCASE("string lengths and array sizes that cannot fit") {
    Bytes b = good;
    poke<uint64_t>(b, 24, ~uint64_t{0} - 3);  // length of the first key
    auto r = refusal(b);
    CHECK(r.code == ErrorCode::format);
    CHECK(contains(r.message, "offset 24"));
    b = good;
    poke<uint64_t>(b, find(b, "key.strings") + 11 + 4 + 4, uint64_t{1} << 61);  // array count
    r = refusal(b);
    CHECK(r.code == ErrorCode::format);
    CHECK(contains(r.message, "key.strings"));
  }
  SUBCASE("unknown value type, unknown tensor type, too many dimensions") {
    Bytes b = good;
    poke<uint32_t>(b, find(b, "key.alpha") + 9, 13);
    CHECK(contains(refusal(b).message, "unknown value type 13"));
    b = good;
    poke<uint32_t>(b, find(b, "key.strings") + 11 + 4, 99);  // array element type
    CHECK(contains(refusal(b).message, "unknown array element type 99"));
    b = good;
    poke<uint32_t>(b, fields_of(b, "tensor.alpha").type, 4);  // Q4_2: removed from ggml
    CHECK(contains(refusal(b).message, "unknown ggml type id 4"));
    b = good;
    poke<uint32_t>(b, fields_of(b, "tensor.alpha").n_dims, 5);
    auto r = refusal(b);
    CHECK(r.code == ErrorCode::format);
    CHECK(contains(r.message, "tensor.alpha"));
  }
  SUBCASE("element count overflow and ragged rows") {
    Bytes b = good;
    auto f = fields_of(b, "tensor.alpha");
    poke<uint64_t>(b, f.ne(0), uint64_t{1} << 40);
    poke<uint64_t>(b, f.ne(1), uint64_t{1} << 40);
    CHECK(contains(refusal(b).message, "overflows"));
    b = good;  // a zero dimension must not hide the overflow of the others
    auto g = fields_of(b, "tensor.gamma");
    poke<uint64_t>(b, g.ne(0), 0);
    poke<uint64_t>(b, g.ne(1), uint64_t{1} << 40);
    poke<uint64_t>(b, g.ne(2), uint64_t{1} << 40);
    CHECK(contains(refusal(b).message, "overflows"));
    b = good;
    poke<uint64_t>(b, f.ne(0), 48);
    auto r = refusal(b);
    CHECK(contains(r.message, "tensor.alpha"));
    CHECK(contains(r.message, "not a multiple of the block size 32"));
  }
  SUBCASE("misaligned, overlapping and overflowing offsets; past the end is legal until read") {
    Bytes b = good;
    auto f = fields_of(b, "tensor.betaa");
    poke<uint64_t>(b, f.offset, 8);
    CHECK(contains(refusal(b).message, "not a multiple of the alignment 32"));
    poke<uint64_t>(b, f.offset, 64);
    CHECK(contains(refusal(b).message, "overlap"));
    poke<uint64_t>(b, f.offset, ~uint64_t{0} - 31);
    CHECK(contains(refusal(b).message, "overflows"));
    poke<uint64_t>(b, f.offset, uint64_t{1} << 40);
    auto file = gguf::File::from_bytes(b);
    CHECK_FALSE(file.has_data(file.tensor("tensor.betaa")));
    CHECK_THROWS_AS((void)file.data(file.tensor("tensor.betaa")), Error);
    CHECK(file.data(file.tensor("tensor.alpha")).size() == 2 * 2 * 34);
  }
  SUBCASE("duplicate keys and tensor names") {
    Bytes b = good;
    std::memcpy(b.data() + find(b, "key.betaa"), "key.alpha", 9);
    auto r = refusal(b);
    CHECK(contains(r.message, "duplicate metadata key 'key.alpha'"));
    b = good;
    std::memcpy(b.data() + find(b, "tensor.betaa"), "tensor.alpha", 12);
    CHECK(contains(refusal(b).message, "duplicate tensor name 'tensor.alpha'"));
  }
  SUBCASE("general.alignment must be a power of two") {
    // Written by hand: the Writer itself refuses a bad alignment.
    Bytes raw;
    auto put = [&](const void *p, size_t n) { append(raw, p, n); };
    uint32_t version = 3, type_u32 = 4, alignment = 48;
    uint64_t n_tensors = 0, n_kv = 1, key_len = 17;
    put("GGUF", 4);
    put(&version, 4);
    put(&n_tensors, 8);
    put(&n_kv, 8);
    put(&key_len, 8);
    put("general.alignment", 17);
    put(&type_u32, 4);
    put(&alignment, 4);
    auto r = refusal(raw);
    CHECK(r.code == ErrorCode::format);
    CHECK(contains(r.message, "power of two"));
  }
  SUBCASE("arrays nested too deeply") {
    Bytes raw;
    auto put = [&](const void *p, size_t n) { append(raw, p, n); };
    uint32_t version = 3, type_array = 9;
    uint64_t n_tensors = 0, n_kv = 1, key_len = 1, one = 1;
    put("GGUF", 4);
    put(&version, 4);
    put(&n_tensors, 8);
    put(&n_kv, 8);
    put(&key_len, 8);
    put("k", 1);
    put(&type_array, 4);
    for (int depth = 0; depth < 2000; ++depth) {  // deep enough to overflow a naive recursion
      put(&type_array, 4);
      put(&one, 8);
    }
    CHECK(contains(refusal(raw).message, "nested deeper"));
  }
  SUBCASE("empty and tiny inputs") {
    CHECK(refusal({}).code == ErrorCode::format);
    CHECK(refusal(Bytes(good.begin(), good.begin() + 3)).code == ErrorCode::format);
  }
}

TEST_CASE("corruption corpus: truncations, byte flips and oversized counts of a real file") {
  auto path = test_data("models/stories260K.gguf");
  if (!path) return;
  const Bytes original = read_file(*path);
  const size_t header_end = gguf::File::from_bytes(original).data_offset();
  REQUIRE(header_end < original.size());

  SUBCASE("every truncation of the header region fails cleanly") {
    for (size_t n = 0; n < header_end; ++n) {
      auto code = parse_and_touch(std::span(original).first(n));
      // Tensor infos end a few padding bytes before the data offset; only those cuts parse.
      if (code) CHECK(*code == ErrorCode::format);
    }
  }
  SUBCASE("truncations inside the data section: the header parses, missing tensors throw") {
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
      size_t n = header_end + rng() % (original.size() - header_end);
      CHECK(!parse_and_touch(std::span(original).first(n)));
    }
  }
  SUBCASE("seeded random byte flips in the header region") {
    std::mt19937 rng(12345);
    Bytes bytes;
    int refused = 0;
    for (int i = 0; i < 3000; ++i) {
      bytes = original;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k)
        bytes[rng() % header_end] ^= static_cast<std::byte>(1u << (rng() % 8));
      // Keep the data section out of the copy: flips are about the header, and this keeps the
      // test fast under ASan.
      if (parse_and_touch(std::span(bytes).first(header_end + 64))) continue;
      ++refused;
    }
    MESSAGE("byte flips refused: " << refused << " of 3000");
    CHECK(refused > 0);
  }
  SUBCASE("huge u64s written over the header region (counts, lengths, dims, offsets)") {
    // ~0 at every byte offset hits every count and length field; 2^62 (which survives some
    // overflow checks that ~0 does not reach) at every 8th, to keep the test fast under ASan.
    Bytes bytes = original;
    for (size_t at = 8; at + 8 <= header_end; ++at) {
      for (uint64_t huge : {~uint64_t{0}, uint64_t{1} << 62}) {
        if (huge != ~uint64_t{0} && at % 8 != 0) continue;
        std::memcpy(bytes.data() + at, &huge, 8);
        parse_and_touch(std::span(bytes).first(header_end));
      }
      std::memcpy(bytes.data() + at, original.data() + at, 8);
    }
  }
}
