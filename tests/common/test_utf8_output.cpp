// Strings from a file reach output as valid UTF-8: GGUF strings are not checked when read, so
// JSON (Plan::to_json, `vramfit info --json`), error messages and logs replace each byte that
// starts no well-formed sequence with U+FFFD (JSON: \ufffd) instead of passing it through.
#include <doctest/doctest.h>

#include <string>

#include "common/json_text.hpp"
#include "common/utf8.hpp"
#include "vramfit/error.hpp"
#include "vramfit/gguf.hpp"
#include "vramfit/offload.hpp"

using namespace vramfit;

namespace {

bool is_valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = detail::utf8_sequence_length(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

}  // namespace

TEST_CASE("well-formed UTF-8 is told apart from stray bytes, as Unicode's table 3-7 says") {
  using detail::utf8_sequence_length;
  CHECK(utf8_sequence_length("a", 0) == 1);
  CHECK(utf8_sequence_length("\xC3\xA9", 0) == 2);          // é
  CHECK(utf8_sequence_length("\xE4\xB8\x80", 0) == 3);      // U+4E00
  CHECK(utf8_sequence_length("\xF0\x9F\x98\x80", 0) == 4);  // U+1F600
  CHECK(utf8_sequence_length("\xC0\xAF", 0) == 0);          // overlong '/'
  CHECK(utf8_sequence_length("\xE0\x80\xAF", 0) == 0);      // overlong, 3 bytes
  CHECK(utf8_sequence_length("\xED\xA0\x80", 0) == 0);      // a surrogate
  CHECK(utf8_sequence_length("\xF4\x90\x80\x80", 0) == 0);  // past U+10FFFF
  CHECK(utf8_sequence_length("\xE4\xB8", 0) == 0);          // cut short
  CHECK(utf8_sequence_length("\x80", 0) == 0);              // a lone continuation byte
  CHECK(utf8_sequence_length("\xFF", 0) == 0);
  CHECK(detail::valid_utf8("caf\xE9 ok \xF0\x9F\x98\x80") == "caf\xEF\xBF\xBD ok \xF0\x9F\x98\x80");
  CHECK(detail::valid_utf8("plain") == "plain");
}

TEST_CASE("JSON string literals escape what JSON needs and write stray bytes as \\ufffd") {
  CHECK(detail::json_quote("a\"b\\c\n\x01") == R"("a\"b\\c\u000a\u0001")");
  CHECK(detail::json_quote("caf\xE9") == R"("caf\ufffd")");
  CHECK(detail::json_quote("\xE4\xB8") == R"("\ufffd\ufffd")");
  CHECK(detail::json_quote("\xE4\xB8\x80 \xF0\x9F\x98\x80") == "\"\xE4\xB8\x80 \xF0\x9F\x98\x80\"");
}

TEST_CASE("a plan of tensors whose names are not UTF-8 is still JSON") {
  ModelShape m;
  m.n_layer = 1;
  m.n_embd = m.head_dim = 64;
  m.n_head = m.n_head_kv = 1;
  m.n_ff = 128;
  m.n_vocab = 16;
  m.tensors.push_back({"token_embd.weight", GgmlType::F32, 64 * 16, 64, 64 * 16 * 4});
  m.tensors.push_back({"blk.0.attn_norm\xFF.weight", GgmlType::F32, 64, 64, 64 * 4});
  PlanRequest r;
  r.n_ctx = 64;
  r.n_batch = 8;
  r.policy.vram_budget_bytes = 1ull << 30;
  r.machine.device_fixed_overhead_bytes = 0;
  const std::string json = make_plan(m, r).to_json();
  CHECK(is_valid_utf8(json));
  CHECK(json.find(R"("name": "blk.0.attn_norm\ufffd.weight")") != std::string::npos);
}

TEST_CASE("error messages quoting a file's strings are valid UTF-8") {
  gguf::Writer w;
  w.set_string("general.architecture", "ll\xFF" "ama");
  const std::vector<std::byte> bytes = w.write_bytes();
  const gguf::File file = gguf::File::from_bytes(bytes);
  try {
    (void)ModelShape::from_gguf(file);
    FAIL("a file without hyper-parameters was accepted");
  } catch (const Error &e) {
    CHECK(e.code() == ErrorCode::format);
    CHECK(is_valid_utf8(e.what()));
    CHECK_MESSAGE(std::string(e.what()).find("'ll\xEF\xBF\xBD" "ama.block_count'") != std::string::npos, e.what());
  }
}
