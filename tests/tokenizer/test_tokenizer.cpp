// Tokenizer tests against llama.cpp's own test vectors (../shared/vocab) and reference prompts.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <fstream>
#include <optional>
#include <sstream>

#include "test_data.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/vocab.hpp"
#include "vramfit/error.hpp"
#include "vramfit/gguf.hpp"

using vramfit::tokenizer::Tokenizer;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// llama.cpp's test-tokenizer-0 format: inputs separated by "\n__ggml_vocab_test__\n", one line
// of expected ids per input.
struct Case {
  std::string text;
  std::vector<int32_t> expected;
};

std::vector<Case> read_cases(const fs::path &inp, const fs::path &out) {
  const std::string raw = read_file(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < raw.size();) {
    size_t next = raw.find(sep, pos);
    if (next == std::string::npos) next = raw.size();
    cases.push_back({raw.substr(pos, next - pos), {}});
    pos = next + sep.size();
  }
  std::istringstream lines(read_file(out));
  std::string line;
  for (Case &c : cases) {
    REQUIRE(std::getline(lines, line));
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.expected.push_back(id);
  }
  CHECK_FALSE(std::getline(lines, line));  // as many lines as inputs
  return cases;
}

Tokenizer load(const fs::path &path) { return Tokenizer::from_gguf(vramfit::gguf::File::open(path)); }

std::string ids_to_string(const std::vector<int32_t> &ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// The vocabularies that have test pairs in ../shared/vocab.
const char *const kVocabs[] = {"llama-spm", "bert-bge",  "gpt-2", "deepseek-coder", "deepseek-llm", "falcon", "mpt",
                               "phi-3",     "refact",    "starcoder", "llama3",     "qwen3",        "gpt-oss"};

// The prompt tokens (BOS included) of a VFRL reference logits file.
std::vector<int32_t> reference_prompt(const fs::path &path) {
  const std::string raw = read_file(path);
  REQUIRE(raw.size() >= 20);
  REQUIRE(raw.compare(0, 4, "VFRL") == 0);
  uint32_t header[4];
  std::memcpy(header, raw.data() + 4, sizeof header);
  const uint32_t n_prompt = header[2];
  REQUIRE(raw.size() >= 20 + 4 * size_t{n_prompt});
  std::vector<int32_t> tokens(n_prompt);
  std::memcpy(tokens.data(), raw.data() + 20, 4 * size_t{n_prompt});
  return tokens;
}

constexpr const char *kPrompt = "Once upon a time, there was a little";

// Encodes every case of a pair and reports how many lines match llama.cpp's ids.
void check_pair(const Tokenizer &tok, const std::string &label, const fs::path &inp, const fs::path &out) {
  const auto cases = read_cases(inp, out);
  size_t passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case &c = cases[i];
    const std::vector<int32_t> got = tok.encode(c.text, false, false);
    if (got == c.expected) {
      ++passed;
    } else {
      FAIL_CHECK(label << " #" << i << ": '" << c.text << "'\n  expected " << ids_to_string(c.expected)
                       << "\n  got      " << ids_to_string(got));
    }
  }
  MESSAGE(label << ": " << passed << "/" << cases.size() << " lines match llama.cpp");
  CHECK(passed == cases.size());
}

}  // namespace

TEST_CASE("every llama.cpp test pair encodes exactly (add_special=false, parse_special=false)") {
  for (const char *name : kVocabs) {
    const std::string base = std::string("vocab/ggml-vocab-") + name + ".gguf";
    auto model = vramfit::test::test_data(base);
    if (!model) continue;
    std::optional<Tokenizer> loaded;
    try {
      loaded.emplace(load(*model));
    } catch (const vramfit::Error &e) {
      FAIL_CHECK(std::string(name) << ": " << e.what());  // the other vocabularies still run
      continue;
    }
    const Tokenizer &tok = *loaded;
    check_pair(tok, name, fs::path(model->string() + ".inp"), fs::path(model->string() + ".out"));
    // The project's harder input, where llama.cpp's ids for this vocabulary are here.
    const fs::path hard_out(model->string() + ".hard.out");
    if (fs::exists(hard_out))
      check_pair(tok, std::string(name) + " hard", model->parent_path() / "ggml-vocab-hard.inp", hard_out);
  }
}

TEST_CASE("test pairs whose vocabulary is not here are skipped with a message") {
  const fs::path dir = vramfit::test::shared_dir() / "vocab" / "no-model";
  if (!fs::exists(dir)) return;
  for (const auto &entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".inp")
      MESSAGE("skipped (vocab not available): " << entry.path().filename().string());
}

TEST_CASE("the reference prompt tokenizes to the tokens llama.cpp evaluated") {
  struct Pair {
    const char *model;
    const char *logits;
  };
  // llama-2-tiny-random has the same LLaMA-2 vocabulary as synth32k, so it shares its reference.
  const Pair pairs[] = {{"models/stories260K.gguf", "reference/logits/stories260K.logits.bin"},
                        {"models/synth32k-Q4_K_M.gguf", "reference/logits/synth32k-Q4_K_M.logits.bin"},
                        {"models/llama-2-tiny-random.gguf", "reference/logits/synth32k-Q4_K_M.logits.bin"}};
  for (const Pair &p : pairs) {
    auto model = vramfit::test::test_data(p.model);
    auto logits = vramfit::test::test_data(p.logits);
    if (!model || !logits) continue;
    const Tokenizer tok = load(*model);
    CAPTURE(p.model);
    CHECK(tok.kind() == "spm");
    CHECK(tok.add_bos());
    CHECK(tok.encode(kPrompt, true) == reference_prompt(*logits));
    CHECK(tok.decode(tok.encode(kPrompt, false)) == kPrompt);
  }
}

TEST_CASE("decode(encode(x)) == x on the test strings, where llama.cpp round-trips too") {
  for (const char *name : {"llama-spm", "gpt-2", "deepseek-coder", "mpt", "starcoder"}) {
    auto model = vramfit::test::test_data(std::string("vocab/ggml-vocab-") + name + ".gguf");
    if (!model) continue;
    const Tokenizer tok = load(*model);
    const bool cleans_spaces = std::string(name) != "llama-spm" && std::string(name) != "deepseek-coder";
    size_t checked = 0;
    for (const Case &c : read_cases(fs::path(model->string() + ".inp"), fs::path(model->string() + ".out"))) {
      // llama.cpp's decode drops the space in " ,", " .", " 's"... for these vocabularies.
      if (cleans_spaces && (c.text.find(" ,") != std::string::npos || c.text.find(" .") != std::string::npos ||
                            c.text.find(" ?") != std::string::npos || c.text.find(" !") != std::string::npos ||
                            c.text.find(" '") != std::string::npos))
        continue;
      CAPTURE(name);
      CAPTURE(c.text);
      CHECK(tok.decode(tok.encode(c.text, false)) == c.text);
      ++checked;
    }
    CHECK(checked >= 30);
  }
}

TEST_CASE("SPM: byte fallback, empty text, BOS, special tokens, invalid UTF-8") {
  auto model = vramfit::test::test_data("vocab/ggml-vocab-llama-spm.gguf");
  if (!model) return;
  const Tokenizer tok = load(*model);
  CHECK(tok.n_vocab() == 32000);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  CHECK(tok.is_eog(2));
  CHECK_FALSE(tok.is_eog(1));

  SUBCASE("a character with no token becomes its UTF-8 bytes <0xXX> (id = byte + 3)") {
    const std::string llama = "\xF0\x9F\xA6\x99";  // U+1F999, not in LLaMA-2's vocabulary
    const std::vector<int32_t> ids = tok.encode(llama, false);
    REQUIRE(ids.size() == 5);
    CHECK(tok.token_text(ids[0]) == "\xE2\x96\x81");  // the space prefix
    CHECK(std::vector<int32_t>(ids.begin() + 1, ids.end()) == std::vector<int32_t>{0xF0 + 3, 0x9F + 3, 0xA6 + 3, 0x99 + 3});
    CHECK(tok.token_to_piece(0xF0 + 3) == "\xF0");
    CHECK(tok.decode(ids) == llama);
  }
  SUBCASE("empty text: nothing, or only BOS") {
    CHECK(tok.encode("", false).empty());
    CHECK(tok.encode("", true) == std::vector<int32_t>{1});
    CHECK(tok.decode(std::vector<int32_t>{}).empty());
  }
  SUBCASE("parse_special turns <s> and </s> into their ids; otherwise they are text") {
    const std::vector<int32_t> parsed = tok.encode("<s>Hello</s>", false, true);
    REQUIRE(parsed.size() >= 3);
    CHECK(parsed.front() == 1);
    CHECK(parsed.back() == 2);
    const std::vector<int32_t> plain = tok.encode("<s>Hello</s>", false, false);
    CHECK(std::find(plain.begin(), plain.end(), 1) == plain.end());
    CHECK(tok.decode(plain) == "<s>Hello</s>");
    // Control tokens render as nothing, or as their text. Like llama.cpp, only the first token
    // loses its leading space, so the space put after <s> stays.
    CHECK(tok.decode(parsed) == " Hello");
    CHECK(tok.decode(parsed, true) == "<s> Hello</s>");
  }
  SUBCASE("invalid UTF-8 is kept byte for byte through byte tokens") {
    const std::string bad = "ok \xFF\xFExyz done \x80\xC3";
    CHECK(tok.decode(tok.encode(bad, false)) == bad);
    // A lead byte announcing 4 bytes takes the next 4 bytes as one symbol (as in llama.cpp); when
    // those include the "▁" of a space, that space comes back as the bytes of "▁".
    CHECK(tok.decode(tok.encode("a\xF0 b", false)) == "a\xF0\xE2\x96\x81" "b");
  }
  SUBCASE("an id outside the vocabulary is an error, not a crash") {
    CHECK_THROWS_AS(tok.token_to_piece(32000), vramfit::Error);
    CHECK_THROWS_AS(tok.token_to_piece(-1), vramfit::Error);
  }
}

TEST_CASE("BPE: invalid UTF-8 becomes U+FFFD, special tokens, EOG") {
  auto model = vramfit::test::test_data("vocab/ggml-vocab-gpt-2.gguf");
  if (!model) return;
  const Tokenizer tok = load(*model);
  CHECK(tok.kind() == "bpe");
  CHECK_FALSE(tok.add_bos());
  CHECK(tok.encode("", true).empty());
  CHECK(tok.decode(tok.encode("a\xFF" "b", false)) == "a\xEF\xBF\xBD" "b");
  CHECK(tok.decode(tok.encode("\xE2\x82", false)) == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(tok.encode("<|endoftext|>", false, true) == std::vector<int32_t>{50256});
  CHECK(tok.encode("<|endoftext|>", false, false).size() > 1);
  CHECK(tok.is_eog(50256));
  CHECK(tok.token_to_piece(50256).empty());
  CHECK(tok.token_to_piece(50256, true) == "<|endoftext|>");
}

TEST_CASE("WPM: BOS/SEP framing and lower-cased, accent-stripped words") {
  auto model = vramfit::test::test_data("vocab/ggml-vocab-bert-bge.gguf");
  if (!model) return;
  const Tokenizer tok = load(*model);
  CHECK(tok.kind() == "wpm");
  const std::vector<int32_t> ids = tok.encode("Héllo", true);
  REQUIRE(ids.size() >= 3);
  CHECK(ids.front() == 101);
  CHECK(ids.back() == 102);
  CHECK(tok.encode("Héllo", false) == tok.encode("hello", false));
  // Every word starts with "▁" (a space); clean-up removes it before "," and "!" as llama.cpp does.
  CHECK(tok.decode(tok.encode("Hello, World!", false)) == " hello, world!");
  CHECK_NOTHROW(tok.encode("\xFF\xFE", false));
}

namespace {

vramfit::gguf::File vocab_file(const std::string &model, const std::string &pre, size_t n_scores) {
  vramfit::gguf::Writer w;
  w.set_string("tokenizer.ggml.model", model);
  if (!pre.empty()) w.set_string("tokenizer.ggml.pre", pre);
  w.set_strings("tokenizer.ggml.tokens", {"a", "b", "ab"});
  w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(n_scores, 0.0f));
  w.set_strings("tokenizer.ggml.merges", {"a b"});
  const std::vector<std::byte> bytes = w.write_bytes();
  return vramfit::gguf::File::from_bytes(bytes);
}

void check_error(const vramfit::gguf::File &file, vramfit::ErrorCode code, const std::string &needle) {
  try {
    (void)Tokenizer::from_gguf(file);
    FAIL("expected an error mentioning " << needle);
  } catch (const vramfit::Error &e) {
    CHECK(e.code() == code);
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("unknown tokenizers and broken vocabularies are refused with a clear error") {
  check_error(vocab_file("t5", "", 3), vramfit::ErrorCode::unsupported, "tokenizer.ggml.model");
  check_error(vocab_file("gpt2", "no-such-pre", 3), vramfit::ErrorCode::unsupported, "tokenizer.ggml.pre");
  check_error(vocab_file("llama", "", 2), vramfit::ErrorCode::format, "tokenizer.ggml.scores");
  vramfit::gguf::Writer w;
  w.set_u32("general.alignment", 32);
  const std::vector<std::byte> bytes = w.write_bytes();
  check_error(vramfit::gguf::File::from_bytes(bytes), vramfit::ErrorCode::format, "tokenizer.ggml.model");

  {
    vramfit::gguf::Writer dup;
    dup.set_string("tokenizer.ggml.model", "gpt2");
    dup.set_strings("tokenizer.ggml.tokens", {"a", "b", "a"});
    dup.set_strings("tokenizer.ggml.merges", {"a b"});
    const std::vector<std::byte> dup_bytes = dup.write_bytes();
    // llama.cpp asserts one id per text; we name both entries.
    check_error(vramfit::gguf::File::from_bytes(dup_bytes), vramfit::ErrorCode::format,
                "tokenizer.ggml.tokens[2] repeats tokenizer.ggml.tokens[0]");
  }
  {
    vramfit::gguf::Writer types;
    types.set_string("tokenizer.ggml.model", "gpt2");
    types.set_strings("tokenizer.ggml.tokens", {"a", "b"});
    types.set_i32_array("tokenizer.ggml.token_type", {1});
    types.set_strings("tokenizer.ggml.merges", {"a b"});
    const std::vector<std::byte> types_bytes = types.write_bytes();
    check_error(vramfit::gguf::File::from_bytes(types_bytes), vramfit::ErrorCode::format, "tokenizer.ggml.token_type");
  }
  {
    vramfit::gguf::Writer merges;
    merges.set_string("tokenizer.ggml.model", "gpt2");
    merges.set_strings("tokenizer.ggml.tokens", {"a", "b"});
    merges.set_i32_array("tokenizer.ggml.merges", {1, 2});
    const std::vector<std::byte> merges_bytes = merges.write_bytes();
    check_error(vramfit::gguf::File::from_bytes(merges_bytes), vramfit::ErrorCode::format, "tokenizer.ggml.merges");
  }

  // A tiny BPE vocabulary works end to end: "ab" merges, and the missing pre is the default.
  const Tokenizer tok = Tokenizer::from_gguf(vocab_file("gpt2", "", 3));
  CHECK(tok.encode("ab", false) == std::vector<int32_t>{2});
  CHECK(tok.encode("ba", false) == std::vector<int32_t>{1, 0});
}

TEST_CASE("BPE merges apply to text that is no token, as llama.cpp's merges keyed by text do") {
  // "b c" builds "bc", which is no token; "a bc" then builds the token "abc". A merge lookup by
  // token ids alone would miss the second merge.
  vramfit::gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_strings("tokenizer.ggml.tokens", {"a", "b", "c", "abc"});
  w.set_strings("tokenizer.ggml.merges", {"b c", "a bc", "a", "x "});  // the last two can never apply
  const std::vector<std::byte> bytes = w.write_bytes();
  const Tokenizer tok = Tokenizer::from_gguf(vramfit::gguf::File::from_bytes(bytes));
  CHECK(tok.n_vocab() == 4);
  CHECK(tok.encode("abc", false) == std::vector<int32_t>{3});
  // "bc" alone stays no token: its bytes are emitted one by one.
  CHECK(tok.encode("bc", false) == std::vector<int32_t>{1, 2});
  CHECK(tok.encode("abcabc", false) == std::vector<int32_t>{3, 3});
}

TEST_CASE("a non-byte-level BPE token renders as llama.cpp's, and its cost is bounded by the file") {
  // llama.cpp writes "[UNK_BYTE_0x<hex><whole text>]" for each code point outside the byte
  // mapping, so a token of n such code points costs n times its size (issue 16, defect 4).
  auto vocab_with = [](const std::string &odd_token) {
    vramfit::gguf::Writer w;
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_strings("tokenizer.ggml.tokens", {odd_token, "a", "b"});
    w.set_strings("tokenizer.ggml.merges", {"a b"});
    return w.write_bytes();
  };
  std::string two_cjk = "\xE4\xB8\x80\xE4\xB8\x81";  // U+4E00 U+4E01
  const std::vector<std::byte> small = vocab_with(two_cjk);
  const Tokenizer tok = Tokenizer::from_gguf(vramfit::gguf::File::from_bytes(small));
  CHECK(tok.token_to_piece(0) == "[UNK_BYTE_0xe4b880" + two_cjk + "][UNK_BYTE_0xe4b881" + two_cjk + "]");

  // 30 000 CJK characters in a 90 KB file would need 2.7 GB of pieces: refused, naming the token.
  std::string huge;
  for (int i = 0; i < 30000; ++i) huge += "\xE4\xB8\x80";
  const std::vector<std::byte> big = vocab_with(huge);
  check_error(vramfit::gguf::File::from_bytes(big), vramfit::ErrorCode::format,
              "tokenizer.ggml.tokens[0] (90000 bytes) is not byte-level BPE text");
}

TEST_CASE("random bytes never crash any tokenizer, and ids stay in the vocabulary") {
  uint64_t state = 0x9E3779B97F4A7C15ull;  // fixed seed: the same inputs on every run
  auto next = [&] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  // Pieces that stress the pre-tokenizers: ASCII classes, multi-byte letters, CJK, spaces,
  // newlines, contractions, special-token texts and invalid bytes.
  const std::string_view pieces[] = {"a", "Z", "7", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "!", ",", "$",
                                     "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\xA6\x99", "\xE2\x80\x83", "\xC2\xA0",
                                     "\xFF", "\x80", "\xE2\x82", "<s>", "</s>", "<|endoftext|>", "[CLS]", "\xCC\x81"};
  for (const char *name : kVocabs) {
    auto model = vramfit::test::test_data(std::string("vocab/ggml-vocab-") + name + ".gguf");
    if (!model) continue;
    const Tokenizer tok = load(*model);
    for (int round = 0; round < 200; ++round) {
      std::string text;
      const size_t n = next() % 24;
      for (size_t i = 0; i < n; ++i) text += pieces[next() % std::size(pieces)];
      CAPTURE(name);
      CAPTURE(text);
      const bool parse_special = round % 2 == 1;
      std::vector<int32_t> ids;
      REQUIRE_NOTHROW(ids = tok.encode(text, round % 3 == 0, parse_special));
      for (int32_t id : ids) REQUIRE((id >= 0 && id < tok.n_vocab()));
      REQUIRE_NOTHROW((void)tok.decode(ids, parse_special));
    }
  }
}

TEST_CASE("pre-tokenizers split words as their regexes say (families without a vocab here too)") {
  using vramfit::tokenizer::PreTokenizer;
  using vramfit::tokenizer::pretokenize;
  using Words = std::vector<std::string>;
  // \s+(?!\S) leaves the last space of a run to the next word; a run at the end stays whole.
  CHECK(pretokenize(PreTokenizer::gpt2, "Hello world's  test\n\n") ==
        Words{"Hello", " world", "'s", " ", " test", "\n\n"});
  CHECK(pretokenize(PreTokenizer::gpt2, "I'M 2024!?") == Words{"I", "'", "M", " 2024", "!?"});
  // llama3: digits in groups of three, case-insensitive contractions, newlines kept with spaces.
  CHECK(pretokenize(PreTokenizer::llama3, "Hello world 12345") == Words{"Hello", " world", " ", "123", "45"});
  CHECK(pretokenize(PreTokenizer::llama3, "I'M ok.\n\n  x") == Words{"I", "'M", " ok", ".\n\n", " ", " x"});
  // qwen2: the llama3 regex with single digits.
  CHECK(pretokenize(PreTokenizer::qwen2, "abc 123") == Words{"abc", " ", "1", "2", "3"});
  // deepseek-coder: newlines alone, \s?\p{L}+, \s?\p{P}+, CJK runs, single digits.
  CHECK(pretokenize(PreTokenizer::deepseek_coder, "Hello World\n123") ==
        Words{"Hello", " World", "\n", "1", "2", "3"});
  CHECK(pretokenize(PreTokenizer::deepseek_coder, "a\xE3\x80\x80\xE4\xB8\xAD\xE6\x96\x87") ==
        Words{"a", "\xE3\x80\x80", "\xE4\xB8\xAD\xE6\x96\x87"});  // U+3000 is a space, not CJK
  // starcoder: every digit alone, then gpt-2.
  CHECK(pretokenize(PreTokenizer::starcoder, "a1 22") == Words{"a", "1", " ", "2", "2"});
  // default: punctuation runs, gpt-2, digit runs, then three-digit groups.
  CHECK(pretokenize(PreTokenizer::default_, "x+=1234") == Words{"x", "+=", "123", "4"});
  // Invalid UTF-8 reaches the words as U+FFFD.
  CHECK(pretokenize(PreTokenizer::gpt2, "a\xFF") == Words{"a", "\xEF\xBF\xBD"});
}

namespace {

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto &p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

bool contains(const std::vector<int32_t> &ids, int32_t id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

}  // namespace

TEST_CASE("the real vocabularies (150k-200k tokens, 280k-446k merges) load fast") {
  struct Expected {
    const char *name;
    int32_t n_vocab, bos, eos;
    bool add_bos;
  };
  const Expected vocabs[] = {{"llama3", 128256, 128000, 128001, true},
                             {"qwen3", 151936, 151643, 151645, false},
                             {"gpt-oss", 201088, 199998, 200002, false}};
  for (const Expected &e : vocabs) {
    auto model = vramfit::test::test_data(std::string("vocab/ggml-vocab-") + e.name + ".gguf");
    if (!model) continue;
    const std::string name = e.name;
    CAPTURE(name);
    const auto start = std::chrono::steady_clock::now();
    const Tokenizer tok = load(*model);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MESSAGE(std::string(e.name) << ": loaded in " << seconds * 1000 << " ms");
    CHECK(seconds < 30.0);  // only catches a pathological slowdown; sanitizer builds run this too
    CHECK(tok.kind() == "bpe");
    CHECK(tok.n_vocab() == e.n_vocab);
    CHECK(tok.bos() == e.bos);
    CHECK(tok.eos() == e.eos);
    CHECK(tok.add_bos() == e.add_bos);
    CHECK(tok.is_eog(e.eos));
    CHECK(tok.encode("", true) == (e.add_bos ? std::vector<int32_t>{e.bos} : std::vector<int32_t>{}));
  }
}

TEST_CASE("Llama 3: control tokens only with parse_special; BOS by default") {
  auto model = vramfit::test::test_data("vocab/ggml-vocab-llama3.gguf");
  if (!model) return;
  const Tokenizer tok = load(*model);
  const int32_t start_header = 128006, end_header = 128007, eot = 128009;
  CHECK(tok.token_text(eot) == "<|eot_id|>");
  const std::string prompt = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
  // Special tokens cut the text; each piece between them is encoded on its own.
  CHECK(tok.encode(prompt, false, true) ==
        concat({{start_header}, tok.encode("user", false), {end_header}, tok.encode("\n\nHi", false), {eot}}));
  CHECK(tok.encode(prompt, true, true).front() == 128000);
  const std::vector<int32_t> plain = tok.encode(prompt, false, false);
  for (int32_t id : plain) CHECK(id < 128000);
  CHECK(tok.decode(plain) == prompt);
  CHECK(tok.is_eog(eot));
  CHECK_FALSE(tok.is_eog(start_header));
}

TEST_CASE("Qwen3: user-defined tokens always match, control tokens only with parse_special") {
  auto model = vramfit::test::test_data("vocab/ggml-vocab-qwen3.gguf");
  if (!model) return;
  const Tokenizer tok = load(*model);
  const int32_t im_start = 151644, im_end = 151645, tool_call = 151657, think = 151667, end_think = 151668;
  CHECK(tok.token_text(im_start) == "<|im_start|>");
  CHECK(tok.token_text(think) == "<think>");

  const std::string chat = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  CHECK(tok.encode(chat, false, true) == concat({{im_start}, tok.encode("user\nHi", false), {im_end},
                                                 tok.encode("\n", false), {im_start}, tok.encode("assistant\n", false)}));
  // A user typing the markers gets text, not a turn boundary.
  const std::vector<int32_t> typed = tok.encode(chat, false, false);
  CHECK_FALSE(contains(typed, im_start));
  CHECK_FALSE(contains(typed, im_end));
  CHECK(tok.decode(typed) == chat);

  // <think> and <tool_call> are user-defined: single tokens with or without parse_special.
  for (bool parse_special : {false, true}) {
    CAPTURE(parse_special);
    CHECK(tok.encode("<think>\nok\n</think>", false, parse_special) ==
          concat({{think}, tok.encode("\nok\n", false), {end_think}}));
    CHECK(tok.encode("<tool_call>", false, parse_special) == std::vector<int32_t>{tool_call});
  }
  // [PAD151669]... are unused ids, never matched in text.
  CHECK(tok.token_text(151669) == "[PAD151669]");
  CHECK_FALSE(contains(tok.encode("[PAD151669]", false, true), 151669));
  CHECK(tok.is_eog(im_end));
  CHECK(tok.is_eog(151643));  // <|endoftext|>
}

TEST_CASE("gpt-oss: llama.cpp's Harmony quirk makes <|start|> <|channel|> <|message|> <|end|> user-defined") {
  auto model = vramfit::test::test_data("vocab/ggml-vocab-gpt-oss.gguf");
  if (!model) return;
  const Tokenizer tok = load(*model);
  const int32_t ret = 200002, constrain = 200003, channel = 200005, start = 200006, end = 200007,
                message = 200008, call = 200012;
  CHECK(tok.token_text(start) == "<|start|>");
  CHECK(tok.token_text(end) == "<|end|>");
  CHECK(tok.token_text(call) == "<|call|>");
  CHECK(tok.token_text(constrain) == "<|constrain|>");
  const std::string harmony = "<|start|>assistant<|channel|>final<|message|>Hi<|end|><|return|>";
  CHECK(tok.encode(harmony, false, false) == concat({{start}, tok.encode("assistant", false), {channel},
                                                     tok.encode("final", false), {message}, tok.encode("Hi", false),
                                                     {end}, tok.encode("<|return|>", false)}));
  CHECK(tok.encode(harmony, false, true).back() == ret);
  CHECK(tok.encode("<|constrain|>", false, false) == std::vector<int32_t>{constrain});
  // <|end|> ends a message, not generation, when <|return|> and <|call|> exist.
  CHECK_FALSE(tok.is_eog(end));
  CHECK(tok.is_eog(ret));
  CHECK(tok.is_eog(call));
  CHECK(tok.token_to_piece(end) == "<|end|>");  // user-defined tokens always render
}

TEST_CASE("Qwen3 and gpt-oss give back every hard string byte for byte (no space clean-up there)") {
  auto hard = vramfit::test::test_data("vocab/ggml-vocab-hard.inp");
  if (!hard) return;
  std::vector<std::string> texts;
  {
    const std::string raw = read_file(*hard), sep = "\n__ggml_vocab_test__\n";
    for (size_t pos = 0; pos < raw.size();) {
      const size_t next = std::min(raw.find(sep, pos), raw.size());
      texts.push_back(raw.substr(pos, next - pos));
      pos = next + sep.size();
    }
  }
  CHECK(texts.size() == 69);
  for (const char *name : {"qwen3", "gpt-oss"}) {
    auto model = vramfit::test::test_data(std::string("vocab/ggml-vocab-") + name + ".gguf");
    if (!model) continue;
    const Tokenizer tok = load(*model);
    const std::string label = name;
    CAPTURE(label);
    for (const std::string &text : texts) {
      CAPTURE(text);
      CHECK(tok.decode(tok.encode(text, false, false)) == text);
    }
  }
}
